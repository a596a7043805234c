"""Checks of exercise 5 (training step, evaluation pass): solution, stub, wrong answers."""
from __future__ import annotations

import pytest
import torch

from unet_helpers.checks import Status, exercise
from unet_helpers.checks.ex10_training_loop import GRAD_LEFT_OFF
from unet_helpers.checks.exercise import STATE_UNCHANGED
from wrong_answers import REPO, load_definitions
from wrong_answers import training as wrong

CASES = [("train_step", "my_train_step"), ("evaluate", "my_evaluate")]


@pytest.mark.parametrize("name, fn", CASES)
def test_solution_passes(name, fn):
    solution = load_definitions(REPO / "solutions" / "ex10_training_loop.ipynb")[fn]
    result = exercise(name).check(solution)
    assert result.passed, str(result)


@pytest.mark.parametrize("name, fn", CASES)
def test_stub_is_not_attempted(name, fn):
    stub = load_definitions(REPO / "exercises" / "ex10_training_loop.ipynb")[fn]
    assert exercise(name).check(stub).status is Status.NOT_ATTEMPTED


@pytest.mark.parametrize("fn, prop, fragment", [
    (wrong.step_without_zero_grad, "optimizer.zero_grad() before backward", "were added"),
    (wrong.step_without_train_mode, "model.train() at the start", "eval mode"),
    (wrong.train_mode_at_the_end, "model.train() at the start", "forward pass ran with the model in eval mode"),
    (wrong.step_before_backward, "optimizer.step() after loss.backward()", "did not change"),
    (wrong.zero_grad_after_backward, "optimizer.step() after loss.backward()", "did not change"),
    (wrong.backward_on_detached_loss, "runs one step and returns loss.item()", "does not require grad"),
    (wrong.backward_on_item, "runs one step and returns loss.item()", "no attribute 'backward'"),
    (wrong.returns_tensor, "runs one step and returns loss.item()", "Python number"),
])
def test_train_step_wrong_answers(fn, prop, fragment):
    result = exercise("train_step").check(fn)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result)


def test_detached_loss_gets_a_specific_hint():
    result = exercise("train_step").check(wrong.backward_on_detached_loss)
    assert "loss.backward()" in result.hint and result.error_where.startswith("line ")


@pytest.mark.parametrize("fn, prop, fragment", [
    (wrong.evaluate_without_eval_mode, "model.eval(): BatchNorm statistics unchanged", "training mode"),
    (wrong.evaluate_with_gradients, "no gradients tracked (torch.no_grad())", "Gradients were tracked"),
    (wrong.evaluate_unweighted_loss, "mean loss over images (weighted by batch size)", "the last batch has 1 image"),
    (wrong.evaluate_per_batch_miou, "mIoU from counts over the whole dataset", "per-batch mIoUs"),
    (wrong.evaluate_returns_tensors, "returns (mean loss, mIoU) as two floats", "two Python floats"),
    (wrong.evaluate_swapped_outputs, "mean loss over images (weighted by batch size)", "your value differs"),
    (wrong.evaluate_switches_grad_off, GRAD_LEFT_OFF, "switches gradient tracking off for good"),
    (wrong.evaluate_grad_off_for_good, STATE_UNCHANGED, "gradient tracking was left off"),
    (wrong.evaluate_toggles_grad_mode, "grad mode back as the caller had it", "returned with it on"),
])
def test_evaluate_wrong_answers(fn, prop, fragment):
    result = exercise("evaluate").check(fn)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result)


def test_grad_left_off_is_the_headline_not_the_tracked_forwards():
    """An evaluate that calls torch.set_grad_enabled(False) (and then tracks anyway) is told about the leak first."""
    result = exercise("evaluate").check(wrong.evaluate_switches_grad_off)
    assert result.failed == GRAD_LEFT_OFF and "Gradients were tracked" not in str(result), str(result)
    assert f"Also failing: {STATE_UNCHANGED}" in str(result) and "with torch.no_grad():" in result.hint
    assert torch.is_grad_enabled()  # the check switched tracking back on


def test_check_references_agree_with_the_package_trainer():
    """The checker's one-batch reference step and evaluation equal unet_helpers.train's loop."""
    import copy

    import torch

    from unet_helpers.checks import ex10_training_loop as checks
    from unet_helpers.train import evaluate, train_one_epoch

    model, optimizer = checks._setup(seed=11)
    twin = copy.deepcopy(model)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    images, masks = checks._batch(3, seed=11)
    loss = checks._reference_step(model, images, masks, optimizer, checks._loss_fn)
    means = train_one_epoch(twin, [(images, masks)], checks._loss_fn, twin_optimizer)
    assert abs(means.loss - loss) < 1e-6
    assert torch.allclose(checks._params(model), checks._params(twin), atol=1e-6)

    mean_loss, miou = checks._reference_evaluate(model, checks._loader(), checks._loss_fn, checks.K)
    package = evaluate(twin, checks._loader(), num_classes=checks.K, loss_fn=checks._loss_fn)
    assert abs(package.loss - mean_loss) < 1e-6 and abs(package.miou - miou) < 1e-9
