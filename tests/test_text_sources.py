"""Every lesson and solution notebook has a MyST Markdown twin in ``text/`` with the same cells.

Reviewers read ``text/notebooks/*.md`` in a diff; the executed ``.ipynb`` is what learners open.
Edit either one and run ``make sync`` (``jupytext --sync``); this test fails while the two disagree.
"""
from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))


def cells(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in notebook.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_text_twin_has_the_same_cells(path):
    twin = ROOT / "text" / path.parent.name / f"{path.stem}.md"
    assert twin.is_file(), f"{twin} is missing: run `make sync`"
    expected = path.parent.name + "///ipynb,text/" + path.parent.name + "///md:myst"
    notebook = jupytext.read(path)
    assert notebook.metadata.get("jupytext", {}).get("formats") == expected
    text_cells, notebook_cells = cells(jupytext.read(twin)), cells(notebook)
    for index, (mine, theirs) in enumerate(zip(text_cells, notebook_cells)):
        assert mine == theirs, f"cell {index} of {twin.name} differs from {path.name}: run `make sync`"
    assert len(text_cells) == len(notebook_cells), f"{twin.name} and {path.name} have different cell counts"


def test_no_text_twin_without_a_notebook():
    twins = sorted((ROOT / "text").glob("*/*.md"))
    orphans = [t for t in twins if not (ROOT / t.parent.name / f"{t.stem}.ipynb").is_file()]
    assert not orphans, f"text twins without a notebook: {orphans}"
