"""Wrong answers to exercise 12: ``my_evidence(preds, targets, k, band_width=2, small_size=64)`` and
``my_cause(evidence)``."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

FOUR = ndimage.generate_binary_structure(2, 1)
EIGHT = np.ones((3, 3), bool)


def _evidence(preds, targets, k, band_width=2, small_size=64, band_of="both", found_rule="half", share="pred/true",
              undefined=math.nan, structure=EIGHT, confusion="most", per_image=False, band_rule="<", small_rule="<"):
    def edge(mask):
        return mask & ~ndimage.binary_erosion(mask, FOUR, border_value=1)

    def ratio(num, den):
        return num / den if den else undefined

    band_i = band_u = inside_i = inside_u = 0
    small, large, true_pixels, pred_pixels, missed, per = [0, 0], [0, 0], 0, 0, {}, []
    for pred, target in zip(preds, targets):
        pred, target = np.asarray(pred), np.asarray(target)
        t, p = target == k, pred == k
        edges = edge(t) | edge(~t) if band_of == "both" else edge(t)
        distance = ndimage.distance_transform_edt(~edges) if edges.any() else np.full(t.shape, np.inf)
        band = distance <= band_width if band_rule == "<=" else distance < band_width
        bi, bu = (t & p & band).sum(), ((t | p) & band).sum()
        band_i, band_u = band_i + bi, band_u + bu
        inside_i, inside_u = inside_i + (t & p & ~band).sum(), inside_u + ((t | p) & ~band).sum()
        per.append(ratio(bi, bu))
        labels, count = ndimage.label(t, structure=structure)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        hits = np.bincount(labels.ravel(), weights=p.ravel(), minlength=count + 1)[1:]
        found = {"any": hits > 0, "whole": hits == sizes, "half": hits >= 0.5 * sizes}[found_rule]
        is_small = sizes <= small_size if small_rule == "<=" else sizes < small_size
        small = [small[0] + is_small.sum(), small[1] + (found & is_small).sum()]
        large = [large[0] + (~is_small).sum(), large[1] + (found & ~is_small).sum()]
        true_pixels, pred_pixels = true_pixels + t.sum(), pred_pixels + p.sum()
        for cls, n in zip(*np.unique(pred[t & ~p], return_counts=True)):
            missed[int(cls)] = missed.get(int(cls), 0) + int(n)
    if confusion == "non-background":
        missed.pop(0, None)
    band_iou = float(np.nanmean(per)) if per_image else ratio(band_i, band_u)
    return {
        "band_iou": band_iou, "interior_iou": ratio(inside_i, inside_u),
        "small_recall": ratio(small[1], small[0]), "large_recall": ratio(large[1], large[0]),
        "share_ratio": ratio(true_pixels, pred_pixels) if share == "true/pred" else ratio(pred_pixels, true_pixels),
        "confused_with": (min if confusion == "least" else max)(missed, key=lambda c: (missed[c], -c)) if missed else None,
    }


def band_of_the_class_only(preds, targets, k, band_width=2, small_size=64):
    """The band around the true boundary only, not around the edges of both sides."""
    return _evidence(preds, targets, k, band_width, small_size, band_of="class")


def found_by_any_pixel(preds, targets, k, band_width=2, small_size=64):
    """An object counts as found when a single pixel of it is predicted (the course: half of it)."""
    return _evidence(preds, targets, k, band_width, small_size, found_rule="any")


def share_inverted(preds, targets, k, band_width=2, small_size=64):
    """true / predicted instead of predicted / true."""
    return _evidence(preds, targets, k, band_width, small_size, share="true/pred")


def undefined_as_zero(preds, targets, k, band_width=2, small_size=64):
    """0 where the ratio is undefined (no small object, say): an absent measure reads as a failure."""
    return _evidence(preds, targets, k, band_width, small_size, undefined=0.0)


def objects_by_four_neighbours(preds, targets, k, band_width=2, small_size=64):
    """Objects labelled with 4-connectivity: diagonal pieces split into more, smaller objects."""
    return _evidence(preds, targets, k, band_width, small_size, structure=FOUR)


def least_confused(preds, targets, k, band_width=2, small_size=64):
    """The class taking the fewest missed pixels."""
    return _evidence(preds, targets, k, band_width, small_size, confusion="least")


def found_only_when_whole(preds, targets, k, band_width=2, small_size=64):
    """An object counts as found only when every one of its pixels is predicted (the course: half)."""
    return _evidence(preds, targets, k, band_width, small_size, found_rule="whole")


def small_includes_the_threshold(preds, targets, k, band_width=2, small_size=64):
    """``sizes <= small_size``: an object of exactly ``small_size`` pixels counted as small."""
    return _evidence(preds, targets, k, band_width, small_size, small_rule="<=")


def background_is_no_confusion(preds, targets, k, band_width=2, small_size=64):
    """Only foreground classes considered for ``confused_with``: a model whose misses became background
    then reads as 'nothing missed' (None)."""
    return _evidence(preds, targets, k, band_width, small_size, confusion="non-background")


def band_includes_its_width(preds, targets, k, band_width=2, small_size=64):
    """``distance <= band_width``: the band one pixel wider than defined."""
    return _evidence(preds, targets, k, band_width, small_size, band_rule="<=")


def band_iou_mean_per_image(preds, targets, k, band_width=2, small_size=64):
    """Band IoU averaged per image instead of from counts summed over the images."""
    return _evidence(preds, targets, k, band_width, small_size, per_image=True)


def overwrites_preds(preds, targets, k, band_width=2, small_size=64):
    """Right numbers, but binarises the caller's predictions in place."""
    evidence = _evidence(preds, targets, k, band_width, small_size)
    for pred in preds:
        pred[...] = pred == k
    return evidence


