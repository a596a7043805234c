"""What every command of ``python -m unet_helpers`` shares: the user-error type and argument helpers.

A ``CliError`` (or a ``ValueError``/``OSError`` from the library) is printed by ``cli.main`` as one
``error: ...`` line with exit code 1, never as a traceback; so are argument errors (``CliParser``).
Option values are checked when they are parsed (``positive_int``, ``fraction``, ...), so a bad one
names its option before anything is read or written.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
from pathlib import Path
from typing import Iterator, NoReturn, Sequence

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_path
from ..mask_file import MAX_MASK_VALUE


class CliError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


class CliParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are ``CliError`` (one ``error:`` line, exit code 1)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see {self.prog} --help)")


def positive_int(text: str) -> int:
    """An ``int >= 1`` (an argparse ``type``)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An ``int >= 0`` (an argparse ``type``)."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}; got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}; got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite ``float > 0`` (an argparse ``type``)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite ``float >= 0`` (an argparse ``type``)."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {text}")
    return value


def fraction(text: str) -> float:
    """A ``float`` in ``[0, 1)`` (an argparse ``type``: overlaps)."""
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1); got {text}")
    return value


def open_fraction(text: str) -> float:
    """A ``float`` in ``(0, 1)`` (an argparse ``type``: a validation share)."""
    value = _finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive); got {text}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text}")
    return value


def parse_mask_values(text: str | None) -> dict[int, int] | None:
    """``"0:0,255:1"`` -> ``{0: 0, 255: 1}`` (raw pixel value -> class id); ``None`` stays ``None``.

    Raw values must lie in ``[0, 65535]`` (a 16-bit mask) and be listed once; class ids in the same
    range (an ignore index such as 255 included).

    >>> parse_mask_values("0:0,255:1")
    {0: 0, 255: 1}
    """
    if text is None:
        return None
    mapping: dict[int, int] = {}
    for item in text.split(","):
        raw, sep, cls = item.partition(":")
        if not sep or not raw.strip().isdigit() or not cls.strip().isdigit():
            raise CliError(f"--mask-values must look like 0:0,255:1 (raw value:class id, comma-separated); got {text!r}")
        raw_value, class_id = int(raw), int(cls)
        if raw_value > MAX_MASK_VALUE or class_id > MAX_MASK_VALUE:
            raise CliError(f"--mask-values {item.strip()}: raw values and class ids must lie in 0..{MAX_MASK_VALUE} "
                           f"(masks are 8- or 16-bit); got {text!r}")
        if raw_value in mapping:
            raise CliError(f"--mask-values lists the raw value {raw_value} twice ({text!r}); give each raw value one class")
        mapping[raw_value] = class_id
    return mapping


def parse_list(text: str | None) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]``; ``None`` stays ``None``."""
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def parse_device(text: str | None) -> torch.device | None:
    """``--device``: a device this PyTorch build has (``None``: the best available, chosen later)."""
    if text is None:
        return None
    try:
        device = torch.device(text)
    except RuntimeError:
        raise CliError(f"--device {text!r} is not a device name; use cpu, cuda, cuda:1 or mps") from None
    kind = device.type
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    if kind not in available:
        raise CliError(f"--device {text!r}: this command runs on cpu, cuda or mps, not {kind}")
    if not available[kind]:
        why = "this PyTorch build has no CUDA or sees no GPU" if kind == "cuda" else "this machine has no MPS"
        raise CliError(f"--device {text!r}: {why}; use --device cpu (or omit --device for the best available)")
    if kind == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise CliError(f"--device {text!r}: there are only {torch.cuda.device_count()} CUDA device(s)")
    return device


def require_dir(path: str | Path, what: str) -> Path:
    """The folder ``path``, or a ``CliError`` naming ``what`` it should have held."""
    path = Path(path)
    if not path.is_dir():
        raise CliError(f"{what} folder {path} does not exist" + (" (it is a file)" if path.exists() else ""))
    return path


def check_output_folder(out: Path, inputs: Sequence[Path], planned: Sequence[Path], overwrite: bool) -> None:
    """Refuse an output folder equal to or inside an input folder, and existing files without ``overwrite``.

    A planned file that is a symlink counts as existing (even when its target is gone); with
    ``overwrite`` the link itself is replaced (``write_png``), never the file it points to.
    """
    if out.exists() and not out.is_dir():
        raise CliError(f"output folder {out} is a file; choose a folder for --out")
    resolved = out.resolve()
    for folder in inputs:
        if resolved == folder.resolve() or folder.resolve() in resolved.parents:
            raise CliError(f"output folder {out} is (inside) the input folder {folder}; choose another --out so inputs are never overwritten")
    existing = [p.name for p in planned if os.path.lexists(p)]
    if existing and not overwrite:
        listed = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise CliError(f"{len(existing)} file(s) in {out} already exist ({listed}); pass --overwrite to replace them or choose another --out")
    directories = [p for p in planned if p.is_dir() and not p.is_symlink()]
    if directories:
        raise CliError(f"{directories[0]} is a folder, so the file of that name cannot be written; move it away")


def write_png(path: Path, values: np.ndarray) -> None:
    """Write ``(H, W)`` integer values as an 8-bit PNG (16-bit above 255), atomically (``atomic_path``)."""
    dtype = np.uint8 if values.max() <= 255 else np.uint16
    with atomic_path(path) as tmp:
        Image.fromarray(values.astype(dtype)).save(tmp, format="PNG")


@contextlib.contextmanager
def pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Pillow's decompression-bomb limit set to ``max_pixels`` for one command (then restored)."""
    saved = Image.MAX_IMAGE_PIXELS
    if max_pixels is not None:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--overwrite``, ``--quiet`` and ``--max-pixels``, shared by the commands that read images."""
    parser.add_argument("--device", help="cpu, cuda, cuda:N, mps (default: the best available)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    add_pixel_limit_argument(parser)


def add_pixel_limit_argument(parser: argparse.ArgumentParser) -> None:
    """``--max-pixels``: Pillow's decompression-bomb limit for this command."""
    parser.add_argument("--max-pixels", type=positive_int,
                        help=f"refuse images with more pixels than this (default Pillow's {Image.MAX_IMAGE_PIXELS:,}); "
                             "raise it for genuine large images")
