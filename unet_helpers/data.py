"""Data in memory: seeded synthetic shapes and a dataset over arrays (files: ``folder.py``, ``image_file.py``, ``mask_file.py``).

The synthetic set is built in ``notebooks/06_training.ipynb``.

Shapes: ``N`` samples, ``C`` image channels, ``H, W`` height and width. Datasets return
``(image, mask)`` with ``image`` float32 ``(C, H, W)`` and ``mask`` int64 ``(H, W)``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .transforms import PairTransform

SHAPE_CLASSES = ("background", "circle", "square")


def _pick_colour(rng: np.random.Generator, background: np.ndarray, min_contrast: float) -> np.ndarray:
    """A random RGB colour at least ``min_contrast`` away from ``background`` in some channel."""
    while True:
        colour = rng.uniform(0, 1, 3)
        if np.abs(colour - background).max() >= min_contrast:
            return colour


def synthetic_segmentation(
    num_samples: int = 200,
    size: int | tuple[int, int] = 64,
    seed: int = 0,
    num_shapes: tuple[int, int] = (1, 3),
    radius: tuple[int, int] = (4, 12),
    noise: float = 0.02,
    foreground_fraction: float | None = None,
    binary: bool = False,
    min_contrast: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Circles and squares of random colours on random backgrounds, with Gaussian noise.

    Classes are 0 background, 1 circle, 2 square (``SHAPE_CLASSES``); colour says nothing about
    the class, so a model has to learn shape. Everything is drawn from ``seed``.

    Args:
        num_samples: number of images ``N``.
        size: ``S`` for square images or ``(H, W)``.
        seed: seed of the NumPy generator; the same seed gives the same arrays.
        num_shapes: inclusive range of shapes per image.
        radius: inclusive range of circle radius / square half-side in pixels (ignored when
            ``foreground_fraction`` is set).
        noise: standard deviation of the pixel noise.
        foreground_fraction: if set, shapes are sized so that on average this fraction of the
            pixels is foreground (e.g. ``0.05`` for the imbalanced exercise set).
        binary: merge circles and squares into one foreground class 1.
        min_contrast: every shape differs from its background by at least this in some channel,
            so no shape is invisible (an invisible shape would be label noise).

    Returns:
        ``images`` float32 ``(N, H, W, 3)`` in ``[0, 1]`` and ``masks`` int64 ``(N, H, W)``.
    """
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if foreground_fraction is not None and not 0 < foreground_fraction < 1:
        raise ValueError(f"foreground_fraction must be in (0, 1); got {foreground_fraction}")
    if min(height, width) < 8:
        raise ValueError(f"size must be at least 8x8; got {height}x{width}")
    rng = np.random.default_rng(seed)
    images = np.empty((num_samples, height, width, 3), dtype=np.float32)
    masks = np.zeros((num_samples, height, width), dtype=np.int64)
    yy, xx = np.mgrid[0:height, 0:width]  # (H, W) row and column of every pixel
    margin_y, margin_x = min(10, height // 4), min(10, width // 4)
    for i in range(num_samples):
        background = rng.uniform(0, 1, 3)
        image = np.broadcast_to(background, (height, width, 3)).copy()
        count = int(rng.integers(num_shapes[0], num_shapes[1] + 1))
        for _ in range(count):
            cls = int(rng.integers(1, 3))
            cy = int(rng.integers(margin_y, height - margin_y))
            cx = int(rng.integers(margin_x, width - margin_x))
            if foreground_fraction is None:
                r = float(rng.integers(radius[0], radius[1] + 1))
            else:  # area of this shape = fraction * H * W / count, jittered by +-50 %
                area = foreground_fraction * height * width / count * rng.uniform(0.5, 1.5)
                r = np.sqrt(area / np.pi) if cls == 1 else np.sqrt(area) / 2
            if cls == 1:
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            else:
                inside = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
            image[inside] = _pick_colour(rng, background, min_contrast)
            masks[i][inside] = 1 if binary else cls
        image += rng.normal(0, noise, image.shape)
        images[i] = np.clip(image, 0, 1)
    return images, masks


class ArrayDataset(Dataset):
    """A ``Dataset`` over in-memory arrays, e.g. the output of ``synthetic_segmentation``.

    Args:
        images: ``(N, H, W, C)`` (channels last, as from ``synthetic_segmentation``) or
            ``(N, H, W)`` grayscale; NumPy or torch, values already scaled.
        masks: ``(N, H, W)`` integer class ids.
        transform: optional ``f(image, mask) -> (image, mask)`` on tensors, e.g.
            ``transforms.RandomFlipRotate()``.

    Shape:
        - Item: image ``(C, H, W)`` float32, mask ``(H, W)`` int64
    """

    def __init__(self, images: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor, transform: PairTransform | None = None) -> None:
        images, masks = torch.as_tensor(np.asarray(images)), torch.as_tensor(np.asarray(masks))
        if images.ndim == 3:
            images = images.unsqueeze(-1)  # (N, H, W, 1)
        if images.ndim != 4 or masks.ndim != 3:
            raise ValueError(
                f"expected images (N, H, W, C) or (N, H, W) and masks (N, H, W); "
                f"got images {tuple(images.shape)} and masks {tuple(masks.shape)}"
            )
        if images.shape[:3] != masks.shape:
            raise ValueError(
                f"images {tuple(images.shape)} and masks {tuple(masks.shape)} disagree on (N, H, W); "
                "each image needs a mask of the same height and width"
            )
        if masks.is_floating_point():
            raise TypeError(f"masks must hold integer class ids; got dtype {masks.dtype}")
        self.images = images.permute(0, 3, 1, 2).float().contiguous()  # (N, C, H, W)
        self.masks = masks.long()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.images[index], self.masks[index]
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask


def split_indices(num_samples: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """Shuffled train/validation index lists (for independent samples; never for slices of one
    volume, which need a block split, see ``realdata/datasets.py``)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction}")
    order = np.random.default_rng(seed).permutation(num_samples).tolist()
    n_val = max(1, round(num_samples * val_fraction))
    return order[n_val:], order[:n_val]


def stack_dataset(dataset: Dataset, indices: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All (or the chosen) items of a dataset as two tensors ``(N, C, H, W)`` and ``(N, H, W)``."""
    indices = range(len(dataset)) if indices is None else indices
    pairs = [dataset[i] for i in indices]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
