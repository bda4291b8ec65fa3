"""Sphinx configuration of jaxlinear's documentation (``make docs``; warnings are errors)."""

import importlib
import inspect
import pathlib
import pkgutil
import re

from sphinx.pycode import ModuleAnalyzer

import jaxlinear

project = "jaxlinear"
author = "jaxlinear developers"
release = version = jaxlinear.__version__

# Offline by design: no intersphinx inventories are fetched (empty mapping below). No
# sphinx.ext.doctest (the docstring examples run once, under `pytest --doctest-modules jaxlinear`) and
# no sphinx.ext.viewcode (its source pages would add build time and pages to check for nothing the
# repository does not already show).
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # Google-style Args/Returns/Raises, as optax and flax write them
    "sphinx.ext.intersphinx",
    "myst_parser",  # guides and the changelog are Markdown
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

# ``param_dtype = jnp.float32`` is a class, so autodoc would list it as a member of every layer
# ("alias of float32"); it is documented with the other fields under "Attributes". No
# "show-inheritance" key: autodoc reads any value, False included, as the flag set, and every layer
# would print "Bases: flax.linen.Module" (or a private base class of the package).
autodoc_default_options = {
    "members": True,
    "exclude-members": "param_dtype",
}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Types go into the documented Args/Returns only: no second, description-less parameter list of a
# linen module's or a record's constructor (its fields are documented under "Attributes").
autodoc_typehints_description_target = "documented"
autodoc_inherit_docstrings = False  # linen modules inherit pages of flax docs otherwise
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" of a linen module are its fields: no duplicate entries
myst_heading_anchors = 3
nitpicky = True  # every cross-reference must resolve: a broken link is a warning, so an error
# The build is offline (no intersphinx inventories, below), so types from other packages that
# autodoc writes into signatures and Args/Returns (``jax.Array``, ``numpy.dtype``, ``flax.linen.Module``,
# ``optax.GradientTransformation``, ``collections.abc.Callable``, ...) have no target to resolve to.
# Only those are ignored, by their package prefix; every jaxlinear reference must resolve.
_EXTERNAL = r"(jax|jaxlib|numpy|flax|optax|collections\.abc|os|typing|torch)\..+"
nitpick_ignore_regex = [(r"py:(class|obj|data|func|meth|attr|mod|exc)", _EXTERNAL)]

intersphinx_mapping = {}  # offline builds: no inventories are fetched

html_theme = "furo"
html_title = f"jaxlinear {version}"


# Data a package re-exports from a private submodule (``from ._linear import ENGINES as ENGINES``)
# keeps its ``#:`` doc comment next to its definition, where autodoc does not look (it reads the
# documented module's own source) and so would skip it as undocumented. setup() hands those comments
# to the package's source analyzer (the one autodoc uses, cached per module), so the package's page
# documents the name with them.


def _api_modules() -> list[str]:
    pages = pathlib.Path(__file__).parent.glob("api/*.rst")
    return sorted({m for p in pages for m in re.findall(r"automodule:: (\S+)", p.read_text())})


def _document_reexported_data() -> None:
    for modname in _api_modules():
        module = importlib.import_module(modname)
        own = ModuleAnalyzer.for_module(modname).find_attr_docs()
        subs = [
            f"{modname}.{m.name}" for m in pkgutil.iter_modules(getattr(module, "__path__", []))
        ]
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value):
                continue
            for sub in subs:
                docs = ModuleAnalyzer.for_module(sub).find_attr_docs()
                if ("", name) not in own and ("", name) in docs:
                    own["", name] = docs["", name]


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    """A NamedTuple's fields are documented under its "Attributes"; skip the generated entries
    ("Alias for field number 0")."""
    if what == "class" and type(obj).__name__ == "_tuplegetter":
        return True
    return None


def setup(app):
    _document_reexported_data()
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
