"""``Linear``: torch.nn.Linear as a Flax linen module."""

import flax.linen as nn
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jaxlinear import functional
from jaxlinear._checks import (
    check_floating_array,
    check_floating_dtype,
    check_min_ndim,
    check_positive_int,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike
from jaxlinear.initializers import torch_uniform

__all__ = ["Linear"]


class Linear(nn.Module):
    """A dense layer with ``torch.nn.Linear``'s init: ``(..., in) -> (..., features)``.

    Kernel ``(in, features)`` and bias ``(features,)`` are drawn from U(±1/√in), the distribution of
    ``torch.nn.Linear`` (zeros when ``in == 0``, so the output is zeros too). Exact torch weights are
    loaded with :func:`jaxlinear.interop.from_torch`.

    Attributes:
        features: output size (``out_features``), an int > 0.
        use_bias: add a bias (torch's ``bias=True``).
        dtype: computation dtype; None promotes from the input and the params. Half-precision compute
            accumulates in float32 and rounds once.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.Linear(4)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> jax.tree.map(jnp.shape, variables)
        {'params': {'bias': (4,), 'kernel': (3, 4)}}
        >>> layer.apply(variables, jnp.ones((5, 2, 3))).shape
        (5, 2, 4)
    """

    features: int
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None

    def __post_init__(self) -> None:
        check_positive_int("features", self.features)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        check_floating_array("x", x)
        check_min_ndim("x", x, 1, "(..., in_features)")
        n_in = x.shape[-1]
        if self.has_variable("params", "kernel"):
            n_kernel = self.get_variable("params", "kernel").shape[0]
            if n_kernel != n_in:
                raise ValueError(
                    f"`x` must have {n_kernel} input features (its last dim), as the layer's "
                    f"kernel {self.get_variable('params', 'kernel').shape}, got shape {x.shape}."
                )
        init = torch_uniform(n_in)
        kernel = self.param("kernel", init, (n_in, self.features), self.param_dtype)
        bias = (
            self.param("bias", init, (self.features,), self.param_dtype) if self.use_bias else None
        )
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        return functional.linear(x, kernel, bias, precision=self.precision)
