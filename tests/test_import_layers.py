"""The package's imports show its layers: the only import cycle is the graph calling itself
(graph/builder <-> nodes/spawn_subgraph), lower rooms never import front ends, tools never import
the graph, and nothing installed imports `tests` (which is not installed)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("graph", "nodes", "tools", "report", "cli", "mcp_server", "bench")
LOWER = ("graph", "nodes", "tools", "report")
FRONT_ENDS = ("cli", "mcp_server", "bench")
ALLOWED_CYCLE = {"rlm_research.graph.builder", "rlm_research.nodes.spawn_subgraph"}


def package_modules() -> dict[str, Path]:
    modules = {}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(["rlm_research", *parts])] = path
    return modules


def imported_names(path: Path, modules: dict[str, Path] | None = None) -> set[str]:
    """Every absolute import in the file that runs, at any depth (function-level imports count
    too; `if TYPE_CHECKING:` ones never run).
    `from a import b` names the module a.b when there is one, else a."""
    names = set()
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in (modules or {}) else node.module)
    return names


def packages_run_first(importer: str, module: str, modules: dict[str, Path]) -> set[str]:
    """Importing a.b.c runs a.b's `__init__` first, unless the importer is inside a.b already
    (then that `__init__` is running or has run)."""
    parts = module.split(".")
    parents = {".".join(parts[:i]) for i in range(2, len(parts))}
    return {p for p in parents if p in modules and not importer.startswith(p + ".")}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    graph: dict[str, set[str]] = {}
    for m, p in modules.items():
        direct = {n for n in imported_names(p, modules) if n in modules}
        graph[m] = (direct | {q for n in direct for q in packages_run_first(m, n, modules)}) - {m}
    return graph


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in edges:
        if v not in index:
            visit(v)
    return found


def room(module: str) -> str:
    return module.split(".")[1]


def test_the_only_import_cycle_is_the_graph_calling_itself():
    assert cycles(import_graph()) == [ALLOWED_CYCLE]


def test_lower_rooms_never_import_front_ends_and_tools_never_import_the_graph():
    wrong = [
        f"{m} -> {t}"
        for m, targets in import_graph().items()
        for t in targets
        if (room(m) in LOWER and room(t) in FRONT_ENDS)
        or (room(m) == "tools" and room(t) == "graph")
    ]
    assert wrong == []


def test_nothing_installed_imports_tests():
    wrong = [
        f"{m} imports {n}"
        for m, path in package_modules().items()
        for n in imported_names(path)
        if n == "tests" or n.startswith("tests.")
    ]
    assert wrong == []


def test_any_module_can_be_imported_first():
    """A node importing its settings first once closed a cycle through `graph/__init__`."""
    first = ["rlm_research.nodes.observe", "rlm_research.tools.repl_host", "rlm_research.graph.api"]
    for module in first:
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 0, (module, done.stderr[-600:])


def test_a_cycle_is_found_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
