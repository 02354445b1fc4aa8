"""The package layout: no import cycle anywhere in bqx, and imports follow the map in docs/CONTRIBUTING.md.

Every `import` and `from ... import` statement counts, at module level and inside functions alike
(a function-level import is a dependency that merely runs later). Relative imports are resolved.
Importing `a.b.c` also runs the packages `a` and `a.b`, so it counts as importing them too (except
the importer's own enclosing packages, which are already running). Imports by name at run time
(`importlib.import_module(name)`: the registry loading the family modules it lists, the worker
importing user families) are the plugin boundary and are not statements, so they do not count.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAP_DOC = ROOT / "docs" / "CONTRIBUTING.md"
MAP_HEADING = "## Package map"


@dataclass(frozen=True)
class Import:
    target: str  # the module or package imported
    line: int


def modules(root: Path, package: str) -> dict[str, Path]:
    """Module name -> file of every module of `package` found under `root`."""
    out: dict[str, Path] = {}
    for f in sorted((root / package).rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def _base(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    parts = module.split(".") if is_pkg else module.split(".")[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([name] if name else []))


def import_graph(root: Path, package: str) -> dict[str, list[Import]]:
    """Module -> the modules and packages of `package` it imports (see the module docstring)."""
    mods = modules(root, package)
    graph: dict[str, list[Import]] = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        found: list[Import] = []
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _base(mod, is_pkg, node.level, node.module)
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for name in names:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    target = ".".join(parts[:i])
                    if target in mods and target != mod and not mod.startswith(target + "."):
                        found.append(Import(target, node.lineno))
        graph[mod] = sorted(set(found), key=lambda i: (i.target, i.line))
    return graph


def cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """The import cycles: each strongly connected set of modules with more than one member, sorted."""
    edges = {m: sorted({i.target for i in imps}) for m, imps in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def describe_cycle(graph: dict[str, list[Import]], members: list[str]) -> str:
    inside = set(members)
    links = [f"{m} -> {i.target} (line {i.line})" for m in members for i in graph[m] if i.target in inside]
    return "import cycle among " + ", ".join(members) + ": " + "; ".join(links)


# -- the map ------------------------------------------------------------------------------------

def read_map(text: str) -> dict[str, set[str]]:
    """Unit -> units it may import, from the table under MAP_HEADING.

    A unit is a top-level module (`universe.py`) or package (`engine/`); a row reads
    | `unit` | what it owns | `other`, `units` (or —) |.
    """
    section = text.split(MAP_HEADING, 1)[1].split("\n## ", 1)[0]
    rules: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[\w.]+/?`", cells[0]):
            rules[cells[0].strip("`")] = set(re.findall(r"`([\w.]+/?)`", cells[2]))
    return rules


def unit_of(module: str, files: dict[str, Path]) -> str:
    """`bqx.engine.run` and `bqx.engine` -> `engine/`, `bqx.universe` -> `universe.py`, `bqx` -> `__init__.py`."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__.py"
    top = ".".join(parts[:2])
    return parts[1] + ("/" if files[top].name == "__init__.py" else ".py")


def units_in_tree(root: Path, package: str) -> set[str]:
    base = root / package
    return ({p.name + "/" for p in base.iterdir() if (p / "__init__.py").is_file()}
            | {p.name for p in base.glob("*.py")})


def layering_violations(graph: dict[str, list[Import]], rules: dict[str, set[str]], files: dict[str, Path]) -> list[str]:
    """Imports from one unit into another that the map does not allow."""
    bad = []
    for mod, imps in sorted(graph.items()):
        unit = unit_of(mod, files)
        for imp in imps:
            other = unit_of(imp.target, files)
            if other != unit and other not in rules.get(unit, set()):
                bad.append(f"{mod} imports {imp.target} (line {imp.line}): {unit} may not import {other}")
    return bad


def _graph_of_rules(rules: dict[str, set[str]]) -> dict[str, list[Import]]:
    return {u: [Import(t, 0) for t in sorted(ts)] for u, ts in rules.items()}


# -- the package --------------------------------------------------------------------------------

GRAPH = import_graph(ROOT, "bqx")
RULES = read_map(MAP_DOC.read_text())


def test_bqx_has_no_import_cycle():
    assert GRAPH and sum(map(len, GRAPH.values())) > 100, "the import walk found (almost) no imports"
    found = cycles(GRAPH)
    assert not found, "\n".join(describe_cycle(GRAPH, c) for c in found)


