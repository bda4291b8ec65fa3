"""Flax linen modules: thin wrappers that declare params and call :mod:`jaxlinear.functional`."""

from jaxlinear.nn._linear import Linear as Linear
from jaxlinear.nn._nlinear import NLinear as NLinear

__all__ = ["Linear", "NLinear"]
