"""viz/: colours, overlays and error codes against brute force and
ConfusionMatrix; figures have the promised panels and data and are not kept by pyplot."""
import matplotlib.pyplot as plt
import math

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from unet_helpers import ConfusionMatrix
from unet_helpers.records import EpochRecord, Evaluation, Preview, TrainSummary
from unet_helpers.views import demos
from unet_helpers.views import playground as pg
from unet_helpers.inference import tile_boxes
from unet_helpers import viz
from unet_helpers.viz import colors
from unet_helpers.viz import playgrounds as vp


@pytest.fixture(autouse=True)
def pyplot_keeps_no_figure():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before  # every plot function closes its figure in pyplot


def random_pair(seed=0, k=4, shape=(9, 11)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, k, shape), rng.integers(0, k, shape)


def test_class_colours_are_fixed_distinct_and_shared_by_every_k():
    eight, twenty = viz.class_colors(8), viz.class_colors(20)
    assert eight.shape == (8, 3) and twenty.shape == (20, 3)
    assert np.allclose(eight, [to_rgb(c) for c in colors.PALETTE])
    assert np.allclose(twenty[:8], eight) and np.allclose(viz.class_colors(3), eight[:3])
    assert len({tuple(np.round(c, 4)) for c in twenty}) == 20
    assert np.allclose(viz.class_colormap(5).colors, viz.class_colors(5))


def test_colorize_mask_matches_a_pixel_loop_and_greys_ignored_pixels():
    mask = np.array([[0, 1, 2], [255, 1, 0]])
    rgb = viz.colorize_mask(torch.from_numpy(mask), 3, ignore_index=255)
    colours = viz.class_colors(3)
    for (y, x), value in np.ndenumerate(mask):
        expected = to_rgb(colors.IGNORE_COLOR) if value == 255 else colours[value]
        assert np.allclose(rgb[y, x], expected)
    with pytest.raises(ValueError, match="mask has class id 255 but num_classes=3; pass ignore_index"):
        viz.colorize_mask(mask, 3)


def test_to_display_image_layouts_and_stretch():
    dim = torch.tensor([[[4.0, 6.0], [8.0, 12.0]]])  # (1, 2, 2), like dim microscopy
    out = viz.to_display_image(dim)
    assert out.shape == (2, 2, 3) and out.min() == 0 and out.max() == 1
    assert np.allclose(out[..., 0], [[0, 0.25], [0.5, 1]]) and np.allclose(out[..., 0], out[..., 2])
    rgb = np.random.default_rng(0).random((3, 4, 5))
    assert np.allclose(viz.to_display_image(rgb), (np.moveaxis(rgb, 0, -1) - rgb.min()) / np.ptp(rgb))
    assert np.array_equal(viz.to_display_image(np.full((4, 4), 7.0)), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match=r"image must be \(C, H, W\) with C in \(1, 3\), \(H, W\) or \(H, W, 3\); got \(2, 4, 4\)"):
        viz.to_display_image(np.zeros((2, 4, 4)))


def test_overlay_mask_blends_only_the_chosen_classes():
    image = np.random.default_rng(1).random((3, 5, 6))
    mask = np.random.default_rng(2).integers(0, 3, (5, 6))
    out = viz.overlay_mask(image, mask, 3, alpha=0.25)
    base, colours = viz.to_display_image(image), viz.class_colors(3)
    for (y, x), k in np.ndenumerate(mask):
        expected = base[y, x] if k == 0 else 0.75 * base[y, x] + 0.25 * colours[k]
        assert np.allclose(out[y, x], expected)
    only_two = viz.overlay_mask(image, mask, 3, alpha=0.25, classes=[2])
    assert np.allclose(only_two[mask == 1], base[mask == 1])


def brute_code(p, t, chosen, ignore_index):
    if t == ignore_index:
        return colors.IGNORED
    if t in chosen and p == t:
        return colors.TP
    if t in chosen and p in chosen:
        return colors.CONFUSED
    if t in chosen:
        return colors.FN
    return colors.FP if p in chosen else 0


@pytest.mark.parametrize("chosen", [[1], [0, 2], [1, 2, 3]])
def test_error_codes_match_a_pixel_loop(chosen):
    pred, target = random_pair(3)
    target[0, :3] = 9
    codes = viz.error_codes(pred, target, chosen, ignore_index=9)
    for (y, x), code in np.ndenumerate(codes):
        assert code == brute_code(pred[y, x], target[y, x], chosen, 9)


