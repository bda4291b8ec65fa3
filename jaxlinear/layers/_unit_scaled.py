"""The math of ``UnitScaledLinear`` / ``LinearReadout``, written once for the linen and NNX modules."""

import math
from collections.abc import Mapping

from flax.linen import initializers

from jaxlinear import scaling
from jaxlinear._checks import (
    check_choice,
)
from jaxlinear._typing import Array, DotGeneralT, Dtype, Initializer, PrecisionLike
from jaxlinear.layers._dense import LrRule
from jaxlinear.parametrizations import canonical_optimizer

__all__ = [
    "MUP_TYPES",
    "READOUT_CONSTRAINTS",
    "READOUT_SCALE_POWER",
    "UNIT_SCALED_SCALE_POWER",
    "umup_lr_factor",
    "unit_scaled_forward",
    "unit_scaled_inits",
    "unit_scaled_lr_rule",
]

#: The u-μP labels of a parameter, as ``unit_scaling``'s ``uu.Parameter`` tags.
MUP_TYPES = ("weight", "bias", "norm", "output")
#: The readout constraints u-μP's SGD rule reads, None or ``"to_output_scale"``.
READOUT_CONSTRAINTS = (None, "to_output_scale")
#: ``scale_power`` of ``unit_scaling.Linear`` (output, grad-input, grad-weight: ``in**-0.5`` each).
UNIT_SCALED_SCALE_POWER = (0.5, 0.5, 0.5)
#: ``scale_power`` of ``unit_scaling.LinearReadout`` (output scale ``1/in``: μP's readout multiplier).
READOUT_SCALE_POWER = (1.0, 0.5, 0.5)


def unit_scaled_inits(
    kernel_init: Initializer | None = None, bias_init: Initializer | None = None
) -> tuple[Initializer, Initializer]:
    """The kernel and bias initializers: the user's, else N(0, 1) and zeros (the reference's code).

    Args:
        kernel_init: None or the user's kernel initializer.
        bias_init: None or the user's bias initializer.

    Returns:
        ``(kernel_init, bias_init)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> k_init, b_init = unit_scaled_inits()
        >>> b_init(jax.random.key(0), (2,), jnp.float32).tolist()
        [0.0, 0.0]
    """
    return kernel_init or initializers.normal(1.0), bias_init or initializers.zeros


def unit_scaled_forward(
    x: Array,
    kernel: Array,
    bias: Array | None,
    constraint: str | None,
    scale_power: tuple[float, float, float],
    *,
    dtype: Dtype | None = None,
    precision: PrecisionLike = None,
    dot_general: DotGeneralT | None = None,
) -> Array:
    """The forward of ``UnitScaledLinear`` / ``LinearReadout``: :func:`jaxlinear.scaling.linear`.

    Args:
        x: ``(..., in)``.
        kernel: ``(in, out)``.
        bias: ``(out,)`` or None.
        constraint: how the output and grad-input scales are tied (None, ``"gmean"``, ...).
        scale_power: :data:`UNIT_SCALED_SCALE_POWER` or :data:`READOUT_SCALE_POWER`.
        dtype: the computation dtype; None promotes from the operands.
        precision: passed to ``lax.dot_general``.
        dot_general: None or a dot product function for ``x @ kernel`` (see
            :func:`jaxlinear.scaling.linear`).

    Returns:
        ``(..., out)``.

    Example:
        >>> import jax.numpy as jnp
        >>> y = unit_scaled_forward(jnp.ones((2, 4)), jnp.ones((4, 3)), None, None, READOUT_SCALE_POWER)
        >>> y.tolist()[0]
        [1.0, 1.0, 1.0]
    """
    return scaling.linear(
        x, kernel, bias, constraint, scale_power, dtype=dtype, precision=precision,
        dot_general=dot_general,
    )  # fmt: skip


