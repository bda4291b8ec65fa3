"""``LinearEmbeddings`` and ``LinearReLUEmbeddings`` (rtdl_num_embeddings): one ``Linear(1, d)`` per
numerical feature, ``(..., n_features) -> (..., n_features, d_embedding)``."""

import flax.linen as nn
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jaxlinear._checks import check_dim, check_floating_dtype, check_positive_int
from jaxlinear._typing import Array, Dtype
from jaxlinear.initializers import torch_uniform
from jaxlinear.tabm._checks import check_features
from jaxlinear.tabm._lr_rule import TabmLrRule

__all__ = ["LinearEmbeddings", "LinearReLUEmbeddings"]


class LinearEmbeddings(TabmLrRule):
    """``rtdl_num_embeddings.LinearEmbeddings``: ``y[..., i, :] = x[..., i] * kernel[i] + bias[i]``.

    Params ``kernel`` and ``bias``, both ``(n_features, d_embedding)`` (rtdl's ``weight`` and
    ``bias``, same layout: the kernels of n ``Linear(1, d)`` with the unit input axis dropped), drawn
    from U(±1/√d_embedding) as rtdl does (its bound uses ``d_embedding``, not the fan-in 1).

    Attributes:
        n_features: the number of numerical features.
        d_embedding: the embedding size.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> m = jl.tabm.LinearEmbeddings(3, 4)
        >>> variables = m.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> m.apply(variables, jnp.ones((2, 3))).shape
        (2, 3, 4)
    """

    n_features: int
    d_embedding: int
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32

    def __post_init__(self) -> None:
        check_positive_int("n_features", self.n_features)
        check_positive_int("d_embedding", self.d_embedding)
        check_dim("d_embedding", self.d_embedding)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @property
    def output_shape(self) -> tuple[int, int]:
        """``(n_features, d_embedding)``, the output shape without the batch dims."""
        return (self.n_features, self.d_embedding)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = check_features(x, self.n_features)
        shape = (self.n_features, self.d_embedding)
        init = torch_uniform(self.d_embedding)
        kernel = self.param("kernel", init, shape, self.param_dtype)
        bias = self.param("bias", init, shape, self.param_dtype)
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        lead = (1,) * (x.ndim - 1)
        return bias.reshape(lead + shape) + kernel.reshape(lead + shape) * x[..., None]


class LinearReLUEmbeddings(nn.Module):
    """``rtdl_num_embeddings.LinearReLUEmbeddings``: :class:`LinearEmbeddings` then ReLU.

    Params under ``linear`` (rtdl's ``linear.weight`` / ``linear.bias``).

    Attributes:
        n_features: the number of numerical features.
        d_embedding: the embedding size (rtdl's default 32).
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> m = jl.tabm.LinearReLUEmbeddings(3)
        >>> variables = m.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> m.apply(variables, jnp.ones((2, 3))).shape, m.output_shape
        ((2, 3, 32), (3, 32))
    """

    n_features: int
    d_embedding: int = 32
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32

    def __post_init__(self) -> None:
        check_positive_int("n_features", self.n_features)
        check_positive_int("d_embedding", self.d_embedding)
        super().__post_init__()

    @property
    def output_shape(self) -> tuple[int, int]:
        """``(n_features, d_embedding)``, the output shape without the batch dims."""
        return (self.n_features, self.d_embedding)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        linear = LinearEmbeddings(
            self.n_features,
            self.d_embedding,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="linear",
        )
        return nn.relu(linear(x))
