"""torch ``state_dict`` <-> Flax variables, for one layer or a whole model, and weight files. The only
code that knows torch's key names and layouts. Importing it never imports torch (tensors are duck-typed);
torch is imported only to run a torch module the caller passed (its call order, the output check)."""

from jaxlinear.interop import (  # noqa: F401  (register the converters)
    _attention,
    _embed,
    _growing,
    _inferno,
    _linear,
    _nlinear,
    _norms,
    _quantized,
    _quantized_model,
    _tabm,
    _unit_scaled,
)
from jaxlinear.interop._arrays import to_numpy as to_numpy
from jaxlinear.interop._model import from_torch as from_torch
from jaxlinear.interop._model import to_torch as to_torch
from jaxlinear.interop._registry import Converter as Converter
from jaxlinear.interop._registry import ModelLayout as ModelLayout
from jaxlinear.interop._registry import register as register
from jaxlinear.interop._registry import register_layout as register_layout
from jaxlinear.interop._safetensors import load_safetensors as load_safetensors
from jaxlinear.interop._safetensors import save_safetensors as save_safetensors

__all__ = [
    "Converter",
    "ModelLayout",
    "from_torch",
    "load_safetensors",
    "register",
    "register_layout",
    "save_safetensors",
    "to_numpy",
    "to_torch",
]
