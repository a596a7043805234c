"""The predictions of exercise 12: five "models", each broken in one known way, simulated from the truth.

Training five models to fail on purpose would take minutes (lesson 07 trains three); here each
defect is applied to the true masks of a seeded synthetic set, so the exercise runs in a second
and the cause of every weak class is known exactly:

- ``"erodes boundaries"``: every object predicted one pixel too thin;
- ``"drops small objects"``: every true object under 64 pixels missing from the prediction (a
  clean-up threshold chosen for larger objects);
- ``"under-predicts a rare class"``: squares are rare (about 2 % of the pixels) and three of four
  square objects, of every size, are predicted as background;
- ``"confuses two classes"``: about a third of the circles are predicted as squares and of the
  squares as circles: the amount of each class is about right, its place is not;
- ``"healthy"``: one pixel in a hundred relabelled at random.

``broken_models(seed)`` returns them under neutral names (``"model A"`` ... ``"model E"``, in an
order drawn from the seed); ``defects(seed)`` says which defect hides behind each name, and
``CAUSES`` which cause a diagnosis should name for it (``WEAK_CLASS``: of which class).

Shapes: masks ``(N, H, W)`` int64 class ids, 0 background, 1 circle, 2 square.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..data import synthetic_segmentation

DEFECTS = ("erodes boundaries", "drops small objects", "under-predicts a rare class", "confuses two classes", "healthy")
CAUSES = dict(zip(DEFECTS, ("boundary", "small objects", "imbalance", "confusion", "healthy")))
WEAK_CLASS = dict(zip(DEFECTS, (1, 1, 2, 1, 1)))  # the class whose evidence shows the cause
NAMES = tuple(f"model {letter}" for letter in "ABCDE")
_EIGHT = np.ones((3, 3), bool)  # objects are 8-connected


def objects(mask: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Connected objects of class ``k``: ``(labels (H, W) with ids 1..count, count)``."""
    return ndimage.label(mask == k, structure=_EIGHT)


def erode(masks: np.ndarray, pixels: int = 1) -> np.ndarray:
    """Every foreground class shrunk by ``pixels`` 4-neighbour steps (the image border does not erode)."""
    out = masks.copy()
    for i, mask in enumerate(masks):
        for k in (1, 2):
            kept = ndimage.binary_erosion(mask == k, iterations=pixels, border_value=1)
            out[i][(mask == k) & ~kept] = 0
    return out


def drop_small(masks: np.ndarray, min_size: int = 64) -> np.ndarray:
    """Every object (per class) under ``min_size`` pixels set to background."""
    out = masks.copy()
    for i, mask in enumerate(masks):
        for k in (1, 2):
            labels, count = objects(mask, k)
            small = np.bincount(labels.ravel(), minlength=count + 1) < min_size
            small[0] = False  # label 0 is "not this class"
            out[i][small[labels]] = 0
    return out


def relabel(masks: np.ndarray, changes: dict[int, int], share: float, rng: np.random.Generator) -> np.ndarray:
    """For each ``k -> to`` of ``changes``, a random ``share`` of the objects of class ``k`` drawn as ``to``."""
    out = masks.copy()
    for i, mask in enumerate(masks):
        for k, to in changes.items():
            labels, count = objects(mask, k)
            chosen = np.flatnonzero(rng.random(count) < share) + 1
            out[i][np.isin(labels, chosen)] = to
    return out


def scatter(masks: np.ndarray, share: float, rng: np.random.Generator, num_classes: int = 3) -> np.ndarray:
    """About ``share`` of the pixels relabelled at random."""
    flip = rng.random(masks.shape) < share
    return np.where(flip, rng.integers(0, num_classes, masks.shape), masks)


def truth(seed: int, count: int = 24) -> np.ndarray:
    """True masks ``(count, 64, 64)``: 2 to 6 circles and squares of radius 3 to 12 per image."""
    _, masks = synthetic_segmentation(count, size=64, seed=seed, num_shapes=(2, 6), radius=(3, 12))
    return masks


def simulate(defect: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(preds, targets)`` of one defect (see the module docstring)."""
    rng = np.random.default_rng(seed)
    masks = truth(1000 + seed)
    if defect == "erodes boundaries":
        return erode(masks, 1), masks
    if defect == "drops small objects":
        return drop_small(masks, 64), masks
    if defect == "under-predicts a rare class":
        rare = relabel(truth(2000 + seed), {2: 1}, 0.8, rng)  # four of five squares become circles: squares are rare
        return relabel(rare, {2: 0}, 0.75, rng), rare
    if defect == "confuses two classes":
        return relabel(masks, {1: 2, 2: 1}, 0.35, rng), masks
    if defect == "healthy":
        return scatter(masks, 0.01, rng), masks
    raise ValueError(f"unknown defect {defect!r}; expected one of {DEFECTS}")


def defects(seed: int = 0) -> dict[str, str]:
    """``{"model A": defect, ...}``: which defect hides behind each name of ``broken_models(seed)``."""
    order = np.random.default_rng(10_000 + seed).permutation(len(DEFECTS))
    return {name: DEFECTS[int(index)] for name, index in zip(NAMES, order)}


def broken_models(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"model A": (preds, targets), ...}``: five simulated models, one defect each, under neutral names."""
    return {name: simulate(defect, seed) for name, defect in defects(seed).items()}
