"""The package's layers, read from its imports: no import circle, nothing imports from above.

Every ``import``/``from ... import`` of a stagingvm module counts, wherever it stands (module
level, inside a function, under ``TYPE_CHECKING``): an import that only the type checker sees
is still a dependency of the design.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import stagingvm

ROOT = Path(stagingvm.__file__).resolve().parent

LAYERS: tuple[tuple[str, ...], ...] = (
    # lowest first; a unit may import its own package and anything in a lower layer
    ("stagingvm", "errors"),
    ("datadir", "boundedread", "escaping"),
    ("names", "settings", "progress", "terminal"),
    ("locks",),
    ("config",),
    ("virt", "ssh", "images", "nixbuild", "policy"),
    ("virt.accel", "lab"),
    ("vm",),
    ("checks",),
    ("ci",),
    ("cli",),
    ("__main__",),
)
LAYER_OF = {unit: level for level, units in enumerate(LAYERS) for unit in units}


def module_files() -> dict[str, Path]:
    """``stagingvm.vm.start`` -> its file, for every module and package of stagingvm."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ["stagingvm", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = module_files()


def imported(module: str, path: Path) -> Iterator[str]:
    """The stagingvm modules *module* imports (``from pkg import mod`` names the module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: none today, but counted all the same
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


GRAPH = {module: sorted(set(imported(module, path))) for module, path in MODULES.items()}


def unit_of(module: str) -> str:
    """The layer unit a module belongs to: its package below stagingvm (``virt.accel`` apart)."""
    parts = module.split(".")[1:]
    if not parts:
        return "stagingvm"
    if parts[:2] == ["virt", "accel"]:
        return "virt.accel"
    return parts[0]


def test_every_module_has_a_layer() -> None:
    assert sorted({unit_of(m) for m in MODULES} - set(LAYER_OF)) == []


def test_the_walk_sees_the_imports() -> None:
    """The walk finds plain, ``from``, function-local and TYPE_CHECKING imports alike."""
    assert "stagingvm.ssh.client" in GRAPH["stagingvm.cli.cmd_access"]  # function-local
    assert "stagingvm.ci.outcome" in GRAPH["stagingvm.ci.report"]  # TYPE_CHECKING
    assert "stagingvm.virt.xmlrender" in GRAPH["stagingvm.virt.domain"]  # from pkg import mod
    assert len(GRAPH) >= 100


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_imports_from_a_layer_above(module: str) -> None:
    mine = unit_of(module)
    wrong = [
        target
        for target in GRAPH[module]
        if unit_of(target) != mine and LAYER_OF[unit_of(target)] >= LAYER_OF[mine]
    ]
    assert wrong == [], f"{module} ({mine}, layer {LAYER_OF[mine]}) imports from its layer or above"


def test_no_import_circle() -> None:
    """No module reaches itself through its imports (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in GRAPH[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert circles == []
