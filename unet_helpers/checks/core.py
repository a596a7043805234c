"""What a check reports: properties, their outcomes, and one ``CheckResult`` with a status.

Used by every exercise notebook in ``exercises/`` (through ``unet_helpers.checks.exercise``).

A check runs every ``Property`` of an exercise on the learner's answer (``isolation.py`` calls the
learner's code on copies of the inputs, with global torch state snapshotted and the package's own
implementation of the piece under a tripwire) and records one ``Outcome`` per property. The
status of the whole check:

- ``NOT_ATTEMPTED``: every property still meets the stub's ``NotImplementedError``;
- ``USES_PACKAGE``: the answer calls, subclasses or returns the package's own implementation of
  the piece it is asked to write (whatever its values);
- ``INCORRECT``: a property fails (which one, the learner's value, the expected one, a hint);
  ``"incorrect: N of M properties pass"`` lists the others that fail;
- ``INCOMPLETE``: some properties pass, the others meet a ``NotImplementedError`` the learner has
  not replaced yet (an unfinished branch), and none is wrong;
- ``CONVENTION``: everything works, but where the answer differs from the reference it matches a
  known, equivalent convention of another course or library (e.g. ``[x, skip]`` instead of
  ``[skip, x]``); the result says why this course's convention matters;
- ``CORRECT``: every property passes, with no side effect.
"""
from __future__ import annotations

import linecache
import sysconfig
import traceback
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # unet_helpers/


class Status(str, Enum):
    """Outcome of one check (the value is what the progress file and table show)."""

    CORRECT = "correct"
    CONVENTION = "works, other convention"
    INCOMPLETE = "incomplete"
    INCORRECT = "incorrect"
    USES_PACKAGE = "uses the package"
    NOT_ATTEMPTED = "not attempted"


class PropertyFailed(Exception):
    """Raised inside a property when the learner's answer is wrong.

    Args:
        message: what is wrong, in one or two sentences.
        got: the learner's value (any object; shown with ``describe``).
        expected: the reference value.
        hint: what to try; replaces the property's default hint.
        name: a more specific property name found by diagnosis (e.g. "concatenation order [skip, x]").
        convention: set when the answer is equivalent to the reference but follows another
            convention: why this course's convention matters (the check's status is then
            ``CONVENTION`` unless something else fails).
    """

    def __init__(self, message: str, got: Any = None, expected: Any = None, hint: str | None = None,
                 name: str | None = None, convention: str | None = None) -> None:
        super().__init__(message)
        self.message, self.got, self.expected, self.hint, self.name = message, got, expected, hint, name
        self.convention = convention


@dataclass
class LearnerError(Exception):
    """The learner's code raised; carries a short account of where (never a full traceback)."""

    kind: str  # exception class name, e.g. "RuntimeError"
    message: str
    where: str  # "line 7 of your `forward`: `probs = logits.softmax(dim=2)`", or ""
    not_implemented: bool  # a NotImplementedError raised by the learner's own code (the stub, an unfinished branch)

    def summary(self) -> str:
        """``"RuntimeError: message"`` (where it happened is in ``where``)."""
        return f"{self.kind}: {self.message}" if self.message else self.kind


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(sorted(d for d in dirs if d)) + (str(_PACKAGE_DIR),)


_LIBRARY_DIRS = _library_dirs()


def is_learner_frame(filename: str) -> bool:
    """Frames from notebook cells or the learner's own files, not from libraries or this package."""
    if filename.startswith("<frozen"):
        return False
    resolved = filename if filename.startswith("<") else str(Path(filename).resolve())
    return not resolved.startswith(_LIBRARY_DIRS)


def _text(value: Any) -> str:
    """``str(value)``, or a placeholder when the learner's ``__str__`` itself raises."""
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a learner's exception class may have a broken __str__
        return f"<{type(value).__name__} whose str() failed>"


