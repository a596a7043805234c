"""Checks of the lesson's three exercises (6: BCE + Dice, 7: transposed up-block, 8: ssTEM evaluation
and per-class gains): the solutions pass, the shipped stubs are not attempted, the package references
pass, and every wrong answer in tests/wrong_answers is reported incorrect by the property naming it."""
from __future__ import annotations

import math

import pytest
import torch

from unet_helpers import Up, bce_dice_loss, predict_tiled
from unet_helpers.checks import Status, exercise
from unet_helpers.checks.exercise import INPUTS_UNCHANGED, STATE_UNCHANGED
from unet_helpers.checks.ex13_dice_gains import reference_dice_gains
from unet_helpers.checks.ex13_tiled_iou import reference_tiled_iou
from wrong_answers import REPO, load_definitions
from wrong_answers import bce_dice as wb
from wrong_answers import real_data as wr
from wrong_answers import up_transpose as wu

# (exercise, notebook, name the solution cell defines)
CASES = [
    ("bce_dice_loss", "ex07_bce_dice", "my_bce_dice_loss"),
    ("up_transpose", "ex11_transposed_up", "MyUpTranspose"),
    ("tiled_iou", "ex13_real_data", "my_tiled_iou"),
    ("dice_gains", "ex13_real_data", "my_dice_gains"),
]

SIDE_EFFECTS = [INPUTS_UNCHANGED, STATE_UNCHANGED]  # checked after the exercise's own properties



@pytest.fixture(scope="module")
def solutions():
    return {nb: load_definitions(REPO / "solutions" / f"{nb}.ipynb") for nb in {c[1] for c in CASES}}


@pytest.fixture(scope="module")
def stubs():
    return {nb: load_definitions(REPO / "exercises" / f"{nb}.ipynb") for nb in {c[1] for c in CASES}}


@pytest.mark.parametrize("name, notebook, defined", CASES)
def test_solution_passes_and_lists_every_property(solutions, name, notebook, defined):
    ex = exercise(name)
    result = ex.check(solutions[notebook][defined])
    assert result.status is Status.CORRECT, str(result)
    assert [n for n, _ in result.checked] == [p.name for p in ex.spec.properties()] + SIDE_EFFECTS
    assert all(inputs for _, inputs in result.checked)
    assert ex.spec.notebook == notebook


@pytest.mark.parametrize("name, notebook, defined", CASES)
def test_stub_is_not_attempted(stubs, name, notebook, defined):
    result = exercise(name).check(stubs[notebook][defined])
    assert result.status is Status.NOT_ATTEMPTED, str(result)
    assert "NotImplementedError" in str(result) and "Traceback" not in str(result)


class _TransposeUp(Up):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__(in_channels, skip_channels, out_channels, up_mode="transpose")


def _package_bce_dice(logits, target, lam=1.0, eps=1e-6):
    return bce_dice_loss(logits, target, lam=lam, eps=eps)[0]


@pytest.mark.parametrize("name, reference", [
    ("bce_dice_loss", _package_bce_dice), ("up_transpose", _TransposeUp),
    ("tiled_iou", reference_tiled_iou), ("dice_gains", reference_dice_gains),
])
def test_package_references_are_reported_as_using_the_package(name, reference):
    result = exercise(name).check(reference)
    assert result.status is Status.USES_PACKAGE and not result.passed, str(result)


def test_solution_notebooks_show_the_solution_code():
    note = exercise("dice_gains").solution()
    assert note.code and "def my_dice_gains" in note.code and "SOLUTION" not in note.code


