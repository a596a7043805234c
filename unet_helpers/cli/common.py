"""What every command of ``python -m unet_helpers`` shares: the user-error type and argument helpers.

A ``CliError`` (or a ``ValueError``/``OSError`` from the library) is printed by ``cli.main`` as one
``error: ...`` line with exit code 1, never as a traceback.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence


class CliError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def parse_mask_values(text: str | None) -> dict[int, int] | None:
    """``"0:0,255:1"`` -> ``{0: 0, 255: 1}`` (raw pixel value -> class id); ``None`` stays ``None``.

    >>> parse_mask_values("0:0,255:1")
    {0: 0, 255: 1}
    """
    if text is None:
        return None
    mapping = {}
    for item in text.split(","):
        raw, sep, cls = item.partition(":")
        if not sep or not raw.strip().isdigit() or not cls.strip().isdigit():
            raise CliError(f"--mask-values must look like 0:0,255:1 (raw value:class id, comma-separated); got {text!r}")
        mapping[int(raw)] = int(cls)
    return mapping


def parse_list(text: str | None) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]``; ``None`` stays ``None``."""
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def require_dir(path: str | Path, what: str) -> Path:
    """The folder ``path``, or a ``CliError`` naming ``what`` it should have held."""
    path = Path(path)
    if not path.is_dir():
        raise CliError(f"{what} folder {path} does not exist")
    return path


def check_output_folder(out: Path, inputs: Sequence[Path], planned: Sequence[Path], overwrite: bool) -> None:
    """Refuse an output folder equal to or inside an input folder, and existing files without ``overwrite``."""
    resolved = out.resolve()
    for folder in inputs:
        if resolved == folder.resolve() or folder.resolve() in resolved.parents:
            raise CliError(f"output folder {out} is (inside) the input folder {folder}; choose another --out so inputs are never overwritten")
    existing = [p.name for p in planned if p.exists()]
    if existing and not overwrite:
        listed = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise CliError(f"{len(existing)} file(s) in {out} already exist ({listed}); pass --overwrite to replace them or choose another --out")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--overwrite`` and ``--quiet``, shared by the commands that write files."""
    parser.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