def learner_error(exc: BaseException) -> LearnerError:
    """Summarise an exception raised while running learner code (type, message, their line)."""
    try:
        frames = traceback.extract_tb(exc.__traceback__)
    except Exception:  # noqa: BLE001 - never let the account of an error raise another one
        frames = []
    own = [f for f in frames if is_learner_frame(f.filename)]
    where = ""
    if own:
        frame = own[-1]
        line = (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip()
        where = f"line {frame.lineno} of your `{frame.name}`" + (f": `{line}`" if line else "")
    raised_by_learner = bool(frames) and is_learner_frame(frames[-1].filename)
    text = _text(exc).strip()
    message = text.splitlines()[0] if text else ""
    if len(message) > 300:
        message = message[:297] + "..."
    return LearnerError(type(exc).__name__, message, where, isinstance(exc, NotImplementedError) and raised_by_learner)


def describe(value: Any, limit: int = 400) -> str:
    """A short, readable rendering of a value (tensors with shape and 4 decimals); never raises."""
    try:
        import numpy as np
        import torch

        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.asarray(value))
        if isinstance(value, torch.Tensor):
            with torch.no_grad():
                shown = value.detach().cpu()
                if shown.is_floating_point():
                    shown = shown.double().round(decimals=4)
                body = str(shown.tolist()) if shown.numel() <= 24 else f"tensor of {shown.numel()} values"
            extra = "" if value.ndim == 0 else f", shape {tuple(value.shape)}"
            text = f"{body} ({value.dtype}{extra})" if value.ndim else f"{body} ({value.dtype}, a 0-d tensor)"
        elif isinstance(value, float):
            text = f"{value:.6g}"
        elif isinstance(value, str):
            text = value
        else:
            text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ of a learner object must not break the report
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Property:
    """One property a correct answer has.

    Args:
        name: short name shown to the learner ("classes absent from the target are left out").
        inputs: what it is checked on ("K=3 logits (2, 3, 8, 8) with class 2 absent, 3 seeds").
        run: ``run(answer)``; returns on success, raises ``PropertyFailed`` or ``LearnerError``.
        hint: shown when the property fails and ``PropertyFailed`` carries no hint of its own.
    """

    name: str
    inputs: str
    run: Callable[[Any], None]
    hint: str = ""


class Kind(str, Enum):
    """How one property ended."""

    PASSED = "passed"
    WRONG = "wrong"  # a wrong value, shape or type
    RAISED = "raised"  # the learner's code raised (not a NotImplementedError of theirs)
    UNFINISHED = "unfinished"  # the learner's code raised its own NotImplementedError
    CONVENTION = "convention"  # equivalent, but another convention
    UNCHECKABLE = "uncheckable"  # the answer could not be examined (e.g. an object of an unexpected kind)


@dataclass
class Outcome:
    """What one property found: ``kind``, and for a failure the details shown to the learner."""

    name: str
    inputs: str
    kind: Kind
    message: str = ""
    got: str | None = None
    expected: str | None = None
    hint: str | None = None
    error: str | None = None  # "TypeError: message" when the learner's code raised
    error_where: str | None = None
    why: str | None = None  # for CONVENTION: why the course's convention matters

    @property
    def passed(self) -> bool:
        return self.kind is Kind.PASSED

    @property
    def is_failure(self) -> bool:
        """A real failure: not passed, not merely unfinished, not merely another convention."""
        return self.kind in (Kind.WRONG, Kind.RAISED, Kind.UNCHECKABLE)


def run_property(prop: Property, answer: Any) -> Outcome:
    """Run one property on ``answer``; never raises (any failure becomes an ``Outcome``)."""
    try:
        prop.run(answer)
    except LearnerError as err:
        if err.not_implemented:
            return Outcome(prop.name, prop.inputs, Kind.UNFINISHED, f"Your code still raises NotImplementedError "
                           f"({err.where or 'the stub'}).", error=err.summary(), error_where=err.where or None)
        return Outcome(prop.name, prop.inputs, Kind.RAISED, f"Checked on: {prop.inputs}.", error=err.summary(),
                       error_where=err.where or None, hint=known_error_hint(err) or prop.hint)
    except PropertyFailed as fail:
        return Outcome(
            fail.name or prop.name, prop.inputs, Kind.CONVENTION if fail.convention else Kind.WRONG, fail.message,
            got=None if fail.got is None else describe(fail.got),
            expected=None if fail.expected is None else describe(fail.expected),
            hint=fail.hint or prop.hint, why=fail.convention,
        )
    except Exception as exc:  # noqa: BLE001 - e.g. an answer of an unexpected type; reported, not raised
        return Outcome(prop.name, prop.inputs, Kind.UNCHECKABLE,
                       f"Your answer could not be checked on {prop.inputs}: {type(exc).__name__}: {_text(exc)}",
                       hint=prop.hint)
    return Outcome(prop.name, prop.inputs, Kind.PASSED)


