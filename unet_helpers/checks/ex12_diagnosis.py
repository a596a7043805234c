"""Checks of exercise 12: compute the evidence of a weak class, then name its cause.

``diagnosis_evidence`` checks ``my_evidence(preds, targets, k, band_width=2, small_size=64)``, which
returns, for class ``k`` over every image (counts summed first, ratios last):

- ``band_iou`` / ``interior_iou``: IoU of class ``k`` within ``band_width`` pixels of a true edge
  (Euclidean distance ``< band_width`` to a pixel on either side of a true edge of class ``k``), and
  everywhere else;
- ``small_recall`` / ``large_recall``: the share of true objects (8-connected pieces of class ``k``)
  under / of at least ``small_size`` pixels that are found (at least half their pixels predicted ``k``);
- ``share_ratio``: pixels predicted ``k`` over pixels truly ``k``;
- ``confused_with``: the class most often predicted on the true pixels of ``k`` that were missed
  (``None`` if none was missed).

Undefined values (nothing to divide by) are NaN. These are the mask inspector's definitions
(``unet_helpers.inspector``, lesson 07); ``reference_evidence`` below recomputes them with NumPy
(``tests/test_checks_diagnosis.py`` checks that both agree), and the inspector itself may not be
called by the answer.

``diagnosis`` checks ``my_cause(evidence) -> str``: one of ``CAUSE_NAMES`` for the evidence of a
class, on evidence from simulated models the learner has not seen (``ex12_broken_models.py``).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Sequence

import numpy as np
import torch
from scipy import ndimage

from .compare import Variant, expect_same
from .core import Property, PropertyFailed
from .ex12_broken_models import CAUSES, DEFECTS, WEAK_CLASS, simulate
from .isolation import call_learner
from .spec import ExerciseSpec

KEYS = ("band_iou", "interior_iou", "small_recall", "large_recall", "share_ratio", "confused_with")
CAUSE_NAMES = ("boundary", "small objects", "imbalance", "confusion", "healthy")
_FOUR = ndimage.generate_binary_structure(2, 1)


def _as_masks(masks: Any) -> list[np.ndarray]:
    if isinstance(masks, torch.Tensor):
        masks = masks.numpy()
    masks = [np.asarray(m.numpy() if isinstance(m, torch.Tensor) else m) for m in masks] if not isinstance(
        masks, np.ndarray) else list(masks.reshape(-1, *masks.shape[-2:]))
    return [m.astype(np.int64) for m in masks]


def _inner_edge(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border is not an edge)."""
    return mask & ~ndimage.binary_erosion(mask, _FOUR, border_value=1)


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def reference_evidence(preds: Any, targets: Any, k: int, band_width: int = 2, small_size: int = 64,
                       connectivity: int = 8, found_share: float = 0.5, per_image: bool = False,
                       inclusive_band: bool = False, inclusive_small: bool = False,
                       partner: str = "most") -> dict[str, Any]:
    """The evidence of class ``k`` (module docstring); the keyword options after ``small_size`` give the
    variants of common slips, the defaults the definition (``partner``: ``"most"``, or the slips
    ``"least"`` and ``"foreground"``, the most frequent class other than the background).

    Shape:
        - ``preds``, ``targets``: ``(N, H, W)`` class ids (tensor or array) or a list of ``(H, W)`` masks
    """
    structure = np.ones((3, 3), bool) if connectivity == 8 else _FOUR
    totals = dict(band=[0, 0], interior=[0, 0], small=[0, 0], large=[0, 0], true=0, pred=0)
    missed: dict[int, int] = {}
    per: list[dict[str, Any]] = []
    for pred, target in zip(_as_masks(preds), _as_masks(targets)):
        tk, pk = target == k, pred == k
        edges = _inner_edge(tk) | _inner_edge(~tk)
        if edges.any():
            distance = ndimage.distance_transform_edt(~edges)
            band = distance <= band_width if inclusive_band else distance < band_width
        else:
            band = np.zeros_like(tk)
        counts = dict(band=[int((tk & pk & band).sum()), int(((tk | pk) & band).sum())],
                      interior=[int((tk & pk & ~band).sum()), int(((tk | pk) & ~band).sum())])
        labels, count = ndimage.label(tk, structure=structure)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        hits = np.bincount(labels.ravel(), weights=pk.ravel(), minlength=count + 1)[1:]
        found = hits >= found_share * sizes
        small = sizes <= small_size if inclusive_small else sizes < small_size
        counts["small"] = [int(small.sum()), int((found & small).sum())]
        counts["large"] = [int((~small).sum()), int((found & ~small).sum())]
        for key in ("band", "interior", "small", "large"):
            totals[key] = [a + b for a, b in zip(totals[key], counts[key])]
        totals["true"] += int(tk.sum())
        totals["pred"] += int(pk.sum())
        for cls, n in zip(*np.unique(pred[tk & ~pk], return_counts=True)):
            missed[int(cls)] = missed.get(int(cls), 0) + int(n)
        per.append(_evidence(counts, int(tk.sum()), int(pk.sum()), missed, partner))
    if per_image:
        return {key: float(np.nanmean([e[key] for e in per])) if key != "confused_with" else per[-1][key]
                for key in KEYS}
    return _evidence(totals, totals["true"], totals["pred"], missed, partner)


