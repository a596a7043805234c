"""Paired augmentations: the same random change applied to an image and its mask.

Used by ``notebooks/06_training.ipynb`` and the ``train`` command. Randomness comes from torch's
generator, which ``seed_everything`` seeds and ``DataLoader`` re-seeds per worker (NumPy's global
generator is copied unchanged into every worker, which repeats the same "random" crops).

Shapes: image ``(C, H, W)``, mask ``(H, W)``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

PairTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class Compose:
    """Apply paired transforms in order."""

    def __init__(self, transforms: Sequence[PairTransform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for transform in self.transforms:
            image, mask = transform(image, mask)
        return image, mask


class RandomFlipRotate:
    """Random horizontal/vertical flips and, for square inputs, a random multiple of 90 degrees.

    These keep every pixel exact (no interpolation), so masks stay valid class ids.
    """

    def __init__(self, flip: bool = True, rotate: bool = True) -> None:
        self.flip, self.rotate = flip, rotate

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.flip and torch.rand(()) < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        if self.flip and torch.rand(()) < 0.5:
            image, mask = image.flip(-2), mask.flip(-2)
        if self.rotate and image.shape[-1] == image.shape[-2]:
            quarter_turns = int(torch.randint(0, 4, ()))
            image, mask = image.rot90(quarter_turns, (-2, -1)), mask.rot90(quarter_turns, (-2, -1))
        return image.contiguous(), mask.contiguous()


class RandomCrop:
    """Cut a random ``size`` window out of the pair (for training on large images).

    Args:
        size: ``S`` or ``(h, w)``; must not exceed the image.
    """

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (h, w), (height, width) = self.size, image.shape[-2:]
        if h > height or w > width:
            raise ValueError(
                f"RandomCrop({h}x{w}) is larger than the image ({height}x{width}); "
                "use a smaller crop or skip cropping for small images"
            )
        top = int(torch.randint(0, height - h + 1, ()))
        left = int(torch.randint(0, width - w + 1, ()))
        return image[..., top : top + h, left : left + w], mask[..., top : top + h, left : left + w]
