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

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_choice, check_positive_int
from jaxlinear._typing import Array, PyTree
from jaxlinear.growing import _extend, _solve, _statistics
from jaxlinear.growing._activations import activation_function, activation_gradient_at_zero
from jaxlinear.growing._buckets import pad_params, pad_to
from jaxlinear.growing._model import (
    GrowingMLP,
    bucket_capacity,
    check_params,
    join_variables,
    split_variables,
)
from jaxlinear.growing._statistics import RunningSum

__all__ = [
    "DEFAULT_GAMMAS",
    "GrowthStep",
    "LayerUpdate",
    "MLPStatistics",
    "apply_change",
    "compute_optimal_updates",
    "extended_forward",
    "grow",
    "grow_opt_state",
    "init_statistics",
    "line_search",
    "logspace_gammas",
    "select_best_update",
    "update_statistics",
    "value_and_grad_with_statistics",
]

DEFAULT_GAMMAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


class MLPStatistics(NamedTuple):
    """Running sums of every statistic of a :class:`GrowingMLP` (a pytree).

    ``tensor_s[i]`` is S of ``layers[i]`` (i = 0..L; S_growth of ``layers[i]`` is ``tensor_s[i-1]``);
    ``tensor_m[j]``, ``tensor_m_prev[j]``, ``cross_covariance[j]`` belong to the growable layer
    ``layers[j + 1]``; ``covariance_loss_gradient[j]`` (E = gᵀg, gromo's empirical Fisher, needed by
    ``use_fisher``) too, or ``()`` when not requested. ``widths`` holds the active hidden widths the
    statistics were gathered at (a model with ``capacity``), else None.
    """

    tensor_s: tuple[RunningSum, ...]
    tensor_m: tuple[RunningSum, ...]
    tensor_m_prev: tuple[RunningSum, ...]
    cross_covariance: tuple[RunningSum, ...]
    covariance_loss_gradient: tuple[RunningSum, ...] = ()
    widths: Array | None = None


def _check_model(model: Any) -> None:
    if not isinstance(model, GrowingMLP):
        raise TypeError(
            f"`model` must be a jaxlinear.growing.GrowingMLP, got {type(model).__name__}."
        )


def _statistic_shapes(model: GrowingMLP, covariance_loss_gradient: bool) -> dict[str, list]:
    w, b = model.widths, int(model.use_bias)
    n = model.num_layers
    return {
        "tensor_s": [(w[i] + b, w[i] + b) for i in range(n)],
        "tensor_m": [(w[i] + b, w[i + 1]) for i in range(1, n)],
        "tensor_m_prev": [(w[i - 1] + b, w[i + 1]) for i in range(1, n)],
        "cross_covariance": [(w[i - 1] + b, w[i] + b) for i in range(1, n)],
        "covariance_loss_gradient": [(w[i + 1], w[i + 1]) for i in range(1, n)]
        if covariance_loss_gradient
        else [],
    }


def init_statistics(
    model: GrowingMLP, dtype=jnp.float32, covariance_loss_gradient: bool = False
) -> MLPStatistics:
    """Empty statistics (zero sums, zero counts) for ``model``'s stored widths.

    With ``covariance_loss_gradient`` E = gᵀg is accumulated too (as gromo's default
    ``update_computation()`` does; ``use_fisher`` needs it).

    Example:
        >>> import jaxlinear as jl
        >>> stats = jl.growing.init_statistics(jl.growing.GrowingMLP(5, 3, 2, 1))
        >>> [s.sum.shape for s in stats.tensor_s], stats.cross_covariance[0].sum.shape
        ([(6, 6), (3, 3)], (6, 3))
    """
    _check_model(model)
    shapes = _statistic_shapes(model, covariance_loss_gradient)
    frozen = tuple((k, tuple(tuple(s) for s in v)) for k, v in shapes.items())
    hidden = model.num_hidden_layers if model.capacity is not None else None
    return _zero_statistics(frozen, jnp.dtype(dtype), hidden)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _zero_statistics(shapes, dtype, hidden) -> MLPStatistics:
    # one compiled program per model (eager zeros would compile one per statistic shape)
    zeros = {k: tuple(RunningSum.zeros(s, dtype) for s in v) for k, v in shapes}
    widths = None if hidden is None else jnp.zeros((hidden,), jnp.int32)
    return MLPStatistics(**zeros, widths=widths)


