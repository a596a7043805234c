"""``inspect_masks``: take the masks, check them, count them (``counts.py``), report (``report.py``).

Shapes: ``N`` images, ``K`` classes, ``H, W`` height and width (may differ between images).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..validate import as_class_ids
from .counts import MaskCounts
from .report import MaskReport, build_report
from .settings import InspectorSettings

MaskLike = np.ndarray | torch.Tensor


def _as_list(masks: MaskLike | Sequence[MaskLike], name: str) -> list[np.ndarray]:
    """``(N, H, W)`` array/tensor or a list of ``(H, W)`` masks -> list of ``(H, W)`` int64 arrays."""
    if isinstance(masks, (np.ndarray, torch.Tensor)):
        if masks.ndim == 2:
            masks = [masks]
        elif masks.ndim != 3:
            raise ValueError(f"{name} must be (N, H, W) or a list of (H, W) masks; got shape {tuple(masks.shape)}")
    elif not isinstance(masks, (list, tuple)):
        raise TypeError(f"{name} must be a numpy array, a torch.Tensor or a list of (H, W) masks; got {type(masks).__name__}")
    return [as_class_ids(mask, f"{name}[{i}]") for i, mask in enumerate(masks)]


def _check_pairs(preds: list[np.ndarray], targets: list[np.ndarray], ignore_index: int | None) -> None:
    if len(preds) != len(targets):
        raise ValueError(f"got {len(preds)} predicted masks but {len(targets)} true masks; pass one prediction per image")
    if not preds:
        raise ValueError("no masks to inspect: preds and targets are empty")
    for i, (p, t) in enumerate(zip(preds, targets)):
        if p.shape != t.shape:
            raise ValueError(f"image {i}: prediction is {p.shape[0]}x{p.shape[1]} but the true mask is {t.shape[0]}x{t.shape[1]}")
        if (p < 0).any() or (t[t != ignore_index] < 0).any():
            raise ValueError(f"image {i}: class ids must be >= 0 (use ignore_index for unlabelled pixels)")


def _infer_num_classes(preds: list[np.ndarray], targets: list[np.ndarray], ignore_index: int | None) -> int:
    highest = max(int(p.max()) for p in preds)
    for t in targets:
        labelled = t[t != ignore_index] if ignore_index is not None else t
        if labelled.size:
            highest = max(highest, int(labelled.max()))
    return highest + 1


def inspect_masks(
    preds: MaskLike | Sequence[MaskLike],
    targets: MaskLike | Sequence[MaskLike],
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    ignore_index: int | None = None,
    settings: InspectorSettings | None = None,
) -> MaskReport:
    """Explain a segmentation score: distribution, per-class scores, boundary blur, small objects.

    Args:
        preds: predicted class ids, ``(N, H, W)`` array/tensor or a list of ``(H, W)`` masks
            (sizes may differ between images, not within a pair).
        targets: true class ids, same layout and sizes as ``preds``.
        num_classes: ``K`` (default: the largest id seen + 1).
        class_names: ``K`` names for the report (default ``"class 0"``, ...).
        ignore_index: target value whose pixels count nowhere.
        settings: thresholds (``InspectorSettings()`` by default).

    Shape:
        - ``preds``, ``targets``: ``(N, H, W)`` or ``N`` masks ``(H_i, W_i)``

    Returns:
        A ``MaskReport``: ``.to_markdown()`` for people, ``.to_dict()`` (JSON-ready) for programs,
        ``.classes`` per-class numbers, ``.diagnoses`` one per weak class.

    Examples::

        >>> import numpy as np
        >>> true = np.zeros((1, 40, 40), dtype=np.int64)
        >>> true[0, 10:30, 10:30] = 1
        >>> pred = np.zeros_like(true)
        >>> pred[0, 12:28, 12:28] = 1                    # the square shrunk by 2 pixels
        >>> report = inspect_masks(pred, true, class_names=["background", "square"])
        >>> [(d.class_name, d.cause) for d in report.diagnoses]
        [('square', 'boundary')]
    """
    settings = settings or InspectorSettings()
    pred_list, true_list = _as_list(preds, "preds"), _as_list(targets, "targets")
    _check_pairs(pred_list, true_list, ignore_index)
    if num_classes is None:
        num_classes = _infer_num_classes(pred_list, true_list, ignore_index)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1; got {num_classes!r}")
    if class_names is None:
        class_names = [f"class {k}" for k in range(num_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes:
        raise ValueError(f"class_names has {len(class_names)} names but there are {num_classes} classes: {class_names}")
    for i, p in enumerate(pred_list):
        if p.size and p.max() >= num_classes:
            raise ValueError(
                f"preds[{i}] has class id {int(p.max())} but num_classes={num_classes}; "
                "predicted masks saved as 0/255 need mapping back to class ids first"
            )
    counts = MaskCounts(num_classes, settings, ignore_index)
    for pred, true in zip(pred_list, true_list):
        counts.add(pred, true)
    return build_report(counts, class_names)
