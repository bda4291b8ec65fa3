"""``GrowingMLP`` (gromo's ``containers.growing_mlp.GrowingMLP``) and its TINY growth loop, in JAX.

The loop, as gromo's tutorial runs it:

1. ``stats = init_statistics(model)``; for each batch
   ``stats = update_statistics(model, params, stats, x, y, loss_fn)`` (one jitted step: forward,
   backward of the **summed** loss through zero ``perturb`` probes on the growable layers'
   pre-activations, inputs collected with ``sow``, and every statistic of every layer updated). A
   batch sharded over devices
   gives the same statistics (the sums are all-reduced by XLA).
2. ``updates = compute_optimal_updates(model, stats)``: δ, N, the new neurons and the first-order
   improvement of each growable layer (``layers[1:]``).
3. ``best = select_best_update(updates)``; ``gamma, losses = line_search(...)``.
4. ``model, params = apply_change(model, params, updates[best], gamma)``: new params *and* a new
   module definition (wider hidden layer). Rebuild the optimizer state afterwards.

:func:`grow` runs the whole step over a list of batches, with a progress bar.
"""

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_choice, check_positive_int
from jaxlinear._typing import Array, PyTree
from jaxlinear.growing import _extend, _solve, _statistics
from jaxlinear.growing._statistics import RunningSum
from jaxlinear.initializers import torch_uniform

__all__ = [
    "GrowingMLP",
    "LayerUpdate",
    "MLPStatistics",
    "apply_change",
    "compute_optimal_updates",
    "extended_forward",
    "grow",
    "init_statistics",
    "line_search",
    "select_best_update",
    "update_statistics",
]

DEFAULT_GAMMAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


class _GrowingLinear(nn.Module):
    """The params of one layer, ``{"kernel": (in, out), "bias": (out,)}``, and its forward."""

    fan_in: int
    fan_out: int
    use_bias: bool

    @nn.compact
    def __call__(self, x: Array) -> Array:
        init = torch_uniform(self.fan_in)
        params = {"kernel": self.param("kernel", init, (self.fan_in, self.fan_out))}
        if self.use_bias:
            params["bias"] = self.param("bias", init, (self.fan_out,))
        return _extend.layer_forward(params, x)


class GrowingMLP(nn.Module):
    """gromo's ``GrowingMLP``: ``Linear(in→h₁), σ, …, Linear(h_L→out)`` whose hidden layers can grow.

    ``hidden_features`` is one width for all ``num_hidden_layers`` hidden layers (gromo's
    ``hidden_size``) or a tuple of per-layer widths (what growth produces); 0 is allowed (an empty
    hidden layer outputs σ(nothing) and the next layer outputs zeros: gromo ignores the bias of a
    layer with no input). Params: ``layers_i = {"kernel": (in, out), "bias": (out,)}``, torch's init
    U(±1/√fan_in). The input is flattened from axis 1, as gromo's ``flatten=True``. Activations are
    named (``"relu"``, ``"tanh"``, ``"identity"``, ``"selu"`` (gromo's default), ``"gelu"``,
    ``"silu"``, ``"sigmoid"``) so that σ'(0⁺) is known.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 0, 1, "tanh")
        >>> params = model.init(jax.random.key(0), jnp.ones((2, 5)))["params"]
        >>> jax.tree.map(jnp.shape, params)["layers_1"]
        {'bias': (3,), 'kernel': (0, 3)}
        >>> model.apply({"params": params}, jnp.ones((2, 5))).shape
        (2, 3)
    """

    in_features: int
    out_features: int
    hidden_features: int | tuple[int, ...]
    num_hidden_layers: int
    activation: str = "selu"
    use_bias: bool = True

    def __post_init__(self) -> None:
        check_positive_int("in_features", self.in_features)
        check_positive_int("out_features", self.out_features)
        check_positive_int("num_hidden_layers", self.num_hidden_layers)
        check_choice("activation", self.activation, _extend.ACTIVATIONS)
        hidden = self.hidden_features
        if isinstance(hidden, list | tuple):
            if len(hidden) != self.num_hidden_layers:
                raise ValueError(
                    f"`hidden_features` must have {self.num_hidden_layers} widths "
                    f"(num_hidden_layers), got {hidden!r}."
                )
            for h in hidden:
                check_positive_int("hidden_features", h, allow_zero=True)
            object.__setattr__(self, "hidden_features", tuple(int(h) for h in hidden))
        else:
            check_positive_int("hidden_features", hidden, allow_zero=True)
        super().__post_init__()

    @property
    def widths(self) -> tuple[int, ...]:
        """``(in, h₁, …, h_L, out)``."""
        hidden = self.hidden_features
        if not isinstance(hidden, tuple):
            hidden = (hidden,) * self.num_hidden_layers
        return (self.in_features, *hidden, self.out_features)

    @property
    def num_layers(self) -> int:
        return self.num_hidden_layers + 1

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.reshape(x, (x.shape[0], -1))
        widths = self.widths
        if x.shape[-1] != widths[0]:
            raise ValueError(f"`x` must have {widths[0]} features (flattened), got {x.shape}.")
        act = _extend.ACTIVATIONS[self.activation]
        for i in range(self.num_layers):
            layer = _GrowingLinear(widths[i], widths[i + 1], self.use_bias, name=f"layers_{i}")
            self.sow("intermediates", f"input_{i}", x)
            pre = layer(x)
            if i > 0:  # a zero probe on each growable layer's pre-activation (its gradient is g)
                pre = self.perturb(f"pre_activity_{i}", pre)
            x = act(pre) if i < self.num_layers - 1 else pre
        return x


