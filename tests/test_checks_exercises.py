"""Every exercise of the catalogue: its solution is correct, its shipped stub is not attempted, and
the wrong answers of the exercises without a test file of their own (tests/wrong_answers/) are each
judged not correct, by the property that names the mistake, with a specific message."""
from __future__ import annotations

import pytest
import torch

from unet_helpers.checks import Status, exercise, list_exercises
from unet_helpers.checks.exercise import INPUTS_UNCHANGED, STATE_UNCHANGED
from wrong_answers import REPO, load_definitions
from wrong_answers import boundary_f1 as wb
from wrong_answers import diagnosis as wd
from wrong_answers import pixel_cross_entropy as wp
from wrong_answers import task_choice as wt
from wrong_answers import train_steps as ws
from wrong_answers import unet_forward as wu

SPECS = list_exercises()
USES = "writes the piece itself"


def _answer(folder: str, spec):
    namespace = load_definitions(REPO / folder / f"{spec.notebook}.ipynb")
    return namespace[spec.defines[0]]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_solution_is_correct(spec):
    result = exercise(spec.name).check(_answer("solutions", spec))
    assert result.status is Status.CORRECT and result.passed, str(result)
    assert [name for name, _ in result.checked][-2:] == [INPUTS_UNCHANGED, STATE_UNCHANGED]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_shipped_stub_is_not_attempted(spec):
    result = exercise(spec.name).check(_answer("exercises", spec))
    assert result.status is Status.NOT_ATTEMPTED and not result.passed, str(result)
    assert "NotImplementedError" in str(result) and "Traceback" not in str(result)


WRONG = [
    # ex01 task choice
    ("task_choice", wt.everything_semantic, "touching nuclei: task and architecture", "not semantic"),
    ("task_choice", wt.counting_is_semantic, "touching nuclei: task and architecture", "merge into one region"),
    ("task_choice", wt.panorama_as_instance, "street panorama: task and architecture", "not instance"),
    ("task_choice", wt.mask_rcnn_for_an_area, "mitochondria area: task and architecture", "not instance"),
    ("task_choice", wt.mask_rcnn_for_a_tumour, "tumour outline: task and architecture", "Mask R-CNN does not fit"),
    ("task_choice", wt.solder_joints_as_instance, "solder joints: task and architecture", "never touch"),
    ("task_choice", wt.misspelt_architecture, "tumour outline: task and architecture", "'UNet' is not one of"),
    ("task_choice", wt.extra_problem, "answers only the listed problems", "weather forecast"),
    ("task_choice", wt.returns_a_list, "returns a dict of answers", "should return a dict"),
    ("task_choice", wt.seeds_torch, STATE_UNCHANGED, "re-seeded (torch.manual_seed(0))"),
    # ex04 U-Net forward
    ("unet_forward", wu.SkipsInEncoderOrder, "output (N, K, H, W) (even sizes)", "Your code raised"),
    ("unet_forward", wu.BottleneckAsSkip, "output (N, K, H, W) (even sizes)", "Your code raised"),
    ("unet_forward", wu.NoHead, "output (N, K, H, W) (even sizes)", "wrong shape"),
    ("unet_forward", wu.SoftmaxOutput, "same output as unet_helpers.UNet", "softmax probabilities"),
    ("unet_forward", wu.ZeroSkips, "same output as unet_helpers.UNet", "zeros instead of the encoder maps"),
    ("unet_forward", wu.EncoderTwice, "each block runs once per forward", "more than once"),
    ("unet_forward", wu.ResizeInput, "same output as unet_helpers.UNet", "(1, 3, 33, 35)"),
    ("unet_forward", wu.DetachedBottleneck, "gradients reach every layer as in the reference", "cut off"),
    ("unet_forward", wu.DelegatesToUNet, USES, "unet_helpers.unet.UNet"),
    ("unet_forward", wu.SubclassesUNet, USES, "unet_helpers.unet.UNet"),
    # ex05 pixel cross-entropy
    ("pixel_cross_entropy", wp.log_of_softmax, "log-softmax, not log of softmax", "log(0) is -inf"),
    ("pixel_cross_entropy", wp.weighted_mean_over_pixels, "class weights: weighted mean", "number of pixels"),
    ("pixel_cross_entropy", wp.ignored_count_in_mean, "ignored pixels count nowhere", "still count them in the mean"),
    ("pixel_cross_entropy", wp.ignore_outside_only, "ignore_index may be any id, also one in [0, K)", "class 1 still counts"),
    ("pixel_cross_entropy", wp.weights_ignored, "class weights: weighted mean", "weight=(0.2, 1.0, 3.0)"),
    ("pixel_cross_entropy", wp.nan_when_all_ignored, "every pixel ignored gives 0 with a gradient", "0/0 = NaN"),
    ("pixel_cross_entropy", wp.softmax_over_width, "matches cross-entropy", "differs from the reference"),
    ("pixel_cross_entropy", wp.delegates_to_torch, USES, "torch.nn.functional.cross_entropy"),
    ("pixel_cross_entropy", wp.delegates_to_package, USES, "unet_helpers.losses.pixel_cross_entropy"),
    ("pixel_cross_entropy", wp.overwrites_ignored_target, INPUTS_UNCHANGED, "changed an input in place: `target`"),
    ("pixel_cross_entropy", wp.switches_grad_off, "differentiable: the gradient of cross-entropy", "no gradient"),
    # ex09 boundary F1
    ("boundary_f1", wb.eight_neighbours, "boundary: pixels of the class with a 4-neighbour of another class", "8-neighbours"),
    ("boundary_f1", wb.border_is_boundary, "the image border is not a boundary", "touch the image border"),
    ("boundary_f1", wb.strict_tolerance, "perfect prediction gives 1", "even with tolerance 0"),
    ("boundary_f1", wb.chessboard_distance, "matched within the tolerance (Euclidean, inclusive)", "chessboard"),
    ("boundary_f1", wb.mean_per_image, "counts summed over the batch", "average one F1 per image"),
    ("boundary_f1", wb.empty_vs_empty_is_zero, "empty vs empty is 1, one side empty is 0", "in neither mask"),
    ("boundary_f1", wb.precision_only, "precision and recall, then F1", "precision only"),
    ("boundary_f1", wb.delegates_to_package, USES, "unet_helpers.boundary.boundary_f1"),
    ("boundary_f1", wb.relabels_input, INPUTS_UNCHANGED, "changed an input in place: `pred`"),
    # ex12 diagnosis: the evidence, then the cause
    ("diagnosis_evidence", wd.band_of_the_class_only, "band and interior IoU", "differs from the reference"),
    ("diagnosis_evidence", wd.share_inverted, "predicted / true share", "under-predicts a rare class"),
    ("diagnosis_evidence", wd.undefined_as_zero, "undefined values are NaN", "NaN, not a number"),
    ("diagnosis_evidence", wd.band_iou_mean_per_image, "counts summed over every image", "average per-image ratios"),
    ("diagnosis_evidence", wd.overwrites_preds, INPUTS_UNCHANGED, "changed an input in place: `preds`"),
    ("diagnosis_evidence", wd.found_by_any_pixel, "found = at least half of the object's pixels",
     "any of its pixels is predicted"),
    ("diagnosis_evidence", wd.found_only_when_whole, "found = at least half of the object's pixels",
     "only when every pixel is predicted"),
    ("diagnosis_evidence", wd.objects_by_four_neighbours, "objects are 8-connected pieces", "with 4-neighbours"),
    ("diagnosis_evidence", wd.small_includes_the_threshold, "small = under small_size pixels",
     "exactly small_size pixels as small"),
    ("diagnosis_evidence", wd.least_confused, "the class taking the most missed pixels", "took the fewest"),
    ("diagnosis_evidence", wd.background_is_no_confusion, "the background counts as a class too",
     "leave the background out"),
    ("diagnosis_evidence", wd.band_includes_its_width, "band: distance < band_width to a true edge",
     "exactly band_width away"),
    ("diagnosis", wd.always_imbalance, "names 'boundary' for a model that erodes boundaries", "you name 'imbalance'"),
    ("diagnosis", wd.boundary_from_band_alone, "names 'imbalance' for a model that under-predicts a rare class",
     "you name 'boundary'"),
    ("diagnosis", wd.confusion_first, "names 'boundary' for a model that erodes boundaries", "you name 'confusion'"),
    ("diagnosis", wd.small_objects_without_large_check, "names 'imbalance' for a model that under-predicts a rare class",
     "you name 'small objects'"),
    ("diagnosis", wd.never_healthy, "names 'imbalance' for a model that under-predicts a rare class", "you name"),
    ("diagnosis", wd.misspelt_cause, "returns one of the five causes", "should return one of"),
    # ex13 part 0: training for a budget of steps
    ("train_steps", ws.one_pass_only, "starts a new pass when the loader runs out", "3 losses for steps=7"),
    ("train_steps", ws.finishes_the_pass, "returns the loss of every step as floats", "Your code raised"),
    ("train_steps", ws.scheduler_per_pass, "stops after `steps` steps, mid-pass", "stepped 1 times for 2"),
    ("train_steps", ws.scheduler_before_step, "stops after `steps` steps, mid-pass", "differ from the reference's"),
    ("train_steps", ws.no_train_mode, "model.train() at the start", "eval mode"),
    ("train_steps", ws.no_zero_grad, "starts a new pass when the loader runs out", "per-step losses differ"),
    ("train_steps", ws.returns_tensors, "returns the loss of every step as floats", "list of Python floats"),
    ("train_steps", ws.delegates_to_package, USES, "unet_helpers.train.train_one_epoch"),
    ("train_steps", ws.reseeds_globally, STATE_UNCHANGED, "re-seeded"),
]


