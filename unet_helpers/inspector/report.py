"""The mask inspector's report: per-class numbers, one diagnosis per weak class, Markdown and JSON.

Built in ``notebooks/07_diagnosis.ipynb``. ``build_report`` turns the ``counts.MaskCounts`` of all
images into ``ClassReport`` rows, ``Diagnosis`` sentences and a ``MaskReport``; the rules behind the
flags and causes are listed in ``inspector/__init__.py``. Undefined values (a ratio with nothing
to divide by) are NaN, and ``null`` in ``MaskReport.to_dict()``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..boundary import f1_from_counts
from ..metrics import nan_divide
from ..records import json_safe
from .counts import ERROR_GROUPS, ClassCounts, MaskCounts, ObjectCounts
from .settings import InspectorSettings

ADVICE = {
    "small_objects": (
        "Keep small objects visible to the network: train and predict at full resolution (crop or tile "
        "instead of shrinking the image), sample training crops that contain small objects more often, "
        "add a Dice term (it weighs a small object like a large one), and make sure no post-processing "
        "(minimum-size filter, morphological opening) removes them."
    ),
    "boundary": (
        "Sharpen the edges: check that masks and images are aligned and that masks were resized with "
        "nearest-neighbour, never bilinear; keep the skip connections; weight pixels near edges more "
        "(the U-Net paper's border weight map); train longer; predict tiles with overlap so no edge "
        "sits at a tile border. Judge progress with boundary F1, not IoU alone."
    ),
    "imbalance_under": (
        "Make the class count more: class weights in the cross-entropy (e.g. inverse pixel share), "
        "cross-entropy + Dice, oversample images or crops that contain the class, and check that it is "
        "labelled consistently in the training masks."
    ),
    "imbalance_over": (
        "The class is drawn where it is not: lower its class weight if you raised it, look at the false "
        "alarms for unlabelled instances (label noise) or look-alike textures, and add training images "
        "of those look-alikes."
    ),
    "confusion": (
        "The class is traded with another one at about the right total amount: look at the images "
        "where the two meet, add examples that tell them apart, give the network more context "
        "(larger crops, deeper model), and check that annotators used the two labels consistently."
    ),
}


@dataclass
class ClassReport:
    """Everything the inspector measured for one class (NaN where a value is undefined)."""

    class_id: int
    name: str
    true_share: float  # share of counted pixels that are truly this class
    pred_share: float  # share of counted pixels predicted as this class
    share_ratio: float  # pred_share / true_share (NaN when the class is absent from the truth)
    share_flag: str | None  # "under", "over" or None
    iou: float
    dice: float
    precision: float
    recall: float
    boundary_f1: float
    band_iou: float  # IoU within band_width pixels of the true edges
    interior_iou: float  # IoU everywhere else
    boundary_flag: bool  # wrong pixels concentrate in the band
    errors: dict[str, int]  # wrong pixels per group (ERROR_GROUPS)
    boundary_missed: int  # boundary-group pixels that are false negatives (objects too thin) ...
    boundary_extra: int  # ... and false positives (objects too fat)
    objects: list[dict]  # per size bucket: label, objects, found, recall
    small_objects: dict  # objects < small_object_size: objects, found, recall
    large_objects: dict  # the others
    small_object_flag: bool
    confused_with: str | None  # the class this one is most often mistaken for (either direction)
    weak: bool

    @property
    def wrong_pixels(self) -> int:
        """False negatives plus false positives of this class."""
        return sum(self.errors.values())


@dataclass
class Diagnosis:
    """The most likely reason one weak class scores low, with the numbers behind it."""

    class_id: int
    class_name: str
    cause: str  # "small_objects", "boundary", "imbalance" or "confusion"
    summary: str  # one plain-language paragraph with the supporting numbers
    advice: str  # what to do about it


@dataclass
class MaskReport:
    """Result of ``inspect_masks``: per-class numbers, diagnoses, and renderings."""

    num_images: int
    num_pixels: int
    miou: float
    mean_dice: float
    pixel_accuracy: float
    classes: list[ClassReport]
    diagnoses: list[Diagnosis]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    settings: dict = field(default_factory=dict)

    @property
    def under_predicted(self) -> list[str]:
        """Names of the classes predicted on too few pixels."""
        return [c.name for c in self.classes if c.share_flag == "under"]

    @property
    def over_predicted(self) -> list[str]:
        """Names of the classes predicted on too many pixels."""
        return [c.name for c in self.classes if c.share_flag == "over"]

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable form (NaN and infinity become ``None``)."""
        out = asdict(self)
        out["under_predicted"], out["over_predicted"] = self.under_predicted, self.over_predicted
        return json_safe(out)

    def to_markdown(self) -> str:
        """A Markdown report: summary, diagnoses, then one table per aspect."""
        return report_markdown(self)


