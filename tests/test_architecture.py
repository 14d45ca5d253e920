"""The import graph runs one way (no loop anywhere), library code never imports the CLI or prints."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "backends":
        parts[0] = "qannealq.backends"
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [*ROOT.joinpath("qannealq").rglob("*.py"), *ROOT.joinpath("backends").rglob("*.py")]
    return {_module_name(p): p for p in files}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every qannealq module ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {name: _imports(name, path, known) for name, path in sources.items()}


def _parents_removed(g: dict[str, set[str]]) -> dict[str, set[str]]:
    """Importing ``a.b`` runs ``a/__init__``: a package's own submodules do not count as a loop through it."""
    return {name: {d for d in deps if not name.startswith(d + ".")} for name, deps in g.items()}


def test_the_import_graph_has_no_loop():
    g = _parents_removed(graph())
    try:
        list(graphlib.TopologicalSorter(g).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import loop: {' -> '.join(exc.args[1])}")


def test_a_loop_is_detected():
    g = {"qannealq.a": {"qannealq.b"}, "qannealq.b": {"qannealq.a"}}
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(g).static_order())


def test_library_code_never_imports_the_cli_or_prints():
    for name, path in _sources().items():
        if name.startswith("qannealq.cli") or name == "qannealq.__main__":  # the command and `python -m qannealq`
            continue
        deps = _imports(name, path, set(_sources()))
        assert not any(d.startswith("qannealq.cli") for d in deps), f"{name} imports the CLI"
        calls = [n for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"]
        assert not calls, f"{name} prints (line {calls[0].lineno}); report through a Reporter or logging"


def test_the_core_imports_backends_only_through_the_registry():
    for name, path in _sources().items():
        if name.startswith(("qannealq.backends", "qannealq.cli")):
            continue
        deps = _imports(name, path, set(_sources()))
        direct = sorted(d for d in deps if d.startswith("qannealq.backends."))
        assert not direct, f"{name} imports backend modules {direct}: use qannealq.backends.get_sampler"
