"""The package's shape: module sizes, the largest classes and functions, import cycles.

Prints the lines of every module of ``deepemg`` and ``baselines``, the largest classes and
functions (``def``/``class`` line to the last line, docstring included), and the cycles of the
import graph between the package's modules: at import time (module-level imports) and
counting the imports inside functions too. The numbers of issue 18's closing note come from
here.

    python benchmarks/code_shape.py [--top 8]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("deepemg", "baselines")


def modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _target(name: str, node: ast.ImportFrom, known: dict) -> list[str]:
    """The package modules an ``from ... import ...`` names."""
    package = name if known[name].name == "__init__.py" else name.rsplit(".", 1)[0]
    if node.level:
        base = package.split(".")
        base = base[: len(base) - node.level + 1]
        stem = ".".join(base + ([node.module] if node.module else []))
    else:
        stem = node.module or ""
    out = []
    for alias in node.names:
        full = f"{stem}.{alias.name}"
        if full in known:
            out.append(full)
        elif stem in known:
            out.append(stem)
    return out


def import_graph(module_level_only: bool) -> dict[str, set[str]]:
    """Edges module -> modules of the packages it imports."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # imports for the type checker only are not imports
            if (
                isinstance(node, ast.If)
                and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"
            ):
                node.body = []
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                graph[name].update(t for t in _target(name, node, known) if t != name)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in known)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:  # noqa: C901 - Tarjan's, as written
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def sizes() -> tuple[list, list]:
    """``(lines, kind, name)`` of every class and of every function, largest first."""
    classes, functions = [], []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                row = (node.end_lineno - node.lineno + 1, f"{name}.{node.name}")
                (classes if isinstance(node, ast.ClassDef) else functions).append(row)
    return sorted(classes, reverse=True), sorted(functions, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    print("module lines:")
    for name, path in sorted(
        modules().items(), key=lambda kv: -len(kv[1].read_text().splitlines())
    ):
        print(f"  {len(path.read_text().splitlines()):>5}  {name}")
    classes, functions = sizes()
    print("largest classes: " + ", ".join(f"{n} ({k})" for k, n in classes[: args.top]))
    print("largest functions: " + ", ".join(f"{n} ({k})" for k, n in functions[: args.top]))
    for label, level in (("at import", True), ("with imports inside functions", False)):
        found = cycles(import_graph(level))
        print(f"import cycles {label}: {found if found else 'none'}")


if __name__ == "__main__":
    main()
