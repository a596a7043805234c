"""ONNX export: a trained U-Net as one ``.onnx`` file that ONNX Runtime (or a browser, or C++) can run.

Used by ``python -m unet_helpers export CHECKPOINT model.onnx`` (``export_checkpoint``); the file
is run by ``onnx_runtime.OnnxPredictor`` with the same ``predict`` / ``predict_tiled`` as PyTorch.

How: ``torch.onnx.export(..., dynamo=True)``, the exporter PyTorch recommends (the TorchScript-based
one is deprecated). It traces the model with ``torch.export`` on one example batch, with batch,
height and width declared dynamic, so that the file accepts every size the model does. Two things
can break that, and both are dealt with here:

- A Python ``if`` on a size (``if dh:`` in ``blocks.align_to``, true only for odd sizes) is traced
  down one path only. ``align_to`` therefore pads by symbolic amounts while exporting.
- When ``torch.export`` finds such a branch, the ONNX exporter does not fail: it narrows the dynamic
  sizes to the ones it could prove (say, height a multiple of 16) and carries on. So ``export_onnx``
  runs the exported graph on the smallest size and on an odd size, compares it with the model, and
  refuses to write a file that lost sizes.

The model is exported in eval mode (BatchNorm with its running statistics) whatever mode it is in,
and its mode is restored afterwards. What a checkpoint stores about its data (class names, image
scaling, mask values) goes into the file's ``metadata_props`` (``OnnxMetadata``), so the file alone
is enough to predict.

Needs ``onnx`` and ``onnxscript`` (pinned in ``requirements.txt``).

Shapes: images ``(N, C, H, W)``, logits ``(N, K, H, W)``.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import torch
import torch.nn as nn

from ..checkpoint import load_checkpoint
from ..unet import UNetConfig

FORMAT = "unet_helpers.onnx/1"
INPUT_NAME, OUTPUT_NAME = "images", "logits"
EXPORT_PACKAGES = {"onnx": "1.23.2", "onnxscript": "0.7.2"}  # the pins of requirements.txt
RUNTIME_PACKAGES = {"onnxruntime": "1.31.1"}
LOWEST_OPSET = 18  # the dynamo exporter implements its operators from this opset on


def require_packages(packages: Mapping[str, str], purpose: str) -> None:
    """Raise ``ModuleNotFoundError`` naming the pip command unless every one of ``packages`` imports.

    Args:
        packages: module name -> pinned version.
        purpose: what needs them, for the message (e.g. ``"ONNX export"``).
    """
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        command = "pip install " + " ".join(f"{name}=={version}" for name, version in packages.items())
        raise ModuleNotFoundError(
            f"{purpose} needs {' and '.join(packages)}, but {', '.join(missing)} is not installed. "
            f"Install with: {command}  (or: pip install -r requirements.txt)"
        )


@dataclass(frozen=True)
class OnnxMetadata:
    """What an exported file says about itself, stored as strings in its ``metadata_props``.

    ``to_props`` writes every field as JSON under its own name; ``from_props`` reads it back.
    """

    in_channels: int  # C of the input
    num_classes: int  # K of the output (1: binary logits)
    min_size: int  # smallest H and W the model accepts (2**depth for a UNet)
    class_names: tuple[str, ...] | None = None  # from the checkpoint, one per class
    normalize: str | None = None  # image scaling used in training ("unit", "per_image"; see image_file.scale_image)
    mask_values: dict[int, int] | None = None  # raw mask value -> class id of the training masks
    model_config: dict | None = None  # UNetConfig as a dict, when the model is a UNet

    def __post_init__(self) -> None:
        allowed = (1, 2) if self.num_classes == 1 else (self.num_classes,)  # binary: one logit, two classes
        if self.class_names is not None and len(self.class_names) not in allowed:
            raise ValueError(
                f"{len(self.class_names)} class names {list(self.class_names)} for a model with "
                f"{self.num_classes} output channels; give one name per class"
            )
        if self.normalize is not None and not isinstance(self.normalize, str):
            raise TypeError(f"normalize must be a string such as 'unit'; got {self.normalize!r}")

    def to_props(self) -> dict[str, str]:
        """``{name: JSON text}`` for ``metadata_props``, plus the ``format`` key."""
        fields = asdict(self)
        if self.mask_values is not None:
            fields["mask_values"] = {str(raw): int(cls) for raw, cls in self.mask_values.items()}
        return {"format": FORMAT, **{name: json.dumps(value) for name, value in fields.items()}}

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> "OnnxMetadata":
        """Read back what ``to_props`` wrote; ``ValueError`` if ``props`` are not of this format."""
        if props.get("format") != FORMAT:
            raise ValueError(f"ONNX metadata is not of format {FORMAT!r} (got format={props.get('format')!r})")
        values = {name: json.loads(props[name]) for name in cls.__dataclass_fields__ if name in props}
        if values.get("class_names") is not None:
            values["class_names"] = tuple(values["class_names"])
        if values.get("mask_values") is not None:
            values["mask_values"] = {int(raw): int(c) for raw, c in values["mask_values"].items()}
        return cls(**values)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes that are not about this model (missing torchvision ops)."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def _check_every_size_survived(program, model: nn.Module, in_channels: int, min_size: int) -> None:
    """Run the exported graph at the smallest size and at an odd size; refuse it if it lost sizes."""
    exported = program.exported_program.module()
    for height, width in ((min_size, min_size), (2 * min_size + 1, 2 * min_size + 3)):
        probe = torch.randn(1, in_channels, height, width, generator=torch.Generator().manual_seed(0))
        probe = probe.to(next(iter(model.parameters()), probe).device)
        with torch.no_grad():
            expected = model(probe)  # an error here is the model's own, and is raised as it is
        try:
            with torch.no_grad():
                got = exported(probe)
        except Exception as error:  # the graph's input-size assertion, or a shape mismatch inside it
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(
                f"the exported graph does not accept a {height}x{width} input ({first}): torch.export narrowed "
                "the dynamic sizes because forward branches on a size (an `if` on x.shape). Make that code "
                "size-independent while torch.compiler.is_exporting() (see blocks.align_to)"
            ) from error
        scale = float(expected.abs().max()) + 1e-6
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * scale):
            raise ValueError(
                f"the exported graph differs from the model on a {height}x{width} input (shape {tuple(got.shape)} "
                f"vs {tuple(expected.shape)}); forward probably takes a size-dependent path that export fixed"
            )


def export_onnx(
    model: nn.Module,
    path: str | Path,
    example: torch.Tensor | None = None,
    min_size: int | None = None,
    class_names: Sequence[str] | None = None,
    normalize: str | None = None,
    mask_values: Mapping[int, int] | None = None,
    opset: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as an ONNX file with dynamic batch, height and width.

    Args:
        model: a ``UNet`` (its configuration gives channels and smallest size), or any module with
            the same forward; it is exported in eval mode and its mode is restored.
        path: the ``.onnx`` file to write (atomically: a temporary file renamed over it).
        example: an example batch to trace with; default ``(2, C, 4 * min_size, 4 * min_size)`` noise
            for a ``UNet``. Required for other modules.
        min_size: smallest height and width the file accepts; default ``2**depth`` for a ``UNet``.
            Required for other modules.
        class_names, normalize, mask_values: stored in the file's metadata (see ``OnnxMetadata``).
        opset: ONNX operator set; ``None`` is PyTorch's recommended one.
        overwrite: replace an existing file.

    Shape:
        - File input ``images``: ``(N, C, H, W)`` float32, ``H, W >= min_size``
        - File output ``logits``: ``(N, K, H, W)`` float32

    Returns:
        The path written.

    Raises:
        ModuleNotFoundError: ``onnx`` or ``onnxscript`` missing (the message has the pip command).
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: a bad argument, or an export that lost input sizes (see the module docstring).

    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"the ONNX file should end in .onnx; got {path.name!r} (did you swap the checkpoint and the output?)")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (--overwrite) or choose another file name")
    if opset is not None and (not isinstance(opset, int) or isinstance(opset, bool) or opset < LOWEST_OPSET):
        raise ValueError(f"opset must be an int >= {LOWEST_OPSET} or None (PyTorch's recommended opset); got {opset!r}")
    plain = model.module if hasattr(model, "module") else model  # DistributedDataParallel / DataParallel
    config = getattr(plain, "config", None)
    if not isinstance(config, UNetConfig) and (example is None or min_size is None):
        raise ValueError(
            f"{type(plain).__name__} is not a UNet, so its input is unknown: pass example=torch.randn(2, C, H, W) "
            "and min_size (the smallest height and width it accepts)"
        )
    min_size = 2**config.depth if min_size is None else min_size
    if not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be a positive int; got {min_size!r}")
    device = next(iter(plain.parameters()), torch.empty(0)).device
    if example is None:
        example = torch.randn(2, config.in_channels, 4 * min_size, 4 * min_size, generator=torch.Generator().manual_seed(0))
    if not isinstance(example, torch.Tensor) or example.ndim != 4 or not example.is_floating_point():
        got = tuple(example.shape) if isinstance(example, torch.Tensor) else type(example).__name__
        raise ValueError(f"example must be a float batch (N, C, H, W); got {got}")
    example = example.to(device)
    require_packages(EXPORT_PACKAGES, "ONNX export")

    with _eval_mode(plain), _quiet_exporter():
        with torch.no_grad():
            num_classes = int(plain(example).shape[1])
        metadata = OnnxMetadata(
            in_channels=int(example.shape[1]), num_classes=num_classes, min_size=min_size,
            class_names=None if class_names is None else tuple(class_names), normalize=normalize,
            mask_values=None if mask_values is None else dict(mask_values),
            model_config=asdict(config) if isinstance(config, UNetConfig) else None,
        )
        batch = torch.export.Dim("batch", min=1)
        height, width = torch.export.Dim("height", min=min_size), torch.export.Dim("width", min=min_size)
        program = torch.onnx.export(
            plain, (example,), dynamo=True, dynamic_shapes=({0: batch, 2: height, 3: width},),
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset, verbose=False,
        )
        _check_every_size_survived(program, plain, metadata.in_channels, min_size)
    program.model.metadata_props.update(metadata.to_props())

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".onnx")
    os.close(handle)
    try:
        program.save(tmp, external_data=False)  # one self-contained file (weights inside)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def export_checkpoint(
    checkpoint_path: str | Path, onnx_path: str | Path, opset: int | None = None, overwrite: bool = False
) -> Path:
    """Export the ``UNet`` of a checkpoint (``checkpoint.save_checkpoint``) to ONNX, with its metadata.

    What ``python -m unet_helpers export CHECKPOINT model.onnx`` does. The class names, image
    scaling and mask values the checkpoint's ``extra`` holds (the ``train`` command stores them)
    go into the file's metadata, so ``predict --onnx`` scales images as in training.

    Args:
        checkpoint_path: a ``.pt`` file written by ``save_checkpoint`` (``last.pt``, ``best.pt``).
        onnx_path: the ``.onnx`` file to write; never the checkpoint itself.
        opset: ONNX operator set; ``None`` is PyTorch's recommended one.
        overwrite: replace an existing ``onnx_path``.

    Returns:
        The path written.
    """
    checkpoint_path, onnx_path = Path(checkpoint_path), Path(onnx_path)
    if onnx_path.resolve() == checkpoint_path.resolve():
        raise ValueError(f"the ONNX file {onnx_path} is the checkpoint itself; choose another output name")
    loaded = load_checkpoint(checkpoint_path)
    extra = loaded["extra"]
    return export_onnx(
        loaded["model"], onnx_path, class_names=extra.get("class_names"), normalize=extra.get("normalize"),
        mask_values=extra.get("mask_values"), opset=opset, overwrite=overwrite,
    )
