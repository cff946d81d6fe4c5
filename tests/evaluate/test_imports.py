"""No import cycles in seapo.evaluate and seapo.sandbox, counting imports inside functions too.

Each module's imports (every ``import`` statement anywhere in it) are edges to the seapo modules they
load: ``from a.b import c`` loads ``a.b`` and, when ``c`` is a module, ``a.b.c``. A package's own
``__init__`` importing its submodules is how packages work and is not an edge back from them.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
SCOPE = ("seapo.evaluate", "seapo.sandbox")


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        edges = set()
        for target in targets:
            parts = target.split(".")
            for k in range(1, len(parts) + 1):
                dep = ".".join(parts[:k])
                if dep in modules and dep != name and not name.startswith(dep + "."):
                    edges.add(dep)
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for dep in graph.get(node, ()):
            if dep == start:
                return [*path, start]
            if dep not in seen and dep.startswith(SCOPE):
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


def test_no_import_cycles_in_evaluate_and_sandbox():
    modules = _modules()
    graph = _graph(modules)
    inside = [m for m in modules if m.startswith(SCOPE)]
    assert {"seapo.evaluate.runner", "seapo.evaluate.lmeval_engine", "seapo.sandbox.runner"} <= set(inside)
    cycles = [c for m in inside if (c := _cycle(graph, m))]
    assert cycles == []
    # The two that used to import each other: neither does now.
    assert "seapo.evaluate.runner" not in graph["seapo.evaluate.lmeval_engine"]
