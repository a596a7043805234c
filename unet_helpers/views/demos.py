"""Two demos of what layers and tiling do to an image: no plotting, no widgets, unit-tested.

- the checkerboard of transposed convolutions (``notebooks/02_building_blocks.ipynb``, up-sampling explorer)
- tile grids and seams (``notebooks/08_large_images.ipynb``, tiling explorer); the tile grid itself
  is ``inference.tile_boxes``, the one ``predict_tiled`` runs.

Shapes: ``K`` classes, ``H, W`` height and width.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..inference import predict, predict_tiled, tile_boxes

UPSAMPLE_MODES = ("transpose", "bilinear")
WEIGHT_KINDS = ("ones", "random")


def _kernel_weights(kernel: int, weights: str, seed: int) -> torch.Tensor:
    """A ``(1, 1, kernel, kernel)`` kernel: all ones, or seeded weights uniform in ``[0.5, 1.5)``."""
    if weights == "ones":
        return torch.ones(1, 1, kernel, kernel)
    generator = torch.Generator().manual_seed(seed)
    return 0.5 + torch.rand(1, 1, kernel, kernel, generator=generator)


def upsample_pattern(
    mode: str, kernel: int, stride: int, size: int = 8, weights: str = "ones", seed: int = 0
) -> torch.Tensor:
    """What an up-sampling layer makes of a constant all-one input.

    ``"transpose"``: ``ConvTranspose2d(1, 1, kernel, stride)``. With all-one weights every output
    pixel counts the input pixels whose kernel footprint covers it: inside, the count is even only
    when ``stride`` divides ``kernel`` (3/2 gives 1-2-1-2 rows: the checkerboard of uneven overlap).
    With weights that differ from each other (``weights="random"``), output pixel ``y`` sums the
    taps ``a`` with ``y = i * stride + a``, a different set for each ``y mod stride``: the output
    repeats with period ``stride`` for *every* kernel, 2 and 4 included, unless the taps of each
    phase happen to add up to the same value.

    ``"bilinear"``: ``Upsample`` by ``stride``, then a ``kernel x kernel`` convolution with
    ``padding="same"``: a constant stays constant inside, whatever the weights.

    Args:
        mode: ``"transpose"`` or ``"bilinear"``.
        kernel, stride: of the transposed convolution (or of the convolution after bilinear).
        size: side of the constant input.
        weights: ``"ones"`` or ``"random"`` (seeded, uniform in ``[0.5, 1.5)``, so values stay positive).
        seed: seed of the random weights.

    Shape:
        - Output: ``(L, L)`` float32 with ``L = (size - 1) * stride + kernel`` (transpose) or
          ``size * stride`` (bilinear)

    Examples::

        >>> upsample_pattern("transpose", kernel=3, stride=2, size=3)[2]  # rows alternate too
        tensor([2., 2., 4., 2., 4., 2., 2.])
        >>> upsample_pattern("transpose", kernel=4, stride=2, size=3)[3]
        tensor([2., 2., 4., 4., 4., 4., 2., 2.])
        >>> len(set(upsample_pattern("transpose", 2, 2, size=3, weights="random").flatten().tolist()))
        4

    Built in ``notebooks/02_building_blocks.ipynb`` (up-sampling explorer).
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"mode must be one of {UPSAMPLE_MODES}; got {mode!r}")
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {WEIGHT_KINDS}; got {weights!r}")
    for name, value in (("kernel", kernel), ("stride", stride), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    x = torch.ones(1, 1, size, size)
    w = _kernel_weights(kernel, weights, seed)  # (1, 1, k, k)
    with torch.no_grad():
        if mode == "transpose":
            return F.conv_transpose2d(x, w, stride=stride)[0, 0]  # (L, L)
        up = F.interpolate(x, scale_factor=stride, mode="bilinear", align_corners=False)  # (1, 1, L, L)
        before = (kernel - 1) // 2  # "same" padding, the extra pixel of an even kernel after
        padded = F.pad(up, (before, kernel - 1 - before, before, kernel - 1 - before))
        return F.conv2d(padded, w)[0, 0]  # (L, L)


def pattern_interior(mode: str, kernel: int, stride: int, size: int = 8) -> slice:
    """Rows (and columns) of ``upsample_pattern`` that no image border affects.

    Transposed: output ``y`` has all ``kernel`` taps inside for ``kernel - 1 <= y <= (size - 1) * stride``.
    Bilinear + ``same`` conv: the padding ``(kernel - 1) // 2`` before and the rest after.
    """
    if mode == "transpose":
        lo, hi = kernel - 1, (size - 1) * stride + 1
    else:
        lo, hi = (kernel - 1) // 2, size * stride - (kernel - 1 - (kernel - 1) // 2)
    if hi <= lo:
        raise ValueError(f"size={size} is too small for kernel={kernel}, stride={stride}: no interior; use a larger size")
    return slice(lo, hi)


def unevenness(pattern: torch.Tensor) -> float:
    """``(max - min) / mean`` of a pattern: 0 for an even one; 1 for counts alternating 1-2."""
    mean = float(pattern.mean())
    return float(pattern.max() - pattern.min()) / mean if mean > 0 else math.inf


# -- tiles and seams --------------------------------------------------------------------------------


def coverage_map(height: int, width: int, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """How many tiles cover each pixel; ``(H, W)`` int64."""
    count = np.zeros((height, width), dtype=np.int64)
    for y, x, h, w in boxes:
        count[y : y + h, x : x + w] += 1
    return count


def tile_edges(height: int, width: int, boxes: list[tuple[int, int, int, int]]) -> tuple[list[int], list[int]]:
    """Rows and columns where a tile starts or ends inside the image (where seams can appear).

    A row ``e`` in the list means the pair of rows ``(e - 1, e)`` straddles a tile edge.
    """
    rows = sorted({e for y, _, h, _ in boxes for e in (y, y + h) if 0 < e < height})
    cols = sorted({e for _, x, _, w in boxes for e in (x, x + w) if 0 < e < width})
    return rows, cols


def seam_strength(probs: torch.Tensor, whole: torch.Tensor, boxes: list[tuple[int, int, int, int]]) -> float:
    """How much tiling changes the step between neighbouring pixels across tile edges.

    ``d = probs - whole`` is the tiling error. Across a seam ``d`` jumps; inside a tile it varies
    smoothly. The measure is the mean, over neighbouring pixel pairs straddling a tile edge, of
    half the L1 norm (over classes) of that jump: 0 = seamless, whatever the image content.
    NaN when there is no edge inside the image (one tile).

    Shape:
        - ``probs``, ``whole``: ``(K, H, W)`` tiled and whole-image probabilities
    """
    height, width = probs.shape[-2:]
    rows, cols = tile_edges(height, width, boxes)
    if not rows and not cols:
        return math.nan
    d = probs - whole  # (K, H, W)
    jumps = [0.5 * (d[:, e] - d[:, e - 1]).abs().sum(0) for e in rows]  # each (W,)
    jumps += [0.5 * (d[:, :, e] - d[:, :, e - 1]).abs().sum(0) for e in cols]  # each (H,)
    return float(torch.cat(jumps).mean())


def tiled_vs_whole(
    model: nn.Module, image: torch.Tensor, tile: int, overlap: float, blend: str = "gaussian"
) -> dict[str, object]:
    """Tiled and whole-image probabilities of one image, their difference and the seam strength.

    Returns:
        ``{"probs"  (K, H, W) tiled, "whole" (K, H, W), "difference" (H, W) half L1 distance,
        "boxes", "seam_strength"}``.

    Built in ``notebooks/08_large_images.ipynb`` (tiling explorer).
    """
    _, whole = predict(model, image, return_probs=True)  # (K, H, W)
    _, probs = predict_tiled(model, image, tile=tile, overlap=overlap, blend=blend, return_probs=True)
    boxes = tile_boxes(*image.shape[-2:], tile, overlap)
    return {"probs": probs, "whole": whole, "difference": 0.5 * (probs - whole).abs().sum(0),
            "boxes": boxes, "seam_strength": seam_strength(probs, whole, boxes)}
