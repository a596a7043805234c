"""playground.py against brute-force NumPy references and closed forms."""
import math
from collections import deque

import numpy as np
import pytest
import torch
import torch.nn as nn

from unet_helpers import UNet, seed_everything
from unet_helpers.inference import predict, predict_tiled
from unet_helpers.views import demos
from unet_helpers.views import playground as pg
from unet_helpers.inference import tile_boxes


# -- losses ---------------------------------------------------------------------------------------


def closed_form_losses(fraction, quality, size, confidence, lam=1.0, eps=1e-6):
    """CE, macro soft Dice loss and their sum from pixel counts alone (no torch)."""
    total = size * size
    n = max(1, round(fraction * total))  # object pixels
    m = round(quality * n)  # found object pixels
    c = confidence
    ce = (m * -math.log(c) + (n - m) * -math.log(1 - c) + (total - n) * -math.log(c)) / total
    inter_fg, sum_p_fg = m * c + (n - m) * (1 - c), m * c + (total - m) * (1 - c)
    inter_bg, sum_p_bg = (total - n) * c, total - sum_p_fg
    dice_fg = (2 * inter_fg + eps) / (sum_p_fg + n + eps)
    dice_bg = (2 * inter_bg + eps) / (sum_p_bg + (total - n) + eps)
    dice = 1 - (dice_fg + dice_bg) / 2
    return ce, dice, ce + lam * dice


@pytest.mark.parametrize("fraction", [0.003, 0.05, 0.4])
@pytest.mark.parametrize("quality", [0.0, 0.35, 1.0])
@pytest.mark.parametrize("confidence", [0.8, 0.99])
def test_loss_values_match_closed_form(fraction, quality, confidence):
    got = pg.loss_values(fraction, quality, size=40, confidence=confidence, lam=0.7)
    ce, dice, combined = closed_form_losses(fraction, quality, 40, confidence, lam=0.7)
    assert got["ce"] == pytest.approx(ce, rel=1e-4)
    assert got["dice"] == pytest.approx(dice, rel=1e-4, abs=1e-6)
    assert got["combined"] == pytest.approx(combined, rel=1e-4)


def test_synthetic_case_is_a_centred_disc_found_from_the_centre():
    logits, target = pg.synthetic_binary_case(0.1, 0.5, size=32, confidence=0.9)
    assert logits.shape == (1, 2, 32, 32) and target.shape == (1, 32, 32) and target.dtype == torch.int64
    probs = logits.softmax(1)[0, 1]
    assert int(target.sum()) == round(0.1 * 32 * 32)
    found = (probs > 0.5) & (target[0] == 1)
    assert int(found.sum()) == round(0.5 * int(target.sum())) and not bool(((probs > 0.5) & (target[0] == 0)).any())
    assert torch.allclose(probs[probs > 0.5], torch.tensor(0.9)) and torch.allclose(probs[probs < 0.5], torch.tensor(0.1))
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    distance = (yy - 15.5) ** 2 + (xx - 15.5) ** 2
    missed = (target[0] == 1) & ~found
    assert distance[found].max() <= distance[missed].min()  # the found part is the centre
    assert distance[target[0] == 1].max() <= distance[target[0] == 0].min()  # the object is a disc


def test_cross_entropy_hides_a_missed_small_object_but_dice_does_not():
    small_miss, small_hit = pg.loss_values(0.01, 0.0), pg.loss_values(0.01, 1.0)
    large_miss, large_hit = pg.loss_values(0.3, 0.0), pg.loss_values(0.3, 1.0)
    assert small_miss["ce"] - small_hit["ce"] < 0.1 < small_miss["dice"] - small_hit["dice"]
    assert large_miss["ce"] - large_hit["ce"] > 1.0


def test_loss_sweep_is_loss_values_per_quality():
    qualities = np.array([0.0, 0.5, 1.0])
    sweep = pg.loss_sweep(0.05, qualities, size=24)
    for i, q in enumerate(qualities):
        point = pg.loss_values(0.05, q, size=24)
        assert all(sweep[k][i] == pytest.approx(point[k]) for k in ("ce", "dice", "combined"))


