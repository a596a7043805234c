"""Scoring whole images by tiles: predictions and one confusion matrix over a set.

Built for ``notebooks/09_real_data.ipynb``, where 1024x1024 ssTEM slices are predicted by
``predict_tiled`` (lesson 08) and scored class by class. The counts of every image go into one
``ConfusionMatrix`` (lesson 05), so a small image weighs as much as its pixels, never as much as a
whole large one, and IoU is never an average of per-image IoUs.

Shapes: dataset items ``(image (C, H, W), mask (H, W))``; predictions ``(H, W)`` class ids.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn as nn

from ..inference import predict_tiled
from ..metrics import ConfusionMatrix


def tiled_confusion(
    model: nn.Module,
    dataset: Iterable,
    num_classes: int,
    tile: int = 256,
    overlap: float = 0.25,
    blend: str = "gaussian",
    ignore_index: int | None = None,
) -> tuple[list[torch.Tensor], ConfusionMatrix]:
    """Predict every image of ``dataset`` tile by tile and count all of them into one matrix.

    Args:
        model: the network (``predict_tiled`` puts it in eval mode and restores its mode).
        dataset: items ``(image, mask)``, e.g. ``sstem_dataset("val")``; images may differ in size.
        num_classes: ``K``.
        tile, overlap, blend: passed to ``predict_tiled``.
        ignore_index: target value left out of the counts.

    Returns:
        ``(preds, matrix)``: one ``(H, W)`` int64 prediction per image, and the ``ConfusionMatrix``
        of all of them (``matrix.iou()`` is per class, NaN for a class absent from every mask and
        every prediction).

    Examples::

        >>> from unet_helpers import UNet
        >>> data = [(torch.rand(1, 40, 52), torch.randint(0, 3, (40, 52))), (torch.rand(1, 33, 47), torch.zeros(33, 47, dtype=torch.long))]
        >>> preds, matrix = tiled_confusion(UNet(1, 3, base=4, depth=2), data, 3, tile=16)
        >>> [tuple(p.shape) for p in preds], int(matrix.matrix.sum())
        ([(40, 52), (33, 47)], 3631)
    """
    matrix = ConfusionMatrix(num_classes, ignore_index)
    preds = []
    for image, mask in dataset:
        ids = predict_tiled(model, image, tile=tile, overlap=overlap, blend=blend)  # (H, W)
        matrix.update(ids.unsqueeze(0), torch.as_tensor(mask).unsqueeze(0))  # (1, H, W): the counts add up
        preds.append(ids)
    return preds, matrix
