"""Trying and applying a proposal: ``extended_forward``, the line search over γ (gromo's grid or
its logspace search) and ``apply_change`` (a wider model, or new neurons in a capacity bucket)."""

import functools
import math
from collections.abc import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_choice, check_real
from jaxlinear._typing import Array, PyTree
from jaxlinear.growing._activations import activation_function
from jaxlinear.growing._buckets import pad_params
from jaxlinear.growing._extend import apply_layer_change, layer_extended_forward, split_raw
from jaxlinear.growing._mlp_statistics import check_batches
from jaxlinear.growing._model import (
    GrowingMLP,
    active_masks,
    bucket_capacity,
    check_model,
    check_params,
    join_variables,
    mask_empty_input,
    mask_inactive,
    split_variables,
    widths_of,
)
from jaxlinear.growing._updates import LayerUpdate, check_update

__all__ = ["DEFAULT_GAMMAS", "apply_change", "extended_forward", "line_search", "logspace_gammas"]


#: The line-search candidates of gromo's tutorial loop.
DEFAULT_GAMMAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def _scalings(gamma):
    """γ -> (γ², γ, γ) (gromo's legacy ``scaling_factor``); a 3-tuple is taken as
    ``(optimal_delta_scaling, input_extension_scaling, output_extension_scaling)``."""
    if isinstance(gamma, tuple | list):
        if len(gamma) != 3:
            raise ValueError(
                "`gamma` must be a scalar or a 3-tuple (optimal_delta_scaling, "
                f"input_extension_scaling, output_extension_scaling), got {gamma!r}."
            )
        return tuple(gamma)
    return gamma**2, gamma, gamma


def _extended_forward(
    model, params, widths, x, layer_index, delta, alpha, omega, s_delta, s_in, s_out
):
    x = jnp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))
    masks = active_masks(model, widths)
    last = model.num_layers - 1
    act = activation_function(model.activation)
    x_ext = None
    for i in range(model.num_layers):
        kwargs = {}
        if i == layer_index:
            kwargs = dict(
                optimal_delta=delta,
                extended_input=omega,
                optimal_delta_scaling=s_delta,
                input_extension_scaling=s_in,
            )
        elif i == layer_index - 1:
            kwargs = dict(extended_output=alpha, output_extension_scaling=s_out)
        pre, x_ext = layer_extended_forward(
            params[f"layers_{i}"], x, x_ext, precision=model.precision, **kwargs
        )
        if widths is not None and i > 0:  # an empty input: zeros, the bias ignored (gromo)
            pre = mask_empty_input(pre, widths, i)
        if i < last:
            x = mask_inactive(act(pre), masks[i + 1])
            if x_ext is not None:
                x_ext = act(x_ext)
        else:
            x = pre
    return x


def extended_forward(
    model: GrowingMLP, params: PyTree, x: Array, update: LayerUpdate, gamma: Array | float
) -> Array:
    """The network's output with ``update`` applied at amplitude γ (δ·γ², α·γ, ω·γ), not yet applied.

    ``gamma`` may also be the three scalings ``(s_δ, s_in, s_out)`` of gromo's decoupled factors.
    Differentiable in γ and the params, also when the grown hidden layer is empty.

    Args:
        model: a GrowingMLP.
        params: its params or variables.
        x: a batch of inputs.
        update: a :class:`LayerUpdate`.
        gamma: γ, or ``(s_δ, s_in, s_out)``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 0, 1, "tanh")
        >>> x = jax.random.normal(jax.random.key(1), (16, 5))
        >>> params = model.init(jax.random.key(0), x)["params"]
        >>> sse = lambda pred, y: jnp.sum((pred - y) ** 2)
        >>> stats = jl.growing.update_statistics(model, params, jl.growing.init_statistics(model),
        ...                                      x, jnp.sin(x[:, :3]), sse)
        >>> (u,) = jl.growing.compute_optimal_updates(model, stats)
        >>> loss = lambda g: sse(jl.growing.extended_forward(model, params, x, u, g), jnp.sin(x[:, :3]))
        >>> jax.grad(loss)(0.5).shape
        ()
    """
    check_model(model)
    p, widths, _ = split_variables(model, params)
    check_update(model, update)
    s_delta, s_in, s_out = _scalings(gamma)
    return _extended_forward(
        model,
        p,
        widths,
        jnp.asarray(x),
        update.layer_index,
        update.optimal_delta,
        update.extended_output,
        update.extended_input,
        s_delta,
        s_in,
        s_out,
    )