def _check_statistics(model: GrowingMLP, stats: Any) -> None:
    if not isinstance(stats, MLPStatistics):
        raise TypeError(f"`stats` must be an MLPStatistics, got {type(stats).__name__}.")
    with_e = len(stats.covariance_loss_gradient) > 0
    for name, shapes in _statistic_shapes(model, with_e).items():
        got = [tuple(s.sum.shape) for s in getattr(stats, name)]
        if got != [tuple(s) for s in shapes]:
            raise ValueError(
                f"`stats.{name}` must have shapes {shapes} for the model's widths "
                f"{model.widths}, got {got}: statistics of another model?"
            )
    if (model.capacity is None) != (stats.widths is None):
        raise ValueError(
            "`stats` must come from init_statistics(model) of this model (with capacity: "
            f"{model.capacity is not None}), got widths {stats.widths}."
        )


def _variables(params: PyTree, widths: Array | None, probes: PyTree | None = None) -> dict:
    out = {"params": params}
    if widths is not None:
        out["growth"] = {"widths": widths}
    if probes is not None:
        out["perturbations"] = probes
    return out


def _probes(model: GrowingMLP, x: Array) -> dict[str, Array]:
    # probes on the growable layers only: layer 0's gradient is never used (no backward GEMM to it)
    widths = model.widths
    dtype = jnp.result_type(x, jnp.float32)
    return {
        f"pre_activity_{i}": jnp.zeros((x.shape[0], widths[i + 1]), dtype)
        for i in range(1, model.num_layers)
    }


def _gram_blocks(a: Array, b: Array, bias_a: bool, bias_b: bool, n: Array) -> Array:
    """``ãᵀb̃`` (ones columns last) assembled from ``aᵀb``, the column sums and ``n``.

    The GEMM runs at the layer widths (1024, not 1025) and no ones column is ever copied.
    """
    out = jnp.einsum("ij,ik->jk", a, b)
    if bias_b:
        out = jnp.concatenate([out, jnp.sum(a, axis=0)[:, None]], axis=1)
    if bias_a:
        last = jnp.sum(b, axis=0)
        if bias_b:
            last = jnp.concatenate([last, n[None].astype(last.dtype)])
        out = jnp.concatenate([out, last[None, :]], axis=0)
    return out


def _add_statistics(model, stats, h, g, widths, m_blocks=None):
    """``stats`` plus one batch: inputs ``h[i]`` of every layer, summed-loss gradients ``g[i]``.

    ``m_blocks[j]`` (optional) is M of layer j + 1 computed elsewhere (the weight gradient).
    """
    b = model.use_bias
    n = jnp.asarray(h[0].shape[0], jnp.int32)
    rows = jnp.asarray(n, h[0].dtype)

    def add(stat, value):
        return RunningSum(stat.sum + value.astype(stat.sum.dtype), stat.count + n)

    s = tuple(
        add(stat, _gram_blocks(h[i], h[i], b, b, rows)) for i, stat in enumerate(stats.tensor_s)
    )
    m = tuple(
        add(
            stat,
            _gram_blocks(h[j + 1], g[j + 1], b, False, rows) if m_blocks is None else m_blocks[j],
        )
        for j, stat in enumerate(stats.tensor_m)
    )
    m_prev = tuple(
        add(stat, _gram_blocks(h[j], g[j + 1], b, False, rows))
        for j, stat in enumerate(stats.tensor_m_prev)
    )
    p = tuple(
        add(stat, _gram_blocks(h[j], h[j + 1], b, b, rows))
        for j, stat in enumerate(stats.cross_covariance)
    )
    e = tuple(
        add(stat, _gram_blocks(g[j + 1], g[j + 1], False, False, rows))
        for j, stat in enumerate(stats.covariance_loss_gradient)
    )
    return MLPStatistics(s, m, m_prev, p, e, widths)


