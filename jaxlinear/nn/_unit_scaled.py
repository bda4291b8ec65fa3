"""``UnitScaledLinear`` and ``LinearReadout``: ``unit_scaling.Linear`` / ``LinearReadout`` in Flax."""

from typing import Any

import jax.numpy as jnp

from jaxlinear._typing import DotGeneralT, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import (
    MUP_TYPES,
    READOUT_CONSTRAINTS,
    READOUT_SCALE_POWER,
    UnitScaledCore,
    umup_lr_factor,
)
from jaxlinear.nn._params import LinenLayer

__all__ = [
    "MUP_TYPES",
    "READOUT_CONSTRAINTS",
    "LinearReadout",
    "UnitScaledLinear",
    "umup_lr_factor",
]


class UnitScaledLinear(UnitScaledCore, LinenLayer):
    """A unit-scaled dense layer, ``unit_scaling.Linear``: ``(..., in) -> (..., features)``.

    Forward ``y = s_out * (x @ kernel + bias)``, backward with its own scales (see
    :func:`jaxlinear.scaling.linear`); with ``to_output_scale`` (the default) both are
    ``1/√in`` and the weight gradient is scaled by ``1/√B``, B the number of rows of the whole input.
    The kernel ``(in, features)`` is drawn from N(0, 1) and the bias is zeros, as the reference's code
    does.

    Warning:
        ``unit_scaling.Linear``'s docstring says the bias defaults to True, the init is uniform and the
        constraint defaults to ``"gmean"``; its code (which jaxlinear follows) has ``bias=False``,
        N(0, 1) and ``"to_output_scale"``.

    Attributes:
        features: output size, an int in ``[1, 2**31 - 1]``.
        use_bias: add a (zero-initialised) bias inside the output scale; a bool.
        constraint: None, ``"gmean"``, ``"hmean"``, ``"amean"``, ``"to_output_scale"`` or
            ``"to_grad_input_scale"``.
        weight_mup_type: the u-μP label of the kernel, ``"weight"``, ``"bias"``, ``"norm"`` or
            ``"output"``; only the learning-rate rule reads it (:meth:`lr_rule`).
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        kernel_axes: None, or logical axis names of the kernel ``(in, features)`` (see
            :class:`jaxlinear.Linear`).
        bias_axes: None (the kernel's output name) or one name for the bias.
        kernel_init: None (N(0, 1), the reference's) or an initializer.
        bias_init: None (zeros) or an initializer.
        dot_general: None or a dot product function for ``x @ kernel``, as in
            :class:`jaxlinear.Linear`; the unit scales apply around it (see
            :func:`jaxlinear.scaling.linear`).
        dot_general_cls: None or a class building one, as in :class:`jaxlinear.Linear`.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.UnitScaledLinear(4)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> jax.tree.map(jnp.shape, variables)
        {'params': {'kernel': (3, 4)}}
        >>> layer.apply(variables, jnp.ones((5, 2, 3))).shape
        (5, 2, 4)
    """

    features: int
    use_bias: bool = False
    constraint: str | None = "to_output_scale"
    weight_mup_type: str = "weight"
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None
    kernel_axes: tuple[str | None, ...] | None = None
    bias_axes: tuple[str | None, ...] | None = None
    kernel_init: Initializer | None = None
    bias_init: Initializer | None = None
    dot_general: DotGeneralT | None = None
    dot_general_cls: Any = None


class LinearReadout(UnitScaledLinear):
    """The unit-scaled readout layer, ``unit_scaling.LinearReadout``.

    :class:`UnitScaledLinear` with output scale ``1/in`` (μP's readout multiplier, see
    :func:`jaxlinear.scaling.linear_readout`), no constraint by default and the kernel labelled
    ``"output"`` for the optimizer rules.

    Warning:
        The reference's docstring says the constraint defaults to ``"gmean"``; its code has None.

    Attributes:
        features: output size, an int in ``[1, 2**31 - 1]``.
        use_bias: add a (zero-initialised) bias inside the output scale; a bool.
        constraint: how the output and grad-input scales are tied: None (the default:
            unconstrained), ``"gmean"``, ``"hmean"``, ``"amean"``, ``"to_output_scale"`` or
            ``"to_grad_input_scale"``.
        weight_mup_type: the u-μP label of the kernel, ``"output"`` by default (``"weight"``,
            ``"bias"``, ``"norm"`` or ``"output"``); only the learning-rate rule reads it.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        kernel_axes: None, or logical axis names of the kernel ``(in, features)``.
        bias_axes: None (the kernel's output name) or one name for the bias.
        kernel_init: None (N(0, 1)) or an initializer.
        bias_init: None (zeros) or an initializer.
        dot_general: None or a dot product function, as in :class:`UnitScaledLinear`.
        dot_general_cls: None or a class building one, as in :class:`jaxlinear.Linear`.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.LinearReadout(4, use_bias=True)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> jax.tree.map(jnp.shape, variables)
        {'params': {'bias': (4,), 'kernel': (3, 4)}}
    """

    constraint: str | None = None
    weight_mup_type: str = "output"

    scale_power = READOUT_SCALE_POWER
