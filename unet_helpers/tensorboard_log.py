"""A ``fit`` callback that writes each epoch to TensorBoard (lesson 06 trains with it optional).

``TensorBoardLog(log_dir)`` is a callback ``f(history, model)`` like any other (see ``train.py``):
after every epoch it writes the epoch's record as scalars to an event file in ``log_dir`` that
``tensorboard --logdir DIR`` shows. Tags:

- ``loss/train``, ``loss/val`` and every loss part (``loss_parts/train/ce`` ...);
- ``val/miou``, ``val/mean_dice``, ``val/pixel_accuracy``;
- per class, named: ``iou/<name>``, ``dice/<name>`` (a class absent from both the prediction and
  the truth has no score: NaN, and an undefined value is not written, so its curve has no point
  at that epoch rather than a 0);
- ``lr`` and ``seconds``;
- with ``preview_images=n``, the first ``n`` validation images with their true and predicted masks
  in the course's class colours (``viz/colors.py``), as one image per epoch: ``preview``.

The global step is the epoch number, so a resumed run continues its curves. TensorBoard's writer
comes from ``torch.utils.tensorboard``, which needs the ``tensorboard`` package (in the course's
requirements); without it the callback refuses at construction, naming the package.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch.nn as nn

from .records import EpochRecord, History, Preview
from .validate import require_positive_int
from .viz.colors import class_names_or_default, colorize_mask, to_display_image


class TensorBoardLog:
    """Write every epoch of ``fit`` to a TensorBoard event file in ``log_dir``.

    Args:
        log_dir: folder for the event files (created; existing event files in it are kept, a new
            file is added beside them).
        class_names: one name per class for the per-class tags; default ``class 0``, ``class 1``, ...
        preview_images: how many validation images to show per epoch (0: none). ``fit`` keeps
            them from its own validation pass, so nothing runs the model again.
    """

    def __init__(self, log_dir: str | Path, class_names: Sequence[str] | None = None, preview_images: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # torch.utils.tensorboard imports the tensorboard package
            raise ImportError(
                f"TensorBoardLog needs the tensorboard package ({error}); install it with "
                "`pip install tensorboard` (the course's requirements.txt pins it)"
            ) from error
        self.preview_images = require_positive_int(preview_images, "preview_images", minimum=0)
        self.class_names = None if class_names is None else [str(name) for name in class_names]
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def __call__(self, history: History, model: nn.Module) -> None:
        record = history[-1]
        self.write(record)
        self.writer.flush()

    def names(self, count: int) -> list[str]:
        """The per-class tag names for ``count`` classes (``ValueError`` if the given names do not match)."""
        return class_names_or_default(self.class_names, count)

    def write(self, record: EpochRecord) -> None:
        """Every scalar of one epoch record at step ``record.epoch``."""
        step = record.epoch
        scalars = {"loss/train": record.train.loss, "lr": record.lr, "seconds": record.seconds}
        scalars |= {f"loss_parts/train/{name}": value for name, value in record.train.parts.items()}
        val = record.val
        if val is not None:
            scalars |= {"loss/val": val.loss, "val/miou": val.miou, "val/mean_dice": val.mean_dice,
                        "val/pixel_accuracy": val.pixel_accuracy}
            scalars |= {f"loss_parts/val/{name}": value for name, value in val.parts.items()}
            names = self.names(len(val.iou))
            scalars |= {f"iou/{name}": value for name, value in zip(names, val.iou)}
            scalars |= {f"dice/{name}": value for name, value in zip(names, val.dice)}
        for tag, value in scalars.items():
            if value is not None and math.isfinite(value):  # undefined (NaN): no point, never a 0
                self.writer.add_scalar(tag, float(value), global_step=step)
        if val is not None and val.preview is not None and self.preview_images:
            grid = preview_grid(val.preview, len(val.iou), val.confusion.ignore_index)
            self.writer.add_image("preview", grid, global_step=step, dataformats="HWC")

    def close(self) -> None:
        """Flush and close the event file (``fit`` does not; call it when training is over)."""
        self.writer.close()


def preview_grid(preview: Preview, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """One row per image: the image (stretched), its true mask, the predicted mask, as uint8 RGB.

    Shape:
        - ``preview.images``: ``(n, C, H, W)``; ``preview.targets``, ``preview.preds``: ``(n, H, W)``
        - returns: ``(n * H, 3 * W, 3)`` uint8
    """
    rows = [
        np.concatenate([to_display_image(image), colorize_mask(target, num_classes, ignore_index),
                        colorize_mask(pred, num_classes)], axis=1)  # (H, 3W, 3) floats in [0, 1]
        for image, target, pred in zip(preview.images, preview.targets, preview.preds)
    ]
    return (np.concatenate(rows, axis=0) * 255).round().astype(np.uint8)  # (n H, 3W, 3)