def _ratio(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is 0 (``metrics.nan_divide``, the package's one rule for 0/0)."""
    return float(nan_divide(torch.tensor(float(num)), torch.tensor(float(den))))


def _recall(group: ObjectCounts) -> dict:
    return {"objects": group.objects, "found": group.found, "recall": _ratio(group.found, group.objects)}


def _partner(confusion: np.ndarray, k: int, names: list[str], direction: str) -> str | None:
    """The other class that takes most of class ``k``'s pixels ("missed") or gives it most ("extra")."""
    counts = confusion[k].copy() if direction == "missed" else confusion[:, k].copy()
    counts[k] = 0
    return names[int(counts.argmax())] if counts.max() > 0 else None


def _class_report(c: ClassCounts, k: int, names: list[str], confusion: np.ndarray, scores: dict, bf1: float,
                  s: InspectorSettings) -> ClassReport:
    total = confusion.sum()
    true_pixels, pred_pixels = confusion[k].sum(), confusion[:, k].sum()
    ratio = _ratio(pred_pixels, true_pixels)
    if true_pixels == 0:
        flag = "over" if pred_pixels else None
    else:
        flag = "under" if ratio < s.under_ratio else "over" if ratio > s.over_ratio else None
    band_iou, interior_iou = _ratio(c.band_intersection, c.band_union), _ratio(c.interior_intersection, c.interior_union)
    errors = dict(c.errors)
    wrong = sum(errors.values())
    blurred = wrong > 0 and errors["boundary"] >= s.boundary_share * wrong and not band_iou > interior_iou - 0.1
    small, large = _recall(c.small), _recall(c.large)
    reference = large["recall"] if math.isfinite(large["recall"]) else 1.0
    loses_small = small["recall"] <= reference - s.small_recall_gap  # False when small recall is NaN
    buckets = [{"label": label, **_recall(group)} for label, group in zip(s.bucket_labels(), c.buckets)]
    iou = scores["iou"][k]
    direction = "extra" if errors["false_alarms"] > wrong - errors["false_alarms"] else "missed"
    return ClassReport(
        k, names[k], _ratio(true_pixels, total), _ratio(pred_pixels, total), ratio, flag, iou, scores["dice"][k],
        scores["precision"][k], scores["recall"][k], bf1, band_iou, interior_iou, bool(blurred), errors,
        c.band_missed, c.band_extra, buckets, small, large, bool(loses_small),
        _partner(confusion, k, names, direction), iou < s.weak_iou,
    )


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.1f} %"


def diagnose(c: ClassReport, settings: InspectorSettings) -> Diagnosis:
    """Name the cause that holds most of ``c``'s wrong pixels (rules in ``inspector/__init__.py``)."""
    e, wrong = c.errors, max(c.wrong_pixels, 1)
    groups = {
        "small": e["missed_small_objects"],
        "boundary": e["boundary"],
        "under": e["missed_large_objects"] + e["missed_inside_objects"],
        "over": e["false_alarms"],
    }
    top = max(groups, key=groups.get)
    if top == "small" and not c.small_object_flag:
        top = "under"  # small objects are missed, but large ones just as much: not a size problem
        groups["under"] += groups["small"]
    share = f"{_pct(groups[top] / wrong)} of its wrong pixels"
    head = f"**{c.name}** (IoU {_num(c.iou)})"
    if top == "small":
        sm, lg = c.small_objects, c.large_objects
        text = (
            f"{head} loses small objects: it finds {sm['found']} of {sm['objects']} objects under "
            f"{settings.small_object_size} px (recall {_pct(sm['recall'])}) but {lg['found']} of "
            f"{lg['objects']} larger ones (recall {_pct(lg['recall'])}); missed small objects are {share}."
        )
        return Diagnosis(c.class_id, c.name, "small_objects", text, ADVICE["small_objects"])
    if top == "boundary":
        shape = "too thin (edge pixels missed)" if c.boundary_missed >= c.boundary_extra else "too fat (spills over edges)"
        text = (
            f"{head} has blurred boundaries: {share} lie within {settings.band_width} px of a true edge; "
            f"IoU there is {_num(c.band_iou)} against {_num(c.interior_iou)} away from edges, boundary F1 "
            f"{_num(c.boundary_f1)}. Predicted objects are mostly {shape}."
        )
        return Diagnosis(c.class_id, c.name, "boundary", text, ADVICE["boundary"])
    direction = top  # "under" or "over"
    if c.share_flag == direction:
        amount = f"{_pct(c.pred_share)} of the pixels are predicted as it, against a true {_pct(c.true_share)}"
        what = "misses (whole objects or the inside of objects)" if direction == "under" else "false alarms away from its true edges"
        text = (
            f"{head} is {direction}-predicted: {amount}"
            f"{'' if not math.isfinite(c.share_ratio) else f' (ratio {c.share_ratio:.2f})'}; {what} are {share}, "
            f"recall {_pct(c.recall)}, precision {_pct(c.precision)}."
        )
        return Diagnosis(c.class_id, c.name, "imbalance", text, ADVICE[f"imbalance_{direction}"])
    partner = c.confused_with or "another class"
    verb = "predicted as" if direction == "under" else "drawn over"
    text = (
        f"{head} is confused with **{partner}**: its pixels are {verb} {partner} away from edges ({share}) "
        f"while its predicted share ({_pct(c.pred_share)}) matches the true share ({_pct(c.true_share)})."
    )
    return Diagnosis(c.class_id, c.name, "confusion", text, ADVICE["confusion"])


def build_report(counts: MaskCounts, names: list[str]) -> MaskReport:
    """Turn the counts of all images into a ``MaskReport`` (class reports, then diagnoses)."""
    settings, matrix = counts.settings, counts.confusion
    scores = matrix.compute()
    confusion = matrix.matrix.numpy()
    boundary = np.array([[c.boundary_pred_matched, c.boundary_pred, c.boundary_true_matched, c.boundary_true]
                         for c in counts.classes])  # (K, 4), the layout f1_from_counts reads
    bf1 = f1_from_counts(boundary).tolist()
    classes = [_class_report(c, k, names, confusion, scores, bf1[k], settings) for k, c in enumerate(counts.classes)]
    diagnoses = [diagnose(c, settings) for c in classes if c.weak]
    return MaskReport(
        counts.images, int(confusion.sum()), scores["miou"], scores["mean_dice"], scores["pixel_accuracy"], classes,
        diagnoses, confusion.tolist(), json_safe(asdict(settings)),
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def report_markdown(report: MaskReport) -> str:
    """Render ``report`` as Markdown (what ``MaskReport.to_markdown`` returns)."""
    s = report.settings
    weak = [c.name for c in report.classes if c.weak]
    lines = [
        "# Mask inspection report",
        "",
        (
            f"{report.num_images} image(s), {report.num_pixels:,} counted pixels. mIoU **{_num(report.miou)}**, "
            f"mean Dice {_num(report.mean_dice)}, pixel accuracy {_num(report.pixel_accuracy)}."
        ),
        (
            f"Weak classes (IoU < {s['weak_iou']}): {', '.join(weak) if weak else 'none'}. "
            f"Under-predicted: {', '.join(report.under_predicted) or 'none'}. "
            f"Over-predicted: {', '.join(report.over_predicted) or 'none'}."
        ),
        "",
        "## Diagnosis",
        "",
    ]
    for d in report.diagnoses:
        lines += [f"- {d.summary} *Cause: {d.cause.replace('_', ' ')}.* What to do: {d.advice}", ""]
    if not report.diagnoses:
        lines += ["No class is below the weak-IoU threshold.", ""]
    cs = report.classes
    lines += ["## Class distribution", ""] + _table(
        ["class", "true share", "predicted share", "predicted / true", "flag"],
        [[c.name, _pct(c.true_share), _pct(c.pred_share), _num(c.share_ratio, 2), c.share_flag or ""] for c in cs],
    )
    lines += ["", "## Scores per class", ""] + _table(
        ["class", "IoU", "Dice", "precision", "recall", f"boundary F1 ({s['boundary_tolerance']:g} px)"],
        [[c.name, *(_num(v) for v in (c.iou, c.dice, c.precision, c.recall, c.boundary_f1))] for c in cs],
    )
    lines += ["", f"## Boundary band ({s['band_width']} px each side of a true edge) vs interior", ""] + _table(
        ["class", "band IoU", "interior IoU", "wrong pixels in band", "boundary-blurred"],
        [
            [c.name, _num(c.band_iou), _num(c.interior_iou), _pct(_ratio(c.errors["boundary"], c.wrong_pixels)),
             "yes" if c.boundary_flag else ""]
            for c in cs
        ],
    )
    labels = [b["label"] for b in cs[0].objects] if cs else []
    lines += ["", f"## Object recall by size (pixels; found = at least {_pct(s['found_fraction'])} predicted)", ""]
    lines += _table(
        ["class", *labels, f"small (<{s['small_object_size']})", "larger", "loses small objects"],
        [
            [c.name, *(_found(b) for b in c.objects), _found(c.small_objects), _found(c.large_objects),
             "yes" if c.small_object_flag else ""]
            for c in cs
        ],
    )
    lines += ["", "## Where the wrong pixels are", ""] + _table(
        ["class", "wrong pixels", *(g.replace("_", " ") for g in ERROR_GROUPS)],
        [[c.name, f"{c.wrong_pixels:,}", *(_pct(_ratio(c.errors[g], c.wrong_pixels)) for g in ERROR_GROUPS)] for c in cs],
    )
    return "\n".join(lines) + "\n"


def _found(bucket: dict) -> str:
    return "-" if not bucket["objects"] else f"{bucket['found']}/{bucket['objects']} ({_pct(bucket['recall'])})"
