"""Check of exercise 07 (the lesson's easy exercise): the binary BCE + Dice loss.

Reference: ``unet_helpers.losses.bce_dice_loss`` (its total, the first element it returns):
``BCE-with-logits`` averaged over pixels, plus ``lam`` times ``1 - soft Dice`` of the foreground
with ``sigmoid(logits)`` summed over the whole batch ``(N, H, W)``; a batch without any foreground
pixel has no foreground Dice, so the term is 0 and the loss is BCE alone. The learner returns the
total as a 0-d tensor.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..losses import bce_dice_loss
from .compare import Variant, expect_gradient, expect_same, same
from .core import Property, PropertyFailed
from .isolation import call_learner
from .spec import ExerciseSpec
from .tools import generator, require_tensor

# (shape (N, 1, H, W), seed): a batch, odd sizes, a batch of one.
_CASES = (((2, 1, 8, 8), 0), ((3, 1, 7, 5), 1), ((1, 1, 9, 6), 2))


def _logits(shape: tuple[int, ...], seed: int, scale: float = 2.0) -> torch.Tensor:
    return scale * torch.randn(shape, generator=generator(500 + seed))


def _target(shape: tuple[int, ...], seed: int, fraction: float = 0.3) -> torch.Tensor:
    """``{0, 1}`` int64 ``(N, H, W)`` with about ``fraction`` foreground and at least one foreground pixel."""
    n, _, h, w = shape
    target = (torch.rand((n, h, w), generator=generator(700 + seed)) < fraction).long()
    target.view(-1)[0] = 1
    return target


def _case(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return _logits(shape, seed), _target(shape, seed)


def _reference(logits: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return bce_dice_loss(logits, target, **kwargs)[0]


def _variant(logits: torch.Tensor, target: torch.Tensor, lam: float = 1.0, eps: float = 1e-6, bce: str = "logits",
             dice: str = "batch", empty_rule: bool = True, lam_on: str = "dice") -> torch.Tensor:
    """The loss with one convention changed, to name the learner's mistake."""
    scores, y = logits[:, 0], target.float()  # (N, H, W)
    if bce == "sum":
        bce_term = F.binary_cross_entropy_with_logits(scores, y, reduction="sum")
    else:
        bce_term = F.binary_cross_entropy_with_logits(scores, y)
    p = scores if dice == "logits" else torch.sigmoid(scores)
    if dice in ("batch", "logits"):
        dice_term = 1 - (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)
    elif dice == "image":
        per_image = (2 * (p * y).sum((1, 2)) + eps) / (p.sum((1, 2)) + y.sum((1, 2)) + eps)  # (N,)
        dice_term = 1 - per_image.mean()
    elif dice == "pixel":
        dice_term = 1 - ((2 * p * y + eps) / (p + y + eps)).mean()
    elif dice == "two classes":
        fg = (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)
        bg = (2 * ((1 - p) * (1 - y)).sum() + eps) / ((1 - p).sum() + (1 - y).sum() + eps)
        dice_term = 1 - (fg + bg) / 2
    elif dice == "broadcast":  # (N, 1, H, W) * (N, H, W) broadcasts to (N, N, H, W)
        q = torch.sigmoid(logits)
        dice_term = 1 - (2 * (q * y).sum() + eps) / (q.sum() + y.sum() + eps)
    elif dice == "coefficient":
        dice_term = (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)
    else:
        raise ValueError(dice)
    if empty_rule and not bool(y.any()):
        dice_term = dice_term * 0.0
    if lam_on == "both":
        return bce_term + dice_term
    if lam_on == "bce":
        return lam * bce_term + dice_term
    return bce_term + lam * dice_term


