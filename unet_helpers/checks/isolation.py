"""How a check calls the learner's code: on copies, with torch's global state guarded, under tripwires.

Every call a property makes into the learner's code goes through ``call_learner``. Inside a check
(``with Session(...)``, opened by ``Exercise.check``) each call

1. gets its **own copies** of every tensor, array, list, tuple and dict argument; after the call
   the copies are compared with the originals, so an answer that edits its input in place is
   reported, and the reference always runs on the untouched originals;
2. runs with torch's **global state** snapshotted (grad mode, default dtype, random generator,
   number of threads, deterministic algorithms, anomaly detection, default device): whatever the
   learner's code changed is restored afterwards and reported;
3. runs with the package's own implementation of the piece under test behind a **tripwire**:
   every module namespace that holds the forbidden function (found by identity in
   ``sys.modules``, and in the learner's own namespace), and the forbidden classes' ``__init__``
   and ``forward``, are replaced for the duration of the call by wrappers that record the use and
   then do the real work. Merely importing a piece costs nothing; calling it is recorded. Classes
   are also checked for subclassing (``class MyUp(Up)``) and for instances inside the learner's
   module (``self.block = Up(...)``).

Outside a session ``call_learner`` only turns exceptions into ``LearnerError``.
"""
from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from .core import PropertyFailed, learner_error

_SESSION: contextvars.ContextVar["Session | None"] = contextvars.ContextVar("unet_checks_session", default=None)


# -- global torch state ----------------------------------------------------------------------------------
@dataclass
class TorchState:
    """torch's process-wide settings that learner code could leave changed."""

    grad_enabled: bool
    default_dtype: torch.dtype
    threads: int
    deterministic: bool
    anomaly: bool
    default_device: str
    rng: torch.Tensor
    seed: int  # torch.initial_seed(): changes only when someone calls torch.manual_seed / torch.seed

    @classmethod
    def capture(cls) -> "TorchState":
        return cls(torch.is_grad_enabled(), torch.get_default_dtype(), torch.get_num_threads(),
                   torch.are_deterministic_algorithms_enabled(), torch.is_anomaly_enabled(),
                   str(torch.get_default_device()), torch.get_rng_state(), torch.initial_seed())

    def restore(self) -> None:
        """Put back every setting that differs (only those: setting the default device installs a mode)."""
        now = TorchState.capture()
        if now.grad_enabled != self.grad_enabled:
            torch.set_grad_enabled(self.grad_enabled)
        if now.default_dtype != self.default_dtype:
            torch.set_default_dtype(self.default_dtype)
        if now.threads != self.threads:
            torch.set_num_threads(self.threads)
        if now.deterministic != self.deterministic:
            torch.use_deterministic_algorithms(self.deterministic)
        if now.anomaly != self.anomaly:
            torch.set_anomaly_enabled(self.anomaly)
        if now.default_device != self.default_device:
            torch.set_default_device(None if self.default_device == "cpu" else self.default_device)
        if not torch.equal(now.rng, self.rng):
            torch.set_rng_state(self.rng)  # the state holds the initial seed too

    def changes(self, after: "TorchState", random_allowed: bool) -> list[str]:
        """One sentence per setting that differs in ``after``."""
        found = []
        if after.grad_enabled != self.grad_enabled:
            found.append(f"gradient tracking was left {'on' if after.grad_enabled else 'off'} "
                         f"(torch.set_grad_enabled({after.grad_enabled})); use `with torch.no_grad():`, which "
                         "switches it back even when an error interrupts the block")
        if after.default_dtype != self.default_dtype:
            found.append(f"the default dtype was left at {after.default_dtype} (torch.set_default_dtype); every "
                         "later torch.randn or torch.zeros of the caller would change precision")
        if after.threads != self.threads:
            found.append(f"the number of threads was changed from {self.threads} to {after.threads} "
                         "(torch.set_num_threads): that is the caller's decision")
        if after.deterministic != self.deterministic:
            found.append("torch.use_deterministic_algorithms was switched "
                         f"{'on' if after.deterministic else 'off'}")
        if after.anomaly != self.anomaly:
            found.append(f"anomaly detection was switched {'on' if after.anomaly else 'off'}")
        if after.default_device != self.default_device:
            found.append(f"the default device was changed to {after.default_device}")
        if after.seed != self.seed:  # re-seeding is reported even where drawing random numbers is allowed
            found.append(f"the global random generator was re-seeded (torch.manual_seed({after.seed})): the "
                         "caller's random stream starts over, so every model or batch drawn after it repeats; "
                         "seed once, at the top of the notebook, or use a torch.Generator of your own")
        elif not random_allowed and not torch.equal(after.rng, self.rng):
            found.append("the global random generator was used or re-seeded (torch.manual_seed, torch.rand, ...): "
                         "this computation should be deterministic and leave the caller's random stream alone")
        return found