def decide(outcomes: list[Outcome], uses_package: list[str]) -> Status:
    """The status of a check from its outcomes (see the module docstring)."""
    if outcomes and all(o.kind is Kind.UNFINISHED for o in outcomes):
        return Status.NOT_ATTEMPTED
    if uses_package:
        return Status.USES_PACKAGE
    if any(o.is_failure for o in outcomes):
        return Status.INCORRECT
    if any(o.kind is Kind.UNFINISHED for o in outcomes):
        return Status.INCOMPLETE
    if any(o.kind is Kind.CONVENTION for o in outcomes):
        return Status.CONVENTION
    return Status.CORRECT


@dataclass
class CheckResult:
    """The outcome of ``Exercise.check``: renders as Markdown in JupyterLab and as plain text.

    Attributes:
        exercise: exercise name, e.g. ``"dice_loss"``.
        status: one ``Status``; ``passed`` is true only for ``CORRECT``.
        outcomes: one ``Outcome`` per property, in order.
        uses_package: the package pieces the answer used (``"unet_helpers.losses.dice_loss"``).
        warnings: things to know that are not about the answer (e.g. a notebook generated with
            another version of the package).
        message: a sentence for results that ran no property (e.g. no answer was passed).
        next_steps: what to look at once the answer is correct.
    """

    exercise: str
    status: Status
    outcomes: list[Outcome] = field(default_factory=list)
    uses_package: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    message: str = ""
    next_steps: str = ""
    headline_hint: str | None = None  # the hint of a result without outcomes

    # -- summaries --------------------------------------------------------------------------
    @property
    def passed(self) -> bool:
        return self.status is Status.CORRECT

    def __bool__(self) -> bool:
        return self.passed

    @property
    def counts(self) -> tuple[int, int]:
        """``(properties passed, properties in all)``."""
        return sum(o.passed for o in self.outcomes), len(self.outcomes)

    @property
    def checked(self) -> list[tuple[str, str]]:
        """``(name, inputs)`` of every property that passed, in order."""
        return [(o.name, o.inputs) for o in self.outcomes if o.passed]

    @property
    def failing(self) -> list[str]:
        """Names of the properties that did not pass, in order."""
        return [o.name for o in self.outcomes if not o.passed]

    @property
    def headline(self) -> Outcome | None:
        """The outcome the result is about: the first failure, else the first convention, else unfinished."""
        for kinds in ((Kind.WRONG, Kind.RAISED, Kind.UNCHECKABLE), (Kind.CONVENTION,), (Kind.UNFINISHED,)):
            for outcome in self.outcomes:
                if outcome.kind in kinds:
                    return outcome
        return None

    @property
    def failed(self) -> str | None:
        """Name of the property the result is about (``None`` when every property passed)."""
        if self.status is Status.USES_PACKAGE:
            return "writes the piece itself"
        head = self.headline
        return head.name if head and self.status is not Status.NOT_ATTEMPTED else None

    def _head_field(self, name: str) -> str | None:
        head = self.headline
        return getattr(head, name) if head is not None and self.status is not Status.NOT_ATTEMPTED else None

    @property
    def got(self) -> str | None:
        return self._head_field("got")

    @property
    def expected(self) -> str | None:
        return self._head_field("expected")

    @property
    def hint(self) -> str | None:
        return self._head_field("hint") or self.headline_hint

    @property
    def error(self) -> str | None:
        return self._head_field("error")

    @property
    def error_where(self) -> str | None:
        return self._head_field("error_where")

    # -- rendering --------------------------------------------------------------------------
    def _lines(self, md: bool) -> list[str]:
        code = (lambda s: f"`{str(s).replace('`', chr(39))}`") if md else str
        bold = (lambda s: f"**{s}**") if md else (lambda s: s)
        mark = (lambda s: s + " ") if md else (lambda s: "")
        passed, total = self.counts
        lines = [f"{mark('⚠')}{w}" for w in self.warnings]
        status = self.status
        if status is Status.NOT_ATTEMPTED:
            head = self.headline
            return lines + [
                f"{mark('○')}{bold(f'{self.exercise}: not attempted')}",
                self.message or f"Your code still raises the stub's NotImplementedError ({head.error_where if head and head.error_where else 'the stub'}).",
                f"Replace {code('raise NotImplementedError')} under {code('# your code here')} with your "
                "code, then run the check again.",
            ]
        if status is Status.CORRECT:
            lines += [f"{mark('✔')}{bold(f'{self.exercise}: correct')} — all {total} properties pass", "Checked:"]
            lines += [f"- {bold(name)}: {inputs}" for name, inputs in self.checked]
            return lines + ([f"Next: {self.next_steps}"] if self.next_steps else [])
        if status is Status.USES_PACKAGE:
            used = ", ".join(code(name) for name in self.uses_package)
            return lines + [
                f"{mark('✘')}{bold(f'{self.exercise}: uses the package')} — this uses {used}; write it yourself.",
                "The exercise is to build this piece, so the check does not accept an answer that calls, subclasses "
                "or returns the package's own version of it (importing it is fine). Everything else the package "
                "offers may be used.",
            ]
        if not self.outcomes:  # e.g. no answer, or the checker itself failed
            lines += [f"{mark('✘')}{bold(f'{self.exercise}: {status.value}')}", self.message]
            return lines + ([f"{bold('Hint:')} {self.headline_hint}"] if self.headline_hint else [])
        head = self.headline
        if status is Status.CONVENTION:
            lines.append(f"{mark('◐')}{bold(f'{self.exercise}: works, but differs from the course convention')} — "
                         f"{bold(head.name)}")
        elif status is Status.INCOMPLETE:
            lines.append(f"{mark('◔')}{bold(f'{self.exercise}: incomplete: {passed} of {total} properties pass')}")
        else:
            lines.append(f"{mark('✘')}{bold(f'{self.exercise}: incorrect: {passed} of {total} properties pass')} — "
                         f"property {bold(head.name)}")
        lines.append(head.message)
        if head.error and head.kind is not Kind.UNFINISHED:
            where = f" at {head.error_where}" if head.error_where else ""
            lines.append(f"Your code raised {code(head.error)}{where}.")
        if head.got is not None or head.expected is not None:
            lines += [f"- yours: {code(head.got)}", f"- expected: {code(head.expected)}"]
        if head.why:
            lines.append(f"{bold('Why the convention matters:')} {head.why}")
        if head.hint and head.kind is not Kind.CONVENTION:
            lines.append(f"{bold('Hint:')} {head.hint}")
        # an incomplete answer lists every unfinished property, the headline's one included
        others = [o for o in self.outcomes if not o.passed and (o is not head or status is Status.INCOMPLETE)]
        unfinished = [o.name for o in others if o.kind is Kind.UNFINISHED]
        failing = [o.name for o in others if o.kind is not Kind.UNFINISHED]
        if failing:
            lines.append("Also failing: " + "; ".join(failing) + ".")
        if unfinished:
            lines.append("Not written yet (NotImplementedError): " + "; ".join(unfinished) + ".")
        if self.checked:
            lines.append("Already correct: " + "; ".join(name for name, _ in self.checked) + ".")
        return lines

    def __str__(self) -> str:
        return "\n".join(line for line in self._lines(md=False) if line)

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "\n\n".join(line for line in self._lines(md=True) if line).replace("\n\n- ", "\n- ")


_KNOWN_ERRORS = (
    ("does not require grad", "backward() needs the loss tensor with its graph: call loss.backward() on what "
     "loss_fn returned (not on loss.detach() or a number from loss.item()), outside torch.no_grad()."),
    ("has no attribute 'backward'", "loss.item() is a Python number without a graph; call .backward() on the "
     "loss tensor and use .item() only for the value you return."),
    ("Sizes of tensors must match", "torch.cat needs equal H and W: make the up-sampled map the skip's size first."),
    ("smaller than num_classes", "F.one_hot cannot encode ignore_index; replace ignored ids by 0 first and mask "
     "those pixels out of both sums."),
    ("index out of range", "An index is out of range: gather or one_hot cannot take ignore_index as a class id; "
     "replace ignored ids by 0 first and leave those pixels out of the sums."),
)


def known_error_hint(err: LearnerError) -> str | None:
    """A hint for exceptions that learners commonly hit in these exercises."""
    for fragment, hint in _KNOWN_ERRORS:
        if fragment in err.message:
            return hint
    return None
