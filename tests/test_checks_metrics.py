"""Checks of exercise 4 (IoU from a confusion matrix, dataset IoU): solution, stub, wrong answers."""
from __future__ import annotations

import pytest

from unet_helpers.checks import Status, exercise
from unet_helpers.checks.exercise import INPUTS_UNCHANGED, STATE_UNCHANGED
from wrong_answers import REPO, load_definitions
from wrong_answers import iou as wrong

SIDE_EFFECTS = [INPUTS_UNCHANGED, STATE_UNCHANGED]  # checked after the exercise's own properties



@pytest.fixture(scope="module")
def solution_ns():
    return load_definitions(REPO / "solutions" / "ex08_iou.ipynb")


@pytest.mark.parametrize("name, fn", [("iou_from_confusion", "my_iou_from_confusion"), ("dataset_iou", "my_dataset_iou")])
def test_solution_passes(solution_ns, name, fn):
    result = exercise(name).check(solution_ns[fn])
    assert result.passed, str(result)
    assert len(result.checked) == len(exercise(name).spec.properties()) + len(SIDE_EFFECTS)


@pytest.mark.parametrize("name, fn", [("iou_from_confusion", "my_iou_from_confusion"), ("dataset_iou", "my_dataset_iou")])
def test_stub_is_not_attempted(name, fn):
    stub = load_definitions(REPO / "exercises" / "ex08_iou.ipynb")[fn]
    assert exercise(name).check(stub).status is Status.NOT_ATTEMPTED


def test_dataset_iou_with_a_stubbed_helper_is_not_attempted(solution_ns):
    """A finished my_dataset_iou that calls a still-stubbed my_iou_from_confusion is not done yet."""
    ns = load_definitions(REPO / "exercises" / "ex08_iou.ipynb")
    solution_ns_copy = dict(solution_ns)
    solution_ns_copy["my_iou_from_confusion"] = ns["my_iou_from_confusion"]
    fn = solution_ns["my_dataset_iou"]
    patched = type(fn)(fn.__code__, solution_ns_copy, fn.__name__, fn.__defaults__, fn.__closure__)
    assert exercise("dataset_iou").check(patched).status is Status.NOT_ATTEMPTED


@pytest.mark.parametrize("fn, prop, fragment", [
    (wrong.absent_as_zero, "absent classes are NaN", "gets 0 instead of NaN"),
    (wrong.absent_as_one, "absent classes are NaN", "gets 1 instead of NaN"),
    (wrong.union_tp_plus_fp, "IoU = TP / (TP + FP + FN)", "that is precision"),
    (wrong.recall_instead, "IoU = TP / (TP + FP + FN)", "that is recall"),
    (wrong.union_tp_twice, "IoU = TP / (TP + FP + FN)", "counts TP twice"),
    (wrong.integer_division, "returns one IoU per class", "torch.int64"),
    (wrong.nan_when_never_true, "predicted but never true gives 0, not NaN", "0 / FP = 0"),
    (wrong.in_place, "leaves its inputs unchanged", "changed an input in place: `matrix`"),
    (wrong.float64_by_default, STATE_UNCHANGED, "default dtype was left at torch.float64"),
])
def test_iou_wrong_answers(fn, prop, fragment):
    result = exercise("iou_from_confusion").check(fn)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result)


@pytest.mark.parametrize("fn, fragment", [
    (wrong.dataset_per_batch_mean, "average per-batch IoUs"),
    (wrong.dataset_last_batch_only, "Only the last batch counts"),
    (wrong.dataset_weighted_by_images, "differs from the reference"),
])
def test_dataset_iou_wrong_answers(fn, fragment):
    result = exercise("dataset_iou").check(fn)
    assert result.status is Status.INCORRECT and result.failed == "counts accumulated over the dataset", str(result)
    assert fragment in str(result)


@pytest.mark.parametrize("fn, prop, fragment", [
    (wrong.dataset_absent_as_zero, "a class in no batch is NaN", "class 3 appears in no batch"),
    (wrong.dataset_union_from_one_axis, "one batch equals unet_helpers.iou_per_class", "one batch (2, 9, 7)"),
    (wrong.dataset_first_image_only, "one batch equals unet_helpers.iou_per_class", "one batch (2, 9, 7)"),
])
def test_more_dataset_iou_wrong_answers(fn, prop, fragment):
    result = exercise("dataset_iou").check(fn)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result)
