"""Checks of exercises 1 (DoubleConv) and 2 (Up): solution passes, stub is not attempted, and
every wrong answer in tests/wrong_answers is reported incorrect by the property naming its mistake."""
from __future__ import annotations

import pytest

from unet_helpers import DoubleConv, Up
from unet_helpers.checks import Status, exercise
from unet_helpers.checks.exercise import INPUTS_UNCHANGED, STATE_UNCHANGED
from wrong_answers import REPO, load_definitions
from wrong_answers import double_conv as dc
from wrong_answers import up_block as ub

SIDE_EFFECTS = [INPUTS_UNCHANGED, STATE_UNCHANGED]  # checked after the exercise's own properties



@pytest.fixture(scope="module")
def solution_ns():
    return {**load_definitions(REPO / "solutions" / "ex02_double_conv.ipynb"),
            **load_definitions(REPO / "solutions" / "ex03_up_block.ipynb")}


@pytest.fixture(scope="module")
def stub_ns():
    return {**load_definitions(REPO / "exercises" / "ex02_double_conv.ipynb"),
            **load_definitions(REPO / "exercises" / "ex03_up_block.ipynb")}


@pytest.mark.parametrize("name, cls", [("double_conv", "MyDoubleConv"), ("up_block", "MyUp")])
def test_solution_passes_and_lists_every_property(solution_ns, name, cls):
    ex = exercise(name)
    result = ex.check(solution_ns[cls])
    assert result.status is Status.CORRECT and result.passed, str(result)
    assert [n for n, _ in result.checked] == [p.name for p in ex.spec.properties()] + SIDE_EFFECTS
    assert all(inputs for _, inputs in result.checked)  # each says what it was checked on


@pytest.mark.parametrize("name, reference", [("double_conv", DoubleConv), ("up_block", Up)])
def test_package_reference_is_reported_as_using_the_package(name, reference):
    result = exercise(name).check(reference)
    assert result.status is Status.USES_PACKAGE and not result.passed, str(result)


@pytest.mark.parametrize("name, cls", [("double_conv", "MyDoubleConv"), ("up_block", "MyUp")])
def test_stub_is_not_attempted(stub_ns, name, cls):
    result = exercise(name).check(stub_ns[cls])
    assert result.status is Status.NOT_ATTEMPTED and not result.passed
    assert "NotImplementedError" in str(result) and "Traceback" not in str(result)


@pytest.mark.parametrize("wrong, prop, fragment", [
    (dc.WithBias, "convolutions without bias", "has a bias"),
    (dc.NoBatchNorm, "BatchNorm2d after each convolution", "0 BatchNorm2d"),
    (dc.NoPadding, "keeps height and width", "wrong shape"),
    (dc.ReluBeforeBatchNorm, "order conv -> BatchNorm -> ReLU", "ReLU must come after BatchNorm"),
    (dc.OneConv, "two 3x3 convolutions", "1 Conv2d layer"),
    (dc.Kernel5, "two 3x3 convolutions", "kernel_size=(5, 5)"),
    (dc.NoFinalRelu, "order conv -> BatchNorm -> ReLU", "applies ReLU 1 time"),
    (dc.SecondConvFromInput, "keeps height and width", "expected input[2, 8, 16, 16] to have 3 channels"),
    (dc.DeterministicInInit, STATE_UNCHANGED, "use_deterministic_algorithms was switched on"),
])
def test_double_conv_wrong_answers(wrong, prop, fragment):
    result = exercise("double_conv").check(wrong)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result) and prop in result._repr_markdown_()


def test_learner_exception_names_their_line_not_the_package():
    result = exercise("double_conv").check(dc.SecondConvFromInput)
    assert result.error.startswith("RuntimeError: Given groups=1")
    assert result.error_where == "line 8 of your `forward`: `return self.net(x)`"  # line 8 of double_conv.py
    assert "torch/nn" not in str(result) and "Traceback" not in str(result)
    assert "Your code raised `RuntimeError: Given groups=1" in result._repr_markdown_()
    assert "at line 8 of your `forward`: `return self.net(x)`." in result._repr_markdown_()


@pytest.mark.parametrize("wrong, prop, fragment", [
    (ub.NoAlignment, "odd sizes: output still has the skip's size", "Sizes of tensors must match"),
    (ub.AlignCorners, "bilinear up-sampling, align_corners=False", "align_corners=True"),
    (ub.Nearest, "bilinear up-sampling, align_corners=False", "mode='nearest'"),
    (ub.AddInsteadOfConcat, "concatenate, don't add: DoubleConv(skip_channels + in_channels, out_channels)", "12"),
    (ub.ShrinkSkip, "output has the skip's size (even sizes)", "(2, 6, 5, 6)"),
    (ub.ZeroPad, "odd sizes: pad bottom/right by replicating", "pad with zeros"),
    (ub.SeedsInForward, STATE_UNCHANGED, "re-seeded (torch.manual_seed(0))"),
])
def test_up_block_wrong_answers(wrong, prop, fragment):
    result = exercise("up_block").check(wrong)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result)


@pytest.mark.parametrize("name, wrong, prop, fragment", [
    ("up_block", ub.SkipLast, "concatenation order [skip, x]", "[x, skip]"),
    ("up_block", ub.ResizeToSkip, "odd sizes: pad bottom/right by replicating", "straight to the skip's size"),
])
def test_equivalent_answers_are_another_convention_with_the_reason(name, wrong, prop, fragment):
    result = exercise(name).check(wrong)
    assert result.status is Status.CONVENTION and not result.passed and result.failed == prop, str(result)
    assert fragment in str(result) and "Why the convention matters" in str(result)


def test_class_exercise_rejects_an_instance_with_advice():
    result = exercise("double_conv").check(DoubleConv(3, 8))
    assert result.status is Status.INCORRECT and "Pass the class itself" in result.message