def test_the_map_lists_exactly_the_units_of_the_tree():
    assert len(RULES) >= 10, f"too few rows parsed from the map in {MAP_DOC}"
    tree = units_in_tree(ROOT, "bqx")
    assert set(RULES) == tree, f"in the tree, not the map: {sorted(tree - set(RULES))}; " \
                               f"in the map, not the tree: {sorted(set(RULES) - tree)}"
    unknown = {u: sorted(ts - tree) for u, ts in RULES.items() if ts - tree}
    assert not unknown, f"the map allows imports of units that do not exist: {unknown}"


def test_the_map_is_a_layering():
    found = cycles(_graph_of_rules(RULES))
    assert not found, f"the map's rules let units import each other: {found}"


def test_imports_follow_the_map():
    bad = layering_violations(GRAPH, RULES, modules(ROOT, "bqx"))
    assert not bad, "\n".join(bad)


def test_the_stated_rules_hold():
    """The rules CONTRIBUTING.md states in words, checked against the map (the map itself is checked above)."""
    assert "engine/" not in RULES["bars/"] and "engine/" not in RULES["store/"]
    assert RULES["kernels/"] <= {"universe.py"}
    assert not RULES["families/"] & {"engine/", "store/", "bars/", "validate/", "export/", "cli/"}
    assert not RULES["core/"] & {"families/", "engine/", "store/", "bars/", "validate/", "export/", "cli/"}


# -- the checker can fail -----------------------------------------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_cycle_is_found_and_named(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "from . import b\n",  # relative, module level
        "pkg/low/b.py": "def f():\n    from ..high import c\n",  # relative, inside a function
        "pkg/high/__init__.py": "",
        "pkg/high/c.py": "import pkg.low.a\n",
        "pkg/free.py": "import pkg.low.b\n",
    })
    graph = import_graph(root, "pkg")
    assert cycles(graph) == [["pkg.high.c", "pkg.low.a", "pkg.low.b"]]
    text = describe_cycle(graph, cycles(graph)[0])
    assert "pkg.low.b -> pkg.high.c (line 2)" in text and "pkg.high.c -> pkg.low.a (line 1)" in text


def test_a_package_init_counts_as_imported(tmp_path):
    # bars/rules.py <-> bars/readers/__init__.py was such a cycle: importing readers._common runs readers/__init__
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/rules.py": "from pkg.readers._common import X\n",
        "pkg/readers/__init__.py": "from pkg import rules\n",
        "pkg/readers/_common.py": "X = 1\n",
    })
    assert cycles(import_graph(root, "pkg")) == [["pkg.readers", "pkg.rules"]]


def test_a_layering_violation_is_found(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/base.py": "",
        "pkg/bars/__init__.py": "",
        "pkg/bars/ingest.py": "from pkg.base import x\ndef f():\n    from pkg.engine import lock\n",
        "pkg/engine/__init__.py": "",
        "pkg/engine/lock.py": "from pkg.bars import ingest\n",
    })
    doc = ("## Package map\n\n| unit | owns | may import |\n|---|---|---|\n"
           "| `base.py` | x | — |\n| `bars/` | input | `base.py` |\n| `engine/` | run | `bars/`, `base.py` |\n")
    rules = read_map(doc)
    assert rules == {"base.py": set(), "bars/": {"base.py"}, "engine/": {"bars/", "base.py"}}
    bad = layering_violations(import_graph(root, "pkg"), rules, modules(root, "pkg"))
    assert bad == [
        "pkg.bars.ingest imports pkg.engine (line 3): bars/ may not import engine/",
        "pkg.bars.ingest imports pkg.engine.lock (line 3): bars/ may not import engine/",
    ]
    assert cycles(_graph_of_rules({**rules, "base.py": {"engine/"}})) == [["bars/", "base.py", "engine/"]]


@pytest.mark.parametrize("module, unit", [("bqx", "__init__.py"), ("bqx.universe", "universe.py"),
                                          ("bqx.engine", "engine/"), ("bqx.bars.readers.generic", "bars/")])
def test_unit_of(module, unit):
    assert unit_of(module, modules(ROOT, "bqx")) == unit


def test_test_modules_have_unique_names():
    """pytest imports test modules by basename (no __init__.py under tests/): two with one name fail to collect."""
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted(Path(__file__).parent.rglob("test_*.py")):
        if path.name in seen:
            clashes.append(f"{seen[path.name]} and {path}")
        seen.setdefault(path.name, path)
    assert len(seen) > 50, "the walk found (almost) no test modules"
    assert not clashes, "test modules share a name: " + "; ".join(clashes)