@functools.partial(jax.jit, static_argnames=("model", "loss_fn", "loss_reduction"))
def _statistics_step(model, loss_fn, loss_reduction, params, widths, stats, x, y):
    n = x.shape[0]

    def loss(probes):
        out, state = model.apply(_variables(params, widths, probes), x, mutable=["intermediates"])
        return loss_fn(out, y), state["intermediates"]

    grads, inter = jax.grad(loss, has_aux=True)(_probes(model, x))
    scale = n if loss_reduction == "mean" else 1
    g = [None] + [grads[f"pre_activity_{i}"] * scale for i in range(1, model.num_layers)]
    h = [inter[f"input_{i}"][0] for i in range(model.num_layers)]
    return _add_statistics(model, stats, h, g, widths)


@functools.partial(jax.jit, static_argnames=("model", "loss_fn", "loss_reduction"))
def _fused_step(model, loss_fn, loss_reduction, params, widths, stats, x, y):
    n = x.shape[0]

    def loss(p, probes):
        out, state = model.apply(_variables(p, widths, probes), x, mutable=["intermediates"])
        return loss_fn(out, y), state["intermediates"]

    (value, inter), (grads, probe_grads) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
        params, _probes(model, x)
    )
    scale = n if loss_reduction == "mean" else 1
    g = [None] + [probe_grads[f"pre_activity_{i}"] * scale for i in range(1, model.num_layers)]
    h = [inter[f"input_{i}"][0] for i in range(model.num_layers)]
    # M of a growable layer is its kernel gradient (xᵀg) and the column sums of g: reuse the
    # backward's GEMM (the bias row is Σg, not the bias gradient: a layer without input ignores
    # its bias, as gromo's)
    m_blocks = []
    for i in range(1, model.num_layers):
        block = grads[f"layers_{i}"]["kernel"] * scale
        if model.use_bias:
            block = jnp.concatenate([block, jnp.sum(g[i], axis=0)[None, :]], axis=0)
        m_blocks.append(block)
    return value, grads, _add_statistics(model, stats, h, g, widths, m_blocks)


def value_and_grad_with_statistics(
    model: GrowingMLP,
    params: PyTree,
    stats: MLPStatistics,
    x: Array,
    y: Array,
    loss_fn: Callable[[Array, Array], Array],
    loss_reduction: str = "mean",
) -> tuple[Array, PyTree, MLPStatistics]:
    """A training step's loss and gradients *and* the TINY statistics, from one forward/backward.

    The statistics come from the training backward itself (gromo gathers them in a separate pass):
    the per-layer inputs are the forward's, the pre-activation gradients come from zero probes
    differentiated together with the params, and M of each growable layer is its weight gradient,
    so the extra cost is the remaining outer products. ``loss_reduction`` says how ``loss_fn``
    reduces over the batch (gradients for the statistics are rescaled to the summed loss). The
    statistics are gathered at the params of each step (before its optimizer update). Jitted, with
    ``model`` and ``loss_fn`` static; it can also be called inside a jitted training step.

    Returns:
        ``(loss, grads, stats)``: ``grads`` has the structure of the params.

    Example:
        >>> import jax, optax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 4, 1, "tanh")
        >>> x = jax.random.normal(jax.random.key(1), (16, 5)); y = jnp.sin(x[:, :3])
        >>> params = model.init(jax.random.key(0), x)["params"]
        >>> mse = lambda pred, t: jnp.mean((pred - t) ** 2)
        >>> opt = optax.adam(1e-2); state = opt.init(params)
        >>> stats = jl.growing.init_statistics(model)
        >>> loss, grads, stats = jl.growing.value_and_grad_with_statistics(
        ...     model, params, stats, x, y, mse)
        >>> updates, state = opt.update(grads, state)
        >>> params = optax.apply_updates(params, updates)
        >>> int(stats.tensor_s[0].count)
        16
    """
    _check_model(model)
    check_choice("loss_reduction", loss_reduction, ("sum", "mean"))
    p, widths, _ = split_variables(model, params)
    check_params(model, p)
    _check_statistics(model, stats)
    _check_batch(model, x, y)
    return _fused_step(model, loss_fn, loss_reduction, p, widths, stats, x, y)


