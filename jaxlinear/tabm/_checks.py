"""The input checks shared by the tabm layers: ``(..., n_features)`` and ``(..., k, d)`` inputs."""

import jax.numpy as jnp

from jaxlinear._checks import check_floating_array, check_min_ndim
from jaxlinear._typing import Array

__all__ = ["check_features", "check_members"]


def check_features(x: Array, n_features: int) -> Array:
    """``x`` as a floating array of shape ``(..., n_features)``; ``TypeError``/``ValueError`` otherwise."""
    x = jnp.asarray(x)
    check_floating_array("x", x)
    check_min_ndim("x", x, 1, "(..., n_features)")
    if x.shape[-1] != n_features:
        raise ValueError(
            f"`x` must have shape (..., n_features={n_features}), got shape {x.shape}."
        )
    return x


def check_members(x: Array, k: int, what: str = "in_features") -> Array:
    """``x`` as a floating array of shape ``(..., k, what)``, one row per ensemble member;
    ``TypeError``/``ValueError`` otherwise."""
    x = jnp.asarray(x)
    check_floating_array("x", x)
    check_min_ndim("x", x, 2, f"(..., k, {what})")
    if x.shape[-2] != k:
        raise ValueError(f"`x` must have shape (..., k, {what}) with k={k}, got shape {x.shape}.")
    return x
