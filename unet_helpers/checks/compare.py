"""The one comparison every check uses: the learner's value against the reference, then known slips.

``expect_same(got, expected, what, variants)`` returns when the two agree (within float32
tolerances, NaN equal to NaN). Otherwise it tries each ``Variant``: what the reference would give
with one convention changed, or with one classic mistake made. The first variant that reproduces
the learner's value names the slip; a variant with ``convention`` set is an equivalent answer
that follows another convention (reported as such, with why this course's convention matters).

``expect_gradient(loss_of, reference_of, logits, cut_hint)`` is the gradient property of the loss
exercises: the learner's loss must carry a gradient to the logits, and where its value is the
reference's, so must its gradient.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .core import PropertyFailed
from .isolation import call_learner

# float32 has about 7 significant digits; sums over a few thousand pixels lose about three of them.
ATOL, RTOL = 1e-5, 1e-4


@dataclass(frozen=True)
class Variant:
    """A known way to get another value than the reference.

    Args:
        name: the property the slip belongs to (shown as the failed property); ``None`` keeps the
            property being checked.
        value: the value with the slip, or a function of no arguments that computes it (so that
            expensive variants are only computed when needed).
        message: what the learner did, in one sentence.
        convention: for an equivalent answer that follows another convention: why the course's
            convention matters. ``None`` for a real mistake.
        hint: what to change (defaults to the property's hint).
    """

    name: str | None
    value: Any
    message: str
    convention: str | None = None
    hint: str | None = None

    def compute(self) -> Any:
        return self.value() if callable(self.value) else self.value


def as_tensor(value: Any) -> torch.Tensor | None:
    """``value`` as a float64 tensor when it is a tensor, an array or a (nested) sequence of numbers."""
    try:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().double() if not value.is_complex() else None
        if isinstance(value, np.ndarray):
            return torch.from_numpy(np.asarray(value, dtype=np.float64))
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return torch.tensor(float(value), dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return None
    return None


def same(a: Any, b: Any, atol: float = ATOL, rtol: float = RTOL) -> bool:
    """Equal within tolerance: tensors and numbers (same shape; NaN equals NaN), sequences and dicts
    item by item, anything else with ``==``. Never raises."""
    try:
        ta, tb = as_tensor(a), as_tensor(b)
        if ta is not None and tb is not None:
            return ta.shape == tb.shape and bool(torch.allclose(ta, tb, atol=atol, rtol=rtol, equal_nan=True))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k], atol, rtol) for k in a)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(same(x, y, atol, rtol) for x, y in zip(a, b))
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a learner object whose comparison raises is simply not the same
        return False


def expect_same(got: Any, expected: Any, what: str, variants: Sequence[Variant] = (), atol: float = ATOL,
                rtol: float = RTOL, shown: Callable[[Any], Any] | None = None) -> None:
    """Return if ``got`` equals ``expected``; else raise ``PropertyFailed`` naming the variant it matches.

    Args:
        got, expected: the learner's value and the reference.
        what: the inputs, for the message ("logits (2, 3, 8, 8), ignore_index=1").
        variants: known slips and conventions, tried in order.
        atol, rtol: tolerances (float32-appropriate by default).
        shown: turns a value into what the message shows (e.g. the first row of an image).
    """
    if same(got, expected, atol, rtol):
        return
    show = shown or (lambda v: v)
    for variant in variants:
        try:
            value = variant.compute()
        except Exception:  # noqa: BLE001 - a variant that cannot be computed for these inputs does not match
            continue
        if same(got, value, atol, rtol):
            raise PropertyFailed(f"{variant.message} ({what})", show(got), show(expected), hint=variant.hint,
                                 name=variant.name, convention=variant.convention)
    raise PropertyFailed(f"Your value differs from the reference on {what}.", show(got), show(expected))


def expect_gradient(loss_of: Callable[[torch.Tensor], torch.Tensor], reference_of: Callable[[torch.Tensor], torch.Tensor],
                    logits: torch.Tensor, cut_hint: str, rtol: float = 1e-3,
                    differs: str = "The gradient with respect to the logits differs from the reference's.") -> None:
    """Raise ``PropertyFailed`` unless the learner's loss back-propagates the reference's gradient.

    A loss with a wrong value but some gradient passes here: the properties on values name it.

    Args:
        loss_of: logits -> the learner's loss (a scalar tensor; called once).
        reference_of: logits -> the reference loss.
        logits: the input; a fresh leaf copy that requires grad is used.
        cut_hint: the hint when the loss has no gradient at all (what cut the graph).
        rtol: relative tolerance of the gradient comparison (absolute: 1e-6).
        differs: the message when the value matches but the gradient does not.
    """
    logits = logits.detach().clone().requires_grad_(True)
    loss = loss_of(logits)
    if not loss.requires_grad:
        raise PropertyFailed("The loss has no gradient with respect to the logits.", "requires_grad=False",
                             "requires_grad=True", hint=cut_hint)
    call_learner(loss.backward)
    reference = reference_of(logits)
    if not same(loss.detach(), reference.detach()):
        return  # a gradient exists; the value itself is wrong, which the properties on values name
    expected = torch.autograd.grad(reference, logits)[0]
    if logits.grad is None or not torch.allclose(logits.grad, expected, atol=1e-6, rtol=rtol):
        raise PropertyFailed(differs, None if logits.grad is None else logits.grad.reshape(-1)[:4],
                             expected.reshape(-1)[:4])
