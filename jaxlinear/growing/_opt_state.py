"""An optax state carried across growth: the moments of the existing parameters are kept, the new
parameters' start at zero."""

from typing import Any

import jax
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.growing._buckets import pad_to

__all__ = ["grow_opt_state"]


def grow_opt_state(opt_state: PyTree, params: PyTree) -> PyTree:
    """An optax state carried across growth: every params-shaped part padded to ``params``' shapes.

    Optimizer states hold per-parameter arrays (Adam's ``mu``/``nu``, momentum traces, ...) in
    subtrees with the params' structure. Each such subtree's arrays are zero-padded at the end of
    every axis to the new params' shapes, which is exactly where growth puts the new neurons: the
    state of every existing parameter is kept as it is (bit for bit), new parameters start at zero,
    and scalars (Adam's step count) are untouched, so training continues instead of restarting.
    Works for any optax chain whose per-parameter state mirrors the params (adam, adamw, sgd with
    momentum, ...).

    Args:
        opt_state: the state before growth (``optimizer.init(old_params)`` or later).
        params: the params after growth (the params dict, or the variables of a bucketed model).

    Returns:
        The state for ``params``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> old = {"w": jnp.ones((2, 3))}
        >>> state = optax.adam(1e-3).init(old)
        >>> state = grow_opt_state(state, {"w": jnp.ones((2, 5))})
        >>> state[0].mu["w"].shape
        (2, 5)
    """
    if isinstance(params, dict) and "params" in params:
        params = params["params"]
    treedef = jax.tree.structure(params)
    shapes = [tuple(np.shape(x)) for x in jax.tree.leaves(params)]

    def is_params_like(node: Any) -> bool:
        return (
            not isinstance(node, jax.Array | np.ndarray)
            and jax.tree.structure(node) == treedef
            and all(
                np.ndim(x) == len(s) for x, s in zip(jax.tree.leaves(node), shapes, strict=True)
            )
        )

    def grow_subtree(node: Any) -> Any:
        if not is_params_like(node):
            return node
        leaves = [
            pad_to(x, s) if all(a <= b for a, b in zip(np.shape(x), s, strict=True)) else x
            for x, s in zip(jax.tree.leaves(node), shapes, strict=True)
        ]
        bad = [np.shape(x) for x, s in zip(leaves, shapes, strict=True) if tuple(np.shape(x)) != s]
        if bad:
            raise ValueError(
                f"`opt_state` holds params-shaped arrays larger than `params` {shapes}: {bad}."
            )
        return jax.tree.unflatten(treedef, leaves)

    return jax.tree.map(grow_subtree, opt_state, is_leaf=is_params_like)