@functools.partial(jax.jit, static_argnames=("model", "loss_fn", "layer_index"))
def _line_search_losses(
    model, loss_fn, layer_index, params, widths, delta, alpha, omega, x, y, gammas
):
    def one(g):
        out = _extended_forward(
            model, params, widths, x, layer_index, delta, alpha, omega, g**2, g, g
        )
        return loss_fn(out, y)

    return jax.vmap(one)(gammas)


def logspace_gammas(start: float = 1e-6, stop: float = 1.0, num: int = 100) -> np.ndarray:
    """gromo's line-search points: 0 then ``num`` points log-spaced over ``[start, stop]``.

    Args:
        start: the smallest positive point.
        stop: the largest.
        num: the number of log-spaced points.

    Example:
        >>> logspace_gammas(num=3).tolist()
        [0.0, 1e-06, 0.001, 1.0]
    """
    return np.concatenate([np.zeros(1), np.logspace(np.log10(start), np.log10(stop), num)])


def line_search(
    model: GrowingMLP,
    params: PyTree,
    update: LayerUpdate,
    batches: Iterable[tuple[Array, Array]],
    loss_fn: Callable[[Array, Array], Array],
    gammas: Sequence[float] | str = DEFAULT_GAMMAS,
) -> tuple[float, list[float]]:
    """The γ with the lowest loss of :func:`extended_forward` (the first one on ties).

    The loss of γ is the mean over ``batches`` of ``loss_fn``, each batch weighted by its rows
    (use a mean-reduced loss: this is gromo's ``evaluate_model``, the mean loss per row over all
    the batches); a NaN loss is never chosen. ``gammas`` is a list of candidates, or
    ``"logspace"``: gromo's ``utils.line_search`` (0 and 100 points log-spaced over [1e-6, 1], then over [1, 10], [10, 100],
    … while the minimum keeps decreasing). All candidates of a batch are evaluated in one jitted,
    vmapped call, compiled once per model, ``loss_fn`` and layer. Returns ``(best_gamma, losses)``,
    ``losses`` in the order the candidates were tried.

    Args:
        model: a GrowingMLP.
        params: its params or variables.
        update: a :class:`LayerUpdate`.
        batches: ``(x, y)`` pairs.
        loss_fn: ``loss_fn(prediction, y)``, mean-reduced.
        gammas: candidates (finite, >= 0), or ``"logspace"``.

    Raises:
        ValueError: for no batch or an empty one, an empty, negative or non-finite ``gammas``, or
            when every candidate's loss is NaN (NaN losses are never chosen).
        TypeError: for batches that are not ``(x, y)`` pairs.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 0, 1, "tanh")
        >>> x = jax.random.normal(jax.random.key(1), (16, 5)); y = jnp.sin(x[:, :3])
        >>> params = model.init(jax.random.key(0), x)["params"]
        >>> sse = lambda pred, t: jnp.sum((pred - t) ** 2)
        >>> stats = jl.growing.update_statistics(model, params, jl.growing.init_statistics(model),
        ...                                      x, y, sse)
        >>> (u,) = jl.growing.compute_optimal_updates(model, stats)
        >>> gamma, losses = jl.growing.line_search(model, params, u, [(x, y)], sse)
        >>> len(losses), losses[0] >= min(losses)
        (8, True)
    """
    check_model(model)
    p, widths, _ = split_variables(model, params)
    check_update(model, update)
    batches = check_batches(model, batches)
    gammas = check_gammas(gammas)

    def evaluate(points: np.ndarray) -> np.ndarray:
        g = jnp.asarray(points, jnp.float32)
        per_batch = []
        for xb, yb in batches:
            losses = _line_search_losses(
                model,
                loss_fn,
                update.layer_index,
                p,
                widths,
                update.optimal_delta,
                update.extended_output,
                update.extended_input,
                jnp.asarray(xb),
                jnp.asarray(yb),
                g,
            )
            per_batch.append(losses)
        rows = np.array([np.shape(xb)[0] for xb, _ in batches], np.float64)
        # gromo's AverageMeter: each batch's mean loss weighted by its rows (float64 here: one
        # batch gives its loss exactly)
        losses = np.asarray(jax.device_get(per_batch), np.float64)
        return rows @ losses / rows.sum()

    if isinstance(gammas, str):
        check_choice("gammas", gammas, ("logspace",))
        # gromo's utils.line_search, the loss of every tried factor kept in order
        tried, losses = np.zeros(0), np.zeros(0)
        points, low, high, best = logspace_gammas(), 1e-6, 1.0, np.inf
        while True:
            losses = np.concatenate([losses, evaluate(points)])
            tried = np.concatenate([tried, points])
            new_best = float(np.nanmin(losses)) if not np.isnan(losses).all() else np.nan
            if not new_best < best:
                break
            best = new_best
            low, high = high, high * 10
            points = np.logspace(np.log10(low), np.log10(high), 100)
            if high > 1e30:  # the loss keeps decreasing without bound: stop (gromo loops forever)
                break
        return float(tried[_best(losses)]), losses.tolist()
    losses = evaluate(np.asarray(gammas, np.float64))
    return float(gammas[_best(losses)]), losses.tolist()


