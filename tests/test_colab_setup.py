"""The set-up cell that opens every lesson and exercise (``tools/colab_setup_cell.py``).

Fast tests: inserting the cell is idempotent and keeps the notebook's intro first; in the course's
own environment the cell installs nothing. The slow test is a fresh Colab-style kernel: a clean
venv with only Jupyter (nbclient, ipykernel) and torch runs a small notebook whose first code cell
is the set-up cell; the cell must install the package from a locally built wheel, after which the
next cell builds a U-Net; run again, the cell installs nothing. Then the course's lesson 01 and
exercise 03 run end to end in that kernel from their own set-up cell.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and later imports find it by name
    spec.loader.exec_module(module)
    return module


setup = load_tool("colab_setup_cell")

USE_THE_PACKAGE = """\
import sys
import torch
import unet_helpers
from unet_helpers import UNet

model = UNet(in_channels=1, num_classes=2, base=4, depth=2).to(DEVICE)
logits = model(torch.zeros(1, 1, 20, 20, device=DEVICE))
print("logits", tuple(logits.shape))
print("package", unet_helpers.__file__)
print("python", sys.prefix)
print("torch", torch.__version__)"""


def lesson_like(cells_after_intro: list[str]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# A lesson\n\nWhat you will build: a check.")]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells_after_intro]
    return notebook


def test_insert_puts_the_cell_before_the_first_code_cell_once():
    notebook = lesson_like(["x = 1", "y = 2"])
    assert setup.insert_setup_cell(notebook) is True
    kinds = [(c.cell_type, c.source[:20]) for c in notebook.cells]
    assert kinds[0] == ("markdown", "# A lesson\n\nWhat you")
    assert notebook.cells[1].source == setup.SETUP_CELL
    assert notebook.cells[1].metadata["tags"] == ["course-setup", "nbval-ignore-output"]
    assert [c.source for c in notebook.cells[2:]] == ["x = 1", "y = 2"]
    before = json.dumps(notebook, sort_keys=True)
    assert setup.insert_setup_cell(notebook) is False  # idempotent
    assert json.dumps(notebook, sort_keys=True) == before
    nbformat.validate(notebook)


def test_insert_updates_a_stale_cell_and_moves_it_first():
    notebook = lesson_like(["x = 1"])
    setup.insert_setup_cell(notebook, setup.setup_cell_source("old-source"))
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="installing old-source\n")]
    notebook.cells.insert(1, nbformat.v4.new_code_cell("import os"))  # someone put a cell above it
    assert setup.insert_setup_cell(notebook) is True
    assert [c.source for c in notebook.cells if c.cell_type == "code"] == [setup.SETUP_CELL, "import os", "x = 1"]
    assert notebook.cells[1].outputs == [] and notebook.cells[1].execution_count is None
    assert sum(setup.SETUP_TAG in c.metadata.get("tags", []) for c in notebook.cells) == 1


def test_insert_refuses_two_setup_cells_and_non_notebooks():
    notebook = lesson_like([])
    for _ in range(2):
        notebook.cells.append(nbformat.v4.new_code_cell("pass", metadata={"tags": ["course-setup"]}))
    with pytest.raises(ValueError, match="2 cells tagged 'course-setup'"):
        setup.insert_setup_cell(notebook)
    with pytest.raises(TypeError, match="expected a notebook read by nbformat, got dict"):
        setup.insert_setup_cell({"cells": []})
    with pytest.raises(ValueError, match="one pip requirement on one line"):
        setup.setup_cell_source("a\nb")


def test_in_the_course_environment_the_cell_installs_nothing(monkeypatch, capsys):
    def no_pip(*args, **kwargs):
        raise AssertionError(f"the set-up cell ran {args} although unet_helpers is installed")

    monkeypatch.setattr(subprocess, "run", no_pip)
    namespace: dict = {}
    exec(compile(setup.SETUP_CELL, "setup-cell", "exec"), namespace)
    import unet_helpers
    assert str(namespace["DEVICE"]) == str(unet_helpers.get_device())
    assert capsys.readouterr().out == f"unet_helpers {unet_helpers.__version__}, device: {namespace['DEVICE']}\n"


RUNNER = """\
import sys, nbformat
from nbclient import NotebookClient
path, kernel = sys.argv[1], sys.argv[2]
notebook = nbformat.read(path, as_version=4)
NotebookClient(notebook, timeout=600, kernel_name=kernel).execute()
nbformat.write(notebook, path)
"""


def cell_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
@pytest.mark.venv
def test_a_fresh_kernel_installs_the_package_from_a_local_wheel(tmp_path):
    fresh = load_tool("fresh_env")
    dist = fresh.build_dist(tmp_path / "dist")
    python = fresh.make_venv(tmp_path / "venv")
    fresh.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", fresh.CONSTRAINTS,
               "torch==2.13.0", "nbclient", "ipykernel"])
    kernel = "unet-fresh-kernel"  # a name no other Jupyter install has: the kernel runs in this venv
    fresh.run([python, "-m", "ipykernel", "install", "--sys-prefix", "--name", kernel])
    assert subprocess.run([python, "-c", "import unet_helpers"], capture_output=True, cwd=tmp_path,
                          env=fresh.safe_env()).returncode != 0, "the clean venv already has unet_helpers"

    notebook = lesson_like([USE_THE_PACKAGE])
    assert setup.insert_setup_cell(notebook)
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook, path)
    (tmp_path / "run.py").write_text(RUNNER)
    env = fresh.safe_env(UNET_COURSE_PACKAGE=str(dist.wheel))
    fresh.run([python, tmp_path / "run.py", path, kernel], cwd=tmp_path, env=env)

    ran = nbformat.read(path, as_version=4)
    setup_out, use_out = cell_text(ran.cells[1]), cell_text(ran.cells[2])
    assert f"installing the course package: {dist.wheel}" in setup_out, setup_out
    assert "device: cpu" in setup_out, setup_out  # no GPU on this machine
    venv = (tmp_path / "venv").resolve()
    assert "logits (1, 2, 20, 20)" in use_out, use_out
    assert f"package {venv}/lib/" in use_out and "site-packages/unet_helpers/__init__.py" in use_out, use_out
    assert "torch 2.13.0" in use_out, f"the set-up cell must leave torch alone: {use_out}"
    origin = subprocess.run([python, "-c", "from importlib.metadata import distribution; "
                             "print(distribution('unet_helpers').read_text('direct_url.json'))"],
                            capture_output=True, text=True, cwd=tmp_path, env=fresh.safe_env(), check=True).stdout
    assert json.loads(origin)["url"] == dist.wheel.resolve().as_uri(), origin

    fresh.run([python, tmp_path / "run.py", path, kernel], cwd=tmp_path, env=env)  # now the package is there
    again = cell_text(nbformat.read(path, as_version=4).cells[1])
    assert "installing" not in again and "device: cpu" in again, again

    # The course's own lesson 01 and exercise 03 (as shipped: the exercise's stubs unfinished), end to
    # end from their set-up cell, in that kernel.
    # Colab ships ipywidgets; this venv gets it as the package's [widgets] extra would bring it.
    fresh.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", fresh.CONSTRAINTS,
               "ipywidgets"])
    for source in (REPO / "notebooks" / "01_segmentation_tasks.ipynb", REPO / "exercises" / "ex03_up_block.ipynb"):
        folder = tmp_path / source.parent.name
        folder.mkdir(exist_ok=True)
        copy = folder / source.name
        copy.write_bytes(source.read_bytes())
        fresh.run([python, tmp_path / "run.py", copy, kernel], cwd=folder, env=env)  # raises on any cell error
        ran = nbformat.read(copy, as_version=4)
        first = next(c for c in ran.cells if c.cell_type == "code")
        assert setup.SETUP_TAG in first.metadata.get("tags", []) and "device: cpu" in cell_text(first), source.name
