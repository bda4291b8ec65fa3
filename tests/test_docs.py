"""Documentation gates: every public name has a docstring with an example, and the sections its signature
calls for (``Args:`` for functions with arguments, ``Attributes:`` for modules and records)."""

import dataclasses
import importlib
import inspect
import pkgutil

import pytest
from sphinx.pycode import ModuleAnalyzer

import jaxlinear

MODULES = [
    "jaxlinear",
    "jaxlinear.functional",
    "jaxlinear.initializers",
    "jaxlinear.layers",
    "jaxlinear.parametrizations",
    "jaxlinear.scaling",
    "jaxlinear.int8",
    "jaxlinear.quantization",
    "jaxlinear.optim",
    "jaxlinear.interop",
    "jaxlinear.growing",
    "jaxlinear.models",
    "jaxlinear.walker",
    "jaxlinear.tabm",
    "jaxlinear.nnx",
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


def _is_data(obj) -> bool:
    """Constants and type aliases: their ``__doc__`` is their type's, so they carry a ``#:`` comment."""
    return not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj))


def _data_doc(module_name: str, name: str, seen: frozenset[str] = frozenset()) -> str:
    """The ``#:`` doc comment of data ``name`` (what autodoc renders), read from the module that lists
    it or, for a package's re-export, the submodule that defines it (as docs/conf.py reads it)."""
    module = importlib.import_module(module_name)
    subs = [
        f"{module_name}.{m.name}" for m in pkgutil.iter_modules(getattr(module, "__path__", []))
    ]
    for source in (module_name, *subs):
        docs = ModuleAnalyzer.for_module(source).find_attr_docs()
        if ("", name) in docs:
            return "\n".join(docs[("", name)])
    # a re-export of another documented package's name (jaxlinear.quantization.ENGINES is jaxlinear.int8's)
    value = getattr(module, name)
    for other in MODULES:
        if (
            other not in seen | {module_name}
            and getattr(importlib.import_module(other), name, None) is value
        ):
            return _data_doc(other, name, seen | {module_name})
    return ""


def _methods():
    """The public methods and properties each public class defines itself (not flax's or object's)."""
    seen = set()
    for name, cls in PUBLIC.items():
        if not inspect.isclass(cls) or cls in seen:
            continue
        seen.add(cls)
        for attr, value in vars(cls).items():
            fn = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            if attr.startswith("_") or not (inspect.isfunction(fn) or isinstance(fn, property)):
                continue
            module = getattr(fn.fget if isinstance(fn, property) else fn, "__module__", "") or ""
            if module.startswith("jaxlinear"):
                yield f"{name}.{attr}", fn


METHODS = dict(_methods())


def _takes_arguments(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name not in ("self", "cls") for p in params)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_is_documented(name):
    obj = PUBLIC[name]
    if _is_data(obj):
        module_name, _, short = name.rpartition(".")
        assert _data_doc(module_name, short).strip(), f"{name} has no #: doc comment"
        return
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


@pytest.mark.parametrize("name", sorted(METHODS))
def test_public_method_is_documented(name):
    fn = METHODS[name]
    doc = inspect.getdoc(fn) or ""
    assert doc.strip(), f"{name} has no docstring"
    if not isinstance(fn, property) and _takes_arguments(fn):
        assert "Args:" in doc, f"{name} takes arguments but its docstring has no Args: section"