def umup_lr_factor(
    shape: tuple[int, ...],
    mup_type: str,
    optimizer: str,
    *,
    depth: int | None = None,
    readout_constraint: str | None = None,
) -> float:
    """u-μP's learning-rate factor of one parameter (``unit_scaling.optim``'s ``lr_scale_func_*``).

    ``depth**-0.5`` inside a depth-scaled stack (1 outside), times: for Adam/AdamW (and SGD with
    ``readout_constraint=None``) ``fan_in**-0.5`` for a ``"weight"``, 1 for ``"bias"``, ``"norm"``
    and ``"output"``; for SGD with ``readout_constraint="to_output_scale"`` ``fan_in**0.5`` for a
    ``"weight"``, the size ``shape[0]`` in torch's layout for ``"bias"``/``"norm"``, 1 for
    ``"output"``. ``shape`` is in JAX's layout (a kernel ``(in, out)``).

    Args:
        shape: the parameter's shape in JAX's layout, 1 to 3 dims (a kernel ``(in, out)``).
        mup_type: the parameter's u-μP label: ``"weight"``, ``"bias"``, ``"norm"`` or ``"output"``.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (inferno's spellings too).
        depth: the number of layers of the depth-scaled stack the parameter is in, an int > 0, or
            None outside one.
        readout_constraint: for SGD, the ``constraint`` of the model's readout: None or
            ``"to_output_scale"``.

    Returns:
        The learning-rate factor as a Python float.

    Raises:
        ValueError: for an unknown optimizer, label, readout constraint (SGD), depth, or a scalar.

    Example:
        >>> umup_lr_factor((16, 8), "weight", "adam", depth=4)
        0.125
    """
    rule = canonical_optimizer(optimizer)
    check_choice("mup_type", mup_type, MUP_TYPES)
    if rule == "SGD":
        check_choice("readout_constraint", readout_constraint, READOUT_CONSTRAINTS)
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth <= 0):
        raise ValueError(
            f"`depth` must be an int > 0 (the number of layers of the stack), got {depth!r}."
        )
    if len(shape) == 0 or len(shape) > 3:
        raise ValueError(f"a u-μP parameter must have 1 to 3 dims, got shape {tuple(shape)}.")
    torch_shape = tuple(shape[::-1]) if len(shape) >= 2 else tuple(shape)  # (in, out) -> (out, in)
    fan_in = torch_shape[0] if len(shape) == 1 else math.prod(torch_shape[1:])
    scale = 1 if depth is None else depth**-0.5
    if rule == "SGD" and readout_constraint == "to_output_scale":
        if mup_type in ("bias", "norm"):
            return float(scale * torch_shape[0])
        if mup_type == "weight":
            return float(scale * fan_in**0.5)
        return float(scale)
    if mup_type == "weight":
        return float(scale * fan_in**-0.5)
    return float(scale)


def unit_scaled_lr_rule(
    weight_mup_type: str,
    shapes: Mapping[str, tuple[int, ...]],
    optimizer: str,
    *,
    depth: int | None = None,
    readout_constraint: str | None = None,
) -> LrRule:
    """u-μP's rule of a unit-scaled layer: ``{param name: (lr factor, weight-decay factor)}``.

    The kernel is labelled ``weight_mup_type``, the bias ``"bias"``; the lr factor is
    :func:`umup_lr_factor` and the weight-decay factor its inverse (``unit_scaling.optim`` makes weight
    decay independent of each parameter's lr).

    Args:
        weight_mup_type: the kernel's u-μP label.
        shapes: the (global) shape of each param by name.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        depth: the depth of the stack the layer is in, or None.
        readout_constraint: for SGD, the model's readout constraint.

    Returns:
        ``{param name: (lr factor, weight-decay factor)}`` as Python floats.

    Raises:
        ValueError: as :func:`umup_lr_factor`.

    Example:
        >>> unit_scaled_lr_rule("weight", {"kernel": (16, 8), "bias": (8,)}, "adam")
        {'kernel': (0.25, 4.0), 'bias': (1.0, 1.0)}
    """
    rule = {}
    for name, shape in shapes.items():
        mup_type = weight_mup_type if name == "kernel" else "bias"
        f = umup_lr_factor(
            shape, mup_type, optimizer, depth=depth, readout_constraint=readout_constraint
        )
        rule[name] = (f, 1.0 / f)
    return rule