# -- my_cause(evidence) -----------------------------------------------------------------------


def _healthy(e):
    return (all(math.isnan(e[key]) or e[key] >= v for key, v in
                (("interior_iou", 0.9), ("band_iou", 0.8), ("small_recall", 0.9), ("large_recall", 0.9)))
            and 0.8 <= e["share_ratio"] <= 1.25)


def always_imbalance(evidence):
    return "imbalance"


def boundary_from_band_alone(evidence):
    """Low band IoU alone read as a boundary problem: a model that misses the class has a low band IoU too."""
    if _healthy(evidence):
        return "healthy"
    if evidence["band_iou"] < 0.7:
        return "boundary"
    if evidence["large_recall"] - evidence["small_recall"] > 0.25:
        return "small objects"
    return "confusion" if evidence["confused_with"] not in (None, 0) else "imbalance"


def confusion_first(evidence):
    """Any missed pixel taken by another class read as confusion, before the other causes."""
    if _healthy(evidence):
        return "healthy"
    if evidence["confused_with"] is not None:
        return "confusion"
    if evidence["interior_iou"] - evidence["band_iou"] > 0.2:
        return "boundary"
    return "small objects" if evidence["large_recall"] - evidence["small_recall"] > 0.25 else "imbalance"


def small_objects_without_large_check(evidence):
    """Low small-object recall read as 'small objects' even when the large ones are missed too (imbalance)."""
    if _healthy(evidence):
        return "healthy"
    if evidence["interior_iou"] - evidence["band_iou"] > 0.2:
        return "boundary"
    if evidence["small_recall"] < 0.6:
        return "small objects"
    return "confusion" if evidence["confused_with"] not in (None, 0) else "imbalance"


def never_healthy(evidence):
    if evidence["interior_iou"] - evidence["band_iou"] > 0.2:
        return "boundary"
    if evidence["large_recall"] - evidence["small_recall"] > 0.25:
        return "small objects"
    return "confusion" if evidence["confused_with"] not in (None, 0) else "imbalance"


def misspelt_cause(evidence):
    return "boundaries" if evidence["interior_iou"] - evidence["band_iou"] > 0.2 else "healthy"
