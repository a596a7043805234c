"""Check of exercise 06: the soft multi-class Dice loss.

Reference: ``unet_helpers.losses.dice_loss`` with ``skip_absent=True``: softmax over classes,
sums over the whole batch ``(N, H, W)``, ``(2 I + eps) / (P + T + eps)`` per class, mean over the
classes present in the target, pixels equal to ``ignore_index`` (any id, also one in ``[0, K)``)
removed from both sums, 0 with a graph when every pixel is ignored.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..losses import dice_loss
from .compare import Variant, expect_gradient, expect_same
from .core import Property, PropertyFailed
from .isolation import call_learner
from .spec import ExerciseSpec
from .tools import generator, random_target, require_tensor

IGNORE = 255
# (shape (N, K, H, W), seed): several classes, odd sizes and a batch of one, two classes.
PRESENT = (((2, 3, 8, 8), 0), ((1, 4, 7, 5), 1), ((3, 2, 6, 6), 2))
ABSENT = (((2, 3, 8, 8), [0, 1]), ((1, 4, 7, 5), [0, 2]))  # (shape, classes that appear in the target)


def _logits(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return 2 * torch.randn(shape, generator=generator(100 + seed))


def _case(shape: tuple[int, ...], seed: int, classes: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    n, k, h, w = shape
    return _logits(shape, seed), random_target((n, h, w), k, seed, classes)


def _with_ignored(target: torch.Tensor, seed: int, fraction: float = 0.25) -> torch.Tensor:
    ignored = torch.rand(target.shape, generator=generator(200 + seed)) < fraction
    ignored.view(-1)[-1] = True  # at least one ignored pixel
    return target.masked_fill(ignored, IGNORE)


def _variant(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, ignore_index: int | None = None,
             eps_in_numerator: bool = True, count_absent: bool = False, micro: bool = False, per_image: bool = False,
             probs_of_ignored: bool = False, activation: str = "softmax", drop_high: bool = False) -> torch.Tensor:
    """The Dice loss with one convention changed, to name the learner's mistake."""
    k = logits.shape[1]
    probs = {"softmax": lambda t: t.softmax(dim=1), "sigmoid": torch.sigmoid, "none": lambda t: t}[activation](logits)
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    if drop_high:
        valid = target < k
    one_hot = F.one_hot(target.where(valid, 0), k).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)  # (N, K, H, W)
    kept = probs if probs_of_ignored else probs * valid.unsqueeze(1)
    dims = (2, 3) if per_image else (0, 2, 3)
    inter, pred, true = (kept * one_hot).sum(dims), kept.sum(dims), one_hot.sum(dims)
    if micro:
        return 1 - (2 * inter.sum() + eps) / (pred.sum() + true.sum() + eps)
    dice = (2 * inter + (eps if eps_in_numerator else 0)) / (pred + true + eps)
    present = true > 0
    return 1 - (dice.mean() if count_absent or per_image or not present.any() else dice[present].mean())


MAIN = (
    ("softmax over the class axis", dict(activation="none"), "You use the raw logits, not softmax probabilities."),
    ("softmax over the class axis", dict(activation="sigmoid"), "You use sigmoid; with K classes use softmax(dim=1)."),
    ("mean over classes (macro), not over pixels", dict(micro=True),
     "You pool every class into one Dice (a mean over pixels); take one Dice per class, then their mean."),
    ("sums over the whole batch (N, H, W)", dict(per_image=True),
     "You compute one Dice per image; sum over the batch too, dims (0, 2, 3)."),
)


