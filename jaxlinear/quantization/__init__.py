"""Quantization with torch's numbers: ``QTensor``, quantize/dequantize, observers, int8 linear per engine,
torchao's int8 schemes, fake quantization for QAT, and whole-model post-training quantization.

The numerics (every module but ``_model``) import nothing above them, so the quantized layers of
``jaxlinear.nn`` build on them without a cycle. ``_model`` is the workflow above the layers (it uses
them and the model walker); its names are loaded on first use (PEP 562), so importing the numerics
never imports ``jaxlinear.nn``.
"""

import importlib
from typing import Any

from jaxlinear.int8 import ENGINES as ENGINES
from jaxlinear.int8 import QTensor as QTensor
from jaxlinear.int8 import choose_qparams as choose_qparams
from jaxlinear.int8 import choose_qparams_dynamic as choose_qparams_dynamic
from jaxlinear.int8 import dequantize as dequantize
from jaxlinear.int8 import dynamic_quantized_linear as dynamic_quantized_linear
from jaxlinear.int8 import fake_quantize as fake_quantize
from jaxlinear.int8 import fake_quantize_per_channel as fake_quantize_per_channel
from jaxlinear.int8 import fbgemm_min_max as fbgemm_min_max
from jaxlinear.int8 import int8_dot as int8_dot
from jaxlinear.int8 import min_max as min_max
from jaxlinear.int8 import qrange as qrange
from jaxlinear.int8 import quantize_per_channel as quantize_per_channel
from jaxlinear.int8 import quantized_linear as quantized_linear
from jaxlinear.int8 import torchao_dynamic_linear as torchao_dynamic_linear
from jaxlinear.int8 import torchao_quantize_weight as torchao_quantize_weight
from jaxlinear.int8 import torchao_weight_only_linear as torchao_weight_only_linear

__all__ = [
    "ENGINES",
    "MODES",
    "SCHEMES",
    "QTensor",
    "QuantizedModel",
    "QuantizedNnxBridge",
    "QuantizedNnxLayer",
    "choose_qparams",
    "choose_qparams_dynamic",
    "dequantize",
    "dynamic_quantized_linear",
    "fake_quantize",
    "fake_quantize_per_channel",
    "fake_quantized_apply",
    "fbgemm_min_max",
    "int8_dot",
    "min_max",
    "qrange",
    "quantize",
    "quantize_per_channel",
    "quantized_linear",
    "torchao_dynamic_linear",
    "torchao_quantize_weight",
    "torchao_weight_only_linear",
]

_WORKFLOW = {"MODES", "SCHEMES", "QuantizedModel", "fake_quantized_apply", "quantize"}


def __getattr__(name: str) -> Any:
    """The whole-model workflow's names (``quantize``, ...), imported from ``_model`` on first use."""
    if name in ("QuantizedNnxLayer", "QuantizedNnxBridge"):  # the NNX branch of the workflow
        value = getattr(importlib.import_module("jaxlinear.quantization._nnx"), name)
        globals()[name] = value
        return value
    if name in _WORKFLOW:
        value = getattr(importlib.import_module("jaxlinear.quantization._model"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
