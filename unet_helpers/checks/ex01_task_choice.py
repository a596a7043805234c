"""Check of exercise 01: choose the segmentation task and an architecture for described problems.

``my_answers()`` returns ``{problem: (task, architecture)}`` for the problems in ``PROBLEMS``; a
task is one of ``TASKS``, an architecture one of ``ARCHITECTURES``. Each problem is one property:
it passes when the task is right and the architecture is one that fits; the feedback gives the
reason either way. A problem left out (or answered ``None``) is "not written yet", so a partly
answered quiz is *incomplete*, not wrong.

The rules behind the answers are lesson 01's (``unet_helpers/views/tasks.py``: ``pick_task``):
touching objects that must be told apart need ids (instance), background regions that need a
class too make it panoptic; U-Net for small precise datasets, DeepLabV3+/SegFormer for large
scenes, Mask R-CNN for instances, Mask2Former for panoptic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .core import LearnerError, Property, PropertyFailed
from .isolation import call_learner
from .spec import ExerciseSpec

TASKS = ("semantic", "instance", "panoptic")
UNET, SCENES, MASK_RCNN, PANOPTIC, SEPARATING = (
    "U-Net", "DeepLabV3+ or SegFormer", "Mask R-CNN", "Mask2Former", "U-Net + touching-object separation")
ARCHITECTURES = (UNET, SCENES, MASK_RCNN, PANOPTIC, SEPARATING)


@dataclass(frozen=True)
class Problem:
    """One described problem and what fits it.

    Args:
        key: the dict key of the answer.
        text: the problem as the learner reads it.
        task: the right task.
        architectures: the architectures that fit (the first one is the course's pick).
        why_task: why that task.
        why_architecture: why those architectures.
    """

    key: str
    text: str
    task: str
    architectures: tuple[str, ...]
    why_task: str
    why_architecture: str


PROBLEMS = (
    Problem("tumour outline", "Outline the tumour in every MRI slice for a radiotherapy plan; 300 labelled slices; the "
            "edge must be right to a pixel or two.", "semantic", (UNET,),
            "one class per pixel is all the plan needs; there is one tumour region, nothing to tell apart",
            "little data and exact boundaries: the U-Net's skips carry the fine detail, and it trains from hundreds of images"),
    Problem("touching nuclei", "Count the cell nuclei in fluorescence images and measure each one; nuclei often touch.",
            "instance", (SEPARATING, MASK_RCNN),
            "touching nuclei merge into one region of a semantic mask, so counting and measuring each needs an id per "
            "nucleus",
            "in microscopy a U-Net whose loss weights the thin gaps between touching cells (the U-Net paper's weight "
            "map), followed by splitting the regions, is the usual choice; Mask R-CNN also fits"),
    Problem("drivable road", "Mark the drivable road surface and the lane markings in a car's camera frames; 20,000 "
            "labelled frames.", "semantic", (SCENES, UNET),
            "road and lane markings are regions (stuff): no object needs its own id",
            "large street scenes with plenty of labels: dilated convolutions (DeepLabV3+) or a transformer encoder "
            "(SegFormer) see the wide context; a U-Net also works"),
    Problem("street panorama", "Give every car and pedestrian its own id, and label road, sidewalk and sky too, for a "
            "self-driving stack.", "panoptic", (PANOPTIC,),
            "things (cars, pedestrians) need ids and stuff (road, sky) needs classes: both at once is panoptic",
            "Mask2Former handles semantic, instance and panoptic in one model"),
    Problem("land cover", "Label every pixel of satellite images as water, forest, field or town.", "semantic",
            (SCENES, UNET), "land cover is all stuff: regions without a count",
            "large scenes: DeepLabV3+ or SegFormer, predicted by tiles; a U-Net also works"),
    Problem("solder joints", "Find the defective solder joints on photos of circuit boards and report how many there "
            "are; joints never touch each other; 400 labelled photos.", "semantic", (UNET,),
            "objects that never touch are counted by the connected regions of a semantic mask: no ids needed",
            "few images and small objects with exact outlines: a U-Net"),
    Problem("cell tracking", "Follow each cell through the frames of a time-lapse movie; cells crowd and touch.",
            "instance", (SEPARATING, MASK_RCNN), "tracking follows each cell, so each one needs its own id",
            "crowded cells in microscopy: a U-Net with touching-object separation (or Mask R-CNN)"),
    Problem("mitochondria area", "Report which share of each electron-microscopy slice is covered by mitochondria.",
            "semantic", (UNET,), "an area share needs the class of every pixel, not which mitochondrion it belongs to "
            "(here mitochondria are stuff; to count them they would be things)",
            "microscopy with few labelled slices and thin structures: a U-Net"),
)


def _answers(fn: Callable[..., Any]) -> dict:
    value = call_learner(fn)
    if not isinstance(value, dict):
        raise PropertyFailed("my_answers() should return a dict {problem: (task, architecture)}.", value,
                             "{'tumour outline': ('semantic', 'U-Net'), ...}", name="returns a dict of answers")
    return value


def _check(problem: Problem) -> Callable[[Callable[..., Any]], None]:
    def run(fn: Callable[..., Any]) -> None:
        answer = _answers(fn).get(problem.key)
        if answer is None:
            raise LearnerError("NotImplementedError", f"no answer for {problem.key!r} yet", "", True)
        if not (isinstance(answer, tuple) and len(answer) == 2):
            raise PropertyFailed(f"{problem.key!r}: answer with a pair (task, architecture).", answer,
                                 "('semantic', 'U-Net')")
        task, architecture = answer
        if task not in TASKS:
            raise PropertyFailed(f"{problem.key!r}: {task!r} is not one of the tasks {list(TASKS)}.", task, list(TASKS))
        if architecture not in ARCHITECTURES:
            raise PropertyFailed(f"{problem.key!r}: {architecture!r} is not one of {list(ARCHITECTURES)}.",
                                 architecture, list(ARCHITECTURES))
        if task != problem.task:
            raise PropertyFailed(f"{problem.key!r}: not {task}. Ask the two questions: must touching objects of one "
                                 "class get different ids? Must the background regions get classes too? Here: "
                                 f"{problem.why_task}.", task, problem.task, hint="Reread the problem for words like "
                                 "count, each, track (ids) and every pixel, area, region (classes).")
        if architecture not in problem.architectures:
            raise PropertyFailed(f"{problem.key!r}: the task is right, but {architecture} does not fit as well: "
                                 f"{problem.why_architecture}.", architecture, " or ".join(problem.architectures))
    return run


def _keys(fn: Callable[..., Any]) -> None:
    unknown = sorted(set(_answers(fn)) - {p.key for p in PROBLEMS})
    if unknown:
        raise PropertyFailed(f"Answers for problems that are not in the list: {unknown}.", unknown, [],
                             hint=f"The problems are {[p.key for p in PROBLEMS]}.")


def _properties() -> list[Property]:
    return [Property("answers only the listed problems", "the keys of the dict", _keys)] + [
        Property(f"{p.key}: task and architecture", f"{p.task}, because {p.why_task}; {' or '.join(p.architectures)}, "
                 f"because {p.why_architecture}", _check(p)) for p in PROBLEMS]


TASK_CHOICE = ExerciseSpec(
    name="task_choice",
    title="Semantic, instance or panoptic, and which architecture",
    notebook="ex01_task_choice",
    task="Complete `my_answers()`: return `{problem: (task, architecture)}` for every problem of the list, a task "
         f"from {list(TASKS)} and an architecture from {list(ARCHITECTURES)}.",
    properties=_properties,
    hints=(
        "Two questions decide the task: must two touching objects of one class get different ids? Must the "
        "background regions get a class too? Yes to both is panoptic, only the first instance, neither semantic.",
        "Counting needs ids only when objects can touch: separate objects are counted by the connected regions of a "
        "semantic mask. An area or a share never needs ids.",
        "Architectures: U-Net for small, precise (microscopy, medical, inspection) sets; DeepLabV3+ or SegFormer for "
        "large street and aerial scenes; for instances in microscopy, a U-Net plus touching-object separation (or "
        "Mask R-CNN); Mask2Former for panoptic.",
    ),
    defines=("my_answers",),
    reference="unet_helpers/views/tasks.py: pick_task (lesson 01's task picker)",
    next_steps="open lesson 01's task picker and describe a project of your own: does it agree with you?",
)
