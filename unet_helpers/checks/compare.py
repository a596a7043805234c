"""The one comparison every check uses: the learner's value against the reference, then known slips.

``expect_same(got, expected, what, variants)`` returns when the two agree (within float32
tolerances, NaN equal to NaN). Otherwise it tries each ``Variant``: what the reference would give
with one convention changed, or with one classic mistake made. The first variant that reproduces
the learner's value names the slip; a variant with ``convention`` set is an equivalent answer
that follows another convention (reported as such, with why this course's convention matters).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .core import PropertyFailed

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
