"""Capacity buckets: a :class:`GrowingMLP` stored at a fixed size with masked inactive neurons.

``pad`` turns a model and its params into a bucketed model and its variables, ``unpad`` does the
reverse (dropping the inactive neurons, whose weights are zero). The two compute the same function;
their outputs agree to float rounding (XLA's CPU GEMMs sum a zero-padded contraction in another
order, so the last bits can differ).
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import Array, PyTree
from jaxlinear.growing._model import (
    GROWTH,
    GrowingMLP,
    active_widths,
    bucket_capacity,
    check_params,
    split_variables,
)

__all__ = ["pad", "pad_params", "unpad"]


def on_one_device(params: PyTree) -> bool:
    """Whether every array of ``params`` lives on a single device (not sharded nor replicated)."""
    return all(
        not hasattr(leaf, "sharding") or len(leaf.sharding.device_set) == 1
        for leaf in jax.tree.leaves(params)
    )


def _host_slice_or_pad(x: Array, shape: Sequence[int]) -> Array:
    """``x`` cut or zero-padded at the end of every axis to ``shape``, on the host (no compiled
    program per shape, unlike an eager ``jnp.pad`` or slice), back on ``x``'s device."""
    if tuple(x.shape) == tuple(shape):
        return x
    host = np.asarray(jax.device_get(x))
    host = host[tuple(slice(0, min(s, d)) for s, d in zip(shape, host.shape, strict=True))]
    host = np.pad(host, [(0, s - d) for s, d in zip(shape, host.shape, strict=True)])
    if getattr(x, "committed", False):  # pinned to its device: keep it there
        return jax.device_put(host, next(iter(x.sharding.device_set)))
    return jax.device_put(host)  # uncommitted, as init's and the jitted steps' outputs


def auto_pad(model: GrowingMLP, params: PyTree) -> tuple[GrowingMLP, PyTree]:
    """The bucketed twin of a model without capacity (buckets :func:`bucket_capacity`, the initial
    widths canonical so that every model of the same buckets is the same static argument) and its
    variables, padded on the host."""
    hidden = model.hidden_widths
    bucketed = model.clone(hidden_features=0, capacity=tuple(bucket_capacity(h) for h in hidden))
    out = resized(params, bucketed.widths, _host_slice_or_pad)
    return bucketed, {"params": out, GROWTH: {"widths": jnp.asarray(hidden, jnp.int32)}}


def auto_unpad(
    model: GrowingMLP, bucketed: GrowingMLP, variables: PyTree
) -> tuple[GrowingMLP, PyTree]:
    """The inverse of :func:`auto_pad` after growth: ``model`` at the active widths of
    ``variables`` and its params, cut on the host."""
    widths = active_widths(bucketed, variables)
    plain = model.clone(hidden_features=tuple(widths[1:-1]))
    return plain, resized(variables["params"], widths, _host_slice_or_pad)


def pad_to(x: Array, shape: Sequence[int]) -> Array:
    """``x`` zero-padded at the end of every axis to ``shape`` (``x`` itself when it fits)."""
    if tuple(x.shape) == tuple(shape):
        return x
    return jnp.pad(x, [(0, s - d) for s, d in zip(shape, x.shape, strict=True)])


def pad_params(params: PyTree, model: GrowingMLP) -> PyTree:
    """``params`` zero-padded at the end of every axis to ``model``'s stored shapes."""
    return resized(params, model.widths, pad_to)


def _cut(x: Array, shape: Sequence[int]) -> Array:
    """The leading block of ``x`` of ``shape``."""
    return x[tuple(slice(0, s) for s in shape)]


def resized(
    params: PyTree, widths: Sequence[int], fit: Callable[[Array, Sequence[int]], Array]
) -> PyTree:
    """Every layer's params brought to ``widths`` ``(in, h₁, …, out)``: ``layers_i``'s kernel to
    ``(widths[i], widths[i + 1])`` and bias to ``(widths[i + 1],)`` by ``fit(x, shape)`` (cut or
    pad); the one loop behind padding into a bucket and cutting out of one."""
    out = {}
    for i in range(len(widths) - 1):
        layer = dict(params[f"layers_{i}"])
        layer["kernel"] = fit(layer["kernel"], (widths[i], widths[i + 1]))
        if "bias" in layer:
            layer["bias"] = fit(layer["bias"], (widths[i + 1],))
        out[f"layers_{i}"] = layer
    return out


def pad(
    model: GrowingMLP, params: PyTree, capacity: int | Sequence[int] | None = None
) -> tuple[GrowingMLP, PyTree]:
    """A model without capacity and its params -> the bucketed model and its variables.

    ``capacity`` defaults to :func:`bucket_capacity` of each hidden width.

    Args:
        model: a GrowingMLP without capacity.
        params: its params (or variables).
        capacity: the buckets, one int or one per hidden layer; default :func:`bucket_capacity` of each width.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 3, 1, "tanh")
        >>> params = model.init(jax.random.key(0), jnp.ones((1, 5)))["params"]
        >>> padded, variables = jl.growing.pad(model, params)
        >>> padded.capacity, variables["params"]["layers_1"]["kernel"].shape
        ((8,), (8, 3))
    """
    if model.capacity is not None:
        raise ValueError(f"`model` must have no capacity (unpad it first), got {model.capacity}.")
    params = params["params"] if "params" in params else params
    check_params(model, params)
    hidden = model.hidden_widths
    if capacity is None:
        capacity = tuple(bucket_capacity(h) for h in hidden)
    new_model = model.clone(hidden_features=hidden, capacity=capacity)
    variables = {
        "params": pad_params(params, new_model),
        GROWTH: {"widths": jnp.asarray(hidden, jnp.int32)},
    }
    return new_model, variables


def unpad(model: GrowingMLP, variables: PyTree) -> tuple[GrowingMLP, PyTree]:
    """A bucketed model and its variables -> the model without capacity and its params.

    Args:
        model: a GrowingMLP with capacity.
        variables: its variables ``{"params", "growth"}``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 3, 1, "tanh", capacity=8)
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 5)))
        >>> plain, params = jl.growing.unpad(model, variables)
        >>> plain.widths, params["layers_0"]["kernel"].shape
        ((5, 3, 3), (5, 3))
    """
    if model.capacity is None:
        raise ValueError("`model` must have a capacity (it is not padded), got None.")
    params, _, _ = split_variables(model, variables)
    check_params(model, params)
    widths = active_widths(model, variables)
    plain = model.clone(hidden_features=tuple(widths[1:-1]), capacity=None)
    return plain, resized(params, widths, _cut)
