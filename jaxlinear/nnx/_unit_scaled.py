"""``jl.nnx.UnitScaledLinear`` and ``jl.nnx.LinearReadout``: the unit-scaled layers as native NNX modules."""

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import nnx

from jaxlinear import nn as jnn
from jaxlinear._typing import DotGeneralT, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import READOUT_SCALE_POWER, UnitScaledCore
from jaxlinear.nnx._common import NNXLayer

__all__ = ["LinearReadout", "UnitScaledLinear"]


class UnitScaledLinear(UnitScaledCore, NNXLayer):
    """A unit-scaled dense layer, ``unit_scaling.Linear``, as an NNX module: ``(..., in) -> (..., out)``.

    The NNX front end of :class:`jaxlinear.UnitScaledLinear`, over the same layer core
    (:mod:`jaxlinear.layers`): params ``kernel`` ``(in, out)`` ~ N(0, 1) and ``bias`` ``(out,)`` zeros
    (``nnx.Param``), the same checks, forward (:func:`~jaxlinear.layers.unit_scaled_forward`: equal
    params give bit-identical outputs and gradients) and u-μP learning-rate rule.
    Random streams: see :class:`jaxlinear.nnx.Linear`.

    Args:
        in_features: input size, an int in ``[0, 2**31 - 1]``.
        out_features: output size, an int in ``[1, 2**31 - 1]``.
        use_bias: add a (zero-initialised) bias inside the output scale; a bool.
        constraint: None, ``"gmean"``, ``"hmean"``, ``"amean"``, ``"to_output_scale"`` or
            ``"to_grad_input_scale"``.
        weight_mup_type: the u-μP label of the kernel (``"weight"``, ``"bias"``, ``"norm"``,
            ``"output"``); only the learning-rate rule reads it.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        kernel_axes: logical axis names of the kernel's two dims, or None.
        bias_axes: the bias's name; default: the kernel's last name.
        kernel_init: None (N(0, 1)) or an initializer ``(key, shape, dtype) -> Array``.
        bias_init: None (zeros) or an initializer for the bias.
        dot_general: None or a dot product function for ``x @ kernel``, as in
            :class:`jaxlinear.nnx.Linear`; the unit scales apply around it.
        rngs: an ``nnx.Rngs`` with a ``params`` stream.

    Attributes:
        kernel: ``nnx.Param`` ``(in_features, out_features)``.
        bias: ``nnx.Param`` ``(out_features,)``, or None.

    Raises:
        TypeError, ValueError: for a bad argument (the messages of :class:`jaxlinear.UnitScaledLinear`).

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> layer = jl.nnx.UnitScaledLinear(3, 4, rngs=nnx.Rngs(0))
        >>> layer.bias is None, layer(jnp.ones((5, 3))).shape
        (True, (5, 4))
    """

    _linen = jnn.UnitScaledLinear

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = False,
        constraint: str | None = "to_output_scale",
        weight_mup_type: str = "weight",
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        precision: PrecisionLike = None,
        kernel_axes: Sequence[str | None] | None = None,
        bias_axes: Sequence[str | None] | None = None,
        kernel_init: Initializer | None = None,
        bias_init: Initializer | None = None,
        dot_general: DotGeneralT | None = None,
        rngs: nnx.Rngs,
    ) -> None:
        self._build(locals())


class LinearReadout(UnitScaledLinear):
    """The unit-scaled readout, ``unit_scaling.LinearReadout``, as an NNX module.

    :class:`UnitScaledLinear` with output scale ``1/in``, no constraint by default and the kernel
    labelled ``"output"``: the NNX twin of :class:`jaxlinear.LinearReadout`.

    Args:
        in_features: input size.
        out_features: output size.
        constraint: None (default) or a constraint name, as in :class:`UnitScaledLinear`.
        weight_mup_type: the kernel's u-μP label, ``"output"`` by default.
        **kwargs: the other arguments of :class:`UnitScaledLinear` (``use_bias``, ``dtype``,
            ``param_dtype``, ``precision``, ``kernel_axes``, ``bias_axes``, ``kernel_init``,
            ``bias_init``, ``dot_general``, ``rngs``), with its defaults.

    Attributes:
        kernel: ``nnx.Param`` ``(in_features, out_features)``.
        bias: ``nnx.Param`` ``(out_features,)``, or None.

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> layer = jl.nnx.LinearReadout(3, 4, use_bias=True, rngs=nnx.Rngs(0))
        >>> layer.constraint, layer(jnp.ones((2, 3))).shape
        (None, (2, 4))
    """

    scale_power = READOUT_SCALE_POWER
    _linen = jnn.LinearReadout

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        constraint: str | None = None,
        weight_mup_type: str = "output",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            in_features,
            out_features,
            constraint=constraint,
            weight_mup_type=weight_mup_type,
            **kwargs,
        )