def _check_batch(model: GrowingMLP, x: Any, y: Any) -> None:
    if np.ndim(x) < 2 or np.ndim(y) < 1 or np.shape(x)[0] != np.shape(y)[0]:
        raise ValueError(
            f"`x` and `y` must be batches with the same leading size, got shapes "
            f"{np.shape(x)} and {np.shape(y)}."
        )
    if math.prod(np.shape(x)[1:]) != model.in_features:
        raise ValueError(
            f"`x` must have {model.in_features} features (flattened), got shape {np.shape(x)}."
        )


def update_statistics(
    model: GrowingMLP,
    params: PyTree,
    stats: MLPStatistics,
    x: Array,
    y: Array,
    loss_fn: Callable[[Array, Array], Array],
    loss_reduction: str = "sum",
) -> MLPStatistics:
    """One jitted statistics step: ``stats`` plus the batch ``(x, y)``'s contribution.

    ``loss_fn(prediction, y)`` returns a scalar. TINY's statistics use the gradient of the **summed**
    loss Σᵢℓᵢ (gromo asserts ``reduction="sum"``). With ``loss_reduction="mean"`` the loss is taken to
    be (1/n)Σᵢℓᵢ over the ``n`` batch rows and its gradients are multiplied by ``n``. (torch's
    ``MSELoss(reduction="mean")`` also divides by the output width; that factor is not undone.)
    ``model`` and ``loss_fn`` are static arguments of the jitted step: reuse the same ``loss_fn`` object
    (a new lambda per call recompiles). Shard ``x``/``y`` over devices along the batch axis for
    data-parallel statistics. Statistics during training, from the training step's own backward:
    :func:`jaxlinear.growing.train_step_with_statistics`.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 2, 1, "relu")
        >>> x = jnp.ones((4, 5))
        >>> params = model.init(jax.random.key(0), x)["params"]
        >>> sse = lambda pred, y: jnp.sum((pred - y) ** 2)
        >>> stats = jl.growing.update_statistics(model, params, jl.growing.init_statistics(model),
        ...                                      x, jnp.zeros((4, 3)), sse)
        >>> int(stats.tensor_m[0].count), stats.tensor_m[0].sum.shape
        (4, (3, 3))
    """
    _check_model(model)
    check_choice("loss_reduction", loss_reduction, ("sum", "mean"))
    p, widths, _ = split_variables(model, params)
    check_params(model, p)
    _check_statistics(model, stats)
    _check_batch(model, x, y)
    return _statistics_step(model, loss_fn, loss_reduction, p, widths, stats, x, y)


