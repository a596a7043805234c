"""Checkpoints: weights, model configuration, optimizer state, epoch and history in one file.

Used in ``notebooks/06_training.ipynb`` and by ``python -m unet_helpers train``.

Files are read with ``torch.load(..., weights_only=True)``: only tensors and plain Python
containers are unpickled, never arbitrary objects, so a checkpoint from elsewhere cannot run code.
Everything else in the file is checked before it is used: every key and its type, and the model
configuration against the weights the file holds (the model is first built on PyTorch's ``meta``
device, which allocates nothing, so a configuration asking for terabytes is refused instead of
allocated). Any malformed content is one ``ValueError`` naming the file and what is wrong.

Files are written by ``atomic.atomic_path`` (a temporary file, flushed, renamed): a crash never
leaves half a checkpoint, and the previous good file survives any failure.
"""
from __future__ import annotations

import collections
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn

from .atomic import atomic_path
from .encoders.unet import EncoderUNetConfig, encoder_unet_from_config
from .records import EpochRecord, History
from .runtime import unwrap_model
from .unet import UNetConfig, unet_from_config

FORMAT = "unet_helpers.checkpoint/2"
# The models a checkpoint can rebuild: architecture name -> (its config class, builder from the config's dict).
ARCHITECTURES = {
    "UNet": (UNetConfig, unet_from_config),
    "EncoderUNet": (EncoderUNetConfig, encoder_unet_from_config),
}


def _architecture(model: nn.Module) -> str | None:
    config = getattr(unwrap_model(model), "config", None)
    return next((name for name, (kind, _) in ARCHITECTURES.items() if isinstance(config, kind)), None)


def _config_dict(model: nn.Module) -> dict | None:
    return asdict(unwrap_model(model).config) if _architecture(model) is not None else None


_PLAIN = (type(None), bool, int, float, str)
# The largest model a checkpoint may describe (parameters and buffers); UNet(base=64, depth=5) has
# 31 million, so this leaves room for any model of the course and refuses absurd configurations.
MAX_MODEL_VALUES = 2_000_000_000


