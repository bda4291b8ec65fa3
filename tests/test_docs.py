"""Documentation gates: every public name has a docstring with an example, and the sections its signature
calls for (``Args:`` for functions with arguments, ``Attributes:`` for modules and records)."""

import dataclasses
import importlib
import inspect

import pytest

import jaxlinear

MODULES = [
    "jaxlinear",
    "jaxlinear.functional",
    "jaxlinear.initializers",
    "jaxlinear.parametrizations",
    "jaxlinear.scaling",
    "jaxlinear.quantization",
    "jaxlinear.optim",
    "jaxlinear.interop",
    # TEMPORARY: jaxlinear.growing is being rewritten on another branch; the lead adds it back here
    # once that lands (its names are documented there).
    # "jaxlinear.growing",
    "jaxlinear.walker",
]


def _public():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            yield f"{module_name}.{name}", obj


PUBLIC = dict(_public())


def _takes_arguments(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name not in ("self", "cls") for p in params)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_is_documented(name):
    obj = PUBLIC[name]
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    if inspect.isclass(obj):
        fields = dataclasses.is_dataclass(obj) or hasattr(obj, "_fields")
        if fields and (dataclasses.fields(obj) if dataclasses.is_dataclass(obj) else obj._fields):
            assert "Attributes:" in doc or "Args:" in doc, f"{name} lists no Attributes:/Args:"
    elif callable(obj) and _takes_arguments(obj):
        assert "Args:" in doc, f"{name} takes arguments but its docstring has no Args: section"


def test_version_is_stated_once():
    import importlib.metadata

    assert importlib.metadata.version("jaxlinear") == jaxlinear.__version__
