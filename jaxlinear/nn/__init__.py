"""Flax linen modules: thin wrappers that declare params and call :mod:`jaxlinear.functional`."""

from jaxlinear.nn._linear import Linear as Linear
from jaxlinear.nn._nlinear import NLinear as NLinear
from jaxlinear.nn._unit_scaled import LinearReadout as LinearReadout
from jaxlinear.nn._unit_scaled import UnitScaledLinear as UnitScaledLinear

__all__ = ["Linear", "LinearReadout", "NLinear", "UnitScaledLinear"]
