"""jaxlinear: JAX/Flax linear layers that reproduce PyTorch linear-layer libraries number for number."""

from jaxlinear import functional as functional
from jaxlinear import growing as growing
from jaxlinear import initializers as initializers
from jaxlinear import int8 as int8
from jaxlinear import interop as interop
from jaxlinear import layers as layers
from jaxlinear import models as models
from jaxlinear import nnx as nnx
from jaxlinear import optim as optim
from jaxlinear import parametrizations as parametrizations
from jaxlinear import quantization as quantization
from jaxlinear import scaling as scaling
from jaxlinear import tabm as tabm
from jaxlinear.nn import DynamicQuantizedLinear as DynamicQuantizedLinear
from jaxlinear.nn import Linear as Linear
from jaxlinear.nn import LinearReadout as LinearReadout
from jaxlinear.nn import NLinear as NLinear
from jaxlinear.nn import QuantizedLinear as QuantizedLinear
from jaxlinear.nn import UnitScaledLinear as UnitScaledLinear

__version__ = "0.2.0.dev0"

__all__ = [
    "DynamicQuantizedLinear",
    "Linear",
    "LinearReadout",
    "NLinear",
    "QuantizedLinear",
    "UnitScaledLinear",
    "functional",
    "growing",
    "initializers",
    "int8",
    "interop",
    "layers",
    "models",
    "nnx",
    "optim",
    "parametrizations",
    "quantization",
    "scaling",
    "tabm",
]