def _require_plain(value: object, where: str) -> None:
    """Raise ``TypeError`` unless ``value`` is made of what ``torch.load(weights_only=True)`` reads
    back: None, bool, int, float, str, tensors, and lists/tuples/dicts of those.

    Types are compared exactly: a ``numpy.float64`` is a ``float`` to ``isinstance``, but a
    checkpoint holding one cannot be loaded with ``weights_only=True``.
    """
    if type(value) in _PLAIN or isinstance(value, torch.Tensor):
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            _require_plain(item, f"{where}[{i}]")
        return
    if type(value) in (dict, collections.OrderedDict):
        for key, item in value.items():
            if type(key) not in _PLAIN:
                raise TypeError(f"{where} has a key of type {type(key).__name__}; use str, int or float keys")
            _require_plain(item, f"{where}[{key!r}]")
        return
    hint = " (convert it with .tolist())" if hasattr(value, "tolist") else ""
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__name__}, which a checkpoint loaded with "
        f"weights_only=True cannot hold; store plain values (numbers, strings, lists, dicts, tensors){hint}"
    )


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int | None = None,
    history: History | None = None,
    scheduler: object | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a checkpoint atomically (to a temporary file, then renamed over ``path``).

    Args:
        path: file to write (its folder is created).
        model: the model (a ``UNet`` or ``EncoderUNet`` stores its architecture and configuration,
            so it can be rebuilt from the file).
        optimizer, scheduler: optional, for resuming.
        epoch: the last finished epoch.
        history: the list of ``EpochRecord`` returned by ``fit`` (stored in its JSON form).
        extra: any small dict of plain values (class names, mask mapping, ...).

    Returns:
        The path written.

    Raises:
        TypeError: ``history`` is not a list of ``EpochRecord``, or ``extra`` holds something
            ``weights_only`` loading would refuse (e.g. a NumPy array or a ``numpy.float64``);
            checked before anything is written, so the previous file stays as it was.
    """
    records = []
    for index, record in enumerate(history or []):
        if not isinstance(record, EpochRecord):
            raise TypeError(
                f"history[{index}] is a {type(record).__name__}; expected the EpochRecord objects that fit returns"
            )
        records.append(record.to_json())
    _require_plain(records, "history")
    _require_plain(dict(extra or {}), "extra")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = unwrap_model(model)
    state = {
        "format": FORMAT,
        "architecture": _architecture(plain),
        "model_config": _config_dict(plain),
        "model_state": plain.state_dict(),
        "optimizer_state": None if optimizer is None else optimizer.state_dict(),
        "scheduler_state": None if scheduler is None else scheduler.state_dict(),
        "epoch": epoch,
        "history": records,
        "extra": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def _describe_mismatch(saved: dict, current: dict) -> str:
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs model {current.get(k)!r}" for k in current if saved.get(k) != current.get(k)]
    return "; ".join(diffs)


# Every key of a checkpoint and the types its value may have (None: absent from the file).
_LAYOUT = {
    "format": (str,),
    "architecture": (str, type(None)),
    "model_config": (dict, type(None)),
    "model_state": (dict,),
    "optimizer_state": (dict, type(None)),
    "scheduler_state": (dict, type(None)),
    "epoch": (int, type(None)),
    "history": (list,),
    "extra": (dict,),
}


def _check_layout(state: dict, path: Path) -> None:
    """Every key present with a value of its type; the weights a dict of named tensors.

    ``architecture`` may be absent (a model the file cannot rebuild; ``model=`` is then needed).
    """
    state.setdefault("architecture", None)
    missing = sorted(set(_LAYOUT) - set(state))
    unknown = sorted(str(k) for k in set(state) - set(_LAYOUT))
    if missing or unknown:
        raise ValueError(f"{path} is a damaged checkpoint: missing keys {missing}, unknown keys {unknown}; "
                         "it was not written by save_checkpoint (or was edited)")
    for key, kinds in _LAYOUT.items():
        value = state[key]
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ValueError(f"{path} is a damaged checkpoint: {key!r} is a {type(value).__name__}, expected "
                             f"{' or '.join(k.__name__ for k in kinds)}")
    if state["epoch"] is not None and state["epoch"] < 0:
        raise ValueError(f"{path} is a damaged checkpoint: epoch is {state['epoch']}")
    for name, tensor in state["model_state"].items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{path} is a damaged checkpoint: model_state[{name!r}] is a {type(tensor).__name__}, "
                             "expected a tensor under a parameter name")


def _check_config(config: dict, architecture: str, path: Path, stored_values: int) -> None:
    """Refuse a configuration of the wrong types, or one describing another (or a huge) model.

    The model is built on the ``meta`` device (shapes only, nothing allocated) and its size
    compared with the weights in the file.
    """
    kind, build = ARCHITECTURES[architecture]
    expected = set(kind.__dataclass_fields__)
    if set(config) != expected:
        raise ValueError(
            f"{path} holds a {architecture} configuration with unknown settings {sorted(set(config) - expected)} and "
            f"missing {sorted(expected - set(config))}; was it saved by another version of unet_helpers?"
        )
    for name, field in kind.__dataclass_fields__.items():
        value, default = config[name], field.default
        if isinstance(default, bool) or isinstance(default, str):
            ok = type(value) is type(default)
        elif isinstance(default, int):
            ok = type(value) is int and 1 <= value <= 1_000_000
        elif isinstance(default, tuple):
            ok = isinstance(value, (list, tuple)) and all(type(v) is int and 1 <= v <= 1_000_000 for v in value)
        else:
            ok = True
        if not ok:
            raise ValueError(f"{path} holds a {architecture} configuration with {name}={value!r}, which is not a valid "
                             f"value (expected like {default!r}); the file is damaged or was edited")
    if architecture == "UNet" and not 1 <= config["depth"] <= 12:
        raise ValueError(f"{path} holds a UNet configuration with depth={config['depth']}; expected 1..12")
    try:
        with torch.device("meta"):
            skeleton = build(config)  # shapes only: a configuration asking for terabytes costs nothing here
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} holds a {architecture} configuration that cannot be built: {error}") from error
    values = sum(t.numel() for t in skeleton.state_dict().values())
    if values > MAX_MODEL_VALUES or values != stored_values:
        raise ValueError(
            f"{path} holds a {architecture} configuration {config} describing {values:,} weights, but the file holds "
            f"{stored_values:,}" + (f" (and more than the {MAX_MODEL_VALUES:,} any model here may have)" if values > MAX_MODEL_VALUES else "")
            + "; the file is damaged or was edited"
        )


def _checked_load(target: object, state: object, what: str, path: Path) -> None:
    """``target.load_state_dict(state)`` with any refusal turned into one ``ValueError``."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"the {what} state in {path} does not fit this {what} ({first}); resume with the same "
                         "settings the run was started with") from error


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: object | None = None,
    map_location: str | torch.device = "cpu",
) -> dict:
    """Load a checkpoint written by ``save_checkpoint``.

    Args:
        path: the file.
        model: the model to load into; ``None`` rebuilds it from the stored architecture and
            configuration (a ``UNet`` or an ``EncoderUNet``; the latter without reading the ImageNet
            weights, which the checkpoint holds already).
        optimizer, scheduler: loaded too when given (for resuming training).
        map_location: where tensors go (default CPU).

    Returns:
        ``{"model", "epoch", "history", "extra", "config"}``; ``history`` is a list of ``EpochRecord``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a checkpoint of this format, damaged content (a missing key, a value of
            the wrong type, a configuration that does not match the stored weights or would be
            absurdly large), or saved for a differently configured model (the message lists every
            difference, e.g. ``num_classes: checkpoint 5 vs model 2``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # unpickling refused, a corrupt or truncated file: torch raises many types
        detail = " ".join(str(error).split())[:300]
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {detail})") from error
    found = state.get("format") if isinstance(state, dict) else None
    if not isinstance(found, str) or found != FORMAT:  # compared only as a string: a tensor has no one truth value
        older = " (written by an older unet_helpers: retrain, or load it with that version)" if isinstance(found, str) else ""
        shown = found if found is None or isinstance(found, (str, int, float)) else type(found).__name__
        raise ValueError(f"{path} is not a unet_helpers checkpoint of format {FORMAT!r}; found {shown!r}{older}")
    _check_layout(state, path)
    saved_config, architecture = state["model_config"], state["architecture"]
    if architecture is not None and architecture not in ARCHITECTURES:
        raise ValueError(f"{path} holds a model of architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    if saved_config is not None and architecture is not None:
        stored = sum(t.numel() for t in state["model_state"].values())
        _check_config(saved_config, architecture, path, stored)
    if model is None:
        if saved_config is None or architecture is None:
            raise ValueError(f"{path} holds weights of a model that is not a UNet or EncoderUNet; pass model=... to load it")
        model = ARCHITECTURES[architecture][1](saved_config)
    else:
        current = _config_dict(model)
        if architecture is not None and current is not None and architecture != _architecture(model):
            raise ValueError(f"checkpoint {path} holds a {architecture} but the model is a {_architecture(model)}; "
                             "build the same architecture, or load with model=None to rebuild it")
        if saved_config is not None and current is not None and saved_config != current:
            raise ValueError(
                f"checkpoint {path} was saved for a different model: {_describe_mismatch(saved_config, current)}. "
                "Build the model with the checkpoint's settings, or load with model=None to rebuild it"
            )
        model = unwrap_model(model)
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as error:
        raise ValueError(f"weights in {path} do not fit this model: {str(error).splitlines()[0]}") from error
    if optimizer is not None and state["optimizer_state"] is not None:
        _checked_load(optimizer, state["optimizer_state"], "optimizer", path)
    if scheduler is not None and state["scheduler_state"] is not None:
        _checked_load(scheduler, state["scheduler_state"], "scheduler", path)
    try:
        history = [EpochRecord.from_json(record) for record in state["history"]]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise ValueError(f"{path} is a damaged checkpoint: its history cannot be read ({type(error).__name__}: {error})") from error
    return {"model": model, "epoch": state["epoch"], "history": history, "extra": state["extra"], "config": saved_config}
