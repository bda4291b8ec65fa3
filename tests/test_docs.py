"""Documentation gates."""

import importlib.metadata

import jaxlinear


def test_version_is_stated_once():
    assert importlib.metadata.version("jaxlinear") == jaxlinear.__version__
