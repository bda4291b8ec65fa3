"""Flax linen modules: thin wrappers that declare params and call the package's pure functions."""

from jaxlinear.nn._linear import Linear as Linear
from jaxlinear.nn._nlinear import NLinear as NLinear
from jaxlinear.nn._quantized import DynamicQuantizedLinear as DynamicQuantizedLinear
from jaxlinear.nn._quantized import QuantizedLinear as QuantizedLinear
from jaxlinear.nn._unit_scaled import LinearReadout as LinearReadout
from jaxlinear.nn._unit_scaled import UnitScaledLinear as UnitScaledLinear

__all__ = [
    "DynamicQuantizedLinear",
    "Linear",
    "LinearReadout",
    "NLinear",
    "QuantizedLinear",
    "UnitScaledLinear",
]
