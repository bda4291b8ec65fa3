"""``jl.nnx.UnitScaledLinear`` and ``jl.nnx.LinearReadout``: the unit-scaled layers as native NNX modules."""

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlinear import nn as jnn
from jaxlinear import scaling
from jaxlinear._checks import (
    check_bool,
    check_choice,
    check_dim,
    check_floating_array,
    check_floating_dtype,
    check_in_features,
    check_min_ndim,
    check_positive_int,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike
from jaxlinear.nn._unit_scaled import MUP_TYPES
from jaxlinear.nnx._common import check_axes, check_params, default_bias_axes, param, param_value

__all__ = ["LinearReadout", "UnitScaledLinear"]


class UnitScaledLinear(nnx.Module):
    """A unit-scaled dense layer, ``unit_scaling.Linear``, as an NNX module: ``(..., in) -> (..., out)``.

    The NNX twin of :class:`jaxlinear.UnitScaledLinear`: params ``kernel`` ``(in, out)`` ~ N(0, 1)
    and ``bias`` ``(out,)`` zeros (``nnx.Param``), the same forward (:func:`jaxlinear.scaling.linear`:
    equal params give bit-identical outputs and gradients) and the same u-μP learning-rate rule.
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

    _scale_power = (0.5, 0.5, 0.5)
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
        rngs: nnx.Rngs,
    ) -> None:
        check_positive_int("in_features", in_features, allow_zero=True)
        check_dim("in_features", in_features)
        check_positive_int("out_features", out_features)
        check_dim("out_features", out_features)
        check_bool("use_bias", use_bias)
        scaling.check_constraint(constraint)
        check_choice("weight_mup_type", weight_mup_type, MUP_TYPES)
        check_floating_dtype("dtype", dtype, allow_none=True)
        check_floating_dtype("param_dtype", param_dtype)
        kernel_axes = check_axes("kernel_axes", kernel_axes, 2)
        bias_axes = check_axes("bias_axes", bias_axes, 1) or default_bias_axes(kernel_axes)
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
        shape = (self.in_features, self.out_features)
        kernel = jax.nn.initializers.normal(1.0)(rngs.params(), shape, param_dtype)
        self.kernel = param(kernel, kernel_axes)
        self.bias = (
            param(jnp.zeros((self.out_features,), param_dtype), bias_axes)
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
        x = jnp.asarray(x)
        check_floating_array("x", x)
        check_min_ndim("x", x, 1, "(..., in_features)")
        kernel, bias = param_value(self.kernel), param_value(self.bias)
        check_params(kernel, bias)
        check_in_features("x", x, kernel.shape)
        return scaling.linear(
            x,
            kernel,
            bias,
            self.constraint,
            self._scale_power,
            dtype=self.dtype,
            precision=self.precision,
        )

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
        )

    def lr_rule(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        optimizer: str,
        *,
        depth: int | None = None,
        readout_constraint: str | None = None,
    ) -> dict[str, tuple[float, float]]:
        """u-μP's rule for this layer, :meth:`jaxlinear.UnitScaledLinear.lr_rule`.

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
        return self.linen_twin().lr_rule(
            shapes, optimizer, depth=depth, readout_constraint=readout_constraint
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

    _scale_power = (1.0, 0.5, 0.5)
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
            rngs=rngs,
        )
