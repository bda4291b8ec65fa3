"""Int8 numerics with torch's numbers (level 1, pure math like ``functional``): arrays in, arrays out.

``QTensor`` (torch's quantized tensor), per-tensor and per-channel quantize/dequantize, observers and
qparams (``choose_qparams``), the int8 linear of each torch engine (``quantized_linear``,
``dynamic_quantized_linear``, on the ``int8_dot`` primitive), torchao's int8 schemes and fake
quantization for QAT. Nothing here declares a module or walks a model: the quantized layers
(``jaxlinear.nn.QuantizedLinear``, ...) build on these functions, and the whole-model workflow
(:func:`jaxlinear.quantization.quantize` of a model) sits above the layers and the walker.
``jaxlinear.quantization`` re-exports every name of this package.
"""

from jaxlinear.int8._fake import fake_quantize as fake_quantize
from jaxlinear.int8._fake import fake_quantize_per_channel as fake_quantize_per_channel
from jaxlinear.int8._int8_dot import int8_dot as int8_dot
from jaxlinear.int8._linear import ENGINES as ENGINES
from jaxlinear.int8._linear import dynamic_quantized_linear as dynamic_quantized_linear
from jaxlinear.int8._linear import quantized_linear as quantized_linear
from jaxlinear.int8._qparams import choose_qparams as choose_qparams
from jaxlinear.int8._qparams import choose_qparams_dynamic as choose_qparams_dynamic
from jaxlinear.int8._qparams import fbgemm_min_max as fbgemm_min_max
from jaxlinear.int8._qparams import min_max as min_max
from jaxlinear.int8._qtensor import QTensor as QTensor
from jaxlinear.int8._qtensor import dequantize as dequantize
from jaxlinear.int8._qtensor import qrange as qrange
from jaxlinear.int8._qtensor import quantize as quantize
from jaxlinear.int8._qtensor import quantize_per_channel as quantize_per_channel
from jaxlinear.int8._torchao import torchao_dynamic_linear as torchao_dynamic_linear
from jaxlinear.int8._torchao import torchao_quantize_weight as torchao_quantize_weight
from jaxlinear.int8._torchao import torchao_weight_only_linear as torchao_weight_only_linear

__all__ = [
    "ENGINES",
    "QTensor",
    "choose_qparams",
    "choose_qparams_dynamic",
    "dequantize",
    "dynamic_quantized_linear",
    "fake_quantize",
    "fake_quantize_per_channel",
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
