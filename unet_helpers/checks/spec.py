"""``ExerciseSpec``: everything that defines one exercise (each exercise module defines one or more).

The catalogue of all exercises, in notebook order, is ``checks/catalogue.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .core import Property

ANSWER_KINDS = ("function", "class")


@dataclass(frozen=True)
class ExerciseSpec:
    """Everything that defines one exercise.

    Args:
        name: the name passed to ``exercise(...)``, e.g. ``"dice_loss"``.
        title: one line, e.g. ``"Soft multi-class Dice loss"``.
        notebook: stem of the notebook in ``solutions/`` and ``exercises/``, e.g. ``"ex06_dice_loss"``.
        task: Markdown: what to write and its signature.
        properties: builds the list of properties a correct answer has (called at each check).
        hints: increasingly concrete hints.
        defines: names the solution cell defines (``"my_dice_loss"``), to find it in the notebook.
        reference: where the package's own version lives, e.g. ``"unet_helpers/losses.py: dice_loss"``.
        forbidden: dotted paths of the package's own implementation of the piece under test
            (functions, methods or classes); an answer that calls, subclasses or returns one of them
            is reported as using the package (``isolation.py``). Importing them is fine.
        next_steps: what to look at once the check passes.
        answer_kind: ``"function"`` or ``"class"`` (an ``nn.Module`` subclass, not an instance).
        random_allowed: the learner's code may draw random numbers (e.g. it builds modules).
    """

    name: str
    title: str
    notebook: str
    task: str
    properties: Callable[[], list[Property]]
    hints: tuple[str, ...]
    defines: tuple[str, ...]
    reference: str
    forbidden: tuple[str, ...] = ()
    next_steps: str = ""
    answer_kind: str = "function"
    random_allowed: bool = False

    def __post_init__(self) -> None:
        if self.answer_kind not in ANSWER_KINDS:
            raise ValueError(f"answer_kind must be one of {ANSWER_KINDS}; got {self.answer_kind!r}")
