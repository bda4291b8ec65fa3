"""``EnsembleView``: ``(batch, d) -> (batch, k, d)``, the entry of every tabm ensemble."""

import flax.linen as nn
import jax.numpy as jnp

from jaxlinear._checks import check_positive_int
from jaxlinear._typing import Array

__all__ = ["EnsembleView", "ensemble_view"]


def ensemble_view(x: Array, k: int) -> Array:
    """tabm's ``ensemble_view``: a 2-D input repeated k times, a 3-D one checked and returned.

    Args:
        x: ``(batch, d)`` (one input for all members) or ``(batch, k, d)`` (one per member).
        k: the ensemble size.

    Returns:
        ``(batch, k, d)`` (a broadcast: XLA makes no copy).

    Raises:
        ValueError: for another rank, or a 3-D input whose second dim is not ``k``.

    Example:
        >>> ensemble_view(jnp.ones((3, 4)), 2).shape
        (3, 2, 4)
    """
    check_positive_int("k", k)
    x = jnp.asarray(x)
    if x.ndim == 2:
        return jnp.broadcast_to(x[:, None, :], (x.shape[0], k, x.shape[1]))
    if x.ndim == 3:
        if x.shape[1] != k:
            raise ValueError(f"`x` must have shape (batch, k={k}, d), got shape {x.shape}.")
        return x
    raise ValueError(f"`x` must have shape (batch, d) or (batch, k, d), got shape {x.shape}.")


class EnsembleView(nn.Module):
    """``tabm.EnsembleView``: :func:`ensemble_view` as a module (no params).

    Attributes:
        k: the ensemble size.

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> jl.tabm.EnsembleView(k=2).apply({}, jnp.ones((3, 4))).shape
        (3, 2, 4)
    """

    k: int

    def __post_init__(self) -> None:
        check_positive_int("k", self.k)
        super().__post_init__()

    def __call__(self, x: Array) -> Array:
        return ensemble_view(x, self.k)
