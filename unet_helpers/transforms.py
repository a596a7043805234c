"""Paired augmentations: the same random change applied to an image and its mask.

Flips, quarter turns and crops are built in ``notebooks/06_training.ipynb``; elastic deformation,
the U-Net paper's key augmentation, in ``notebooks/09_real_data.ipynb``. The ``train`` command and
the real-data loaders assemble them with ``training_transform``.

Randomness comes from torch's generator, which ``seed_everything`` seeds and ``DataLoader``
re-seeds per worker (NumPy's global generator is copied unchanged into every worker, which repeats
the same "random" crops).

Shapes: image ``(C, H, W)`` float, mask ``(H, W)`` integer class ids.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import get_worker_info

from .validate import require_tensor

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


class CentreCrop:
    """The central ``size x size`` window of an image/mask pair (deterministic, for validation)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        if self.size > min(height, width):
            raise ValueError(
                f"CentreCrop({self.size}) is larger than the {height}x{width} image; use a smaller crop "
                "or validate on whole images"
            )
        top, left = (height - self.size) // 2, (width - self.size) // 2
        return image[..., top : top + self.size, left : left + self.size], mask[..., top : top + self.size, left : left + self.size]


# -- elastic deformation ----------------------------------------------------------------------------
# Ronneberger et al. (2015): random displacement vectors on a coarse 3x3 grid, drawn from a Gaussian
# with 10 px standard deviation, interpolated bicubically to one displacement per pixel. Tissue really
# does deform like this, so the network learns invariance to it from very few images. The same field
# warps the image (bilinear) and the mask (nearest neighbour, so every output pixel holds a class id
# that was in the input).

PADDING_MODES = ("reflection", "border")


def _check_sample(image: torch.Tensor, mask: torch.Tensor) -> None:
    require_tensor(image, "image")
    require_tensor(mask, "mask")
    if image.ndim != 3 or mask.ndim != 2:
        raise ValueError(
            f"expected image (C, H, W) and mask (H, W); got image {tuple(image.shape)} and mask {tuple(mask.shape)}. "
            "Hint: apply the transform to one sample, before batching"
        )
    if image.shape[-2:] != mask.shape:
        raise ValueError(f"image {tuple(image.shape)} and mask {tuple(mask.shape)} differ in (H, W)")
    if not image.is_floating_point():
        raise TypeError(f"image must be a float tensor; got dtype {image.dtype}. Hint: image.float()")
    if mask.is_floating_point() or mask.dtype == torch.bool:
        raise TypeError(f"mask must hold integer class ids; got dtype {mask.dtype}. Hint: mask.long()")
    if min(mask.shape) < 2:
        raise ValueError(f"elastic deformation needs H, W >= 2; got {tuple(mask.shape)}")


