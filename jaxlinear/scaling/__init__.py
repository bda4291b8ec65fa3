"""Unit scaling (``unit_scaling`` 0.3.5): separate forward and backward scales, constraints, linear.

A unit-scaled op multiplies its output by ``s_out`` in the forward pass only (:func:`scale_fwd`) and
the gradients of its inputs by their own scales in the backward pass only (:func:`scale_bwd`). The
gradients are therefore *not* the true gradients of the forward function: each differs by a constant,
chosen so that outputs and gradients all have a standard deviation close to 1.

Kernels use the JAX layout ``(in, out)``, the transpose of ``unit_scaling.Linear.weight``.

Dtypes follow torch exactly: the forward scale is applied in float32 to half-precision arrays and
rounded once (the scale itself is not rounded), the backward scale is rounded to the gradient's dtype
first (torch saves ``tensor(scale, dtype=x.dtype)``), so bfloat16 results are bit-identical.

Where things live: ``_scale.py`` (scale_fwd / scale_bwd), ``_constraints.py``, ``_linear.py``.
"""

from jaxlinear.scaling._constraints import CONSTRAINTS as CONSTRAINTS
from jaxlinear.scaling._constraints import amean as amean
from jaxlinear.scaling._constraints import apply_constraint as apply_constraint
from jaxlinear.scaling._constraints import check_constraint as check_constraint
from jaxlinear.scaling._constraints import gmean as gmean
from jaxlinear.scaling._constraints import hmean as hmean
from jaxlinear.scaling._constraints import to_grad_input_scale as to_grad_input_scale
from jaxlinear.scaling._constraints import to_output_scale as to_output_scale
from jaxlinear.scaling._linear import linear as linear
from jaxlinear.scaling._linear import linear_readout as linear_readout
from jaxlinear.scaling._linear import linear_scales as linear_scales
from jaxlinear.scaling._scale import scale_bwd as scale_bwd
from jaxlinear.scaling._scale import scale_fwd as scale_fwd

__all__ = [
    "CONSTRAINTS",
    "amean",
    "apply_constraint",
    "check_constraint",
    "gmean",
    "hmean",
    "linear",
    "linear_readout",
    "linear_scales",
    "scale_bwd",
    "scale_fwd",
    "to_grad_input_scale",
    "to_output_scale",
]
