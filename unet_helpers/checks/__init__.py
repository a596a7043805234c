"""Automatic checks for the exercise notebooks in ``exercises/``.

In a notebook::

    from unet_helpers.checks import exercise
    ex = exercise("dice_loss")
    ex.check(my_dice_loss)   # correct / incorrect (which property, yours vs expected, a hint) / not attempted
    ex.hint()                # next hint; ex.hint(2) for the second
    ex.solution()            # the solution from solutions/

``python -m unet_helpers.checks.progress exercises/`` runs your exercise notebooks (without
changing them) and prints a table of statuses and hints used; ``python -m
unet_helpers.checks.build`` regenerates ``exercises/`` from ``solutions/`` (for instructors).
"""
from .core import CheckResult, Property, PropertyFailed, Status
from .exercise import Exercise, ExerciseSpec, exercise, list_exercises
from .record import load_progress, progress_path

__all__ = [
    "CheckResult",
    "Exercise",
    "ExerciseSpec",
    "Property",
    "PropertyFailed",
    "Status",
    "exercise",
    "list_exercises",
    "load_progress",
    "progress_path",
]
