"""Command line: ``python -m unet_helpers {train,predict,inspect,export,progress} ...`` (``--help`` on each).

Introduced in ``notebooks/09_real_data.ipynb``; the course's notebooks do the same steps by hand.
One module per command (``train.py``, ``predict.py``, ``inspect.py``, ``export.py``, ``progress.py``),
the shared argument helpers in ``common.py`` and the multi-process set-up of ``train`` in
``distributed.py``.

- ``train``: the built-in synthetic shapes (default, needs no data) or ``--data DIR`` holding
  ``images/`` + ``masks/``; writes ``last.pt``, ``best.pt`` and ``metrics.jsonl`` into ``--out``.
  Runs under ``torchrun --nproc_per_node=N -m unet_helpers train ...`` too.
- ``predict``: a folder of images of any size to PNG masks (tiled when larger than ``--tile``), with
  a checkpoint or an ONNX file (``--onnx``).
- ``inspect``: a folder of predicted masks against true masks -> the mask inspector's report.
- ``export``: a checkpoint to an ONNX file.
- ``progress``: the exercise progress of ``course/progress.py``.

Every problem a user can cause (a bad option value, a missing folder, names or sizes that do not
pair up, an unreadable or hostile file, a checkpoint for another number of classes, a file that
would be overwritten) ends with one ``error: ...`` line on stderr and exit code 1: the
``CliError``, ``ValueError`` and ``OSError`` that the commands and the library raise for them. An
internal bug (any other exception) still shows its traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import CliError, CliParser, pixel_limit
from .export import DESCRIPTION as EXPORT_DESCRIPTION
from .export import add_export_arguments, run_export
from .inspect import DESCRIPTION as INSPECT_DESCRIPTION
from .inspect import add_inspect_arguments, run_inspect
from .predict import DESCRIPTION as PREDICT_DESCRIPTION
from .predict import add_predict_arguments, run_predict
from .progress import run_progress
from .train import add_train_arguments, run_train


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m unet_helpers`` (its errors are ``CliError``)."""
    parser = CliParser(prog="python -m unet_helpers", description="U-Net course tools: train, predict, inspect, export, progress.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a U-Net (synthetic shapes by default, or --data DIR)", description=run_train.__doc__)
    add_train_arguments(train)
    train.set_defaults(func=run_train)

    predict = commands.add_parser("predict", help="predict masks for a folder of images", description=PREDICT_DESCRIPTION)
    add_predict_arguments(predict)
    predict.set_defaults(func=run_predict)

    inspect = commands.add_parser("inspect", help="explain the scores of predicted masks against true masks",
                                  description=INSPECT_DESCRIPTION)
    add_inspect_arguments(inspect)
    inspect.set_defaults(func=run_inspect)

    export = commands.add_parser("export", help="export a checkpoint to an ONNX file", description=EXPORT_DESCRIPTION)
    add_export_arguments(export)
    export.set_defaults(func=run_export)

    progress = commands.add_parser("progress", add_help=False, help="exercise progress (course/progress.py)",
                                   description="Show exercise progress; all arguments go to unet_helpers.course.progress.")
    progress.add_argument("rest", nargs=argparse.REMAINDER)
    progress.set_defaults(func=run_progress)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 success, 1 a reported error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = argparse.Namespace()
    try:
        if argv[:1] == ["progress"]:  # everything after it, --help included, belongs to the progress runner
            args = argparse.Namespace(func=run_progress, rest=argv[1:])
        else:
            args = build_parser().parse_args(argv)
        with pixel_limit(getattr(args, "max_pixels", None)):
            return args.func(args)
    except (CliError, ValueError, OSError) as error:
        if getattr(args, "rank", 0) == 0:
            message = " ".join(str(error).split()) or type(error).__name__  # one line, whatever the exception held
            print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
