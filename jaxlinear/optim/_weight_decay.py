"""``add_decayed_weights_per_leaf``: coupled weight decay with its own Python-float rate per leaf."""

import jax
import optax

from jaxlinear._typing import PyTree

__all__ = ["add_decayed_weights_per_leaf"]


def add_decayed_weights_per_leaf(weight_decays: PyTree) -> optax.GradientTransformation:
    """``u -> u + wd_leaf * p`` with a Python-float decay per leaf (``update`` needs ``params``).

    ``optax.add_decayed_weights`` with one rate per parameter: the rules of mup and u-μP give each
    parameter its own (width- or lr-dependent) decay. Leaves with a 0 rate are left untouched.

    Example:
        >>> import jax.numpy as jnp
        >>> tx = add_decayed_weights_per_leaf({"w": 0.5, "b": 0.0})
        >>> p = {"w": jnp.full(2, 2.0), "b": jnp.ones(2)}
        >>> u, _ = tx.update({"w": jnp.zeros(2), "b": jnp.zeros(2)}, tx.init(p), p)
        >>> u["w"].tolist(), u["b"].tolist()
        ([1.0, 1.0], [0.0, 0.0])
    """

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("`params` must be passed to `update` for weight decay, got None.")
        if jax.tree.structure(weight_decays) != jax.tree.structure(updates):
            raise ValueError(
                "`weight_decays` must have the same tree structure as the updates, got "
                f"{jax.tree.structure(weight_decays)} for {jax.tree.structure(updates)}."
            )
        out = jax.tree.map(
            lambda u, p, wd: u if wd == 0 else u + (wd * p).astype(u.dtype),
            updates,
            params,
            weight_decays,
        )
        return out, state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)
