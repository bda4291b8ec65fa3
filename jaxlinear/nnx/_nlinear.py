"""``jl.nnx.NLinear``: :class:`jaxlinear.NLinear` (delu.nn.NLinear) as a native Flax NNX module."""

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
from flax import nnx

from jaxlinear import nn as jnn
from jaxlinear._checks import check_choice, check_dim, check_positive_int
from jaxlinear._typing import Array, Dtype, Initializer, PrecisionLike
from jaxlinear.functional import NLINEAR_LAYOUTS
from jaxlinear.layers import (
    LrRule,
    check_dense_config,
    check_nlinear_input,
    dense_inits,
    dense_lr_rule,
    layer_axes,
    nlinear_forward,
    normalize_n,
)
from jaxlinear.nnx._common import check_params, param, param_value
from jaxlinear.parametrizations import Parametrization

__all__ = ["NLinear"]


class NLinear(nnx.Module):
    """N separate linear layers applied in parallel, as an NNX module: ``(..., *n, in) -> (..., *n, out)``.

    The NNX front end of :class:`jaxlinear.NLinear` (``delu.nn.NLinear``), over the same layer core
    (:mod:`jaxlinear.layers`): params ``kernel`` ``(*n, in, out)`` and ``bias`` ``(*n, out)``
    (``nnx.Param``), the same checks, forward (:func:`~jaxlinear.layers.nlinear_forward`: equal params
    give bit-identical outputs), init (U(±1/√in), or the parametrization's N(0, s²) with per-member
    fans) and learning-rate rule. Random streams:
    see :class:`jaxlinear.nnx.Linear`.

    Args:
        n: the number of layers, an int or a tuple of ints (a grid of layers).
        in_features: input size of each layer, an int in ``[0, 2**31 - 1]``.
        out_features: output size of each layer, an int in ``[1, 2**31 - 1]``.
        use_bias: add a bias; a bool.
        parametrization: None (delu's init) or a parametrization, as in :class:`jaxlinear.NLinear`.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``.
        layout: ``"batch_major"`` ``(..., *n, in)`` or ``"member_major"`` ``(*n, ..., in)``.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        kernel_axes: logical axis names of the kernel's dims (``len(n) + 2`` names: members, in,
            out), or None.
        bias_axes: the bias's names; default: the kernel's member names plus its last name.
        kernel_init: None (delu's or the parametrization's init) or an initializer of the whole
            kernel ``(*n, in, out)``; an error with a parametrization.
        bias_init: None or an initializer for the bias, likewise.
        rngs: an ``nnx.Rngs`` with a ``params`` stream.

    Attributes:
        kernel: ``nnx.Param`` ``(*n, in_features, out_features)``.
        bias: ``nnx.Param`` ``(*n, out_features)``, or None.

    Raises:
        TypeError, ValueError: for a bad argument (the messages of :class:`jaxlinear.NLinear`).

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> layer = jl.nnx.NLinear(3, 5, 4, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape, layer(jnp.ones((2, 3, 5))).shape
        ((3, 5, 4), (2, 3, 4))
    """

    def __init__(
        self,
        n: int | tuple[int, ...],
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = True,
        parametrization: Parametrization | str | None = None,
        layer_type: str = "hidden",
        layout: str = "batch_major",
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        precision: PrecisionLike = None,
        kernel_axes: Sequence[str | None] | None = None,
        bias_axes: Sequence[str | None] | None = None,
        kernel_init: Initializer | None = None,
        bias_init: Initializer | None = None,
        rngs: nnx.Rngs,
    ) -> None:
        n_shape = normalize_n(n)
        check_positive_int("in_features", in_features, allow_zero=True)
        check_dim("in_features", in_features)
        check_positive_int("out_features", out_features)  # named as here, not linen's `features`
        check_dense_config(
            out_features, use_bias, parametrization, layer_type, dtype, param_dtype,
            kernel_init, bias_init,
        )  # fmt: skip
        check_choice("layout", layout, NLINEAR_LAYOUTS)
        kernel_axes, bias_axes = layer_axes(
            kernel_axes, bias_axes, len(n_shape) + 2, use_bias=use_bias
        )
        self.n = n_shape
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.use_bias = bool(use_bias)
        self.parametrization = parametrization
        self.layer_type = layer_type
        self.layout = layout
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.kernel_axes = kernel_axes
        self.bias_axes = bias_axes
        kernel_init, bias_init = dense_inits(
            parametrization, in_features, out_features, layer_type, kernel_init, bias_init
        )
        kernel_shape = (*n_shape, self.in_features, self.out_features)
        self.kernel = param(kernel_init(rngs.params(), kernel_shape, param_dtype), kernel_axes)
        self.bias = (
            param(bias_init(rngs.params(), (*n_shape, self.out_features), param_dtype), bias_axes)
            if use_bias
            else nnx.data(None)
        )

    @property
    def n_shape(self) -> tuple[int, ...]:
        """``n`` as a tuple."""
        return self.n

    def __call__(self, x: Array) -> Array:
        """Member ``i`` of ``x`` through ``kernel[i]`` and ``bias[i]``.

        Args:
            x: a floating array ``(..., *n, in_features)`` (``(*n, ..., in_features)`` for
                ``layout="member_major"``).

        Returns:
            ``(..., *n, out_features)`` (``(*n, ..., out_features)`` member-major).

        Raises:
            TypeError, ValueError: for a non-floating ``x`` or shapes that do not fit the kernel.
        """
        kernel, bias = param_value(self.kernel), param_value(self.bias)
        check_params(kernel, bias)
        x = check_nlinear_input(x, self.n, self.layout, kernel.shape)
        return nlinear_forward(
            x, kernel, bias, dtype=self.dtype, precision=self.precision, layout=self.layout
        )

    def linen_twin(self) -> jnn.NLinear:
        """The linen :class:`jaxlinear.NLinear` that computes the same function on the same params.

        Returns:
            ``jl.NLinear(n, out_features, ...)`` with this layer's settings.

        Example:
            >>> import jaxlinear as jl
            >>> from flax import nnx
            >>> jl.nnx.NLinear(2, 3, 4, rngs=nnx.Rngs(0)).linen_twin().n
            (2,)
        """
        return jnn.NLinear(
            self.n,
            self.out_features,
            use_bias=self.use_bias,
            parametrization=self.parametrization,
            layer_type=self.layer_type,
            layout=self.layout,
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
        """This layer's learning-rate rule, :func:`jaxlinear.layers.dense_lr_rule` (per member fans).

        Args:
            shapes: the shape of each param by name, the kernel ``(*n, in, out)``.
            optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
            depth: must be None.
            readout_constraint: ignored.

        Returns:
            ``{param name: (lr factor, weight-decay factor)}`` as Python floats.

        Raises:
            ValueError, NotImplementedError: as :meth:`jaxlinear.NLinear.lr_rule`.

        Example:
            >>> import jaxlinear as jl
            >>> from flax import nnx
            >>> layer = jl.nnx.NLinear(4, 16, 8, parametrization="mup", layer_type="input",
            ...                        rngs=nnx.Rngs(0))
            >>> layer.lr_rule({"kernel": (4, 16, 8), "bias": (4, 8)}, "sgd")
            {'kernel': (8.0, 1.0), 'bias': (8.0, 1.0)}
        """
        del readout_constraint
        return dense_lr_rule(
            self.parametrization, self.layer_type, shapes, optimizer, depth=depth,
            layer=f"the jl.nnx.{type(self).__name__}",
        )  # fmt: skip
