"""Fingerprints: hashes of code (a family module and the project modules it imports), parameters and inputs."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import sysconfig
from pathlib import Path
from typing import Any, Iterable, Mapping

_EXTERNAL_ROOTS = tuple(
    os.path.realpath(p) for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


#: Bookkeeping modules whose edits never change a value (adding a family to the registry list).
IGNORED_MODULES = frozenset({"bqx.core.registry"})


def _origin(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return os.path.realpath(spec.origin)


def _is_project(name: str, origin: str, root_top: str, root_dir: str) -> bool:
    if origin.startswith(_EXTERNAL_ROOTS) and not name.startswith("bqx"):
        return False
    top = name.split(".")[0]
    return top == "bqx" or top == root_top or os.path.dirname(origin) == root_dir


def _imports(name: str, origin: str) -> set[str]:
    tree = ast.parse(Path(origin).read_text(), filename=origin)
    is_pkg = os.path.basename(origin) == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(p for p in base_parts if p)
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base:
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return found


def module_closure(module: str) -> dict[str, str]:
    """`module` and the project modules it imports, transitively: module name -> source file."""
    origin = _origin(module)
    if origin is None:
        raise ImportError(f"cannot find the source of module {module!r}")
    root_top, root_dir = module.split(".")[0], os.path.dirname(origin)
    seen: dict[str, str] = {module: origin}
    todo = [module]
    while todo:
        name = todo.pop()
        for dep in sorted(_imports(name, seen[name])):
            if dep in seen or dep in IGNORED_MODULES:
                continue
            dep_origin = _origin(dep)
            if dep_origin is None or not _is_project(dep, dep_origin, root_top, root_dir):
                continue
            seen[dep] = dep_origin
            todo.append(dep)
    return dict(sorted(seen.items()))


def code_digest(modules: Iterable[str]) -> str:
    """Hash of the source of `modules` and of every project module they import."""
    files: dict[str, str] = {}
    for mod in modules:
        files.update(module_closure(mod))
    h = hashlib.sha256()
    for name, origin in sorted(files.items()):
        h.update(name.encode())
        h.update(hashlib.sha256(Path(origin).read_bytes()).digest())
    return h.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def digest(payload: Any) -> str:
    """Stable hash of plain data (mappings, sequences, numbers, strings)."""
    text = json.dumps(_plain(payload), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
