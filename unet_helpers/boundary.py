"""Boundary F1: how close predicted class boundaries lie to the true ones.

Built step by step in ``notebooks/05_metrics.ipynb``.

Definitions follow the boundary F-measure of DAVIS (Perazzi et al., 2016) and of Csurka et al.
(2013, "What is a good evaluation measure for semantic segmentation?"):

- The boundary of class ``k`` is the set of its pixels with a 4-neighbour of another class. The
  image border is not a boundary (the object may go on outside the frame).
- A predicted boundary pixel is matched when a true boundary pixel lies within ``tolerance``
  (Euclidean distance), and vice versa. Precision = matched predicted / predicted boundary pixels,
  recall = matched true / true boundary pixels, F1 = 2PR / (P + R).
- Empty vs empty (neither has a boundary of class ``k``) scores 1; one empty, the other not, 0.

Counts are summed over all images passed in before the ratios are taken, like ``ConfusionMatrix``.

Shapes: ``N`` batch, ``K`` classes, ``H, W`` height and width.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from .validate import require_class_ids, require_same_spatial
from .metrics import to_class_ids


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Inner boundary of a binary mask: pixels of ``mask`` with a 4-neighbour outside it.

    Shape:
        - Input: ``(H, W)`` bool; Output: ``(H, W)`` bool
    """
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1, mode="edge")  # the border copies itself: no boundary there
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def tolerance_in_pixels(tolerance: float, height: int, width: int) -> float:
    """``tolerance >= 1`` is in pixels; ``0 <= tolerance < 1`` is a fraction of the image diagonal."""
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or not tolerance >= 0:
        raise ValueError(
            f"tolerance must be a number >= 0 (pixels if >= 1, fraction of the diagonal if < 1); got {tolerance!r}"
        )
    return float(tolerance) if tolerance >= 1 else float(tolerance) * math.hypot(height, width)


def boundary_counts(
    pred: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    num_classes: int,
    tolerance: float = 2.0,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Matched and total boundary pixels per class, summed over the batch.

    Args:
        pred: predicted class ids ``(N, H, W)`` or ``(H, W)``, or scores ``(N, K, H, W)``.
        target: true class ids, same ``N, H, W``.
        num_classes: ``K``.
        tolerance: match distance (see ``tolerance_in_pixels``).
        ignore_index: pixels of this target value, and boundary pixels touching them, are not counted.

    Shape:
        - Output: ``(K, 4)`` int64 columns: matched predicted, predicted, matched true, true
    """
    pred_t, target_t = _as_batch(pred, "pred"), _as_batch(target, "target")
    pred_ids = to_class_ids(pred_t, num_classes, "pred").cpu().numpy()
    require_same_spatial(torch.from_numpy(pred_ids).unsqueeze(1), target_t, "pred", "target")
    true_ids = require_class_ids(target_t, num_classes, ignore_index).cpu().numpy()
    height, width = true_ids.shape[-2:]
    max_dist = tolerance_in_pixels(tolerance, height, width)
    counts = np.zeros((num_classes, 4), dtype=np.int64)
    for p_img, t_img in zip(pred_ids, true_ids):
        keep = None
        if ignore_index is not None and (t_img == ignore_index).any():
            keep = ~ndimage.binary_dilation(t_img == ignore_index)  # drop ignored pixels and their rim
        for k in range(num_classes):
            pb, tb = boundary_map(p_img == k), boundary_map(t_img == k)
            if keep is not None:
                pb, tb = pb & keep, tb & keep
            counts[k] += (_matched(pb, tb, max_dist), pb.sum(), _matched(tb, pb, max_dist), tb.sum())
    return counts


def _matched(source: np.ndarray, reference: np.ndarray, max_dist: float) -> int:
    """How many ``source`` pixels lie within ``max_dist`` of a ``reference`` pixel."""
    if not source.any() or not reference.any():
        return 0
    distance = ndimage.distance_transform_edt(~reference)  # (H, W) distance to nearest reference pixel
    return int((distance[source] <= max_dist).sum())


def f1_from_counts(counts: np.ndarray) -> torch.Tensor:
    """Per-class boundary F1 ``(K,)`` float64 from ``boundary_counts`` output ``(K, 4)``."""
    scores = []
    for matched_pred, n_pred, matched_true, n_true in counts.tolist():
        if n_pred == 0 and n_true == 0:
            scores.append(1.0)  # empty vs empty
            continue
        precision = matched_pred / n_pred if n_pred else 0.0
        recall = matched_true / n_true if n_true else 0.0
        total = precision + recall
        scores.append(2 * precision * recall / total if total > 0 else 0.0)
    return torch.tensor(scores, dtype=torch.float64)


def boundary_f1(
    pred: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    num_classes: int,
    tolerance: float = 2.0,
    ignore_index: int | None = None,
) -> torch.Tensor:
    """Per-class boundary F1 of predicted against true masks.

    Args:
        pred: predicted class ids ``(N, H, W)`` / ``(H, W)`` or scores ``(N, K, H, W)``.
        target: true class ids.
        num_classes: ``K``.
        tolerance: pixels if ``>= 1``, fraction of the image diagonal if ``< 1`` (DAVIS used 0.008).
        ignore_index: target value to leave out.

    Shape:
        - Output: ``(K,)`` float64 in ``[0, 1]``

    Examples::

        >>> square = torch.zeros(1, 20, 20, dtype=torch.long)
        >>> square[:, 5:15, 5:15] = 1
        >>> shifted = torch.roll(square, shifts=1, dims=2)
        >>> boundary_f1(shifted, square, num_classes=2, tolerance=1).tolist()
        [1.0, 1.0]
        >>> boundary_f1(shifted, square, num_classes=2, tolerance=0)[1].item() < 1
        True
    """
    return f1_from_counts(boundary_counts(pred, target, num_classes, tolerance, ignore_index))


def _as_batch(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array; got {type(x).__name__}")
    return x.unsqueeze(0) if x.ndim == 2 else x
