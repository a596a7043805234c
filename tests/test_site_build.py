"""The website's staging step (``tools/build_site.py``) without Sphinx or a browser: what each
page is made of. The rendered pages are tested in ``tests/test_site.py``."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_site", REPO / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(spec)
sys.modules["build_site"] = build_site
spec.loader.exec_module(build_site)

REPO_URL = build_site.Repository("https://github.com/someone/unet-course", "v1")


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    staging = tmp_path_factory.mktemp("site") / "site-src"
    build_site.stage(staging, REPO_URL)
    return staging


def test_every_lesson_and_exercise_is_staged_with_its_colab_link(staged):
    for folder in ("notebooks", "exercises"):
        for source in sorted((REPO / folder).glob("*.ipynb")):
            notebook = json.loads((staged / folder / source.name).read_text())
            first = notebook["cells"][0]["source"]
            colab = f"https://colab.research.google.com/github/someone/unet-course/blob/v1/{folder}/{source.name}"
            assert first.startswith("# ") and f'href="{colab}"' in first, first[:300]
            assert f'href="../_sources/{folder}/{source.name}"' in first


def test_outputs_are_kept_except_first_frames_of_progress_bars(staged):
    original = json.loads((REPO / "notebooks" / "06_training.ipynb").read_text())
    shown = json.loads((staged / "notebooks" / "06_training.ipynb").read_text())
    for before, after in zip(original["cells"], shown["cells"]):
        if before["cell_type"] != "code":
            continue
        kept = [o for o in before["outputs"] if not build_site.is_stale_progress_bar(o)]
        assert after["outputs"] == kept
    removed = [o for c in original["cells"] if c["cell_type"] == "code" for o in c["outputs"]
               if build_site.is_stale_progress_bar(o)]
    assert not removed, "lesson 06 stores a progress bar at its first frame: unet_helpers/progress.py should replace it"
    bar = {"model_id": "x", "version_major": 2, "version_minor": 0}
    first_frame = {"output_type": "display_data", "metadata": {},
                   "data": {build_site.WIDGET_VIEW: bar, "text/plain": ["epoch 1:   0%|          | 0/50 [00:00<?, ?it/s]"]}}
    finished = {**first_frame, "data": {**first_frame["data"], "text/plain": ["epoch 1: 100%|##########| 50/50 [00:12<00:00]"]}}
    assert build_site.is_stale_progress_bar(first_frame) and not build_site.is_stale_progress_bar(finished)
    views = [o for c in shown["cells"] if c["cell_type"] == "code" for o in c["outputs"]
             if "image/png" in o.get("data", {}) and build_site.WIDGET_VIEW in o["data"]]
    assert len(views) == 2, "the dashboard and the mask explorer keep their widget view and PNG"


def test_progress_bar_filter_keeps_a_finished_bar_and_plain_text():
    def bar(text, data_keys=(build_site.WIDGET_VIEW, "text/plain")):
        return {"output_type": "display_data", "data": {k: text for k in data_keys}}

    assert build_site.is_stale_progress_bar(bar("epoch 3:   0%|          | 0/50 [00:00<?, ?it/s]"))
    assert not build_site.is_stale_progress_bar(bar("epoch 3: 100%|##########| 50/50 [00:04<00:00]"))
    assert not build_site.is_stale_progress_bar(bar("epoch 3:   0%|          | 0/50 [", ("text/plain",)))


def test_readme_sections_fill_the_pages(staged):
    readme = (REPO / "README.md").read_text()
    glossary = (staged / "glossary.md").read_text()
    assert "<!-- README" not in glossary and "| semantic segmentation |" in glossary
    assert "| semantic segmentation |" in readme
    index = (staged / "index.md").read_text()
    assert "<!-- " not in index
    assert "](notebooks/03_unet.ipynb)" in index and "](exercises/ex13_real_data.ipynb)" in index
    # a README link to a file that is not a page points at the repository
    exercises = (staged / "exercises.md").read_text()
    assert "https://github.com/someone/unet-course/blob/v1/README.md#real-data-measured" in exercises


def test_a_missing_readme_section_is_named(tmp_path):
    with pytest.raises(ValueError, match="the README has no section '## Nowhere'"):
        build_site.fill_readme_markers("<!-- README: ## Nowhere -->", {"intro": ""}, tmp_path / "page.md")


@pytest.mark.parametrize("url, branch, message", [
    ("https://gitlab.com/a/b", "main", "must look like https://github.com/OWNER/NAME"),
    ("https://github.com/a", "main", "must look like"),
    ("https://github.com/a/b", "", "non-empty name"),
])
def test_repository_must_be_on_github(url, branch, message):
    with pytest.raises(ValueError, match=message):
        build_site.Repository(url, branch)