_DICE_MISTAKES = (
    ("sigmoid before the Dice term", dict(dice="logits"),
     "Your Dice term uses the raw logits; Dice compares probabilities in [0, 1] with the mask: sigmoid first."),
    ("Dice summed over the whole batch", dict(dice="image"),
     "You average one Dice per image; sum intersection and totals over the whole batch (N, H, W), then divide once."),
    ("Dice summed over the whole batch", dict(dice="pixel"),
     "You compute a Dice per pixel and average those; Dice is one ratio of sums over every pixel of the batch."),
    ("Dice summed over the whole batch", dict(dice="broadcast"),
     "Your (N, 1, H, W) probabilities times the (N, H, W) target broadcast to (N, N, H, W): every image is "
     "multiplied with every mask. Drop the channel axis first: logits[:, 0]."),
    ("Dice of the foreground only", dict(dice="two classes"),
     "You average the Dice of foreground and background; the binary loss uses the foreground's Dice only."),
    ("1 - Dice, not Dice", dict(dice="coefficient"),
     "You add the Dice coefficient itself; the loss term is 1 - Dice (it must fall as the overlap grows)."),
    ("BCE averaged over pixels", dict(bce="sum"),
     "Your BCE is summed over pixels; average it (reduction='mean', the default)."),
)
_LAM_MISTAKES = (
    ("lam weights the Dice term", dict(lam_on="both"), "Your loss ignores lam: the Dice term always has weight 1."),
    ("lam weights the Dice term", dict(lam_on="bce"), "You multiply the BCE term by lam; lam weights the Dice term."),
)


