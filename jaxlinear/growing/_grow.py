"""TINY growth of a :class:`GrowingMLP` (gromo's container loop), functionally and jitted.

The loop, as gromo's tutorial runs it:

1. ``stats = init_statistics(model)``; for each batch
   ``stats = update_statistics(model, params, stats, x, y, loss_fn)`` (one jitted step: forward,
   backward of the **summed** loss through zero ``perturb`` probes on the growable layers'
   pre-activations, inputs collected with ``sow``, and every statistic of every layer updated). A
   batch sharded over devices gives the same statistics (the sums are all-reduced by XLA).
2. ``updates = compute_optimal_updates(model, stats)``: δ, N, the new neurons and the first-order
   improvement of each growable layer (``layers[1:]``), with every option of gromo 0.1.0.
3. ``best = select_best_update(updates)``; ``gamma, losses = line_search(...)``.
4. ``model, params = apply_change(model, params, updates[best], gamma)``: new params and, without
   capacity, a new module definition (wider hidden layer); ``grow_opt_state`` carries an optax
   state across.

:func:`grow` runs the whole step. ``params`` is everywhere either the params dict or the variables
dict ``{"params": ..., "growth": ...}`` (required for a model with ``capacity``); results come back
in the same form. Every jitted program here depends only on the *stored* shapes: with ``capacity``
a growth run compiles again only when a bucket fills.
"""

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxlinear._checks import check_choice, check_finite, check_real
from jaxlinear._typing import Array, PyTree
from jaxlinear.growing._apply import (
    DEFAULT_GAMMAS,
    apply_change,
    check_gammas,
    line_search,
    logspace_gammas,
)
from jaxlinear.growing._buckets import auto_pad, auto_unpad, on_one_device
from jaxlinear.growing._mlp_statistics import (
    check_batches,
    init_statistics,
    summary,
    update_statistics,
)
from jaxlinear.growing._model import (
    GrowingMLP,
    check_model,
    check_params,
    join_variables,
    split_variables,
    widths_of,
)
from jaxlinear.growing._opt_state import grow_opt_state
from jaxlinear.growing._updates import (
    UPDATE_OPTIONS,
    compute_optimal_updates,
    select_best_update,
)

__all__ = ["GrowthStep", "grow"]


class GrowthStep(NamedTuple):
    """What :func:`grow` did: the chosen layer, its proposal, γ, the line search and the optimizer.

    ``gammas``/``losses``: the line-search candidates and their losses; ``loss`` the lowest one;
    ``first_order_improvements`` of every growable layer; ``opt_state`` the optimizer state for the
    new params when one was given to :func:`grow`, else None.

    Attributes:
        layer_index: the grown layer.
        added_neurons: how many neurons it got.
        gamma: the chosen amplitude γ.
        losses: the line-search losses.
        first_order_improvements: the FO of every growable layer.
        gammas: the line-search candidates.
        loss: the lowest line-search loss.
        opt_state: the optimizer state for the new params, or None.
    """

    layer_index: int
    added_neurons: int
    gamma: float
    losses: list[float]
    first_order_improvements: list[float]
    gammas: list[float] | tuple = ()
    loss: float = float("nan")
    opt_state: Any = None


def _progress_bar(progress: Any, total: int) -> tuple[Any, bool]:
    """A tqdm bar, the caller's bar, or None (no tqdm installed: no bar, nothing fails)."""
    if progress is False or progress is None:
        return None, False
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is optional: no bar
            return None, False
        return tqdm(total=total, desc="growth step", leave=True), True
    if not (hasattr(progress, "update") and hasattr(progress, "set_postfix")):
        raise TypeError(
            "`progress` must be a bool or a tqdm-like bar (with update and set_postfix), "
            f"got {type(progress).__name__}."
        )
    return progress, False


@dataclasses.dataclass(frozen=True)
class _RowMean:
    """A summed loss as the mean over the batch rows that gromo's line search (``evaluate_model``)
    takes: ``loss_fn(prediction, y) / rows``. Equal and hashed by ``loss_fn``, so the jitted line
    search compiles once per loss, as with ``loss_fn`` itself."""

    loss_fn: Callable[[Array, Array], Array]

    def __call__(self, prediction: Array, y: Array) -> Array:
        return self.loss_fn(prediction, y) / prediction.shape[0]