# -- exercise 6: BCE + Dice --------------------------------------------------------------------
@pytest.mark.parametrize("fn, prop, fragment", [
    (wb.bce_on_probabilities, "BCE from logits: stable for large logits", "sigmoid rounds to exactly 0 or 1"),
    (wb.dice_on_logits, "sigmoid before the Dice term", "raw logits"),
    (wb.dice_per_image, "Dice summed over the whole batch", "one Dice per image"),
    (wb.dice_per_pixel, "Dice summed over the whole batch", "Dice per pixel"),
    (wb.broadcast_in_dice, "Dice summed over the whole batch", "(N, N, H, W)"),
    (wb.empty_foreground_forgotten, "no foreground in the batch: Dice term is 0", "about 1 whatever the model"),
    (wb.lam_ignored, "lam weights the Dice term", "ignores lam"),
    (wb.channel_axis_mishandled, "target as (N, H, W) or (N, 1, H, W), int64, float or bool", "Your code raised"),
    (wb.bce_summed, "BCE averaged over pixels", "summed over pixels"),
    (wb.dice_of_both_classes, "Dice of the foreground only", "foreground and background"),
    (wb.dice_coefficient_added, "1 - Dice, not Dice", "Dice coefficient itself"),
    (wb.hard_dice, "differentiable: gradient reaches the logits", "no gradient"),
    (wb.target_not_float, "returns a scalar tensor", "can't be cast"),
    (wb.returns_tuple, "returns a scalar tensor", "got a tuple"),
    (wb.squeezes_target_in_place, INPUTS_UNCHANGED, "`target`: its shape or dtype changed"),
])
def test_bce_dice_wrong_answers(fn, prop, fragment):
    result = exercise("bce_dice_loss").check(fn)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result)
    assert result.hint


def test_bce_dice_stub_hint_mentions_float_target():
    result = exercise("bce_dice_loss").check(wb.target_not_float)
    assert "target.float()" in result.hint and result.error_where.startswith("line ")


def test_bce_dice_value_mismatch_shows_both_values():
    result = exercise("bce_dice_loss").check(wb.empty_foreground_forgotten)
    assert result.got is not None and result.expected is not None and result.got != result.expected


def test_empty_batch_rule_is_the_packages():
    logits = torch.randn(2, 1, 5, 5)
    target = torch.zeros(2, 5, 5, dtype=torch.long)
    total, parts = bce_dice_loss(logits, target)
    assert parts["dice"] == 0.0
    assert torch.allclose(total, torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], target.float()))


# -- exercise 7: transposed up-block -------------------------------------------------------------
@pytest.mark.parametrize("cls, prop, fragment", [
    (wu.Kernel3Stride2, "kernel_size=2, stride=2 (no overlap)", "kernel_size=(3, 3)"),
    (wu.NoHalving, "halves the channels: in_channels -> in_channels // 2", "8 -> 8"),
    (wu.NoAlignment, "odd sizes: output still has the skip's size", "Sizes of tensors must match"),
    (wu.Bilinear, "a learnable ConvTranspose2d", "no ConvTranspose2d"),
    (wu.ZeroPad, "odd sizes: pad bottom/right by replicating", "pad with zeros"),
    (wu.PadTopLeft, "odd sizes: pad bottom/right by replicating", "top/left"),
    (wu.CropSkip, "odd sizes: output still has the skip's size", "(1, 5, 8, 8)"),
    (wu.SeedsInInit, STATE_UNCHANGED, "re-seeded (torch.manual_seed(0))"),
])
def test_up_transpose_wrong_answers(cls, prop, fragment):
    result = exercise("up_transpose").check(cls)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result)
    assert result.hint


@pytest.mark.parametrize("cls, prop, fragment", [
    (wu.SkipLast, "concatenation order [skip, x]", "[x, skip]"),
    (wu.ResizeToSkip, "odd sizes: pad bottom/right by replicating", "resize the up-sampled map"),
])
def test_up_transpose_equivalent_answers_are_another_convention(cls, prop, fragment):
    result = exercise("up_transpose").check(cls)
    assert result.status is Status.CONVENTION and result.failed == prop, str(result)
    assert fragment in str(result) and "Why the convention matters" in str(result)


def test_up_transpose_wants_the_class_not_an_instance():
    result = exercise("up_transpose").check(_TransposeUp(8, 6, 5))
    assert result.status is Status.INCORRECT and "not an instance" in result.message


# -- exercise 8: tiled IoU -------------------------------------------------------------------------
@pytest.mark.parametrize("fn, prop, fragment", [
    (wr.per_image_mean, "IoU from counts summed over every image", "average per-image IoUs"),
    (wr.per_image_mean_nan_as_zero, "classes in no mask and no prediction are NaN", "0/0, undefined"),
    (wr.matrix_reset_in_loop, "IoU from counts summed over every image", "Only the last image counts"),
    (wr.whole_images, "the model never sees more than one tile", "input of 48x52"),
    (wr.absent_as_zero, "classes in no mask and no prediction are NaN", "0/0, undefined"),
    (wr.overlap_ignored, "tile and overlap as given", "ignore `overlap`"),
    (wr.returns_miou, "returns one IoU per class (K,)", "shape ()"),
])
def test_tiled_iou_wrong_answers(fn, prop, fragment):
    result = exercise("tiled_iou").check(fn)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result)
    assert result.hint


