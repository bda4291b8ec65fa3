"""The TINY statistics of a whole :class:`GrowingMLP`: a pytree of running sums, one jitted step.

``update_statistics`` runs a forward and the backward of the **summed** loss to zero ``perturb``
probes on the growable layers' pre-activations (the inputs are collected with ``sow``) and adds every
statistic of every layer; ``value_and_grad_with_statistics`` takes them from a training step's own
backward instead. The outer products with a ones column are assembled from GEMMs at the layer widths.
"""

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_choice
from jaxlinear._typing import Array, PyTree
from jaxlinear.growing._model import (
    GrowingMLP,
    check_model,
    check_params,
    split_variables,
)
from jaxlinear.growing._statistics import RunningSum

__all__ = [
    "MLPStatistics",
    "init_statistics",
    "update_statistics",
    "value_and_grad_with_statistics",
]


class MLPStatistics(NamedTuple):
    """Running sums of every statistic of a :class:`GrowingMLP` (a pytree).

    ``tensor_s[i]`` is S of ``layers[i]`` (i = 0..L; S_growth of ``layers[i]`` is ``tensor_s[i-1]``);
    ``tensor_m[j]``, ``tensor_m_prev[j]``, ``cross_covariance[j]`` belong to the growable layer
    ``layers[j + 1]``; ``covariance_loss_gradient[j]`` (E = gᵀg, gromo's empirical Fisher, needed by
    ``use_fisher``) too, or ``()`` when not requested. ``widths`` holds the active hidden widths the
    statistics were gathered at (a model with ``capacity``), else None.

    Attributes:
        tensor_s: S of every layer.
        tensor_m: M of every growable layer.
        tensor_m_prev: M₋₂ of every growable layer.
        cross_covariance: P of every growable layer.
        covariance_loss_gradient: E of every growable layer, or ``()``.
        widths: the active hidden widths (int32), or None.
    """

    tensor_s: tuple[RunningSum, ...]
    tensor_m: tuple[RunningSum, ...]
    tensor_m_prev: tuple[RunningSum, ...]
    cross_covariance: tuple[RunningSum, ...]
    covariance_loss_gradient: tuple[RunningSum, ...] = ()
    widths: Array | None = None


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

    Args:
        model: a GrowingMLP.
        dtype: the sums' dtype.
        covariance_loss_gradient: also accumulate E.

    Example:
        >>> import jaxlinear as jl
        >>> stats = jl.growing.init_statistics(jl.growing.GrowingMLP(5, 3, 2, 1))
        >>> [s.sum.shape for s in stats.tensor_s], stats.cross_covariance[0].sum.shape
        ([(6, 6), (3, 3)], (6, 3))
    """
    check_model(model)
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


def check_statistics(model: GrowingMLP, stats: Any) -> None:
    """Raise unless ``stats`` is an :class:`MLPStatistics` of ``model`` (its shapes and buckets)."""
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
    g_layers = [probe_grads[f"pre_activity_{i}"] * scale for i in range(1, model.num_layers)]
    g: list[Array | None] = [None, *g_layers]  # no gradient is taken at the input
    h = [inter[f"input_{i}"][0] for i in range(model.num_layers)]
    # M of a growable layer is its kernel gradient (xᵀg) and the column sums of g: reuse the
    # backward's GEMM (the bias row is Σg, not the bias gradient: a layer without input ignores
    # its bias, as gromo's)
    m_blocks = []
    for i, g_i in enumerate(g_layers, start=1):
        block = grads[f"layers_{i}"]["kernel"] * scale
        if model.use_bias:
            block = jnp.concatenate([block, jnp.sum(g_i, axis=0)[None, :]], axis=0)
        m_blocks.append(block)
    return value, grads, _add_statistics(model, stats, h, g, widths, m_blocks)


def value_and_grad_with_statistics(
    model: GrowingMLP,
    params: PyTree,
    stats: MLPStatistics,
    x: Array,
    y: Array,
    loss_fn: Callable[[Array, Array], Array],
    loss_reduction: str = "sum",
) -> tuple[Array, PyTree, MLPStatistics]:
    """A training step's loss and gradients *and* the TINY statistics, from one forward/backward.

    The statistics come from the training backward itself (gromo gathers them in a separate pass):
    the per-layer inputs are the forward's, the pre-activation gradients come from zero probes
    differentiated together with the params, and M of each growable layer is its weight gradient,
    so the extra cost is the remaining outer products. ``loss_reduction`` says how ``loss_fn``
    reduces over the batch (gradients for the statistics are rescaled to the summed loss). The
    statistics are gathered at the params of each step (before its optimizer update). Jitted, with
    ``model`` and ``loss_fn`` static; it can also be called inside a jitted training step.

    Args:
        model: a GrowingMLP.
        params: its params or variables.
        stats: the running statistics.
        x: a batch of inputs.
        y: its targets.
        loss_fn: ``loss_fn(prediction, y)``, a scalar.
        loss_reduction: how ``loss_fn`` reduces over the batch rows: ``"sum"`` (default, as every
            ``loss_reduction`` of :mod:`jaxlinear.growing`: gromo's statistics take a summed
            loss) or ``"mean"``.

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
        ...     model, params, stats, x, y, mse, loss_reduction="mean")
        >>> updates, state = opt.update(grads, state)
        >>> params = optax.apply_updates(params, updates)
        >>> int(stats.tensor_s[0].count)
        16
    """
    p, widths = _checked_step(model, params, stats, x, y, loss_reduction)
    return _fused_step(model, loss_fn, loss_reduction, p, widths, stats, x, y)


def _checked_step(
    model: GrowingMLP, params: PyTree, stats: Any, x: Any, y: Any, loss_reduction: str
) -> tuple[PyTree, Array | None]:
    """The checks of a statistics step's arguments; ``(params, active widths or None)``."""
    check_model(model)
    check_choice("loss_reduction", loss_reduction, ("sum", "mean"))
    p, widths, _ = split_variables(model, params)
    check_params(model, p)
    check_statistics(model, stats)
    _check_batch(model, x, y)
    return p, widths