@pytest.mark.parametrize("seed", range(3))
def test_error_counts_are_the_confusion_matrix_entries(seed):
    pred, target = random_pair(seed, k=4, shape=(2, 16, 16))  # a batch works too
    cm = ConfusionMatrix(4)
    cm.update(torch.from_numpy(pred), torch.from_numpy(target))
    m = cm.matrix.numpy()
    for k in range(4):
        codes = viz.error_codes(pred, target, [k])
        assert (codes == colors.TP).sum() == m[k, k]
        assert (codes == colors.FP).sum() == m[:, k].sum() - m[k, k]
        assert (codes == colors.FN).sum() == m[k, :].sum() - m[k, k]
    chosen = [1, 3]
    codes = viz.error_codes(pred, target, chosen)
    assert (codes == colors.TP).sum() == sum(m[k, k] for k in chosen)
    assert ((codes == colors.FP) | (codes == colors.CONFUSED)).sum() == sum(m[:, k].sum() - m[k, k] for k in chosen)
    assert ((codes == colors.FN) | (codes == colors.CONFUSED)).sum() == sum(m[k, :].sum() - m[k, k] for k in chosen)


def test_error_overlay_paints_errors_on_a_dimmed_grey_image():
    pred, target = np.array([[1, 0], [1, 0]]), np.array([[1, 1], [0, 0]])
    image = np.ones((3, 2, 2))
    image[:, 1, 1] = 0
    out = viz.error_overlay(image, pred, target, [1], alpha=0.5)
    grey = 0.6 * viz.to_display_image(image).mean(-1)
    assert np.allclose(out[0, 0], 0.5 * grey[0, 0] + 0.5 * np.array(to_rgb(colors.ERROR_COLORS[colors.TP])))
    assert np.allclose(out[0, 1], 0.5 * grey[0, 1] + 0.5 * np.array(to_rgb(colors.ERROR_COLORS[colors.FN])))
    assert np.allclose(out[1, 0], 0.5 * grey[1, 0] + 0.5 * np.array(to_rgb(colors.ERROR_COLORS[colors.FP])))
    assert np.allclose(out[1, 1], grey[1, 1])
    with pytest.raises(ValueError, match=r"pred \(2, 2\) and target \(2, 3\) must have the same shape"):
        viz.error_codes(pred, np.zeros((2, 3), dtype=int), [1])


def history(epochs=3, preview=None):
    records = []
    for e in range(1, epochs + 1):
        val = Evaluation(loss=1.2 / e, parts={}, iou=(0.9, 0.2 * e, math.nan), dice=(math.nan,) * 3,
                         precision=(math.nan,) * 3, recall=(math.nan,) * 3, miou=0.3 + 0.1 * e,
                         mean_dice=0.4 + 0.1 * e, pixel_accuracy=0.9, confusion=ConfusionMatrix(3), preview=preview)
        records.append(EpochRecord(e, TrainSummary(1.0 / e, {"ce": 0.6 / e, "dice": 0.4 / e}), val, 1e-3, 1.0))
    return records


def batch(n=2, size=12):
    rng = np.random.default_rng(0)
    return torch.rand(n, 3, size, size), torch.from_numpy(rng.integers(0, 3, (n, size, size))), \
        torch.from_numpy(rng.integers(0, 3, (n, size, size)))


def test_history_figure_plots_the_recorded_values():
    fig = viz.plot_history(history())
    assert isinstance(fig, Figure) and tuple(fig.get_size_inches()) == (9, 3.2)
    loss_ax, metric_ax = fig.axes
    lines = {line.get_label(): line.get_ydata() for line in loss_ax.get_lines()}
    assert np.allclose(lines["train"], [1, 0.5, 1 / 3]) and np.allclose(lines["validation"], [1.2, 0.6, 0.4])
    assert np.allclose(lines["train ce"], [0.6, 0.3, 0.2])
    metrics = {line.get_label(): line.get_ydata() for line in metric_ax.get_lines()}
    assert np.allclose(metrics["miou"], [0.4, 0.5, 0.6])


