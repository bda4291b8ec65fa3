"""``UnitScaledLinear`` and ``LinearReadout``: ``unit_scaling.Linear`` / ``LinearReadout`` in Flax."""

import math
from collections.abc import Mapping

import flax.linen as nn
import jax.numpy as jnp

from jaxlinear import scaling
from jaxlinear._checks import (
    check_bool,
    check_choice,
    check_dim,
    check_floating_array,
    check_floating_dtype,
    check_in_features,
    check_layer_params,
    check_min_ndim,
    check_positive_int,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike
from jaxlinear.parametrizations import canonical_optimizer

__all__ = [
    "MUP_TYPES",
    "READOUT_CONSTRAINTS",
    "LinearReadout",
    "UnitScaledLinear",
    "umup_lr_factor",
]

MUP_TYPES = ("weight", "bias", "norm", "output")
READOUT_CONSTRAINTS = (None, "to_output_scale")


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


class UnitScaledLinear(nn.Module):
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

    _scale_power = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        check_positive_int("features", self.features)
        check_dim("features", self.features)
        check_bool("use_bias", self.use_bias)
        scaling.check_constraint(self.constraint)
        check_choice("weight_mup_type", self.weight_mup_type, MUP_TYPES)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        check_floating_array("x", x)
        check_min_ndim("x", x, 1, "(..., in_features)")
        n_in = x.shape[-1]
        check_dim("x.shape[-1]", n_in)
        check_layer_params(self, self.use_bias, (None, self.features))
        if self.has_variable("params", "kernel"):
            check_in_features("x", x, self.get_variable("params", "kernel").shape)
        kernel = self.param(
            "kernel", nn.initializers.normal(1.0), (n_in, self.features), self.param_dtype
        )
        bias = (
            self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
            if self.use_bias
            else None
        )
        return scaling.linear(
            x,
            kernel,
            bias,
            self.constraint,
            self._scale_power,
            dtype=self.dtype,
            precision=self.precision,
        )

    def lr_rule(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        optimizer: str,
        *,
        depth: int | None = None,
        readout_constraint: str | None = None,
    ) -> dict[str, tuple[float, float]]:
        """u-μP's rule for this layer: ``{param name: (lr factor, weight-decay factor)}``.

        The kernel is labelled ``weight_mup_type``, the bias ``"bias"``, as the reference's
        ``uu.Parameter`` tags; the lr factor is :func:`umup_lr_factor`. ``unit_scaling.optim`` makes
        weight decay independent of each parameter's lr (``wd_p = wd / lr_p``): the weight-decay factor
        is ``1 / lr factor``.

        Args:
            shapes: the shape of each param (one slice for lifted layers).
            optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (inferno's spellings too).
            depth: the number of layers of the depth-scaled stack this layer is in (the reference's
                ``DepthSequential``), or None.
            readout_constraint: for SGD, the ``constraint`` of the model's :class:`LinearReadout`.

        Returns:
            ``{param name: (lr factor, weight-decay factor)}`` for every name in ``shapes``, as
            Python floats.

        Raises:
            ValueError: for an unknown optimizer, readout constraint (SGD) or depth, or a
                parameter shape with no dims or more than 3.

        Example:
            >>> import jaxlinear as jl
            >>> jl.UnitScaledLinear(8, use_bias=True).lr_rule({"kernel": (16, 8), "bias": (8,)}, "adam")
            {'kernel': (0.25, 4.0), 'bias': (1.0, 1.0)}
        """
        rule = {}
        for name, shape in shapes.items():
            mup_type = self.weight_mup_type if name == "kernel" else "bias"
            f = umup_lr_factor(
                shape, mup_type, optimizer, depth=depth, readout_constraint=readout_constraint
            )
            rule[name] = (f, 1.0 / f)
        return rule


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

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.LinearReadout(4, use_bias=True)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> jax.tree.map(jnp.shape, variables)
        {'params': {'bias': (4,), 'kernel': (3, 4)}}
    """

    constraint: str | None = None
    weight_mup_type: str = "output"

    _scale_power = (1.0, 0.5, 0.5)
