"""Layers of the whole package, checked from every module's imports (module-level and inside functions alike):
lower layers never import higher ones, no import cycle anywhere, no source file over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "faceprint"

CORE = ("faceprint.io", "faceprint.faults", "faceprint.home", "faceprint.config", "faceprint.distances")
LOW = (*CORE, "faceprint.data", "faceprint.align", "faceprint.models", "faceprint.backbones")
HIGH = ("faceprint.bulk", "faceprint.search", "faceprint.people", "faceprint.serve", "faceprint.cli")
RULES = [  # (importers, what they never import)
    (LOW, HIGH),
    (("faceprint.bulk",), ("faceprint.search", "faceprint.people", "faceprint.serve", "faceprint.cli")),
    (("faceprint.search",), ("faceprint.people", "faceprint.serve", "faceprint.cli")),
    (("faceprint.people",), ("faceprint.serve", "faceprint.cli")),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class _Imports(ast.NodeVisitor):
    """Every faceprint module a file imports, outside ``if TYPE_CHECKING:`` blocks."""

    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.module, self.package, self.known, self.found = module, module if is_package else module.rpartition(".")[0], known, []

    def _add(self, name: str, line: int) -> None:
        while name and name not in self.known:  # a name imported from a module: the module itself
            name = name.rpartition(".")[0]
        if name and name != self.module:
            self.found.append((name, line))

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.startswith("faceprint"):
                self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            base = ".".join(filter(None, [self.package.rsplit(".", node.level - 1)[0] if node.level > 1 else self.package, base]))
        if base.startswith("faceprint"):
            for alias in node.names:
                self._add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in self.known else base, node.lineno)


def _graph() -> dict[str, list[tuple[str, int]]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        visitor = _Imports(name, path.name == "__init__.py", set(mods))
        visitor.visit(ast.parse(path.read_text()))
        graph[name] = visitor.found
    return graph


def test_lower_layers_never_import_higher_ones() -> None:
    graph = _graph()
    assert len(graph) > 100 and sum(map(len, graph.values())) > 300  # the walk saw the package and its imports
    offenders = [f"{m}:{line} imports {t}" for importers, banned in RULES for m, edges in graph.items()
                 if _under(m, importers) for t, line in edges if _under(t, banned)]
    assert offenders == []


def test_no_import_cycle_anywhere() -> None:
    graph = {m: sorted({t for t, _ in edges}) for m, edges in _graph().items()}
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The visitor resolves the import forms the package uses (a check that could not see them would pass anything)."""
    visitor = _Imports("faceprint.people.views", False, {"faceprint.people.library", "faceprint.people", "faceprint.search"})
    visitor.visit(ast.parse("def f():\n    from faceprint.people.library import PEOPLE_FAR\n"
                            "from faceprint import search\nimport faceprint.people.library as lib\n"
                            "if TYPE_CHECKING:\n    from faceprint.search import x\n"))
    assert visitor.found == [("faceprint.people.library", 2), ("faceprint.search", 3), ("faceprint.people.library", 4)]


def test_no_source_file_over_400_lines() -> None:
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in PKG.rglob("*.py")}
    assert len(sizes) > 100 and {p: n for p, n in sizes.items() if n > 400} == {}