def test_reference_tiled_iou_is_one_matrix_over_every_image_brute_force():
    """Independent of ConfusionMatrix: count TP, FP, FN with NumPy-style boolean sums."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1))
    data = [(torch.randn(1, 30, 41), torch.randint(0, 2, (30, 41))), (torch.randn(1, 25, 20), torch.randint(0, 2, (25, 20)))]
    preds = [predict_tiled(model, image, tile=16, overlap=0.25) for image, _ in data]
    expected = []
    for k in range(3):
        tp = sum(int(((p == k) & (m == k)).sum()) for p, (_, m) in zip(preds, data))
        union = sum(int(((p == k) | (m == k)).sum()) for p, (_, m) in zip(preds, data))
        expected.append(tp / union if union else math.nan)
    got = reference_tiled_iou(model, data, 3, tile=16, overlap=0.25)
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64), equal_nan=True)
    if math.isnan(expected[2]):
        assert math.isnan(float(got[2]))


# -- exercise 8: per-class gains -----------------------------------------------------------------
@pytest.mark.parametrize("fn, prop, fragment", [
    (wr.sign_flipped, "gain = IoU with Dice - IoU without", "wrong sign"),
    (wr.in_points, "a NaN IoU gives a NaN gain", "differs from the reference"),
    (wr.ascending, "ranked from the largest gain to the smallest", "smallest gain to the largest"),
    (wr.nan_as_zero, "a NaN IoU gives a NaN gain", "count a NaN IoU as 0"),
    (wr.naive_sort, "NaN gains come last", "comparison with NaN is False"),
    (wr.torch_sort, "NaN gains come last", "misplace it"),
    (wr.unpaired_means, "several seeds: mean of paired differences, NaN seeds skipped", "subtract the mean IoUs"),
    (wr.plain_mean_over_seeds, "several seeds: mean of paired differences, NaN seeds skipped", "differs"),
    (wr.spread_is_std, "several seeds: mean of paired differences, NaN seeds skipped", "differs"),
    (wr.spread_with_nan_as_zero, "a NaN IoU gives a NaN gain", "differs"),
    (wr.mean_over_classes, "returns (name, mean, lowest, highest) for every class", "one per class"),
    (wr.pairs_only, "returns (name, mean, lowest, highest) for every class", "one per class"),
    (wr.subtracts_in_place, "leaves its inputs unchanged", "in place"),
])
def test_dice_gains_wrong_answers(fn, prop, fragment):
    result = exercise("dice_gains").check(fn)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result)
    assert result.hint


def test_reference_dice_gains_by_hand():
    nan = math.nan
    without = torch.tensor([[0.5, nan, 0.2, nan], [0.7, 0.1, nan, nan]], dtype=torch.float64)
    with_ = torch.tensor([[0.6, 0.3, 0.1, nan], [0.6, 0.4, 0.9, 0.2]], dtype=torch.float64)
    # a: +0.1 and -0.1, mean 0; b: only seed 1 defined, 0.3; c: only seed 0, -0.1; d: never defined
    ranked = reference_dice_gains(without, with_, ["a", "b", "c", "d"])
    assert [row[0] for row in ranked] == ["b", "a", "c", "d"]
    assert ranked[0][1:] == pytest.approx((0.3, 0.3, 0.3))
    assert ranked[1][1] == pytest.approx(0.0, abs=1e-12) and ranked[1][2:] == pytest.approx((-0.1, 0.1))
    assert ranked[2][1:] == pytest.approx((-0.1, -0.1, -0.1)) and all(math.isnan(v) for v in ranked[3][1:])


def test_confusion_matrix_of_a_whole_set_is_not_the_mean_of_per_image_ious():
    """Why the check insists on summed counts: the two differ on the check's own data."""
    from unet_helpers.checks import ex13_tiled_iou as real_data

    model, data = real_data._model(), real_data._dataset()
    pooled = reference_tiled_iou(model, data, real_data.K, real_data.TILE, real_data.OVERLAP)
    per_image = torch.stack([reference_tiled_iou(model, [item], real_data.K, real_data.TILE, real_data.OVERLAP)
                             for item in data]).nanmean(0)
    assert not torch.allclose(pooled[:3], per_image[:3], atol=1e-4)
    assert math.isnan(float(pooled[3]))  # class 3 is in no mask and never predicted