def test_iou_bars_use_class_colours_and_mark_undefined_classes():
    fig = viz.plot_iou_bars([0.9, 0.4, math.nan], ["background", "circle", "square"])
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.9, 0.4, 0.0])
    assert np.allclose([p.get_facecolor()[:3] for p in ax.patches], viz.class_colors(3))
    assert [t.get_text() for t in ax.texts] == ["0.90", "0.40", "n/a"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["background", "circle", "square"]
    with pytest.raises(ValueError, match="class_names has 2 names but num_classes=3"):
        viz.plot_iou_bars([0.9, 0.4, math.nan], ["a", "b"])


def test_prediction_rows_and_dashboard_layout():
    images, targets, preds = batch(3)
    fig = viz.plot_predictions(images, targets, preds, 3, max_rows=2)
    assert len(fig.axes) == 8 and [a.get_title() for a in fig.axes[:4]] == ["image", "true mask", "predicted mask", "errors"]
    assert np.allclose(fig.axes[2].get_images()[0].get_array(), viz.colorize_mask(preds[0], 3))
    assert len(viz.plot_predictions(images, targets, None, 3).axes) == 6
    dash = viz.plot_dashboard(history(preview=Preview(images, targets, preds)), 3, ["bg", "circle", "square"])
    assert len(dash.axes) == 3 + 4 * 3 and dash._suptitle.get_text() == "epoch 3"
    assert tuple(dash.get_size_inches()) == pytest.approx((11, 3.0 + 2.3 * 3))
    curves_only = viz.plot_dashboard(history(1), 3)
    assert len(curves_only.axes) == 3
    row = viz.plot_mask_row(images[0], targets[0], preds[0], 3, error_classes=[2], title="image 0")
    errors = viz.error_overlay(images[0], preds[0], targets[0], [2])
    assert np.allclose(row.axes[3].get_images()[0].get_array(), errors)
    png = viz.figure_to_png(row)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_loss_playground_figure_shows_values_and_curves():
    qualities = np.linspace(0, 1, 5)
    logits, target = pg.synthetic_binary_case(0.05, 0.4, size=24)
    values, sweep = pg.loss_values(0.05, 0.4, size=24), pg.loss_sweep(0.05, qualities, size=24)
    fig = vp.plot_loss_playground(target[0], logits.softmax(1)[0, 1], values, qualities, sweep, 0.4)
    bars = fig.axes[2].patches
    assert [b.get_height() for b in bars] == pytest.approx([values["ce"], values["dice"], values["combined"]])
    curves = {line.get_label(): line.get_ydata() for line in fig.axes[3].get_lines()}
    assert np.allclose(curves["Dice loss"], sweep["dice"]) and np.allclose(curves["cross-entropy"], sweep["ce"])


def test_metric_playground_figure_shows_present_classes_only():
    target = np.zeros((20, 20), dtype=np.int64)
    target[5:15, 5:15] = 1
    pred = pg.perturb_mask(target, (0, 3))
    metrics = pg.mask_metrics(pred, target, 3)
    fig = vp.plot_metric_playground(target, pred, metrics, 3, ["bg", "square", "circle"])
    bar_ax = fig.axes[3]
    assert [t.get_text() for t in bar_ax.get_xticklabels()] == ["square"]  # class 2 is in neither mask
    assert [p.get_height() for p in bar_ax.patches] == pytest.approx(
        [metrics["iou"][1], metrics["dice"][1], metrics["boundary_f1"][1]])


def test_upsampling_figure_draws_the_pattern_and_its_middle_row():
    pattern = demos.upsample_pattern("transpose", 3, 2)
    inside = demos.pattern_interior("transpose", 3, 2)
    fig = vp.plot_upsampling(pattern, inside, 3, 2, "transpose")
    assert np.array_equal(fig.axes[0].get_images()[0].get_array(), pattern.numpy())
    middle = (inside.start + inside.stop) // 2
    assert np.array_equal(fig.axes[1].get_lines()[0].get_ydata(), pattern[middle].numpy())
    assert fig.axes[1].get_title().endswith("uneven: 1 to 4")


def test_upsampling_figure_names_random_weights_and_calls_a_flat_float_pattern_even():
    pattern = demos.upsample_pattern("bilinear", 3, 2, weights="random")
    inside = demos.pattern_interior("bilinear", 3, 2)
    fig = vp.plot_upsampling(pattern, inside, 3, 2, "bilinear", weights="random")
    assert "random weights" in fig.axes[0].get_title() and fig.axes[1].get_title().endswith(": even")


@pytest.mark.parametrize("kernel, stride", [(3, 2), (2, 2), (4, 2), (5, 3), (1, 1)])
def test_transposed_coverage_is_one_row_of_the_all_ones_pattern(kernel, stride):
    counts = vp.transposed_coverage(kernel, stride, 6)
    pattern = demos.upsample_pattern("transpose", kernel, stride, size=6)
    assert np.array_equal(np.outer(counts, counts), pattern.numpy())


def test_overlap_figure_draws_every_stamp_and_count():
    fig = vp.plot_transposed_overlap([(3, 2), (2, 2)], inputs=4)
    assert len(fig.axes) == 2
    for ax, (kernel, stride) in zip(fig.axes, [(3, 2), (2, 2)]):
        gids = [p.get_gid() for p in ax.patches]
        assert sum(g.startswith("stamp:") for g in gids) == 4 * kernel
        assert sum(g.startswith("count:") for g in gids) == 3 * stride + kernel
        counts = [t.get_text() for t in ax.texts if t.get_text().isdigit()]
        assert counts == [str(c) for c in vp.transposed_coverage(kernel, stride, 4)]
    assert fig.axes[0].get_title() == "kernel 3, stride 2: uneven: 1 and 2 alternate"
    assert fig.axes[1].get_title() == "kernel 2, stride 2: even"


def test_tiling_figure_draws_every_tile_and_edge():
    image = torch.rand(3, 40, 56)
    boxes = tile_boxes(40, 56, 24, 0.25)
    edges = demos.tile_edges(40, 56, boxes)
    ids, difference = torch.zeros(40, 56, dtype=torch.long), torch.rand(40, 56)
    fig = vp.plot_tiling(image, boxes, ids, difference, 3, edges, title="t")
    assert len(fig.axes[0].patches) == len(boxes)
    assert len(fig.axes[2].get_lines()) == len(edges[0]) + len(edges[1])
    assert np.allclose(fig.axes[2].get_images()[0].get_array(), difference.numpy())
