"""Unit scaling (``unit_scaling`` 0.3.5): separate forward and backward scales and unit-scaled ops.

A unit-scaled op multiplies its output by ``s_out`` in the forward pass only (:func:`scale_fwd`) and
the gradients of its inputs by their own scales in the backward pass only (:func:`scale_bwd`). The
gradients are therefore *not* the true gradients of the forward function: each differs by a constant,
chosen so that outputs and gradients all have a standard deviation close to 1.

Kernels use the JAX layout ``(in, out)``, the transpose of ``unit_scaling.Linear.weight``.

Dtypes follow torch: half-precision ops compute in float32 and round once where torch does, the
forward scale is applied in float32 (the scale itself is not rounded), the backward scale is rounded
to the gradient's dtype first (torch saves ``tensor(scale, dtype=x.dtype)``).

Where things live:

- ``_scale.py``: :func:`scale_fwd`, :func:`scale_bwd`; ``_constraints.py``: the constraints;
- ``_linear.py``: :func:`linear`, :func:`linear_readout`;
- ``_elementwise.py``: :func:`gelu`, :func:`silu`, :func:`silu_glu`, :func:`softmax`,
  :func:`dropout`, :func:`scale_elementwise` (and why there is no unit-scaled relu);
- ``_residual.py``: :func:`residual_split`, :func:`residual_add`, :func:`residual_apply`;
- ``_binary.py``: :func:`add`, :func:`matmul`; ``_norms.py``: :func:`layer_norm`, :func:`rms_norm`;
- ``_embedding.py``, ``_attention.py``, ``_losses.py`` (:func:`mse_loss`, :func:`cross_entropy`);
- ``_formats.py``: :class:`FPFormat`, :func:`cast`, :func:`cast_bwd`; ``_simulate.py``:
  :func:`simulate_format`, :func:`simulate_fp8`; ``_track_scales.py``: :func:`track_scales`
  (both on ``_interpret.py``, a small jaxpr interpreter).
"""

from jaxlinear.scaling._attention import (
    scaled_dot_product_attention as scaled_dot_product_attention,
)
from jaxlinear.scaling._binary import add as add
from jaxlinear.scaling._binary import matmul as matmul
from jaxlinear.scaling._constraints import CONSTRAINTS as CONSTRAINTS
from jaxlinear.scaling._constraints import amean as amean
from jaxlinear.scaling._constraints import apply_constraint as apply_constraint
from jaxlinear.scaling._constraints import check_constraint as check_constraint
from jaxlinear.scaling._constraints import gmean as gmean
from jaxlinear.scaling._constraints import hmean as hmean
from jaxlinear.scaling._constraints import to_grad_input_scale as to_grad_input_scale
from jaxlinear.scaling._constraints import to_left_grad_scale as to_left_grad_scale
from jaxlinear.scaling._constraints import to_output_scale as to_output_scale
from jaxlinear.scaling._constraints import to_right_grad_scale as to_right_grad_scale
from jaxlinear.scaling._elementwise import dropout as dropout
from jaxlinear.scaling._elementwise import gelu as gelu
from jaxlinear.scaling._elementwise import logarithmic_interpolation as logarithmic_interpolation
from jaxlinear.scaling._elementwise import scale_elementwise as scale_elementwise
from jaxlinear.scaling._elementwise import silu as silu
from jaxlinear.scaling._elementwise import silu_glu as silu_glu
from jaxlinear.scaling._elementwise import softmax as softmax
from jaxlinear.scaling._embedding import embedding as embedding
from jaxlinear.scaling._formats import FPFormat as FPFormat
from jaxlinear.scaling._formats import cast as cast
from jaxlinear.scaling._formats import cast_bwd as cast_bwd
from jaxlinear.scaling._linear import linear as linear
from jaxlinear.scaling._linear import linear_readout as linear_readout
from jaxlinear.scaling._linear import linear_scales as linear_scales
from jaxlinear.scaling._losses import cross_entropy as cross_entropy
from jaxlinear.scaling._losses import mse_loss as mse_loss
from jaxlinear.scaling._norms import layer_norm as layer_norm
from jaxlinear.scaling._norms import rms_norm as rms_norm
from jaxlinear.scaling._residual import residual_add as residual_add
from jaxlinear.scaling._residual import residual_apply as residual_apply
from jaxlinear.scaling._residual import residual_split as residual_split
from jaxlinear.scaling._residual import residual_weights as residual_weights
from jaxlinear.scaling._residual import (
    transformer_residual_scaling_rule as transformer_residual_scaling_rule,
)
from jaxlinear.scaling._scale import scale_bwd as scale_bwd
from jaxlinear.scaling._scale import scale_fwd as scale_fwd
from jaxlinear.scaling._simulate import simulate_format as simulate_format
from jaxlinear.scaling._simulate import simulate_fp8 as simulate_fp8
from jaxlinear.scaling._track_scales import ScaleRecord as ScaleRecord
from jaxlinear.scaling._track_scales import ScaleReport as ScaleReport
from jaxlinear.scaling._track_scales import Stats as Stats
from jaxlinear.scaling._track_scales import track_scales as track_scales

__all__ = [
    "CONSTRAINTS",
    "FPFormat",
    "ScaleRecord",
    "ScaleReport",
    "Stats",
    "add",
    "amean",
    "apply_constraint",
    "cast",
    "cast_bwd",
    "check_constraint",
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "gmean",
    "hmean",
    "layer_norm",
    "linear",
    "linear_readout",
    "linear_scales",
    "logarithmic_interpolation",
    "matmul",
    "mse_loss",
    "residual_add",
    "residual_apply",
    "residual_split",
    "residual_weights",
    "rms_norm",
    "scale_bwd",
    "scale_elementwise",
    "scale_fwd",
    "scaled_dot_product_attention",
    "silu",
    "simulate_format",
    "simulate_fp8",
    "silu_glu",
    "softmax",
    "to_grad_input_scale",
    "to_left_grad_scale",
    "to_output_scale",
    "to_right_grad_scale",
    "track_scales",
    "transformer_residual_scaling_rule",
]
