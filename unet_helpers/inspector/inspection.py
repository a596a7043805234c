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
# Inferring K from the largest id is refused above this: 16-bit masks (0/65535) or instance maps
# would give 65,536 classes and a 32 GiB confusion matrix. Pass num_classes to go higher.
MAX_INFERRED_CLASSES = 256
# Never more classes than this (a K x K matrix and one pass per class over every image).
MAX_CLASSES = 4096


def _as_list(masks: MaskLike | Sequence[MaskLike], name: str) -> list[np.ndarray]:
    """``(N, H, W)`` array/tensor or a list of ``(H, W)`` masks -> list of ``(H, W)`` int64 arrays."""
    if isinstance(masks, (np.ndarray, torch.Tensor)):
        if masks.ndim == 2:
            masks = [masks]
        elif masks.ndim != 3:
            raise ValueError(f"{name} must be (N, H, W) or a list of (H, W) masks; got shape {tuple(masks.shape)}")
    elif not isinstance(masks, (list, tuple)):
        raise TypeError(f"{name} must be a numpy array, a torch.Tensor or a list of (H, W) masks; got {type(masks).__name__}")
    arrays = []
    for i, mask in enumerate(masks):
        if not isinstance(mask, (np.ndarray, torch.Tensor, list, tuple)):
            raise TypeError(f"{name}[{i}] must be an (H, W) array or tensor of class ids; got {type(mask).__name__}")
        arrays.append(as_class_ids(mask, f"{name}[{i}]"))
    return arrays


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
    highest = max((int(p.max()) for p in preds if p.size), default=0)
    for t in targets:
        labelled = t[t != ignore_index] if ignore_index is not None else t
        if labelled.size:
            highest = max(highest, int(labelled.max()))
    if highest + 1 > MAX_INFERRED_CLASSES:
        raise ValueError(
            f"the masks hold class id {highest}, so the number of classes would be {highest + 1:,}; masks of raw values "
            "(0/255, 0/65535) or instance maps need mapping to class ids first (mask_values, --mask-values 0:0,65535:1). "
            f"If there really are that many classes, pass num_classes (--classes); ids above {MAX_INFERRED_CLASSES - 1} "
            "are not taken as classes without it"
        )
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
        num_classes: ``K`` (default: the largest id seen + 1, refused above 256: raw 16-bit values or
            instance maps would otherwise become 65,536 classes). At most 4096.
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
    if num_classes > MAX_CLASSES:
        raise ValueError(f"num_classes={num_classes:,} is more than the {MAX_CLASSES:,} classes the inspector counts "
                         f"(a {num_classes:,} x {num_classes:,} confusion matrix); map the mask values to fewer class ids")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None; got {ignore_index!r}")
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
    for i, t in enumerate(true_list):
        labelled = t[t != ignore_index] if ignore_index is not None else t
        if labelled.size and labelled.max() >= num_classes:
            raise ValueError(
                f"targets[{i}] has class id {int(labelled.max())} but num_classes={num_classes}; map raw mask values "
                "to class ids first (mask_values, --mask-values), or pass it as ignore_index (--ignore-index)"
            )
    counts = MaskCounts(num_classes, settings, ignore_index)
    for pred, true in zip(pred_list, true_list):
        counts.add(pred, true)
    return build_report(counts, class_names)
