"""Every exercise, in the order learners meet them: ``exercise(name)`` and ``list_exercises()``.

An explicit list, not a registry filled by import side effects: adding an exercise means adding its
``ExerciseSpec`` here.
"""
from __future__ import annotations

import re

from .bce_dice import BCE_DICE
from .blocks import DOUBLE_CONV, UP_BLOCK
from .dice_gains import DICE_GAINS
from .exercise import Exercise
from .losses import DICE_LOSS
from .metrics import DATASET_IOU, IOU_FROM_CONFUSION
from .real_data import TILED_IOU
from .spec import ExerciseSpec
from .training import EVALUATION, TRAINING_STEP
from .up_transpose import UP_TRANSPOSE

CATALOGUE: tuple[ExerciseSpec, ...] = (
    DOUBLE_CONV,  # ex01
    UP_BLOCK,  # ex02
    DICE_LOSS,  # ex03
    IOU_FROM_CONFUSION, DATASET_IOU,  # ex04
    TRAINING_STEP, EVALUATION,  # ex05
    BCE_DICE,  # ex06
    UP_TRANSPOSE,  # ex07
    TILED_IOU, DICE_GAINS,  # ex08
)
_BY_NAME = {spec.name: spec for spec in CATALOGUE}
if len(_BY_NAME) != len(CATALOGUE):  # pragma: no cover - a programming error in the list above
    raise RuntimeError("two exercises in checks/catalogue.py share a name")


def exercise(name: str) -> Exercise:
    """The exercise called ``name`` (see ``list_exercises()``).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = re.sub(r"[\s-]+", "_", str(name).strip().lower())
    if key not in _BY_NAME:
        raise ValueError(f"no exercise called {name!r}; known: {', '.join(sorted(_BY_NAME))}")
    return Exercise(_BY_NAME[key])


def list_exercises() -> list[ExerciseSpec]:
    """All exercises in course order (by notebook, then as listed in ``CATALOGUE``)."""
    return sorted(CATALOGUE, key=lambda spec: spec.notebook)
