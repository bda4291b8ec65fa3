"""``jl.nnx.Linear``: :class:`jaxlinear.Linear` as a native Flax NNX module (same params, same numbers)."""

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
from flax import nnx
from flax.linen.dtypes import promote_dtype

from jaxlinear import functional
from jaxlinear import nn as jnn
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
from jaxlinear.initializers import layer_inits
from jaxlinear.nn._linear import LrRule
from jaxlinear.nnx._common import check_axes, check_params, default_bias_axes, param, param_value
from jaxlinear.parametrizations import LAYER_TYPES, Parametrization, get_parametrization

__all__ = ["Linear"]


class Linear(nnx.Module):
    """A dense layer with ``torch.nn.Linear``'s init, as an NNX module: ``(..., in) -> (..., out)``.

    The NNX twin of :class:`jaxlinear.Linear`: the same params (``kernel`` ``(in, out)``, ``bias``
    ``(out,)``, as ``nnx.Param``), the same forward (:func:`jaxlinear.functional.linear` after Flax's
    ``promote_dtype``, so equal params give bit-identical outputs), the same init distributions
    (U(±1/√in) without a parametrization, inferno's N(0, s²) with one) and the same learning-rate
    rule (:meth:`lr_rule`).

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
        rngs: nnx.Rngs,
    ) -> None:
        check_positive_int("in_features", in_features, allow_zero=True)
        check_dim("in_features", in_features)
        check_positive_int("out_features", out_features)
        check_dim("out_features", out_features)
        check_bool("use_bias", use_bias)
        if parametrization is not None:
            get_parametrization(parametrization)  # TypeError/ValueError for a bad one
        check_choice("layer_type", layer_type, LAYER_TYPES)
        check_floating_dtype("dtype", dtype, allow_none=True)
        check_floating_dtype("param_dtype", param_dtype)
        kernel_axes = check_axes("kernel_axes", kernel_axes, 2)
        bias_axes = check_axes("bias_axes", bias_axes, 1) or default_bias_axes(kernel_axes)
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
        kernel_init, bias_init = layer_inits(parametrization, in_features, out_features, layer_type)
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
        x = jnp.asarray(x)
        check_floating_array("x", x)
        check_min_ndim("x", x, 1, "(..., in_features)")
        kernel, bias = param_value(self.kernel), param_value(self.bias)
        check_params(kernel, bias)
        check_in_features("x", x, kernel.shape)
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        return functional.linear(x, kernel, bias, precision=self.precision)

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
        )

    def lr_rule(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        optimizer: str,
        *,
        depth: int | None = None,
        readout_constraint: str | None = None,
    ) -> LrRule:
        """This layer's learning-rate rule, :meth:`jaxlinear.Linear.lr_rule` (one implementation).

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
        return self.linen_twin().lr_rule(
            shapes, optimizer, depth=depth, readout_constraint=readout_constraint
        )
