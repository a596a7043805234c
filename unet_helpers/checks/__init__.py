"""Automatic checks for the exercise notebooks in ``exercises/``.

In a notebook::

    from unet_helpers.checks import exercise
    ex = exercise("dice_loss")
    ex.check(my_dice_loss)   # correct / incorrect (which property, yours vs expected, a hint) / not attempted
    ex.hint()                # next hint; ex.hint(2) for the second
    ex.solution()            # the solution from solutions/

``core.py`` runs properties and reports; ``exercise.py`` is what a learner holds; ``catalogue.py``
lists every exercise; one module per exercise group defines its ``ExerciseSpec`` and properties.
``python -m unet_helpers progress exercises/`` runs your exercise notebooks (without changing them)
and prints a table of statuses and hints used (``course/progress.py``).
"""
from .catalogue import exercise, list_exercises
from .core import CheckResult, Property, PropertyFailed, Status
from .exercise import Exercise
from .progress_file import load_progress, progress_path
from .spec import ExerciseSpec

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
