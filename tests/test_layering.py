"""The package's layering, read from its imports with ``ast`` (nothing is imported or run).

Rules (see the package docstring of ``unet_helpers``):

1. no import cycle between modules (a package's ``__init__.py`` counts as a module);
2. the library (top-level modules and ``viz/``) never imports a wing;
3. wings import each other only in the allowed pairs;
4. no module imports a private name (``_x``) from another module.

Imports inside functions and under ``TYPE_CHECKING`` count too. Importing ``a.b.c`` also runs
``a/b/__init__.py``, but those implicit edges are not counted: every module would otherwise sit in
a cycle with the package face that re-exports it. The rules are tested on small synthetic packages
that break each of them, so the checks themselves cannot silently pass everything.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "unet_helpers"
WINGS = ("inspector", "realdata", "views", "cli", "checks", "course", "deploy", "slides")
ALLOWED_WING_IMPORTS = {
    ("cli", "inspector"),  # the inspect command
    ("cli", "course"),  # the progress command
    ("cli", "realdata"),  # training on the shared real datasets
    ("cli", "deploy"),  # the export command, predict --onnx
    ("cli", "slides"),  # predict streams whole slides
    ("course", "checks"),  # the exercise generator and progress runner know the catalogue
    ("checks", "realdata"),  # the hard exercise's reference protocol
}
FACES = {"", "__main__"}  # the package's own __init__ and __main__ may import anything


def module_name(path: Path, root: Path) -> str:
    """``cli/train.py`` -> ``cli.train``; ``cli/__init__.py`` -> ``cli``; ``__init__.py`` -> ``""``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, root: Path, modules: set[str]) -> list[tuple[str, list[str]]]:
    """``(imported module, names taken from it)`` for every import of the package in ``path``."""
    name = module_name(path, root)
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == root.name:
                target = node.module.partition(".")[2]
            else:
                continue
            names = [alias.name for alias in node.names]
            submodules = [f"{target}.{n}" if target else n for n in names]
            taken = [(m, []) for m in submodules if m in modules]  # `from . import x` with x a module
            rest = [n for n, m in zip(names, submodules) if m not in modules]
            if rest or not taken:
                taken.append((target, rest))
            found += taken
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root.name:
                    found.append((alias.name.partition(".")[2], []))
    return [(target, names) for target, names in found if target in modules and target != name]


def import_graph(root: Path) -> dict[str, list[tuple[str, list[str]]]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}
    modules = set(files)
    return {name: imports_of(path, root, modules) for name, path in files.items()}


def area(module: str) -> str:
    """``"library"`` or the wing a module belongs to."""
    top = module.split(".")[0]
    return top if top in WINGS else "library"


def find_cycles(graph: dict[str, list[tuple[str, list[str]]]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), and self-imports."""
    edges = {m: sorted({t for t, _ in targets if t not in FACES}) for m, targets in graph.items() if m not in FACES}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def layering_problems(root: Path) -> list[str]:
    """One sentence per broken rule (empty: the layering holds)."""
    graph = import_graph(root)
    problems = [f"import cycle: {' <-> '.join(cycle)}" for cycle in find_cycles(graph)]
    for module, targets in sorted(graph.items()):
        if module in FACES:
            continue
        for target, names in targets:
            source_area, target_area = area(module), area(target)
            if source_area == "library" and target_area != "library":
                problems.append(f"library module {module} imports the wing module {target}")
            elif "library" not in (source_area, target_area) and source_area != target_area:
                if (source_area, target_area) not in ALLOWED_WING_IMPORTS:
                    problems.append(f"wing {source_area} imports wing {target_area} ({module} -> {target}), not an allowed pair")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                problems.append(f"{module} imports private name(s) {private} from {target}")
    return problems


def test_the_package_layering_holds():
    assert layering_problems(PACKAGE) == []


def test_every_wing_exists_and_the_library_is_at_the_top():
    tops = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert set(WINGS) <= tops
    library = [p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("__")]
    for lesson_module in ("blocks", "unet", "losses", "metrics", "boundary", "data", "folder", "transforms",
                          "train", "checkpoint", "inference", "runtime"):
        assert lesson_module in library


# -- the checks themselves, on synthetic packages that break one rule each -------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "unet_helpers"
    for name, source in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root


def test_a_cycle_is_found(tmp_path):
    root = _package(tmp_path, {"a.py": "from .b import g\n", "b.py": "def g():\n    from .a import f\n"})
    assert layering_problems(root) == ["import cycle: a <-> b"]


def test_a_cycle_through_a_wing_face_is_found(tmp_path):
    root = _package(tmp_path, {
        "checks/__init__.py": "from .catalogue import exercise\n",
        "checks/catalogue.py": "from .spec import Spec\n",
        "checks/spec.py": "from . import exercise\n",
        "checks/exercise.py": "from ..checks import catalogue\n",
    })
    assert any("import cycle" in p and "checks.catalogue" in p for p in layering_problems(root))


def test_the_library_importing_a_wing_is_found(tmp_path):
    root = _package(tmp_path, {"train.py": "from .inspector import inspect_masks\n", "inspector/__init__.py": ""})
    assert layering_problems(root) == ["library module train imports the wing module inspector"]


def test_wings_importing_each_other_outside_the_allowed_pairs_is_found(tmp_path):
    root = _package(tmp_path, {
        "views/__init__.py": "", "views/demo.py": "import unet_helpers.cli.common\n",
        "cli/__init__.py": "", "cli/common.py": "", "cli/inspect.py": "from ..inspector import x\n",
        "inspector/__init__.py": "x = 1\n",
    })
    assert layering_problems(root) == ["wing views imports wing cli (views.demo -> cli.common), not an allowed pair"]


def test_a_private_name_across_modules_is_found(tmp_path):
    root = _package(tmp_path, {"folder.py": "def _lookup():\n    pass\n", "cli/__init__.py": "",
                               "cli/train.py": "from ..folder import _lookup, read_mask\n"})
    assert layering_problems(root) == ["cli.train imports private name(s) ['_lookup'] from folder"]


@pytest.mark.parametrize("source", ["from . import b\n", "import unet_helpers.b\n", "from unet_helpers.b import c\n"])
def test_every_import_spelling_is_read(tmp_path, source):
    root = _package(tmp_path, {"a.py": source, "b.py": "from .a import x\nc = 1\n"})
    assert layering_problems(root) == ["import cycle: a <-> b"]
