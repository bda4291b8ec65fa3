"""tabm's initializers of the scaling parameters (``r``, ``s``, ``ElementwiseAffine``'s scale)."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_choice, check_positive_int
from jaxlinear._typing import Array, Dtype, Initializer, PRNGKey, Shape

__all__ = ["SCALING_INITS", "scaling_init"]

#: The scaling distributions of ``tabm.init_scaling_``: ``"random-signs"`` (±1 with probability 1/2
#: each), ``"normal"`` (N(0, 1)) and ``"ones"``.
SCALING_INITS = ("random-signs", "normal", "ones")


def check_chunks(name: str, chunks: Sequence[int] | None) -> tuple[int, ...] | None:
    """``chunks`` as a tuple of ints >= 0 (None stays None); ``TypeError``/``ValueError`` otherwise."""
    if chunks is None:
        return None
    if isinstance(chunks, str) or not isinstance(chunks, Sequence | np.ndarray):
        raise TypeError(f"`{name}` must be a sequence of ints or None, got {chunks!r}.")
    for c in chunks:
        check_positive_int(name, c, allow_zero=True)
    return tuple(int(c) for c in chunks)


def scaling_init(distribution: str, chunks: Sequence[int] | None = None) -> Initializer:
    """tabm's ``init_scaling_(x, distribution, chunks)`` as an initializer.

    Without ``chunks`` every value is drawn independently. With ``chunks`` the last axis is cut into
    consecutive chunks of those sizes and every chunk of every row holds one drawn value (tabm uses it
    for the first scaling after the features: one random value per feature and member, however many
    columns the feature's embedding or one-hot code takes).

    Args:
        distribution: ``"random-signs"``, ``"normal"`` or ``"ones"``.
        chunks: chunk sizes summing to the last dim, or None; must be None for ``"ones"``.

    Returns:
        ``init(key, shape, dtype=jnp.float32) -> Array``.

    Raises:
        ValueError: for an unknown distribution, chunks with ``"ones"``, or (when called) chunks that
            do not sum to ``shape[-1]``.
        TypeError: for chunks that are not ints.

    Example:
        >>> init = scaling_init("random-signs", chunks=[2, 3])
        >>> w = init(jax.random.key(0), (4, 5))
        >>> bool((jnp.abs(w) == 1).all()), bool((w[:, 0] == w[:, 1]).all())
        (True, True)
    """
    check_choice("distribution", distribution, SCALING_INITS)
    chunks = check_chunks("chunks", chunks)
    if distribution == "ones" and chunks is not None:
        raise ValueError(f"`chunks` must be None when `distribution` is 'ones', got {chunks}.")

    def draw(key: PRNGKey, shape: Shape, dtype: Dtype) -> Array:
        if distribution == "ones":
            return jnp.ones(shape, dtype)
        if distribution == "normal":
            return jax.random.normal(key, shape, dtype)
        return jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0).astype(dtype)

    def init(key: PRNGKey, shape: Shape, dtype: Dtype = jnp.float32) -> Array:
        if chunks is None:
            return draw(key, shape, dtype)
        if len(shape) < 1 or sum(chunks) != shape[-1]:
            raise ValueError(
                f"`chunks` must sum to the last dim of the scaling {tuple(shape)}, got {chunks} "
                f"(sum {sum(chunks)})."
            )
        values = draw(key, (*shape[:-1], len(chunks)), dtype)
        return jnp.repeat(values, np.asarray(chunks), axis=-1, total_repeat_length=shape[-1])

    return init