def _partner(missed: dict[int, int], rule: str) -> int | None:
    """The class taking the most missed pixels (ties: the smaller id); ``rule`` gives the slips."""
    if rule == "foreground":
        missed = {cls: n for cls, n in missed.items() if cls != 0}
    if not missed:
        return None
    pick = min if rule == "least" else max
    return pick(missed, key=lambda c: (missed[c], -c))


def _evidence(counts: dict, true: int, pred: int, missed: dict[int, int], partner: str = "most") -> dict[str, Any]:
    partner = _partner(missed, partner)
    return {
        "band_iou": _ratio(*counts["band"]), "interior_iou": _ratio(*counts["interior"]),
        "small_recall": _ratio(counts["small"][1], counts["small"][0]),
        "large_recall": _ratio(counts["large"][1], counts["large"][0]),
        "share_ratio": _ratio(pred, true), "confused_with": partner,
    }


# ---------------------------------------------------------------------------------------------
# diagnosis_evidence
# ---------------------------------------------------------------------------------------------
def _call_evidence(fn: Callable[..., Any], preds: Any, targets: Any, k: int, **kwargs: Any) -> dict[str, Any]:
    value = call_learner(fn, preds, targets, k, **kwargs)
    if not isinstance(value, dict) or set(value) != set(KEYS):
        keys = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise PropertyFailed(f"my_evidence should return a dict with exactly the keys {list(KEYS)}.", keys, list(KEYS))
    out = {}
    for key in KEYS[:-1]:
        number = value[key]
        if isinstance(number, torch.Tensor) and number.numel() == 1:
            number = float(number)
        if not isinstance(number, numbers.Real) or isinstance(number, bool):
            raise PropertyFailed(f"`{key}` should be a number (NaN when undefined).", number, "a float")
        out[key] = float(number)
    partner = value["confused_with"]
    if isinstance(partner, (torch.Tensor, np.integer)):
        partner = int(partner)
    if partner is not None and (not isinstance(partner, int) or isinstance(partner, bool)):
        raise PropertyFailed("`confused_with` should be a class id (an int) or None.", partner, "e.g. 2")
    out["confused_with"] = partner
    return out


def _slips(preds: Any, targets: Any, k: int) -> list[Variant]:
    def slip(**change: Any) -> Callable[[], dict]:
        return lambda: reference_evidence(preds, targets, k, **change)

    return [
        Variant("objects are 8-connected pieces", slip(connectivity=4), "You split objects with 4-neighbours: two "
                "pixels that touch diagonally belong to one object here (the inspector's connectivity=8)."),
        Variant("found = at least half of the object's pixels", slip(found_share=1e-9), "You count an object as found "
                "when any of its pixels is predicted: the definition asks for at least half of them."),
        Variant("found = at least half of the object's pixels", slip(found_share=1.0), "You count an object as found "
                "only when every pixel is predicted: the definition asks for at least half of them."),
        Variant("band: distance < band_width to a true edge", slip(inclusive_band=True), "Your band includes pixels "
                "exactly band_width away: the band is distance < band_width."),
        Variant("counts summed over every image", slip(per_image=True), "You average per-image ratios; add up the "
                "counts of every image first, then divide once."),
        Variant("small = under small_size pixels", slip(inclusive_small=True), "You count an object of exactly "
                "small_size pixels as small: small means fewer than small_size pixels (`sizes < small_size`)."),
        Variant("the class taking the most missed pixels", slip(partner="least"), "You name the class that took "
                "the fewest missed pixels: `confused_with` is the one that took the most."),
        Variant("the background counts as a class too", slip(partner="foreground"), "You leave the background out "
                "of `confused_with`: when the missed pixels became background, the answer is 0 (that is what tells "
                "a model that under-predicts from one that confuses two classes)."),
    ]


