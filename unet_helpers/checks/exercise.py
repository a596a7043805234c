"""An exercise as the learner sees it: ``ex.check(answer)``, ``ex.hint()``, ``ex.solution()``.

Used by every notebook in ``exercises/``::

    from unet_helpers.checks import exercise
    ex = exercise("dice_loss")
    ex.check(my_dice_loss)   # a CheckResult: correct / incorrect (which property, why) / not attempted
    ex.hint()                # the next hint; ex.hint(2) for hint 2
    ex.solution()            # the solution cell of solutions/<notebook>.ipynb

``exercise(name)`` (``catalogue.py``) finds the ``ExerciseSpec`` and wraps it in an ``Exercise``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .core import CheckResult, Status, run_properties
from .progress_file import record_check, record_hint, record_solution
from .solutions import solution_sources
from .spec import ExerciseSpec

SOLUTIONS_ENV_VAR = "UNET_SOLUTIONS_DIR"


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
