"""``scale_by_lr_factors``: multiply each update leaf by its own Python-float learning-rate factor."""

from collections.abc import Callable

import jax
import optax

from jaxlinear._typing import PyTree

__all__ = ["scale_by_lr_factors"]


def _check_same_structure(factors: PyTree, updates: PyTree) -> None:
    f_struct, u_struct = jax.tree.structure(factors), jax.tree.structure(updates)
    if f_struct != u_struct:
        raise ValueError(
            f"`factors` must have the same tree structure as the updates (one float per parameter),"
            f" got {f_struct} for updates {u_struct}."
        )


def scale_by_lr_factors(
    factors: PyTree | Callable[[PyTree], PyTree],
) -> optax.GradientTransformation:
    """Multiply every update leaf by its factor: ``u -> u * factors[leaf]``.

    Put it between the optimizer's direction and the base learning rate, e.g.
    ``optax.chain(optax.scale_by_adam(), scale_by_lr_factors(f), optax.scale(-lr))``: the effective
    learning rate of a leaf is then ``lr * factor``.

    Args:
        factors: a pytree with the structure of the params and a Python float per leaf (Python floats
            keep bf16 updates bf16), or a callable mapping the updates to such a tree (only shapes matter).

    Returns:
        A stateless ``optax.GradientTransformation``.

    Raises:
        ValueError: if the factors' tree does not match the updates'.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = scale_by_lr_factors({"kernel": 0.5, "bias": 2.0})
        >>> g = {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> float(u["kernel"][0, 0]), float(u["bias"][0])
        (0.5, 2.0)
    """

    def update_fn(updates, state, params=None):
        del params
        f = factors(updates) if callable(factors) else factors
        _check_same_structure(f, updates)
        return jax.tree.map(lambda u, s: u * s, updates, f), state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)
