"""An exercise as the learner sees it: ``ex.check(answer)``, ``ex.hint()``, ``ex.solution()``.

Used by every notebook in ``exercises/``::

    from unet_helpers.checks import exercise
    ex = exercise("dice_loss", generated_with="0.1.0")  # the version line is written by course/build.py
    ex.check(my_dice_loss)   # a CheckResult (see core.py for the statuses)
    ex.hint()                # the next hint; ex.hint(2) for hint 2
    ex.solution()            # the solution cell of solutions/<notebook>.ipynb

``exercise(name)`` (``catalogue.py``) finds the ``ExerciseSpec`` and wraps it in an ``Exercise``.
A check runs every property of the spec inside an ``isolation.Session`` and adds two properties
of its own: the learner's code leaves its inputs unchanged, and leaves torch's global state as it
found it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .core import CheckResult, Kind, Outcome, Status, decide, describe, run_property
from .isolation import Session
from .progress_file import record_check, record_hint, record_solution
from .solutions import solution_sources
from .spec import ExerciseSpec

SOLUTIONS_ENV_VAR = "UNET_SOLUTIONS_DIR"
INPUTS_UNCHANGED = "leaves its inputs unchanged"
STATE_UNCHANGED = "leaves torch's global state as it found it"
# The seed of every check: not one a learner would pick (0, 42, 1234), so that a learner's
# torch.manual_seed shows as a new initial seed even where drawing random numbers is allowed.
CHECK_SEED = 20_251_202


def package_version() -> str:
    """The installed ``unet_helpers.__version__``."""
    from importlib import import_module

    return str(import_module("unet_helpers").__version__)


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


def side_effect_outcomes(session: Session) -> list[Outcome]:
    """The two properties every check adds: inputs unchanged, global state unchanged."""
    inputs = "every call of your code: its arguments compared before and after"
    state = "around every call: grad mode, default dtype, random generator, threads, default device"
    outcomes = []
    if session.mutations:
        outcomes.append(Outcome(
            INPUTS_UNCHANGED, inputs, Kind.WRONG,
            "Your code changed an input in place: " + "; ".join(session.mutations) + ". The check gave your code "
            "its own copy, so the reference was not affected; a caller's tensor would be (a training loop reuses "
            "the same batch for the loss and the metrics).",
            hint="Work on a copy (`target = target.clone()`, `x = x + 1` instead of `x += 1`, `masked_fill` instead "
                 "of `x[mask] = 0`), never on what you were given."))
    else:
        outcomes.append(Outcome(INPUTS_UNCHANGED, inputs, Kind.PASSED))
    if session.state_changes:
        outcomes.append(Outcome(
            STATE_UNCHANGED, state, Kind.WRONG,
            "Your code changed torch's global state: " + "; ".join(session.state_changes) + ". The check restored "
            "it; in a notebook it would stay changed and break the next cell (or the next exercise).",
            hint="Use the context-manager forms (`with torch.no_grad():`, `torch.random.fork_rng()`) that undo "
                 "themselves, and leave seeding and thread counts to the caller."))
    else:
        outcomes.append(Outcome(STATE_UNCHANGED, state, Kind.PASSED))
    return outcomes


class Exercise:
    """One exercise: check an answer, show hints, show the solution. Get it with ``exercise(name)``.

    Args:
        spec: what the exercise is.
        generated_with: the package version the exercise notebook was generated with (written by
            ``course/build.py``); a mismatch with the installed package is warned about.
    """

    def __init__(self, spec: ExerciseSpec, generated_with: str | None = None) -> None:
        self.spec = spec
        self.hints_shown = 0
        self.warnings: list[str] = []
        if generated_with is not None and str(generated_with) != package_version():
            self.warnings.append(
                f"This notebook was generated with unet_helpers {generated_with}, but {package_version()} is "
                "installed: the checks may expect something the notebook does not say. Get a fresh copy with "
                "`python -m unet_helpers.course.build` (your edited notebook is kept as a numbered backup).")

    @property
    def name(self) -> str:
        return self.spec.name

    def check(self, answer: Any = None) -> CheckResult:
        """Check ``answer`` (your function, or your ``nn.Module`` class); never raises.

        Returns:
            A ``CheckResult`` with ``.status`` and ``.passed``; it displays itself in the notebook.
        """
        try:
            result = self._check(answer)
        except Exception as exc:  # noqa: BLE001 - a bug in a checker must not break the learner's cell
            result = CheckResult(self.name, Status.INCORRECT, message=(
                f"The checker itself failed ({describe(exc, 200)}). "
                "Please report this; your answer may be fine."))
        result.warnings = list(self.warnings) + result.warnings
        try:
            record_check(self.name, result.status.value)
        except Exception:  # noqa: BLE001 - recording progress never fails a check
            pass
        return result

    def _check(self, answer: Any) -> CheckResult:
        problem = self._wrong_kind(answer)
        if problem:
            return CheckResult(self.name, Status.INCORRECT, message=problem,
                               headline_hint=f"Run the cell that defines it, then `ex.check({self.spec.defines[0]})`.")
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the checks' tensors are tiny: one thread is faster, many times so on a busy CPU
        try:
            with torch.random.fork_rng(devices=[]):  # the learner's random stream is left as it was
                torch.manual_seed(CHECK_SEED)
                session = Session(answer, self.spec.forbidden, self.spec.random_allowed)
                with session:
                    outcomes = [run_property(prop, answer) for prop in self.spec.properties()]
        finally:
            torch.set_num_threads(threads)
        if session.returned and not all(o.kind is Kind.UNFINISHED for o in outcomes):
            outcomes += side_effect_outcomes(session)  # only once some of the learner's own code has run
        uses = sorted(session.uses)
        status = decide(outcomes, uses)
        return CheckResult(self.name, status, outcomes, uses_package=uses,
                           next_steps=self.spec.next_steps if status is Status.CORRECT else "")

    def _wrong_kind(self, answer: Any) -> str:
        if answer is None:
            return f"`ex.check()` needs your answer, e.g. `ex.check({self.spec.defines[0]})`."
        try:
            if self.spec.answer_kind == "class":
                import torch.nn as nn

                if isinstance(answer, nn.Module):
                    return (f"Pass the class itself, `ex.check({type(answer).__name__})`, not an instance "
                            f"`{type(answer).__name__}(...)`: the check builds several of its own.")
                if not (isinstance(answer, type) and issubclass(answer, nn.Module)):
                    return f"Expected an `nn.Module` subclass (a class); got {type(answer).__name__}."
            elif not callable(answer):
                return f"Expected a function; got {type(answer).__name__} `{describe(answer, 60)}`."
        except Exception:  # noqa: BLE001 - an object whose isinstance/issubclass checks raise
            return f"Expected a {self.spec.answer_kind}; got an object of type {type(answer).__name__} that cannot be examined."
        return ""

    def hint(self, level: int | None = None) -> Note:
        """Hint ``level`` (1 = gentlest); without ``level``, the next hint not yet shown."""
        count = len(self.spec.hints)
        if level is None:
            level = min(self.hints_shown + 1, count)
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= count:
            return Note(f"{self.name}: no hint {describe(level, 40)}",
                        f"There are {count} hints: `ex.hint(1)` to `ex.hint({count})`.")
        self.hints_shown = max(self.hints_shown, level)
        try:
            record_hint(self.name, level)
        except Exception:  # noqa: BLE001 - recording progress never fails a hint
            pass
        more = f" (`ex.hint({level + 1})` for the next)" if level < count else ""
        return Note(f"Hint {level} of {count} — {self.name}{more}", self.spec.hints[level - 1])

    def solution(self) -> Note:
        """The solution code from ``solutions/<notebook>.ipynb`` (try the hints first)."""
        try:
            record_solution(self.name)
        except Exception:  # noqa: BLE001 - recording progress never fails showing the solution
            pass
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
        warnings = "".join(f"⚠ {w}\n\n" for w in self.warnings)
        return (f"{warnings}**Exercise `{self.name}`: {self.spec.title}**\n\n{self.spec.task}\n\n"
                f"`ex.check(...)` checks your answer, `ex.hint()` gives a hint ({len(self.spec.hints)} in all), "
                "`ex.solution()` shows a solution.")

    def __repr__(self) -> str:
        warnings = "".join(f"\nwarning: {w}" for w in self.warnings)
        return f"Exercise({self.name!r}: {self.spec.title}; {len(self.spec.hints)} hints){warnings}"