def _call(fn: Callable[..., Any], logits: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return require_tensor(call_learner(fn, logits, target, **kwargs), "The loss", shape=())


def _compare(fn: Callable[..., Any], logits: torch.Tensor, target: torch.Tensor, what: str,
             mistakes: tuple = (), **kwargs: Any) -> None:
    got = _call(fn, logits, target, **kwargs)
    expected = dice_loss(logits, target, skip_absent=True, **kwargs)
    expect_same(got, expected, what, [Variant(name, (lambda c=change: _variant(logits, target, **{**kwargs, **c})), msg)
                                      for name, change, msg in mistakes])


def _scalar(fn: Callable[..., Any]) -> None:
    _call(fn, *_case(*PRESENT[0]))


def _differentiable(fn: Callable[..., Any]) -> None:
    logits, target = _case(*PRESENT[0])
    expect_gradient(lambda x: _call(fn, x, target), lambda x: dice_loss(x, target), logits,
                    "argmax and one-hot of the prediction cut the graph: use soft probabilities, "
                    "logits.softmax(dim=1), and avoid .item() / .detach() / numpy.")


def _matches(fn: Callable[..., Any]) -> None:
    for shape, seed in PRESENT:
        _compare(fn, *_case(shape, seed), f"logits {shape} with every class present", MAIN)


def _perfect(fn: Callable[..., Any]) -> None:
    for shape, seed in PRESENT:
        target = random_target((shape[0], *shape[2:]), shape[1], seed)
        logits = 20.0 * F.one_hot(target, shape[1]).permute(0, 3, 1, 2).float()  # (N, K, H, W)
        loss = _call(fn, logits, target)
        if not abs(float(loss)) < 1e-3:
            raise PropertyFailed(f"A prediction that is right everywhere, logits {shape}, should give a loss of 0.",
                                 loss, 0.0)


def _absent(fn: Callable[..., Any]) -> None:
    for seed, (shape, classes) in enumerate(ABSENT):
        _compare(fn, *_case(shape, seed, classes), f"logits {shape}, target with classes {classes} only", (
            ("classes absent from the target are left out", dict(count_absent=True),
             "You average over every class; a class absent from the target has Dice ~0 whatever the model does, so "
             "it must be left out of the mean."),
        ))


def _ignore(fn: Callable[..., Any]) -> None:
    for shape, seed in PRESENT[:2]:
        logits, target = _case(shape, seed)
        _compare(fn, logits, _with_ignored(target, seed), f"logits {shape}, ~25% pixels = ignore_index {IGNORE}", (
            ("ignore_index pixels count in neither term", dict(probs_of_ignored=True),
             "Ignored pixels still add their probabilities to sum(p)."),
        ), ignore_index=IGNORE)


def _ignore_inside(fn: Callable[..., Any]) -> None:
    for shape, seed in PRESENT[:2]:
        logits, target = _case(shape, seed)
        _compare(fn, logits, target, f"logits {shape}, ignore_index=0 (a class id inside [0, K))", (
            ("ignore_index may be any id, also one in [0, K)", dict(drop_high=True),
             "You drop ids outside [0, K) (or ignore `ignore_index`) instead of the pixels equal to ignore_index: "
             "with ignore_index=0, class 0 still counts."),
            ("ignore_index pixels count in neither term", dict(probs_of_ignored=True),
             "Ignored pixels still add their probabilities to sum(p)."),
        ), ignore_index=0)


def _eps(fn: Callable[..., Any]) -> None:
    for shape, seed in (((1, 3, 4, 4), 3), ((2, 2, 3, 5), 4)):
        _compare(fn, *_case(shape, seed), f"logits {shape} with eps=1.0", (
            ("eps in numerator and denominator", dict(eps_in_numerator=False), "You add eps only to the denominator."),
        ), eps=1.0)


def _all_ignored(fn: Callable[..., Any]) -> None:
    logits = _logits((1, 3, 4, 4), 5).requires_grad_(True)
    loss = _call(fn, logits, torch.full((1, 4, 4), IGNORE, dtype=torch.long), ignore_index=IGNORE)
    if not (bool(torch.isfinite(loss)) and abs(float(loss)) < 1e-6):
        raise PropertyFailed("When every pixel is ignored no class is present; the loss should be 0.", loss, 0.0,
                             hint="Return `logits.sum() * 0.0` when no class is present: 0, and still part of the graph.")
    if not loss.requires_grad:
        raise PropertyFailed("An all-ignored batch returns a constant without a graph: `loss.backward()` in a training "
                             "loop then raises.", "requires_grad=False", "0.0 with requires_grad=True",
                             hint="Return `logits.sum() * 0.0`: 0, and still connected to the logits.")


def _properties() -> list[Property]:
    cases = ", ".join(f"{shape}" for shape, _ in PRESENT)
    return [
        Property("returns a scalar tensor", "logits (2, 3, 8, 8)", _scalar,
                 "Reduce to one number: the mean over classes of (1 - Dice) is a 0-d tensor."),
        Property("differentiable: gradient reaches the logits", "logits (2, 3, 8, 8), loss.backward(), compared with "
                 "the reference's gradient", _differentiable),
        Property("matches unet_helpers.dice_loss", f"random logits {cases} (odd sizes, batch of one, K = 2 to 4), "
                 "every class present", _matches,
                 "`probs = logits.softmax(dim=1)`; per class k: `I = sum(p_k * y_k)`, `P = sum(p_k)`, `T = sum(y_k)` over "
                 "dims `(0, 2, 3)`; `Dice = (2I + eps) / (P + T + eps)`; loss = 1 - mean Dice."),
        Property("perfect prediction gives 0", f"logits = 20 * one_hot(target), {cases}", _perfect),
        Property("classes absent from the target are left out", "; ".join(f"{s} with classes {c}" for s, c in ABSENT),
                 _absent, "present = T > 0; average Dice only over present classes: dice[present].mean()."),
        Property("ignore_index pixels count in neither term", f"ignore_index={IGNORE} on ~25% of the pixels of "
                 f"{PRESENT[0][0]} and {PRESENT[1][0]}", _ignore,
                 "`valid = target != ignore_index`; multiply both the probabilities and the one-hot target by `valid` "
                 "(replace ignored ids by 0 before `one_hot`)."),
        Property("ignore_index may be any id, also one in [0, K)", "ignore_index=0 on the same logits", _ignore_inside,
                 "Compare with `target != ignore_index`, never `target < K`: unlabelled pixels are sometimes stored as 0."),
        Property("eps in numerator and denominator", "eps=1.0 on (1, 3, 4, 4) and (2, 2, 3, 5)", _eps,
                 "`(2 * I + eps) / (P + T + eps)`: eps in both makes an empty-vs-empty class score 1, not 0."),
        Property("every pixel ignored gives 0 with a gradient", f"target all {IGNORE}, ignore_index={IGNORE}", _all_ignored),
    ]


DICE_LOSS = ExerciseSpec(
    name="dice_loss",
    title="Soft multi-class Dice loss",
    notebook="ex06_dice_loss",
    task="Write `my_dice_loss(logits, target, eps=1e-6, ignore_index=None)`: `logits (N, K, H, W)` float, "
         "`target (N, H, W)` int64 -> a 0-d tensor, `1 - mean over present classes of soft Dice`.",
    properties=_properties,
    hints=(
        "Turn logits into probabilities with softmax over the class axis, and the target into a one-hot "
        "`(N, K, H, W)` tensor; then everything is sums over dims `(0, 2, 3)`.",
        "`one_hot = F.one_hot(target, K).permute(0, 3, 1, 2).float()`; per class `I = (probs * one_hot).sum((0, 2, 3))`, "
        "`P = probs.sum((0, 2, 3))`, `T = one_hot.sum((0, 2, 3))`; `dice = (2 * I + eps) / (P + T + eps)`.",
        "Average only where `T > 0`. For `ignore_index`: `valid = target != ignore_index`, use `target.where(valid, 0)` "
        "for one_hot, multiply both `probs` and `one_hot` by `valid.unsqueeze(1)`; if no class is present return "
        "`logits.sum() * 0.0`.",
    ),
    defines=("my_dice_loss",),
    reference="unet_helpers/losses.py: dice_loss and soft_dice_per_class",
    forbidden=("unet_helpers.losses.dice_loss", "unet_helpers.losses.soft_dice_per_class",
               "unet_helpers.losses.DiceLoss", "unet_helpers.losses.combined_loss", "unet_helpers.losses.CombinedLoss"),
    next_steps="compare `my_dice_loss` with `skip_absent=False` behaviour (MONAI's DiceLoss) on a target that lacks a "
               "class, and see why the loss then never reaches 0.",
)