# -- copies of the inputs --------------------------------------------------------------------------------
def copy_inputs(value: Any) -> Any:
    """A copy of ``value`` for the learner: tensors cloned (keeping their graph), containers rebuilt."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [copy_inputs(v) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(copy_inputs(v) for v in value)
    if isinstance(value, dict) and type(value) is dict:
        return {k: copy_inputs(v) for k, v in value.items()}
    return value  # modules, optimizers, loaders, datasets, numbers: given as they are


def _same_values(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many values differ (NaN equals NaN); ``-1`` for a different shape or dtype."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return -1
    with torch.no_grad():
        a, b = a.detach(), b.detach()
        differ = a != b
        if a.is_floating_point() or a.is_complex():
            differ &= ~(a.isnan() & b.isnan())
        return int(differ.sum())


def changed(original: Any, given: Any) -> str | None:
    """How ``given`` (the learner's copy) differs from ``original`` after the call, or ``None``."""
    if isinstance(original, np.ndarray) and isinstance(given, np.ndarray):
        original, given = torch.from_numpy(np.ascontiguousarray(original)), torch.from_numpy(np.ascontiguousarray(given))
    if isinstance(original, torch.Tensor):
        if not isinstance(given, torch.Tensor):
            return f"it was replaced by a {type(given).__name__}"
        count = _same_values(original, given)
        if count == -1:
            return f"its shape or dtype changed from {tuple(original.shape)} {original.dtype} to {tuple(given.shape)} {given.dtype}"
        return f"{count} of its {original.numel()} values changed" if count else None
    if isinstance(original, (list, tuple)) and type(original) in (list, tuple):
        if len(given) != len(original):
            return f"its length changed from {len(original)} to {len(given)}"
        for index, (a, b) in enumerate(zip(original, given)):
            inner = changed(a, b)
            if inner:
                return f"item {index}: {inner}"
        return None
    if isinstance(original, dict) and type(original) is dict:
        if set(given) != set(original):
            return "its keys changed"
        for key in original:
            inner = changed(original[key], given[key])
            if inner:
                return f"entry {key!r}: {inner}"
    return None


def _argument_names(fn: Callable, count: int) -> list[str]:
    """Names of the first ``count`` positional parameters of ``fn`` (a function, class or module)."""
    try:
        target = fn.forward if isinstance(fn, nn.Module) else fn
        names = [p.name for p in inspect.signature(target).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return names[:count] + [f"argument {i + 1}" for i in range(len(names), count)]


# -- tripwires ---------------------------------------------------------------------------------------------
def resolve(path: str) -> Any:
    """The object named by a dotted path such as ``"unet_helpers.losses.dice_loss"`` (modules imported)."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"cannot resolve {path!r}")


class Tripwire:
    """Replaces forbidden functions and class methods by recording wrappers while it is armed.

    Args:
        forbidden: dotted paths of functions, methods (``"pkg.mod.Class.method"``) and classes.
        namespaces: extra dicts to patch (the learner's own namespace).
        record: called with the dotted path each time a forbidden piece is used.
    """

    def __init__(self, forbidden: Sequence[str], namespaces: Iterable[dict], record: Callable[[str], None]) -> None:
        self.record = record
        self.classes: list[tuple[str, type]] = []
        functions: dict[int, tuple[str, Any]] = {}
        self._patches: list[tuple[Any, str, Any, Any, bool]] = []  # (owner, attribute, original, wrapper, is_dict)
        for path in forbidden:
            obj = resolve(path)
            if isinstance(obj, type):
                self.classes.append((path, obj))
                for attr in ("__init__", "forward"):
                    if isinstance(vars(obj).get(attr), types.FunctionType):
                        original = vars(obj)[attr]
                        self._patches.append((obj, attr, original, self._wrap(original, path), False))
            elif "." in path and isinstance(resolve(path.rpartition(".")[0]), type):
                owner, attr = resolve(path.rpartition(".")[0]), path.rpartition(".")[2]
                original = vars(owner)[attr]
                if not isinstance(original, types.FunctionType):
                    raise TypeError(f"{path} is not a plain method; the tripwire can only wrap functions")
                self._patches.append((owner, attr, original, self._wrap(original, path), False))
            else:
                functions[id(obj)] = (path, obj)
        if functions:
            self._find_references(functions, namespaces)

    def _wrap(self, original: Any, path: str) -> Any:
        record = self.record

        @functools.wraps(original)
        def tripwire(*args: Any, **kwargs: Any) -> Any:
            record(path)
            return original(*args, **kwargs)

        return tripwire

    def _find_references(self, functions: dict[int, tuple[str, Any]], namespaces: Iterable[dict]) -> None:
        wrappers = {key: self._wrap(obj, path) for key, (path, obj) in functions.items()}
        found = _module_references(functions) + _references(functions, [s for s in namespaces if isinstance(s, dict)])
        seen: set[tuple[int, str]] = set()
        for space, name, value in found:
            if (id(space), name) not in seen:
                seen.add((id(space), name))
                self._patches.append((space, name, value, wrappers[id(value)], True))

    def arm(self) -> None:
        for owner, attr, _original, wrapper, is_dict in self._patches:
            if is_dict:
                owner[attr] = wrapper
            else:
                setattr(owner, attr, wrapper)

    def disarm(self) -> None:
        for owner, attr, original, _wrapper, is_dict in reversed(self._patches):
            if is_dict:
                owner[attr] = original
            else:
                setattr(owner, attr, original)

    def subclassed(self, cls: Any) -> list[str]:
        """Forbidden classes that ``cls`` derives from (or is)."""
        try:
            return [path for path, forbidden in self.classes if isinstance(cls, type) and issubclass(cls, forbidden)]
        except TypeError:
            return []

    def contained(self, module: nn.Module) -> list[str]:
        """Forbidden classes of which ``module`` holds an instance."""
        try:
            parts = list(module.modules())
        except Exception:  # noqa: BLE001 - a learner module with a broken modules()
            return []
        return [path for path, forbidden in self.classes if any(isinstance(m, forbidden) for m in parts)]


def _references(functions: dict[int, tuple[str, Any]], spaces: Iterable[dict]) -> list[tuple[dict, str, Any]]:
    """Every ``(namespace, name, function)`` where a namespace holds one of ``functions`` (by identity)."""
    found = []
    for space in spaces:
        try:
            items = list(space.items())
        except Exception:  # noqa: BLE001 - an odd module whose namespace cannot be listed
            continue
        found += [(space, name, value) for name, value in items
                  if id(value) in functions and value is functions[id(value)][1]]
    return found


_MODULE_INDEX: dict[tuple[int, ...], tuple[int, list[tuple[dict, str, Any]]]] = {}


def _module_references(functions: dict[int, tuple[str, Any]]) -> list[tuple[dict, str, Any]]:
    """``_references`` over every module in ``sys.modules``, cached until a module is added or removed."""
    key = tuple(sorted(functions))
    cached = _MODULE_INDEX.get(key)
    if cached is not None and cached[0] == len(sys.modules):
        return cached[1]
    spaces = {id(d): d for d in (getattr(m, "__dict__", None) for m in list(sys.modules.values())) if isinstance(d, dict)}
    found = _references(functions, spaces.values())
    _MODULE_INDEX[key] = (len(sys.modules), found)
    return found


# -- the session -----------------------------------------------------------------------------------------
def learner_namespaces(answer: Any) -> list[dict]:
    """The global namespaces of the learner's code: of the function, or of every method of the class."""
    functions: list[Any] = []
    if isinstance(answer, type):
        for klass in answer.__mro__:
            if klass.__module__.startswith(("torch", "builtins", "unet_helpers")):
                continue
            functions += [v for v in vars(klass).values() if isinstance(v, (types.FunctionType, staticmethod, classmethod))]
    elif callable(answer):
        functions.append(answer)
    spaces = []
    for fn in functions:
        fn = getattr(fn, "__func__", fn)
        space = getattr(fn, "__globals__", None)
        if isinstance(space, dict):
            spaces.append(space)
    return spaces


class Session:
    """One check of one answer: the copies, state guard and tripwires around each learner call.

    Args:
        answer: the learner's function or class (its namespace is searched for forbidden pieces).
        forbidden: dotted paths of the package's implementation of the piece under test.
        random_allowed: default for calls that do not say whether they may draw random numbers.
    """

    def __init__(self, answer: Any, forbidden: Sequence[str] = (), random_allowed: bool = False) -> None:
        self.random_allowed = random_allowed
        self.uses: dict[str, int] = {}
        self.mutations: list[str] = []
        self.state_changes: list[str] = []
        self.last_states: tuple[TorchState, TorchState] | None = None  # (before, after) of the latest call
        self.calls = 0
        self.returned = 0
        self._token: contextvars.Token | None = None
        self.tripwire = Tripwire(forbidden, learner_namespaces(answer), self._used)
        for path, obj in ((p, resolve(p)) for p in forbidden):
            if answer is obj:
                self._used(path)
        for path in self.tripwire.subclassed(answer):
            self._used(path)

    def _used(self, path: str) -> None:
        self.uses[path] = self.uses.get(path, 0) + 1

    def __enter__(self) -> "Session":
        self._token = _SESSION.set(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._token is not None:
            _SESSION.reset(self._token)

    def inspect_module(self, module: nn.Module) -> None:
        """Record forbidden classes inside a module the learner built."""
        for path in self.tripwire.contained(module):
            self._used(path)

    def call(self, fn: Callable[..., Any], args: tuple, kwargs: dict, random_allowed: bool | None = None) -> Any:
        random_allowed = self.random_allowed if random_allowed is None else random_allowed
        given_args, given_kwargs = copy_inputs(list(args)), copy_inputs(dict(kwargs))
        before = TorchState.capture()
        self.calls += 1
        self.tripwire.arm()
        try:
            result = fn(*given_args, **given_kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit and anything else the learner raises is reported
            raise learner_error(exc) from None
        finally:
            self.tripwire.disarm()
            after = TorchState.capture()
            self.last_states = (before, after)
            self.state_changes += [c for c in before.changes(after, random_allowed) if c not in self.state_changes]
            before.restore()
            self._compare_inputs(fn, args, kwargs, given_args, given_kwargs)
        self.returned += 1
        return result

    def _compare_inputs(self, fn: Callable, args: tuple, kwargs: dict, given_args: list, given_kwargs: dict) -> None:
        names = _argument_names(fn, len(args))
        pairs = list(zip(names, args, given_args)) + [(k, kwargs[k], given_kwargs[k]) for k in kwargs]
        for name, original, given in pairs:
            what = changed(original, given)
            if what:
                note = f"`{name}`: {what}"
                if note not in self.mutations:
                    self.mutations.append(note)


def current_session() -> Session | None:
    """The session of the check being run, if any."""
    return _SESSION.get()


def call_learner(fn: Callable[..., Any], *args: Any, random_allowed: bool | None = None, **kwargs: Any) -> Any:
    """Call learner code; any exception it raises becomes a ``LearnerError``.

    Inside a check (a ``Session``) the call gets copies of its inputs, torch's global state is
    restored after it, and uses of the forbidden pieces are recorded (module docstring).
    ``random_allowed``: the call may draw random numbers (building a module initialises weights);
    ``None`` takes the session's default.
    """
    session = current_session()
    if session is not None:
        return session.call(fn, args, kwargs, random_allowed)
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - anything the learner's code raises is reported, not raised
        raise learner_error(exc) from None


def build_module(cls: type, *args: Any) -> nn.Module:
    """``cls(*args)``, the learner's ``nn.Module`` class built inside the session (weights may be random)."""
    module = call_learner(cls, *args, random_allowed=True)
    if not isinstance(module, nn.Module):
        raise PropertyFailed(f"{getattr(cls, '__name__', cls)}{args} did not build an nn.Module.",
                             type(module).__name__, "an nn.Module")
    session = current_session()
    if session is not None:
        session.inspect_module(module)
    return module
