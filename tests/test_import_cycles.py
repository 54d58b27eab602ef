"""No two `pillarbox` modules import each other, directly or through others.

A cycle means neither module can be understood, tested or replaced without the other, and
Python only gets away with it while the import order happens to work out (an import
moved into a function hides the cycle from the interpreter, not from the design). The
graph comes from the source (`tests.import_graph`): module-level imports, imports inside
functions and imports under `if TYPE_CHECKING:` all count; `from pkg import name` is an
edge to `pkg` unless `name` is a submodule. Importing a submodule is not counted as
importing its parent packages, so a package `__init__` re-exporting its modules is fine.

Each cycle (a strongly connected component of the graph) belongs to the innermost package
that contains all of its modules, and each package is one test case, so a known cycle is
marked in one place and a new one fails where it is.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Mapping, Set

import pytest

from tests.import_graph import import_sites, is_module, modules

Graph = Mapping[str, Mapping[str, int]]  # module -> {imported pillarbox module: line}


def import_graph() -> dict[str, dict[str, int]]:
    """Every pillarbox module and the pillarbox modules it imports (line of the import)."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules():
        sites = import_sites(path, module)
        graph[module] = {t: line for t, line in sites.items() if is_module(t) and t != module}
    return graph


def components(graph: Graph) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def one_cycle(graph: Graph, component: Set[str]) -> list[str]:
    """A shortest cycle through the first module of `component`, first module repeated
    at the end."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node]):
                if succ not in component:
                    continue
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def owner(component: Set[str], packages: Set[str]) -> str:
    """The innermost package containing every module of `component`."""
    homes = [m.split(".") if m in packages else m.split(".")[:-1] for m in component]
    common = homes[0]
    for home in homes[1:]:
        n = 0
        while n < min(len(common), len(home)) and common[n] == home[n]:
            n += 1
        common = common[:n]
    return ".".join(common)


def describe(graph: Graph, component: Set[str]) -> str:
    chain = one_cycle(graph, component)
    steps = "\n".join(f"  {a} (line {graph[a][b]}) -> {b}" for a, b in itertools.pairwise(chain))
    return f"cycle among {sorted(component)}:\n{steps}"


GRAPH = import_graph()
PACKAGES = {m for m, path in modules() if path.name == "__init__.py"}

# Packages with a cycle that is known and being removed (strict xfail: the test fails
# once the cycle is gone, so the entry goes with it). None today.
KNOWN_CYCLES: dict[str, str] = {}


def _case(package: str) -> object:
    if package in KNOWN_CYCLES:
        mark = pytest.mark.xfail(strict=True, reason=KNOWN_CYCLES[package])
        return pytest.param(package, marks=mark, id=package)
    return pytest.param(package, id=package)


@pytest.mark.parametrize("package", [_case(p) for p in sorted(PACKAGES)])
def test_no_import_cycle(package: str) -> None:
    """No import cycle belongs to this package (its modules and subpackages' modules,
    when no smaller package holds the whole cycle)."""
    cycles = [c for c in components(GRAPH) if owner(c, PACKAGES) == package]
    assert not cycles, "\n".join(describe(GRAPH, c) for c in cycles)


def test_every_cycle_has_a_case() -> None:
    """A cycle is always reported by some case: its owner is one of the packages."""
    for component in components(GRAPH):
        assert owner(component, PACKAGES) in PACKAGES


def test_finder_reports_a_cycle_and_its_chain() -> None:
    """The finder itself: a three-module loop beside an acyclic branch is found, owned by
    their common package, and printed as the chain of imports."""
    graph = {
        "p.a": {"p.q.b": 3},
        "p.q.b": {"p.q.c": 5, "p.d": 1},
        "p.q.c": {"p.a": 7},
        "p.d": {},
    }
    (component,) = components(graph)
    assert component == {"p.a", "p.q.b", "p.q.c"}
    assert owner(component, {"p", "p.q"}) == "p"
    assert one_cycle(graph, component) == ["p.a", "p.q.b", "p.q.c", "p.a"]
    assert "p.q.c (line 7) -> p.a" in describe(graph, component)
    assert components({"p.a": {"p.d": 1}, "p.d": {}}) == []


IMAP_MODULES = sorted(m for m in GRAPH if m.startswith("pillarbox.server.imap"))


@pytest.mark.parametrize("module", IMAP_MODULES)
def test_imap_module_imports_alone(module: str) -> None:
    """Each IMAP front-end module imports first in a fresh interpreter: no module relies
    on another having been imported before it to break a cycle."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
