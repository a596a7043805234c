"""The plain logic behind the interactive views: no plotting, no widgets, all unit-tested.

Each section serves one view of ``views/widgets/`` and the lesson that hosts it:

- losses for a synthetic binary prediction (``notebooks/04_losses.ipynb``, loss playground)
- mask perturbations and their metrics (``notebooks/05_metrics.ipynb``, metric playground)
- per-image scores and a worst-first order (``notebooks/06_training.ipynb``, mask explorer)

The checkerboard and tiling demos live in ``demos.py``.

Shapes: ``N`` images, ``K`` classes, ``H, W`` height and width; masks hold class ids.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from ..boundary import boundary_f1
from ..losses import combined_loss
from ..metrics import ConfusionMatrix
from ..validate import as_class_ids

# -- losses for a synthetic prediction -----------------------------------------------------------


def _check_unit(value: float, name: str, low_open: bool, high_open: bool) -> float:
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value < 1 if high_open else value <= 1
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok and high_ok):
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")
    return float(value)


def synthetic_binary_case(
    foreground_fraction: float, quality: float, size: int = 64, confidence: float = 0.99
) -> tuple[torch.Tensor, torch.Tensor]:
    """A disc of foreground and a model that finds only part of it.

    The target is the ``round(fraction * size**2)`` pixels closest to the image centre. The model
    gives probability ``confidence`` to the right class on the background and on the found
    ``quality`` share of the object (its centre); on the rest of the object it is just as sure
    of the wrong class. ``quality`` is therefore the recall of the object.

    Even a perfect ``quality=1`` keeps ``1 - confidence`` of foreground probability on every
    background pixel. For a small object that soft mass rivals the object itself, so soft Dice
    stays above 0: lower ``confidence`` to see it grow.

    Args:
        foreground_fraction: share of foreground pixels, in ``(0, 1)``.
        quality: share of the object the model finds, in ``[0, 1]``.
        size: image side ``S``.
        confidence: probability the model gives to its chosen class, in ``(0.5, 1)``.

    Shape:
        - Output: logits ``(1, 2, S, S)`` (softmax gives exactly the probabilities above),
          target ``(1, S, S)`` int64

    Built in ``notebooks/04_losses.ipynb`` (loss playground).
    """
    fraction = _check_unit(foreground_fraction, "foreground_fraction", True, True)
    quality = _check_unit(quality, "quality", False, False)
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1) (0.5 would be a coin flip); got {confidence!r}")
    yy, xx = np.mgrid[0:size, 0:size]
    centre = (size - 1) / 2
    order = np.argsort(((yy - centre) ** 2 + (xx - centre) ** 2).ravel(), kind="stable")  # (S*S,)
    n_object = max(1, round(fraction * size * size))
    n_found = round(quality * n_object)
    target = np.zeros(size * size, dtype=np.int64)
    target[order[:n_object]] = 1
    p_foreground = np.full(size * size, 1 - confidence)  # the model says "background" everywhere ...
    p_foreground[order[:n_found]] = confidence  # ... except on the part of the object it found
    p = torch.from_numpy(p_foreground.reshape(1, size, size))
    logits = torch.stack([torch.log1p(-p), torch.log(p)], dim=1).float()  # (1, 2, S, S)
    return logits, torch.from_numpy(target.reshape(1, size, size))


def loss_values(
    foreground_fraction: float, quality: float, size: int = 64, confidence: float = 0.99, lam: float = 1.0
) -> dict[str, float]:
    """Cross-entropy, Dice loss and ``CE + lam * Dice`` of ``synthetic_binary_case``.

    Returns:
        ``{"ce", "dice", "combined"}`` computed by ``unet_helpers.losses``.

    Built in ``notebooks/04_losses.ipynb`` (loss playground).
    """
    logits, target = synthetic_binary_case(foreground_fraction, quality, size, confidence)
    total, parts = combined_loss(logits, target, lam=lam)  # parts: pixel_cross_entropy, dice_loss
    return {"ce": parts["ce"], "dice": parts["dice"], "combined": float(total)}


def loss_sweep(
    foreground_fraction: float, qualities: np.ndarray, size: int = 64, confidence: float = 0.99, lam: float = 1.0
) -> dict[str, np.ndarray]:
    """``loss_values`` for each quality in ``qualities`` ``(Q,)``; returns arrays ``(Q,)`` per key."""
    rows = [loss_values(foreground_fraction, float(q), size, confidence, lam) for q in qualities]
    return {key: np.array([row[key] for row in rows]) for key in ("ce", "dice", "combined")}


# -- mask perturbations and their metrics ---------------------------------------------------------


def shift_mask(mask: np.ndarray, dy: int, dx: int, fill: int = 0) -> np.ndarray:
    """Move the mask content ``dy`` rows down and ``dx`` columns right; vacated pixels get ``fill``.

    Shape:
        - ``mask``: ``(H, W)``; Output: ``(H, W)`` int64
    """
    mask = as_class_ids(mask)
    out = np.full_like(mask, fill)
    height, width = mask.shape
    if abs(dy) >= height or abs(dx) >= width:
        return out  # everything moved out of the frame
    src_y, dst_y = slice(max(0, -dy), min(height, height - dy)), slice(max(0, dy), min(height, height + dy))
    src_x, dst_x = slice(max(0, -dx), min(width, width - dx)), slice(max(0, dx), min(width, width + dx))
    out[dst_y, dst_x] = mask[src_y, src_x]
    return out


def _foreground_classes(mask: np.ndarray, background: int) -> list[int]:
    return [int(k) for k in np.unique(mask) if k != background]


def grow_classes(mask: np.ndarray, pixels: int, background: int = 0) -> np.ndarray:
    """Dilate every non-background class by ``pixels`` steps (4-neighbours) into the background.

    A background pixel within city-block distance ``pixels`` of a class joins it (of several
    classes, the lowest id wins). Other classes are never overwritten.
    """
    mask = as_class_ids(mask)
    out = mask.copy()
    if pixels <= 0:
        return out
    for k in sorted(_foreground_classes(mask, background), reverse=True):  # lowest id written last
        grown = ndimage.binary_dilation(mask == k, iterations=pixels)  # (H, W) bool
        out[grown & (mask == background)] = k
    return out


def shrink_classes(mask: np.ndarray, pixels: int, background: int = 0) -> np.ndarray:
    """Erode every non-background class by ``pixels`` steps: a pixel stays only if every pixel
    within city-block distance ``pixels`` (inside the image) has its class; the rest becomes
    background. The image border does not erode (as in ``boundary.py``)."""
    mask = as_class_ids(mask)
    out = mask.copy()
    if pixels <= 0:
        return out
    for k in _foreground_classes(mask, background):
        kept = ndimage.binary_erosion(mask == k, iterations=pixels, border_value=1)
        out[(mask == k) & ~kept] = background
    return out


def drop_small_objects(mask: np.ndarray, min_size: int, background: int = 0) -> np.ndarray:
    """Set every 4-connected object (per class) with fewer than ``min_size`` pixels to background."""
    mask = as_class_ids(mask)
    out = mask.copy()
    for k in _foreground_classes(mask, background):
        labels, count = ndimage.label(mask == k)  # (H, W) object ids 1..count
        sizes = np.bincount(labels.ravel(), minlength=count + 1)  # (count + 1,)
        small = sizes < min_size
        small[0] = False  # label 0 is "not this class"
        out[small[labels]] = background
    return out


def perturb_mask(
    mask: np.ndarray | torch.Tensor,
    shift: tuple[int, int] = (0, 0),
    dilate: int = 0,
    erode: int = 0,
    min_size: int = 0,
    background: int = 0,
) -> np.ndarray:
    """Shift, then dilate, then erode, then drop small objects: the metric playground's edits.

    Args:
        mask: class ids ``(H, W)``.
        shift: ``(dy, dx)`` in pixels (see ``shift_mask``).
        dilate: steps of ``grow_classes``.
        erode: steps of ``shrink_classes``.
        min_size: objects smaller than this become background (``drop_small_objects``).
        background: the class that shifts, growth and removals fill with.

    Shape:
        - Output: ``(H, W)`` int64

    Built in ``notebooks/05_metrics.ipynb`` (metric playground).
    """
    out = shift_mask(mask, int(shift[0]), int(shift[1]), fill=background)
    out = grow_classes(out, dilate, background)
    out = shrink_classes(out, erode, background)
    return drop_small_objects(out, min_size, background)


def mask_metrics(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    num_classes: int,
    tolerance: float = 2.0,
    ignore_index: int | None = None,
) -> dict[str, object]:
    """IoU, Dice (``ConfusionMatrix``) and boundary F1 (``boundary_f1``) of one predicted mask.

    Returns:
        ``{"iou", "dice", "boundary_f1"}`` per-class lists (NaN for a class in neither mask,
        where ``boundary_f1`` alone would say 1.0 for empty vs empty) and
        ``"miou", "mean_dice", "pixel_accuracy"``.

    Built in ``notebooks/05_metrics.ipynb`` (metric playground).
    """
    pred_t = torch.from_numpy(as_class_ids(pred, "pred"))[None]  # (1, H, W)
    target_t = torch.from_numpy(as_class_ids(target, "target"))[None]
    matrix = ConfusionMatrix(num_classes, ignore_index)
    matrix.update(pred_t, target_t)
    scores = matrix.compute()
    bf1 = boundary_f1(pred_t, target_t, num_classes, tolerance, ignore_index)
    absent = [math.isnan(value) for value in scores["iou"]]  # in neither mask: nothing to score
    return {
        "iou": scores["iou"], "dice": scores["dice"],
        "boundary_f1": [math.nan if gone else value for gone, value in zip(absent, bf1.tolist())],
        "miou": scores["miou"], "mean_dice": scores["mean_dice"], "pixel_accuracy": scores["pixel_accuracy"],
    }


# -- per-image scores for the mask explorer -------------------------------------------------------


def per_image_iou(
    preds: torch.Tensor, targets: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """IoU of every class in every image, NaN where a class is in neither mask.

    Shape:
        - ``preds``, ``targets``: ``(N, H, W)`` class ids; Output: ``(N, K)`` float64
    """
    rows = []
    for pred, target in zip(preds, targets):
        matrix = ConfusionMatrix(num_classes, ignore_index)
        matrix.update(pred[None], target[None])  # one image: (1, H, W)
        rows.append(matrix.iou().numpy())
    return np.stack(rows) if rows else np.zeros((0, num_classes))


def image_order(scores: np.ndarray, by: str | int = "miou", worst_first: bool = True) -> list[int]:
    """Image indices sorted by a per-image score: ``"index"``, ``"miou"`` or a class id.

    Images where the score is undefined (NaN) come last; ties keep index order.

    Shape:
        - ``scores``: ``(N, K)`` from ``per_image_iou``
    """
    n = len(scores)
    if by == "index":
        return list(range(n))
    if by == "miou":
        defined = ~np.isnan(scores)
        key = np.where(defined.any(1), np.nansum(scores, 1) / np.maximum(defined.sum(1), 1), np.nan)
    elif isinstance(by, (int, np.integer)) and 0 <= by < scores.shape[1]:
        key = scores[:, by]
    else:
        raise ValueError(f"by must be 'index', 'miou' or a class id in [0, {scores.shape[1] - 1}]; got {by!r}")
    finite = [i for i in range(n) if not math.isnan(key[i])]
    finite.sort(key=lambda i: key[i] if worst_first else -key[i])
    return finite + [i for i in range(n) if math.isnan(key[i])]
