"""Solution regions in notebooks: the code between ``### BEGIN SOLUTION`` and ``### END SOLUTION``.

``solutions/*.ipynb`` mark what a learner writes; ``Exercise.solution()`` shows those regions and
``course/build.py`` replaces them by a stub to generate ``exercises/``.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = ("# your code here", "raise NotImplementedError")


class BuildError(ValueError):
    """A solution notebook whose markers do not pair up."""


def cell_source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def stub_source(source: str, where: str = "cell") -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of ``source`` by the stub.

    Raises:
        BuildError: when markers are unmatched or nested (``where`` names the cell).
    """
    out: list[str] = []
    indent: str | None = None
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if indent is not None:
                raise BuildError(f"{where}, line {number}: {BEGIN!r} inside another solution region")
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + text for text in STUB]
        elif stripped == END:
            if indent is None:
                raise BuildError(f"{where}, line {number}: {END!r} without a {BEGIN!r} before it")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise BuildError(f"{where}: {BEGIN!r} is never closed by {END!r}")
    return "\n".join(out)


def strip_markers(source: str) -> str:
    """``source`` with the marker lines removed (the solution as a learner would write it)."""
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN, END))


def solution_sources(notebook: dict[str, Any], defines: Iterable[str]) -> list[str]:
    """Code of the cells with solution regions that define one of ``defines`` (markers removed)."""
    names = "|".join(re.escape(name) for name in defines)
    pattern = re.compile(rf"^\s*(def|class)\s+({names})\b", re.MULTILINE)
    return [
        strip_markers(cell_source(cell)).strip()
        for cell in notebook.get("cells", [])
        if cell.get("cell_type") == "code" and BEGIN in cell_source(cell) and pattern.search(cell_source(cell))
    ]
