"""What a check reports, and how learner code is called without ever crashing the notebook cell.

Used by every exercise notebook in ``exercises/`` (through ``unet_helpers.checks.exercise``).

A check runs a list of ``Property`` objects in order. Each property calls the learner's code on
seeded inputs and compares the answer with the package's reference implementation. The first
property that fails ends the check. Three outcomes, one ``CheckResult`` each:

- ``Status.NOT_ATTEMPTED``: the learner's code still raises the stub's ``NotImplementedError``;
- ``Status.INCORRECT``: names the failed property, the learner's value, the expected one, a hint
  (and, if the learner's code raised, the exception and the line of *their* code that raised);
- ``Status.CORRECT``: lists every property and the inputs it was checked on.
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
    """Outcome of one check."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NOT_ATTEMPTED = "not attempted"


class PropertyFailed(Exception):
    """Raised inside a property when the learner's answer is wrong.

    Args:
        message: what is wrong, in one or two sentences.
        got: the learner's value (any object; shown with ``describe``).
        expected: the reference value.
        hint: what to try; replaces the property's default hint.
        name: a more specific property name found by diagnosis (e.g. "concatenation order [skip, x]").
    """

    def __init__(
        self, message: str, got: Any = None, expected: Any = None, hint: str | None = None, name: str | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.got, self.expected, self.hint, self.name = message, got, expected, hint, name


@dataclass
class LearnerError(Exception):
    """The learner's code raised; carries a short account of where (never a full traceback)."""

    kind: str  # exception class name, e.g. "RuntimeError"
    message: str
    where: str  # "line 7 of your code: `probs = logits.softmax(dim=2)`", or ""
    not_implemented: bool  # the stub's own NotImplementedError

    def summary(self) -> str:
        """``"RuntimeError: message"`` (where it happened is in ``where``)."""
        return f"{self.kind}: {self.message}" if self.message else self.kind


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(sorted(d for d in dirs if d)) + (str(_PACKAGE_DIR),)


_LIBRARY_DIRS = _library_dirs()


def _is_learner_frame(filename: str) -> bool:
    """Frames from notebook cells or the learner's own files, not from libraries or this package."""
    if filename.startswith("<frozen"):
        return False
    resolved = filename if filename.startswith("<") else str(Path(filename).resolve())
    return not resolved.startswith(_LIBRARY_DIRS)


def learner_error(exc: BaseException) -> LearnerError:
    """Summarise an exception raised while running learner code (type, message, their line)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if _is_learner_frame(f.filename)]
    where = ""
    if own:
        frame = own[-1]
        line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
        where = f"line {frame.lineno} of your `{frame.name}`" + (f": `{line}`" if line else "")
    raised_by_learner = bool(frames) and _is_learner_frame(frames[-1].filename)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(message) > 300:
        message = message[:297] + "..."
    return LearnerError(
        type(exc).__name__, message, where, isinstance(exc, NotImplementedError) and raised_by_learner
    )


def call_learner(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call learner code; any exception it raises becomes a ``LearnerError``."""
    try:
        return fn(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - anything the learner's code raises is reported, not raised
        raise learner_error(exc) from None


def describe(value: Any, limit: int = 400) -> str:
    """A short, readable rendering of a value (tensors with shape and 4 decimals)."""
    try:
        import torch

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


@dataclass
class CheckResult:
    """The outcome of ``Exercise.check``: renders as Markdown in JupyterLab and as plain text.

    Attributes:
        exercise: exercise name, e.g. ``"dice_loss"``.
        status: ``Status.CORRECT``, ``Status.INCORRECT`` or ``Status.NOT_ATTEMPTED``.
        checked: ``(name, inputs)`` of every property that passed, in order.
        failed: name of the failed property (``None`` unless incorrect).
        message, got, expected, hint: details of the failure.
        error: the learner's exception, ``"TypeError: message"`` (``None`` if their code did not raise).
        error_where: the line of the learner's code that raised, e.g. ``"line 7 of your `forward`: `...`"``.
        next_steps: what to look at once the answer is correct.
    """

    exercise: str
    status: Status
    checked: list[tuple[str, str]] = field(default_factory=list)
    failed: str | None = None
    message: str = ""
    got: str | None = None
    expected: str | None = None
    hint: str | None = None
    error: str | None = None
    error_where: str | None = None
    next_steps: str = ""

    @property
    def passed(self) -> bool:
        return self.status is Status.CORRECT

    def __bool__(self) -> bool:
        return self.passed

    def _lines(self, md: bool) -> list[str]:
        code = (lambda s: f"`{s}`") if md else (lambda s: s)
        bold = (lambda s: f"**{s}**") if md else (lambda s: s)
        if self.status is Status.NOT_ATTEMPTED:
            return [
                f"{'○ ' if md else ''}{bold(f'{self.exercise}: not attempted')}",
                self.message,
                f"Replace {code('raise NotImplementedError')} under {code('# your code here')} with your "
                "code, then run the check again.",
            ]
        if self.status is Status.CORRECT:
            lines = [f"{'✔ ' if md else ''}{bold(f'{self.exercise}: correct')}", "Checked:"]
            lines += [f"- {bold(name)}: {inputs}" for name, inputs in self.checked]
            return lines + ([f"Next: {self.next_steps}"] if self.next_steps else [])
        lines = [f"{'✘ ' if md else ''}{bold(f'{self.exercise}: incorrect')} — property {bold(self.failed or '?')}"]
        lines.append(self.message)
        if self.error:
            where = f" at {self.error_where}" if self.error_where else ""
            shown = code(self.error.replace("`", "'")) if md else self.error
            lines.append(f"Your code raised {shown}{where}.")
        if self.got is not None or self.expected is not None:
            lines += [f"- yours: {code(self.got)}", f"- expected: {code(self.expected)}"]
        if self.hint:
            lines.append(f"{bold('Hint:')} {self.hint}")
        if self.checked:
            lines.append("Already correct: " + "; ".join(name for name, _ in self.checked) + ".")
        return lines

    def __str__(self) -> str:
        return "\n".join(line for line in self._lines(md=False) if line)

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "\n\n".join(line for line in self._lines(md=True) if line).replace("\n\n- ", "\n- ")


def run_properties(exercise: str, answer: Any, properties: list[Property], next_steps: str = "") -> CheckResult:
    """Run ``properties`` in order on ``answer``; stop at the first failure. Never raises."""
    checked: list[tuple[str, str]] = []
    for prop in properties:
        try:
            prop.run(answer)
        except LearnerError as err:
            if err.not_implemented:
                return CheckResult(
                    exercise, Status.NOT_ATTEMPTED, checked,
                    message=f"Your code still raises the stub's NotImplementedError ({err.where or 'the stub'}).",
                )
            return CheckResult(
                exercise, Status.INCORRECT, checked, failed=prop.name, error=err.summary(), error_where=err.where or None,
                message=f"Checked on: {prop.inputs}.",
                hint=known_error_hint(err) or prop.hint,
            )
        except PropertyFailed as fail:
            return CheckResult(
                exercise, Status.INCORRECT, checked, failed=fail.name or prop.name, message=fail.message,
                got=None if fail.got is None else describe(fail.got),
                expected=None if fail.expected is None else describe(fail.expected),
                hint=fail.hint or prop.hint,
            )
        except Exception as exc:  # noqa: BLE001 - e.g. an answer of an unexpected type; reported, not raised
            return CheckResult(
                exercise, Status.INCORRECT, checked, failed=prop.name,
                message=f"Your answer could not be checked on {prop.inputs}: {type(exc).__name__}: {exc}",
                hint=prop.hint,
            )
        checked.append((prop.name, prop.inputs))
    return CheckResult(exercise, Status.CORRECT, checked, next_steps=next_steps)


_KNOWN_ERRORS = (
    ("does not require grad", "backward() needs the loss tensor with its graph: call loss.backward() on what "
     "loss_fn returned (not on loss.detach() or a number from loss.item()), outside torch.no_grad()."),
    ("has no attribute 'backward'", "loss.item() is a Python number without a graph; call .backward() on the "
     "loss tensor and use .item() only for the value you return."),
    ("Sizes of tensors must match", "torch.cat needs equal H and W: make the up-sampled map the skip's size first."),
    ("smaller than num_classes", "F.one_hot cannot encode ignore_index; replace ignored ids by 0 first and mask "
     "those pixels out of both sums."),
)


def known_error_hint(err: LearnerError) -> str | None:
    """A hint for exceptions that learners commonly hit in these exercises."""
    for fragment, hint in _KNOWN_ERRORS:
        if fragment in err.message:
            return hint
    return None

