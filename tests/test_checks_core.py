"""The exercise-check machinery: results, not-attempted detection, learner errors, hints,
solutions and progress recording. Exercise-specific checks are in test_checks_<group>.py."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from unet_helpers.checks import CheckResult, Property, PropertyFailed, Status, exercise, list_exercises
from unet_helpers.checks.compare import expect_gradient
from unet_helpers.checks.core import learner_error
from unet_helpers.checks.isolation import call_learner
from unet_helpers.checks.exercise import Exercise, ExerciseSpec
from unet_helpers.checks.progress_file import load_progress, progress_path, record_check, user_cache_dir
from wrong_answers import REPO, load_definitions


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.setenv("UNET_PROGRESS_FILE", str(path))
    return path


def _spec(properties, name="toy", hints=("first", "second", "third")):
    return ExerciseSpec(name=name, title="toy", notebook="ex00_toy", task="write f", properties=lambda: properties,
                        hints=hints, defines=("f",), reference="nowhere")


def test_every_registered_exercise_has_a_notebook_hints_and_properties():
    specs = list_exercises()
    assert {s.name for s in specs} >= {"double_conv", "up_block", "dice_loss", "iou_from_confusion", "dataset_iou",
                                       "train_step", "evaluate"}
    for spec in specs:
        assert (REPO / "solutions" / f"{spec.notebook}.ipynb").is_file()
        assert len(spec.hints) >= 2 and len(spec.properties()) >= 4


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(ValueError, match="no exercise called 'dice'; known: .*dice_loss"):
        exercise("dice")


def test_exercise_names_are_forgiving_about_case_and_dashes():
    assert exercise(" Dice-Loss ").name == "dice_loss"


def test_learner_error_points_at_the_learner_line_not_torch():
    def my_loss(logits):
        probs = logits.softmax(dim=5)  # the learner's bug
        return probs.sum()

    with pytest.raises(Exception) as info:
        call_learner(my_loss, torch.zeros(2, 3))
    err = info.value
    assert err.kind == "IndexError" and not err.not_implemented
    assert "of your `my_loss`: `probs = logits.softmax(dim=5)  # the learner's bug`" in err.where


def test_not_implemented_from_a_library_is_not_mistaken_for_the_stub():
    class NoForward(nn.Module):  # forgot to define forward: torch raises NotImplementedError itself
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)

    result = exercise("double_conv").check(NoForward)
    assert result.status is Status.INCORRECT and "NotImplementedError" in result.error
    assert 'missing the required "forward" function' in result.error


def test_stub_not_implemented_is_detected_from_the_learner_frame():
    def f(x):
        raise NotImplementedError

    try:
        f(1)
    except NotImplementedError as exc:
        assert learner_error(exc).not_implemented


def test_check_never_raises_when_a_property_breaks():
    def broken(answer):
        raise KeyError("internal")

    result = Exercise(_spec([Property("p", "inputs", broken)])).check(lambda x: x)
    assert result.status is Status.INCORRECT and result.failed == "p" and "KeyError" in str(result)


def test_check_never_raises_when_the_checker_itself_fails():
    def no_properties():
        raise RuntimeError("boom")

    spec = ExerciseSpec(name="toy", title="t", notebook="ex00", task="", properties=no_properties, hints=("h",),
                        defines=("f",), reference="")
    result = Exercise(spec).check(lambda x: x)
    assert result.status is Status.INCORRECT and "checker itself failed" in result.message


@pytest.mark.parametrize("answer, fragment", [(None, "needs your answer"), (42, "Expected a function")])
def test_check_without_a_function_explains_what_to_pass(answer, fragment):
    result = exercise("dice_loss").check(answer)
    assert result.status is Status.INCORRECT and fragment in result.message


def test_results_render_as_markdown_and_plain_text():
    def passes(answer):
        return None

    def fails(answer):
        raise PropertyFailed("values differ", got=torch.tensor([1.0, 2.0]), expected=torch.tensor([1.0, 3.0]), hint="try x")

    good = Exercise(ExerciseSpec(name="toy", title="toy", notebook="ex00_toy", task="write f", hints=("h1", "h2"),
                                 properties=lambda: [Property("alpha", "on A", passes), Property("beta", "on B", passes)],
                                 defines=("f",), reference="nowhere", next_steps="look at C")).check(lambda x: x)
    assert good.passed and good.status is Status.CORRECT
    assert "- **alpha**: on A" in good._repr_markdown_() and "- beta: on B" in str(good) and "Next: look at C" in str(good)
    bad = Exercise(_spec([Property("alpha", "on A", passes), Property("beta", "on B", fails)])).check(lambda x: x)
    assert not bad and bad.failed == "beta"
    for text in (str(bad), bad._repr_markdown_()):
        assert "beta" in text and "[1.0, 2.0]" in text and "[1.0, 3.0]" in text and "try x" in text and "alpha" in text


def test_not_attempted_renders_without_traceback():
    result = CheckResult("toy", Status.NOT_ATTEMPTED, message="still the stub")
    assert "not attempted" in str(result) and "not attempted" in result._repr_markdown_()
    assert not result.passed


def test_check_leaves_the_global_random_state_alone():
    solution = load_definitions(REPO / "solutions" / "ex06_dice_loss.ipynb")["my_dice_loss"]
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    assert exercise("dice_loss").check(solution).passed
    assert torch.equal(torch.rand(3), expected)


def test_hints_come_in_order_and_by_number(progress_file):
    ex = Exercise(_spec([]))
    assert [ex.hint().body for _ in range(4)] == ["first", "second", "third", "third"]
    assert ex.hint(2).body == "second" and "Hint 2 of 3" in str(ex.hint(2))
    assert "There are 3 hints" in str(ex.hint(7)) and "There are 3 hints" in ex.hint(0)._repr_markdown_()
    assert load_progress()["toy"]["hints"] == [1, 2, 3]


def test_solution_comes_from_the_solution_notebook(progress_file):
    note = exercise("dice_loss").solution()
    assert "def my_dice_loss" in note.code and "softmax(dim=1)" in note.code
    assert "BEGIN SOLUTION" not in note.code and "```python" in note._repr_markdown_()
    assert load_progress()["dice_loss"]["solution_viewed"] is True


def test_solution_without_the_notebook_points_at_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_SOLUTIONS_DIR", str(tmp_path))
    note = exercise("dice_loss").solution()
    assert note.code is None and "unet_helpers/losses.py" in str(note)


def test_checks_record_status_attempts_and_best_result(progress_file):
    ex = exercise("dice_loss")
    solution = load_definitions(REPO / "solutions" / "ex06_dice_loss.ipynb")["my_dice_loss"]
    ex.check(lambda logits, target, eps=1e-6, ignore_index=None: logits.sum())
    ex.check(solution)
    ex.check(lambda logits, target, eps=1e-6, ignore_index=None: logits.sum())
    entry = json.loads(progress_file.read_text())["exercises"]["dice_loss"]
    assert entry["status"] == "incorrect" and entry["passed_ever"] is True and entry["attempts"] == 3


def test_recording_is_off_under_pytest_unless_asked(monkeypatch):
    monkeypatch.delenv("UNET_PROGRESS_FILE", raising=False)
    assert progress_path() is None  # nbval over solutions/ must not mark a learner's exercises done
    monkeypatch.setenv("UNET_PROGRESS_FILE", "off")
    assert progress_path() is None and record_check("x", "correct") is False


def test_default_progress_file_is_in_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("UNET_PROGRESS_FILE", raising=False)
    monkeypatch.delenv("PYTEST_VERSION", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if user_cache_dir() == tmp_path:  # Linux and the like
        assert progress_path() == tmp_path / "unet_course" / "progress.json"
    assert REPO not in progress_path().parents


def test_unwritable_progress_file_never_breaks_a_check(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("UNET_PROGRESS_FILE", str(blocker / "progress.json"))  # its parent is a file
    assert record_check("dice_loss", "correct") is False
    result = exercise("dice_loss").check(load_definitions(REPO / "exercises" / "ex06_dice_loss.ipynb")["my_dice_loss"])
    assert result.status is Status.NOT_ATTEMPTED


def test_corrupt_progress_file_is_replaced_not_fatal(progress_file):
    progress_file.write_text("{ not json")
    assert load_progress() == {}
    assert record_check("dice_loss", "correct") and load_progress()["dice_loss"]["status"] == "correct"


def test_expect_gradient_names_a_missing_and_a_wrong_gradient_and_passes_the_right_one():
    """The one gradient helper of the loss checks (ex05-ex07): no graph, right value with a wrong gradient."""
    logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    reference = lambda x: x.softmax(1).square().mean()  # noqa: E731
    expect_gradient(reference, reference, logits, "cut")
    with pytest.raises(PropertyFailed, match="no gradient") as no_graph:
        expect_gradient(lambda x: reference(x).detach(), reference, logits, "cut")
    assert no_graph.value.hint == "cut"
    with pytest.raises(PropertyFailed, match="gradient with respect to the logits differs"):
        expect_gradient(lambda x: reference(x).detach() + 0 * x.sum(), reference, logits, "cut")
    expect_gradient(lambda x: reference(x) + 1 + 0 * x.sum(), reference, logits, "cut")  # wrong value: left to others
