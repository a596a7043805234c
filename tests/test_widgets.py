"""The widgets, driven programmatically (``slider.value = ...``) without a browser, and the static
fallback in a real kernel (nbclient) and in nbconvert's HTML."""
import base64
import io
import re

import nbclient
import nbconvert
import nbformat
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from unet_helpers import ArrayDataset, CombinedLoss, ConfusionMatrix, UNet, seed_everything, synthetic_segmentation
from unet_helpers.views import demos
from unet_helpers.views import playground as pg
from unet_helpers.inference import tile_boxes
from unet_helpers.views import widgets
from unet_helpers.inference import predict
from unet_helpers.loaders import make_loader
from unet_helpers.records import EpochRecord, Evaluation, Preview, TrainSummary
from unet_helpers.train import fit

NAMES = ["background", "circle", "square"]


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def scene(size=48, seed=3):
    images, masks = synthetic_segmentation(1, size=size, seed=seed)
    return torch.from_numpy(images[0]).permute(2, 0, 1), masks[0]


@pytest.fixture(scope="module")
def tiny_training():
    """A 2-epoch fit of a tiny U-Net with a dashboard attached."""
    seed_everything(0)
    images, masks = synthetic_segmentation(20, size=24, seed=0)
    train, val = ArrayDataset(images[:16], masks[:16]), ArrayDataset(images[16:], masks[16:])
    model = UNet(3, 3, base=4, depth=2)
    dashboard = widgets.TrainingDashboard(class_names=NAMES, max_images=2)
    first_png = dashboard._image.value
    history = fit(model, make_loader(train, 8), make_loader(val, 4, shuffle=False), CombinedLoss(),
                  torch.optim.Adam(model.parameters(), lr=1e-2), epochs=2, callbacks=[dashboard], progress=False)
    return model, val, dashboard, history, first_png


def record_with_preview(images, targets, preds, ignore_index=None):
    """One EpochRecord whose validation kept ``images`` with ``targets`` and ``preds`` as its preview."""
    counts = ConfusionMatrix(3, ignore_index)
    counts.update(preds, targets)
    val = Evaluation.from_counts(counts, preview=Preview(images, targets, preds))
    return EpochRecord(1, TrainSummary(1.0), val, 1e-3, 0.1)


def test_no_kernel_here_so_show_prints_values_and_returns_the_figure(capsys):
    view = widgets.UpsamplingExplorer()
    assert not widgets.has_kernel()
    fig = view.show()
    assert isinstance(fig, Figure) and capsys.readouterr().out.strip() == view.summary()


def test_mimebundle_carries_widget_png_and_text():
    view = widgets.LossPlayground()
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"}
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == view.widget.model_id
    assert base64.b64decode(bundle["image/png"]) == view._image.value
    assert bundle["text/plain"] == view.summary()


def test_loss_playground_sliders_drive_the_losses():
    view = widgets.LossPlayground(foreground_fraction=0.05, quality=0.5)
    before_png = view._image.value
    assert view.current_losses == pytest.approx(pg.loss_values(0.05, 0.5))
    view.fraction.value = 0.2
    view.quality.value = 0.0
    view.confidence.value = 0.9
    expected = pg.loss_values(view.fraction.value, 0.0, confidence=0.9)
    assert view.current_losses == pytest.approx(expected) and view._image.value != before_png
    assert f"{expected['dice']:.4f}" in view._readout.value
    assert np.allclose(view.current_sweep["ce"], pg.loss_sweep(view.fraction.value, view.qualities, confidence=0.9)["ce"])


def test_metric_playground_shift_lowers_iou_and_matches_the_plain_functions():
    _, target = scene()
    view = widgets.MetricPlayground(target, class_names=NAMES)
    assert view.current_metrics["iou"][1] == 1.0 and view.current_metrics["boundary_f1"][1] == 1.0
    view.shift_x.value = 3
    view.dilate.value = 1
    expected_mask = pg.perturb_mask(target, (0, 3), dilate=1)
    assert np.array_equal(view.current_mask, expected_mask)
    assert view.current_metrics == pg.mask_metrics(expected_mask, target, 3, tolerance=2.0)
    assert view.current_metrics["iou"][1] < 1.0
    assert f"{view.current_metrics['iou'][1]:.3f}" in view._readout.value
    view.tolerance.value = 6.0
    assert view.current_metrics["boundary_f1"][1] == pg.mask_metrics(expected_mask, target, 3, 6.0)["boundary_f1"][1]