@pytest.mark.parametrize("kwargs, message", [
    ({"foreground_fraction": 0.0, "quality": 0.5}, r"foreground_fraction must be a number in \(0, 1\); got 0.0"),
    ({"foreground_fraction": 1.0, "quality": 0.5}, r"foreground_fraction must be .* got 1.0"),
    ({"foreground_fraction": 0.1, "quality": 1.5}, r"quality must be a number in \[0, 1\]; got 1.5"),
    ({"foreground_fraction": 0.1, "quality": 0.5, "confidence": 0.5}, r"confidence must be in \(0.5, 1\)"),
])
def test_synthetic_case_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pg.synthetic_binary_case(**kwargs)


# -- mask perturbations: brute-force references ---------------------------------------------------


def random_mask(seed, shape=(13, 17), classes=3, blobs=6):
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, dtype=np.int64)
    for _ in range(blobs):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        h, w = rng.integers(1, 6), rng.integers(1, 6)
        mask[y : y + h, x : x + w] = rng.integers(1, classes)
    return mask


def brute_shift(mask, dy, dx, fill):
    out = np.full_like(mask, fill)
    for y in range(mask.shape[0]):
        for x in range(mask.shape[1]):
            sy, sx = y - dy, x - dx
            if 0 <= sy < mask.shape[0] and 0 <= sx < mask.shape[1]:
                out[y, x] = mask[sy, sx]
    return out


def within(mask, y, x, r):
    """Values of all in-image pixels at city-block distance <= r from (y, x)."""
    h, w = mask.shape
    return [mask[j, i] for j in range(max(0, y - r), min(h, y + r + 1))
            for i in range(max(0, x - r), min(w, x + r + 1)) if abs(j - y) + abs(i - x) <= r]


def brute_grow(mask, r):
    out = mask.copy()
    for y in range(mask.shape[0]):
        for x in range(mask.shape[1]):
            if mask[y, x] == 0:
                near = [v for v in within(mask, y, x, r) if v != 0]
                if near:
                    out[y, x] = min(near)
    return out


def brute_shrink(mask, r):
    out = mask.copy()
    for y in range(mask.shape[0]):
        for x in range(mask.shape[1]):
            if mask[y, x] != 0 and any(v != mask[y, x] for v in within(mask, y, x, r)):
                out[y, x] = 0
    return out


def brute_drop_small(mask, min_size):
    out, seen = mask.copy(), np.zeros(mask.shape, bool)
    h, w = mask.shape
    for y in range(h):
        for x in range(w):
            if mask[y, x] == 0 or seen[y, x]:
                continue
            component, queue = [], deque([(y, x)])
            seen[y, x] = True
            while queue:  # flood fill over 4-neighbours of the same class
                cy, cx = queue.popleft()
                component.append((cy, cx))
                for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                    if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx] and mask[ny, nx] == mask[y, x]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
            if len(component) < min_size:
                for cy, cx in component:
                    out[cy, cx] = 0
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dy, dx", [(0, 0), (2, -3), (-5, 1), (13, 0), (-4, -20)])
def test_shift_mask_matches_brute_force(seed, dy, dx):
    mask = random_mask(seed)
    assert np.array_equal(pg.shift_mask(mask, dy, dx, fill=2), brute_shift(mask, dy, dx, 2))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("r", [0, 1, 2, 4])
def test_grow_and_shrink_match_brute_force(seed, r):
    mask = random_mask(seed, classes=4)
    assert np.array_equal(pg.grow_classes(mask, r), brute_grow(mask, r))
    assert np.array_equal(pg.shrink_classes(mask, r), brute_shrink(mask, r))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("min_size", [0, 2, 7, 30])
def test_drop_small_objects_matches_flood_fill(seed, min_size):
    mask = random_mask(seed, blobs=10)
    assert np.array_equal(pg.drop_small_objects(mask, min_size), brute_drop_small(mask, min_size))


def test_perturb_mask_applies_the_steps_in_order_and_is_identity_by_default():
    mask = random_mask(7, blobs=9)
    assert np.array_equal(pg.perturb_mask(torch.from_numpy(mask)), mask)
    expected = brute_drop_small(brute_shrink(brute_grow(brute_shift(mask, 1, -2, 0), 2), 1), 5)
    assert np.array_equal(pg.perturb_mask(mask, (1, -2), dilate=2, erode=1, min_size=5), expected)


