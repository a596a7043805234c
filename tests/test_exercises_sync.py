"""exercises/ is generated from solutions/ by `python -m unet_helpers.course.build`: it must be up to
date, and the generator itself is tested here on a small synthetic notebook."""
from __future__ import annotations

import json

import nbformat
import pytest

from unet_helpers.checks.solutions import BuildError, solution_sources, stub_source
from unet_helpers.course.build import build, main, make_exercise
from wrong_answers import REPO

SOLVED = '''def area(width, height):
    """Area of a rectangle."""
    ### BEGIN SOLUTION
    result = width * height
    return result
    ### END SOLUTION


class Box:
    def __init__(self, size):
        ### BEGIN SOLUTION
        self.size = size
        ### END SOLUTION'''


def _synthetic(path, source=SOLVED):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}, "language_info": {"name": "python", "version": "3.11"}})
    code = nbformat.v4.new_code_cell(source, execution_count=3,
                                     outputs=[nbformat.v4.new_output("stream", name="stdout", text="hi\n")])
    check = nbformat.v4.new_code_cell("print(area(2, 3))", execution_count=4,
                                      outputs=[nbformat.v4.new_output("stream", name="stdout", text="6\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# Toy"), code, check]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_exercises_folder_is_up_to_date_with_solutions():
    problems = build(REPO / "solutions", REPO / "exercises", check=True)
    assert problems == [], "\n".join(problems)


def test_shipped_exercises_have_no_outputs_and_no_solutions():
    notebooks = sorted((REPO / "exercises").glob("*.ipynb"))
    assert [p.name for p in notebooks] == [p.name for p in sorted((REPO / "solutions").glob("*.ipynb"))]
    for path in notebooks:
        nb = json.loads(path.read_text())
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "raise NotImplementedError" in text and "# your code here" in text
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def test_generator_replaces_regions_at_their_indentation(tmp_path):
    _synthetic(tmp_path / "solutions" / "ex00_toy.ipynb")
    assert build(tmp_path / "solutions", tmp_path / "exercises") == []
    nb = json.loads((tmp_path / "exercises" / "ex00_toy.ipynb").read_text())
    source = "".join(nb["cells"][1]["source"])
    assert source == '''def area(width, height):
    """Area of a rectangle."""
    # your code here
    raise NotImplementedError


class Box:
    def __init__(self, size):
        # your code here
        raise NotImplementedError'''
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in nb["cells"] if c["cell_type"] == "code")
    assert "".join(nb["cells"][2]["source"]) == "print(area(2, 3))"  # cells without markers are kept as they are
    assert "language_info" not in nb["metadata"] and nb["metadata"]["kernelspec"]["name"] == "python3"
    namespace = {}
    exec(source, namespace)
    with pytest.raises(NotImplementedError):
        namespace["area"](2, 3)


def test_check_mode_names_stale_missing_and_orphan_notebooks(tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    _synthetic(solutions / "ex00_toy.ipynb")
    args = ["--solutions", str(solutions), "--exercises", str(exercises)]
    assert main(args + ["--check"]) == 1
    assert "ex00_toy.ipynb is missing" in capsys.readouterr().err
    assert main(args) == 0 and main(args + ["--check"]) == 0
    _synthetic(solutions / "ex00_toy.ipynb", SOLVED.replace("width * height", "height * width"))
    assert main(args + ["--check"]) == 1
    err = capsys.readouterr().err
    assert "exercises/ex00_toy.ipynb is out of date" in err and "python -m unet_helpers.course.build" in err
    main(args)
    (exercises / "ex99_handmade.ipynb").write_text("{}")
    assert main(args + ["--check"]) == 1
    assert "ex99_handmade.ipynb has no source" in capsys.readouterr().err


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a '### BEGIN SOLUTION' before it"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another solution region"),
])
def test_unmatched_markers_are_an_error_naming_the_cell(source, message):
    with pytest.raises(BuildError, match=message):
        stub_source(source, where="ex00_toy.ipynb, code cell 1")