def _evidence_case(defect: str, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    preds, targets = simulate(defect, seed)
    return preds, targets, WEAK_CLASS[defect]


def drawn_scene() -> tuple[np.ndarray, np.ndarray, int]:
    """Two 32x32 images of class 1 drawn so that every slip of the object rules gives other numbers.

    Image 0: two 6x6 squares touching at one corner (one object of 72 pixels with 8-neighbours, two
    small ones with 4), the upper one predicted; a 10x10 square with only its top 3 rows predicted
    (30 of 100 pixels: not found, though some pixels are), its other pixels predicted as class 2.
    Image 1: a 5x5 square predicted whole, a 6x6 square with 20 of its 36 pixels predicted (found,
    not whole), an 8x8 square (exactly 64 pixels: large) predicted whole. The missed pixels: 70
    became class 2, 52 background. Reference: small recall 2/2, large recall 2/3, confused with 2.

    Shape:
        - preds, targets: ``(2, 32, 32)`` int64 class ids
    """
    targets = np.zeros((2, 32, 32), np.int64)
    preds = np.zeros_like(targets)
    targets[0, 2:8, 2:8] = targets[0, 8:14, 8:14] = 1  # diagonal pieces
    preds[0, 2:8, 2:8] = 1
    targets[0, 18:28, 18:28] = 1  # 100 pixels, 30 predicted
    preds[0, 18:28, 18:28] = 2
    preds[0, 18:21, 18:28] = 1
    targets[1, 2:7, 2:7] = preds[1, 2:7, 2:7] = 1  # small, whole
    targets[1, 2:8, 12:18] = 1  # small, 20 of 36 predicted
    preds[1, 2:5, 12:18] = 1
    preds[1, 5, 12:14] = 1
    targets[1, 16:24, 16:24] = preds[1, 16:24, 16:24] = 1  # exactly 64 pixels
    return preds, targets, 1


def _compare_evidence(fn: Callable[..., Any], case: tuple[np.ndarray, np.ndarray, int], what: str,
                      keys: Sequence[str]) -> None:
    preds, targets, k = case
    got = _call_evidence(fn, preds, targets, k)
    expected = reference_evidence(preds, targets, k)
    pick = lambda e: {key: e[key] for key in keys}  # noqa: E731
    variants = [Variant(v.name, (lambda v=v: pick(v.compute())), v.message) for v in _slips(preds, targets, k)]
    expect_same(pick(got), pick(expected), f"{what}, class {k}, {len(targets)} images", variants,
                atol=1e-9, rtol=1e-9)


def _compare_models(fn: Callable[..., Any], defects: Sequence[str], seed: int, keys: Sequence[str]) -> None:
    for defect in defects:
        _compare_evidence(fn, _evidence_case(defect, seed), f"a model that {defect}", keys)


def _keys(fn: Callable[..., Any]) -> None:
    _call_evidence(fn, *_evidence_case("healthy", 1))


def _band(fn: Callable[..., Any]) -> None:
    _compare_models(fn, ("erodes boundaries", "healthy"), 1, ("band_iou", "interior_iou"))


def _recall(fn: Callable[..., Any]) -> None:
    _compare_models(fn, ("drops small objects", "under-predicts a rare class"), 2, ("small_recall", "large_recall"))
    _compare_evidence(fn, drawn_scene(), "drawn objects: diagonal pieces, partly predicted squares, one of exactly "
                      "64 pixels", ("small_recall", "large_recall"))


def _share(fn: Callable[..., Any]) -> None:
    _compare_models(fn, ("under-predicts a rare class", "erodes boundaries"), 3, ("share_ratio",))


def _confusion(fn: Callable[..., Any]) -> None:
    _compare_models(fn, ("confuses two classes", "under-predicts a rare class"), 4, ("confused_with",))
    _compare_evidence(fn, drawn_scene(), "drawn objects whose missed pixels became class 2 (70) and background (52)",
                      ("confused_with",))


def _undefined(fn: Callable[..., Any]) -> None:
    target = np.zeros((2, 16, 16), np.int64)
    target[:, 2:14, 2:14] = 1  # one large object per image, no small one
    got = _call_evidence(fn, target.copy(), target, 1)
    if not math.isnan(got["small_recall"]):
        raise PropertyFailed("With no object under small_size pixels, small-object recall is 0/0: NaN, not a number.",
                             got["small_recall"], math.nan, hint="Return `math.nan` (or `float('nan')`) when a "
                             "denominator is 0.", name="undefined values are NaN")
    absent = _call_evidence(fn, target.copy(), target, 2)
    for key in ("share_ratio", "large_recall", "band_iou", "interior_iou"):
        if not math.isnan(absent[key]):
            raise PropertyFailed(f"Class 2 is in neither mask: `{key}` is 0/0, NaN.", absent[key], math.nan,
                                 name="undefined values are NaN")
    if absent["confused_with"] is not None:
        raise PropertyFailed("Class 2 has no missed pixel: `confused_with` is None.", absent["confused_with"], None,
                             name="undefined values are NaN")


def _accepts(fn: Callable[..., Any]) -> None:
    preds, targets, k = _evidence_case("drops small objects", 5)
    as_arrays = _call_evidence(fn, preds, targets, k)
    as_tensors = _call_evidence(fn, torch.from_numpy(preds), torch.from_numpy(targets), k)
    as_lists = _call_evidence(fn, list(preds), list(targets), k)
    expect_same(as_tensors, as_arrays, "the same masks as tensors and as arrays", [], atol=1e-12)
    expect_same(as_lists, as_arrays, "the same masks as a list of (H, W) arrays", [], atol=1e-12)


def _evidence_properties() -> list[Property]:
    return [
        Property("returns the six numbers as a dict", "a healthy model, class 1, 24 images of 64x64", _keys,
                 "Return `dict(band_iou=..., interior_iou=..., small_recall=..., large_recall=..., share_ratio=..., "
                 "confused_with=...)`."),
        Property("band and interior IoU", "an eroding and a healthy model, class 1", _band,
                 "`edges = inner(true_k) | inner(~true_k)`, `band = distance_transform_edt(~edges) < band_width`; IoU "
                 "within the band and outside it, counts summed over the images."),
        Property("object recall by size", "a model that drops small objects, one that misses a rare class, drawn "
                 "objects (diagonal pieces, partly predicted, exactly small_size pixels)", _recall,
                 "`labels, n = ndimage.label(true_k, structure=np.ones((3, 3)))`; per object its size and how many of "
                 "its pixels are predicted k (`np.bincount(labels.ravel(), weights=pred_k.ravel())`)."),
        Property("predicted / true share", "a model that misses a rare class, one that erodes", _share),
        Property("the class taking the missed pixels", "a model that confuses circles and squares, one that misses "
                 "a rare class, drawn objects whose missed pixels went to two classes", _confusion,
                 "Among the true pixels of k predicted as something else, the most frequent predicted class."),
        Property("undefined values are NaN", "no small object; a class in neither mask", _undefined),
        Property("accepts tensors, arrays and lists of masks", "the same masks three ways", _accepts),
    ]


DIAGNOSIS_EVIDENCE = ExerciseSpec(
    name="diagnosis_evidence",
    title="The evidence of a weak class: band vs interior IoU, recall by size, share, confusion",
    notebook="ex12_diagnosis",
    task="Write `my_evidence(preds, targets, k, band_width=2, small_size=64) -> dict` with the keys "
         f"{', '.join(f'`{key}`' for key in KEYS)} (definitions above), counts summed over every image.",
    properties=_evidence_properties,
    hints=(
        "Loop over the images, add up counts (intersections, unions, objects, found objects, pixels), and divide "
        "only after the loop: that is what makes the numbers independent of how the images are grouped.",
        "Edges: `m & ~ndimage.binary_erosion(m, ndimage.generate_binary_structure(2, 1), border_value=1)` for "
        "`m = true_k` and for `m = ~true_k`; band: `ndimage.distance_transform_edt(~edges) < band_width`.",
        "Objects: `labels, n = ndimage.label(true_k, structure=np.ones((3, 3), bool))`; "
        "`sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]`, `hits` the same with `weights=pred_k.ravel()`; "
        "found: `hits >= 0.5 * sizes`. Missed pixels: `np.unique(pred[true_k & ~pred_k], return_counts=True)`.",
    ),
    defines=("my_evidence",),
    reference="unet_helpers/inspector/counts.py: MaskCounts (the inspector of lesson 07)",
    forbidden=("unet_helpers.inspector.inspect_masks", "unet_helpers.inspector.counts.MaskCounts",
               "unet_helpers.inspector.report.build_report", "unet_helpers.boundary.boundary_map",
               "unet_helpers.checks.ex12_diagnosis.reference_evidence"),
    next_steps="compute the evidence of the weak class of every model below, and write `my_cause`.",
)


# ---------------------------------------------------------------------------------------------
# diagnosis: name the cause from the evidence
# ---------------------------------------------------------------------------------------------
def _cause(fn: Callable[..., Any], evidence: dict[str, Any]) -> str:
    value = call_learner(fn, dict(evidence))
    if value not in CAUSE_NAMES:
        raise PropertyFailed(f"my_cause should return one of {list(CAUSE_NAMES)}.", value, "e.g. 'boundary'",
                             name="returns one of the five causes")
    return value


def _show(evidence: dict[str, Any]) -> str:
    shown = ", ".join(f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"
                      for key, value in evidence.items())
    return shown.replace("nan", "NaN")


def _why(defect: str) -> str:
    return {
        "erodes boundaries": "band IoU is far below interior IoU while objects are still found: the edges are wrong",
        "drops small objects": "objects under small_size are missed while larger ones are found",
        "under-predicts a rare class": "far fewer pixels are predicted than are true (share well below 1), objects "
                                       "of every size are missed, and the missed pixels became background",
        "confuses two classes": "the missed pixels went to another foreground class, not to the background: the "
                                "class is drawn, but as the other one (and the other one as it)",
        "healthy": "every number is near 1: nothing to diagnose",
    }[defect]


def _names(defect: str) -> Callable[[Callable[..., Any]], None]:
    def run(fn: Callable[..., Any]) -> None:
        for seed in (11, 12, 13):
            preds, targets, k = _evidence_case(defect, seed)
            evidence = reference_evidence(preds, targets, k)
            got, expected = _cause(fn, evidence), CAUSES[defect]
            if got != expected:
                raise PropertyFailed(f"For the evidence {_show(evidence)} (a model that {defect}, seed {seed}) you name "
                                     f"{got!r}; it is {expected!r}: {_why(defect)}.", got, expected)
    return run


def _returns_a_name(fn: Callable[..., Any]) -> None:
    preds, targets, k = _evidence_case("healthy", 10)
    _cause(fn, reference_evidence(preds, targets, k))


def _cause_properties() -> list[Property]:
    unseen = "the evidence of 3 simulated models you have not seen (seeds 11-13)"
    return [Property("returns one of the five causes", "the evidence of a healthy model", _returns_a_name,
                     f"Return one of {list(CAUSE_NAMES)}.")] + [
        Property(f"names {CAUSES[defect]!r} for a model that {defect}", unseen, _names(defect),
                 "Compare band with interior IoU, small with large recall, where the missed pixels went, and the "
                 "share with 1.") for defect in DEFECTS]


DIAGNOSIS = ExerciseSpec(
    name="diagnosis",
    title="Name the cause of a weak class from its evidence",
    notebook="ex12_diagnosis",
    task=f"Write `my_cause(evidence) -> str`: the dict of `my_evidence` -> one of {', '.join(map(repr, CAUSE_NAMES))}.",
    properties=_cause_properties,
    hints=(
        "One comparison per cause: band vs interior IoU (boundary), small vs large recall (small objects), where the "
        "missed pixels went (confusion: to another foreground class), the share against 1 (imbalance).",
        "Order matters, because one defect moves several numbers (an eroded small object is also missed): healthy "
        "first (interior >= 0.9, band >= 0.8, recalls >= 0.9, share in [0.8, 1.25]), then boundary (band IoU more "
        "than 0.2 below interior IoU), then small objects (small recall more than 0.25 below a large recall >= 0.8).",
        "Then confusion when `confused_with` is a foreground class (not None, not 0, the background), and imbalance "
        "when the share is below 0.8 or above 1.25.",
    ),
    defines=("my_cause",),
    reference="unet_helpers/inspector/report.py: diagnose (its rules use the error groups; yours use the evidence)",
    forbidden=("unet_helpers.inspector.report.diagnose", "unet_helpers.inspector.inspect_masks",
               "unet_helpers.inspector.report.build_report"),
    next_steps="run your two functions on lesson 07's trained models (`inspect_masks` gives the same numbers).",
)
