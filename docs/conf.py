"""Sphinx configuration of jaxlinear's documentation (``make docs``; warnings are errors)."""

import jaxlinear

project = "jaxlinear"
author = "jaxlinear developers"
release = version = jaxlinear.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # Google-style Args/Returns/Raises, as optax and flax write them
    "sphinx.ext.intersphinx",
    "myst_parser",  # guides and the changelog are Markdown
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_inherit_docstrings = False  # linen modules inherit pages of flax docs otherwise
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" of a linen module are its fields: no duplicate entries
myst_heading_anchors = 3
nitpicky = False

intersphinx_mapping = {}  # offline builds: no inventories are fetched

html_theme = "furo"
html_title = f"jaxlinear {version}"
