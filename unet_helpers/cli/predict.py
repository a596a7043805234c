"""``python -m unet_helpers predict [CHECKPOINT] INPUT OUT``: a PNG mask for every image in a folder.

Each image is read and scaled exactly as ``SegmentationFolder`` did in training (``image_file.load_image``
with the model's channels and scaling); images larger than ``--tile`` are predicted tile by tile
(``inference.predict_tiled``). The model is a checkpoint of ``train`` (``.pt``) or an ONNX file of
``export``: ``--onnx model.onnx`` instead of the checkpoint argument, or a checkpoint argument
ending in ``.onnx`` (the same thing). An ONNX file is run by ONNX Runtime on the CPU with the
channels, classes, scaling and mask values its metadata carries (``deploy.onnx_runtime``).

Images above ``--stream-above`` pixels (default 4096 x 4096, read from the file's header) are
whole slides: they are streamed band by band (``slides.stream.predict_slide``: memory bounded by
the width, a progress bar over tiles) into ``NAME.ome.tif``, a tiled, pyramidal OME-TIFF, and
``--resume`` continues an interrupted slide from its last finished band. ``--tta flips`` or
``--tta d4`` averages the predictions of flipped (and turned) copies (``tta.TTA``).

Masks are written atomically (``atomic.atomic_path``; the OME-TIFF is written beside and renamed):
a symlink in OUT is replaced, never followed, so an input can never be overwritten through one.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..image_file import IMAGE_EXTENSIONS, load_image
from ..folder import files_by_stem
from ..inference import predict, predict_tiled
from ..runtime import get_device
from ..slides.stream import STREAM_ABOVE_PIXELS, predict_slide, should_stream
from ..tta import TTA, TTA_MODES
from .common import (CliError, add_common_arguments, check_output_folder, fraction, parse_device, parse_mask_values,
                     positive_int, require_dir, write_png)

DESCRIPTION = (
    "Predict a PNG mask for every image in INPUT. Images larger than --tile are predicted tile by tile "
    "(predict_tiled). The model is a checkpoint of train (.pt) or an ONNX file of export (--onnx FILE, or a "
    "CHECKPOINT ending in .onnx). Never overwrites: OUT may not be INPUT or inside it, and existing files need --overwrite."
)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``predict`` options to ``parser``."""
    parser.add_argument("paths", nargs="+", metavar="[CHECKPOINT] INPUT OUT",
                        help="a .pt file written by train (last.pt or best.pt; omitted with --onnx), the folder of "
                             "images (PNG, TIFF, JPEG, BMP; any size) and the folder for the masks (NAME.png per image)")
    parser.add_argument("--onnx", metavar="FILE", help="run this ONNX file (from the export command) with ONNX Runtime instead")
    parser.add_argument("--tile", type=positive_int, default=256, help="tile size for images larger than it (default 256)")
    parser.add_argument("--overlap", type=fraction, default=0.25, help="tile overlap fraction in [0, 1) (default 0.25)")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="tiles per forward pass (default 4)")
    parser.add_argument("--stored-values", action="store_true", help="write the raw values the model's masks used (e.g. 1 -> 255)")
    parser.add_argument("--mask-values", help="write raw values by this mapping instead, e.g. 0:0,255:1 writes class 1 as 255")
    parser.add_argument("--classes", type=positive_int, help="expected number of classes (checked against the model)")
    parser.add_argument("--tta", choices=sorted(TTA_MODES),
                        help="test-time augmentation: average the flipped (flips: 4 passes) or also turned (d4: 8) copies")
    parser.add_argument("--stream-above", type=positive_int, default=STREAM_ABOVE_PIXELS, metavar="PIXELS",
                        help=f"stream images with more pixels than this into NAME.ome.tif (default {STREAM_ABOVE_PIXELS:,})")
    parser.add_argument("--resume", action="store_true", help="continue interrupted streamed slides from their last finished band")
    add_common_arguments(parser)


