"""Inference: ``predict`` for batches and ``predict_tiled`` for images of any size.

Tiled inference is built step by step in ``notebooks/08_large_images.ipynb``.

``predict_tiled`` cuts the image into overlapping tiles (the last row and column of tiles flush
with the border, so no tile hangs over the edge), runs them in batches, and blends the overlapping
class probabilities with a weight window: ``"gaussian"`` trusts tile centres more than tile edges
(where a tile sees the least context), ``"uniform"`` averages, ``"none"`` lets the last tile
overwrite (to show the seams blending removes). Memory grows with one batch of tiles plus a
``(K, H, W)`` accumulator, not with the whole image's activations.

Speed on the CPU: both functions hand the model its batch in channels-last memory layout
(``channels_last=True``, the default; ``runtime.in_layout``). The values are the same; only their
order in memory changes, to the one oneDNN's convolutions prefer (measured in ``BENCHMARKS.md``).
Class ids come from ``max(dim).indices``, which is ``argmax`` (the first index on ties, NaN counted
as largest) but faster along the class axis of an ``(N, K, H, W)`` tensor. ``fuse_batchnorm``
makes an inference copy of a model with every BatchNorm folded into the convolution before it
(one pass over each feature map less).

Shapes: images ``(N, C, H, W)`` or one image ``(C, H, W)``; ``K`` classes.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .runtime import in_layout, model_device
from .validate import require_tensor

BLEND_MODES = ("gaussian", "uniform", "none")


def scores_to_probs(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities from logits: softmax over ``K``, or for one-channel binary logits
    ``[1 - sigmoid, sigmoid]``.

    Shape:
        - Input: ``(N, K, H, W)`` (or ``(N, 1, H, W)``); Output: ``(N, max(K, 2), H, W)``
    """
    if logits.shape[1] == 1:
        foreground = torch.sigmoid(logits.float())
        return torch.cat([1 - foreground, foreground], dim=1)  # (N, 2, H, W)
    return logits.float().softmax(dim=1)


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with each BatchNorm folded into the convolution before it.

    In eval mode, BatchNorm is a fixed per-channel affine map,
    ``y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta``; applied to a convolution's
    output it equals one convolution with rescaled weights and a bias. The copy computes the same
    outputs (up to float rounding) with one pass over each feature map less. Pairs are folded where
    a ``Conv2d`` is directly followed by a ``BatchNorm2d`` in an ``nn.Sequential`` (every
    ``DoubleConv``); anything else is copied as it is.

    The copy is for inference only: training it would train a network without BatchNorm.

    Args:
        model: any network; it is not modified.

    Returns:
        The folded copy, in eval mode.

    Examples::

        >>> from unet_helpers import UNet
        >>> fused = fuse_batchnorm(UNet(3, 2, base=4, depth=2))
        >>> sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        0
    """
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats:
                module[i] = fuse_conv_bn_eval(conv, norm)  # weights * gamma / std, plus a bias
                module[i + 1] = nn.Identity()
    return fused


def _as_batch(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    require_tensor(images, "images")
    if images.ndim == 3:
        return images.unsqueeze(0), True
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or one image (C, H, W); got shape {tuple(images.shape)}")
    return images, False


def predict(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 8,
    return_probs: bool = False,
    channels_last: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Class ids (and optionally probabilities) for a batch of images, in eval mode.

    The model is put in ``eval()`` (BatchNorm uses its running statistics) and run under
    ``torch.inference_mode()``; its previous mode is restored afterwards.

    Args:
        model: the network.
        images: a batch of images or one image.
        batch_size: images per forward pass.
        return_probs: also return the class probabilities.
        channels_last: on the CPU, run each batch in channels-last memory layout (faster; the same
            result up to float rounding, see the module docstring).

    Shape:
        - ``images``: ``(N, C, H, W)`` or ``(C, H, W)``
        - Output: ids ``(N, H, W)`` int64 (``(H, W)`` for one image), probs ``(N, K, H, W)`` float32,
          on the CPU
    """
    batch, single = _as_batch(images)
    device = model_device(model)
    was_training = model.training
    model.eval()
    probs = []
    try:
        with torch.inference_mode():
            for lo in range(0, batch.shape[0], batch_size):
                chunk = in_layout(batch[lo : lo + batch_size].to(device), channels_last)
                probs.append(scores_to_probs(model(chunk)).cpu())
    finally:
        model.train(was_training)
    probs = torch.cat(probs).contiguous()  # (N, K, H, W), in the usual layout whatever the model's
    ids = probs.max(dim=1).indices  # (N, H, W); = argmax(dim=1), faster
    if single:
        probs, ids = probs[0], ids[0]
    return (ids, probs) if return_probs else ids


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles along one axis: every ``stride``, the last one flush with the end.

    >>> tile_starts(10, 4, 3)
    [0, 3, 6]
    >>> tile_starts(11, 4, 3)
    [0, 3, 6, 7]
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def tile_boxes(height: int, width: int, tile: int | tuple[int, int], overlap: float) -> list[tuple[int, int, int, int]]:
    """The ``(y, x, h, w)`` of every tile ``predict_tiled`` runs, in the order it runs them.

    Tiles are ``tile`` (clipped to the image) with a stride of ``floor(tile * (1 - overlap))``;
    the last row and column are flush with the border (``tile_starts``).

    >>> tile_boxes(300, 200, 128, 0.25)[:3]
    [(0, 0, 128, 128), (0, 72, 128, 128), (96, 0, 128, 128)]
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1); got {overlap}")
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    tile_h, tile_w = min(tile_h, height), min(tile_w, width)
    stride_h = max(1, math.floor(tile_h * (1 - overlap)))
    stride_w = max(1, math.floor(tile_w * (1 - overlap)))
    return [
        (y, x, tile_h, tile_w)
        for y in tile_starts(height, tile_h, stride_h)
        for x in tile_starts(width, tile_w, stride_w)
    ]


def blend_window(height: int, width: int, mode: str = "gaussian", sigma_scale: float = 0.125) -> torch.Tensor:
    """Weight of each pixel of a tile when overlapping tiles are averaged.

    ``"gaussian"``: a 2-D Gaussian centred on the tile with ``sigma = sigma_scale * size`` (as
    MONAI's sliding window), floored at a small positive value so that pixels only one tile
    covers (at the image border) still count. ``"uniform"`` and ``"none"``: all ones.

    Shape:
        - Output: ``(height, width)`` float32
    """
    if mode not in BLEND_MODES:
        raise ValueError(f"blend must be one of {BLEND_MODES}; got {mode!r}")
    if mode != "gaussian":
        return torch.ones(height, width)

    def axis(n: int) -> torch.Tensor:
        centre, sigma = (n - 1) / 2, max(sigma_scale * n, 1e-3)
        x = torch.arange(n, dtype=torch.float32)
        return torch.exp(-((x - centre) ** 2) / (2 * sigma**2))

    window = axis(height)[:, None] * axis(width)[None, :]  # (height, width)
    return window.clamp(min=1e-3 * float(window.max()))


def predict_tiled(
    model: nn.Module,
    image: torch.Tensor,
    tile: int | tuple[int, int] = 256,
    overlap: float = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
    return_probs: bool = False,
    channels_last: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Sliding-window prediction for one image of any size.

    Args:
        model: the network (put in eval mode here; its mode is restored afterwards).
        image: one image.
        tile: tile size ``S`` or ``(h, w)``; an image smaller than a tile is run whole.
        overlap: fraction of a tile shared with its neighbour, in ``[0, 1)``.
        blend: ``"gaussian"``, ``"uniform"`` or ``"none"`` (see module docstring).
        batch_size: tiles per forward pass (memory vs speed).
        return_probs: also return the blended class probabilities.
        channels_last: on the CPU, run the tiles in channels-last memory layout (see ``predict``).

    Shape:
        - ``image``: ``(C, H, W)`` (or ``(1, C, H, W)``)
        - Output: ids ``(H, W)`` int64; probs ``(K, H, W)`` float32; on the CPU

    Examples::

        >>> from unet_helpers import UNet
        >>> ids = predict_tiled(UNet(1, 2, base=4), torch.rand(1, 300, 200), tile=128)
        >>> ids.shape
        torch.Size([300, 200])
    """
    require_tensor(image, "image")
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3:
        raise ValueError(f"predict_tiled takes one image (C, H, W); got shape {tuple(image.shape)}. Hint: loop over a batch")
    height, width = image.shape[-2:]
    boxes = tile_boxes(height, width, tile, overlap)
    tile_h, tile_w = boxes[0][2:]
    origins = [(y, x) for y, x, _, _ in boxes]
    window = blend_window(tile_h, tile_w, blend)  # (h, w)
    device = model_device(model)
    was_training = model.training
    model.eval()
    total = weight = None
    try:
        with torch.inference_mode():
            for lo in range(0, len(origins), batch_size):
                chunk = origins[lo : lo + batch_size]
                tiles = torch.stack([image[:, y : y + tile_h, x : x + tile_w] for y, x in chunk])  # (B, C, h, w)
                probs = scores_to_probs(model(in_layout(tiles.to(device), channels_last))).cpu().contiguous()  # (B, K, h, w)
                if total is None:
                    with torch.inference_mode(False):  # ordinary tensors: the caller may use them with autograd,
                        total = torch.zeros(probs.shape[1], height, width)  # (K, H, W)  and they are
                        weight = torch.zeros(height, width)  # (H, W)  divided in place below
                for (y, x), p in zip(chunk, probs):
                    region = (slice(None), slice(y, y + tile_h), slice(x, x + tile_w))
                    if blend == "none":
                        total[region] = p  # the last tile wins: seams stay visible
                    else:
                        total[region].addcmul_(p, window)  # += p * window, without a temporary
                        weight[region[1:]] += window
    finally:
        model.train(was_training)
    probs = total if blend == "none" else total.div_(weight)  # in place: no second (K, H, W) array
    ids = probs.max(dim=0).indices  # (H, W); = argmax(dim=0), faster
    return (ids, probs) if return_probs else ids
