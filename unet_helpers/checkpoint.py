"""Checkpoints: weights, model configuration, optimizer state, epoch and history in one file.

Used in ``notebooks/06_training.ipynb`` and by ``python -m unet_helpers train``.

Files are read with ``torch.load(..., weights_only=True)``: only tensors and plain Python
containers are unpickled, never arbitrary objects, so a checkpoint from elsewhere cannot run code.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn

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


def _require_plain(value: object, where: str) -> None:
    """Raise ``TypeError`` unless ``value`` is made of what ``torch.load(weights_only=True)`` reads
    back: None, bool, int, float, str, tensors, and lists/tuples/dicts of those."""
    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _require_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _PLAIN):
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
            ``weights_only`` loading would refuse (e.g. a NumPy array); checked before anything is written.
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
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _describe_mismatch(saved: dict, current: dict) -> str:
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs model {current.get(k)!r}" for k in current if saved.get(k) != current.get(k)]
    return "; ".join(diffs)


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
        ValueError: not a checkpoint of this format, or saved for a differently configured model
            (the message lists every difference, e.g. ``num_classes: checkpoint 5 vs model 2``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # unpickling refused or a corrupt file
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else None
        older = " (written by an older unet_helpers: retrain, or load it with that version)" if found else ""
        raise ValueError(f"{path} is not a unet_helpers checkpoint of format {FORMAT!r}; found {found!r}{older}")
    saved_config = state["model_config"]
    architecture = state.get("architecture")
    if model is None:
        if saved_config is None or architecture not in ARCHITECTURES:
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
        optimizer.load_state_dict(state["optimizer_state"])
    if scheduler is not None and state["scheduler_state"] is not None:
        scheduler.load_state_dict(state["scheduler_state"])
    return {
        "model": model,
        "epoch": state["epoch"],
        "history": [EpochRecord.from_json(record) for record in state["history"]],
        "extra": state["extra"],
        "config": saved_config,
    }