def elastic_warp(
    image: torch.Tensor, mask: torch.Tensor, displacement: torch.Tensor, padding_mode: str = "reflection"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp image and mask by one displacement field: ``out[y, x] = in[y + dy, x + dx]``.

    Args:
        image: float image. mask: integer class ids.
        displacement: ``(dy, dx)`` in pixels for every output pixel.
        padding_mode: ``"reflection"`` (mirror at the edge pixels) or ``"border"`` (repeat them),
            for positions that fall outside the image.

    Shape:
        - ``image``: ``(C, H, W)``; ``mask``: ``(H, W)``; ``displacement``: ``(2, H, W)``
        - Output: the same shapes and dtypes as ``image`` and ``mask``

    Examples::

        >>> image, mask = torch.rand(1, 6, 9), torch.randint(0, 3, (6, 9))
        >>> out, out_mask = elastic_warp(image, mask, torch.zeros(2, 6, 9))
        >>> torch.allclose(out, image, atol=1e-5), torch.equal(out_mask, mask)
        (True, True)
    """
    _check_sample(image, mask)
    height, width = mask.shape
    require_tensor(displacement, "displacement")
    if displacement.shape != (2, height, width):
        raise ValueError(f"displacement must be (2, H, W) = (2, {height}, {width}); got {tuple(displacement.shape)}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}; got {padding_mode!r}")
    rows = torch.arange(height, dtype=torch.float32).view(height, 1)  # (H, 1)
    cols = torch.arange(width, dtype=torch.float32).view(1, width)  # (1, W)
    y = (rows + displacement[0].float()) * (2 / (height - 1)) - 1  # (H, W), -1 = first row centre
    x = (cols + displacement[1].float()) * (2 / (width - 1)) - 1  # (H, W)
    grid = torch.stack([x, y], dim=-1).unsqueeze(0)  # (1, H, W, 2), grid_sample wants (x, y)
    options = {"padding_mode": padding_mode, "align_corners": True}
    warped = F.grid_sample(image.unsqueeze(0), grid.to(image.dtype), mode="bilinear", **options)[0]  # (C, H, W)
    labels = F.grid_sample(mask[None, None].double(), grid.double(), mode="nearest", **options)[0, 0]  # (H, W)
    return warped, labels.round().to(mask.dtype)


class ElasticDeform:
    """Random elastic deformation of an image and its mask (paired transform).

    Args:
        grid_size: the coarse grid is ``grid_size x grid_size`` points spread over the image,
            corners included (the paper: 3).
        std: standard deviation of the displacement at each grid point, in pixels (the paper: 10).
        padding_mode: see ``elastic_warp``.
        generator: a seeded ``torch.Generator`` for reproducible draws; default torch's global one.
            Inside ``DataLoader`` workers each worker gets its own stream derived from this
            generator's seed and the worker's seed (which changes every epoch), so workers and
            epochs never repeat each other's deformations.

    Shape:
        - ``image``: ``(C, H, W)`` float; ``mask``: ``(H, W)`` integer; outputs the same

    Examples::

        >>> deform = ElasticDeform(generator=torch.Generator().manual_seed(0))
        >>> image, mask = deform(torch.rand(1, 64, 48), torch.randint(0, 2, (64, 48)))
        >>> tuple(image.shape), tuple(mask.shape)
        ((1, 64, 48), (64, 48))
    """

    def __init__(
        self,
        grid_size: int = 3,
        std: float = 10.0,
        padding_mode: str = "reflection",
        generator: torch.Generator | None = None,
    ) -> None:
        if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 2:
            raise ValueError(f"grid_size must be an int >= 2 (the paper uses 3); got {grid_size!r}")
        if not std >= 0:
            raise ValueError(f"std must be >= 0 pixels (the paper uses 10); got {std}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}; got {padding_mode!r}")
        self.grid_size, self.std, self.padding_mode, self.generator = grid_size, float(std), padding_mode, generator
        self._worker_seed: int | None = None
        self._worker_generator: torch.Generator | None = None

    def _draws(self) -> torch.Generator | None:
        """The generator to draw from: ``generator`` itself, or in a ``DataLoader`` worker a stream
        of its own (a copy of ``generator`` would repeat the same draws in every worker and epoch)."""
        info = get_worker_info()
        if self.generator is None or info is None:
            return self.generator
        if self._worker_seed != info.seed:
            self._worker_seed = info.seed
            seed = (self.generator.initial_seed() * 1_000_003 + info.seed) % 2**63
            self._worker_generator = torch.Generator().manual_seed(seed)
        return self._worker_generator

    def sample_displacement(self, height: int, width: int) -> torch.Tensor:
        """A random field: Gaussian vectors on the coarse grid, bicubically interpolated.

        Shape:
            - Output: ``(2, height, width)`` float32, ``(dy, dx)`` in pixels; at the grid points
              (rows ``i * (height - 1) / (grid_size - 1)``) it equals the drawn vectors
        """
        size = (2, self.grid_size, self.grid_size)
        coarse = torch.randn(size, generator=self._draws()) * self.std  # (2, g, g)
        dense = F.interpolate(coarse.unsqueeze(0), size=(height, width), mode="bicubic", align_corners=True)
        return dense[0]  # (2, H, W)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_sample(image, mask)
        displacement = self.sample_displacement(*mask.shape)
        return elastic_warp(image, mask, displacement, self.padding_mode)

    def __repr__(self) -> str:
        return f"ElasticDeform(grid_size={self.grid_size}, std={self.std}, padding_mode={self.padding_mode!r})"


def training_transform(
    crop: int | tuple[int, int] | None = None,
    augment: bool = False,
    elastic: bool = False,
    transform: PairTransform | None = None,
) -> PairTransform | None:
    """The usual training pipeline: ``RandomCrop(crop)``, ``RandomFlipRotate()`` if ``augment``,
    ``ElasticDeform()`` if ``elastic``, then ``transform``; ``None`` when nothing is asked for.

    Cropping first keeps the other transforms cheap on large slices.

    Shape:
        - image ``(C, H, W)``, mask ``(H, W)`` in; image ``(C, h, w)``, mask ``(h, w)`` out (``(h, w)`` = ``crop``)
    """
    steps = [RandomCrop(crop) if crop else None, RandomFlipRotate() if augment else None,
             ElasticDeform() if elastic else None, transform]
    steps = [step for step in steps if step is not None]
    return None if not steps else steps[0] if len(steps) == 1 else Compose(steps)
