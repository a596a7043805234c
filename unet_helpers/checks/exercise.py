"""An exercise as the learner sees it: ``ex.check(answer)``, ``ex.hint()``, ``ex.solution()``.

Used by every notebook in ``exercises/``::

    from unet_helpers.checks import exercise
    ex = exercise("dice_loss")
    ex.check(my_dice_loss)   # a CheckResult: correct / incorrect (which property, why) / not attempted
    ex.hint()                # the next hint; ex.hint(2) for hint 2
    ex.solution()            # the solution cell of solutions/<notebook>.ipynb

Each exercise group module (``blocks.py``, ``losses.py``, ``metrics.py``, ``training.py``, and for
the lesson's three exercises ``bce_dice.py``, ``up_transpose.py``, ``real_data.py``, ``dice_gains.py``)
registers its exercises here with ``register(ExerciseSpec(...))``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .core import CheckResult, Property, Status, run_properties
from .record import record_check, record_hint, record_solution

SOLUTIONS_ENV_VAR = "UNET_SOLUTIONS_DIR"


@dataclass(frozen=True)
class ExerciseSpec:
    """Everything that defines one exercise.

    Args:
        name: the name passed to ``exercise(...)``, e.g. ``"dice_loss"``.
        title: one line, e.g. ``"Soft multi-class Dice loss"``.
        notebook: stem of the notebook in ``solutions/`` and ``exercises/``, e.g. ``"ex03_dice_loss"``.
        task: Markdown: what to write and its signature.
        properties: builds the list of properties a correct answer has (called at each check).
        hints: increasingly concrete hints.
        defines: names the solution cell defines (``"my_dice_loss"``), to find it in the notebook.
        reference: where the package's own version lives, e.g. ``"unet_helpers/losses.py: dice_loss"``.
        next_steps: what to look at once the check passes.
        answer_kind: ``"function"`` or ``"class"`` (an ``nn.Module`` subclass, not an instance).
    """

    name: str
    title: str
    notebook: str
    task: str
    properties: Callable[[], list[Property]]
    hints: tuple[str, ...]
    defines: tuple[str, ...]
    reference: str
    next_steps: str = ""
    answer_kind: str = "function"


_REGISTRY: dict[str, ExerciseSpec] = {}


def register(spec: ExerciseSpec) -> ExerciseSpec:
    """Add ``spec`` to the registry (exercise names are unique)."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"exercise {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


class Note:
    """A short Markdown message (a hint or a solution) that also reads well as plain text."""

    def __init__(self, title: str, body: str, code: str | None = None) -> None:
        self.title, self.body, self.code = title, body, code

    def _repr_markdown_(self) -> str:
        code = f"\n\n```python\n{self.code}\n```" if self.code else ""
        return f"**{self.title}**\n\n{self.body}{code}"

    def __str__(self) -> str:
        code = f"\n\n{self.code}" if self.code else ""
        return f"{self.title}\n{self.body}{code}"

    __repr__ = __str__


def solutions_dir() -> Path:
    """``$UNET_SOLUTIONS_DIR``, else ``solutions/`` beside the ``unet_helpers`` package."""
    value = os.environ.get(SOLUTIONS_ENV_VAR)
    return Path(value) if value else Path(__file__).resolve().parents[2] / "solutions"


class Exercise:
    """One exercise: check an answer, show hints, show the solution. Get it with ``exercise(name)``."""

    def __init__(self, spec: ExerciseSpec) -> None:
        self.spec = spec
        self.hints_shown = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def check(self, answer: Any = None) -> CheckResult:
        """Check ``answer`` (your function, or your ``nn.Module`` class); never raises.

        Returns:
            A ``CheckResult`` with ``.status`` and ``.passed``; it displays itself in the notebook.
        """
        problem = self._wrong_kind(answer)
        if problem:
            result = CheckResult(self.name, Status.INCORRECT, failed="the answer passed to check", message=problem,
                                 hint=f"Run the cell that defines it, then `ex.check({self.spec.defines[0]})`.")
        else:
            try:
                import torch

                with torch.random.fork_rng(devices=[]):  # the learner's random stream is left as it was
                    torch.manual_seed(0)
                    result = run_properties(self.name, answer, self.spec.properties(), self.spec.next_steps)
            except Exception as exc:  # noqa: BLE001 - a bug in a checker must not break the learner's cell
                result = CheckResult(self.name, Status.INCORRECT, failed="(checker error)",
                                     message=f"The checker itself failed ({type(exc).__name__}: {exc}). "
                                     "Please report this; your answer may be fine.")
        record_check(self.name, result.status.value)
        return result

    def _wrong_kind(self, answer: Any) -> str:
        if answer is None:
            return f"`ex.check()` needs your answer, e.g. `ex.check({self.spec.defines[0]})`."
        if self.spec.answer_kind == "class":
            import torch.nn as nn

            if isinstance(answer, nn.Module):
                return (f"Pass the class itself, `ex.check({type(answer).__name__})`, not an instance "
                        f"`{type(answer).__name__}(...)`: the check builds several of its own.")
            if not (isinstance(answer, type) and issubclass(answer, nn.Module)):
                return f"Expected an `nn.Module` subclass (a class); got {type(answer).__name__}."
        elif not callable(answer):
            return f"Expected a function; got {type(answer).__name__} `{answer!r:.60}`."
        return ""

    def hint(self, level: int | None = None) -> Note:
        """Hint ``level`` (1 = gentlest); without ``level``, the next hint not yet shown."""
        count = len(self.spec.hints)
        if level is None:
            level = min(self.hints_shown + 1, count)
        if not isinstance(level, int) or not 1 <= level <= count:
            return Note(f"{self.name}: no hint {level!r}", f"There are {count} hints: `ex.hint(1)` to `ex.hint({count})`.")
        self.hints_shown = max(self.hints_shown, level)
        record_hint(self.name, level)
        more = f" (`ex.hint({level + 1})` for the next)" if level < count else ""
        return Note(f"Hint {level} of {count} — {self.name}{more}", self.spec.hints[level - 1])

    def solution(self) -> Note:
        """The solution code from ``solutions/<notebook>.ipynb`` (try the hints first)."""
        from .build import solution_sources  # lazily: `python -m unet_helpers.checks.build` runs build as __main__

        record_solution(self.name)
        path = solutions_dir() / f"{self.spec.notebook}.ipynb"
        code = None
        if path.is_file():
            try:
                code = "\n\n".join(solution_sources(json.loads(path.read_text(encoding="utf-8")), self.spec.defines))
            except (OSError, ValueError):
                code = None
        if not code:
            return Note(f"Solution — {self.name}", f"`{path}` was not found. The package's own version is in "
                        f"`{self.spec.reference}`.")
        return Note(f"Solution — {self.name}", f"From `solutions/{path.name}`. The package's own version, with "
                    f"input checks, is in `{self.spec.reference}`.", code)

    def _repr_markdown_(self) -> str:
        return (f"**Exercise `{self.name}`: {self.spec.title}**\n\n{self.spec.task}\n\n"
                f"`ex.check(...)` checks your answer, `ex.hint()` gives a hint ({len(self.spec.hints)} in all), "
                "`ex.solution()` shows a solution.")

    def __repr__(self) -> str:
        return f"Exercise({self.name!r}: {self.spec.title}; {len(self.spec.hints)} hints)"


def _load_groups() -> None:
    from . import bce_dice, blocks, losses, metrics, training, up_transpose  # noqa: F401 - importing registers the exercises
    from . import real_data, dice_gains  # noqa: F401, I001 - in this order: ex08's two parts in notebook order


def exercise(name: str) -> Exercise:
    """The exercise called ``name`` (see ``list_exercises()``).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    _load_groups()
    key = re.sub(r"[\s-]+", "_", str(name).strip().lower())
    if key not in _REGISTRY:
        raise ValueError(f"no exercise called {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return Exercise(_REGISTRY[key])


def list_exercises() -> list[ExerciseSpec]:
    """All registered exercises, ordered by notebook (then in the order they were registered)."""
    _load_groups()
    return sorted(_REGISTRY.values(), key=lambda spec: spec.notebook)
