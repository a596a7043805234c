"""Border weight map (U-Net paper, eq. 2) against a brute-force loop over pixels and objects."""
import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from unet_helpers.folder import SegmentationFolder
from unet_helpers.losses import pixel_cross_entropy
from unet_helpers.viz import plot_weight_map
from unet_helpers.realdata.weightmap import (
    WeightMapDataset,
    border_weight_map,
    class_balance_weights,
    reach,
    weight_map_parts,
)

matplotlib.use("Agg")


def brute_force(instances, w0=10.0, sigma=5.0, class_weights=None):
    """Eq. 2 by explicit loops: every pixel, every object, every object pixel."""
    height, width = instances.shape
    ids = sorted({int(v) for v in instances.ravel() if v > 0})
    pixels = {k: [(r, c) for r in range(height) for c in range(width) if instances[r, c] == k] for k in ids}
    if class_weights is None:
        n_object = sum(len(p) for p in pixels.values())
        counts = [height * width - n_object, n_object]
        present = sum(1 for n in counts if n > 0)
        class_weights = [height * width / (present * n) if n else 0.0 for n in counts]
    out = np.zeros((height, width))
    for r in range(height):
        for c in range(width):
            inside = instances[r, c] > 0
            out[r, c] = class_weights[int(inside)]
            if inside or len(ids) < 2:
                continue
            nearest = sorted(min(math.hypot(r - pr, c - pc) for pr, pc in pixels[k]) for k in ids)
            out[r, c] += w0 * math.exp(-((nearest[0] + nearest[1]) ** 2) / (2 * sigma**2))
    return out


def random_instances(seed, height=13, width=17, count=4):
    """Rectangles with non-consecutive ids that touch or overlap (later ones on top)."""
    rng = np.random.default_rng(seed)
    instances = np.zeros((height, width), dtype=np.int64)
    for k in rng.choice(np.arange(1, 40), size=count, replace=False):
        top, left = rng.integers(0, height - 3), rng.integers(0, width - 3)
        instances[top : top + rng.integers(2, 6), left : left + rng.integers(2, 6)] = k
    return instances


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_on_random_maps(seed):
    instances = random_instances(seed)
    np.testing.assert_allclose(border_weight_map(instances), brute_force(instances), rtol=1e-5, atol=1e-5)


def test_matches_brute_force_with_given_parameters_and_gap_value():
    instances = random_instances(7, height=11, width=20, count=3)
    expected = brute_force(instances, w0=4.0, sigma=2.0, class_weights=(0.5, 3.0))
    got = border_weight_map(torch.from_numpy(instances), w0=4.0, sigma=2.0, class_weights=(0.5, 3.0))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    cells = np.zeros((5, 7), dtype=np.int64)
    cells[:, :3], cells[:, 4:] = 1, 2  # a one-pixel gap: d1 = d2 = 1
    assert border_weight_map(cells, class_weights=(1, 1))[2, 3] == pytest.approx(1 + 10 * math.exp(-4 / 50), rel=1e-6)


def test_windowed_distances_match_brute_force_on_a_large_map():
    """Objects farther apart than ``reach`` (29 px): the windows cut off terms below 1e-6 only."""
    instances = np.zeros((40, 110), dtype=np.int64)
    instances[5:12, 4:10], instances[8:15, 11:16] = 4, 9  # touching pair
    instances[20:26, 60:66], instances[30:33, 100:104] = 2, 7  # far from everything
    np.testing.assert_allclose(border_weight_map(instances), brute_force(instances), rtol=1e-5, atol=2e-6)
    parts = weight_map_parts(instances)
    assert np.isinf(parts["d2"][0, 100]) and parts["border"][0, 100] == 0  # second object beyond reach


def test_reach_bounds_the_border_term():
    for w0, sigma in ((10.0, 5.0), (3.0, 2.0), (0.5, 8.0)):
        r = reach(w0, sigma)
        assert max(w0, 1.0) * math.exp(-(r**2) / (2 * sigma**2)) <= 1e-6
        assert max(w0, 1.0) * math.exp(-((r - 1) ** 2) / (2 * sigma**2)) > 1e-6
    assert reach(10.0, 5.0) == 29


def test_no_objects_gives_ones_and_one_object_has_no_border_term():
    empty = border_weight_map(np.zeros((6, 9), dtype=np.int64))
    assert empty.dtype == np.float32 and empty.shape == (6, 9) and np.all(empty == 1.0)
    single = np.zeros((6, 9), dtype=np.int64)
    single[1:4, 2:5] = 3
    parts = weight_map_parts(single)
    assert np.all(parts["border"] == 0) and np.all(np.isinf(parts["d2"])) and np.isfinite(parts["d1"]).all()
    assert parts["d1"][1, 6] == pytest.approx(2.0)
    np.testing.assert_allclose(parts["total"], brute_force(single), rtol=1e-6)


def test_parts_add_up_and_the_class_term_averages_one():
    parts = weight_map_parts(random_instances(3))
    assert all(p.dtype == np.float32 and p.shape == (13, 17) for p in parts.values())
    np.testing.assert_allclose(parts["total"], parts["class"] + parts["border"], rtol=1e-6)
    assert parts["class"].mean() == pytest.approx(1.0, rel=1e-6)
    assert (parts["border"][random_instances(3) > 0] == 0).all()  # border term on background only


