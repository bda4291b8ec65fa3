"""``UnitScaledLinear`` and ``LinearReadout``: ``unit_scaling.Linear`` / ``LinearReadout`` in Flax."""

from collections.abc import Mapping

import flax.linen as nn
import jax.numpy as jnp

from jaxlinear._checks import check_layer_params
from jaxlinear._typing import Array, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import (
    MUP_TYPES,
    READOUT_CONSTRAINTS,
    READOUT_SCALE_POWER,
    UNIT_SCALED_SCALE_POWER,
    Axes,
    check_linear_input,
    check_unit_scaled_config,
    layer_axes,
    umup_lr_factor,
    unit_scaled_forward,
    unit_scaled_inits,
    unit_scaled_lr_rule,
)
from jaxlinear.nn._params import declare, existing

__all__ = [
    "MUP_TYPES",
    "READOUT_CONSTRAINTS",
    "LinearReadout",
    "UnitScaledLinear",
    "umup_lr_factor",
]


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
        kernel_axes: None, or logical axis names of the kernel ``(in, features)`` (see
            :class:`jaxlinear.Linear`).
        bias_axes: None (the kernel's output name) or one name for the bias.
        kernel_init: None (N(0, 1), the reference's) or an initializer.
        bias_init: None (zeros) or an initializer.

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

    _scale_power = UNIT_SCALED_SCALE_POWER

    def __post_init__(self) -> None:
        check_unit_scaled_config(
            self.features,
            self.use_bias,
            self.constraint,
            self.weight_mup_type,
            self.dtype,
            self.param_dtype,
            self.kernel_init,
            self.bias_init,
        )
        layer_axes(self.kernel_axes, self.bias_axes, 2, use_bias=self.use_bias)
        super().__post_init__()

    def param_axes(self) -> dict[str, Axes]:
        """The logical axis names of each param (from ``kernel_axes`` / ``bias_axes``), None if unnamed.

        What ``init`` boxes the params with (``nn.LogicallyPartitioned``); workflows that
        build this layer's params another way (:func:`jaxlinear.interop.from_torch`) box them alike.

        Returns:
            ``{param name: names or None}`` for the kernel and the bias.

        Example:
            >>> import jaxlinear as jl
            >>> jl.UnitScaledLinear(8, kernel_axes=("embed", "mlp")).param_axes()
            {'kernel': ('embed', 'mlp'), 'bias': None}
        """
        kernel, bias = layer_axes(self.kernel_axes, self.bias_axes, 2, use_bias=self.use_bias)
        return {"kernel": kernel, "bias": bias}

    @nn.compact
    def __call__(self, x: Array) -> Array:
        stored = existing(self, "kernel")
        x = check_linear_input(x, None if stored is None else stored.shape)
        check_layer_params(self, self.use_bias, (None, self.features))
        n_in = x.shape[-1]
        kernel_init, bias_init = unit_scaled_inits(self.kernel_init, self.bias_init)
        axes = self.param_axes()
        kernel = declare(
            self, "kernel", kernel_init, axes["kernel"], (n_in, self.features), self.param_dtype
        )
        bias = (
            declare(self, "bias", bias_init, axes["bias"], (self.features,), self.param_dtype)
            if self.use_bias
            else None
        )
        return unit_scaled_forward(
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
        ``uu.Parameter`` tags; the lr factor is :func:`jaxlinear.layers.umup_lr_factor`. ``unit_scaling.optim`` makes
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
        return unit_scaled_lr_rule(
            self.weight_mup_type,
            shapes,
            optimizer,
            depth=depth,
            readout_constraint=readout_constraint,
        )


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

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.LinearReadout(4, use_bias=True)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> jax.tree.map(jnp.shape, variables)
        {'params': {'bias': (4,), 'kernel': (3, 4)}}
    """

    constraint: str | None = None
    weight_mup_type: str = "output"

    _scale_power = READOUT_SCALE_POWER
