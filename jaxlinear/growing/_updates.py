"""TINY's proposals for the growable layers of a :class:`GrowingMLP` (gromo's
``compute_optimal_updates``, every option of gromo 0.1.0) and the choice of the best one."""

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_positive_int, check_real
from jaxlinear._typing import Array
from jaxlinear.growing import _solve, _statistics
from jaxlinear.growing._activations import activation_gradient_at_zero
from jaxlinear.growing._mlp_statistics import (
    MLPStatistics,
    check_statistics,
    summary,
)
from jaxlinear.growing._model import (
    GrowingMLP,
    active_masks,
    check_layer_index,
    check_model,
    widths_of,
)

__all__ = ["LayerUpdate", "compute_optimal_updates", "select_best_update"]


class LayerUpdate(NamedTuple):
    """TINY's proposal for one growable layer ``layers[layer_index]`` (gromo's layouts).

    ``optimal_delta`` δ ``(out, in + bias)``; ``extended_input`` ω ``(out, k)``; ``extended_output`` α
    ``(k, in_prev + bias)`` (the new rows of ``layers[layer_index - 1]``, bias column last);
    ``singular_values`` λ ``(k,)``; ``tensor_n`` N; ``first_order_improvement`` = decrease + σ'(0⁺)Σλ²
    (Σλ when ``squared_singular_values`` is False: gromo's ``ignore_singular_values``).
    ``num_neurons`` is the number of neurons the update adds: the first ``num_neurons`` of the k
    columns (a model with ``capacity`` keeps α, ω, λ at a fixed size, zero beyond ``num_neurons``);
    None means all k.

    Attributes:
        layer_index: the growable layer (1..L) whose input grows.
        optimal_delta: δ ``(out, in + bias)``.
        parameter_update_decrease: δ's first-order decrease.
        tensor_n: N.
        extended_output: α ``(k, in_prev + bias)``.
        extended_input: ω ``(out, k)``.
        singular_values: λ ``(k,)``.
        first_order_improvement: the predicted first-order decrease of the loss.
        num_neurons: the neurons added (None: k).
        squared_singular_values: whether the FO sums λ² (False: λ).
    """

    layer_index: int
    optimal_delta: Array
    parameter_update_decrease: Array
    tensor_n: Array
    extended_output: Array
    extended_input: Array
    singular_values: Array
    first_order_improvement: Array
    num_neurons: int | None = None
    squared_singular_values: bool = True

    @property
    def added_neurons(self) -> int:
        """How many neurons applying this update adds."""
        if self.num_neurons is not None:
            return int(self.num_neurons)
        return int(np.shape(self.extended_input)[1])


def _extended_mask(mask: Array | None, use_bias: bool) -> Array | None:
    if mask is None:
        return None
    return jnp.concatenate([mask, jnp.ones((1,), bool)]) if use_bias else mask


def _regularize(matrix: Array, mask: Array | None) -> Array:
    """Ones on the diagonal of the inactive units: the active block's solve is unchanged."""
    if mask is None:
        return matrix
    return matrix + jnp.diag((~mask).astype(matrix.dtype))


def _zero_outside(value: Array, rows: Array | None, cols: Array | None) -> Array:
    if rows is not None:
        value = jnp.where(rows[:, None], value, 0)
    if cols is not None:
        value = jnp.where(cols[None, :], value, 0)
    return value


# gromo's options of the optimal update, as ``grow(**options)`` passes them through
UPDATE_OPTIONS = (
    "compute_delta",
    "use_covariance",
    "alpha_zero",
    "omega_zero",
    "use_projection",
    "ignore_singular_values",
    "use_fisher",
    "fisher_shrinkage",
)