def grow(
    model: GrowingMLP,
    params: PyTree,
    batches: Iterable[tuple[Array, Array]],
    loss_fn: Callable[[Array, Array], Array],
    *,
    loss_reduction: str = "sum",
    gammas: Sequence[float] | str = DEFAULT_GAMMAS,
    maximum_added_neurons: int | None = None,
    numerical_threshold: float = 1e-6,
    statistical_threshold: float = 1e-3,
    opt_state: PyTree | None = None,
    progress: Any = False,
    **options: Any,
) -> tuple[GrowingMLP, PyTree, GrowthStep]:
    """One TINY growth step over ``batches``: statistics, updates, best layer, line search, apply.

    A model without ``capacity`` grows in automatic buckets: its params are padded (on the host) to
    :func:`bucket_capacity` of each hidden width, the step runs on the bucketed model, and the grown
    model and its params come back unpadded, as given. Every jitted program depends only on the
    buckets, so a run compiles again only when a bucket fills (a 12-step run: 31 compilations
    instead of 220). Params spread over several devices grow at their own shapes instead.

    Args:
        model: the model (with ``capacity``, growth fills buckets and rarely recompiles).
        params: its params, or its variables (required with ``capacity``).
        batches: ``(x, y)`` pairs; the statistics and the line search run over all of them.
        loss_fn: ``loss_fn(prediction, y)``, a scalar; a static argument of the jitted steps: pass
            the same function object each time (a new lambda per call recompiles).
        loss_reduction: how ``loss_fn`` reduces over the batch rows: ``"sum"`` (default, gromo's
            ``compute_statistics`` loss, ``MSELoss(reduction="sum")``; the default of every
            ``loss_reduction`` here) or ``"mean"``. ``grow`` uses one loss for both of gromo's
            passes: the statistics take the summed loss (a mean is rescaled), and the line search
            takes the mean loss of gromo's ``evaluate_model`` (a summed loss is divided by the
            batch rows), so ``step.losses`` are mean losses either way.
        gammas: the line-search candidates, or ``"logspace"`` (gromo's ``utils.line_search``).
        maximum_added_neurons: at most this many new neurons.
        numerical_threshold: eigenvalues of S kept above it.
        statistical_threshold: singular values kept at or above it (at least one).
        opt_state: an optax state of ``params``; the state for the new params comes back in
            ``step.opt_state`` (:func:`grow_opt_state`: moments kept, new ones zero).
        progress: False (default), True (a tqdm bar over this step's batches and line search, if
            tqdm is installed; otherwise no bar), or a tqdm-like bar the caller made for a whole
            run (``tqdm(total=steps)``): it advances by one per step and shows the loss and widths.
        **options: the other options of :func:`compute_optimal_updates` (``use_fisher``,
            ``alpha_zero``, ``omega_zero``, ``ignore_singular_values``, ``use_covariance``,
            ``use_projection``, ``compute_delta``, ``fisher_shrinkage``); ``use_fisher`` gathers E.

    Returns:
        ``(model, params, step)``: the grown model definition, its params (in the form given) and a
        :class:`GrowthStep`.

    Raises:
        ValueError: for NaN or inf in the batches (before any growth), no batch or an empty one,
            negative or non-finite ``gammas`` or thresholds, active widths outside ``[0,
            capacity]``, a line search whose every loss is NaN (nothing is grown), or a model that
            cannot grow (see :func:`compute_optimal_updates`).
        TypeError: for batches that are not ``(x, y)`` pairs, or non-integer active widths.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 0, 1, "tanh")
        >>> x = jax.random.normal(jax.random.key(1), (32, 5))
        >>> batches = [(x[:16], jnp.sin(x[:16, :3])), (x[16:], jnp.sin(x[16:, :3]))]
        >>> params = model.init(jax.random.key(0), x)["params"]
        >>> mse = lambda pred, y: jnp.mean((pred - y) ** 2)
        >>> model, params, step = jl.growing.grow(
        ...     model, params, batches, mse, loss_reduction="mean")
        >>> model.widths, step.layer_index
        ((5, 3, 3), 1)
    """
    check_model(model)
    unknown = set(options) - set(UPDATE_OPTIONS)
    if unknown:
        raise TypeError(f"grow() got unexpected keyword arguments {sorted(unknown)}.")
    check_choice("loss_reduction", loss_reduction, ("sum", "mean"))
    batches = check_batches(model, batches)
    gammas = check_gammas(gammas)
    check_real("numerical_threshold", numerical_threshold, min_value=0.0)
    check_real("statistical_threshold", statistical_threshold, min_value=0.0)
    for b, (xb, yb) in enumerate(batches):  # before any growth
        check_finite(f"batches[{b}][0]", xb)
        check_finite(f"batches[{b}][1]", yb)
    kwargs: dict[str, Any] = dict(
        loss_reduction=loss_reduction,
        gammas=gammas,
        maximum_added_neurons=maximum_added_neurons,
        numerical_threshold=numerical_threshold,
        statistical_threshold=statistical_threshold,
        progress=progress,
        **options,
    )
    if model.capacity is None:
        p, _, wrapped = split_variables(model, params)
        check_params(model, p)
        if on_one_device(p):  # automatic buckets: few compiled programs, unpadded results
            bucketed, variables = auto_pad(model, p)
            grown, variables, step = _grow(bucketed, variables, batches, loss_fn, **kwargs)
            new_model, new_params = auto_unpad(model, grown, variables)
            if opt_state is not None:
                step = step._replace(opt_state=grow_opt_state(opt_state, new_params))
            return new_model, join_variables(new_params, None, wrapped), step
    return _grow(model, params, batches, loss_fn, opt_state=opt_state, **kwargs)


