"""``jl.nnx.UnitScaledLinear`` and ``jl.nnx.LinearReadout``: the unit-scaled layers as native NNX modules."""

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
from flax import nnx

from jaxlinear import nn as jnn
from jaxlinear._checks import check_dim, check_positive_int
from jaxlinear._typing import Array, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import (
    READOUT_SCALE_POWER,
    UNIT_SCALED_SCALE_POWER,
    LrRule,
    check_linear_input,
    check_unit_scaled_config,
    layer_axes,
    unit_scaled_forward,
    unit_scaled_inits,
    unit_scaled_lr_rule,
)
from jaxlinear.nnx._common import check_params, param, param_value

__all__ = ["LinearReadout", "UnitScaledLinear"]


class UnitScaledLinear(nnx.Module):
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

    _scale_power = UNIT_SCALED_SCALE_POWER
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
        rngs: nnx.Rngs,
    ) -> None:
        check_positive_int("in_features", in_features, allow_zero=True)
        check_dim("in_features", in_features)
        check_positive_int("out_features", out_features)  # named as here, not linen's `features`
        check_unit_scaled_config(
            out_features, use_bias, constraint, weight_mup_type, dtype, param_dtype,
            kernel_init, bias_init,
        )  # fmt: skip
        kernel_axes, bias_axes = layer_axes(kernel_axes, bias_axes, 2, use_bias=use_bias)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.use_bias = bool(use_bias)
        self.constraint = constraint
        self.weight_mup_type = weight_mup_type
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.kernel_axes = kernel_axes
        self.bias_axes = bias_axes
        kernel_init, bias_init = unit_scaled_inits(kernel_init, bias_init)
        shape = (self.in_features, self.out_features)
        self.kernel = param(kernel_init(rngs.params(), shape, param_dtype), kernel_axes)
        self.bias = (
            param(bias_init(rngs.params(), (self.out_features,), param_dtype), bias_axes)
            if use_bias
            else nnx.data(None)
        )

    def __call__(self, x: Array) -> Array:
        """The unit-scaled ``x @ kernel + bias`` (:func:`jaxlinear.scaling.linear`).

        Args:
            x: a floating array ``(..., in_features)``.

        Returns:
            ``(..., out_features)``.

        Raises:
            TypeError, ValueError: for a non-floating ``x`` or a last dim other than ``in_features``.
        """
        kernel, bias = param_value(self.kernel), param_value(self.bias)
        check_params(kernel, bias)
        x = check_linear_input(x, kernel.shape)
        return unit_scaled_forward(
            x, kernel, bias, self.constraint, self._scale_power, dtype=self.dtype,
            precision=self.precision,
        )  # fmt: skip

    def linen_twin(self) -> jnn.UnitScaledLinear:
        """The linen layer that computes the same function on the same params.

        Returns:
            :class:`jaxlinear.UnitScaledLinear` (or :class:`jaxlinear.LinearReadout`) with this
            layer's settings.

        Example:
            >>> import jaxlinear as jl
            >>> from flax import nnx
            >>> type(jl.nnx.LinearReadout(3, 4, rngs=nnx.Rngs(0)).linen_twin()).__name__
            'LinearReadout'
        """
        return self._linen(
            self.out_features,
            use_bias=self.use_bias,
            constraint=self.constraint,
            weight_mup_type=self.weight_mup_type,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            precision=self.precision,
            kernel_axes=self.kernel_axes,
            bias_axes=self.bias_axes if self.use_bias else None,
        )

    def lr_rule(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        optimizer: str,
        *,
        depth: int | None = None,
        readout_constraint: str | None = None,
    ) -> LrRule:
        """u-μP's rule for this layer, :func:`jaxlinear.layers.unit_scaled_lr_rule`.

        Args:
            shapes: the shape of each param.
            optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
            depth: the number of layers of the depth-scaled stack this layer is in, or None.
            readout_constraint: for SGD, the ``constraint`` of the model's readout.

        Returns:
            ``{param name: (lr factor, weight-decay factor)}`` as Python floats.

        Raises:
            ValueError: as :meth:`jaxlinear.UnitScaledLinear.lr_rule`.

        Example:
            >>> import jaxlinear as jl
            >>> from flax import nnx
            >>> layer = jl.nnx.UnitScaledLinear(16, 8, use_bias=True, rngs=nnx.Rngs(0))
            >>> layer.lr_rule({"kernel": (16, 8), "bias": (8,)}, "adam")
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
    """The unit-scaled readout, ``unit_scaling.LinearReadout``, as an NNX module.

    :class:`UnitScaledLinear` with output scale ``1/in``, no constraint by default and the kernel
    labelled ``"output"``: the NNX twin of :class:`jaxlinear.LinearReadout`.

    Args:
        in_features: input size.
        out_features: output size.
        use_bias: add a (zero-initialised) bias; a bool.
        constraint: None (default) or a constraint name, as in :class:`UnitScaledLinear`.
        weight_mup_type: the kernel's u-μP label, ``"output"`` by default.
        dtype: computation dtype.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        kernel_axes: logical axis names of the kernel's two dims, or None.
        bias_axes: the bias's name; default: the kernel's last name.
        kernel_init: None (N(0, 1)) or an initializer ``(key, shape, dtype) -> Array``.
        bias_init: None (zeros) or an initializer for the bias.
        rngs: an ``nnx.Rngs`` with a ``params`` stream.

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

    _scale_power = READOUT_SCALE_POWER
    _linen = jnn.LinearReadout

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = False,
        constraint: str | None = None,
        weight_mup_type: str = "output",
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        precision: PrecisionLike = None,
        kernel_axes: Sequence[str | None] | None = None,
        bias_axes: Sequence[str | None] | None = None,
        kernel_init: Initializer | None = None,
        bias_init: Initializer | None = None,
        rngs: nnx.Rngs,
    ) -> None:
        super().__init__(
            in_features,
            out_features,
            use_bias=use_bias,
            constraint=constraint,
            weight_mup_type=weight_mup_type,
            dtype=dtype,
            param_dtype=param_dtype,
            precision=precision,
            kernel_axes=kernel_axes,
            bias_axes=bias_axes,
            kernel_init=kernel_init,
            bias_init=bias_init,
            rngs=rngs,
        )