@dataclass
class LoadedModel:
    """What ``predict`` needs of a model, from a checkpoint or an ONNX file."""

    source: Path
    num_classes: int  # K of the output (1: one binary logit, class ids 0 and 1)
    in_channels: int
    min_size: int  # smallest H and W the model accepts
    normalize: str | None
    mask_values: dict[int, int] | None
    run: Callable[..., torch.Tensor]  # run(image, tiled: bool, args) -> probs (K', H, W)
    module: torch.nn.Module | None = None  # the PyTorch model (TTA-wrapped with --tta); None for ONNX


def stored_value_table(mapping: dict[int, int] | None, num_classes: int) -> np.ndarray | None:
    """``(K,)`` raw value to write for each class id (the smallest raw value mapped to it), or ``None``.

    A one-logit binary model (``num_classes == 1``) predicts class ids 0 and 1, so its table has two
    entries. Every class must have a raw value: writing a class id as itself could collide with a
    raw value that means another class.

    >>> stored_value_table({0: 0, 255: 1}, 1).tolist()
    [0, 255]
    """
    if mapping is None:
        return None
    classes = max(num_classes, 2)  # one binary logit still gives ids 0 and 1
    table = np.full(classes, -1, dtype=np.int64)
    for raw, cls in sorted(mapping.items(), reverse=True):  # the smallest raw value wins for a class
        if int(cls) < classes:
            table[int(cls)] = int(raw)
    missing = np.flatnonzero(table < 0).tolist()
    if missing:
        raise CliError(
            f"the mask mapping {mapping} gives no raw value for class(es) {missing[:5]} of the model's {classes}; "
            "pass --mask-values with one raw value per class, e.g. " + ",".join(f"{v}:{c}" for c, v in enumerate((0, 255)))
        )
    return table


def _min_size(model: torch.nn.Module) -> int:
    config = model.config
    return 2 ** config.depth if hasattr(config, "depth") else 32  # EncoderUNet: the encoder halves five times


def load_model(args: argparse.Namespace, checkpoint: str | None) -> LoadedModel:
    """The checkpoint or ONNX file of the command line, ready to predict."""
    if args.onnx is not None:
        if args.device is not None:
            raise CliError("--device does not apply to --onnx: ONNX files run with ONNX Runtime's CPU provider")
        if args.tta is not None:
            raise CliError("--tta applies to checkpoints, not to --onnx; predict with the checkpoint the ONNX file was exported from")
        from ..deploy.onnx_runtime import OnnxPredictor

        try:
            predictor = OnnxPredictor(args.onnx)
        except ModuleNotFoundError as error:
            raise CliError(str(error)) from None
        meta = predictor.metadata

        def run_onnx(image: torch.Tensor, tiled: bool) -> torch.Tensor:
            if tiled:
                return predictor.predict_tiled(image, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size,
                                               return_probs=True)[1]
            return predictor.predict(image, return_probs=True)[1]

        return LoadedModel(Path(args.onnx), meta.num_classes, meta.in_channels, meta.min_size, meta.normalize,
                           meta.mask_values, run_onnx)
    loaded = load_checkpoint(checkpoint)
    model, extra = loaded["model"], loaded["extra"]
    model.to(get_device(parse_device(args.device)))
    mapping = extra.get("mask_values")
    if mapping is not None and not isinstance(mapping, dict):
        raise CliError(f"checkpoint {checkpoint} stores mask values {mapping!r}, not a dict; it was not written by train")
    in_channels, num_classes, min_size = model.config.in_channels, model.config.num_classes, _min_size(model)
    if args.tta is not None:
        model = TTA(model, args.tta)  # its outputs are log-probabilities: scores_to_probs gives the mean back

    def run_torch(image: torch.Tensor, tiled: bool) -> torch.Tensor:
        if tiled:
            return predict_tiled(model, image, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size, return_probs=True)[1]
        return predict(model, image, return_probs=True)[1]

    return LoadedModel(Path(checkpoint), num_classes, in_channels, min_size, extra.get("normalize", "unit"), mapping,
                       run_torch, model)