def check_batches(model: GrowingMLP, batches: Any) -> list[tuple[Any, Any]]:
    """``batches`` as a list of checked ``(x, y)`` pairs, none of them empty (a mean over 0 rows is
    NaN and would poison every line-search loss)."""
    batches = list(batches)
    if not batches:
        raise ValueError("`batches` must hold at least one (x, y) batch, got none.")
    for b, batch in enumerate(batches):
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            what = f"shape {np.shape(batch)}" if hasattr(batch, "shape") else type(batch).__name__
            raise TypeError(
                f"`batches` must hold (x, y) pairs (inputs and targets), got {what} in batch {b}."
            )
        _check_batch(model, *batch)
        if np.shape(batch[0])[0] == 0:
            raise ValueError(f"`batches` must not hold an empty batch, got 0 rows in batch {b}.")
    return batches


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
    :func:`value_and_grad_with_statistics`.

    Args:
        model: a GrowingMLP.
        params: its params or variables.
        stats: the running statistics (:func:`init_statistics`).
        x: a batch of inputs.
        y: its targets.
        loss_fn: ``loss_fn(prediction, y)``, a scalar.
        loss_reduction: how ``loss_fn`` reduces over the batch rows: ``"sum"`` (default, as
            gromo's ``compute_statistics``, whose default loss is ``MSELoss(reduction="sum")`` and
            which asserts a summed loss; the default of every ``loss_reduction`` here) or
            ``"mean"``.

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
    p, widths = _checked_step(model, params, stats, x, y, loss_reduction)
    return _statistics_step(model, loss_fn, loss_reduction, p, widths, stats, x, y)


@jax.jit
def _summary_sums(stats):
    counts = [s.count for s in jax.tree.leaves(stats, is_leaf=_is_running_sum)]
    sums = [s.sum for s in jax.tree.leaves(stats, is_leaf=_is_running_sum)]
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in sums]))
    return jnp.stack(counts), finite


def summary(stats: MLPStatistics) -> tuple[list[int], bool]:
    """``(sample count of every statistic, whether every sum is finite)``, in one transfer."""
    counts, finite = jax.device_get(_summary_sums(stats._replace(widths=None)))
    return [int(c) for c in counts], bool(finite)


def _is_running_sum(x: Any) -> bool:
    return isinstance(x, RunningSum)