class MLPStatistics(NamedTuple):
    """Running sums of every statistic of a :class:`GrowingMLP` (a pytree).

    ``tensor_s[i]`` is S of ``layers[i]`` (i = 0..L; S_growth of ``layers[i]`` is ``tensor_s[i-1]``);
    ``tensor_m[j]``, ``tensor_m_prev[j]``, ``cross_covariance[j]`` belong to the growable layer
    ``layers[j + 1]``; ``covariance_loss_gradient[j]`` (E = gᵀg, gromo's empirical Fisher) too, or
    ``()`` when not requested (gromo accumulates it by default; TINY without Fisher does not use it).
    """

    tensor_s: tuple[RunningSum, ...]
    tensor_m: tuple[RunningSum, ...]
    tensor_m_prev: tuple[RunningSum, ...]
    cross_covariance: tuple[RunningSum, ...]
    covariance_loss_gradient: tuple[RunningSum, ...] = ()


def _check_model(model: Any) -> None:
    if not isinstance(model, GrowingMLP):
        raise TypeError(
            f"`model` must be a jaxlinear.growing.GrowingMLP, got {type(model).__name__}."
        )


def init_statistics(
    model: GrowingMLP, dtype=jnp.float32, covariance_loss_gradient: bool = False
) -> MLPStatistics:
    """Empty statistics (zero sums, zero counts) for ``model``'s current widths.

    With ``covariance_loss_gradient`` E = gᵀg is accumulated too (as gromo's default
    ``update_computation()`` does).

    Example:
        >>> import jaxlinear as jl
        >>> stats = jl.growing.init_statistics(jl.growing.GrowingMLP(5, 3, 2, 1))
        >>> [s.sum.shape for s in stats.tensor_s], stats.cross_covariance[0].sum.shape
        ([(6, 6), (3, 3)], (6, 3))
    """
    _check_model(model)
    w, b = model.widths, int(model.use_bias)
    n = model.num_layers
    return MLPStatistics(
        tuple(RunningSum.zeros((w[i] + b, w[i] + b), dtype) for i in range(n)),
        tuple(RunningSum.zeros((w[i] + b, w[i + 1]), dtype) for i in range(1, n)),
        tuple(RunningSum.zeros((w[i - 1] + b, w[i + 1]), dtype) for i in range(1, n)),
        tuple(RunningSum.zeros((w[i - 1] + b, w[i] + b), dtype) for i in range(1, n)),
        tuple(RunningSum.zeros((w[i + 1], w[i + 1]), dtype) for i in range(1, n))
        if covariance_loss_gradient
        else (),
    )


