"""``python -m unet_helpers predict CHECKPOINT INPUT OUT``: a PNG mask for every image in a folder.

Each image is read and scaled exactly as ``SegmentationFolder`` did in training (``folder.load_image``
with the checkpoint's channels and scaling); images larger than ``--tile`` are predicted tile by
tile (``inference.predict_tiled``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ..checkpoint import load_checkpoint
from ..folder import IMAGE_EXTENSIONS, files_by_stem, load_image
from ..inference import predict, predict_tiled
from ..runtime import get_device
from .common import CliError, add_common_arguments, check_output_folder, parse_mask_values, require_dir

DESCRIPTION = (
    "Predict a PNG mask for every image in INPUT. Images larger than --tile are predicted tile by tile "
    "(predict_tiled). Never overwrites: OUT may not be INPUT or inside it, and existing files need --overwrite."
)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``predict`` options to ``parser``."""
    parser.add_argument("checkpoint", help="a .pt file written by train (last.pt or best.pt)")
    parser.add_argument("input", help="folder of images (PNG, TIFF, JPEG, BMP; any size)")
    parser.add_argument("out", help="folder for the masks (NAME.png per image)")
    parser.add_argument("--tile", type=int, default=256, help="tile size for images larger than it (default 256)")
    parser.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (default 0.25)")
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass (default 4)")
    parser.add_argument("--stored-values", action="store_true", help="write the raw values the checkpoint's masks used (e.g. 1 -> 255)")
    parser.add_argument("--mask-values", help="write raw values by this mapping instead, e.g. 0:0,255:1 writes class 1 as 255")
    parser.add_argument("--classes", type=int, help="expected number of classes (checked against the checkpoint)")
    add_common_arguments(parser)


def stored_value_table(mapping: dict[int, int] | None, num_classes: int) -> np.ndarray | None:
    """``(K,)`` raw value to write for each class id (the smallest raw value mapped to it), or ``None``."""
    if mapping is None:
        return None
    table = np.arange(num_classes, dtype=np.int64)
    for raw, cls in sorted(mapping.items(), reverse=True):  # the smallest raw value wins for a class
        if int(cls) < num_classes:
            table[int(cls)] = int(raw)
    return table


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
    to_stored = stored_value_table(mapping, k)
    images = files_by_stem(source, IMAGE_EXTENSIONS)
    if not images:
        raise CliError(f"no images in {source} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    out = Path(args.out)
    check_output_folder(out, [source], [out / f"{stem}.png" for stem in images], args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    model.to(get_device(args.device))
    channels, normalize = model.config.in_channels, extra.get("normalize", "unit")
    for stem, path in images.items():
        image = load_image(path, channels, normalize)  # (C, H, W), scaled as in training
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
