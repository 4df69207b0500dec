"""The house (docs/architecture.md): every import inside toondb points down the
layers, front ends do not import one another, and there is no import circle.

Every import statement of every module counts, wherever it stands (in a function,
under TYPE_CHECKING): a lazy import is still a dependency a reader must know."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from paths import ROOT

PACKAGE = ROOT / "toondb"

# rank of each top-level part of the package; a part may import parts of lower rank
# and itself, never a part of the same rank (siblings) or of a higher rank
RANKS = {
    "errors": 0, "config": 0, "version": 0,
    "storage": 1,
    "codec": 2,
    "sql": 3,
    "vector": 4, "text": 4, "toon": 4,
    "database": 5,
    "replication": 4,  # beside the front ends: it reads the storage engine only
    "distributed": 6,
    "ipc": 7,
    "dbapi": 8, "benchgate": 8,
    "cli": 9, "pytest_plugin": 9, "sqlalchemy": 9,  # the dialect sits on the driver
    "server": 10, "__main__": 10, "bulk": 10, "__init__": 10,  # entry points
}  # fmt: skip

# the one arrow that runs back up (docs/architecture.md says why)
ALLOWED_UP = {
    ("toondb.database", "toondb.dbapi.connection"),
    ("toondb.database", "toondb.dbapi.backend"),
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else parts
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix in (".py", ".pyx", ".pxi") and "__pycache__" not in path.parts:
            out[_module_name(path)] = path
    return out


def _imports(path: Path, module: str) -> set[tuple[str, ...]]:
    """What path imports from toondb: (module,) for ``import m``, (module, name, ...)
    for ``from m import name, ...`` (a .pyx/.pxi: its Python-level import lines)."""
    text = path.read_text()
    if path.suffix != ".py":  # Cython: read the plain import lines only
        found: set[tuple[str, ...]] = set()
        for line in text.splitlines():
            words = line.strip().split()
            if len(words) >= 2 and words[0] in ("import", "from") and words[1].startswith("toondb"):
                imported = [w.strip(",()") for w in words[3:]] if words[0] == "from" else []
                found.add((words[1], *[w for w in imported if w]))
        return found
    names: set[tuple[str, ...]] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names |= {(a.name,) for a in node.names if a.name.startswith("toondb")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.startswith("toondb"):
                names.add((base, *[a.name for a in node.names]))
    return names


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted import name lands in (a name imported from a module is
    that module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    modules = _sources()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for base, *names in _imports(path, module):
            subs = [f"{base}.{n}" for n in names]
            # "from pkg import sub" imports pkg.sub (pkg's __init__ runs, but what the
            # module takes is sub); "from m import name" takes name from m
            targets |= {_resolve(s, modules) for s in subs if s in modules}
            if not subs or any(s not in modules for s in subs):
                targets.add(_resolve(base, modules))
        graph[module] = {t for t in targets if t and t != module}
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_part_of_the_package_has_a_rank():
    assert {_part(m) for m in _graph()} <= set(RANKS)


def test_imports_point_down_the_layers():
    wrong = []
    for module, targets in _graph().items():
        here = _part(module)
        for target in sorted(targets):
            there = _part(target)
            if there == here or (module, target) in ALLOWED_UP or target == "toondb":
                continue
            if RANKS[there] >= RANKS[here]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_only_the_top_imports_the_public_package():
    importers = [m for m, t in _graph().items() if "toondb" in t and RANKS[_part(m)] < 9]
    assert importers == []


def test_there_is_no_import_circle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert circles == []


@pytest.mark.parametrize("limit", [1200])
def test_no_source_file_is_too_long_to_hold_in_mind(limit):
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*")
        if p.suffix in (".py", ".pyx", ".pxi", ".pxd", ".h")
        and "_tables" not in p.name
        and (n := len(p.read_text().splitlines())) > limit
    }
    assert long == {}