def _call(fn: Callable[..., Any], logits: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return require_tensor(call_learner(fn, logits, target, **kwargs), "The loss", shape=())


def _compare(fn: Callable[..., Any], logits: torch.Tensor, target: torch.Tensor, what: str,
             mistakes: tuple = (), **kwargs: Any) -> None:
    got = _call(fn, logits, target, **kwargs)
    expected = _reference(logits, target, **kwargs)
    expect_same(got, expected, what, [Variant(name, (lambda c=change: _variant(logits, target, **{**kwargs, **c})), msg)
                                      for name, change, msg in mistakes])


def _scalar(fn: Callable[..., Any]) -> None:
    _call(fn, *_case(*_CASES[0]))


def _differentiable(fn: Callable[..., Any]) -> None:
    shape, seed = _CASES[0]
    target = _target(shape, seed)
    expect_gradient(lambda x: _call(fn, x, target), lambda x: _reference(x, target), _logits(shape, seed),
                    "Thresholding (logits > 0) or .item()/.detach()/numpy cut the graph: use soft probabilities, "
                    "torch.sigmoid(logits).")


def _bce_only(fn: Callable[..., Any]) -> None:
    for shape, seed in _CASES:
        _compare(fn, *_case(shape, seed), f"logits {shape}, lam=0", (
            ("BCE averaged over pixels", dict(bce="sum"), "Your BCE is summed over pixels; average it instead."),
        ) + _LAM_MISTAKES, lam=0.0)


def _stable(fn: Callable[..., Any]) -> None:
    shape, seed = (2, 1, 6, 6), 3
    logits, target = _case(shape, seed)
    logits.view(-1)[:8] = torch.tensor([40.0, -40.0, 35.0, -35.0, 30.0, -30.0, 60.0, -60.0])
    target.view(-1)[:8] = torch.tensor([0, 1, 1, 0, 0, 1, 1, 0])  # confident and wrong, confident and right
    got = _call(fn, logits, target, lam=0.0)
    expected = _reference(logits, target, lam=0.0)
    if not same(got, expected, atol=1e-4):
        raise PropertyFailed(f"With logits of +-30 to +-60 (lam=0) your loss is {float(got):.4g}, not "
                             f"{float(expected):.4g}: sigmoid rounds to exactly 0 or 1 there, and log(0) is "
                             "-inf (PyTorch clamps it to -100).", got, expected)


def _matches(fn: Callable[..., Any]) -> None:
    for shape, seed in _CASES:
        _compare(fn, *_case(shape, seed), f"logits {shape}, lam=1", _DICE_MISTAKES)


def _lam(fn: Callable[..., Any]) -> None:
    for lam, (shape, seed) in zip((0.3, 2.5), _CASES):
        _compare(fn, *_case(shape, seed), f"logits {shape}, lam={lam}", _LAM_MISTAKES, lam=lam)


def _empty(fn: Callable[..., Any]) -> None:
    for shape, seed in ((2, 1, 8, 8), 4), ((1, 1, 7, 5), 5):
        logits = _logits(shape, seed)
        target = torch.zeros(shape[0], *shape[2:], dtype=torch.long)
        _compare(fn, logits, target, f"logits {shape}, a target without any foreground pixel", (
            ("no foreground in the batch: Dice term is 0", dict(empty_rule=False),
             "On a batch without foreground your Dice term is about 1 whatever the model predicts, so it only adds "
             "a constant and pushes every probability down."),
        ))


def _target_forms(fn: Callable[..., Any]) -> None:
    shape, seed = (2, 1, 7, 5), 6
    logits, target = _case(shape, seed)
    expected = _reference(logits, target)
    forms = (("(N, 1, H, W) int64", target.unsqueeze(1)), ("(N, H, W) float32", target.float()),
             ("(N, 1, H, W) float32", target.float().unsqueeze(1)), ("(N, H, W) bool", target.bool()))
    for what, form in forms:
        got = _call(fn, logits, form)
        if not same(got, expected):
            if same(got, _variant(logits, target, dice="broadcast")):
                raise PropertyFailed(f"With a {what} target your loss broadcasts to (N, N, H, W) and mixes images.",
                                     got, expected)
            raise PropertyFailed(f"With the target as {what} your loss differs from the (N, H, W) int64 case.",
                                 got, expected)


def _properties() -> list[Property]:
    cases = ", ".join(f"{shape}" for shape, _ in _CASES)
    return [
        Property("returns a scalar tensor", "logits (2, 1, 8, 8), int64 target (2, 8, 8)", _scalar,
                 "Return one 0-d tensor: BCE + lam * (1 - Dice). BCE needs a float target: `target.float()`."),
        Property("differentiable: gradient reaches the logits", "logits (2, 1, 8, 8), loss.backward()", _differentiable),
        Property("BCE term: lam=0 gives BCE-with-logits averaged over pixels", f"logits {cases}, lam=0", _bce_only,
                 "`F.binary_cross_entropy_with_logits(logits[:, 0], target.float())`."),
        Property("BCE from logits: stable for large logits", "lam=0, logits of +-30 to +-60, confident right and wrong",
                 _stable,
                 "binary_cross_entropy_with_logits works in log space; sigmoid then binary_cross_entropy (or log) "
                 "breaks once sigmoid rounds to 0 or 1."),
        Property("matches unet_helpers.bce_dice_loss", f"random logits {cases} (odd sizes, a batch of one), lam=1",
                 _matches, "`p = torch.sigmoid(logits[:, 0])`, `y = target.float()`; "
                 "`dice = (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)` over the whole batch; "
                 "loss = BCE + lam * (1 - dice)."),
        Property("lam weights the Dice term", "lam=0.3 and lam=2.5", _lam, "total = BCE + lam * (1 - Dice)."),
        Property("no foreground in the batch: Dice term is 0", "all-background targets (2, 8, 8) and (1, 7, 5)", _empty,
                 "If `y.sum() == 0`, the foreground Dice is undefined: use `dice_term = logits.sum() * 0.0` "
                 "(0, and still part of the graph)."),
        Property("target as (N, H, W) or (N, 1, H, W), int64, float or bool", "the same target in four forms", _target_forms,
                 "Bring the target to (N, H, W) float first: `if target.ndim == 4: target = target[:, 0]`, "
                 "then `target.float()`."),
    ]


BCE_DICE = ExerciseSpec(
    name="bce_dice_loss",
    title="Binary BCE + Dice loss",
    notebook="ex07_bce_dice",
    task="Write `my_bce_dice_loss(logits, target, lam=1.0, eps=1e-6)`: one-channel `logits (N, 1, H, W)`, "
         "`target (N, H, W)` (or `(N, 1, H, W)`) in {0, 1} -> a 0-d tensor, BCE + lam * (1 - foreground soft Dice).",
    properties=_properties,
    hints=(
        "Work on `(N, H, W)` tensors: `scores = logits[:, 0]` and the target as floats. BCE comes straight from "
        "the logits; Dice needs probabilities.",
        "`bce = F.binary_cross_entropy_with_logits(scores, y)`; `p = torch.sigmoid(scores)`; "
        "`dice = (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)` (sums over the whole batch).",
        "A (N, 1, H, W) target: `target[:, 0]`. No foreground at all (`y.sum() == 0`): Dice term "
        "`scores.sum() * 0.0`. Return `bce + lam * (1 - dice)`.",
    ),
    defines=("my_bce_dice_loss",),
    reference="unet_helpers/losses.py: bce_dice_loss",
    forbidden=("unet_helpers.losses.bce_dice_loss", "unet_helpers.losses.BCEDiceLoss", "unet_helpers.losses.dice_loss",
               "unet_helpers.losses.soft_dice_per_class"),
    next_steps="run the experiment below: does adding Dice make training on 5 % foreground converge sooner?",
)