def test_upsampling_explorer_shows_the_checkerboard_and_reports_errors():
    view = widgets.UpsamplingExplorer(kernel=3, stride=2)
    assert view.current_unevenness > 0 and "does not divide" in view.summary()
    view.kernel.value = 4
    assert view.current_unevenness == 0 and torch.equal(view.current_pattern, demos.upsample_pattern("transpose", 4, 2))
    view.kernel.value, view.mode.value = 3, "bilinear"
    assert view.current_unevenness == 0 and view.current_pattern.shape == (16, 16)
    view.mode.value, view.kernel.value, view.weights.value = "transpose", 2, "random"
    assert view.current_unevenness > 0 and "repeats every 2 pixels" in view.summary()
    assert torch.equal(view.current_pattern, demos.upsample_pattern("transpose", 2, 2, weights="random"))
    view.mode.value = "bilinear"
    assert view.summary() == "bilinear, random weights: interior even"
    broken = widgets.UpsamplingExplorer(kernel=3, stride=2, size=1)
    assert "no interior" in broken.error and "no interior" in broken._readout.value
    assert broken._repr_mimebundle_()["text/plain"] == f"error: {broken.error}"


def test_training_dashboard_updates_every_epoch(tiny_training):
    model, val, dashboard, history, first_png = tiny_training
    assert dashboard.history == history and len(dashboard.history) == 2
    images = torch.stack([val[i][0] for i in range(2)])
    preview = history[-1].val.preview  # what evaluate kept: the dashboard ran no model of its own
    assert torch.equal(preview.images, images) and torch.equal(preview.preds, predict(model, images))
    assert dashboard._image.value != first_png
    assert png_size(dashboard._image.value) == (11 * 72, int((3.0 + 2.3 * 2) * 72))
    assert "epoch 2" in dashboard._readout.value and f"{history[-1].miou:.3f}" in dashboard.summary()