class LayerUpdate(NamedTuple):
    """TINY's proposal for one growable layer ``layers[layer_index]`` (gromo's layouts).

    ``optimal_delta`` δ ``(out, in + bias)``; ``extended_input`` ω ``(out, k)``; ``extended_output`` α
    ``(k, in_prev + bias)`` (the new rows of ``layers[layer_index - 1]``, bias column last);
    ``singular_values`` λ ``(k,)``; ``tensor_n`` N; ``first_order_improvement`` = decrease + σ'(0⁺)Σλ²
    (Σλ when ``squared_singular_values`` is False: gromo's ``ignore_singular_values``).
    ``num_neurons`` is the number of neurons the update adds: the first ``num_neurons`` of the k
    columns (a model with ``capacity`` keeps α, ω, λ at a fixed size, zero beyond ``num_neurons``);
    None means all k.
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


def _masks(model: GrowingMLP, widths: Array | None) -> list[Array | None]:
    """Per width index of ``model.widths``: a bool mask of the active units, or None (all)."""
    out: list[Array | None] = [None] * (model.num_layers + 1)
    if widths is not None:
        for j, cap in enumerate(model.widths[1:-1]):
            out[j + 1] = jnp.arange(cap) < widths[j]
    return out


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


@functools.partial(
    jax.jit,
    static_argnames=(
        "numerical_threshold",
        "statistical_threshold",
        "maximum_added_neurons",
        "compute_delta",
        "use_covariance",
        "alpha_zero",
        "omega_zero",
        "use_projection",
        "ignore_singular_values",
        "use_fisher",
        "fisher_shrinkage",
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
    fisher = None
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
            _regularize(s.mean(), ext_in), m.mean(), False, fisher_delta if use_fisher else None
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
    if use_fisher:
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


def _active(model: GrowingMLP, widths: Array | None) -> tuple[int, ...]:
    if widths is None:
        return model.widths
    hidden = tuple(int(w) for w in np.asarray(jax.device_get(widths)))
    return (model.in_features, *hidden, model.out_features)


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
    _check_model(model)
    _check_statistics(model, stats)
    if maximum_added_neurons is not None:
        check_positive_int("maximum_added_neurons", maximum_added_neurons, allow_zero=True)
    if use_fisher and not stats.covariance_loss_gradient:
        raise ValueError(
            "`use_fisher=True` needs E: gather `stats` from "
            "init_statistics(model, covariance_loss_gradient=True)."
        )
    if not isinstance(fisher_shrinkage, int | float) or not 0.0 <= fisher_shrinkage <= 1.0:
        raise ValueError(f"`fisher_shrinkage` must be a float in [0, 1], got {fisher_shrinkage!r}.")
    counts, finite = _summary(stats)
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
    widths = _active(model, stats.widths)
    if not any(_growable(widths)):
        raise ValueError(
            f"`model` has no hidden layer that can grow at widths {widths}: every hidden layer is "
            "next to an empty one, so new neurons would see no input or reach no output (TINY "
            "has no signal there; gromo crashes). Start with at least one neuron in every other "
            "hidden layer, or add a few random neurons first (create_layer_extensions)."
        )
    masks = _masks(model, stats.widths)
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


@jax.jit
def _summary_jit(stats):
    counts = [s.count for s in jax.tree.leaves(stats, is_leaf=_is_running_sum)]
    sums = [s.sum for s in jax.tree.leaves(stats, is_leaf=_is_running_sum)]
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in sums]))
    return jnp.stack(counts), finite


def _summary(stats: MLPStatistics) -> tuple[list[int], bool]:
    counts, finite = jax.device_get(_summary_jit(stats._replace(widths=None)))
    return [int(c) for c in counts], bool(finite)


def _is_running_sum(x: Any) -> bool:
    return isinstance(x, RunningSum)


def select_best_update(updates: Sequence[LayerUpdate]) -> int:
    """The position in ``updates`` of the largest first-order improvement (the first one on ties).

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


def _check_update(model: GrowingMLP, update: Any) -> None:
    """Raise unless ``update`` is a LayerUpdate of a growable layer, at this model's shapes."""
    if not isinstance(update, LayerUpdate):
        raise TypeError(f"`update` must be a LayerUpdate, got {type(update).__name__}.")
    i = update.layer_index
    if (
        isinstance(i, bool)
        or not isinstance(i, int | np.integer)
        or not 1 <= i <= model.num_hidden_layers
    ):
        raise ValueError(
            f"`update.layer_index` must be a growable layer in [1, {model.num_hidden_layers}] "
            f"(layers[1:] of gromo's GrowingMLP), got {i!r}."
        )
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
    if update.num_neurons is not None and not 0 <= int(update.num_neurons) <= k:
        raise ValueError(
            f"`update.num_neurons` must be in [0, {k}] (the columns of ω), got {update.num_neurons}."
        )


