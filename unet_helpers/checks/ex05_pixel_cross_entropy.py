"""Check of exercise 05: pixel cross-entropy by hand, with class weights and ``ignore_index``.

Reference: ``unet_helpers.losses.pixel_cross_entropy`` (itself ``F.cross_entropy`` with checks):
``sum over labelled pixels of w[y] * -log softmax(logits)[y]``, divided by ``sum of w[y]`` over the
same pixels (PyTorch's weighted mean); pixels whose target is ``ignore_index`` count nowhere (the
id may be any value, also one inside ``[0, K)``); 0 with a graph when every pixel is ignored.
Writing it "by hand" means without ``F.cross_entropy``, ``F.nll_loss`` or their module forms.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..losses import pixel_cross_entropy
from .compare import Variant, expect_gradient, expect_same
from .core import Property, PropertyFailed
from .isolation import call_learner
from .spec import ExerciseSpec
from .tools import generator, random_target, require_tensor

CASES = (((2, 3, 8, 8), 0), ((1, 4, 7, 5), 1), ((3, 2, 6, 9), 2))  # ((N, K, H, W), seed)
WEIGHTS = {3: (0.2, 1.0, 3.0), 4: (1.0, 0.5, 2.0, 4.0), 2: (1.0, 9.0)}


def _logits(shape: tuple[int, ...], seed: int, scale: float = 2.0) -> torch.Tensor:
    return scale * torch.randn(shape, generator=generator(1100 + seed))


def _case(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    n, k, h, w = shape
    return _logits(shape, seed), random_target((n, h, w), k, seed)


def _ignored(target: torch.Tensor, ignore_index: int, seed: int, fraction: float = 0.3) -> torch.Tensor:
    mask = torch.rand(target.shape, generator=generator(1200 + seed)) < fraction
    mask.view(-1)[-1] = True
    return target.masked_fill(mask, ignore_index)


def _variant(logits: torch.Tensor, target: torch.Tensor, weight: Any = None, ignore_index: int | None = None,
             mean_over: str = "weights", drop_high: bool = False, log: str = "log_softmax") -> torch.Tensor:
    """The loss with one convention changed, to name the learner's mistake."""
    k = logits.shape[1]
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    if drop_high:
        valid = (target >= 0) & (target < k)
    safe = target.where(valid, 0)
    logp = logits.log_softmax(1) if log == "log_softmax" else logits.softmax(1).log()
    picked = -logp.gather(1, safe.unsqueeze(1)).squeeze(1)  # (N, H, W)
    w = torch.ones(k) if weight is None else torch.as_tensor(weight, dtype=logits.dtype)
    wy = w[safe] * valid  # (N, H, W)
    if mean_over == "pixels":
        return (wy * picked).sum() / valid.sum()
    if mean_over == "all":
        return (wy * picked).sum() / target.numel()
    return (wy * picked).sum() / wy.sum()


