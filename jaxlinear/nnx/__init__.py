"""Native Flax NNX layers: ``nnx.Module`` twins of the linen layers, over the same pure functions.

Each layer holds its params as ``nnx.Param`` (``kernel`` ``(in, out)`` or ``(*n, in, out)``, ``bias``)
and computes exactly what its linen twin (:meth:`Linear.linen_twin`) computes on the same params. The
whole-model tools take NNX models too: :func:`jaxlinear.optim.lr_factors`,
:func:`jaxlinear.interop.from_torch` / :func:`~jaxlinear.interop.to_torch` and
:func:`jaxlinear.quantization.quantize`.
"""

from jaxlinear.nnx._linear import Linear as Linear
from jaxlinear.nnx._nlinear import NLinear as NLinear
from jaxlinear.nnx._unit_scaled import LinearReadout as LinearReadout
from jaxlinear.nnx._unit_scaled import UnitScaledLinear as UnitScaledLinear

__all__ = ["Linear", "LinearReadout", "NLinear", "UnitScaledLinear"]