def check_gammas(gammas: Sequence[float] | str) -> list[float] | str:
    """``gammas`` as a list of finite γ >= 0 (or ``"logspace"``); raise naming `gammas` otherwise."""
    if isinstance(gammas, str):
        check_choice("gammas", gammas, ("logspace",))
        return gammas
    gammas = list(gammas)
    if not gammas:
        raise ValueError("`gammas` must not be empty.")
    for g in gammas:
        check_real("gammas", g, min_value=0.0)
    return gammas


def _best(losses: np.ndarray) -> int:
    """The first lowest loss that is not NaN; raise when every loss is NaN."""
    if np.isnan(losses).all():
        raise ValueError(
            f"`loss_fn` must give a loss that is not NaN for at least one γ, got {losses.tolist()}."
        )
    return int(np.nanargmin(losses))


@functools.partial(jax.jit, static_argnames=("layer_index", "use_bias"))
def _apply_padded(
    params, widths, delta, alpha, omega, k, s_delta, s_in, s_out, *, layer_index, use_bias
):
    """New neurons written into the free slots of a bucket: ``[w, w + k)`` of hidden layer i."""
    i = layer_index
    prev, layer = dict(params[f"layers_{i - 1}"]), dict(params[f"layers_{i}"])
    start = widths[i - 1]
    cap = layer["kernel"].shape[0]
    slot = jnp.arange(cap) - start  # the new neuron's index in α/ω at each stored position
    new = (slot >= 0) & (slot < k)
    idx = jnp.clip(slot, 0, alpha.shape[0] - 1)
    aw, ab = split_raw(alpha, use_bias)  # (r, in_prev), (r,)
    prev["kernel"] = jnp.where(
        new[None, :], (s_out * aw[idx].T).astype(prev["kernel"].dtype), prev["kernel"]
    )
    if ab is not None:  # use_bias
        prev["bias"] = jnp.where(new, (s_out * ab[idx]).astype(prev["bias"].dtype), prev["bias"])
    dw, db = split_raw(delta, use_bias)
    kernel = layer["kernel"] - (s_delta * dw.T).astype(layer["kernel"].dtype)
    layer["kernel"] = jnp.where(new[:, None], (s_in * omega[:, idx].T).astype(kernel.dtype), kernel)
    if use_bias:
        layer["bias"] = layer["bias"] - (s_delta * db).astype(layer["bias"].dtype)
    out = dict(params)
    out[f"layers_{i - 1}"], out[f"layers_{i}"] = prev, layer
    return out, widths.at[i - 1].add(k)


