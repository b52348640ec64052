"""The package's shape: the physics depends on nothing above it, and imports make no cycle.

``deepemg.physics`` is the bottom layer: ``deepemg.opensim`` builds its models, the
specification resolves an estimator's ``model`` into one, and the estimators use it. Each test
reads the source (``ast``), so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "deepemg"

# What the physics must never import, even inside a function: the layers built on it.
ABOVE_PHYSICS = (
    "deepemg.opensim",
    "deepemg.specification",
    "deepemg._base",
    "deepemg.regressor",
    "deepemg.ensemble",
    "deepemg.streaming",
    "baselines",
)


def _modules() -> dict[str, Path]:
    """Every module of deepemg, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement of module ``name`` can load.

    ``from a import b`` can load ``a`` and ``a.b``: both are returned.
    """
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        stem = ".".join(base + ([node.module] if node.module else []))
    else:
        stem = node.module or ""
    return [stem] + [f"{stem}.{alias.name}" for alias in node.names]


def _is_type_checking(node: ast.AST) -> bool:
    """Whether ``node`` is ``if TYPE_CHECKING:`` (never run)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST, at_import_only: bool):
    """The import statements of a module: all of them, or those run when it is imported.

    Run at import: the module's and its classes' bodies, ``try``/``if`` blocks included;
    not a function's body, nor an ``if TYPE_CHECKING:`` block.
    """
    skip = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        for child in ast.iter_child_nodes(node):
            if at_import_only and (isinstance(child, skip) or _is_type_checking(child)):
                continue
            todo.append(child)


def _dynamic_imports(tree: ast.AST) -> list[str]:
    """Module names given as strings to ``importlib.import_module`` or ``__import__``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        function = node.func
        called = getattr(function, "attr", None) or getattr(function, "id", None)
        first = node.args[0]
        if called in {"import_module", "__import__"} and isinstance(first, ast.Constant):
            found.append(str(first.value))
    return found


def import_graph(at_import_only: bool) -> dict[str, set[str]]:
    """Edges module -> the modules of deepemg it imports (``from a import b``: ``a.b`` or ``a``)."""
    known = _modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in _import_nodes(tree, at_import_only):
            names = _imported(name, path, node)
            if isinstance(node, ast.ImportFrom):  # `from a import b`: the module a.b, or a
                stem, members = names[0], names[1:]
                loaded = [m for m in members if m in known] or [stem]
            else:
                loaded = names
            graph[name].update(m for m in loaded if m in known and m != name)
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo.extend(graph[v])
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, sorted."""
    reach = {v: _reachable(graph, v) for v in graph}
    components = {
        frozenset({v} | {w for w in reach[v] if v in reach[w]}) for v in graph if v in reach[v]
    }
    return sorted(sorted(c) for c in components if len(c) > 1)


def _physics_files() -> list[tuple[str, Path]]:
    return [(n, p) for n, p in _modules().items() if n.split(".")[:2] == ["deepemg", "physics"]]


@pytest.mark.parametrize(("name", "path"), _physics_files(), ids=lambda x: str(x))
def test_the_physics_imports_nothing_built_on_it(name, path):
    """No module of deepemg.physics imports the OpenSim bridge, the specification or an
    estimator, even inside a function or through importlib (that closed an import cycle)."""
    tree = ast.parse(path.read_text(), str(path))
    loaded = [m for node in _import_nodes(tree, False) for m in _imported(name, path, node)]
    loaded += _dynamic_imports(tree)
    wrong = sorted(
        {m for m in loaded for above in ABOVE_PHYSICS if m == above or m.startswith(above + ".")}
    )
    if "deepemg" in loaded:  # the package itself imports the estimators
        wrong.append("deepemg")
    assert not wrong, f"{name} imports {wrong}: build models in deepemg.opensim instead."


def test_the_physics_builds_no_model_from_a_file():
    """The constructors live in deepemg.opensim and the specification, with no alias here."""
    from deepemg.physics import MusculoskeletalModel

    for old in ("elbow", "from_opensim", "resolve"):
        assert not hasattr(MusculoskeletalModel, old), old


def test_no_import_cycle_at_import_time():
    """Importing any module of deepemg never re-enters a module that is still importing."""
    assert cycles(import_graph(at_import_only=True)) == []


def test_the_physics_is_in_no_import_cycle():
    """Counting imports inside functions too, no cycle goes through deepemg.physics."""
    found = [
        c for c in cycles(import_graph(at_import_only=False)) if any("physics" in m for m in c)
    ]
    assert found == []


def test_the_graph_sees_a_cycle():
    """The cycle finder finds one (a check that the tests above can fail)."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from ..opensim import build_model\n")
    path = PACKAGE / "physics" / "model.py"
    nodes = list(_import_nodes(tree, False))
    assert "deepemg.opensim" in _imported("deepemg.physics.model", path, nodes[0])
    assert list(_import_nodes(tree, True)) == []