@functools.partial(
    jax.jit,
    static_argnames=(
        "numerical_threshold",
        "statistical_threshold",
        "maximum_added_neurons",
        *UPDATE_OPTIONS,
        "use_bias",
        "slope",
    ),
)
def _layer_update(
    s,
    m,
    m_prev,
    p,
    s_growth,
    e,
    mask_prev,
    mask_in,
    mask_out,
    *,
    numerical_threshold,
    statistical_threshold,
    maximum_added_neurons,
    compute_delta,
    use_covariance,
    alpha_zero,
    omega_zero,
    use_projection,
    ignore_singular_values,
    use_fisher,
    fisher_shrinkage,
    use_bias,
    slope,
):
    ext_prev = _extended_mask(mask_prev, use_bias)
    ext_in = _extended_mask(mask_in, use_bias)
    fisher = fisher_delta = None  # set iff use_fisher
    if use_fisher:
        fisher = e.mean()
        if fisher_shrinkage > 0:
            size = None if mask_out is None else jnp.sum(mask_out)
            fisher = _solve.shrink_psd_matrix(fisher, fisher_shrinkage, size)
            if mask_out is not None:
                fisher = _zero_outside(fisher, mask_out, mask_out)
        fisher_delta = _regularize(fisher, mask_out)
    zero_delta = jnp.zeros((m.sum.shape[1], s.sum.shape[0]), s.sum.dtype)
    if compute_delta or use_projection:
        delta, decrease = _solve.compute_optimal_delta(
            _regularize(s.mean(), ext_in), m.mean(), False, fisher_delta
        )
        delta = _zero_outside(delta, mask_out, ext_in)
    else:
        delta, decrease = zero_delta, jnp.zeros((), s.sum.dtype)
    n_mat = (
        _statistics.tensor_n(m_prev.mean(), p.mean(), delta) if use_projection else -m_prev.mean()
    )
    n_mat = _zero_outside(n_mat, ext_prev, mask_out)
    if not compute_delta:
        delta, decrease = zero_delta, jnp.zeros_like(decrease)
    e_threshold = None
    fisher_ext = None
    if fisher is not None:  # use_fisher
        fisher_ext = _regularize(fisher, mask_out)
        e_threshold = 0.0 if fisher_shrinkage > 0 else None
    alpha, omega, sv, k = _solve.compute_optimal_added_parameters_padded(
        s_growth.mean() if use_covariance else None,
        n_mat,
        numerical_threshold,
        statistical_threshold,
        maximum_added_neurons,
        alpha_zero,
        omega_zero,
        ignore_singular_values,
        fisher_ext,
        e_threshold,
    )
    alpha = _zero_outside(alpha, None, ext_prev)
    omega = _zero_outside(omega, mask_out, None)
    extra = jnp.sum(sv) if ignore_singular_values else jnp.sum(sv**2)
    fo = decrease + np.float32(slope) * extra
    return delta, decrease, n_mat, alpha, omega, sv, k, fo


def _growable(widths: Sequence[int]) -> list[bool]:
    """Per growable layer i = 1..L: can new neurons of hidden layer i both see an input and reach
    an output? (Neither is possible from an empty hidden layer next to it.)"""
    num_hidden = len(widths) - 2
    out = []
    for i in range(1, num_hidden + 1):
        sees_input = i == 1 or widths[i - 1] > 0
        reaches_output = i == num_hidden or widths[i + 1] > 0
        out.append(sees_input and reaches_output)
    return out


def compute_optimal_updates(
    model: GrowingMLP,
    stats: MLPStatistics,
    *,
    numerical_threshold: float = 1e-6,
    statistical_threshold: float = 1e-3,
    maximum_added_neurons: int | None = None,
    compute_delta: bool = True,
    use_covariance: bool = True,
    alpha_zero: bool = False,
    omega_zero: bool = False,
    use_projection: bool = True,
    ignore_singular_values: bool = False,
    use_fisher: bool = False,
    fisher_shrinkage: float = 0.0,
) -> list[LayerUpdate]:
    """gromo's ``compute_optimal_updates`` for every growable layer (defaults: TINY plus the δ step).

    The options are gromo 0.1.0's (``LinearGrowingModule.compute_optimal_updates``): GradMax is
    ``compute_delta=False, use_covariance=False, alpha_zero=True, use_projection=False,
    ignore_singular_values=True``. ``use_fisher`` preconditions δ and the new neurons with E, the
    gradient covariance (accumulate it: ``init_statistics(model, covariance_loss_gradient=True)``),
    shrunk towards tr(E)/d·I by ``fisher_shrinkage``.

    Args:
        model: a GrowingMLP.
        stats: its statistics.
        numerical_threshold: S_growth's eigenvalues kept above it.
        statistical_threshold: singular values kept at or above it.
        maximum_added_neurons: at most this many new neurons per layer.
        compute_delta: apply δ to the existing weights.
        use_covariance: whiten by S_growth (False: identity).
        alpha_zero: new incoming weights 0.
        omega_zero: new outgoing weights 0.
        use_projection: N = −M₋₂ + Pδᵀ (False: −M₋₂).
        ignore_singular_values: √σ → 1 and FO with Σλ.
        use_fisher: precondition with E.
        fisher_shrinkage: E's shrinkage in [0, 1].

    Raises:
        ValueError: if the statistics are empty, non-finite or of another model, or if no hidden
            layer can grow (two adjacent empty hidden layers everywhere: new neurons would see no
            input or reach no output; gromo crashes there). Grow such a model from a few random
            neurons first (:func:`jaxlinear.growing.create_layer_extensions`).

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 2, 1, "tanh")
        >>> x = jax.random.normal(jax.random.key(1), (16, 5))
        >>> params = model.init(jax.random.key(0), x)["params"]
        >>> sse = lambda pred, y: jnp.sum((pred - y) ** 2)
        >>> stats = jl.growing.update_statistics(model, params, jl.growing.init_statistics(model),
        ...                                      x, jnp.sin(x[:, :3]), sse)
        >>> (u,) = jl.growing.compute_optimal_updates(model, stats)
        >>> u.layer_index, u.optimal_delta.shape, u.extended_output.shape, u.extended_input.shape
        (1, (3, 3), (3, 6), (3, 3))
    """
    check_model(model)
    check_statistics(model, stats)
    check_real("numerical_threshold", numerical_threshold, min_value=0.0)
    check_real("statistical_threshold", statistical_threshold, min_value=0.0)
    if maximum_added_neurons is not None:
        check_positive_int("maximum_added_neurons", maximum_added_neurons, allow_zero=True)
    if use_fisher and not stats.covariance_loss_gradient:
        raise ValueError(
            "`use_fisher=True` needs E: gather `stats` from "
            "init_statistics(model, covariance_loss_gradient=True)."
        )
    if not isinstance(fisher_shrinkage, int | float) or not 0.0 <= fisher_shrinkage <= 1.0:
        raise ValueError(f"`fisher_shrinkage` must be a float in [0, 1], got {fisher_shrinkage!r}.")
    counts, finite = summary(stats)
    if min(counts) == 0:
        raise ValueError(
            "`stats` must hold at least one batch (every count > 0), got counts "
            f"{counts}: call update_statistics first."
        )
    if not finite:
        raise ValueError(
            "`stats` must be finite, got NaN or inf sums: the batches or the params hold "
            "non-finite values."
        )
    widths = widths_of(model, stats.widths)
    if not any(_growable(widths)):
        raise ValueError(
            f"`model` has no hidden layer that can grow at widths {widths}: every hidden layer is "
            "next to an empty one, so new neurons would see no input or reach no output (TINY "
            "has no signal there; gromo crashes). Start with at least one neuron in every other "
            "hidden layer, or add a few random neurons first (create_layer_extensions)."
        )
    masks = active_masks(model, stats.widths)
    slope = float(activation_gradient_at_zero(model.activation))
    updates = []
    for j in range(model.num_hidden_layers):
        i = j + 1
        delta, decrease, n_mat, alpha, omega, sv, k, fo = _layer_update(
            stats.tensor_s[i],
            stats.tensor_m[j],
            stats.tensor_m_prev[j],
            stats.cross_covariance[j],
            stats.tensor_s[i - 1],
            stats.covariance_loss_gradient[j] if use_fisher else None,
            masks[i - 1],
            masks[i],
            masks[i + 1],
            numerical_threshold=numerical_threshold,
            statistical_threshold=statistical_threshold,
            maximum_added_neurons=maximum_added_neurons,
            compute_delta=compute_delta,
            use_covariance=use_covariance,
            alpha_zero=alpha_zero,
            omega_zero=omega_zero,
            use_projection=use_projection,
            ignore_singular_values=ignore_singular_values,
            use_fisher=use_fisher,
            fisher_shrinkage=float(fisher_shrinkage),
            use_bias=model.use_bias,
            slope=slope,
        )
        k = int(k)
        if stats.widths is None:  # exact shapes (gromo's)
            alpha, omega, sv = alpha[:k], omega[:, :k], sv[:k]
        updates.append(
            LayerUpdate(
                i, delta, decrease, n_mat, alpha, omega, sv, fo, k, not ignore_singular_values
            )
        )
    return updates


