"""Automatic checks for the exercise notebooks in ``exercises/``.

In a notebook::

    from unet_helpers.checks import exercise
    ex = exercise("dice_loss")
    ex.check(my_dice_loss)   # correct / works, other convention / incomplete / incorrect / uses the package / not attempted
    ex.hint()                # next hint; ex.hint(2) for the second
    ex.solution()            # the solution from solutions/

``core.py`` holds properties, outcomes and the result; ``isolation.py`` calls the learner's code
(copies of the inputs, torch's global state guarded, the package's own implementation of the piece
under a tripwire); ``compare.py`` is the one comparison; ``exercise.py`` is what a learner holds;
``catalogue.py`` lists every exercise; ``exNN_<piece>.py`` defines one exercise's spec and
properties. ``python -m unet_helpers progress exercises/`` runs your exercise notebooks (without
changing them) and prints a table of statuses and hints used (``course/progress.py``).
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
