"""Which segmentation task, architecture, loss and metric fit a problem: the task picker's logic.

Built in ``notebooks/01_segmentation_tasks.ipynb``; ``views.widgets.TaskPicker`` wires it to controls and
``outputs/prompt-segmentation-task-picker.md`` asks the same questions in words.

The three tasks differ in what a pixel's label must tell apart:

- semantic: the class of every pixel; two touching objects of one class merge into one region;
- instance: a separate id for every countable object ("thing"); amorphous regions ("stuff":
  sky, road, background tissue) get no label;
- panoptic: both at once: every pixel a class, every thing also an id.
"""
from __future__ import annotations

from dataclasses import dataclass, field

DOMAINS = ("microscopy / medical", "driving / street scenes", "satellite / aerial", "documents", "industrial inspection", "other")


@dataclass(frozen=True)
class TaskAdvice:
    """A recommendation with the reasons behind it."""

    task: str  # "semantic", "instance" or "panoptic"
    architecture: str
    loss: str
    metrics: str
    reasons: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        """The advice as a short Markdown block."""
        lines = [
            f"**Task: {self.task} segmentation**",
            f"- architecture: {self.architecture}",
            f"- loss: {self.loss}",
            f"- metrics: {self.metrics}",
            "- because:",
        ]
        return "\n".join(lines + [f"  - {reason}" for reason in self.reasons])


def pick_task(
    separate_objects: bool,
    label_every_pixel: bool,
    domain: str = "other",
    rare_classes: bool = False,
    precise_boundaries: bool = False,
    large_images: bool = False,
    little_data: bool = False,
) -> TaskAdvice:
    """Recommend a task, an architecture, a loss and metrics for a described problem.

    Args:
        separate_objects: must two touching objects of one class get different ids (counting,
            tracking, measuring each object)?
        label_every_pixel: must background regions ("stuff") get classes too?
        domain: one of ``DOMAINS`` (steers the architecture).
        rare_classes: some class covers only a few percent of the pixels.
        precise_boundaries: errors of a pixel or two at the edges matter.
        large_images: images far larger than fit in memory at once (e.g. 2048x2048 and up).
        little_data: hundreds, not tens of thousands, of labelled images.

    Returns:
        A ``TaskAdvice``.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}; got {domain!r}")
    reasons = []
    if separate_objects and label_every_pixel:
        task = "panoptic"
        architecture = "Mask2Former or OneFormer (one model for all three tasks); Panoptic FPN as a lighter baseline"
        reasons.append("each object needs its own id and the background regions need classes too")
        metrics = "panoptic quality (PQ), split into segmentation and recognition quality"
    elif separate_objects:
        task = "instance"
        if domain == "microscopy / medical":
            architecture = ("U-Net plus touching-object separation (a third 'border' class or predicted distance "
                            "maps, then a watershed, as StarDist and Cellpose do; the U-Net paper's border weight map "
                            "keeps thin gaps open); Mask R-CNN when objects are large and few")
            reasons.append("the border weight map keeps objects with a thin gap between them apart, but objects "
                           "that touch stay merged in a two-class mask: a border class or distance maps split them "
                           "(lesson 9)")
        else:
            architecture = "Mask R-CNN (a box per object, then a mask inside each box)"
        reasons.append("touching objects of one class must get different ids")
        metrics = "mask average precision (AP) over IoU thresholds; per-object IoU"
    else:
        task = "semantic"
        if domain == "microscopy / medical" or little_data:
            architecture = "U-Net (skip connections keep exact boundaries; trains well from little data)"
        elif domain in ("driving / street scenes", "satellite / aerial"):
            architecture = ("DeepLabV3+ (dilated convolutions and multi-scale context) or SegFormer "
                            "on large labelled sets")
        else:
            architecture = "U-Net as the first model; DeepLabV3+ or SegFormer when data is plentiful"
        reasons.append("only the class of each pixel matters, not which object it belongs to")
        metrics = "per-class IoU and mIoU (Dice in medical work)"
    if rare_classes:
        loss = "cross-entropy + Dice (Dice ignores how many pixels a class has)"
        reasons.append("a rare class is drowned by the majority in plain cross-entropy")
    else:
        loss = "cross-entropy (add Dice if a class turns out under-predicted)"
    if precise_boundaries:
        metrics += "; boundary F1"
        reasons.append("IoU barely moves when a large object's edge is off by a pixel; boundary F1 does")
    if large_images:
        architecture += "; predict large images by overlapping tiles (predict_tiled)"
        reasons.append("activation memory grows with H x W: tile with overlap, or use dilated convolutions")
    if little_data:
        reasons.append("with little data, augment (flips, rotations, elastic deformation) and start small")
    return TaskAdvice(task, architecture, loss, metrics, reasons)