def _extended_forward(
    model, params, widths, x, layer_index, delta, alpha, omega, s_delta, s_in, s_out
):
    x = jnp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))
    masks = _masks(model, widths)
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
        pre, x_ext = _extend.extended_forward(
            params[f"layers_{i}"], x, x_ext, precision=model.precision, **kwargs
        )
        if masks[i] is not None and i > 0:  # an empty input: zeros, the bias ignored (gromo)
            pre = jnp.where(widths[i - 1] > 0, pre, jnp.zeros_like(pre))
        if i < last:
            x = act(pre)
            if masks[i + 1] is not None:
                x = jnp.where(masks[i + 1], x, jnp.zeros_like(x))
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
    _check_model(model)
    p, widths, _ = split_variables(model, params)
    _check_update(model, update)
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

    The loss of γ is the mean over ``batches`` of ``loss_fn`` (use a mean-reduced loss, as gromo's
    ``evaluate_model``). ``gammas`` is a list of candidates, or ``"logspace"``: gromo's
    ``utils.line_search`` (0 and 100 points log-spaced over [1e-6, 1], then over [1, 10], [10, 100],
    … while the minimum keeps decreasing). All candidates of a batch are evaluated in one jitted,
    vmapped call, compiled once per model, ``loss_fn`` and layer. Returns ``(best_gamma, losses)``,
    ``losses`` in the order the candidates were tried.

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
    _check_model(model)
    p, widths, _ = split_variables(model, params)
    _check_update(model, update)
    batches = list(batches)
    if not batches:
        raise ValueError("`batches` must hold at least one (x, y) batch, got none.")
    for xb, yb in batches:
        _check_batch(model, xb, yb)

    def evaluate(points: np.ndarray) -> np.ndarray:
        g = jnp.asarray(points, jnp.float32)
        total = None
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
            total = losses if total is None else total + losses
        return np.asarray(jax.device_get(total), np.float64) / len(batches)

    if isinstance(gammas, str):
        check_choice("gammas", gammas, ("logspace",))
        # gromo's utils.line_search, the loss of every tried factor kept in order
        tried, losses = np.zeros(0), np.zeros(0)
        points, low, high, best = logspace_gammas(), 1e-6, 1.0, np.inf
        while True:
            losses = np.concatenate([losses, evaluate(points)])
            tried = np.concatenate([tried, points])
            new_best = float(np.min(losses))
            if not new_best < best:
                break
            best = new_best
            low, high = high, high * 10
            points = np.logspace(np.log10(low), np.log10(high), 100)
            if high > 1e30:  # the loss keeps decreasing without bound: stop (gromo loops forever)
                break
        return float(tried[int(np.argmin(losses))]), losses.tolist()
    gammas = list(gammas)
    if not gammas:
        raise ValueError("`gammas` must not be empty.")
    losses = evaluate(np.asarray(gammas, np.float64))
    return float(gammas[int(np.argmin(losses))]), losses.tolist()


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
    aw, ab = _extend._split(alpha, use_bias)  # (r, in_prev), (r,)
    prev["kernel"] = jnp.where(
        new[None, :], (s_out * aw[idx].T).astype(prev["kernel"].dtype), prev["kernel"]
    )
    if use_bias:
        prev["bias"] = jnp.where(new, (s_out * ab[idx]).astype(prev["bias"].dtype), prev["bias"])
    dw, db = _extend._split(delta, use_bias)
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

    Raises:
        ValueError: if ``update`` is not a growable layer's update at this model's shapes.
    """
    _check_model(model)
    p, widths, wrapped = split_variables(model, params)
    check_params(model, p)
    _check_update(model, update)
    i = update.layer_index
    k = update.added_neurons
    s_delta, s_in, s_out = _scalings(gamma)
    if widths is None:
        omega, alpha = update.extended_input[:, :k], update.extended_output[:k]
        new_layer, new_prev = _extend.apply_change(
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
    active = _active(model, widths)
    delta = update.optimal_delta
    if active[i] + k > model.widths[i]:  # the bucket is full: move to a larger one
        capacity = list(model.capacity)
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
        >>> import optax
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


class GrowthStep(NamedTuple):
    """What :func:`grow` did: the chosen layer, its proposal, γ, the line search and the optimizer.

    ``gammas``/``losses``: the line-search candidates and their losses; ``loss`` the lowest one;
    ``first_order_improvements`` of every growable layer; ``opt_state`` the optimizer state for the
    new params when one was given to :func:`grow`, else None.
    """

    layer_index: int
    added_neurons: int
    gamma: float
    losses: list[float]
    first_order_improvements: list[float]
    gammas: list[float] | tuple = ()
    loss: float = float("nan")
    opt_state: Any = None


def _progress_bar(progress: Any, total: int):
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


@jax.jit
def _finite_flags(batches):
    def finite(v):
        v = jnp.asarray(v)
        return jnp.all(jnp.isfinite(v)) if jnp.issubdtype(v.dtype, jnp.inexact) else True

    return [(finite(xb), finite(yb)) for xb, yb in batches]


def _check_finite_batches(batches: list) -> None:
    flags = jax.device_get(_finite_flags(batches))  # one program and one transfer for all batches
    for b, (ok_x, ok_y) in enumerate(flags):
        bad = [name for name, ok in (("x", ok_x), ("y", ok_y)) if not bool(ok)]
        if bad:
            raise ValueError(
                f"`batches` must hold finite values, got NaN or inf in batch {b} ({', '.join(bad)})."
            )


def grow(
    model: GrowingMLP,
    params: PyTree,
    batches: Iterable[tuple[Array, Array]],
    loss_fn: Callable[[Array, Array], Array],
    *,
    loss_reduction: str = "mean",
    gammas: Sequence[float] | str = DEFAULT_GAMMAS,
    maximum_added_neurons: int | None = None,
    numerical_threshold: float = 1e-6,
    statistical_threshold: float = 1e-3,
    opt_state: PyTree | None = None,
    progress: Any = False,
    **options: Any,
) -> tuple[GrowingMLP, PyTree, GrowthStep]:
    """One TINY growth step over ``batches``: statistics, updates, best layer, line search, apply.

    Args:
        model: the model (with ``capacity``, growth fills buckets and rarely recompiles).
        params: its params, or its variables (required with ``capacity``).
        batches: ``(x, y)`` pairs; the statistics and the line search run over all of them.
        loss_fn: ``loss_fn(prediction, y)``, a scalar; a static argument of the jitted steps: pass
            the same function object each time (a new lambda per call recompiles).
        loss_reduction: ``"mean"`` or ``"sum"``: how ``loss_fn`` reduces over the batch rows (the
            statistics rescale a mean to a sum); the line search uses it as is.
        gammas: the line-search candidates, or ``"logspace"`` (gromo's ``utils.line_search``).
        maximum_added_neurons: at most this many new neurons.
        numerical_threshold: eigenvalues of S kept above it.
        statistical_threshold: singular values kept above it (at least one).
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
        ValueError: for NaN or inf in the batches (before any growth), no batch, or a model that
            cannot grow (see :func:`compute_optimal_updates`).

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 0, 1, "tanh")
        >>> x = jax.random.normal(jax.random.key(1), (32, 5))
        >>> batches = [(x[:16], jnp.sin(x[:16, :3])), (x[16:], jnp.sin(x[16:, :3]))]
        >>> params = model.init(jax.random.key(0), x)["params"]
        >>> mse = lambda pred, y: jnp.mean((pred - y) ** 2)
        >>> model, params, step = jl.growing.grow(model, params, batches, mse)
        >>> model.widths, step.layer_index
        ((5, 3, 3), 1)
    """
    _check_model(model)
    unknown = set(options) - {
        "compute_delta",
        "use_covariance",
        "alpha_zero",
        "omega_zero",
        "use_projection",
        "ignore_singular_values",
        "use_fisher",
        "fisher_shrinkage",
    }
    if unknown:
        raise TypeError(f"grow() got unexpected keyword arguments {sorted(unknown)}.")
    batches = list(batches)
    if not batches:
        raise ValueError("`batches` must hold at least one (x, y) batch, got none.")
    for xb, yb in batches:
        _check_batch(model, xb, yb)
    _check_finite_batches(batches)
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
    counts, finite = _summary(stats)
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
    gamma, losses = line_search(model, params, update, batches, loss_fn, gammas)
    tried = list(gammas) if not isinstance(gammas, str) else _logspace_tried(len(losses))
    new_model, new_params = apply_change(model, params, update, gamma)
    new_opt_state = None if opt_state is None else grow_opt_state(opt_state, new_params)
    loss = float(np.min(losses))
    if bar is not None:
        widths_after = _active(new_model, split_variables(new_model, new_params)[1])
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