def select_best_update(updates: Sequence[LayerUpdate]) -> int:
    """The position in ``updates`` of the largest first-order improvement (the first one on ties).

    Args:
        updates: the proposals of :func:`compute_optimal_updates`.

    Raises:
        ValueError: if ``updates`` is empty or an improvement is NaN (gromo's ``argmax`` would pick
            it).

    Example:
        >>> select_best_update([LayerUpdate(1, *[None] * 6, 1.0), LayerUpdate(2, *[None] * 6, 2.0)])
        1
    """
    if not updates:
        raise ValueError("`updates` must not be empty.")
    values = np.array([float(u.first_order_improvement) for u in updates])
    if np.isnan(values).any():
        raise ValueError(
            f"`updates` must have first-order improvements that are not NaN, got {values.tolist()}."
        )
    return int(np.argmax(values))


def check_update(model: GrowingMLP, update: Any) -> None:
    """Raise unless ``update`` is a LayerUpdate of a growable layer, at this model's shapes."""
    if not isinstance(update, LayerUpdate):
        raise TypeError(f"`update` must be a LayerUpdate, got {type(update).__name__}.")
    i = update.layer_index
    check_layer_index(model, "update.layer_index", i, " (layers[1:] of gromo's GrowingMLP)")
    w, b = model.widths, int(model.use_bias)
    k = np.shape(update.extended_input)[1] if np.ndim(update.extended_input) == 2 else None
    want = {
        "optimal_delta": (w[i + 1], w[i] + b),
        "extended_input": (w[i + 1], k),
        "extended_output": (k, w[i - 1] + b),
    }
    for name, shape in want.items():
        got = tuple(np.shape(getattr(update, name)))
        if got != shape:
            raise ValueError(
                f"`update.{name}` must have shape {shape} for layers[{i}] of widths {w}, got {got}."
            )
    assert k is not None  # a non-2-D extended_input failed its shape check above
    if tuple(np.shape(update.singular_values)) != (k,):
        raise ValueError(
            f"`update.singular_values` must have shape ({k},) (one per new neuron, the columns of "
            f"ω), got {tuple(np.shape(update.singular_values))}."
        )
    if update.num_neurons is not None and not 0 <= int(update.num_neurons) <= k:
        raise ValueError(
            f"`update.num_neurons` must be in [0, {k}] (the columns of ω), got {update.num_neurons}."
        )
