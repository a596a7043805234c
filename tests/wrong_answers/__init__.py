"""Plausible wrong answers to the exercises, one module per exercise notebook.

``tests/test_checks_*.py`` asserts that each of them is reported *incorrect*, with the property
that names the mistake. ``load_definitions`` runs the definition cells of a notebook, so the same
tests also run the real solution (``solutions/``) and the real stub (``exercises/``).
"""
from __future__ import annotations

import json
import linecache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def load_definitions(path: Path) -> dict[str, Any]:
    """Run the import cells and the cells that define something (``def``/``class``) of a notebook.

    Cells that call checks, hints or demos are skipped. Each cell is compiled under its own file
    name and registered with ``linecache``, as IPython does, so error reports can quote its lines.
    """
    notebook = json.loads(path.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": f"notebook_{path.stem}"}
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if "ex.check(" in source or ".check(" in source or source.lstrip().startswith(("if result", "#")):
            continue
        filename = f"<{path.stem} cell {index}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own notebooks
    return namespace
