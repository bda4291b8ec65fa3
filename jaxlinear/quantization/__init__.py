"""Whole-model quantization with torch's numbers: :func:`quantize` a Flax model (linen or NNX) in one
call, and the QAT forward :func:`fake_quantized_apply`.

Levels (imports go one way, bottom to top): the int8 numerics are the level-1 package
:mod:`jaxlinear.int8` (``QTensor``, quantize/dequantize, qparams, each engine's int8 linear); the
quantized layers (:class:`jaxlinear.QuantizedLinear`, ...) are level 2 on them; this package is a
workflow (level 4) on the model walker (:mod:`jaxlinear.walker`): it finds a model's layers, quantizes
their weights, observes activations for the static mode, and runs the model with each layer replaced by
its int8 forward. Nothing below imports it. It re-exports every name of :mod:`jaxlinear.int8`, so
``jl.quantization.dequantize`` is ``jl.int8.dequantize``, and :func:`quantize` of an array is
``jl.int8.quantize``.

Schemes (``mode`` / ``scheme``), each reproducing a torch reference on the same float weights.
Defaults are the references' defaults: ``per_channel=None`` is per tensor for ``"dynamic"`` (what
``quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)`` does) and, for ``"static"``, what
``get_default_qconfig(engine)`` does (per channel for x86/fbgemm, per tensor for qnnpack).

- ``"dynamic"`` / ``"torch.ao"`` (default): ``torch.ao.quantization.quantize_dynamic`` with
  ``default_dynamic_qconfig`` (``per_channel=False``, the default) or ``per_channel_dynamic_qconfig``
  (True): int8 symmetric weights (MinMax observer), activations uint8 per call from the whole
  input's min/max with ``reduce_range`` (``torch.ao.nn.quantized.dynamic.Linear``), ``engine`` numerics.
- ``"dynamic"`` / ``"torchao"``: torchao ``Int8DynamicActivationInt8WeightConfig()``: int8 symmetric
  per output channel weights, int8 symmetric per-row activations
  (:func:`jaxlinear.int8.torchao_dynamic_linear`).
- ``"static"`` / ``"torch.ao"``: eager post-training static quantization with ``QuantStub`` /
  ``DeQuantStub`` around every quantized layer: activation qparams from observers over
  ``calibration``, by default ``get_default_qconfig(engine)``'s ``HistogramObserver`` (uint8 affine,
  ``reduce_range`` for x86/fbgemm; bit-exact, :class:`~jaxlinear.int8.HistogramObserver`), or
  with ``activation_observer="minmax"`` a ``MinMaxObserver`` of the same range (torch's
  ``QConfig(activation=MinMaxObserver.with_args(reduce_range=...), weight=...)``); weights as the
  engine's default qconfig (per channel or per tensor symmetric as ``per_channel`` says), the input
  quantized to uint8, ``quantized::linear`` with the engine's numerics, the uint8 output dequantized. A
  layer called more than once is observed on every call, in call order (torch's one observer per module
  sees each forward), and shares its qparams between calls.
- ``"weight_only"`` / ``"torchao"``: torchao ``Int8WeightOnlyConfig()``: int8 symmetric per output
  channel weights, float matmul in the model's dtype.

Layers: every ``jl.Linear``, ``nn.Dense`` and ``jl.NLinear`` of the model. torch has no quantized
NLinear: jaxlinear quantizes each member as its own torch linear (member ``i`` is the linear with weight
``kernel[i].T``): weight qparams per member and per output channel (per member with
``per_channel=False``), activation qparams per member (static: observed per member; dynamic: each
member's slice of the input). ``UnitScaledLinear`` / ``LinearReadout`` are refused with a ``ValueError``
(their output scale depends on the constraint and the batch; quantize a model of plain layers).
``QuantizedLinear`` / ``DynamicQuantizedLinear`` are already int8 and run as they are; any other
module (norms, embeddings, ``DenseGeneral``, convolutions) runs in float, as torch's quantization leaves
modules it has no quantized counterpart for.

Dtypes: each quantized layer returns the dtype its float twin returns (``dtype``, else the promotion of
input and ``param_dtype``): a bfloat16 ``jl.Linear`` stays bfloat16. torch.ao's int8 kernels take float32
only, so those schemes compute in float32 and cast; torchao's run in the layer's dtype, as torchao does.
"""

from jaxlinear.int8 import ENGINES as ENGINES
from jaxlinear.int8 import HistogramObserver as HistogramObserver
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
from jaxlinear.quantization._model import ACTIVATION_OBSERVERS as ACTIVATION_OBSERVERS
from jaxlinear.quantization._model import MODES as MODES
from jaxlinear.quantization._model import SCHEMES as SCHEMES
from jaxlinear.quantization._model import QuantizedModel as QuantizedModel
from jaxlinear.quantization._model import fake_quantized_apply as fake_quantized_apply
from jaxlinear.quantization._nnx import QuantizedNnxBridge as QuantizedNnxBridge
from jaxlinear.quantization._nnx import QuantizedNnxLayer as QuantizedNnxLayer
from jaxlinear.quantization._quantize import quantize as quantize

__all__ = [
    "ACTIVATION_OBSERVERS",
    "ENGINES",
    "HistogramObserver",
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
