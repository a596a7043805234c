import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from unet_helpers.data import ArrayDataset, split_indices, stack_dataset, synthetic_segmentation
from unet_helpers.transforms import CentreCrop, Compose, RandomCrop, RandomFlipRotate
from unet_helpers.runtime import get_device, seed_everything


def test_synthetic_shapes_dtypes_and_classes():
    images, masks = synthetic_segmentation(20, size=48, seed=1)
    assert images.shape == (20, 48, 48, 3) and images.dtype == np.float32
    assert masks.shape == (20, 48, 48) and masks.dtype == np.int64
    assert 0 <= images.min() and images.max() <= 1
    assert set(np.unique(masks)) <= {0, 1, 2} and {1, 2} <= set(np.unique(masks))
    images, masks = synthetic_segmentation(3, size=(40, 56), seed=1)
    assert images.shape == (3, 40, 56, 3) and masks.shape == (3, 40, 56)


def test_synthetic_is_seeded():
    a = synthetic_segmentation(5, seed=3)
    b = synthetic_segmentation(5, seed=3)
    c = synthetic_segmentation(5, seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_circles_are_round_and_squares_are_square():
    _, masks = synthetic_segmentation(12, size=64, seed=0, num_shapes=(1, 1), radius=(10, 10))
    seen = set()
    for mask in masks:
        ys, xs = np.nonzero(mask)
        cls = int(mask[ys[0], xs[0]])
        seen.add(cls)
        filled = len(ys) / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))  # area / bounding box
        assert (filled == 1.0) if cls == 2 else (0.7 < filled < 0.85)  # pi/4 for a disc
    assert seen == {1, 2}


def test_shapes_are_visible_against_background():
    images, masks = synthetic_segmentation(30, seed=2, noise=0.0, num_shapes=(1, 1))
    for img, m in zip(images, masks):
        inside, outside = img[m > 0].mean(0), img[m == 0].mean(0)
        assert np.abs(inside - outside).max() >= 0.25


def test_foreground_fraction_and_binary():
    _, masks = synthetic_segmentation(200, size=64, seed=0, foreground_fraction=0.05, binary=True)
    assert set(np.unique(masks)) == {0, 1}
    assert masks.mean() == pytest.approx(0.05, abs=0.01)


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"foreground_fraction must be in \(0, 1\); got 5"):
        synthetic_segmentation(2, foreground_fraction=5)


def test_array_dataset_items_and_loader():
    images, masks = synthetic_segmentation(6, size=32)
    ds = ArrayDataset(images, masks)
    image, mask = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert mask.shape == (32, 32) and mask.dtype == torch.int64
    assert torch.allclose(image.permute(1, 2, 0), torch.from_numpy(images[0]))
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 3, 32, 32) and y.shape == (4, 32, 32)
    gray = ArrayDataset(images[..., 0], masks)
    assert gray[0][0].shape == (1, 32, 32)
    stacked_x, stacked_y = stack_dataset(ds, [0, 2])
    assert stacked_x.shape == (2, 3, 32, 32) and torch.equal(stacked_y[1], ds[2][1])


def test_array_dataset_errors():
    with pytest.raises(ValueError, match=r"disagree on \(N, H, W\)"):
        ArrayDataset(np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 9), dtype=np.int64))
    with pytest.raises(TypeError, match=r"masks must hold integer class ids; got dtype torch.float64"):
        ArrayDataset(np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8)))


def test_transforms_move_image_and_mask_together():
    torch.manual_seed(0)
    image = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(2, 8, 8)
    mask = image[0].long()  # the mask equals channel 0, so any paired transform keeps them equal
    transform = Compose([RandomFlipRotate(), RandomCrop(5)])
    for _ in range(20):
        img, m = transform(image, mask)
        assert img.shape == (2, 5, 5) and m.shape == (5, 5)
        assert torch.equal(img[0].long(), m)
    with pytest.raises(ValueError, match=r"RandomCrop\(9x9\) is larger than the image \(8x8\)"):
        RandomCrop(9)(image, mask)


def test_flip_rotate_keeps_non_square_shapes():
    image, mask = torch.zeros(1, 6, 8), torch.zeros(6, 8, dtype=torch.long)
    for _ in range(10):
        assert RandomFlipRotate()(image, mask)[0].shape == (1, 6, 8)


def test_split_indices_and_seed_everything():
    train, val = split_indices(10, 0.3, seed=1)
    assert sorted(train + val) == list(range(10)) and len(val) == 3
    seed_everything(5)
    a = torch.rand(3)
    g = seed_everything(5)
    assert torch.equal(a, torch.rand(3)) and isinstance(g, torch.Generator)
    assert get_device().type in ("cpu", "cuda", "mps") and get_device("cpu").type == "cpu"


def test_centre_crop():
    image, mask = torch.arange(2 * 5 * 6.0).reshape(2, 5, 6), torch.arange(30).reshape(5, 6)
    cropped_image, cropped_mask = CentreCrop(3)(image, mask)
    assert torch.equal(cropped_image, image[:, 1:4, 1:4]) and torch.equal(cropped_mask, mask[1:4, 1:4])
    with pytest.raises(ValueError, match=r"CentreCrop\(6\) is larger than the 5x6 image"):
        CentreCrop(6)(image, mask)
