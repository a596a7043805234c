"""The mask inspector: *why* is a segmentation score bad?

Built in ``notebooks/07_diagnosis.ipynb`` (the lesson's "Ship It" skill, made real); also run by
``python -m unet_helpers inspect PRED_DIR TRUE_DIR``. How to read the report and what to do about
each diagnosis: ``outputs/skill-segmentation-mask-inspector.md``.

``inspect_masks(preds, targets)`` compares predicted with true class-id masks, accumulating every
count over all images (like ``ConfusionMatrix``), and measures per class:

- **distribution**: true share and predicted share of the counted pixels, and their ratio
  ``predicted / true``. Below ``under_ratio`` (0.8) the class is *under-predicted*, above
  ``over_ratio`` (1.25) *over-predicted*.
- **scores**: IoU, Dice, precision, recall (``ConfusionMatrix``) and boundary F1 within
  ``boundary_tolerance`` pixels (``boundary.boundary_counts``, summed over images).
- **boundary band**: the band is every pixel closer than ``band_width`` pixels to an edge of the
  true mask of the class (``band_width`` pixels on each side of the edge). IoU inside the band vs
  IoU in the rest ("interior").
- **objects**: the true objects of the class are its connected components (``connectivity`` 8 by
  default). An object is *found* when at least ``found_fraction`` (half) of its pixels are
  predicted as its class. Recall = found / objects, per size bucket (``size_buckets`` edges in
  pixels) and for *small* (``< small_object_size`` pixels) vs larger objects.
- **where the wrong pixels are**: every wrong pixel of a class (a false negative or a false
  positive) goes to exactly one of five groups, in this order: a pixel of a *missed small* object,
  of a *missed large* object, within the *boundary* band, a *missed pixel inside* a found object,
  a *false alarm* away from any true edge of the class.

Flags and the diagnosis (thresholds are ``InspectorSettings`` fields):

- *boundary-blurred*: at least ``boundary_share`` of the class's wrong pixels lie in the band, and
  band IoU is at least 0.1 below interior IoU (or the class has no interior).
- *loses small objects*: small-object recall is at least ``small_recall_gap`` below the recall of
  larger objects (below 1.0 when there are none).
- a class is *weak* when its IoU is below ``weak_iou``; each weak class gets one diagnosis, named
  after the group holding most of its wrong pixels: ``"small_objects"`` (missed small objects, when
  the class also loses small objects; otherwise the misses are size-blind and count as
  under-prediction), ``"boundary"``, ``"imbalance"`` (missed objects or pixels while the class is
  under-predicted, or false alarms while it is over-predicted), else ``"confusion"`` (pixels
  traded with another class at about the right total amount).

Shapes: ``N`` images, ``K`` classes, ``H, W`` height and width (may differ between images).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from scipy import ndimage

from .boundary import boundary_counts, boundary_map
from .inspector_report import ERROR_GROUPS, MaskReport, build_report
from .metrics import ConfusionMatrix

__all__ = ["InspectorSettings", "MaskReport", "inspect_masks"]

MaskLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class InspectorSettings:
    """Thresholds of the inspector (see the module docstring for what each one means)."""

    band_width: int = 2  # pixels on each side of a true edge that count as "boundary"
    boundary_tolerance: float = 2.0  # boundary F1 match distance in pixels
    size_buckets: tuple[int, ...] = (16, 64, 256, 1024)  # object-size bucket edges in pixels
    small_object_size: int = 64  # objects with fewer pixels are "small"
    found_fraction: float = 0.5  # share of an object predicted as its class for it to be found
    connectivity: int = 8  # 4 or 8: which neighbours join pixels into one object
    weak_iou: float = 0.75  # classes with a lower IoU get a diagnosis
    under_ratio: float = 0.8  # predicted share / true share below this: under-predicted
    over_ratio: float = 1.25  # ... above this: over-predicted
    boundary_share: float = 0.5  # share of wrong pixels in the band to flag boundary blur
    small_recall_gap: float = 0.25  # small-object recall this far below large-object recall: flag
    extra: dict = field(default_factory=dict)  # free-form notes copied into the report

    def __post_init__(self) -> None:
        if isinstance(self.band_width, bool) or not isinstance(self.band_width, int) or self.band_width < 1:
            raise ValueError(f"band_width must be an int >= 1 (pixels); got {self.band_width!r}")
        edges = tuple(self.size_buckets)
        if not edges or any(e < 1 for e in edges) or list(edges) != sorted(set(edges)):
            raise ValueError(f"size_buckets must be increasing positive pixel counts like (16, 64, 256); got {edges!r}")
        object.__setattr__(self, "size_buckets", tuple(int(e) for e in edges))
        if self.connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8; got {self.connectivity!r}")
        if not 0 < self.found_fraction <= 1:
            raise ValueError(f"found_fraction must be in (0, 1]; got {self.found_fraction!r}")
        if not 0 < self.under_ratio < 1 < self.over_ratio:
            raise ValueError(
                f"need 0 < under_ratio < 1 < over_ratio; got under_ratio={self.under_ratio}, over_ratio={self.over_ratio}"
            )

    def bucket_labels(self) -> list[str]:
        """Readable names of the size buckets, e.g. ``["<16", "16-63", ..., ">=1024"]``."""
        edges = self.size_buckets
        inner = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])]
        return [f"<{edges[0]}", *inner, f">={edges[-1]}"]


def _as_list(masks: MaskLike | Sequence[MaskLike], name: str) -> list[np.ndarray]:
    """``(N, H, W)`` array/tensor or a list of ``(H, W)`` masks -> list of ``(H, W)`` int64 arrays."""
    if isinstance(masks, (np.ndarray, torch.Tensor)):
        if masks.ndim == 2:
            masks = [masks]
        elif masks.ndim != 3:
            raise ValueError(f"{name} must be (N, H, W) or a list of (H, W) masks; got shape {tuple(masks.shape)}")
    elif not isinstance(masks, (list, tuple)):
        raise TypeError(f"{name} must be a numpy array, a torch.Tensor or a list of (H, W) masks; got {type(masks).__name__}")
    out = []
    for i, mask in enumerate(masks):
        array = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        if array.ndim != 2:
            raise ValueError(f"{name}[{i}] must be one (H, W) mask; got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(
                f"{name}[{i}] must hold integer class ids; got dtype {array.dtype}. "
                "Hint: take logits.argmax(dim=1) first, or .astype(int) if the values are whole numbers"
            )
        out.append(array.astype(np.int64))
    return out


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


class _Accumulator:
    """Counts summed over images; one row per class."""

    def __init__(self, num_classes: int, settings: InspectorSettings, ignore_index: int | None) -> None:
        k, buckets = num_classes, len(settings.size_buckets) + 1
        self.k, self.settings, self.ignore_index = k, settings, ignore_index
        self.confusion = ConfusionMatrix(k, ignore_index)
        self.boundary = np.zeros((k, 4), np.int64)  # matched pred, pred, matched true, true boundary pixels
        self.band = np.zeros((k, 4), np.int64)  # band intersection, band union, interior intersection, interior union
        self.errors = np.zeros((k, len(ERROR_GROUPS)), np.int64)  # wrong pixels per group
        self.band_direction = np.zeros((k, 2), np.int64)  # boundary errors: missed (FN), extra (FP)
        self.objects = np.zeros((k, buckets, 2), np.int64)  # per size bucket: objects, found
        self.small_large = np.zeros((k, 2, 2), np.int64)  # [small, large] x [objects, found]
        structure = np.ones((3, 3), bool) if settings.connectivity == 8 else ndimage.generate_binary_structure(2, 1)
        self.structure = structure

    def add(self, pred: np.ndarray, true: np.ndarray) -> None:
        valid = np.ones(true.shape, bool) if self.ignore_index is None else true != self.ignore_index
        pred = np.where(valid, pred, 0)  # predictions on ignored pixels never count
        self.confusion.update(torch.from_numpy(pred)[None], torch.from_numpy(true)[None])
        self.boundary += boundary_counts(pred, true, self.k, self.settings.boundary_tolerance, self.ignore_index)
        for k in range(self.k):
            true_k, pred_k = true == k, (pred == k) & valid
            if true_k.any() or pred_k.any():
                self._add_class(k, true_k, pred_k, valid)

    def _add_class(self, k: int, true_k: np.ndarray, pred_k: np.ndarray, valid: np.ndarray) -> None:
        s = self.settings
        edges = boundary_map(true_k) | boundary_map(~true_k)  # pixels on either side of a true edge
        if edges.any():
            band = ndimage.distance_transform_edt(~edges) < s.band_width  # (H, W)
        else:
            band = np.zeros_like(true_k)
        for col, region in ((0, band & valid), (2, ~band & valid)):
            self.band[k, col] += (true_k & pred_k & region).sum()
            self.band[k, col + 1] += ((true_k | pred_k) & region).sum()

        labels, count = ndimage.label(true_k, structure=self.structure)  # (H, W) object ids 1..count
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        hits = np.bincount(labels.ravel(), weights=pred_k.ravel(), minlength=count + 1)[1:]
        found = hits >= s.found_fraction * sizes
        bucket = np.searchsorted(s.size_buckets, sizes, side="right")  # 0 = smallest bucket
        np.add.at(self.objects[k], (bucket, 0), 1)
        np.add.at(self.objects[k], (bucket, 1), found.astype(np.int64))
        small = sizes < s.small_object_size
        for row, chosen in ((0, small), (1, ~small)):
            self.small_large[k, row] += (chosen.sum(), (found & chosen).sum())

        group = np.zeros(count + 1, np.int64)  # per object: 0 found, 1 missed small, 2 missed large
        group[1:][~found & small], group[1:][~found & ~small] = 1, 2
        pixel_group = group[labels]  # (H, W)
        missed, extra = true_k & ~pred_k & valid, pred_k & ~true_k  # false negatives, false positives
        rest = missed & (pixel_group == 0)
        self.errors[k] += (
            (missed & (pixel_group == 1)).sum(),  # missed small objects
            (missed & (pixel_group == 2)).sum(),  # missed large objects
            ((rest | extra) & band).sum(),  # boundary band
            (rest & ~band).sum(),  # missed inside found objects
            (extra & ~band).sum(),  # false alarms
        )
        self.band_direction[k] += ((rest & band).sum(), (extra & band).sum())


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
    accumulator = _Accumulator(num_classes, settings, ignore_index)
    for pred, true in zip(pred_list, true_list):
        accumulator.add(pred, true)
    return build_report(accumulator, class_names, len(pred_list), settings)
