"""Wrong answers to exercise 01, ``my_answers() -> {problem: (task, architecture)}``."""
from __future__ import annotations

import torch

from unet_helpers.checks.ex01_task_choice import PROBLEMS


def _right():
    return {p.key: (p.task, p.architectures[0]) for p in PROBLEMS}


def everything_semantic():
    """Semantic everywhere: touching objects and the panorama need ids."""
    return {key: ("semantic", arch) for key, (_, arch) in _right().items()}


def counting_is_semantic():
    """Counting nuclei from a semantic mask: touching nuclei merge into one region."""
    return {**_right(), "touching nuclei": ("semantic", "U-Net")}


def panorama_as_instance():
    """Cars and pedestrians get ids, but road, sidewalk and sky need a class too: panoptic."""
    return {**_right(), "street panorama": ("instance", "Mask R-CNN")}


def mask_rcnn_for_an_area():
    """An area share needs no ids: instance segmentation for a semantic question."""
    return {**_right(), "mitochondria area": ("instance", "Mask R-CNN")}


def mask_rcnn_for_a_tumour():
    """Right task, but an instance architecture for one region that needs exact edges from 300 slices."""
    return {**_right(), "tumour outline": ("semantic", "Mask R-CNN")}


def solder_joints_as_instance():
    """Joints never touch: connected components of a semantic mask count them."""
    return {**_right(), "solder joints": ("instance", "Mask R-CNN")}


def misspelt_architecture():
    return {**_right(), "tumour outline": ("semantic", "UNet")}


def extra_problem():
    return {**_right(), "weather forecast": ("semantic", "U-Net")}


def returns_a_list():
    return list(_right().items())


def half_answered():
    """Only the first half answered: incomplete, not wrong."""
    right = _right()
    return {key: right[key] for key in list(right)[: len(right) // 2]}


def seeds_torch():
    """Right answers, but the lesson's `torch.manual_seed(0)` pasted at the top: the caller's random stream
    starts over."""
    torch.manual_seed(0)
    return _right()
