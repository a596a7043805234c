"""Command line: ``python -m unet_helpers {train,predict,inspect,progress} ...`` (``--help`` on each).

Introduced in ``notebooks/09_real_data.ipynb``; the course's notebooks do the same steps by hand.

- ``train``: the built-in synthetic shapes (default, needs no data) or ``--data DIR`` holding
  ``images/`` + ``masks/``; writes ``last.pt``, ``best.pt`` and ``metrics.jsonl`` into ``--out``.
  Runs under ``torchrun --nproc_per_node=N -m unet_helpers train ...`` too (``distributed.py``).
- ``predict``: a folder of images of any size to PNG masks (tiled when larger than ``--tile``).
- ``inspect``: a folder of predicted masks against true masks -> the mask inspector's report.
- ``progress``: the exercise progress of ``unet_helpers.checks.progress``.

Every problem a user can cause (missing folder, names or sizes that do not pair up, a checkpoint
for another number of classes, a file that would be overwritten) ends with a one-line
``error: ...`` on stderr and exit code 1, not a traceback. The ``train`` command lives in
``cli_train.py``; this module holds the parser and the other commands.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .checkpoint import load_checkpoint
from .folder import IMAGE_EXTENSIONS, MASK_EXTENSIONS, _lookup_table, read_image, read_mask, scale_image
from .inference import predict, predict_tiled
from .inspector import InspectorSettings, inspect_masks
from .utils import get_device


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


def files_by_stem(folder: Path, extensions: Sequence[str]) -> dict[str, Path]:
    """``{stem: path}`` of the files in ``folder`` with one of ``extensions`` (hidden files skipped)."""
    return {
        p.stem: p for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith(".")
    }


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


# -- predict ----------------------------------------------------------------------------------------


def _prepare_image(path: Path, channels: int, normalize: str | None) -> torch.Tensor:
    """Read and scale one image exactly like ``SegmentationFolder`` did in training: ``(C, H, W)``."""
    array = read_image(path, channels)  # (H, W, C), converted to the model's 1 or 3 channels
    return torch.from_numpy(scale_image(array, normalize)).permute(2, 0, 1).contiguous()  # (C, H, W)


def run_predict(args: argparse.Namespace) -> int:
    """The ``predict`` command (see ``--help``)."""
    source = require_dir(args.input, "input")
    loaded = load_checkpoint(args.checkpoint)
    model, extra = loaded["model"], loaded["extra"]
    k = model.config.num_classes
    if args.classes is not None and args.classes != k:
        raise CliError(f"checkpoint {args.checkpoint} predicts {k} classes but --classes is {args.classes}")
    mapping = parse_mask_values(args.mask_values) if args.mask_values else (extra.get("mask_values") if args.stored_values else None)
    if args.stored_values and mapping is None:
        raise CliError(f"checkpoint {args.checkpoint} stores no mask values (it was trained on ids); drop --stored-values")
    to_stored = None
    if mapping is not None:
        to_stored = np.arange(k, dtype=np.int64)
        for raw, cls in sorted(mapping.items(), reverse=True):  # the smallest raw value wins for a class
            if int(cls) < k:
                to_stored[int(cls)] = int(raw)
    images = files_by_stem(source, IMAGE_EXTENSIONS)
    if not images:
        raise CliError(f"no images in {source} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    out = Path(args.out)
    check_output_folder(out, [source], [out / f"{stem}.png" for stem in images], args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    model.to(get_device(args.device))
    channels, normalize = model.config.in_channels, extra.get("normalize", "unit")
    for stem, path in images.items():
        image = _prepare_image(path, channels, normalize)
        if max(image.shape[-2:]) > args.tile:
            ids = predict_tiled(model, image, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size)
        else:
            ids = predict(model, image)
        values = ids.numpy() if to_stored is None else to_stored[ids.numpy()]
        Image.fromarray(values.astype(np.uint8 if values.max() <= 255 else np.uint16)).save(out / f"{stem}.png")
        if not args.quiet:
            print(f"{path.name} -> {out / (stem + '.png')} ({image.shape[-2]}x{image.shape[-1]})")
    print(f"wrote {len(images)} mask(s) to {out}")
    return 0


# -- inspect ----------------------------------------------------------------------------------------


def read_mask_pairs(pred_dir: Path, true_dir: Path, pred_values: dict | None, true_values: dict | None):
    """Predicted and true masks paired by file stem, as two lists of ``(H, W)`` int64 arrays."""
    preds, trues = files_by_stem(pred_dir, MASK_EXTENSIONS), files_by_stem(true_dir, MASK_EXTENSIONS)
    only_pred, only_true = sorted(set(preds) - set(trues)), sorted(set(trues) - set(preds))
    if only_pred or only_true:
        raise CliError(
            f"mask names do not pair up: {len(only_pred)} only in {pred_dir} {only_pred[:3]}, "
            f"{len(only_true)} only in {true_dir} {only_true[:3]}"
        )
    if not preds:
        raise CliError(f"no masks in {pred_dir} (looked for {', '.join(MASK_EXTENSIONS)})")
    pred_lookup, true_lookup = _lookup_table(pred_values), _lookup_table(true_values)
    pred_masks, true_masks = [], []
    for stem in sorted(preds):
        p, t = read_mask(preds[stem], pred_lookup), read_mask(trues[stem], true_lookup)
        if p.shape != t.shape:
            raise CliError(f"{preds[stem]} is {p.shape[0]}x{p.shape[1]} but {trues[stem]} is {t.shape[0]}x{t.shape[1]}")
        pred_masks.append(p)
        true_masks.append(t)
    return pred_masks, true_masks


def run_inspect(args: argparse.Namespace) -> int:
    """The ``inspect`` command (see ``--help``)."""
    pred_dir, true_dir = require_dir(args.pred_dir, "predicted-mask"), require_dir(args.true_dir, "true-mask")
    true_values = parse_mask_values(args.mask_values)
    pred_values = parse_mask_values(args.pred_mask_values) if args.pred_mask_values else true_values
    preds, trues = read_mask_pairs(pred_dir, true_dir, pred_values, true_values)
    names = parse_list(args.class_names)
    settings = InspectorSettings(
        band_width=args.band_width, boundary_tolerance=args.tolerance, small_object_size=args.small_object_size,
        weak_iou=args.weak_iou,
    )
    k = args.classes or (len(names) if names else None)
    report = inspect_masks(preds, trues, k, names, args.ignore_index, settings)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_markdown())
    return 0


# -- progress ---------------------------------------------------------------------------------------

PROGRESS_MODULE = "unet_helpers.checks.progress"


def run_progress(args: argparse.Namespace) -> int:
    """The ``progress`` command: hand every argument to ``unet_helpers.checks.progress.main``."""
    try:
        module = importlib.import_module(PROGRESS_MODULE)
    except ModuleNotFoundError as error:
        if error.name != PROGRESS_MODULE:
            raise
        raise CliError(f"the progress command needs {PROGRESS_MODULE}, which this installation does not have; update unet_helpers") from error
    return int(module.main(list(args.rest)) or 0)


# -- parser -----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m unet_helpers``."""
    from .cli_train import add_train_arguments, run_train

    parser = argparse.ArgumentParser(prog="python -m unet_helpers", description="U-Net course tools: train, predict, inspect, progress.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a U-Net (synthetic shapes by default, or --data DIR)", description=run_train.__doc__)
    add_train_arguments(train)
    train.set_defaults(func=run_train)

    pred = commands.add_parser("predict", help="predict masks for a folder of images", description=(
        "Predict a PNG mask for every image in INPUT. Images larger than --tile are predicted tile by tile "
        "(predict_tiled). Never overwrites: OUT may not be INPUT or inside it, and existing files need --overwrite."))
    pred.add_argument("checkpoint", help="a .pt file written by train (last.pt or best.pt)")
    pred.add_argument("input", help="folder of images (PNG, TIFF, JPEG, BMP; any size)")
    pred.add_argument("out", help="folder for the masks (NAME.png per image)")
    pred.add_argument("--tile", type=int, default=256, help="tile size for images larger than it (default 256)")
    pred.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (default 0.25)")
    pred.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass (default 4)")
    pred.add_argument("--stored-values", action="store_true", help="write the raw values the checkpoint's masks used (e.g. 1 -> 255)")
    pred.add_argument("--mask-values", help="write raw values by this mapping instead, e.g. 0:0,255:1 writes class 1 as 255")
    pred.add_argument("--classes", type=int, help="expected number of classes (checked against the checkpoint)")
    _add_common(pred)

    insp = commands.add_parser("inspect", help="explain the scores of predicted masks against true masks", description=(
        "Pair PRED_DIR and TRUE_DIR masks by file name and print the mask inspector's report: class distribution, "
        "per-class scores, boundary blur, small-object recall, and one diagnosis per weak class."))
    insp.add_argument("pred_dir", help="folder of predicted masks")
    insp.add_argument("true_dir", help="folder of true masks (e.g. DATA/masks)")
    insp.add_argument("--mask-values", help="raw value -> class id of the true masks, e.g. 0:0,255:1")
    insp.add_argument("--pred-mask-values", help="the same for the predicted masks (default: --mask-values)")
    insp.add_argument("--classes", type=int, help="number of classes K (default: from --class-names or the masks)")
    insp.add_argument("--class-names", help="comma-separated class names, e.g. background,nucleus")
    insp.add_argument("--ignore-index", type=int, help="class id of unlabelled pixels")
    insp.add_argument("--band-width", type=int, default=2, help="boundary band, pixels on each side of a true edge (default 2)")
    insp.add_argument("--tolerance", type=float, default=2.0, help="boundary F1 tolerance in pixels (default 2)")
    insp.add_argument("--small-object-size", type=int, default=64, help="objects below this many pixels are small (default 64)")
    insp.add_argument("--weak-iou", type=float, default=0.75, help="classes below this IoU get a diagnosis (default 0.75)")
    insp.add_argument("--json", action="store_true", help="print the report as JSON instead of Markdown")
    insp.set_defaults(func=run_inspect)

    prog = commands.add_parser("progress", add_help=False, help="exercise progress (unet_helpers.checks.progress)",
                               description="Show exercise progress; all arguments go to unet_helpers.checks.progress.")
    prog.add_argument("rest", nargs=argparse.REMAINDER)
    prog.set_defaults(func=run_progress)
    pred.set_defaults(func=run_predict)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 success, 1 a reported error, 2 bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["progress"]:  # everything after it, --help included, belongs to the progress module
        args = argparse.Namespace(func=run_progress, rest=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ValueError, OSError) as error:
        if getattr(args, "rank", 0) == 0:
            message = " ".join(str(error).split())  # one line, whatever the exception held
            print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
