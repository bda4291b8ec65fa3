"""The import layering of DESIGN.md: pure math <- layers <- model walker <- workflows, one direction.

Each module of ``jaxlinear`` may import (at module level or inside functions) only modules of its own
level or below, so there is no import cycle and a reader finds everything by walking up. The one
exception is deliberate and not an ``import`` statement: ``jaxlinear.quantization`` re-exports the
whole-model workflow's names lazily (``importlib.import_module`` in a PEP 562 ``__getattr__``).
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "jaxlinear"

# level of a module, by dotted-name prefix (the longest matching prefix wins)
LEVELS = {
    "jaxlinear._checks": 0,
    "jaxlinear._typing": 0,
    "jaxlinear._numerics": 0,
    "jaxlinear.functional": 1,
    "jaxlinear.initializers": 1,
    "jaxlinear.parametrizations": 1,
    "jaxlinear.scaling": 1,
    "jaxlinear.int8": 1,  # int8 numerics: QTensor, qparams, the int8 linear of each engine
    "jaxlinear.quantization": 1,
    "jaxlinear.growing": 2,  # GrowingMLP is a layer; its statistics and solvers are pure math
    "jaxlinear.layers": 2,  # each layer's math, shared by the linen (nn) and NNX front ends
    "jaxlinear.nn": 2,
    "jaxlinear.tabm": 2,  # TabM: layers and models built on nn and functional
    "jaxlinear.models": 2,  # whole models built from the layers (BERT)
    "jaxlinear.nnx": 2,  # the NNX twins of the linen layers
    "jaxlinear.walker": 3,
    "jaxlinear.optim": 4,
    "jaxlinear.interop": 4,
    "jaxlinear.quantization._model": 4,
    "jaxlinear.quantization._nnx": 4,  # the NNX branch of the whole-model workflow  # the whole-model workflow (loaded lazily by the package)
    "jaxlinear.quantization.__init__": 1,
    "jaxlinear": 5,  # the package's public names
}


def _level(name: str) -> int | None:
    best = None
    for prefix, level in LEVELS.items():
        if (name == prefix or name.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, level)
    return None if best is None else best[1]


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
