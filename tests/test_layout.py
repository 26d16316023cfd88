"""The shape of the code, held by a test: small modules and functions, no import circles.

Limits from DESIGN.md: no module over 500 lines, no function over 80 lines, and no import circle
between pipeline modules, counting imports placed inside functions (grimp sees those too), so a
circle cannot be hidden by moving an import into a function.
"""

from __future__ import annotations

import ast
import re

import pytest

from tests.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "pipeline"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _modules() -> list:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_500_lines():
    long = {}
    for path in _modules():
        lines = path.read_text(encoding="utf-8").count("\n")
        rel = str(path.relative_to(REPO_ROOT))
        if lines > MAX_MODULE_LINES:
            long[rel] = lines
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"


def test_no_function_over_80_lines():
    long = {}
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                known = MAX_FUNCTION_LINES
                if length > known:
                    long[f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name}"] = length
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_even_through_function_level_imports():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")
    g = grimp.build_graph("pipeline", cache_dir=None)
    graph = {m: {i for i in g.find_modules_directly_imported_by(m) if i.startswith("pipeline")} for m in g.modules}
    circles = _cycles(graph)
    details = []
    for members in circles:
        chain = g.find_shortest_chain(importer=members[0], imported=members[1]) or ()
        back = g.find_shortest_chain(importer=members[1], imported=members[0]) or ()
        details.append(" -> ".join(chain) + " | " + " -> ".join(back))
    assert not circles, "import circles (move the shared part down a layer):\n" + "\n".join(details)


def test_every_type_ignore_names_its_error_code_and_a_reason():
    bare = []
    for path in _modules():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "type: ignore" in line and not re.search(r"type: ignore\[[\w-]+(?:, *[\w-]+)*\]\s+#\s*\S", line):
                bare.append(f"{path.relative_to(REPO_ROOT)}:{number}")
    assert not bare, f"'# type: ignore[code]  # why' expected: {bare}"