@pytest.mark.parametrize("name, wrong, prop, fragment", WRONG, ids=[f"{w[0]}-{w[1].__name__}" for w in WRONG])
def test_wrong_answers_are_rejected_by_the_property_naming_the_mistake(name, wrong, prop, fragment):
    grad_mode = torch.is_grad_enabled()
    result = exercise(name).check(wrong)
    assert torch.is_grad_enabled() == grad_mode  # the check restored what the answer changed
    expected = Status.USES_PACKAGE if prop == USES else Status.INCORRECT
    assert result.status is expected and not result.passed and result.failed == prop, str(result)
    assert fragment in str(result), str(result)
    if prop == USES:
        assert fragment in result.uses_package and "write it yourself" in str(result)
    else:
        assert prop in str(result)


def test_a_partly_answered_quiz_is_incomplete_with_the_missing_ones_listed():
    result = exercise("task_choice").check(wt.half_answered)
    assert result.status is Status.INCOMPLETE and not result.passed, str(result)
    assert "land cover" in str(result) and "tumour outline" in str(result)


def test_a_state_leak_is_reported_beside_the_failure_it_causes():
    result = exercise("pixel_cross_entropy").check(wp.switches_grad_off)
    assert STATE_UNCHANGED in str(result) and "grad" in str(result).lower()


@pytest.mark.parametrize("module", [wt, wu, wp, wb, wd, ws])
def test_at_least_six_wrong_answers_per_exercise(module):
    answers = [v for v in vars(module).values() if callable(v) and getattr(v, "__module__", "") == module.__name__
               and not getattr(v, "__name__", "_").startswith("_")]
    assert len(answers) >= 6
