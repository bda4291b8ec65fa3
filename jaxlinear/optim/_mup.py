"""Microsoft ``mup``'s rules from base shapes: ``mup_factors`` for ``MuSGD``/``MuAdam``/``MuAdamW``.

mup compares each parameter's shape with its shape in a *base* model (``set_base_shapes``): a dim that
differs from the base is a "width" (infinite) dim with width multiplier ``dim / base_dim``. A parameter
with one width dim is vector-like, with two matrix-like. Then (torch group lr and weight decay):

============  =============================  ====================================
optimizer     vector-like (one width dim)    matrix-like (two width dims)
============  =============================  ====================================
MuSGD         lr × m, wd ÷ m                 lr ÷ (m_in / m_out), wd × (m_in / m_out)
MuAdam(W)     unchanged                      lr ÷ m_in, wd × m_in
============  =============================  ====================================

where ``m`` is the width multiplier of the parameter's (last, in torch layout) width dim and
``m_in``/``m_out`` those of a kernel's input/output dims. 2-D leaves are kernels in the JAX layout
``(in, out)``. The readout layer (``MuReadout``) also multiplies its input by
``output_mult / width_mult``: see :func:`jaxlinear.parametrizations.mup_readout_input`.

``mup.MuAdam(model.parameters(), lr, weight_decay=wd)`` is ``jl.optim.adam(lr, mup_factors(params,
base_params, "adam"), weight_decay=wd)``, and likewise for ``MuSGD``/``sgd`` and ``MuAdamW``/``adamw``.
"""

from collections.abc import Mapping
from typing import Any

import jax

from jaxlinear._typing import PyTree
from jaxlinear.optim._factors import Factors
from jaxlinear.optim._transforms import _pure
from jaxlinear.parametrizations import canonical_optimizer

__all__ = ["mup_factors"]


def _params(tree: Any) -> Any:
    tree = tree["params"] if isinstance(tree, Mapping) and "params" in tree else tree
    return _pure(tree)


def _infshape(path: str, shape: tuple[int, ...], base: tuple[int, ...]) -> list[float | None]:
    """Width multiplier of each dim in torch's layout (None: a finite dim)."""
    if len(shape) != len(base):
        raise ValueError(
            f"`base_params` must have the shapes' ranks: {path} has shape {shape}, base {base}."
        )
    if len(shape) > 2:
        raise ValueError(
            f"mup rules support 1-D and 2-D params (kernels (in, out)), got {path} of shape {shape}."
        )
    for what, dims in (("params", shape), ("base_params", base)):
        if 0 in dims:
            raise ValueError(
                f"`{what}` must have no 0-sized dim (a width multiplier divides by the base's and "
                f"multiplies by the model's), got {path} of shape {dims}."
            )
    torch_shape, torch_base = shape[::-1], base[::-1]  # (in, out) -> torch's (out, in)
    return [None if b == d else d / b for d, b in zip(torch_shape, torch_base, strict=True)]


def _pair(rule: str, mults: list[float | None]) -> tuple[float, float]:
    """(lr factor, weight-decay factor) of one parameter."""
    inf = [m for m in mults if m is not None]
    if not inf:
        return 1.0, 1.0
    if rule == "SGD":
        if len(inf) == 1:  # vector-like: lr x m, wd / m
            return inf[0], 1.0 / inf[0]
        ratio = inf[1] / inf[0]  # fan-in mult / fan-out mult (torch layout (out, in); both set)
        return 1.0 / ratio, ratio
    if len(inf) == 2:  # matrix-like: lr / m_in, wd x m_in
        m = inf[-1]  # the last width dim in torch layout: fan-in
        return 1.0 / m, m
    return 1.0, 1.0


def mup_factors(params: PyTree, base_params: PyTree, optimizer: str) -> Factors:
    """The factors mup's ``MuSGD`` / ``MuAdam`` / ``MuAdamW`` put on each parameter's lr and weight decay.

    Args:
        params: the model's params (or variables, or an NNX model's ``nnx.state(model, nnx.Param)``).
        base_params: the base model's params, the same tree (arrays or ``jax.ShapeDtypeStruct``
            objects, e.g. ``jax.eval_shape(base_model.init, key, x)``); only shapes are read.
        optimizer: ``"sgd"`` (MuSGD) or ``"adam"``/``"adamw"`` (MuAdam/MuAdamW).

    Returns:
        :class:`Factors` with the structure of ``params``.

    Raises:
        ValueError: for trees that differ, ranks that differ, params of more than 2 dims, a 0-sized
            dim, or an unknown optimizer.
        TypeError: for a leaf that is not an array (nor a ``jax.ShapeDtypeStruct``).

    Example:
        >>> import jax.numpy as jnp
        >>> params = {"hidden": {"kernel": jnp.zeros((64, 64))}, "out": {"kernel": jnp.zeros((64, 3))}}
        >>> base = {"hidden": {"kernel": jnp.zeros((8, 8))}, "out": {"kernel": jnp.zeros((8, 3))}}
        >>> mup_factors(params, base, "adam")
        Factors(lr={'hidden': {'kernel': 0.125}, 'out': {'kernel': 1.0}}, weight_decay={'hidden': {'kernel': 8.0}, 'out': {'kernel': 1.0}})
        >>> mup_factors(params, base, "sgd").lr
        {'hidden': {'kernel': 1.0}, 'out': {'kernel': 8.0}}
    """
    rule = canonical_optimizer(optimizer)
    params, base_params = _params(params), _params(base_params)
    is_leaf = lambda x: hasattr(x, "shape")
    for what, tree in (("params", params), ("base_params", base_params)):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]:
            if not is_leaf(leaf):
                raise TypeError(
                    f"`{what}{jax.tree_util.keystr(path)}` must be an array or a "
                    f"jax.ShapeDtypeStruct (only its shape is read), got {type(leaf).__name__}."
                )
    base_leaves = {
        jax.tree_util.keystr(k): tuple(v.shape)
        for k, v in jax.tree_util.tree_flatten_with_path(base_params, is_leaf=is_leaf)[0]
    }
    leaves = {
        jax.tree_util.keystr(k): tuple(v.shape)
        for k, v in jax.tree_util.tree_flatten_with_path(params, is_leaf=is_leaf)[0]
    }
    if set(base_leaves) != set(leaves):
        raise ValueError(
            "`base_params` must have the same parameters as `params`; missing "
            f"{sorted(set(leaves) - set(base_leaves))}, extra {sorted(set(base_leaves) - set(leaves))}."
        )
    pairs = {
        name: _pair(rule, _infshape(name, shape, base_leaves[name]))
        for name, shape in leaves.items()
    }

    def pick(i: int):
        return lambda key_path, leaf: pairs[jax.tree_util.keystr(key_path)][i]

    return Factors(
        jax.tree_util.tree_map_with_path(pick(0), params, is_leaf=is_leaf),
        jax.tree_util.tree_map_with_path(pick(1), params, is_leaf=is_leaf),
    )
