"""``python -m unet_helpers inspect PRED_DIR TRUE_DIR``: the mask inspector's report for two folders.

Masks are paired by file stem (``folder.files_by_stem``) and read with ``mask_file.read_mask``; the
report is ``inspector.inspect_masks``'s, as Markdown or ``--json``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..mask_file import MASK_EXTENSIONS, mask_lookup, read_mask
from ..folder import files_by_stem
from ..inspector import InspectorSettings, inspect_masks
from .common import (CliError, add_pixel_limit_argument, non_negative_float, non_negative_int, open_fraction, parse_list,
                     parse_mask_values, positive_int, require_dir)

DESCRIPTION = (
    "Pair PRED_DIR and TRUE_DIR masks by file name and print the mask inspector's report: class distribution, "
    "per-class scores, boundary blur, small-object recall, and one diagnosis per weak class."
)


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``inspect`` options to ``parser``."""
    parser.add_argument("pred_dir", help="folder of predicted masks")
    parser.add_argument("true_dir", help="folder of true masks (e.g. DATA/masks)")
    parser.add_argument("--mask-values", help="raw value -> class id of the true masks, e.g. 0:0,255:1")
    parser.add_argument("--pred-mask-values", help="the same for the predicted masks (default: --mask-values)")
    parser.add_argument("--classes", type=positive_int, help="number of classes K (default: from --class-names or the masks, at most 256)")
    parser.add_argument("--class-names", help="comma-separated class names, e.g. background,nucleus")
    parser.add_argument("--ignore-index", type=non_negative_int, help="class id of unlabelled pixels")
    parser.add_argument("--band-width", type=positive_int, default=2, help="boundary band, pixels on each side of a true edge (default 2)")
    parser.add_argument("--tolerance", type=non_negative_float, default=2.0, help="boundary F1 tolerance in pixels (default 2)")
    parser.add_argument("--small-object-size", type=positive_int, default=64, help="objects below this many pixels are small (default 64)")
    parser.add_argument("--weak-iou", type=open_fraction, default=0.75, help="classes below this IoU get a diagnosis (default 0.75)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of Markdown")
    add_pixel_limit_argument(parser)


def read_mask_pairs(
    pred_dir: Path, true_dir: Path, pred_values: dict | None, true_values: dict | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
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
    pred_lookup, true_lookup = mask_lookup(pred_values), mask_lookup(true_values)
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
    if names and args.classes and len(names) != args.classes:
        raise CliError(f"--class-names lists {len(names)} names but --classes is {args.classes}")
    report = inspect_masks(preds, trues, k, names, args.ignore_index, settings)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_markdown())
    return 0