def test_unmatched_markers_exit_2_with_the_notebook_name(tmp_path, capsys):
    _synthetic(tmp_path / "solutions" / "ex00_toy.ipynb", "### BEGIN SOLUTION\nx = 1")
    assert main(["--solutions", str(tmp_path / "solutions"), "--exercises", str(tmp_path / "exercises")]) == 2
    assert "ex00_toy.ipynb, code cell 1" in capsys.readouterr().err


def test_a_solution_without_any_region_is_rejected():
    nb = {"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": []}], "metadata": {}}
    with pytest.raises(BuildError, match="nothing to write"):
        make_exercise(nb, "ex00_empty.ipynb")


def test_solution_sources_strip_the_markers(tmp_path):
    nb = json.loads(_synthetic(tmp_path / "ex00_toy.ipynb").read_text())
    (code,) = solution_sources(nb, ["area"])
    assert "result = width * height" in code and "SOLUTION" not in code
    assert solution_sources(nb, ["missing_name"]) == []


def test_rebuilding_never_overwrites_a_learners_work(tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    _synthetic(solutions / "ex00_toy.ipynb")
    args = ["--solutions", str(solutions), "--exercises", str(exercises)]
    assert main(args) == 0
    target = exercises / "ex00_toy.ipynb"
    generated = target.read_text()
    # An instructor changes the solution: the untouched exercise is simply regenerated.
    _synthetic(solutions / "ex00_toy.ipynb", SOLVED.replace("width * height", "height * width"))
    assert main(args) == 0 and target.read_text() != generated and main(args + ["--check"]) == 0
    # A learner fills in the stub; a later rebuild must keep their work and say so.
    learner = target.read_text().replace("raise NotImplementedError", "return width * height  # MY WORK")
    target.write_text(learner)
    _synthetic(solutions / "ex00_toy.ipynb", SOLVED.replace("width * height", "(width) * (height)"))
    assert main(args) == 1
    assert "was changed since it was generated" in capsys.readouterr().err
    assert target.read_text() == learner
    # --force replaces it, keeping a copy of the learner's version.
    assert main(args + ["--force"]) == 0
    assert "MY WORK" not in target.read_text()
    assert (exercises / "ex00_toy.ipynb.bak1").read_text() == learner
    assert main(args + ["--check"]) == 0
    # A second edit and a second --force: a new numbered backup, the first one kept as it was.
    second = target.read_text().replace("raise NotImplementedError", "return height * width  # SECOND TRY")
    target.write_text(second)
    assert main(args + ["--force"]) == 0
    assert (exercises / "ex00_toy.ipynb.bak1").read_text() == learner
    assert (exercises / "ex00_toy.ipynb.bak2").read_text() == second


def test_generated_notebooks_record_the_package_version_and_the_check_warns_on_a_mismatch():
    from unet_helpers.checks import exercise
    from unet_helpers.checks.exercise import package_version

    for path in sorted((REPO / "exercises").glob("ex*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert nb["metadata"]["unet_course"]["package_version"] == package_version(), path.name
        calls = [line for cell in nb["cells"] for line in "".join(cell["source"]).splitlines() if "exercise(\"" in line]
        assert calls and all(f'generated_with="{package_version()}"' in line for line in calls), path.name
    assert exercise("dice_loss", generated_with=package_version()).warnings == []
    old = exercise("dice_loss", generated_with="0.0.1")
    assert old.warnings and "0.0.1" in old.warnings[0] and "0.0.1" in str(old.check(None))


def test_check_mode_requires_the_generation_record(tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    _synthetic(solutions / "ex00_toy.ipynb")
    args = ["--solutions", str(solutions), "--exercises", str(exercises)]
    main(args)
    (exercises / ".generated.json").unlink()
    assert main(args + ["--check"]) == 1
    assert "has no up-to-date record" in capsys.readouterr().err