def apply_change(
    model: GrowingMLP, params: PyTree, update: LayerUpdate, gamma: float | Array
) -> tuple[GrowingMLP, PyTree]:
    """Apply ``update`` at amplitude γ: returns the module definition and its params.

    ``W ← W − γ²δ``, ``W ← [W | γω]`` on ``layers[i]``, ``[W; γα]`` on ``layers[i - 1]``; the hidden
    width grows by ``update.added_neurons``. The new plain forward equals :func:`extended_forward`
    at the same γ. ``gamma`` may also be the three scalings ``(s_δ, s_in, s_out)``. Without capacity
    the returned model is wider; with capacity the new neurons fill the bucket (one compiled
    program per bucket) and the model changes only when the bucket is full: the hidden layer moves
    to :func:`bucket_capacity` of its new width (params zero-padded; pad an optimizer state with
    :func:`grow_opt_state`).

    Args:
        model: a GrowingMLP.
        params: its params or variables.
        update: a :class:`LayerUpdate`.
        gamma: γ, or ``(s_δ, s_in, s_out)``.

    Raises:
        ValueError: if ``update`` is not a growable layer's update at this model's shapes.
    """
    check_model(model)
    p, widths, wrapped = split_variables(model, params)
    check_params(model, p)
    check_update(model, update)
    i = update.layer_index
    k = update.added_neurons
    s_delta, s_in, s_out = _scalings(gamma)
    if widths is None:
        omega, alpha = update.extended_input[:, :k], update.extended_output[:k]
        new_layer, new_prev = apply_layer_change(
            p[f"layers_{i}"],
            p[f"layers_{i - 1}"],
            optimal_delta=update.optimal_delta,
            extended_input=omega,
            extended_output=alpha,
            optimal_delta_scaling=s_delta,
            input_extension_scaling=s_in,
            output_extension_scaling=s_out,
        )
        new_params = dict(p)
        new_params[f"layers_{i}"] = new_layer
        new_params[f"layers_{i - 1}"] = new_prev
        hidden = list(model.hidden_widths)
        hidden[i - 1] += k
        return model.clone(hidden_features=tuple(hidden)), join_variables(new_params, None, wrapped)
    active = widths_of(model, widths)
    delta = update.optimal_delta
    if active[i] + k > model.widths[i]:  # the bucket is full: move to a larger one
        capacity = list(model.capacity_widths)
        capacity[i - 1] = bucket_capacity(active[i] + k, max(capacity[i - 1], 1))
        new_model = model.clone(capacity=tuple(capacity))
        p, delta = _grow_bucket(p, delta, new_model, capacity[i - 1] - model.widths[i])
        model = new_model
    new_params, new_widths = _apply_padded(
        p,
        widths,
        delta,
        update.extended_output,
        update.extended_input,
        jnp.int32(k),
        jnp.float32(s_delta),
        jnp.float32(s_in),
        jnp.float32(s_out),
        layer_index=i,
        use_bias=model.use_bias,
    )
    return model, join_variables(new_params, new_widths, True)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _grow_bucket(params, delta, model, pad):
    """The params at a larger bucket; δ with zero columns for the new slots (before the bias)."""
    cols = delta.shape[1] - int(model.use_bias)
    delta = jnp.concatenate(
        [delta[:, :cols], jnp.zeros((delta.shape[0], pad), delta.dtype), delta[:, cols:]], axis=1
    )
    return pad_params(params, model), delta
