"""Flax linen modules: thin wrappers that declare params and call :mod:`jaxlinear.functional`."""

from jaxlinear.nn._linear import Linear as Linear
from jaxlinear.nn._nlinear import NLinear as NLinear
from jaxlinear.nn._quantized import DynamicQuantizedLinear as DynamicQuantizedLinear
from jaxlinear.nn._quantized import QuantizedLinear as QuantizedLinear

__all__ = ["DynamicQuantizedLinear", "Linear", "NLinear", "QuantizedLinear"]