def _grow(
    model: GrowingMLP,
    params: PyTree,
    batches: list[tuple[Array, Array]],
    loss_fn: Callable[[Array, Array], Array],
    *,
    loss_reduction: str,
    gammas: Sequence[float] | str,
    maximum_added_neurons: int | None,
    numerical_threshold: float,
    statistical_threshold: float,
    opt_state: PyTree | None = None,
    progress: Any,
    **options: Any,
) -> tuple[GrowingMLP, PyTree, GrowthStep]:
    """:func:`grow` on checked arguments, at the model's stored shapes."""
    n_gammas = len(gammas) if not isinstance(gammas, str) else 1
    bar, own_bar = _progress_bar(progress, len(batches) + n_gammas)
    stats = init_statistics(model, covariance_loss_gradient=bool(options.get("use_fisher")))
    p, widths, _ = split_variables(model, params)
    if widths is not None:
        stats = stats._replace(widths=widths)
    for xb, yb in batches:
        stats = update_statistics(model, params, stats, xb, yb, loss_fn, loss_reduction)
        if own_bar:
            bar.update(1)
    counts, finite = summary(stats)
    if not finite:
        raise ValueError(
            "`params` must be finite: the statistics of finite batches are NaN or inf."
        )
    updates = compute_optimal_updates(
        model,
        stats,
        numerical_threshold=numerical_threshold,
        statistical_threshold=statistical_threshold,
        maximum_added_neurons=maximum_added_neurons,
        **options,
    )
    best = select_best_update(updates)
    update = updates[best]
    mean_loss = loss_fn if loss_reduction == "mean" else _RowMean(loss_fn)
    gamma, losses = line_search(model, params, update, batches, mean_loss, gammas)
    tried = list(gammas) if not isinstance(gammas, str) else _logspace_tried(len(losses))
    new_model, new_params = apply_change(model, params, update, gamma)
    new_opt_state = None if opt_state is None else grow_opt_state(opt_state, new_params)
    loss = float(np.min(losses))
    if bar is not None:
        widths_after = widths_of(new_model, split_variables(new_model, new_params)[1])
        bar.set_postfix(loss=f"{loss:.4g}", widths=widths_after[1:-1], gamma=gamma)
        bar.update(n_gammas if own_bar else 1)
        if own_bar:
            bar.close()
    step = GrowthStep(
        update.layer_index,
        update.added_neurons,
        gamma,
        losses,
        [float(u.first_order_improvement) for u in updates],
        tried,
        loss,
        new_opt_state,
    )
    return new_model, new_params, step


def _logspace_tried(count: int) -> list[float]:
    points = [logspace_gammas()]
    low, high = 1e-6, 1.0
    while sum(len(q) for q in points) < count:
        low, high = high, high * 10
        points.append(np.logspace(np.log10(low), np.log10(high), 100))
    return np.concatenate(points)[:count].tolist()
