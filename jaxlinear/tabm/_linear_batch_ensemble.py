"""``LinearBatchEnsemble``: one shared weight, per-member scalings ``r``, ``s`` and bias (BatchEnsemble)."""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jaxlinear import functional
from jaxlinear._checks import (
    check_bool,
    check_choice,
    check_dim,
    check_floating_dtype,
    check_positive_int,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike, PRNGKey, Shape
from jaxlinear.initializers import torch_uniform
from jaxlinear.tabm._checks import check_members
from jaxlinear.tabm._lr_rule import TabmLrRule
from jaxlinear.tabm._scaling import SCALING_INITS, check_chunks, scaling_init

__all__ = ["LinearBatchEnsemble", "check_scaling_inits"]


def check_scaling_inits(value: str | Sequence[str]) -> tuple[str, str]:
    """``(first, second)`` scaling distributions from one name or a pair of names."""
    pair = (value, value) if isinstance(value, str) else tuple(value)
    if len(pair) != 2:
        raise ValueError(
            f"`scaling_init` must be one of {SCALING_INITS} or a pair of them, got {value!r}."
        )
    for v in pair:
        check_choice("scaling_init", v, SCALING_INITS)
    return pair[0], pair[1]


def expand(p: Array, ndim: int) -> Array:
    """``p`` with leading unit dims up to ``ndim`` (explicit rank: no rank promotion)."""
    return p.reshape((1,) * (ndim - p.ndim) + p.shape)


class LinearBatchEnsemble(TabmLrRule):
    """``tabm.LinearBatchEnsemble``: k linear layers sharing one kernel, ``(..., k, in) -> (..., k, features)``.

    ``y[..., i, :] = ((x[..., i, :] * r[i]) @ kernel) * s[i] + bias[i]`` -- equation 5 of the
    BatchEnsemble paper, in tabm's order of operations. Params: kernel ``(in, features)`` (shared;
    the transpose of tabm's ``weight``), ``r`` ``(k, in)``, ``s`` ``(k, features)``, bias ``(k,
    features)``. Init as tabm: kernel U(±1/√in); ``r`` and ``s`` from ``scaling_init`` (see
    :func:`jaxlinear.tabm.scaling_init`; ``first_scaling_init_chunks`` applies to ``r``); the bias is
    one U(±1/√in) draw of ``(features,)`` copied to all k members.

    Attributes:
        features: output size.
        k: the ensemble size.
        scaling_init: ``"random-signs"``, ``"normal"`` or ``"ones"``, or a pair ``(for r, for s)``.
        first_scaling_init_chunks: chunk sizes for ``r`` (one value per chunk and member), or None.
        use_bias: add the per-member bias.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.tabm.LinearBatchEnsemble(5, k=3, scaling_init="random-signs")
        >>> variables = layer.init(jax.random.key(0), jnp.ones((2, 3, 4)))
        >>> jax.tree.map(jnp.shape, variables["params"])
        {'bias': (3, 5), 'kernel': (4, 5), 'r': (3, 4), 's': (3, 5)}
        >>> layer.apply(variables, jnp.ones((2, 3, 4))).shape
        (2, 3, 5)
    """

    features: int
    k: int
    scaling_init: str | tuple[str, str]
    first_scaling_init_chunks: Sequence[int] | None = None
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None

    def __post_init__(self) -> None:
        check_positive_int("features", self.features)
        check_dim("features", self.features)
        check_positive_int("k", self.k)
        first, _ = check_scaling_inits(self.scaling_init)
        chunks = check_chunks("first_scaling_init_chunks", self.first_scaling_init_chunks)
        if first == "ones" and chunks is not None:
            raise ValueError(
                f"`first_scaling_init_chunks` must be None when the first scaling init is 'ones', "
                f"got {chunks}."
            )
        check_bool("use_bias", self.use_bias)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = check_members(x, self.k)
        n_in, k, f = x.shape[-1], self.k, self.features
        first, second = check_scaling_inits(self.scaling_init)
        kernel = self.param("kernel", torch_uniform(n_in), (n_in, f), self.param_dtype)
        r = self.param(
            "r", scaling_init(first, self.first_scaling_init_chunks), (k, n_in), self.param_dtype
        )
        s = self.param("s", scaling_init(second), (k, f), self.param_dtype)
        bias = None
        if self.use_bias:

            def bias_init(key: PRNGKey, shape: Shape, dtype: Dtype = jnp.float32) -> Array:
                # tabm draws one (features,) bias and copies it to the k members
                one = torch_uniform(n_in)(key, shape[-1:], dtype)
                return jnp.broadcast_to(one, shape)

            bias = self.param("bias", bias_init, (k, f), self.param_dtype)
        x, kernel, r, s, bias = promote_dtype(x, kernel, r, s, bias, dtype=self.dtype)
        y = functional.linear(x * expand(r, x.ndim), kernel, precision=self.precision)
        y = y * expand(s, y.ndim)
        if bias is not None:
            y = y + expand(bias, y.ndim)
        return y
