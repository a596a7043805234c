"""``python -m unet_helpers export CHECKPOINT model.onnx``: a checkpoint of ``train`` as one ONNX file.

Calls ``deploy.export.export_checkpoint`` (dynamic batch, height and width; the class names, image
scaling and mask values of the checkpoint in the file's metadata, so ``predict --onnx model.onnx``
needs nothing else). An ``EncoderUNet`` checkpoint is exported the same way with its smallest size
(32 px). Needs ``onnx`` and ``onnxscript``; without them the error gives the pip command.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint
from ..deploy.export import LOWEST_OPSET, export_checkpoint, export_onnx
from ..encoders.unet import ENCODER_STRIDE, EncoderUNet
from .common import CliError, positive_int

DESCRIPTION = (
    "Export a checkpoint of train (last.pt, best.pt) to an ONNX file with dynamic batch, height and width, "
    "carrying the class names, image scaling and mask values; run it with predict --onnx FILE."
)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``export`` options to ``parser``."""
    parser.add_argument("checkpoint", help="a .pt file written by train")
    parser.add_argument("onnx", help="the .onnx file to write")
    parser.add_argument("--opset", type=positive_int, help=f"ONNX operator set, >= {LOWEST_OPSET} (default: PyTorch's recommended one)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing .onnx file")


def run_export(args: argparse.Namespace) -> int:
    """The ``export`` command (see ``--help``)."""
    checkpoint, target = Path(args.checkpoint), Path(args.onnx)
    if args.opset is not None and args.opset < LOWEST_OPSET:
        raise CliError(f"--opset {args.opset}: the exporter writes opset {LOWEST_OPSET} or later")
    if target.suffix.lower() != ".onnx":
        raise CliError(f"the ONNX file should end in .onnx; got {target.name!r} (did you swap CHECKPOINT and the output?)")
    if target.is_dir():
        raise CliError(f"{target} is a folder; give the .onnx file to write")
    try:
        loaded = load_checkpoint(checkpoint)
        model, extra = loaded["model"], loaded["extra"]
        if isinstance(model, EncoderUNet):  # not a UNet: give its input and smallest size
            size = 2 * ENCODER_STRIDE
            example = torch.randn(2, model.config.in_channels, size, size, generator=torch.Generator().manual_seed(0))
            export_onnx(model, target, example=example, min_size=ENCODER_STRIDE,
                        class_names=extra.get("class_names"), normalize=extra.get("normalize"),
                        mask_values=extra.get("mask_values"), opset=args.opset, overwrite=args.overwrite)
        else:
            export_checkpoint(checkpoint, target, opset=args.opset, overwrite=args.overwrite)
    except ModuleNotFoundError as error:  # onnx / onnxscript missing: the message holds the pip command
        raise CliError(str(error)) from None
    print(f"wrote {target} from {checkpoint}")
    return 0