def test_dashboard_replaces_the_stored_png_of_each_display(monkeypatch):
    class FakeHandle:
        def __init__(self):
            self.updates = []

        def update(self, bundle, raw):
            self.updates.append(bundle)

    handle = FakeHandle()
    monkeypatch.setattr(widgets.base, "display", lambda bundle, raw, display_id: handle)
    dashboard = widgets.TrainingDashboard(class_names=NAMES)
    dashboard._ipython_display_()
    model = UNet(3, 3, base=4, depth=1)
    images, masks = torch.rand(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    dashboard([record_with_preview(images, masks, masks)], model)
    assert len(handle.updates) == 1
    assert base64.b64decode(handle.updates[0]["image/png"]) == dashboard._image.value
    assert handle.updates[0]["text/plain"].startswith("epoch 1")


def test_mask_explorer_sorts_worst_first_and_toggles_classes(tiny_training):
    model, val, *_ = tiny_training
    view = widgets.MaskExplorer.from_dataset(val, model, class_names=NAMES)
    images = torch.stack([val[i][0] for i in range(len(val))])
    targets = torch.stack([val[i][1] for i in range(len(val))])
    scores = pg.per_image_iou(predict(model, images), targets, 3)
    assert np.allclose(view.scores, scores, equal_nan=True)
    assert view.order == pg.image_order(scores, "miou") and view.current_index == view.order[0]
    view.rank.value = 2
    assert view.current_index == view.order[2] and f"image {view.order[2]}" in view.summary()
    view.sort.value = 2
    assert view.order == pg.image_order(scores, 2) and view.current_index == view.order[2]
    assert view.current_classes == [1, 2]
    before = view._image.value
    view.class_toggles[1].value = False
    assert view.current_classes == [2] and view._image.value != before
    with pytest.raises(ValueError, match="MaskExplorer needs a model or preds"):
        widgets.MaskExplorer(images, targets)


def test_tiling_explorer_recomputes_tiles_and_seams(tiny_training):
    model, *_ = tiny_training
    image, _ = scene(48)
    view = widgets.TilingExplorer(model, image, class_names=NAMES, tile=24, overlap=0.0, blend="none")
    assert view.current_result["boxes"] == tile_boxes(48, 48, 24, 0.0)
    view.overlap.value = 0.5
    view.blend.value = "gaussian"
    expected = demos.tiled_vs_whole(model, image, 24, 0.5, "gaussian")
    assert view.current_result["boxes"] == tile_boxes(48, 48, 24, 0.5)
    assert view.current_seam_strength == pytest.approx(expected["seam_strength"])
    assert torch.allclose(view.current_result["probs"], expected["probs"])


KERNEL_CELLS = [
    "import torch\n"
    "from unet_helpers import ArrayDataset, CombinedLoss, UNet, seed_everything, synthetic_segmentation\n"
    "from unet_helpers import fit, make_loader\n"
    "from unet_helpers.views.widgets import MetricPlayground, TrainingDashboard\n"
    "seed_everything(0)\n"
    "images, masks = synthetic_segmentation(12, size=16, seed=0)",
    "MetricPlayground(masks[0])",
    "dashboard = TrainingDashboard(num_classes=3, max_images=1)\ndashboard",
    "model = UNet(3, 3, base=4, depth=1)\n"
    "loader = make_loader(ArrayDataset(images, masks), 4, shuffle=False)\n"
    "history = fit(model, loader, loader, CombinedLoss(), torch.optim.Adam(model.parameters()), 1,\n"
    "              callbacks=[dashboard], progress=False)",
]


@pytest.mark.slow
def test_static_fallback_in_a_kernel_and_in_nbconvert_html(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS])
    # Not storing widget state is what JupyterLab does by default; then static pages use the PNG.
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=False,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    playground_out, dashboard_out = nb.cells[1].outputs, nb.cells[2].outputs
    for outputs in (playground_out, dashboard_out):
        assert len(outputs) == 1 and set(outputs[0].data) == {
            "application/vnd.jupyter.widget-view+json", "image/png", "text/plain"}
    assert playground_out[0].data["text/plain"].splitlines()[1].split() == ["class", "0", "1.000", "1.000", "1.000"]
    # The dashboard was displayed before training; the update after the epoch replaced its PNG.
    assert dashboard_out[0].data["text/plain"].startswith("epoch 1")
    dashboard_png = base64.b64decode(dashboard_out[0].data["image/png"])
    assert png_size(dashboard_png) == (11 * 72, int((3.0 + 2.3) * 72))  # Agg truncates
    html, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64', html)) == 2
    assert 'type="application/vnd.jupyter.widget-view+json"' not in html


def test_views_handle_ignore_index_labels():
    model = UNet(3, 3, base=4, depth=1)
    images, masks = torch.rand(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    masks[:, 0] = 255  # an unlabelled row
    dashboard = widgets.TrainingDashboard(class_names=NAMES, ignore_index=255)
    preds = torch.randint(0, 3, (2, 8, 8))
    dashboard([record_with_preview(images, masks, preds, ignore_index=255)], model)  # used to stop fit with "mask has class id 255"
    assert dashboard.error is None and "epoch 1" in dashboard.summary()
    explorer = widgets.MaskExplorer(images, masks, preds=torch.randint(0, 3, (2, 8, 8)), ignore_index=255)
    assert explorer.num_classes == 3 and explorer.scores.shape == (2, 3)


def test_a_drawing_error_is_reported_not_raised():
    dashboard = widgets.TrainingDashboard(num_classes=3)  # no ignore_index: 255 cannot be drawn
    images, masks = torch.rand(1, 3, 8, 8), torch.full((1, 8, 8), 255)
    dashboard([record_with_preview(images, masks, torch.zeros(1, 8, 8, dtype=torch.long), ignore_index=255)],
              UNet(3, 3, base=4, depth=1))  # must not stop training
    assert dashboard.error is not None and "255" in dashboard.error and dashboard.text().startswith("error:")
