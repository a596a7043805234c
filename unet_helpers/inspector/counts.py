"""What the inspector counts, summed over images: one ``ClassCounts`` per class, in ``MaskCounts``.

This module owns the data contract between counting (here) and reporting (``report.py``): every
count is a named field, so the report never reads arrays by column position. The rules each count
implements are in ``inspector/__init__.py``.

Shapes: masks ``(H, W)`` int64 class ids; sizes may differ between images.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from ..boundary import boundary_counts, boundary_map
from ..metrics import ConfusionMatrix
from .settings import InspectorSettings

# Every wrong pixel of a class lands in exactly one group, tried in this order.
ERROR_GROUPS = ("missed_small_objects", "missed_large_objects", "boundary", "missed_inside_objects", "false_alarms")


@dataclass
class ObjectCounts:
    """True objects (connected components) of one class and how many of them were found."""

    objects: int = 0
    found: int = 0


@dataclass
class ClassCounts:
    """Every count of one class, summed over the images."""

    boundary_pred: int = 0  # predicted boundary pixels ...
    boundary_pred_matched: int = 0  # ... of them within the tolerance of a true boundary pixel
    boundary_true: int = 0  # true boundary pixels ...
    boundary_true_matched: int = 0  # ... of them within the tolerance of a predicted one
    band_intersection: int = 0  # within band_width of a true edge: predicted and true
    band_union: int = 0  # ... predicted or true
    interior_intersection: int = 0  # everywhere else
    interior_union: int = 0
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_GROUPS, 0))
    band_missed: int = 0  # "boundary" errors that are false negatives (objects too thin) ...
    band_extra: int = 0  # ... and false positives (objects too fat)
    buckets: list[ObjectCounts] = field(default_factory=list)  # one per size bucket, smallest first
    small: ObjectCounts = field(default_factory=ObjectCounts)  # objects < small_object_size pixels
    large: ObjectCounts = field(default_factory=ObjectCounts)  # the others


class MaskCounts:
    """Accumulates ``ClassCounts`` for ``num_classes`` classes and one confusion matrix.

    Args:
        num_classes: ``K``.
        settings: the thresholds (band width, tolerance, size buckets, ...).
        ignore_index: true-mask value whose pixels count nowhere.
    """

    def __init__(self, num_classes: int, settings: InspectorSettings, ignore_index: int | None = None) -> None:
        self.num_classes, self.settings, self.ignore_index = num_classes, settings, ignore_index
        self.confusion = ConfusionMatrix(num_classes, ignore_index)
        buckets = len(settings.size_buckets) + 1
        self.classes = [ClassCounts(buckets=[ObjectCounts() for _ in range(buckets)]) for _ in range(num_classes)]
        self.images = 0
        self._structure = np.ones((3, 3), bool) if settings.connectivity == 8 else ndimage.generate_binary_structure(2, 1)

    def add(self, pred: np.ndarray, true: np.ndarray) -> None:
        """Count one image: ``pred`` and ``true`` are ``(H, W)`` int64 class ids of the same size."""
        valid = np.ones(true.shape, bool) if self.ignore_index is None else true != self.ignore_index
        pred = np.where(valid, pred, 0)  # predictions on ignored pixels never count
        self.confusion.update(torch.from_numpy(pred)[None], torch.from_numpy(true)[None])  # (1, H, W) each
        matched = boundary_counts(pred, true, self.num_classes, self.settings.boundary_tolerance, self.ignore_index)
        for k, counts in enumerate(self.classes):
            pred_matched, n_pred, true_matched, n_true = (int(v) for v in matched[k])
            counts.boundary_pred_matched += pred_matched
            counts.boundary_pred += n_pred
            counts.boundary_true_matched += true_matched
            counts.boundary_true += n_true
            true_k, pred_k = true == k, (pred == k) & valid
            if true_k.any() or pred_k.any():
                self._add_class(counts, true_k, pred_k, valid)
        self.images += 1

    def _add_class(self, c: ClassCounts, true_k: np.ndarray, pred_k: np.ndarray, valid: np.ndarray) -> None:
        s = self.settings
        edges = boundary_map(true_k) | boundary_map(~true_k)  # pixels on either side of a true edge
        band = ndimage.distance_transform_edt(~edges) < s.band_width if edges.any() else np.zeros_like(true_k)
        c.band_intersection += int((true_k & pred_k & band & valid).sum())
        c.band_union += int(((true_k | pred_k) & band & valid).sum())
        c.interior_intersection += int((true_k & pred_k & ~band & valid).sum())
        c.interior_union += int(((true_k | pred_k) & ~band & valid).sum())

        labels, count = ndimage.label(true_k, structure=self._structure)  # (H, W) object ids 1..count
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        hits = np.bincount(labels.ravel(), weights=pred_k.ravel(), minlength=count + 1)[1:]
        found = hits >= s.found_fraction * sizes
        bucket = np.searchsorted(s.size_buckets, sizes, side="right")  # 0 = smallest bucket
        for b, objects in enumerate(c.buckets):
            objects.objects += int((bucket == b).sum())
            objects.found += int((found & (bucket == b)).sum())
        small = sizes < s.small_object_size
        for group, chosen in ((c.small, small), (c.large, ~small)):
            group.objects += int(chosen.sum())
            group.found += int((found & chosen).sum())

        group = np.zeros(count + 1, np.int64)  # per object: 0 found, 1 missed small, 2 missed large
        group[1:][~found & small], group[1:][~found & ~small] = 1, 2
        pixel_group = group[labels]  # (H, W)
        missed, extra = true_k & ~pred_k & valid, pred_k & ~true_k  # false negatives, false positives
        rest = missed & (pixel_group == 0)
        c.errors["missed_small_objects"] += int((missed & (pixel_group == 1)).sum())
        c.errors["missed_large_objects"] += int((missed & (pixel_group == 2)).sum())
        c.errors["boundary"] += int(((rest | extra) & band).sum())
        c.errors["missed_inside_objects"] += int((rest & ~band).sum())
        c.errors["false_alarms"] += int((extra & ~band).sum())
        c.band_missed += int((rest & band).sum())
        c.band_extra += int((extra & band).sum())
