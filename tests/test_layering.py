"""The import layering of DESIGN.md: pure math <- layers <- model walker <- workflows, one direction.

Each module of ``jaxlinear`` has a level, and may import (at module level or inside functions) only
modules of its own level or below, so there is no import cycle and a reader finds everything by walking
up. A level is assigned to a module, or to a package for all of its modules (``__init__`` included):
folders show the levels, so no module inside a listed package has a level of its own (a package whose
modules sit on two levels is two packages, like ``int8`` and ``quantization``). No module imports
behind the parser's back (``importlib``, a PEP 562 ``__getattr__``), so these import edges are all.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "jaxlinear"

# the level of each top-level module or package of jaxlinear (a package's level is its modules')
LEVELS = {
    "jaxlinear._checks": 0,
    "jaxlinear._typing": 0,
    "jaxlinear._numerics": 0,
    "jaxlinear.functional": 1,
    "jaxlinear.initializers": 1,
    "jaxlinear.parametrizations": 1,
    "jaxlinear.scaling": 1,
    "jaxlinear.int8": 1,  # int8 numerics: QTensor, qparams, the int8 linear of each engine
    "jaxlinear.growing": 2,  # GrowingMLP is a layer; its statistics and solvers are pure math
    "jaxlinear.layers": 2,  # each layer's math, shared by the linen (nn) and NNX front ends
    "jaxlinear.nn": 2,
    "jaxlinear.tabm": 2,  # TabM: layers and models built on nn and functional
    "jaxlinear.models": 2,  # whole models built from the layers (BERT)
    "jaxlinear.nnx": 2,  # the NNX twins of the linen layers
    "jaxlinear.walker": 3,
    "jaxlinear.optim": 4,
    "jaxlinear.interop": 4,
    "jaxlinear.quantization": 4,  # whole-model quantization, on the walker and the int8 layers
    "jaxlinear": 5,  # the package's public names
}


def _level(name: str) -> int | None:
    """The level of module ``name`` (``jaxlinear.int8._linear``, or a name imported from it)."""
    if name == "jaxlinear":
        return LEVELS[name]
    parts = name.split(".")
    for n in range(len(parts), 1, -1):
        level = LEVELS.get(".".join(parts[:n]))
        if level is not None:
            return level
    return None


def test_levels_are_per_module_or_per_package():
    """No entry sits inside another: a package's modules all share its level."""
    nested = [
        (inner, outer)
        for inner in LEVELS
        for outer in LEVELS
        if outer != "jaxlinear" and inner.startswith(outer + ".")
    ]
    assert not nested, f"levels inside a leveled package (split the package instead): {nested}"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) + (
        ".__init__" if parts[-1] == "__init__" and len(parts) > 2 else ""
    )


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.startswith("jaxlinear")}


FILES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_hidden_imports(path):
    """``importlib`` or a module ``__getattr__`` would add import edges that the test cannot see."""
    tree = ast.parse(path.read_text())
    hidden = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Name) and node.id in ("importlib", "__import__"))
        or (isinstance(node, ast.alias) and node.name.split(".")[0] == "importlib")
    ]
    hidden += [
        node.lineno
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
    ]
    assert not hidden, (
        f"{path.relative_to(ROOT)}: imports hidden from the layering test, lines {hidden}"
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_one_way(path):
    name = _module_name(path)
    level = _level(name)
    assert level is not None, f"{name} has no level in LEVELS"
    if name == "jaxlinear":
        return
    above = []
    for imported in _imports(path):
        # `from jaxlinear import nn` imports the package jaxlinear.nn, not the top level
        target = imported if _level(imported) != 5 else None
        if target is not None and _level(target) > level:
            above.append(target)
    assert not above, f"{name} (level {level}) imports from above: {sorted(above)}"
