"""The mask inspector: *why* is a segmentation score bad?

Built in ``notebooks/07_diagnosis.ipynb`` (the lesson's "Ship It" skill, made real); also run by
``python -m unet_helpers inspect PRED_DIR TRUE_DIR``. ``inspection.py`` takes the masks,
``counts.py`` counts (one named field per count), ``report.py`` turns the counts into the report,
``settings.py`` holds the thresholds. How to read the report and what to do about
each diagnosis: ``outputs/skill-segmentation-mask-inspector.md``.

``inspect_masks(preds, targets)`` compares predicted with true class-id masks, accumulating every
count over all images (like ``ConfusionMatrix``), and measures per class:

- **distribution**: true share and predicted share of the counted pixels, and their ratio
  ``predicted / true``. Below ``under_ratio`` (0.8) the class is *under-predicted*, above
  ``over_ratio`` (1.25) *over-predicted*.
- **scores**: IoU, Dice, precision, recall (``ConfusionMatrix``) and boundary F1 within
  ``boundary_tolerance`` pixels (``boundary.boundary_counts``, summed over images).
- **boundary band**: the band is every pixel closer than ``band_width`` pixels to an edge of the
  true mask of the class (``band_width`` pixels on each side of the edge). IoU inside the band vs
  IoU in the rest ("interior").
- **objects**: the true objects of the class are its connected components (``connectivity`` 8 by
  default). An object is *found* when at least ``found_fraction`` (half) of its pixels are
  predicted as its class. Recall = found / objects, per size bucket (``size_buckets`` edges in
  pixels) and for *small* (``< small_object_size`` pixels) vs larger objects.
- **where the wrong pixels are**: every wrong pixel of a class (a false negative or a false
  positive) goes to exactly one of five groups, in this order: a pixel of a *missed small* object,
  of a *missed large* object, within the *boundary* band, a *missed pixel inside* a found object,
  a *false alarm* away from any true edge of the class.

Flags and the diagnosis (thresholds are ``InspectorSettings`` fields):

- *boundary-blurred*: at least ``boundary_share`` of the class's wrong pixels lie in the band, and
  band IoU is at least 0.1 below interior IoU (or the class has no interior).
- *loses small objects*: small-object recall is at least ``small_recall_gap`` below the recall of
  larger objects (below 1.0 when there are none).
- a class is *weak* when its IoU is below ``weak_iou``; each weak class gets one diagnosis, named
  after the group holding most of its wrong pixels: ``"small_objects"`` (missed small objects, when
  the class also loses small objects; otherwise the misses are size-blind and count as
  under-prediction), ``"boundary"``, ``"imbalance"`` (missed objects or pixels while the class is
  under-predicted, or false alarms while it is over-predicted), else ``"confusion"`` (pixels
  traded with another class at about the right total amount).

Shapes: ``N`` images, ``K`` classes, ``H, W`` height and width (may differ between images).
"""
from .inspection import inspect_masks
from .report import ClassReport, Diagnosis, MaskReport
from .settings import InspectorSettings

__all__ = ["ClassReport", "Diagnosis", "InspectorSettings", "MaskReport", "inspect_masks"]
