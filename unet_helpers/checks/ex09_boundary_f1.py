"""Check of exercise 09: boundary F1 of one class.

Reference: ``unet_helpers.boundary.boundary_f1`` (its entry for the class): the boundary of class
``k`` is the set of its pixels with a 4-neighbour of another class (the image border is not a
boundary); a predicted boundary pixel is matched when a true one lies within ``tolerance``
(Euclidean distance, inclusive), and vice versa; precision and recall from the matched counts
summed over every image of the batch, F1 = 2PR / (P + R); empty vs empty is 1, one empty is 0.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable

import numpy as np
import torch
from scipy import ndimage

from ..boundary import boundary_counts, boundary_f1
from .compare import Variant, expect_same
from .core import Property, PropertyFailed
from .isolation import call_learner
from .spec import ExerciseSpec
from .tools import generator


def _scene(seed: int, n: int = 2, size: tuple[int, int] = (24, 28), k: int = 3) -> torch.Tensor:
    """Class ids ``(N, H, W)``: rectangles and discs of classes 1..k-1 on background 0."""
    gen = generator(1400 + seed)
    h, w = size
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    masks = torch.zeros(n, h, w, dtype=torch.long)
    for i in range(n):
        for _ in range(3):
            cls = int(torch.randint(1, k, (1,), generator=gen))
            cy, cx = int(torch.randint(3, h - 3, (1,), generator=gen)), int(torch.randint(3, w - 3, (1,), generator=gen))
            r = int(torch.randint(2, 7, (1,), generator=gen))
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            box = ((yy - cy).abs() <= r) & ((xx - cx).abs() <= r + 1)
            masks[i][disc if int(torch.randint(0, 2, (1,), generator=gen)) else box] = cls
    return masks


def _shifted(mask: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    return torch.roll(mask, shifts=(dy, dx), dims=(-2, -1))


def _noisy(mask: torch.Tensor, seed: int, k: int = 3, fraction: float = 0.06) -> torch.Tensor:
    """A prediction: ``mask`` shifted by one pixel, with some pixels relabelled at random."""
    gen = generator(1500 + seed)
    flip = torch.rand(mask.shape, generator=gen) < fraction
    return torch.where(flip, torch.randint(0, k, mask.shape, generator=gen), _shifted(mask, 1, 0))


# -- what common slips compute (to name them) ---------------------------------------------------------
def _edges(mask: np.ndarray, neighbours: int = 4, border: bool = False, outer: bool = False) -> np.ndarray:
    structure = ndimage.generate_binary_structure(2, 1 if neighbours == 4 else 2)
    if outer:
        return ndimage.binary_dilation(mask, structure) & ~mask
    eroded = ndimage.binary_erosion(mask, structure, border_value=0 if border else 1)
    return mask & ~eroded


def _slip(pred: torch.Tensor, target: torch.Tensor, k: int, tolerance: float, neighbours: int = 4,
          border: bool = False, outer: bool = False, metric: str = "euclidean", strict: bool = False,
          per_image: bool = False, empty: float = 1.0, score: str = "f1") -> float:
    """Boundary F1 of class ``k`` with one convention changed."""
    pred, target = pred.reshape(-1, *pred.shape[-2:]).numpy(), target.reshape(-1, *target.shape[-2:]).numpy()
    counts, scores = np.zeros(4), []
    for p, t in zip(pred, target):
        pb = _edges(p == k, neighbours, border, outer)
        tb = _edges(t == k, neighbours, border, outer)
        one = np.array([_match(pb, tb, tolerance, metric, strict), pb.sum(), _match(tb, pb, tolerance, metric, strict),
                        tb.sum()], dtype=float)
        counts += one
        scores.append(_f1(one, empty, score))
    return float(np.mean(scores)) if per_image else _f1(counts, empty, score)


def _match(source: np.ndarray, reference: np.ndarray, tolerance: float, metric: str, strict: bool) -> int:
    if not source.any() or not reference.any():
        return 0
    if metric == "euclidean":
        distance = ndimage.distance_transform_edt(~reference)
    else:
        distance = ndimage.distance_transform_cdt(~reference, metric=metric)
    return int(((distance < tolerance) if strict else (distance <= tolerance))[source].sum())


def _f1(counts: np.ndarray, empty: float, score: str) -> float:
    matched_pred, n_pred, matched_true, n_true = counts
    if n_pred == 0 and n_true == 0:
        return empty
    precision = matched_pred / n_pred if n_pred else 0.0
    recall = matched_true / n_true if n_true else 0.0
    if score == "precision":
        return precision
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _variants(pred: torch.Tensor, target: torch.Tensor, k: int, tolerance: float) -> list[Variant]:
    def slip(**change: Any) -> Callable[[], float]:
        return lambda: _slip(pred, target, k, tolerance, **change)

    edge, dist, pool = ("boundary: pixels of the class with a 4-neighbour of another class",
                        "matched within the tolerance (Euclidean, inclusive)", "counts summed over the batch")
    return [
        Variant(edge, slip(neighbours=8), "Your boundary uses 8-neighbours: diagonal contacts make the boundary "
                "thicker than the 4-neighbour one the course (and DAVIS) use."),
        Variant(edge, slip(outer=True), "You take the outer boundary (background pixels next to the class): the "
                "boundary of class k is made of class-k pixels."),
        Variant("the image border is not a boundary", slip(border=True), "You count the pixels of an object that touch "
                "the image border as boundary: the object may go on outside the frame."),
        Variant(dist, slip(metric="chessboard"), "You measure distance with the chessboard metric (max(|dy|, |dx|)); "
                "the tolerance is a Euclidean distance."),
        Variant(dist, slip(metric="taxicab"), "You measure distance as |dy| + |dx|; the tolerance is a Euclidean "
                "distance."),
        Variant(dist, slip(strict=True), "You match only pixels strictly closer than the tolerance; a pixel exactly "
                "`tolerance` away is matched."),
        Variant(pool, slip(per_image=True), "You average one F1 per image; sum the matched and total boundary pixels "
                "over the batch, then take precision, recall and F1 once."),
        Variant("precision and recall, then F1", slip(score="precision"), "You return precision only: F1 also needs "
                "recall (matched true boundary pixels over all true ones)."),
    ]


def _call(fn: Callable[..., Any], pred: Any, target: Any, k: int, **kwargs: Any) -> float:
    value = call_learner(fn, pred, target, k, **kwargs)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = float(value)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise PropertyFailed("my_boundary_f1 should return one number, the F1 of class k.", value, "a float such as 0.82")
    return float(value)


def _compare(fn: Callable[..., Any], pred: torch.Tensor, target: torch.Tensor, k: int, tolerance: float,
             what: str) -> None:
    got = _call(fn, pred, target, k, tolerance=tolerance)
    expected = float(boundary_f1(pred, target, num_classes=3, tolerance=tolerance)[k])
    expect_same(got, expected, what, _variants(pred, target, k, tolerance), atol=1e-6)


def _number(fn: Callable[..., Any]) -> None:
    target = _scene(0)
    value = _call(fn, _noisy(target, 0), target, 1, tolerance=2.0)
    if not 0.0 <= value <= 1.0:
        raise PropertyFailed("An F1 lies between 0 and 1.", value, "a value in [0, 1]")


def _perfect(fn: Callable[..., Any]) -> None:
    for seed in range(2):
        target = _scene(seed)
        for k in (1, 2):
            value = _call(fn, target.clone(), target, k, tolerance=0.0)
            if abs(value - 1.0) > 1e-9:
                raise PropertyFailed(f"A prediction equal to the truth has boundary F1 1 for class {k}, even with "
                                     "tolerance 0.", value, 1.0)


def _definition(fn: Callable[..., Any]) -> None:
    for seed in range(3):
        target = _scene(seed)
        for k in (1, 2):
            _compare(fn, _noisy(target, seed), target, k, 2.0, f"scene {seed}, class {k}, tolerance 2")


def _tolerance(fn: Callable[..., Any]) -> None:
    target = _scene(3)
    for dy, dx, tolerance in ((1, 1, 1.0), (1, 1, 1.5), (2, 1, 2.0), (2, 1, 2.5), (0, 1, 0.0)):
        pred = _shifted(target, dy, dx)
        _compare(fn, pred, target, 1, tolerance, f"the truth shifted by ({dy}, {dx}), tolerance {tolerance}")


def _border(fn: Callable[..., Any]) -> None:
    target = torch.zeros(1, 16, 20, dtype=torch.long)
    target[0, :, :7] = 1  # class 1 fills the left edge: its only real boundary is column 6
    target[0, 5:11, 12:] = 2  # class 2 touches the right edge
    pred = target.clone()
    pred[0, :, 6] = 0  # predicted one column thinner
    pred[0, 4:11, 12:] = 2
    for k in (1, 2):
        _compare(fn, pred, target, k, 0.0, f"class {k} touching the image border, tolerance 0")


def _pooled(fn: Callable[..., Any]) -> None:
    big, small = _scene(4, n=1, size=(40, 44)), _scene(5, n=1, size=(12, 12))
    small_pred = torch.zeros_like(small)
    # Two images of different sizes cannot share a batch; pass them as a list of (H, W) masks.
    target = [big[0], small[0]]
    pred = [_noisy(big, 4)[0], small_pred[0]]
    got = _call(fn, pred, target, 1, tolerance=1.0)
    counts = np.zeros(4)
    for p, t in zip(pred, target):
        counts += boundary_counts(p, t, num_classes=3, tolerance=1.0)[1]
    expected = _f1(counts, 1.0, "f1")
    per_image = float(np.mean([float(boundary_f1(p, t, 3, tolerance=1.0)[1]) for p, t in zip(pred, target)]))
    expect_same(got, expected, "a list of two masks, 40x44 and 12x12 (class 1 predicted nowhere in the small one)", [
        Variant("counts summed over the batch", per_image, "You average one F1 per image; sum the matched and total "
                "boundary pixels over all images, then take precision, recall and F1 once."),
    ], atol=1e-6)


def _empty(fn: Callable[..., Any]) -> None:
    target = _scene(6)
    absent = torch.zeros_like(target)
    checks = ((absent, absent, 1.0, "class 1 in neither mask"), (absent, target, 0.0, "class 1 only in the truth"),
              (target, absent, 0.0, "class 1 only in the prediction"))
    for pred, true, expected, what in checks:
        value = _call(fn, pred, true, 1, tolerance=2.0)
        if not (abs(value - expected) < 1e-9):
            raise PropertyFailed(f"{what}: boundary F1 is {expected:g} by convention (empty vs empty agrees, one empty "
                                 "side finds nothing).", value, expected,
                                 hint="Handle the empty cases before dividing: no boundary on either side -> 1.0; "
                                      "precision or recall with nothing to divide -> 0.")


def _numpy_too(fn: Callable[..., Any]) -> None:
    target = _scene(7)
    pred = _noisy(target, 7)
    from_torch = _call(fn, pred, target, 2, tolerance=2.0)
    from_numpy = _call(fn, pred.numpy(), target.numpy(), 2, tolerance=2.0)
    if abs(from_torch - from_numpy) > 1e-9:
        raise PropertyFailed("Your F1 differs between torch tensors and NumPy arrays of the same masks.", from_numpy,
                             from_torch, hint="Convert at the start: `np.asarray(pred)` works for both.")


def _properties() -> list[Property]:
    return [
        Property("returns a number in [0, 1]", "class 1 of a noisy prediction, (2, 24, 28)", _number),
        Property("perfect prediction gives 1", "prediction = truth, tolerance 0, classes 1 and 2", _perfect),
        Property("boundary: pixels of the class with a 4-neighbour of another class", "3 scenes (2, 24, 28), a "
                 "shifted, noisy prediction, classes 1 and 2, tolerance 2", _definition,
                 "`edge = mask & ~binary_erosion(mask, structure_4, border_value=1)`: a pixel is inside when all four "
                 "neighbours have its class."),
        Property("matched within the tolerance (Euclidean, inclusive)", "the truth shifted by (1, 1), (2, 1), (0, 1) "
                 "with tolerances 0 to 2.5", _tolerance,
                 "`distance = ndimage.distance_transform_edt(~true_edge)`; a predicted edge pixel is matched when "
                 "`distance <= tolerance` there."),
        Property("the image border is not a boundary", "objects of class 1 and 2 touching the image border", _border,
                 "Erode with `border_value=1`: outside the image counts as the same class."),
        Property("counts summed over the batch", "two masks of different sizes, one without the class predicted", _pooled),
        Property("empty vs empty is 1, one side empty is 0", "class 1 absent from one or both masks", _empty),
        Property("accepts torch tensors and NumPy arrays", "the same masks as tensors and as arrays", _numpy_too),
    ]


BOUNDARY_F1 = ExerciseSpec(
    name="boundary_f1",
    title="Boundary F1 of one class",
    notebook="ex09_boundary_f1",
    task="Write `my_boundary_f1(pred, target, k, tolerance=2.0) -> float`: class-id masks `(N, H, W)` (tensors, arrays "
         "or a list of `(H, W)` masks) -> the F1 of class `k`'s boundary pixels, matched within `tolerance` pixels, "
         "counts summed over all images.",
    properties=_properties,
    hints=(
        "Per image: the boundary of class k on each side, the pixels of each boundary that lie near the other one, "
        "and four counts to add up: matched predicted, predicted, matched true, true.",
        "`edge = m & ~ndimage.binary_erosion(m, ndimage.generate_binary_structure(2, 1), border_value=1)` with "
        "`m = mask == k`; `dist = ndimage.distance_transform_edt(~other_edge)`; matched = `(dist[edge] <= tolerance).sum()`.",
        "After the loop: `precision = matched_pred / n_pred`, `recall = matched_true / n_true`, "
        "`2 * precision * recall / (precision + recall)`; 1.0 when both boundaries are empty, 0.0 when one is.",
    ),
    defines=("my_boundary_f1",),
    reference="unet_helpers/boundary.py: boundary_f1",
    forbidden=("unet_helpers.boundary.boundary_f1", "unet_helpers.boundary.boundary_counts",
               "unet_helpers.boundary.boundary_map", "unet_helpers.boundary.f1_from_counts",
               "unet_helpers.inspector.counts.MaskCounts"),
    next_steps="shift a prediction by 1, 2 and 3 pixels: IoU falls slowly for a large object, boundary F1 at "
               "tolerance 1 falls fast.",
)