@functools.partial(jax.jit, static_argnames=("model", "loss_fn", "loss_reduction"))
def _statistics_step(model, loss_fn, loss_reduction, params, stats, x, y):
    n = x.shape[0]
    widths = model.widths
    # probes on the growable layers only: layer 0's gradient is never used (no backward GEMM to it)
    probes = {
        f"pre_activity_{i}": jnp.zeros((n, widths[i + 1]), x.dtype)
        for i in range(1, model.num_layers)
    }

    def loss(probes):
        out, state = model.apply(
            {"params": params, "perturbations": probes}, x, mutable=["intermediates"]
        )
        return loss_fn(out, y), state["intermediates"]

    grads, inter = jax.grad(loss, has_aux=True)(probes)
    scale = n if loss_reduction == "mean" else 1
    g = [None] + [grads[f"pre_activity_{i}"] * scale for i in range(1, model.num_layers)]
    h = [inter[f"input_{i}"][0] for i in range(model.num_layers)]
    b = model.use_bias
    s = tuple(
        stat.add(_statistics.compute_s_update(h[i], b)) for i, stat in enumerate(stats.tensor_s)
    )
    m = tuple(
        stat.add(_statistics.compute_m_update(h[j + 1], g[j + 1], b))
        for j, stat in enumerate(stats.tensor_m)
    )
    m_prev = tuple(
        stat.add(_statistics.compute_m_prev_update(h[j], g[j + 1], b))
        for j, stat in enumerate(stats.tensor_m_prev)
    )
    p = tuple(
        stat.add(_statistics.compute_cross_covariance_update(h[j], h[j + 1], b, b))
        for j, stat in enumerate(stats.cross_covariance)
    )
    e = tuple(
        stat.add(_statistics.compute_covariance_loss_gradient_update(g[j + 1]))
        for j, stat in enumerate(stats.covariance_loss_gradient)
    )
    return MLPStatistics(s, m, m_prev, p, e)


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
    data-parallel statistics.

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
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"`x` and `y` must have the same batch size, got {x.shape} and {y.shape}.")
    return _statistics_step(model, loss_fn, loss_reduction, params, stats, x, y)


class LayerUpdate(NamedTuple):
    """TINY's proposal for one growable layer ``layers[layer_index]`` (gromo's layouts).

    ``optimal_delta`` δ ``(out, in + bias)``; ``extended_input`` ω ``(out, k)``; ``extended_output`` α
    ``(k, in_prev + bias)`` (the new rows of ``layers[layer_index - 1]``, bias column last);
    ``singular_values`` λ ``(k,)``; ``tensor_n`` N; ``first_order_improvement`` = decrease + σ'(0⁺)Σλ².
    """

    layer_index: int
    optimal_delta: Array
    parameter_update_decrease: Array
    tensor_n: Array
    extended_output: Array
    extended_input: Array
    singular_values: Array
    first_order_improvement: Array


@functools.partial(
    jax.jit,
    static_argnames=(
        "numerical_threshold",
        "statistical_threshold",
        "maximum_added_neurons",
        "compute_delta",
        "use_projection",
        "activation",
    ),
)
def _layer_update(
    s,
    m,
    m_prev,
    p,
    s_growth,
    *,
    numerical_threshold,
    statistical_threshold,
    maximum_added_neurons,
    compute_delta,
    use_projection,
    activation,
):
    delta, decrease = _solve.compute_optimal_delta(s.mean(), m.mean())
    n_mat = (
        _statistics.tensor_n(m_prev.mean(), p.mean(), delta) if use_projection else -m_prev.mean()
    )
    if not compute_delta:
        delta, decrease = jnp.zeros_like(delta), jnp.zeros_like(decrease)
    alpha, omega, sv, k = _solve.compute_optimal_added_parameters_padded(
        s_growth.mean(), n_mat, numerical_threshold, statistical_threshold, maximum_added_neurons
    )
    fo = _solve.first_order_improvement(decrease, sv, activation)
    return delta, decrease, n_mat, alpha, omega, sv, k, fo


