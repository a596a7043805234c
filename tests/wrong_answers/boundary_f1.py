"""Wrong answers to exercise 09, ``my_boundary_f1(pred, target, k, tolerance=2.0) -> float``."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from unet_helpers.boundary import boundary_f1

FOUR = ndimage.generate_binary_structure(2, 1)
EIGHT = ndimage.generate_binary_structure(2, 2)


def _images(masks):
    if isinstance(masks, (list, tuple)):
        return [np.asarray(m) for m in masks]
    masks = np.asarray(masks)
    return list(masks.reshape(-1, *masks.shape[-2:]))


def _edge(mask, structure=FOUR, border_value=1):
    return mask & ~ndimage.binary_erosion(mask, structure, border_value=border_value)


def _matched(source, reference, tolerance, metric="euclidean", strict=False):
    if not source.any() or not reference.any():
        return 0
    if metric == "chessboard":
        distance = ndimage.distance_transform_cdt(~reference, metric="chessboard")
    else:
        distance = ndimage.distance_transform_edt(~reference)
    return int(((distance < tolerance) if strict else (distance <= tolerance))[source].sum())


def _f1(mp, npred, mt, ntrue):
    if npred == 0 and ntrue == 0:
        return 1.0
    p = mp / npred if npred else 0.0
    r = mt / ntrue if ntrue else 0.0
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _generic(pred, target, k, tolerance=2.0, structure=FOUR, border_value=1, metric="euclidean", strict=False,
             per_image=False):
    counts, scores = [0, 0, 0, 0], []
    for p, t in zip(_images(pred), _images(target)):
        pe, te = _edge(p == k, structure, border_value), _edge(t == k, structure, border_value)
        c = (_matched(pe, te, tolerance, metric, strict), int(pe.sum()), _matched(te, pe, tolerance, metric, strict),
             int(te.sum()))
        counts = [a + b for a, b in zip(counts, c)]
        scores.append(_f1(*c))
    return float(np.mean(scores)) if per_image else _f1(*counts)


def eight_neighbours(pred, target, k, tolerance=2.0):
    """Boundary pixels by 8-neighbourhood: thicker boundaries than the course's 4-neighbour rule."""
    return _generic(pred, target, k, tolerance, structure=EIGHT)


def border_is_boundary(pred, target, k, tolerance=2.0):
    """Erodes with border_value=0: every pixel on the image border becomes a boundary."""
    return _generic(pred, target, k, tolerance, border_value=0)


def strict_tolerance(pred, target, k, tolerance=2.0):
    """distance < tolerance: a boundary exactly `tolerance` away is not matched."""
    return _generic(pred, target, k, tolerance, strict=True)


def chessboard_distance(pred, target, k, tolerance=2.0):
    """Chessboard distance: diagonal neighbours two steps away count as 2, not 2.83."""
    return _generic(pred, target, k, tolerance, metric="chessboard")


def mean_per_image(pred, target, k, tolerance=2.0):
    """Averages per-image F1 instead of summing the counts over the batch."""
    return _generic(pred, target, k, tolerance, per_image=True)


def empty_vs_empty_is_zero(pred, target, k, tolerance=2.0):
    score = _generic(pred, target, k, tolerance)
    nothing = not any((np.asarray(m) == k).any() for m in _images(pred) + _images(target))
    return 0.0 if nothing else score


def precision_only(pred, target, k, tolerance=2.0):
    """Reports the boundary precision, not F1."""
    mp = npred = 0
    for p, t in zip(_images(pred), _images(target)):
        pe, te = _edge(p == k), _edge(t == k)
        mp, npred = mp + _matched(pe, te, tolerance), npred + int(pe.sum())
    return mp / npred if npred else float(not any((np.asarray(t) == k).any() for t in _images(target)))


def delegates_to_package(pred, target, k, tolerance=2.0):
    return float(boundary_f1(pred, target, num_classes=int(max(np.asarray(pred).max(), np.asarray(target).max())) + 1,
                             tolerance=tolerance)[k])


def relabels_input(pred, target, k, tolerance=2.0):
    """Right value, but marks the class in the caller's tensor (pred[pred == k] = 255) to find it."""
    for masks in (pred, target):
        for m in masks if isinstance(masks, (list, tuple)) else [masks]:
            m[m == k] = 255
    return _generic(pred, target, 255, tolerance)
