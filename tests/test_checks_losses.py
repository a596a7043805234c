"""Check of exercise 3 (soft Dice loss): solution, stub and wrong answers."""
from __future__ import annotations

import pytest

from unet_helpers.checks import Status, exercise
from wrong_answers import REPO, load_definitions
from wrong_answers import dice_loss as wrong


@pytest.fixture(scope="module")
def ex():
    return exercise("dice_loss")


def test_solution_passes_and_says_what_was_checked(ex):
    fn = load_definitions(REPO / "solutions" / "ex06_dice_loss.ipynb")["my_dice_loss"]
    result = ex.check(fn)
    assert result.passed, str(result)
    text = str(result)
    for name in ("absent from the target", "ignore_index", "eps", "odd sizes, batch of one"):
        assert name in text
    assert "all tests passed" not in text.lower()


def test_stub_is_not_attempted(ex):
    fn = load_definitions(REPO / "exercises" / "ex06_dice_loss.ipynb")["my_dice_loss"]
    result = ex.check(fn)
    assert result.status is Status.NOT_ATTEMPTED
    assert "<ex06_dice_loss cell" not in result.message or "my_dice_loss" in result.message


@pytest.mark.parametrize("fn, prop, fragment", [
    (wrong.no_softmax, "softmax over the class axis", "raw logits"),
    (wrong.pixel_average, "mean over classes (macro), not over pixels", "pool every class"),
    (wrong.per_image, "sums over the whole batch (N, H, W)", "one Dice per image"),
    (wrong.ignore_forgotten, "ignore_index pixels count in neither term", "Class values must be smaller"),
    (wrong.ignored_in_prediction_sum, "ignore_index pixels count in neither term", "still add their probabilities"),
    (wrong.absent_counted, "classes absent from the target are left out", "average over every class"),
    (wrong.argmax_probs, "differentiable: gradient reaches the logits", "no gradient"),
    (wrong.eps_only_denominator, "eps in numerator and denominator", "only to the denominator"),
    (wrong.nan_when_all_ignored, "every pixel ignored gives 0 with a gradient", "the loss should be 0"),
    (wrong.returns_per_class, "returns a scalar tensor", "shape (3,)"),
    (wrong.mutates_target, "leaves its inputs unchanged", "changed an input in place: `target`"),
    (wrong.float64_by_default, "leaves torch's global state as it found it", "default dtype was left at torch.float64"),
])
def test_wrong_answers_name_the_property(ex, fn, prop, fragment):
    result = ex.check(fn)
    assert result.status is Status.INCORRECT and result.failed == prop, str(result)
    assert fragment in str(result) and prop in str(result)
    assert result.hint  # every failure comes with a hint


def test_value_mismatch_shows_learner_and_expected_values(ex):
    result = ex.check(wrong.absent_counted)
    assert result.got is not None and result.expected is not None and result.got != result.expected
    markdown = result._repr_markdown_()
    assert "yours:" in markdown and "expected:" in markdown


def test_ignore_forgotten_gets_the_one_hot_hint(ex):
    assert "ignore_index" in ex.check(wrong.ignore_forgotten).hint