def _is_running_sum(x: Any) -> bool:
    return isinstance(x, RunningSum)


def compute_optimal_updates(
    model: GrowingMLP,
    stats: MLPStatistics,
    *,
    numerical_threshold: float = 1e-6,
    statistical_threshold: float = 1e-3,
    maximum_added_neurons: int | None = None,
    compute_delta: bool = True,
    use_projection: bool = True,
) -> list[LayerUpdate]:
    """gromo's ``compute_optimal_updates`` for every growable layer (defaults: TINY plus the δ step).

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
    counts = [int(stat.count) for stat in jax.tree.leaves(stats, is_leaf=_is_running_sum)]
    if not counts or min(counts) == 0:
        raise ValueError(
            "`stats` must hold at least one batch (every count > 0), got counts "
            f"{counts}: call update_statistics first."
        )
    updates = []
    for j in range(model.num_hidden_layers):
        i = j + 1
        delta, decrease, n_mat, alpha, omega, sv, k, fo = _layer_update(
            stats.tensor_s[i],
            stats.tensor_m[j],
            stats.tensor_m_prev[j],
            stats.cross_covariance[j],
            stats.tensor_s[i - 1],
            numerical_threshold=numerical_threshold,
            statistical_threshold=statistical_threshold,
            maximum_added_neurons=maximum_added_neurons,
            compute_delta=compute_delta,
            use_projection=use_projection,
            activation=model.activation,
        )
        k = int(k)
        updates.append(LayerUpdate(i, delta, decrease, n_mat, alpha[:k], omega[:, :k], sv[:k], fo))
    return updates


def select_best_update(updates: Sequence[LayerUpdate]) -> int:
    """The position in ``updates`` of the largest first-order improvement (the first one on ties).

    Example:
        >>> select_best_update([LayerUpdate(1, *[None] * 6, 1.0), LayerUpdate(2, *[None] * 6, 2.0)])
        1
    """
    if not updates:
        raise ValueError("`updates` must not be empty.")
    return int(np.argmax([float(u.first_order_improvement) for u in updates]))


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
    x = jnp.reshape(x, (x.shape[0], -1))
    s_delta, s_in, s_out = _scalings(gamma)
    last = model.num_layers - 1
    x_ext = None
    for i in range(model.num_layers):
        act = "identity" if i == last else model.activation
        kwargs = {}
        if i == update.layer_index:
            kwargs = dict(
                optimal_delta=update.optimal_delta,
                extended_input=update.extended_input,
                optimal_delta_scaling=s_delta,
                input_extension_scaling=s_in,
            )
        elif i == update.layer_index - 1:
            kwargs = dict(extended_output=update.extended_output, output_extension_scaling=s_out)
        x, x_ext = _extend.extended_forward(
            params[f"layers_{i}"], x, x_ext, activation=act, **kwargs
        )
    return x


def line_search(
    model: GrowingMLP,
    params: PyTree,
    update: LayerUpdate,
    batches: Iterable[tuple[Array, Array]],
    loss_fn: Callable[[Array, Array], Array],
    gammas: Sequence[float] = DEFAULT_GAMMAS,
) -> tuple[float, list[float]]:
    """The γ of ``gammas`` with the lowest loss of :func:`extended_forward` (first one on ties).

    The loss of γ is the mean over ``batches`` of ``loss_fn`` (use a mean-reduced loss, as gromo's
    ``evaluate_model``). Returns ``(best_gamma, losses)``.
    """
    batches = list(batches)
    if not gammas:
        raise ValueError("`gammas` must not be empty.")
    fn = jax.jit(lambda p, xb, yb, g: loss_fn(extended_forward(model, p, xb, update, g), yb))
    losses = []
    for g in gammas:
        total = sum(float(fn(params, xb, yb, jnp.float32(g))) for xb, yb in batches)
        losses.append(total / len(batches))
    return float(gammas[int(np.argmin(losses))]), losses


def apply_change(
    model: GrowingMLP, params: PyTree, update: LayerUpdate, gamma: float | Array
) -> tuple[GrowingMLP, PyTree]:
    """Apply ``update`` at amplitude γ: returns the wider module definition and its params.

    ``W ← W − γ²δ``, ``W ← [W | γω]`` on ``layers[i]``, ``[W; γα]`` on ``layers[i - 1]``; the hidden
    width grows by ``k``. The new plain forward equals :func:`extended_forward` at the same γ.
    ``gamma`` may also be the three scalings ``(s_δ, s_in, s_out)``.
    """
    _check_model(model)
    i = update.layer_index
    s_delta, s_in, s_out = _scalings(gamma)
    new_layer, new_prev = _extend.apply_change(
        params[f"layers_{i}"],
        params[f"layers_{i - 1}"],
        optimal_delta=update.optimal_delta,
        extended_input=update.extended_input,
        extended_output=update.extended_output,
        optimal_delta_scaling=s_delta,
        input_extension_scaling=s_in,
        output_extension_scaling=s_out,
    )
    new_params = dict(params)
    new_params[f"layers_{i}"] = new_layer
    new_params[f"layers_{i - 1}"] = new_prev
    hidden = list(model.widths[1:-1])
    hidden[i - 1] += int(update.singular_values.shape[0])
    return model.clone(hidden_features=tuple(hidden)), new_params


class GrowthStep(NamedTuple):
    """What :func:`grow` did: the chosen layer, its proposal, γ and the line-search losses."""

    layer_index: int
    added_neurons: int
    gamma: float
    losses: list[float]
    first_order_improvements: list[float]


def grow(
    model: GrowingMLP,
    params: PyTree,
    batches: Iterable[tuple[Array, Array]],
    loss_fn: Callable[[Array, Array], Array],
    *,
    loss_reduction: str = "mean",
    gammas: Sequence[float] = DEFAULT_GAMMAS,
    maximum_added_neurons: int | None = None,
    numerical_threshold: float = 1e-6,
    statistical_threshold: float = 1e-3,
    progress: bool = True,
) -> tuple[GrowingMLP, PyTree, GrowthStep]:
    """One TINY growth step over ``batches``: statistics, updates, best layer, line search, apply.

    ``loss_fn(prediction, y)`` is a scalar loss; ``loss_reduction`` says whether it sums (``"sum"``) or
    averages (``"mean"``) over the batch rows (the statistics rescale a mean to a sum); the line search
    uses it as is. Shows a tqdm progress bar over the batches when ``progress``. ``loss_fn`` is a static
    argument of the jitted statistics step: pass the same function object each time (a new lambda
    per call recompiles).

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 0, 1, "tanh")
        >>> x = jax.random.normal(jax.random.key(1), (32, 5))
        >>> batches = [(x[:16], jnp.sin(x[:16, :3])), (x[16:], jnp.sin(x[16:, :3]))]
        >>> params = model.init(jax.random.key(0), x)["params"]
        >>> mse = lambda pred, y: jnp.mean((pred - y) ** 2)
        >>> model, params, step = jl.growing.grow(model, params, batches, mse, progress=False)
        >>> model.widths, step.layer_index
        ((5, 3, 3), 1)
    """
    _check_model(model)
    batches = list(batches)
    stats = init_statistics(model)
    iterator: Iterable = batches
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(batches, desc="growth statistics", leave=False)
    for xb, yb in iterator:
        stats = update_statistics(model, params, stats, xb, yb, loss_fn, loss_reduction)
    updates = compute_optimal_updates(
        model,
        stats,
        numerical_threshold=numerical_threshold,
        statistical_threshold=statistical_threshold,
        maximum_added_neurons=maximum_added_neurons,
    )
    best = select_best_update(updates)
    update = updates[best]
    gamma, losses = line_search(model, params, update, batches, loss_fn, gammas)
    new_model, new_params = apply_change(model, params, update, gamma)
    step = GrowthStep(
        update.layer_index,
        int(update.singular_values.shape[0]),
        gamma,
        losses,
        [float(u.first_order_improvement) for u in updates],
    )
    return new_model, new_params, step