def test_perturb_mask_rejects_a_batch_and_float_masks():
    with pytest.raises(ValueError, match=r"mask must be a mask of class ids \(H, W\); got shape \(2, 4, 4\)"):
        pg.perturb_mask(np.zeros((2, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match=r"mask must hold integer class ids; got dtype float32"):
        pg.perturb_mask(np.zeros((4, 4), dtype=np.float32))


def brute_iou_dice(pred, target, k):
    p, t = pred == k, target == k
    inter, union, total = (p & t).sum(), (p | t).sum(), p.sum() + t.sum()
    return (None, None) if union == 0 else (inter / union, 2 * inter / total)


@pytest.mark.parametrize("seed", range(3))
def test_mask_metrics_match_brute_force_definitions(seed):
    target, pred = random_mask(seed, classes=4), pg.perturb_mask(random_mask(seed, classes=4), (1, 1), dilate=1)
    metrics = pg.mask_metrics(pred, target, num_classes=5)
    for k in range(5):
        iou, dice = brute_iou_dice(pred, target, k)
        assert math.isnan(metrics["iou"][k]) == (iou is None)
        if iou is not None:
            assert metrics["iou"][k] == pytest.approx(iou) and metrics["dice"][k] == pytest.approx(dice)
    assert metrics["pixel_accuracy"] == pytest.approx((pred == target).mean())
    assert len(metrics["boundary_f1"]) == 5


def test_boundary_f1_forgives_shifts_within_tolerance_but_iou_does_not():
    square = np.zeros((40, 40), dtype=np.int64)
    square[10:30, 10:30] = 1
    one = pg.mask_metrics(pg.perturb_mask(square, (0, 1)), square, 2, tolerance=1)
    four = pg.mask_metrics(pg.perturb_mask(square, (0, 4)), square, 2, tolerance=1)
    assert one["boundary_f1"][1] == 1.0 and one["iou"][1] == pytest.approx(19 * 20 / (21 * 20))
    assert four["boundary_f1"][1] < 0.75 and four["iou"][1] == pytest.approx(16 * 20 / (24 * 20))


# -- per-image scores -----------------------------------------------------------------------------


def test_per_image_iou_and_worst_first_order():
    rng = np.random.default_rng(0)
    targets = torch.from_numpy(rng.integers(0, 3, (6, 8, 8)))
    wrong = torch.from_numpy(rng.random((6, 8, 8)) < np.linspace(0.1, 0.9, 6)[:, None, None])
    preds = torch.where(wrong, (targets + 1) % 3, targets)  # image i is wrong on about 0.1 + 0.16 i of its pixels
    preds[5], targets[5] = 0, 0  # only class 0: classes 1 and 2 are NaN
    scores = pg.per_image_iou(preds, targets, 3)
    for i in range(6):
        for k in range(3):
            iou, _ = brute_iou_dice(preds[i].numpy(), targets[i].numpy(), k)
            assert (math.isnan(scores[i, k]) and iou is None) or scores[i, k] == pytest.approx(iou)
    means = [np.nanmean(row) for row in scores]
    assert pg.image_order(scores, "miou") == sorted(range(6), key=lambda i: means[i])
    assert pg.image_order(scores, "miou", worst_first=False) == sorted(range(6), key=lambda i: -means[i])
    assert pg.image_order(scores, 1)[-1] == 5  # undefined comes last
    assert pg.image_order(scores, "index") == list(range(6))
    with pytest.raises(ValueError, match=r"by must be 'index', 'miou' or a class id in \[0, 2\]; got 3"):
        pg.image_order(scores, 3)


# -- checkerboard ---------------------------------------------------------------------------------


def brute_counts_1d(kernel, stride, size):
    """How many (input i, tap a) pairs write to each output position y = i * stride + a."""
    counts = np.zeros((size - 1) * stride + kernel)
    for i in range(size):
        for a in range(kernel):
            counts[i * stride + a] += 1
    return counts


@pytest.mark.parametrize("kernel", range(1, 6))
@pytest.mark.parametrize("stride", range(1, 4))
def test_transposed_pattern_is_the_overlap_count(kernel, stride):
    counts = brute_counts_1d(kernel, stride, 6)
    expected = np.outer(counts, counts)  # every 2-D pair of 1-D writes
    assert np.array_equal(demos.upsample_pattern("transpose", kernel, stride, 6).numpy(), expected)


@pytest.mark.parametrize("kernel", range(1, 8))
@pytest.mark.parametrize("stride", range(1, 5))
def test_interior_is_even_exactly_when_the_stride_divides_the_kernel(kernel, stride):
    pattern = demos.upsample_pattern("transpose", kernel, stride, size=8)
    inside = demos.pattern_interior("transpose", kernel, stride, size=8)
    unbounded = np.array([sum(1 for a in range(kernel) if (y - a) % stride == 0) for y in range(pattern.shape[0])])
    assert np.array_equal(pattern.numpy()[inside, inside], np.outer(unbounded, unbounded)[inside, inside])
    assert (demos.unevenness(pattern[inside, inside]) == 0) == (kernel % stride == 0)
    bilinear = demos.upsample_pattern("bilinear", kernel, stride, size=8)
    inner = demos.pattern_interior("bilinear", kernel, stride, size=8)
    assert bilinear.shape == (8 * stride, 8 * stride)
    assert torch.allclose(bilinear[inner, inner], torch.tensor(float(kernel * kernel)))


def brute_transposed(weights, stride, size):
    """ConvTranspose2d of a constant all-one (size x size) input, by its definition: input pixel
    (i, j) adds weights[a, b] to output (i * stride + a, j * stride + b)."""
    k = weights.shape[0]
    out = np.zeros(((size - 1) * stride + k,) * 2)
    for i in range(size):
        for j in range(size):
            out[i * stride : i * stride + k, j * stride : j * stride + k] += weights
    return out


@pytest.mark.parametrize("kernel", range(1, 6))
@pytest.mark.parametrize("stride", range(1, 4))
def test_random_weights_repeat_with_period_stride_for_every_transposed_kernel(kernel, stride):
    pattern = demos.upsample_pattern("transpose", kernel, stride, size=6, weights="random", seed=3)
    weights = demos._kernel_weights(kernel, "random", 3)[0, 0].numpy()
    assert np.allclose(pattern.numpy(), brute_transposed(weights, stride, 6), atol=1e-5)
    assert weights.min() >= 0.5 and weights.max() < 1.5
    inside = demos.pattern_interior("transpose", kernel, stride, size=6)
    inner = pattern[inside, inside].numpy()
    if inner.shape[0] > stride:
        assert np.allclose(inner[stride:], inner[:-stride], atol=1e-5)  # period `stride` down the rows
        assert np.allclose(inner[:, stride:], inner[:, :-stride], atol=1e-5)
    if stride > 1 and inner.shape[0] >= stride:  # unequal random taps: the phases differ
        assert demos.unevenness(pattern[inside, inside]) > 1e-3


@pytest.mark.parametrize("kernel", [1, 2, 3, 5])
def test_bilinear_then_a_random_convolution_keeps_a_constant_flat_inside(kernel):
    pattern = demos.upsample_pattern("bilinear", kernel, 2, size=8, weights="random", seed=1)
    inside = demos.pattern_interior("bilinear", kernel, 2, size=8)
    total = float(demos._kernel_weights(kernel, "random", 1).sum())
    assert torch.allclose(pattern[inside, inside], torch.tensor(total), atol=1e-5)


def test_kernel_two_is_even_only_with_equal_weights():
    inside = demos.pattern_interior("transpose", 2, 2, size=8)
    ones = demos.upsample_pattern("transpose", 2, 2, size=8)
    assert demos.unevenness(ones[inside, inside]) == 0
    for seed in range(5):
        random = demos.upsample_pattern("transpose", 2, 2, size=8, weights="random", seed=seed)
        assert len(set(random[inside, inside].flatten().tolist())) == 4  # one value per 2x2 phase
    assert torch.equal(demos.upsample_pattern("transpose", 3, 2, weights="random", seed=7),
                       demos.upsample_pattern("transpose", 3, 2, weights="random", seed=7))
    with pytest.raises(ValueError, match=r"weights must be one of \('ones', 'random'\); got 'zeros'"):
        demos.upsample_pattern("transpose", 3, 2, weights="zeros")


def test_unevenness_and_bad_settings():
    assert demos.unevenness(torch.tensor([[1.0, 2.0], [1.0, 2.0]])) == pytest.approx(1 / 1.5)
    assert demos.unevenness(torch.full((3, 3), 4.0)) == 0
    with pytest.raises(ValueError, match=r"mode must be one of \('transpose', 'bilinear'\); got 'nearest'"):
        demos.upsample_pattern("nearest", 3, 2)
    with pytest.raises(ValueError, match="kernel must be an int >= 1; got 0"):
        demos.upsample_pattern("transpose", 0, 2)
    with pytest.raises(ValueError, match="size=1 is too small for kernel=3, stride=2: no interior"):
        demos.pattern_interior("transpose", 3, 2, size=1)


# -- tiles and seams ------------------------------------------------------------------------------


class RecordingModel(nn.Module):
    """Reads the tile origin from coordinate channels (row, column) and predicts nothing useful."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, x):
        for tile in x:
            self.seen.append((int(tile[0, 0, 0]), int(tile[1, 0, 0]), tile.shape[1], tile.shape[2]))
        return torch.zeros(x.shape[0], 2, *x.shape[2:])


@pytest.mark.parametrize("height, width, tile, overlap", [(50, 70, 32, 0.25), (64, 64, 16, 0.5), (30, 100, 48, 0.0), (41, 41, 41, 0.3)])
def test_tile_boxes_are_the_tiles_predict_tiled_runs(height, width, tile, overlap):
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    model = RecordingModel()
    predict_tiled(model, torch.stack([rows, cols]), tile=tile, overlap=overlap, blend="uniform")
    boxes = tile_boxes(height, width, tile, overlap)
    assert boxes == model.seen
    coverage = demos.coverage_map(height, width, boxes)
    assert coverage.min() >= 1 and coverage.sum() == sum(h * w for _, _, h, w in boxes)


def test_tile_edges_are_the_inner_starts_and_ends():
    boxes = tile_boxes(50, 70, 32, 0.25)  # rows start 0, 18; columns 0, 24, 38
    assert demos.tile_edges(50, 70, boxes) == ([18, 32], [24, 32, 38, 56])


def test_seam_strength_is_the_mean_jump_of_the_tiling_error_across_edges():
    torch.manual_seed(0)
    whole = torch.rand(3, 20, 30).softmax(0)
    boxes = [(0, 0, 20, 16), (0, 14, 20, 16)]  # one vertical overlap: edges at columns 14 and 16
    assert demos.seam_strength(whole.clone(), whole, boxes) == 0.0
    tiled = whole.clone()
    tiled[:, :, 16:] += torch.tensor([0.2, -0.2, 0.0])[:, None, None]  # a step at column 16 only
    expected = (20 * 0.2 + 20 * 0.0) / 40  # column 16: half of |0.2| + |-0.2|; column 14: no step
    assert demos.seam_strength(tiled, whole, boxes) == pytest.approx(expected)
    assert math.isnan(demos.seam_strength(whole, whole, [(0, 0, 20, 30)]))


def test_gaussian_blending_with_overlap_has_weaker_seams_than_no_blending():
    seed_everything(0)
    model = UNet(3, 3, base=4, depth=2).eval()
    image = torch.rand(3, 48, 48)
    plain = demos.tiled_vs_whole(model, image, tile=16, overlap=0.0, blend="none")
    blended = demos.tiled_vs_whole(model, image, tile=16, overlap=0.5, blend="gaussian")
    assert torch.allclose(plain["whole"], predict(model, image, return_probs=True)[1])
    assert torch.allclose(plain["difference"], 0.5 * (plain["probs"] - plain["whole"]).abs().sum(0))
    assert 0 < blended["seam_strength"] < plain["seam_strength"]


def test_mask_metrics_leaves_classes_in_neither_mask_undefined():
    target = np.zeros((12, 12), dtype=np.int64)
    target[3:8, 3:8] = 1  # class 2 appears nowhere
    metrics = pg.mask_metrics(target, target, num_classes=3)
    assert math.isnan(metrics["iou"][2]) and math.isnan(metrics["boundary_f1"][2])
    assert metrics["boundary_f1"][:2] == [1.0, 1.0]