def _call(fn: Callable[..., Any], logits: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return require_tensor(call_learner(fn, logits, target, **kwargs), "The loss", shape=())


def _reference(logits: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return pixel_cross_entropy(logits, target, **kwargs)


def _compare(fn: Callable[..., Any], logits: torch.Tensor, target: torch.Tensor, what: str, variants: tuple = (),
             **kwargs: Any) -> None:
    got = _call(fn, logits, target, **kwargs)
    expected = _reference(logits, target, **kwargs)
    expect_same(got, expected, what, [Variant(name, (lambda c=change: _variant(logits, target, **{**kwargs, **c})), msg)
                                      for name, change, msg in variants])


_LOG = (("log-softmax, not log of softmax", dict(log="log"), "You take log(softmax(...)): it underflows to log(0) = "
         "-inf once a probability rounds to 0."),)
_WEIGHTED = (
    ("class weights: weighted mean", dict(mean_over="pixels"), "You divide the weighted sum by the number of pixels; "
     "PyTorch's weighted mean divides by the sum of the weights of those pixels, so the loss keeps its scale "
     "whatever the weights."),
)


def _scalar(fn: Callable[..., Any]) -> None:
    _call(fn, *_case(*CASES[0]))


def _differentiable(fn: Callable[..., Any]) -> None:
    logits, target = _case(*CASES[0])
    expect_gradient(lambda x: _call(fn, x, target), lambda x: _reference(x, target), logits,
                    "Stay in torch: no .item(), .detach() or NumPy inside the loss.", rtol=1e-4,
                    differs="The gradient with respect to the logits differs from cross-entropy's "
                            "(softmax - one_hot) / pixels.")


def _plain(fn: Callable[..., Any]) -> None:
    for shape, seed in CASES:
        _compare(fn, *_case(shape, seed), f"logits {shape}", _LOG)


def _stable(fn: Callable[..., Any]) -> None:
    logits, target = _case((2, 3, 5, 6), 3)
    logits.view(-1)[:6] = torch.tensor([120.0, -120.0, 90.0, -95.0, 150.0, -150.0])
    got = _call(fn, logits, target)
    expected = _reference(logits, target)
    if not bool(torch.isfinite(got)):
        raise PropertyFailed("With logits of +-90 to +-150 your loss is not finite: softmax rounds some probabilities "
                             "to 0 and log(0) is -inf.", got, expected,
                             hint="`logits.log_softmax(dim=1)` subtracts the largest logit first and never takes log(0).")
    expect_same(got, expected, "logits of +-90 to +-150", [])


def _weights(fn: Callable[..., Any]) -> None:
    for shape, seed in CASES:
        weight = torch.tensor(WEIGHTS[shape[1]])
        _compare(fn, *_case(shape, seed), f"logits {shape}, weight={WEIGHTS[shape[1]]}", _WEIGHTED, weight=weight)


def _ignore_outside(fn: Callable[..., Any]) -> None:
    for shape, seed in CASES[:2]:
        logits, target = _case(shape, seed)
        _compare(fn, logits, _ignored(target, 255, seed), f"logits {shape}, ~30% of pixels = ignore_index 255", (
            ("ignored pixels count nowhere", dict(mean_over="all"), "You leave ignored pixels out of the sum but "
             "still count them in the mean."),
        ), ignore_index=255)


def _ignore_inside(fn: Callable[..., Any]) -> None:
    for shape, seed in CASES[:2]:
        logits, target = _case(shape, seed)
        what = f"logits {shape}, ignore_index=1 (a class id inside [0, K))"
        _compare(fn, logits, target, what, (
            ("ignore_index may be any id, also one in [0, K)", dict(drop_high=True),
             "You drop the ids outside [0, K) instead of the pixels equal to ignore_index: with ignore_index=1 class "
             "1 still counts."),
            ("ignore_index may be any id, also one in [0, K)", dict(ignore_index=None),
             "You ignore `ignore_index`: class 1's pixels still count."),
        ), ignore_index=1)


def _ignore_weighted(fn: Callable[..., Any]) -> None:
    shape, seed = CASES[1]
    logits, target = _case(shape, seed)
    weight = torch.tensor(WEIGHTS[shape[1]])
    _compare(fn, logits, _ignored(target, 255, seed), f"logits {shape}, weight={WEIGHTS[shape[1]]}, ignore_index=255",
             _WEIGHTED + (("ignored pixels count nowhere", dict(mean_over="all"), "Ignored pixels still count in "
                                                                                   "the mean."),),
             weight=weight, ignore_index=255)


def _all_ignored(fn: Callable[..., Any]) -> None:
    logits = _logits((1, 3, 4, 4), 5).requires_grad_(True)
    loss = _call(fn, logits, torch.full((1, 4, 4), 255, dtype=torch.long), ignore_index=255)
    if not (bool(torch.isfinite(loss)) and abs(float(loss)) < 1e-7):
        raise PropertyFailed("When every pixel is ignored nothing is labelled; the loss should be 0, not 0/0 = NaN.",
                             loss, 0.0, hint="Check `if valid.sum() == 0: return logits.sum() * 0.0` before dividing.")
    if not loss.requires_grad:
        raise PropertyFailed("An all-ignored batch returns a constant without a graph: `loss.backward()` in a training "
                             "loop then raises.", "requires_grad=False", "0.0 with requires_grad=True",
                             hint="Return `logits.sum() * 0.0`: 0, and still connected to the logits.",
                             name="every pixel ignored gives 0 with a gradient")


def _properties() -> list[Property]:
    cases = ", ".join(str(shape) for shape, _ in CASES)
    return [
        Property("returns a scalar tensor", "logits (2, 3, 8, 8)", _scalar,
                 "Average over the labelled pixels: the result is a 0-d tensor."),
        Property("differentiable: the gradient of cross-entropy", "logits (2, 3, 8, 8), loss.backward()",
                 _differentiable),
        Property("matches cross-entropy", f"random logits {cases} (odd sizes, batch of one, K = 2 to 4)", _plain,
                 "`logp = logits.log_softmax(dim=1)`; per pixel `-logp.gather(1, target.unsqueeze(1))`; mean over pixels."),
        Property("log-softmax, not log of softmax", "logits of +-90 to +-150", _stable),
        Property("class weights: weighted mean", "weights (0.2, 1, 3), (1, 0.5, 2, 4), (1, 9)", _weights,
                 "Multiply each pixel's loss by `weight[target]`, then divide by the sum of `weight[target]`."),
        Property("ignored pixels count nowhere", "ignore_index=255 on ~30% of the pixels", _ignore_outside,
                 "`valid = target != ignore_index`; sum over valid pixels only and divide by their number (or weights)."),
        Property("ignore_index may be any id, also one in [0, K)", "ignore_index=1 with K = 3 and 4", _ignore_inside,
                 "Compare with `target != ignore_index`, never `target < K`: unlabelled pixels are sometimes stored as "
                 "class 0 or as the last class."),
        Property("weights and ignore_index together", "weight=(1, 0.5, 2, 4), ignore_index=255", _ignore_weighted),
        Property("every pixel ignored gives 0 with a gradient", "target all 255, ignore_index=255", _all_ignored),
    ]


PIXEL_CROSS_ENTROPY = ExerciseSpec(
    name="pixel_cross_entropy",
    title="Pixel cross-entropy by hand: log-softmax, class weights, ignore_index",
    notebook="ex05_pixel_cross_entropy",
    task="Write `my_pixel_cross_entropy(logits, target, weight=None, ignore_index=None)`: `logits (N, K, H, W)`, "
         "`target (N, H, W)` int64 -> a 0-d tensor, the (weighted) mean of `-log p[target]` over the labelled pixels, "
         "without `F.cross_entropy` or `F.nll_loss`.",
    properties=_properties,
    hints=(
        "Three steps: log-probabilities over the class axis, pick the one of the true class at every pixel, then a "
        "(weighted) mean over the pixels that count.",
        "`logp = logits.log_softmax(dim=1)`; `valid = target != ignore_index`; `safe = target.where(valid, 0)`; "
        "`nll = -logp.gather(1, safe.unsqueeze(1)).squeeze(1)` is `(N, H, W)`.",
        "`w = weight[safe] * valid` (or `valid.float()` without weights); `if w.sum() == 0: return logits.sum() * 0.0`; "
        "`return (w * nll).sum() / w.sum()`.",
    ),
    defines=("my_pixel_cross_entropy",),
    reference="unet_helpers/losses.py: pixel_cross_entropy",
    forbidden=("unet_helpers.losses.pixel_cross_entropy", "unet_helpers.losses.PixelCrossEntropy",
               "unet_helpers.losses.combined_loss", "unet_helpers.losses.CombinedLoss",
               "torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss",
               "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss"),
    next_steps="compare `my_pixel_cross_entropy` with and without `weight=(1, 19)` on a 5 %-foreground batch: how "
               "much of the loss comes from the foreground pixels in each case?",
)
