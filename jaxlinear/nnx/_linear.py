"""``jl.nnx.Linear``: :class:`jaxlinear.Linear` as a native Flax NNX module (same params, same numbers)."""

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
from flax import nnx

from jaxlinear import nn as jnn
from jaxlinear._checks import check_dim, check_positive_int
from jaxlinear._typing import Array, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import (
    LrRule,
    check_dense_config,
    check_linear_input,
    dense_inits,
    dense_lr_rule,
    layer_axes,
    linear_forward,
)
from jaxlinear.nnx._common import check_params, param, param_value
from jaxlinear.parametrizations import Parametrization

__all__ = ["Linear"]


class Linear(nnx.Module):
    """A dense layer with ``torch.nn.Linear``'s init, as an NNX module: ``(..., in) -> (..., out)``.

    The NNX front end of :class:`jaxlinear.Linear`, over the same layer core (:mod:`jaxlinear.layers`):
    the same params (``kernel`` ``(in, out)``, ``bias`` ``(out,)``, as ``nnx.Param``), the same checks,
    forward (:func:`~jaxlinear.layers.linear_forward`: equal params give bit-identical outputs), init
    distributions (U(±1/√in) without a parametrization, inferno's N(0, s²) with one) and
    learning-rate rule (:meth:`lr_rule`).

    Random streams differ from linen's: linen draws each param from the ``"params"`` key folded with
    the module's path and the param's name, so ``jl.Linear(...).init(jax.random.key(0), x)`` depends
    on names only. NNX draws from ``rngs.params()``, a counter: each draw takes the next key of the
    stream (kernel first, then bias), so the numbers depend on the order layers are built. The same
    seed therefore gives other numbers than linen (the same distribution); port exact weights with
    :func:`jaxlinear.interop.from_torch` and ``nnx.update``.

    Args:
        in_features: input size, an int in ``[0, 2**31 - 1]`` (0 gives zeros, as torch).
        out_features: output size, an int in ``[1, 2**31 - 1]``.
        use_bias: add a bias; a bool.
        parametrization: None (torch.nn.Linear's init) or a parametrization (``"mup"``,
            ``MaximalUpdate()``, ...): the layer is then ``inferno.bnn.Linear``.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        kernel_axes: logical axis names of the kernel's two dims (``("embed", "mlp")``), stored as
            the params' ``out_sharding`` metadata (read by ``nnx.get_partition_spec``), or None.
        bias_axes: the bias's axis name, a 1-tuple; default: the kernel's last name.
        kernel_init: None (torch's or the parametrization's init) or an initializer
            ``(key, shape, dtype) -> Array``; an error with a parametrization.
        bias_init: None or an initializer for the bias, likewise.
        rngs: an ``nnx.Rngs`` with a ``params`` stream (or a default one).

    Attributes:
        kernel: ``nnx.Param`` ``(in_features, out_features)``.
        bias: ``nnx.Param`` ``(out_features,)``, or None without a bias.

    Raises:
        TypeError, ValueError: for a bad argument (the messages of :class:`jaxlinear.Linear`).

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> layer = jl.nnx.Linear(3, 4, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape, layer.bias.shape
        ((3, 4), (4,))
        >>> layer(jnp.ones((5, 2, 3))).shape
        (5, 2, 4)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = True,
        parametrization: Parametrization | str | None = None,
        layer_type: str = "hidden",
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
        check_dense_config(
            out_features, use_bias, parametrization, layer_type, dtype, param_dtype,
            kernel_init, bias_init,
        )  # fmt: skip
        kernel_axes, bias_axes = layer_axes(kernel_axes, bias_axes, 2, use_bias=use_bias)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.use_bias = bool(use_bias)
        self.parametrization = parametrization
        self.layer_type = layer_type
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.kernel_axes = kernel_axes
        self.bias_axes = bias_axes
        kernel_init, bias_init = dense_inits(
            parametrization, in_features, out_features, layer_type, kernel_init, bias_init
        )
        shape = (self.in_features, self.out_features)
        self.kernel = param(kernel_init(rngs.params(), shape, param_dtype), kernel_axes)
        self.bias = (
            param(bias_init(rngs.params(), (self.out_features,), param_dtype), bias_axes)
            if use_bias
            else nnx.data(None)
        )

    def __call__(self, x: Array) -> Array:
        """``x @ kernel + bias`` over the last dim of ``x``.

        Args:
            x: a floating array ``(..., in_features)``.

        Returns:
            ``(..., out_features)``, in ``dtype`` (or the promotion of ``x`` and the params).

        Raises:
            TypeError, ValueError: for a non-floating ``x`` or a last dim other than ``in_features``.
        """
        kernel, bias = param_value(self.kernel), param_value(self.bias)
        check_params(kernel, bias)
        x = check_linear_input(x, kernel.shape)
        return linear_forward(x, kernel, bias, dtype=self.dtype, precision=self.precision)

    def linen_twin(self) -> jnn.Linear:
        """The linen :class:`jaxlinear.Linear` that computes the same function on the same params.

        Returns:
            ``jl.Linear(out_features, ...)`` with this layer's settings; ``{"params": {"kernel": ...,
            "bias": ...}}`` built from this layer's params runs it with bit-identical outputs.

        Example:
            >>> import jaxlinear as jl
            >>> from flax import nnx
            >>> jl.nnx.Linear(3, 4, rngs=nnx.Rngs(0)).linen_twin().features
            4
        """
        return jnn.Linear(
            self.out_features,
            use_bias=self.use_bias,
            parametrization=self.parametrization,
            layer_type=self.layer_type,
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
        """This layer's learning-rate rule, :func:`jaxlinear.layers.dense_lr_rule` (as the linen layer's).

        Args:
            shapes: the shape of each param by name (``"kernel"``, ``"bias"``).
            optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"`` (inferno's spellings too).
            depth: must be None: only unit-scaled layers have a depth rule.
            readout_constraint: ignored (a u-μP notion).

        Returns:
            ``{param name: (lr factor, weight-decay factor)}`` as Python floats.

        Raises:
            ValueError, NotImplementedError: as :meth:`jaxlinear.Linear.lr_rule`.

        Example:
            >>> import jaxlinear as jl
            >>> from flax import nnx
            >>> layer = jl.nnx.Linear(64, 8, parametrization="mup", rngs=nnx.Rngs(0))
            >>> layer.lr_rule({"kernel": (64, 8), "bias": (8,)}, "adam")
            {'kernel': (0.015625, 1.0), 'bias': (1.0, 1.0)}
        """
        del readout_constraint
        return dense_lr_rule(
            self.parametrization, self.layer_type, shapes, optimizer, depth=depth,
            layer=f"the jl.nnx.{type(self).__name__}",
        )  # fmt: skip
