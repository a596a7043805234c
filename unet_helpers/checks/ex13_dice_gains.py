"""Check of exercise 13, part 3: which classes gain from Dice, with the spread over seeds.

``gains(iou_without, iou_with, class_names)``: per class, the paired differences
``iou_with - iou_without`` of every seed where both runs define the class (IoU is NaN for a class
absent from prediction and target); their mean, and the lowest and highest of them, so that a gain
can be told apart from seed noise (a gain is only distinguishable when every seed agrees on its
sign). NaN when no seed defines the class. Every class appears as ``(name, mean, lowest,
highest)``, largest mean first, NaN last.

``reference_dice_gains`` is the check's reference (private to the checks: the learner's answer
may not call it).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Sequence

import torch

from .compare import Variant, expect_same
from .core import Property, PropertyFailed
from .isolation import call_learner
from .spec import ExerciseSpec

NAN = math.nan
NAMES = ("road", "car", "tree", "sky", "sign")
IN_POINTS = ("Gains and IoUs in this course are fractions (0.03 = 3 IoU points), as `ConfusionMatrix.iou()` "
             "returns them: one unit everywhere, so a gain can be added to an IoU and compared with it without a "
             "factor of 100 in between.")


def _rank_key(row: tuple) -> tuple:
    return (math.isnan(row[1]), -row[1] if not math.isnan(row[1]) else 0.0)


def reference_dice_gains(iou_without: torch.Tensor, iou_with: torch.Tensor,
                         class_names: Sequence[str]) -> list[tuple[str, float, float, float]]:
    """Per-class IoU gain of ``iou_with`` over ``iou_without`` with its spread over seeds, ranked.

    Args:
        iou_without, iou_with: per-class IoU of the two settings; with several seeds, row ``s`` of both
            comes from seed ``s`` (a paired comparison). NaN marks an undefined IoU.
        class_names: one name per class.

    Shape:
        - ``iou_without``, ``iou_with``: ``(K,)`` or ``(S, K)``
        - Output: ``K`` tuples ``(class name, mean gain, lowest gain, highest gain)`` as IoU fractions

    The check's reference for ``solutions/ex13_real_data.ipynb``.
    """
    diff = torch.as_tensor(iou_with, dtype=torch.float64) - torch.as_tensor(iou_without, dtype=torch.float64)
    diff = diff.reshape(-1, diff.shape[-1])  # (S, K), NaN where either run leaves the class undefined
    defined = ~diff.isnan()
    count = defined.sum(0)  # (K,) seeds where both runs define the class
    mean = torch.where(count > 0, diff.nan_to_num(0.0).sum(0) / count.clamp(min=1), NAN)  # (K,)
    lowest = torch.where(count > 0, diff.masked_fill(~defined, math.inf).amin(0), NAN)
    highest = torch.where(count > 0, diff.masked_fill(~defined, -math.inf).amax(0), NAN)
    rows = [(str(name), float(m), float(lo), float(hi)) for name, m, lo, hi in zip(class_names, mean, lowest, highest)]
    return sorted(rows, key=_rank_key)


def _t(rows: Any) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# (iou_without, iou_with): (K,) inputs, then (S, K) ones; NaN at different seeds in the two settings.
PLAIN = (_t([0.90, 0.60, 0.40, 0.20, 0.05]), _t([0.91, 0.64, 0.38, 0.35, 0.12]))
WITH_NAN = (_t([0.90, 0.60, 0.40, NAN, 0.05]), _t([0.91, 0.64, 0.38, 0.30, NAN]))
ORDER_NAN = (_t([0.80, 0.50, 0.30, 0.60, 0.10]), _t([0.90, NAN, 0.60, 0.40, 0.15]))  # naive sorts misplace NaN
SEEDS = (_t([[0.90, 0.60, 0.40, NAN, 0.05], [0.88, 0.58, 0.44, 0.10, NAN], [0.91, 0.61, 0.41, NAN, NAN]]),
         _t([[0.92, 0.62, 0.39, 0.30, 0.00], [0.89, 0.66, 0.47, NAN, 0.20], [0.90, 0.63, 0.45, 0.20, NAN]]))


def _call(fn: Callable[..., Any], without: torch.Tensor, with_: torch.Tensor) -> list[tuple[str, float, float, float]]:
    result = call_learner(fn, without, with_, list(NAMES))
    ok = isinstance(result, (list, tuple)) and len(result) == len(NAMES) and all(
        isinstance(row, (list, tuple)) and len(row) == 4 and isinstance(row[0], str)
        and all(isinstance(v, (numbers.Real, torch.Tensor)) for v in row[1:]) for row in result)
    if not ok:
        raise PropertyFailed(f"Expected a list of {len(NAMES)} rows (class name, mean gain, lowest, highest), one per "
                             "class.", result, "[('sky', 0.15, 0.10, 0.20), ('sign', 0.07, 0.07, 0.07), ...]")
    return [(name, float(m), float(lo), float(hi)) for name, m, lo, hi in result]


def _by_name(rows: list[tuple]) -> dict[str, tuple[float, ...]]:
    return {row[0]: tuple(row[1:]) for row in rows}


def _rows(mean: torch.Tensor, lowest: torch.Tensor | None = None, highest: torch.Tensor | None = None) -> dict:
    lowest = mean if lowest is None else lowest
    highest = mean if highest is None else highest
    return {n: (float(m), float(lo), float(hi)) for n, m, lo, hi in zip(NAMES, mean, lowest, highest)}


def _compare(fn: Callable[..., Any], inputs: tuple, what: str, variants: Callable[..., list[Variant]]) -> None:
    got = _by_name(_call(fn, *inputs))
    expected = _by_name(reference_dice_gains(*inputs, NAMES))
    expect_same(got, expected, what, variants(*inputs), atol=1e-6, rtol=1e-6)


def _flat(a: torch.Tensor) -> torch.Tensor:
    return a.reshape(-1, a.shape[-1])


def _value_variants(a: torch.Tensor, b: torch.Tensor) -> list[Variant]:
    gain = "gain = IoU with Dice - IoU without"
    scaled = {row[0]: tuple(100 * v for v in row[1:]) for row in reference_dice_gains(a, b, NAMES)}
    return [
        Variant(gain, lambda: _rows(_flat(a - b).nanmean(0)),
                "Your gains have the wrong sign: a class that improves with Dice must get a positive gain."),
        Variant(gain, scaled, "Your gains are in IoU points (x 100).", convention=IN_POINTS),
        Variant(gain, lambda: _rows(_flat((b - a) / a).nanmean(0)),
                "You divide by the IoU without Dice (a relative gain); use the plain difference."),
    ]


def _nan_variants(a: torch.Tensor, b: torch.Tensor) -> list[Variant]:
    return [Variant("a NaN IoU gives a NaN gain", lambda: _rows(_flat(b.nan_to_num(0.0) - a.nan_to_num(0.0)).mean(0)),
                    "You count a NaN IoU as 0: an undefined IoU is not a score of 0, so the gain is undefined (NaN) "
                    "too.")]


def _seed_variants(a: torch.Tensor, b: torch.Tensor) -> list[Variant]:
    name = "several seeds: mean of paired differences, NaN seeds skipped"
    diff, zeros = b - a, b.nan_to_num(0.0) - a.nan_to_num(0.0)
    spread = {row[0]: row[2:] for row in reference_dice_gains(a, b, NAMES)}
    unpaired = b.nanmean(0) - a.nanmean(0)
    return [
        Variant(name, lambda: {n: (float(m), *spread[n]) for n, m in zip(NAMES, unpaired)},
                "You subtract the mean IoUs; average the per-seed differences instead, over the seeds where both "
                "runs define the class (otherwise a seed with a good IoU in one setting and NaN in the other shifts "
                "the gain)."),
        Variant(name, lambda: _rows(diff.mean(0), diff.amin(0), diff.amax(0)),
                "torch.mean (and min/max) turn a single NaN seed into a NaN gain: skip undefined seeds (nanmean, "
                "or a mask)."),
        Variant(name, lambda: _rows(zeros.mean(0), zeros.amin(0), zeros.amax(0)),
                "You count NaN IoUs as 0 before averaging over seeds; skip those seeds instead."),
    ]


def _spread_variants(a: torch.Tensor, b: torch.Tensor) -> list[Variant]:
    name = "lowest and highest per-seed gain"
    ref = {row[0]: row[1:] for row in reference_dice_gains(a, b, NAMES)}
    std = (b - a).nan_to_num(0.0).std(0)
    return [
        Variant(name, {n: (ref[n][0], ref[n][0], ref[n][0]) for n in NAMES},
                "Your lowest and highest equal the mean: report the smallest and largest per-seed difference, the "
                "spread that tells a gain from seed noise."),
        Variant(name, {n: (ref[n][0], ref[n][0] - float(s), ref[n][0] + float(s)) for n, s in zip(NAMES, std)},
                "You report mean +- standard deviation; the check wants the lowest and highest per-seed difference "
                "(with 2 or 3 seeds a standard deviation says little)."),
        Variant(name, {n: (ref[n][0], ref[n][2], ref[n][1]) for n in NAMES}, "Your lowest and highest are swapped."),
    ]


def _returns_rows(fn: Callable[..., Any]) -> None:
    _call(fn, *PLAIN)


def _difference(fn: Callable[..., Any]) -> None:
    _compare(fn, PLAIN, "5 classes, one seed, no NaN", _value_variants)


def _float32(fn: Callable[..., Any]) -> None:
    _compare(fn, tuple(t.float() for t in SEEDS), "the 3-seed case as float32 tensors (as ConfusionMatrix.iou().float())",
             lambda a, b: [])


def _order(rows: list[tuple]) -> list[str]:
    return [row[0] for row in rows]


def _ranked(fn: Callable[..., Any]) -> None:
    got, expected = _order(_call(fn, *PLAIN)), _order(reference_dice_gains(*PLAIN, NAMES))
    if got != expected:
        reverse = got == list(reversed(expected))
        raise PropertyFailed("You rank from the smallest gain to the largest." if reverse else
                             "Your classes are not ordered from the largest gain to the smallest.", got, expected,
                             hint="`sorted(rows, key=lambda row: row[1], reverse=True)` (NaN aside).")


def _nan_gain(fn: Callable[..., Any]) -> None:
    _compare(fn, WITH_NAN, "class 'sky' NaN without Dice, 'sign' NaN with Dice", _nan_variants)


def _nan_last(fn: Callable[..., Any]) -> None:
    got, expected = _order(_call(fn, *ORDER_NAN)), _order(reference_dice_gains(*ORDER_NAN, NAMES))
    if got != expected:
        raise PropertyFailed("With a NaN gain among the others your order is wrong. Every comparison with NaN is "
                             "False, so sorted() and torch.sort misplace it (and may leave the others unsorted).",
                             got, expected, hint="Sort the defined gains, then append the NaN ones: e.g. "
                             "`key=lambda row: (math.isnan(row[1]), -row[1] if not math.isnan(row[1]) else 0)`.")


def _seeds(fn: Callable[..., Any]) -> None:
    _compare(fn, SEEDS, "3 seeds x 5 classes, NaN at different seeds in the two settings", _seed_variants)


def _spread(fn: Callable[..., Any]) -> None:
    _compare(fn, SEEDS, "lowest and highest of the per-seed differences, 3 seeds", _spread_variants)


def _properties() -> list[Property]:
    return [
        Property("returns (name, mean, lowest, highest) for every class", "5 classes, IoU tensors (5,)", _returns_rows,
                 "Return a list such as `[('sky', 0.15, 0.10, 0.20), ('sign', 0.07, 0.07, 0.07), ...]` with every class."),
        Property("gain = IoU with Dice - IoU without", "5 classes, (5,) tensors without NaN", _difference,
                 "`gain = iou_with - iou_without` per class, as an IoU fraction (positive: Dice helps)."),
        Property("ranked from the largest gain to the smallest", "5 classes without NaN", _ranked),
        Property("a NaN IoU gives a NaN gain", "(5,) tensors, one NaN in each, in different classes", _nan_gain,
                 "NaN - x is NaN already: do not replace NaN IoUs by a number."),
        Property("NaN gains come last", "(5,) tensors where naive sorting misplaces the NaN", _nan_last),
        Property("several seeds: mean of paired differences, NaN seeds skipped",
                 "(3, 5) tensors, row s = seed s, NaNs at different seeds", _seeds,
                 "`diff = iou_with - iou_without` (S, K); per class average the entries that are not NaN "
                 "(`diff.nanmean(0)`); a class with no defined seed gets NaN."),
        Property("lowest and highest per-seed gain", "(3, 5) tensors: min and max over the defined seeds", _spread,
                 "`diff.masked_fill(diff.isnan(), float('inf')).amin(0)` and the same with `-inf` and `amax`; NaN "
                 "where no seed is defined."),
        Property("float32 inputs, float32 tolerance", "the (3, 5) case as float32", _float32),
    ]


DICE_GAINS = ExerciseSpec(
    name="dice_gains",
    title="Which classes gain from Dice: paired differences, their spread, NaN-aware, ranked",
    notebook="ex13_real_data",
    task="Write `my_dice_gains(iou_without, iou_with, class_names)`: two per-class IoU tensors `(K,)` or `(S, K)` "
         "(row s = seed s, NaN = undefined) -> a list of `(class name, mean gain, lowest gain, highest gain)` for "
         "every class, over the seeds where both are defined, largest mean first, NaN gains last.",
    properties=_properties,
    hints=(
        "Work with the per-seed differences `iou_with - iou_without`: NaN wherever either run is undefined.",
        "`diff = (iou_with - iou_without).reshape(-1, K)`; `mean = diff.nanmean(0)`; for the spread, hide the NaNs "
        "with `masked_fill` (inf for the minimum, -inf for the maximum) and put NaN back where no seed is defined.",
        "`rows = list(zip(class_names, mean.tolist(), lowest.tolist(), highest.tolist()))`; sort with "
        "`key=lambda r: (math.isnan(r[1]), -r[1] if not math.isnan(r[1]) else 0.0)`.",
    ),
    defines=("my_dice_gains",),
    reference="unet_helpers/checks/ex13_dice_gains.py: reference_dice_gains",
    forbidden=("unet_helpers.checks.ex13_dice_gains.reference_dice_gains",),
    next_steps="rank the classes of your ssTEM runs below: which gains does every seed agree on?",
)
