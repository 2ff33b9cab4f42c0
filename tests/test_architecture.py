"""The floors of docs/ARCHITECTURE.md, checked: every import of our own code (at the top, inside a
function or under TYPE_CHECKING) points to the same floor or one below, and no set of modules
imports itself in a circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.training_helpers import REPO_ROOT

# Lowest first. A module of floor N may import floors 0..N; training/'s own modules (errors, recipe,
# machine, mlflow_access, ...) are the floor its subpackages stand on.
FLOORS = (
    ("data",),
    ("training",),
    ("training.inference",),
    ("training.evaluation",),
    ("training.shipping",),
    ("training.fitting",),
    ("labeling", "serving"),
    ("operations",),
    ("benchmarks",),
    ("smista",),
)
PACKAGES = ("data", "training", "labeling", "serving", "operations", "benchmarks", "smista")


def module_files(root: Path) -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that `name` (a module, or a module.attribute) refers to."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def floor_of(module: str) -> int:
    best = None
    for index, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} is on no floor of FLOORS"
    return best[0]


def import_graph(root: Path = REPO_ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for name in names:
                target = owner(name, modules)
                if target is not None and target != module:
                    graph[module].add(target)
    return graph


def test_every_import_points_to_the_same_floor_or_below():
    upward = sorted(
        f"{module} (floor {floor_of(module)}) imports {target} (floor {floor_of(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if floor_of(target) > floor_of(module)
    )
    assert upward == []


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Sets of two or more modules that reach each other through imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path):
    """The two tests above would catch a violation: an import from training.inference up to
    training.fitting, and two modules importing each other."""
    fake = tmp_path / "repo"
    for package in PACKAGES:
        (fake / package).mkdir(parents=True)
        (fake / package / "__init__.py").write_text("")
    (fake / "training" / "inference").mkdir()
    (fake / "training" / "inference" / "__init__.py").write_text("")
    (fake / "training" / "fitting").mkdir()
    (fake / "training" / "fitting" / "__init__.py").write_text("")
    (fake / "training" / "inference" / "predict.py").write_text("def f():\n    from training.fitting import train\n")
    (fake / "training" / "fitting" / "train.py").write_text("from training.inference.predict import f\n")
    (fake / "data" / "a.py").write_text("from data import b\n")
    (fake / "data" / "b.py").write_text("import data.a\n")
    graph = import_graph(fake)
    assert "training.fitting.train" in graph["training.inference.predict"]  # found inside a function
    assert floor_of("training.fitting.train") > floor_of("training.inference.predict")
    assert sorted(circles(graph)) == [["data.a", "data.b"], ["training.fitting.train", "training.inference.predict"]]