def run_predict(args: argparse.Namespace) -> int:
    """The ``predict`` command (see ``--help``)."""
    paths = list(args.paths)
    if args.onnx is None and len(paths) == 3 and paths[0].lower().endswith(".onnx"):
        args.onnx = paths.pop(0)  # a checkpoint argument ending in .onnx is the same as --onnx
    expected = 2 if args.onnx is not None else 3
    if len(paths) != expected:
        usage = "predict --onnx FILE INPUT OUT" if args.onnx is not None else "predict CHECKPOINT INPUT OUT"
        raise CliError(f"expected {expected} paths ({usage}); got {len(paths)}: {paths}")
    checkpoint, (input_dir, out_dir) = (None if args.onnx else paths[0]), paths[-2:]
    source = require_dir(input_dir, "input")
    images = files_by_stem(source, IMAGE_EXTENSIONS)  # two files with one stem are refused here
    if not images:
        raise CliError(f"no images in {source} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    out = Path(out_dir)
    streamed = {stem for stem, path in images.items() if should_stream(path, args.stream_above)}  # headers only
    if args.onnx is not None and streamed:
        raise CliError(f"{len(streamed)} image(s) have more than --stream-above {args.stream_above:,} pixels (e.g. "
                       f"{images[sorted(streamed)[0]].name}); whole slides are streamed with a checkpoint, not --onnx")
    planned = {stem: out / (f"{stem}.ome.tif" if stem in streamed else f"{stem}.png") for stem in images}
    check_output_folder(out, [source], list(planned.values()), args.overwrite)
    if args.mask_values and args.stored_values:
        raise CliError("pass --stored-values or --mask-values, not both")
    model = load_model(args, checkpoint)
    k = model.num_classes
    if args.classes is not None and args.classes != max(k, 2) and args.classes != k:
        raise CliError(f"model {model.source} predicts {k} classes but --classes is {args.classes}")
    if args.tile < model.min_size:
        raise CliError(f"--tile {args.tile} is smaller than the {model.min_size} px the model needs; use --tile {model.min_size} or more")
    mapping = parse_mask_values(args.mask_values) if args.mask_values else (model.mask_values if args.stored_values else None)
    if args.stored_values and mapping is None:
        raise CliError(f"model {model.source} stores no mask values (it was trained on ids); drop --stored-values")
    to_stored = stored_value_table(mapping, k)
    out.mkdir(parents=True, exist_ok=True)
    for stem, path in images.items():
        if stem in streamed:
            summary = predict_slide(
                model.module, path, planned[stem], tile=args.tile, overlap=args.overlap, batch_size=args.batch_size,
                channels=model.in_channels, normalize=model.normalize,
                class_values=None if to_stored is None else to_stored.tolist(), progress=not args.quiet,
                resume=args.resume, overwrite=args.overwrite,
            )
            if not args.quiet:
                resumed = f", resumed from row {summary.resumed_from_row}" if summary.resumed_from_row else ""
                print(f"{path.name} -> {planned[stem]} ({summary.height}x{summary.width}, streamed{resumed})")
            continue
        image = load_image(path, model.in_channels, model.normalize)  # (C, H, W), scaled as in training
        height, width = image.shape[-2:]
        if min(height, width) < model.min_size:
            raise CliError(f"image {path} is {height}x{width} but the model needs at least {model.min_size} px on each "
                           "side; pad it, or leave it out")
        probs = model.run(image, tiled=max(height, width) > args.tile)  # (K', H, W)
        if not torch.isfinite(probs).all():
            raise CliError(f"the model's output for {path} holds NaN or infinite values; the model {model.source} is "
                           "broken (did training diverge?) or the image holds extreme values")
        ids = probs.max(dim=0).indices.numpy()  # (H, W); = argmax over classes
        write_png(planned[stem], ids if to_stored is None else to_stored[ids])
        if not args.quiet:
            print(f"{path.name} -> {planned[stem]} ({height}x{width})")
    print(f"wrote {len(images)} mask(s) to {out}")
    return 0
