"""The layout rules of harness/ (issue 13), checked so that they stay true:

- at most 8 modules outside sub-packages;
- no Python file over 500 lines;
- no import cycle between harness modules, counting imports inside functions;
- an import inside a function only where it keeps a heavy optional dependency lazy, with
  a comment saying so (on the import's line or the line above).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "harness"
MAX_TOP_MODULES = 8
MAX_LINES = 500


def _modules(root: Path = HARNESS) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under root."""
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported dotted name lives in (a module, or an attribute of one)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, ast.AST]]:
    """(imported harness module, node) for every import in the file, at any depth."""
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] or [base]
        for n in names:
            if n.startswith("harness"):
                target = _resolve(n, modules)
                if target and target != module:
                    out.append((target, node))
    return out


def _function_imports(path: Path) -> list[ast.AST]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def import_graph(root: Path = HARNESS) -> dict[str, set[str]]:
    """Module -> the harness modules it imports. A package's __init__ counts as the
    parent of its modules: importing harness.a.b runs harness.a first, but that is an
    order, not a dependency, so it is not an edge."""
    modules = _modules(root)
    return {m: {t for t, _ in _imports(m, p, modules)} for m, p in modules.items()}


def test_few_modules_outside_subpackages():
    top = sorted(p.name for p in HARNESS.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_MODULES, f"harness/ has {len(top)} loose modules: {top}"


@pytest.mark.parametrize("path", sorted(HARNESS.rglob("*.py")), ids=lambda p: str(p.relative_to(HARNESS)))
def test_no_long_file(path: Path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(HARNESS.parent)} has {n} lines (> {MAX_LINES})"


def test_no_import_cycle():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles in harness/ (imports inside functions count): " + \
        "; ".join(" <-> ".join(c) for c in cycles)


def test_imports_inside_functions_say_why():
    bad = []
    for path in sorted(HARNESS.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in _function_imports(path):
            here, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
            if "#" not in here and not above.startswith("#"):
                bad.append(f"{path.relative_to(HARNESS.parent)}:{node.lineno}: {here.strip()}")
    assert not bad, "imports inside functions without a comment saying why:\n" + "\n".join(bad)


def test_the_cycle_check_finds_a_cycle(tmp_path: Path):
    """The check itself: two modules importing each other inside functions are a cycle."""
    pkg = tmp_path / "harness"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from harness.b import g\n")
    (pkg / "b.py").write_text("def g():\n    from harness import a\n")
    assert _cycles(import_graph(pkg)) == [["harness.a", "harness.b"]]
