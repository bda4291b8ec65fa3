"""Quantization with torch's numbers: ``QTensor``, quantize/dequantize, observers, int8 linear per engine,
fake quantization for QAT and post-training conversion of ``jl.Linear`` models."""

from jaxlinear.quantization._convert import calibrate as calibrate
from jaxlinear.quantization._convert import convert as convert
from jaxlinear.quantization._convert import fake_quantized_apply as fake_quantized_apply
from jaxlinear.quantization._convert import quantized_apply as quantized_apply
from jaxlinear.quantization._fake import fake_quantize as fake_quantize
from jaxlinear.quantization._fake import fake_quantize_per_channel as fake_quantize_per_channel
from jaxlinear.quantization._int8_dot import int8_dot as int8_dot
from jaxlinear.quantization._linear import ENGINES as ENGINES
from jaxlinear.quantization._linear import dynamic_quantized_linear as dynamic_quantized_linear
from jaxlinear.quantization._linear import quantized_linear as quantized_linear
from jaxlinear.quantization._qparams import choose_qparams as choose_qparams
from jaxlinear.quantization._qparams import choose_qparams_dynamic as choose_qparams_dynamic
from jaxlinear.quantization._qparams import fbgemm_min_max as fbgemm_min_max
from jaxlinear.quantization._qparams import min_max as min_max
from jaxlinear.quantization._qtensor import QTensor as QTensor
from jaxlinear.quantization._qtensor import dequantize as dequantize
from jaxlinear.quantization._qtensor import qrange as qrange
from jaxlinear.quantization._qtensor import quantize as quantize
from jaxlinear.quantization._qtensor import quantize_per_channel as quantize_per_channel

__all__ = [
    "ENGINES",
    "QTensor",
    "calibrate",
    "choose_qparams",
    "choose_qparams_dynamic",
    "convert",
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
    "quantized_apply",
    "quantized_linear",
]
