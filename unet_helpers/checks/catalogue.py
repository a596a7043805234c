"""Every exercise, in the order learners meet them: ``exercise(name)`` and ``list_exercises()``.

An explicit list, not a registry filled by import side effects: adding an exercise means adding its
``ExerciseSpec`` here (one module per exercise, ``exNN_<piece>.py``, defines it).
"""
from __future__ import annotations

import re

from .ex01_task_choice import TASK_CHOICE
from .ex02_double_conv import DOUBLE_CONV
from .ex03_up_block import UP_BLOCK
from .ex04_unet import UNET_FORWARD
from .ex05_pixel_cross_entropy import PIXEL_CROSS_ENTROPY
from .ex06_dice_loss import DICE_LOSS
from .ex07_bce_dice import BCE_DICE
from .ex08_iou import DATASET_IOU, IOU_FROM_CONFUSION
from .ex09_boundary_f1 import BOUNDARY_F1
from .ex10_training_loop import EVALUATION, TRAINING_STEP
from .ex11_transposed_up import UP_TRANSPOSE
from .ex12_diagnosis import DIAGNOSIS, DIAGNOSIS_EVIDENCE
from .ex13_dice_gains import DICE_GAINS
from .ex13_tiled_iou import TILED_IOU
from .ex13_train_steps import TRAIN_STEPS
from .exercise import Exercise
from .spec import ExerciseSpec

CATALOGUE: tuple[ExerciseSpec, ...] = (
    TASK_CHOICE,  # ex01
    DOUBLE_CONV,  # ex02
    UP_BLOCK,  # ex03
    UNET_FORWARD,  # ex04
    PIXEL_CROSS_ENTROPY,  # ex05
    DICE_LOSS,  # ex06
    BCE_DICE,  # ex07
    IOU_FROM_CONFUSION, DATASET_IOU,  # ex08
    BOUNDARY_F1,  # ex09
    TRAINING_STEP, EVALUATION,  # ex10
    UP_TRANSPOSE,  # ex11
    DIAGNOSIS_EVIDENCE, DIAGNOSIS,  # ex12
    TRAIN_STEPS, TILED_IOU, DICE_GAINS,  # ex13
)
_BY_NAME = {spec.name: spec for spec in CATALOGUE}
if len(_BY_NAME) != len(CATALOGUE):  # pragma: no cover - a programming error in the list above
    raise RuntimeError("two exercises in checks/catalogue.py share a name")


def exercise(name: str, generated_with: str | None = None) -> Exercise:
    """The exercise called ``name`` (see ``list_exercises()``).

    Args:
        name: e.g. ``"dice_loss"`` (case, spaces and dashes do not matter).
        generated_with: the package version the exercise notebook was generated with; written into
            the notebook by ``course/build.py``, so that a check can warn when it does not match.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = re.sub(r"[\s-]+", "_", str(name).strip().lower())
    if key not in _BY_NAME:
        raise ValueError(f"no exercise called {name!r}; known: {', '.join(sorted(_BY_NAME))}")
    return Exercise(_BY_NAME[key], generated_with)


def list_exercises() -> list[ExerciseSpec]:
    """All exercises in course order (by notebook, then as listed in ``CATALOGUE``)."""
    return sorted(CATALOGUE, key=lambda spec: spec.notebook)
