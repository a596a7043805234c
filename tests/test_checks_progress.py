"""`python -m unet_helpers.course.progress`: runs exercise notebooks without touching them and
prints a table of statuses and hints used."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from unet_helpers.checks import list_exercises
from unet_helpers.course.progress import format_table, main
from wrong_answers import REPO


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*"))}


def _rows(output):
    return {line.split()[1]: line for line in output.splitlines() if line.startswith("ex") and line.split()[0].endswith(".ipynb")}


@pytest.mark.slow
def test_shipped_exercises_are_all_not_attempted_and_left_unchanged(capsys):
    before = _digest(REPO / "exercises")
    assert main([str(REPO / "exercises"), "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert set(rows) == {spec.name for spec in list_exercises()}
    assert all("not attempted" in row for row in rows.values()), out
    assert f"0 of {len(list_exercises())} exercises correct." in out and "cell " not in out.split("correct.")[-1]  # no cell errors
    assert _digest(REPO / "exercises") == before


@pytest.mark.slow
def test_a_solved_copy_counts_as_correct_with_the_hints_used(tmp_path, monkeypatch, capsys):
    learner = tmp_path / "my_exercises"
    learner.mkdir()
    shutil.copy(REPO / "solutions" / "ex06_dice_loss.ipynb", learner)  # "solved" by the learner
    broken = json.loads((REPO / "exercises" / "ex08_iou.ipynb").read_text())
    for cell in broken["cells"]:
        if "def my_iou_from_confusion" in "".join(cell["source"]):
            cell["source"] = "def my_iou_from_confusion(matrix):\n    return matrix.diagonal() /\n"  # a syntax error
    (learner / "ex08_iou.ipynb").write_text(json.dumps(broken))
    saved = tmp_path / "progress.json"
    saved.write_text(json.dumps({"version": 1, "exercises": {"dice_loss": {"hints": [1, 2], "solution_viewed": False}}}))
    monkeypatch.setenv("UNET_PROGRESS_FILE", str(saved))
    before = _digest(learner)

    assert main([str(learner)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert "correct" in rows["dice_loss"] and "not attempted" not in rows["dice_loss"]
    assert "2 of 3" in rows["dice_loss"]
    assert "not run" in rows["iou_from_confusion"]  # its check cell failed: the function was never defined
    assert "not attempted" in rows["dataset_iou"]
    assert "1 of 3 exercises correct." in out
    assert "ex08_iou.ipynb, cell" in out and "SyntaxError" in out
    assert _digest(learner) == before  # never writes into the learner's folder
    assert json.loads(saved.read_text())["exercises"]["dice_loss"]["hints"] == [1, 2]


def test_no_notebooks_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path / "nothing_here")]) == 1
    assert "no notebooks found" in capsys.readouterr().err


def test_format_table_aligns_columns():
    table = format_table([{"exercise": "a", "status": "correct"}, {"exercise": "longer", "status": "not run"}])
    lines = table.splitlines()
    assert lines[0].startswith("exercise  status") and lines[2].startswith("a         correct")


def test_module_is_runnable_with_python_m():
    done = subprocess.run([sys.executable, "-m", "unet_helpers.course.progress", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "exercise notebooks" in done.stdout
