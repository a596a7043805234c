"""The first code cell of every lesson and exercise, so that each runs in a fresh Colab-style kernel.

    python tools/colab_setup_cell.py notebooks/*.ipynb solutions/*.ipynb     # insert or update
    python tools/colab_setup_cell.py --check notebooks/*.ipynb solutions/*.ipynb   # exit 1 if stale

The cell (``SETUP_CELL``):

- inside the course's own environment (``make lab``: the package is installed) installs nothing
  and changes nothing;
- in a kernel without the package (Colab, a fresh venv), installs it with pip from
  ``UNET_COURSE_PACKAGE`` when that is set (a git URL, a wheel path, any pip requirement), else from
  the course's git repository (``DEFAULT_PACKAGE``), with the ``widgets`` extra. torch is left
  alone: the package asks only for ``torch>=2.2``, so Colab's own CUDA build is kept;
- sets ``DEVICE`` to the best device there is (CUDA, then Apple MPS, then CPU;
  ``unet_helpers.get_device``) and prints one line saying what it did.

The data needs nothing here: the loaders find the datasets (``UNET_DATA_DIR``, the user cache) or
download and verify them on first use.

``insert_setup_cell(notebook)`` puts the cell before the first code cell (the title and "what you
will build" stay on top), or updates it in place; running it twice changes nothing. The cell is
recognised by its tag ``course-setup``; it also carries ``nbval-ignore-output``, since what it
prints depends on the environment. Exercises are generated from ``solutions/``: insert the cell
there and run ``make exercises``.

Not verified here (no Colab from this machine), for phase 2: whether Colab renders the live views
(ipywidgets 8) without ``google.colab.output.enable_custom_widget_manager()``; and
``exercise(...).solution()`` in an installed package, which finds no ``solutions/`` beside it
(``UNET_SOLUTIONS_DIR``) and so falls back to naming the package's own implementation.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

SETUP_TAG = "course-setup"
SETUP_TAGS = [SETUP_TAG, "nbval-ignore-output"]
# Colab installs from the repository; change OWNER/NAME here (and COURSE_REPO_URL for the site).
DEFAULT_PACKAGE = "unet_helpers[widgets] @ git+https://github.com/OWNER/unet-course@main"

SETUP_TEMPLATE = '''\
# Course set-up. In the course's own environment (`make lab`) this installs nothing. In a fresh
# kernel (Colab) it installs the course package first; set UNET_COURSE_PACKAGE to install it from
# elsewhere (a wheel, a fork). It then picks the best device: a GPU when there is one.
import importlib.util, os, subprocess, sys

if importlib.util.find_spec("unet_helpers") is None:
    _package = os.environ.get("UNET_COURSE_PACKAGE") or {default!r}
    print(f"installing the course package: {{_package}}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", _package], check=True)
    importlib.invalidate_caches()

import unet_helpers
from unet_helpers import get_device

DEVICE = get_device()  # CUDA, then Apple MPS, then the CPU
print(f"unet_helpers {{unet_helpers.__version__}}, device: {{DEVICE}}")'''


def setup_cell_source(default_package: str = DEFAULT_PACKAGE) -> str:
    """The cell's source, installing ``default_package`` when ``UNET_COURSE_PACKAGE`` is unset."""
    if not default_package or "\n" in default_package:
        raise ValueError(f"default_package must be one pip requirement on one line, got {default_package!r}")
    return SETUP_TEMPLATE.format(default=default_package)


SETUP_CELL = setup_cell_source()


def _is_setup_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and SETUP_TAG in cell.get("metadata", {}).get("tags", [])


def insert_setup_cell(notebook: nbformat.NotebookNode, source: str = SETUP_CELL) -> bool:
    """Make ``source`` the notebook's first code cell; return whether the notebook changed.

    An existing setup cell (tag ``course-setup``) is updated in place when its source differs
    (its outputs are then cleared) and moved before the first other code cell if it is not there;
    otherwise a new cell goes right before the first code cell (at the end when there is none).
    """
    if not isinstance(notebook, nbformat.NotebookNode) or "cells" not in notebook:
        raise TypeError(f"expected a notebook read by nbformat, got {type(notebook).__name__}")
    cells = notebook.cells
    found = [i for i, cell in enumerate(cells) if _is_setup_cell(cell)]
    if len(found) > 1:
        raise ValueError(f"the notebook has {len(found)} cells tagged {SETUP_TAG!r} (cells {found}); keep one")
    changed = False
    if found:
        cell = cells.pop(found[0])
        if cell.source != source:
            cell.source, cell.outputs, cell.execution_count, changed = source, [], None, True
        tags = cell.metadata.setdefault("tags", [])
        for tag in SETUP_TAGS:
            if tag not in tags:
                tags.append(tag)
                changed = True
    else:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(SETUP_TAGS)})
        if notebook.get("nbformat_minor", 0) >= 5:
            cell["id"] = SETUP_TAG  # a fixed id: inserting the cell into a notebook twice gives one diff
        else:
            cell.pop("id", None)  # cell ids exist from nbformat 4.5 on
        changed = True
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    if found and found[0] != first_code:
        changed = True
    cells.insert(first_code, cell)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 naming notebooks whose cell is missing or stale")
    parser.add_argument("--package", default=DEFAULT_PACKAGE, help=f"what the cell installs by default ({DEFAULT_PACKAGE})")
    args = parser.parse_args(argv)
    source, stale = setup_cell_source(args.package), []
    for path in args.notebooks:
        notebook = nbformat.read(path, as_version=4)
        if insert_setup_cell(notebook, source):
            stale.append(path)
            if not args.check:
                nbformat.write(notebook, path)
    verb = "need" if args.check else "updated"
    print(f"{len(stale)} of {len(args.notebooks)} notebooks {verb} the set-up cell" + "".join(f"\n  {p}" for p in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
