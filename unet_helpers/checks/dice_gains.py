"""Check for the second part of the real-data exercise (ex08): which classes gain from a change of loss.

``dice_gains(iou_without, iou_with, class_names)``: per class, the mean over seeds of the paired
difference ``iou_with - iou_without``, taken only over the seeds where both runs define that class
(IoU is NaN for a class absent from prediction and target); NaN when no seed defines it. The
result is every class as ``(name, gain)``, largest gain first, NaN gains last.

``reference_dice_gains`` is the reference the check compares with; ``ex08_sstem.ipynb`` falls back
to it (with a printed note) while the learner's function does not pass yet.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Sequence

import torch

from .core import Property, PropertyFailed, call_learner
from .spec import ExerciseSpec

NAN = math.nan
NAMES = ("road", "car", "tree", "sky", "sign")


def reference_dice_gains(iou_without: torch.Tensor, iou_with: torch.Tensor,
                         class_names: Sequence[str]) -> list[tuple[str, float]]:
    """Per-class IoU gain of ``iou_with`` over ``iou_without``: ranked, largest first, NaN gains last.

    Args:
        iou_without, iou_with: per-class IoU of the two settings; with several seeds, row ``s`` of both
            comes from seed ``s`` (a paired comparison). NaN marks an undefined IoU.
        class_names: one name per class.

    Shape:
        - ``iou_without``, ``iou_with``: ``(K,)`` or ``(S, K)``
        - Output: ``K`` pairs ``(class name, gain)``, gains as IoU fractions (0.03 = 3 IoU points)

    Used in ``solutions/ex08_sstem.ipynb``.
    """
    diff = torch.as_tensor(iou_with, dtype=torch.float64) - torch.as_tensor(iou_without, dtype=torch.float64)
    diff = diff.reshape(-1, diff.shape[-1])  # (S, K)
    defined = (~diff.isnan()).sum(0)  # (K,) seeds where both runs define the class
    gains = torch.where(defined > 0, diff.nan_to_num(0.0).sum(0) / defined.clamp(min=1), NAN)  # (K,)
    pairs = [(str(name), float(gain)) for name, gain in zip(class_names, gains)]
    return sorted(pairs, key=lambda pair: (math.isnan(pair[1]), -pair[1] if not math.isnan(pair[1]) else 0.0))


def _t(rows: Any) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# (iou_without, iou_with): (K,) inputs, then (S, K) ones; NaN at different seeds in the two settings.
_PLAIN = (_t([0.90, 0.60, 0.40, 0.20, 0.05]), _t([0.91, 0.64, 0.38, 0.35, 0.12]))
_WITH_NAN = (_t([0.90, 0.60, 0.40, NAN, 0.05]), _t([0.91, 0.64, 0.38, 0.30, NAN]))
_ORDER_NAN = (_t([0.80, 0.50, 0.30, 0.60, 0.10]), _t([0.90, NAN, 0.60, 0.40, 0.15]))  # naive sorts misplace NaN
_SEEDS = (_t([[0.90, 0.60, 0.40, NAN, 0.05], [0.88, 0.58, 0.44, 0.10, NAN], [0.91, 0.61, 0.41, NAN, NAN]]),
          _t([[0.92, 0.62, 0.39, 0.30, 0.00], [0.89, 0.66, 0.47, NAN, 0.20], [0.90, 0.63, 0.45, 0.20, NAN]]))


def _call(fn: Callable[..., Any], without: torch.Tensor, with_: torch.Tensor) -> list[tuple[str, float]]:
    result = call_learner(fn, without.clone(), with_.clone(), list(NAMES))
    ok = isinstance(result, (list, tuple)) and len(result) == len(NAMES) and all(
        isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)
        and isinstance(pair[1], (numbers.Real, torch.Tensor)) for pair in result)
    if not ok:
        raise PropertyFailed(f"Expected a list of {len(NAMES)} (class name, gain) pairs, one per class.", result,
                             "[('sky', 0.15), ('sign', 0.07), ...]")
    return [(name, float(gain)) for name, gain in result]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (not math.isnan(a) and not math.isnan(b) and abs(a - b) <= 1e-9)


def _as_dict(pairs: list[tuple[str, float]]) -> dict[str, float]:
    return dict(pairs)


def _values_match(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> bool:
    mine, ref = _as_dict(got), _as_dict(expected)
    return mine.keys() == ref.keys() and all(_same(mine[k], ref[k]) for k in ref)


def _compare_values(fn: Callable[..., Any], inputs: tuple, what: str, mistakes: tuple) -> None:
    got = _call(fn, *inputs)
    expected = reference_dice_gains(*inputs, NAMES)
    if _values_match(got, expected):
        return
    for name, variant, message in mistakes:
        if _values_match(got, [(n, float(g)) for n, g in zip(NAMES, variant(*inputs))]):
            raise PropertyFailed(f"{message} ({what})", _as_dict(got), _as_dict(expected), name=name)
    raise PropertyFailed(f"Your gains differ from the reference on {what}.", _as_dict(got), _as_dict(expected))


_SIGN = (("gain = IoU with Dice - IoU without", lambda a, b: (a - b).reshape(-1, a.shape[-1]).nanmean(0),
          "Your gains have the wrong sign: a class that improves with Dice must get a positive gain."),
         ("gain = IoU with Dice - IoU without", lambda a, b: 100 * (b - a).reshape(-1, a.shape[-1]).nanmean(0),
          "Your gains are in IoU points (x 100); keep them as IoU fractions, 0.03 for 3 points."),
         ("gain = IoU with Dice - IoU without", lambda a, b: ((b - a) / a).reshape(-1, a.shape[-1]).nanmean(0),
          "You divide by the IoU without Dice (a relative gain); use the plain difference."))
_NAN = (("a NaN IoU gives a NaN gain", lambda a, b: b.nan_to_num(0.0) - a.nan_to_num(0.0),
         "You count a NaN IoU as 0: an undefined IoU is not a score of 0, so the gain is undefined (NaN) too."),)
_SEED = (
    ("several seeds: mean of paired differences, NaN seeds skipped",
     lambda a, b: b.nanmean(0) - a.nanmean(0),
     "You subtract the mean IoUs; average the per-seed differences instead, over the seeds where both runs define "
     "the class (otherwise a seed with a good IoU in one setting and NaN in the other shifts the gain)."),
    ("several seeds: mean of paired differences, NaN seeds skipped", lambda a, b: (b - a).mean(0),
     "torch.mean turns a single NaN seed into a NaN gain: skip undefined seeds (nanmean, or a mask)."),
    ("several seeds: mean of paired differences, NaN seeds skipped",
     lambda a, b: (b.nan_to_num(0.0) - a.nan_to_num(0.0)).mean(0),
     "You count NaN IoUs as 0 before averaging over seeds; skip those seeds instead."),
)


def _returns_pairs(fn: Callable[..., Any]) -> None:
    _call(fn, *_PLAIN)


def _difference(fn: Callable[..., Any]) -> None:
    _compare_values(fn, _PLAIN, "5 classes, no NaN", _SIGN)


def _ranked(fn: Callable[..., Any]) -> None:
    got = _call(fn, *_PLAIN)
    expected = reference_dice_gains(*_PLAIN, NAMES)
    if [name for name, _ in got] != [name for name, _ in expected]:
        reverse = [name for name, _ in got] == [name for name, _ in reversed(expected)]
        raise PropertyFailed("You rank from the smallest gain to the largest." if reverse else
                             "Your classes are not ordered from the largest gain to the smallest.",
                             [name for name, _ in got], [name for name, _ in expected],
                             hint="`sorted(pairs, key=lambda pair: pair[1], reverse=True)` (NaN aside).")


def _nan_gain(fn: Callable[..., Any]) -> None:
    _compare_values(fn, _WITH_NAN, "class 'sky' NaN without Dice, 'sign' NaN with Dice", _NAN)


def _nan_last(fn: Callable[..., Any]) -> None:
    got = _call(fn, *_ORDER_NAN)
    expected = reference_dice_gains(*_ORDER_NAN, NAMES)
    if [name for name, _ in got] != [name for name, _ in expected]:
        raise PropertyFailed("With a NaN gain among the others your order is wrong. Every comparison with NaN is "
                             "False, so sorted() and torch.sort misplace it (and may leave the others unsorted).",
                             [name for name, _ in got], [name for name, _ in expected],
                             hint="Sort the defined gains, then append the NaN ones: e.g. "
                                  "`key=lambda pair: (math.isnan(pair[1]), -pair[1] if not math.isnan(pair[1]) else 0)`.")


def _seeds(fn: Callable[..., Any]) -> None:
    _compare_values(fn, _SEEDS, "3 seeds x 5 classes, NaN at different seeds in the two settings", _SEED)


def _unchanged(fn: Callable[..., Any]) -> None:
    without, with_ = _SEEDS[0].clone(), _SEEDS[1].clone()
    call_learner(fn, without, with_, list(NAMES))
    for given, original in ((without, _SEEDS[0]), (with_, _SEEDS[1])):
        if not torch.equal(given.nan_to_num(-1.0), original.nan_to_num(-1.0)):
            raise PropertyFailed("Your function changed the IoU tensors it was given (an in-place operation such as "
                                 "nan_to_num_).", given, original, hint="Use out-of-place operations on the inputs.")


def _properties() -> list[Property]:
    return [
        Property("returns a (name, gain) pair for every class", "5 classes, IoU tensors (5,)", _returns_pairs,
                 "Return a list such as `[('sky', 0.15), ('sign', 0.07), ...]` with every class in it."),
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
        Property("the inputs are left unchanged", "(3, 5) tensors compared before and after", _unchanged),
    ]


DICE_GAINS = ExerciseSpec(
    name="dice_gains",
    title="Which classes gain from Dice: per-class differences, NaN-aware, ranked",
    notebook="ex08_sstem",
    task="Write `my_dice_gains(iou_without, iou_with, class_names)`: two per-class IoU tensors `(K,)` or `(S, K)` "
         "(row s = seed s, NaN = undefined) -> a list of `(class name, gain)` for every class, gain = mean over seeds "
         "of `iou_with - iou_without` where both are defined, largest first, NaN gains last.",
    properties=_properties,
    hints=(
        "Work with the per-seed differences `iou_with - iou_without`: NaN wherever either run is undefined.",
        "`diff = (iou_with - iou_without).reshape(-1, K)`; `gains = diff.nanmean(0)` (NaN where every seed is NaN).",
        "`pairs = list(zip(class_names, gains.tolist()))`; sort with "
        "`key=lambda p: (math.isnan(p[1]), -p[1] if not math.isnan(p[1]) else 0.0)`.",
    ),
    defines=("my_dice_gains",),
    reference="unet_helpers/checks/dice_gains.py: reference_dice_gains",
    next_steps="rank the classes of the ssTEM runs below; is the rarest class (synapse) the one that gains most?",
)
