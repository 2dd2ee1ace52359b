"""How the package is put together: no import cycles among its modules, counting the imports inside
functions too (a cycle hidden in a function still makes two modules one)."""

import ast
from pathlib import Path

import drawviz

PACKAGE = Path(drawviz.__file__).parent


def _imports(path: Path) -> set[str]:
    """The drawviz modules a module imports anywhere in its source (top level or inside functions)."""
    here = path.stem
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .x import y
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import x, y
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("drawviz."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("drawviz."))
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return (found & modules) - {here}


def _cycle(graph: dict[str, set[str]]):
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycles_even_inside_functions():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    assert "plots" in graph["animation"] or "style" in graph["animation"]  # the walk sees real imports
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