def test_class_balance_weights():
    masks = np.array([[[0, 0, 0, 1]], [[0, 0, 0, 0]]])  # 7 background, 1 object pixel
    np.testing.assert_allclose(class_balance_weights(masks, 2), [8 / 14, 8 / 2])
    np.testing.assert_allclose(class_balance_weights(np.array([0, 2, 2, 2]), 3), [4 / 2, 0.0, 4 / 6])


def test_usable_as_pixel_weights_in_the_loss():
    instances = random_instances(2)
    weights = torch.from_numpy(border_weight_map(instances))[None]  # (1, H, W)
    target = torch.from_numpy((instances > 0).astype(np.int64))[None]  # (1, H, W)
    logits = torch.randn(1, 2, 13, 17)
    per_pixel = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    loss = pixel_cross_entropy(logits, target, pixel_weights=weights)
    assert torch.allclose(loss, (weights * per_pixel).mean())


def test_plot_returns_a_figure_without_showing():
    instances = random_instances(1)
    fig = plot_weight_map(torch.rand(1, 13, 17), border_weight_map(instances))
    assert isinstance(fig, Figure) and len(fig.axes) == 3  # image, weights, colour bar
    with pytest.raises(ValueError, match=r"image \(13, 16\) and weights \(13, 17\) must both be \(H, W\)"):
        plot_weight_map(np.zeros((13, 16)), border_weight_map(instances))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"instances must be a mask of object ids \(0 = background, k = object k\) \(H, W\); got shape \(1, 4, 4\)"):
        border_weight_map(np.zeros((1, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match=r"instances must hold integer object ids"):
        border_weight_map(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"instances must be >= 0"):
        border_weight_map(-np.ones((4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"need w0 >= 0 and sigma > 0"):
        border_weight_map(np.zeros((4, 4), dtype=np.int64), sigma=0)
    with pytest.raises(ValueError, match=r"class_weights must be \(w_background, w_object\) >= 0"):
        border_weight_map(np.zeros((4, 4), dtype=np.int64), class_weights=(1, 2, 3))
    with pytest.raises(TypeError, match=r"masks must be a non-empty integer array"):
        class_balance_weights(np.zeros(3), 2)
    with pytest.raises(ValueError, match=r"masks hold class ids 0..255, expected 0..1"):
        class_balance_weights(np.array([0, 255]), 2)


def write_instance_folder(root, names=("a", "b"), size=(20, 24)):
    """images/, masks/ (0/255) and 16-bit instances/ with two touching rectangles per image."""
    for sub in ("images", "masks", "instances"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        instances = np.zeros(size, dtype=np.uint16)
        instances[3:12, 2 + i : 10 + i], instances[4:15, 11 + i : 19] = 1, 2
        pixels = np.random.default_rng(i).integers(0, 256, size, dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{name}.png")
        Image.fromarray(((instances > 0) * 255).astype(np.uint8)).save(root / "masks" / f"{name}.png")
        Image.fromarray(instances).save(root / "instances" / f"{name}.png")
    return SegmentationFolder(root, mask_values={0: 0, 255: 1}, channels=1)


def test_dataset_gives_triples_moved_together(tmp_path):
    folder = write_instance_folder(tmp_path)
    plain = WeightMapDataset(folder, class_weights="image")
    image, mask, weights = plain[1]
    instances = np.array(Image.open(tmp_path / "instances" / "b.png")).astype(np.int64)
    np.testing.assert_allclose(weights.numpy(), border_weight_map(instances), rtol=1e-6)
    assert image.shape == (1, 20, 24) and mask.dtype == torch.int64 and weights.dtype == torch.float32

    def flip_and_crop(img, m):
        return img.flip(-1)[..., 1:15, 2:20], m.flip(-1)[1:15, 2:20]

    moved = WeightMapDataset(folder, class_weights="image", transform=flip_and_crop)
    image_t, mask_t, weights_t = moved[1]
    assert torch.equal(image_t, flip_and_crop(image, mask)[0])
    assert torch.equal(mask_t, flip_and_crop(image, mask)[1])
    assert torch.equal(weights_t, weights.flip(-1)[1:15, 2:20])


def test_dataset_class_weights_over_the_whole_folder(tmp_path):
    folder = write_instance_folder(tmp_path)
    dataset = WeightMapDataset(folder)
    masks = np.stack([folder.load(i)[1].numpy() for i in range(len(folder))])
    np.testing.assert_allclose(dataset.class_weights, class_balance_weights(masks, 2))
    fixed = WeightMapDataset(folder, class_weights=(1.0, 2.0))
    instances = np.array(Image.open(tmp_path / "instances" / "a.png")).astype(np.int64)
    np.testing.assert_allclose(fixed.weights(0).numpy(), border_weight_map(instances, class_weights=(1.0, 2.0)))
    assert fixed.weights(0)[5, 5] == 2.0  # inside an object: w_c only


def test_dataset_bad_inputs(tmp_path):
    folder = write_instance_folder(tmp_path)
    with pytest.raises(ValueError, match=r"class_weights must be 'dataset', 'image' or"):
        WeightMapDataset(folder, class_weights="balanced")
    flipping = SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1}, transform=lambda i, m: (i, m))
    with pytest.raises(ValueError, match=r"folder has a transform of its own"):
        WeightMapDataset(flipping)
    (tmp_path / "instances" / "a.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"no instance map .*instances/a.png"):
        WeightMapDataset(folder)
