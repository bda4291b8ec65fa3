"""``PeriodicEmbeddings`` (rtdl_num_embeddings): ``cos``/``sin`` of learned frequencies, then a linear
map (one per feature, or one shared in the lite variant) and ReLU."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jaxlinear._checks import check_bool, check_floating_dtype, check_positive_int, check_real
from jaxlinear._typing import Array, Dtype, PrecisionLike, PRNGKey, Shape
from jaxlinear.nn import Linear, NLinear
from jaxlinear.tabm._checks import check_features
from jaxlinear.tabm._lr_rule import TabmLrRule

__all__ = ["PeriodicEmbeddings", "periodic_init"]


def periodic_init(sigma: float):
    """rtdl's frequency init: N(0, sigma²) truncated to ±3·sigma (``trunc_normal_(0, σ, -3σ, 3σ)``).

    Args:
        sigma: the scale (``frequency_init_scale``), > 0.

    Returns:
        ``init(key, shape, dtype=jnp.float32) -> Array``.

    Raises:
        ValueError: for ``sigma <= 0``.

    Example:
        >>> w = periodic_init(0.1)(jax.random.key(0), (1000,))
        >>> bool((jnp.abs(w) <= 0.3).all())
        True
    """
    sigma = check_real("sigma", sigma, min_value=0.0, strict=True)

    def init(key: PRNGKey, shape: Shape, dtype: Dtype = jnp.float32) -> Array:
        return (jax.random.truncated_normal(key, -3.0, 3.0, shape, jnp.float32) * sigma).astype(
            dtype
        )

    return init


class _Periodic(TabmLrRule):
    n_features: int
    n_frequencies: int
    sigma: float
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        shape = (self.n_features, self.n_frequencies)
        w = self.param("kernel", periodic_init(self.sigma), shape, self.param_dtype)
        x, w = promote_dtype(x, w, dtype=self.dtype)
        # rtdl: `2 * math.pi * self.weight * x[..., None]`, in that order
        z = (2 * math.pi * w).reshape((1,) * (x.ndim - 1) + shape) * x[..., None]
        return jnp.concatenate([jnp.cos(z), jnp.sin(z)], axis=-1)


class PeriodicEmbeddings(nn.Module):
    """``rtdl_num_embeddings.PeriodicEmbeddings``: ``(..., n_features) -> (..., n_features, d_embedding)``.

    ``z = 2π · frequencies[i] · x[..., i]`` (``n_frequencies`` per feature), ``[cos z, sin z]``, then a
    linear map to ``d_embedding`` -- one per feature (a :class:`jaxlinear.NLinear`, rtdl's
    ``_NLinear``) or, with ``lite``, one :class:`jaxlinear.Linear` shared by all features -- and
    ReLU if ``activation``. Params: ``periodic/kernel`` ``(n_features, n_frequencies)`` drawn from
    N(0, σ²) truncated at ±3σ (σ = ``frequency_init_scale``, the hyperparameter rtdl calls
    important) and ``linear`` (kernel ``(n_features, 2·n_frequencies, d_embedding)``, or ``(2·n_frequencies,
    d_embedding)`` lite; bias).

    Attributes:
        n_features: the number of numerical features.
        d_embedding: the embedding size (rtdl's default 24).
        n_frequencies: frequencies per feature (48).
        frequency_init_scale: σ of the frequency init (0.01).
        activation: apply ReLU at the end; must be True with ``lite``.
        lite: share the linear map between the features (required, as in rtdl).
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> m = jl.tabm.PeriodicEmbeddings(3, 8, n_frequencies=5, lite=False)
        >>> variables = m.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> jax.tree.map(jnp.shape, variables["params"])["linear"]
        {'bias': (3, 8), 'kernel': (3, 10, 8)}
        >>> m.apply(variables, jnp.ones((2, 3))).shape
        (2, 3, 8)
    """

    n_features: int
    d_embedding: int = 24
    n_frequencies: int = 48
    frequency_init_scale: float = 0.01
    activation: bool = True
    lite: bool | None = None
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None

    def __post_init__(self) -> None:
        check_positive_int("n_features", self.n_features)
        check_positive_int("d_embedding", self.d_embedding)
        check_positive_int("n_frequencies", self.n_frequencies)
        check_real("frequency_init_scale", self.frequency_init_scale, min_value=0.0, strict=True)
        check_bool("activation", self.activation)
        if self.lite is None:
            raise TypeError("`lite` is required (True or False), as in rtdl_num_embeddings.")
        check_bool("lite", self.lite)
        if self.lite and not self.activation:
            raise ValueError("`activation` must be True when `lite` is True, got False.")
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
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        x = _Periodic(
            self.n_features,
            self.n_frequencies,
            self.frequency_init_scale,
            **common,
            name="periodic",
        )(x)
        if self.lite:
            linear = Linear(self.d_embedding, precision=self.precision, **common, name="linear")
        else:
            linear = NLinear(
                self.n_features, self.d_embedding, precision=self.precision, **common, name="linear"
            )
        x = linear(x)
        return nn.relu(x) if self.activation else x
