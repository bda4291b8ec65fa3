"""jaxlinear: JAX/Flax linear layers that reproduce PyTorch linear-layer libraries number for number."""

from jaxlinear import functional as functional
from jaxlinear import growing as growing
from jaxlinear import initializers as initializers
from jaxlinear import interop as interop
from jaxlinear import optim as optim
from jaxlinear.nn import Linear as Linear
from jaxlinear.nn import NLinear as NLinear

__version__ = "0.1.0"

__all__ = [
    "Linear",
    "NLinear",
    "functional",
    "growing",
    "initializers",
    "interop",
    "optim",
]
