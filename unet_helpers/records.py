"""What a training run records: ``TrainSummary``, ``Evaluation`` and one ``EpochRecord`` per epoch.

Built up in ``notebooks/06_training.ipynb``. ``train.evaluate`` returns an ``Evaluation``;
``train.fit`` returns a list of ``EpochRecord``; the progress bar, the training dashboard, the
``metrics.jsonl`` of the ``train`` command and checkpoints all read these same fields.

Undefined values (IoU of a class absent from the validation set, the loss when no loss function
was given) are NaN in memory, never ``None``; they become ``null`` only in JSON (``to_json``,
``json_safe``), and ``from_json`` turns them back into NaN.

Shapes: ``K`` classes; preview images ``(n, C, H, W)``, masks ``(n, H, W)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .metrics import ConfusionMatrix

NAN = math.nan


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` and NumPy/torch scalars and tensors
    turned into plain Python numbers and lists: what ``json.dumps`` writes as standard JSON.

    >>> json_safe({"iou": [0.5, float("nan")], "n": np.int64(3)})
    {'iou': [0.5, None], 'n': 3}
    """
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, torch.Tensor):
        return json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _float(value: Any) -> float:
    """JSON's ``null`` (and ``None``) back to NaN."""
    return NAN if value is None else float(value)


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(_float(v) for v in values or ())


@dataclass(frozen=True)
class TrainSummary:
    """The training half of an epoch."""

    loss: float  # mean loss over the epoch, weighted by batch size (NaN: no batch ran)
    parts: dict[str, float] = field(default_factory=dict)  # means of the parts the loss reported

    def to_json(self) -> dict[str, Any]:
        return json_safe({"loss": self.loss, "parts": self.parts})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainSummary":
        return cls(_float(data.get("loss")), {k: _float(v) for k, v in (data.get("parts") or {}).items()})


@dataclass(frozen=True)
class Preview:
    """A few validation images with their true and predicted masks, kept by ``evaluate(preview=n)``.

    Shape:
        - ``images``: ``(n, C, H, W)``; ``targets``, ``preds``: ``(n, H, W)``; all on the CPU
    """

    images: torch.Tensor
    targets: torch.Tensor
    preds: torch.Tensor


@dataclass(frozen=True)
class Evaluation:
    """Validation of one model on one set, from counts accumulated over every batch.

    Per-class tuples have ``K`` entries, NaN where a score is undefined (see ``metrics.py``).
    ``preview`` is not part of the JSON form.
    """

    loss: float  # NaN without a loss function
    parts: dict[str, float]
    iou: tuple[float, ...]
    dice: tuple[float, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    miou: float
    mean_dice: float
    pixel_accuracy: float
    confusion: ConfusionMatrix
    preview: Preview | None = None

    @classmethod
    def from_counts(
        cls, confusion: ConfusionMatrix, loss: float = NAN, parts: dict[str, float] | None = None,
        preview: Preview | None = None,
    ) -> "Evaluation":
        """Every score of ``confusion`` (a filled ``ConfusionMatrix``) plus the mean loss."""
        return cls(
            loss=float(loss), parts=dict(parts or {}),
            iou=tuple(confusion.iou().tolist()), dice=tuple(confusion.dice().tolist()),
            precision=tuple(confusion.precision().tolist()), recall=tuple(confusion.recall().tolist()),
            miou=confusion.miou(), mean_dice=confusion.mean_dice(), pixel_accuracy=confusion.pixel_accuracy(),
            confusion=confusion, preview=preview,
        )

    def to_json(self) -> dict[str, Any]:
        return json_safe({
            "loss": self.loss, "parts": self.parts, "iou": self.iou, "dice": self.dice,
            "precision": self.precision, "recall": self.recall, "miou": self.miou, "mean_dice": self.mean_dice,
            "pixel_accuracy": self.pixel_accuracy,
            "confusion": {"matrix": self.confusion.matrix, "ignore_index": self.confusion.ignore_index},
        })

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Evaluation":
        counts = torch.tensor(data["confusion"]["matrix"], dtype=torch.int64)
        confusion = ConfusionMatrix(counts.shape[0], data["confusion"].get("ignore_index"))
        confusion.matrix = counts
        return cls(
            loss=_float(data.get("loss")), parts={k: _float(v) for k, v in (data.get("parts") or {}).items()},
            iou=_floats(data.get("iou")), dice=_floats(data.get("dice")), precision=_floats(data.get("precision")),
            recall=_floats(data.get("recall")), miou=_float(data.get("miou")), mean_dice=_float(data.get("mean_dice")),
            pixel_accuracy=_float(data.get("pixel_accuracy")), confusion=confusion,
        )


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of ``fit``: the training summary, the validation (``None`` without a validation
    set), the learning rate the epoch trained with, and its wall-clock seconds."""

    epoch: int
    train: TrainSummary
    val: Evaluation | None
    lr: float
    seconds: float

    @property
    def miou(self) -> float:
        """Validation mIoU, NaN without validation."""
        return self.val.miou if self.val is not None else NAN

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready form (``null`` for undefined values): one line of ``metrics.jsonl``."""
        return {
            "epoch": self.epoch, "train": self.train.to_json(),
            "val": None if self.val is None else self.val.to_json(),
            "lr": json_safe(self.lr), "seconds": json_safe(self.seconds),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EpochRecord":
        """The inverse of ``to_json`` (e.g. a history read back from a checkpoint)."""
        val = data.get("val")
        return cls(int(data["epoch"]), TrainSummary.from_json(data["train"]),
                   None if val is None else Evaluation.from_json(val), _float(data.get("lr")), _float(data.get("seconds")))


History = list[EpochRecord]
