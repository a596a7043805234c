"""Learning-rate schedules beyond ``torch.optim.lr_scheduler``'s: ``WarmupCosine`` (lesson 06's ``fit`` takes any).

``WarmupCosine`` is what the ``train`` command uses on folder data (``--schedule cosine``): a short
linear warm-up, then a cosine decay to 0, so the rate never exceeds its peak. On a small data set a
one-cycle schedule's long climb to a high peak can undo what the first epochs learned.
"""
from __future__ import annotations

import math


class WarmupCosine:
    """The learning-rate factor of step ``t`` (a ``LambdaLR`` function): a linear warm-up, then a cosine decay.

    ``factor(t) = (t + 1) / warmup_steps`` for ``t < warmup_steps``, then
    ``(1 + cos(pi * p)) / 2`` with ``p = (t - warmup_steps) / (total_steps - warmup_steps)``,
    so the rate rises to its peak (factor 1) and never exceeds it, and reaches 0 at ``total_steps``.
    ``total_steps`` may be ``None`` until it is known (``--time-budget``: set after the first
    epoch, which holds the whole warm-up); meanwhile the factor after the warm-up is 1.
    ``LambdaLR`` stores this object's attributes in its ``state_dict``, so a checkpoint keeps the plan.
    """

    def __init__(self, warmup_steps: int, total_steps: int | None = None) -> None:
        self.warmup_steps, self.total_steps = warmup_steps, total_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.total_steps is None:
            return 1.0
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
