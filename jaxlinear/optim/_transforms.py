"""The optax transforms the optimizers are chains of: per-leaf lr factors, per-leaf weight decay,
torch's Adam moments and SGD momentum, and the (scheduled or traced) base learning rate.

Every per-leaf tree (factors, decays) is mapped *as a prefix* of the updates: where ``optax.masked`` or
``optax.multi_transform`` put an ``optax.MaskedNode`` in the updates, the factor of that leaf is skipped,
so the transforms compose with them.
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax.core import meta
from jax.core import Tracer

from jaxlinear._checks import check_bool, check_floating_array, check_real
from jaxlinear._typing import PyTree
from jaxlinear.optim._hyperparams import check_hyperparam

__all__ = [
    "TorchAdamState",
    "TorchMomentumState",
    "add_decayed_weights_per_leaf",
    "scale_by_learning_rate",
    "scale_by_lr_factors",
    "scale_by_torch_adam",
    "torch_momentum",
]


def _is_skipped(x: Any) -> bool:
    return x is None or isinstance(x, optax.MaskedNode)


def _is_box(x: Any) -> bool:
    return isinstance(x, meta.AxisMetadata)


def _unboxed(tree: PyTree) -> PyTree:
    """``tree`` with Flax's partitioning boxes (``nn.LogicallyPartitioned``...) replaced by their arrays."""
    return jax.tree.map(lambda x: x.unbox() if _is_box(x) else x, tree, is_leaf=_is_box)


def _reboxed(like: PyTree, tree: PyTree) -> PyTree:
    """``tree`` (unboxed) boxed again as ``like``: the updates keep the params' partitioning names."""
    if not any(_is_box(x) for x in jax.tree.leaves(like, is_leaf=_is_box)):
        return tree
    return jax.tree.map(
        lambda b, v: b.replace_boxed(v) if _is_box(b) else v, like, tree, is_leaf=_is_box
    )


def check_same_structure(name: str, tree: PyTree, updates: PyTree) -> None:
    """Raise ``ValueError`` unless ``tree`` has a leaf for each update leaf (``MaskedNode`` is one leaf)."""
    want = jax.tree.structure(updates, is_leaf=lambda x: isinstance(x, optax.MaskedNode))
    got = jax.tree.structure(tree)
    if got != want:
        raise ValueError(
            f"`{name}` must have the same tree structure as the updates (one float per parameter: "
            f"build it from the same model and params), got {got} for updates {want}."
        )


def check_factor_tree(name: str, tree: Any) -> None:
    """Raise unless ``tree`` is a pytree with a finite real number >= 0 per leaf (a Python or numpy
    number, or a concrete 0-d array): the per-parameter factors of :class:`~jaxlinear.optim.Factors`.

    A negative or NaN factor would silently turn a step around or poison the parameter; ``None``
    (``Factors(None, None)``) or an array leaf (a vector would broadcast over the parameter) is refused.
    """
    if tree is None:
        raise TypeError(
            f"`{name}` must be a pytree of factors shaped like the params (from `lr_factors` or "
            "`mup_factors`), got None."
        )
    leaves = jax.tree_util.tree_flatten_with_path(
        _pure(tree), is_leaf=lambda x: isinstance(x, optax.MaskedNode)
    )[0]
    for path, leaf in leaves:
        if isinstance(leaf, optax.MaskedNode):
            continue
        where = f"{name}{jax.tree_util.keystr(path)}"
        if isinstance(leaf, Tracer):
            continue  # traced (vmapped factors): cannot be checked
        if hasattr(leaf, "shape") and getattr(leaf, "ndim", 0) != 0:
            raise ValueError(
                f"`{where}` must be one number per parameter, got an array of shape {leaf.shape}."
            )
        try:
            check_real(where, leaf.item() if hasattr(leaf, "item") else leaf, min_value=0.0)
        except TypeError as e:
            raise TypeError(f"{e} (a factor per parameter, e.g. 1.0)") from None


def _check_floating(name: str, tree: PyTree) -> None:
    """Raise ``TypeError`` unless every array leaf of ``tree`` is floating (torch's optimizers only
    take floating params: an integer step would round to nothing)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if hasattr(leaf, "dtype"):
            check_floating_array(f"{name}{jax.tree_util.keystr(path)}", leaf)


def _check_state(name: str, state_tree: PyTree, updates: PyTree) -> None:
    """Raise unless an optimizer state's per-parameter tree fits the updates: the same structure and
    shapes (``ValueError``: a state from another model) and dtypes (``TypeError``: torch's grads have
    their params' dtype; the state keeps the params' dtype)."""
    want, got = jax.tree.structure(updates), jax.tree.structure(state_tree)
    if want != got:
        raise ValueError(
            f"`{name}` must be the state of these params (`tx.init(params)`), got a state of "
            f"another tree: {got} for updates {want}."
        )
    pairs = zip(
        jax.tree_util.tree_flatten_with_path(updates)[0], jax.tree.leaves(state_tree), strict=True
    )
    for (path, u), s in pairs:
        where = jax.tree_util.keystr(path)
        if jnp.shape(u) != jnp.shape(s):
            raise ValueError(
                f"`{name}` must be the state of these params (`tx.init(params)`), got shape "
                f"{jnp.shape(s)} for the update{where} of shape {jnp.shape(u)}."
            )
        if jnp.result_type(u) != jnp.result_type(s):
            raise TypeError(
                f"`updates{where}` must have its parameter's dtype {jnp.result_type(s)} (as torch's "
                f"gradients do; the optimizer state keeps the params' dtype), got "
                f"{jnp.result_type(u)}: cast the gradients to the params' dtypes."
            )


def _pure(tree: PyTree) -> PyTree:
    """An ``nnx.State`` of ``nnx.Variable`` objects as the pure state ``nnx.Optimizer`` gives optax."""
    if type(tree).__name__ == "State" and type(tree).__module__.startswith("flax.nnx"):
        from flax import nnx

        return nnx.as_pure(tree)
    return tree


def scale_by_lr_factors(
    factors: PyTree | Callable[[PyTree], PyTree],
) -> optax.GradientTransformation:
    """Multiply every update leaf by its learning-rate factor: ``u -> u * factors[leaf]``.

    The building block of :func:`jaxlinear.optim.sgd` / :func:`adam` / :func:`adamw`; put it between an
    optimizer's direction and the base learning rate, e.g. ``optax.chain(optax.scale_by_adam(),
    scale_by_lr_factors(lr_factors(...).lr), optax.scale_by_learning_rate(lr))``: the learning rate of
    a leaf is then ``lr * factor``. It composes with ``optax.chain``, ``masked``, ``multi_transform``
    (masked-out leaves are skipped), ``MultiSteps``, ``apply_if_finite`` and ``inject_hyperparams``.

    Args:
        factors: a pytree with the structure of the params and a Python float per leaf (a
            :class:`~jaxlinear.optim.Factors`' ``lr``; Python floats keep bf16 updates bf16), or a
            callable mapping the updates to such a tree (only shapes matter).

    Returns:
        A stateless ``optax.GradientTransformation``.

    Raises:
        TypeError: for ``None`` or a factor that is not a number.
        ValueError: for a negative, NaN or infinite factor, or an array factor; at ``init`` and
            ``update``, if the factors' tree does not match the params' / updates'.

    Example:
        >>> import jax.numpy as jnp
        >>> tx = scale_by_lr_factors({"kernel": 0.5, "bias": 2.0})
        >>> g = {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> float(u["kernel"][0, 0]), float(u["bias"][0])
        (0.5, 2.0)
    """
    if not callable(factors):
        check_factor_tree("factors", factors)
    fixed = None if callable(factors) else _pure(factors)

    def init_fn(params):
        if fixed is not None:
            check_same_structure("factors", fixed, _unboxed(_pure(params)))
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        boxed, updates = updates, _unboxed(updates)  # partitioned params: factors of the arrays
        f = factors(updates) if fixed is None else fixed
        if fixed is None:
            check_factor_tree("factors", f)
        check_same_structure("factors", f, updates)
        out = jax.tree.map(lambda s, u: u if _is_skipped(u) else u * s, f, updates)
        return _reboxed(boxed, out), state

    return optax.GradientTransformation(init_fn, update_fn)


def add_decayed_weights_per_leaf(
    weight_decay: Any, factors: PyTree | None = None
) -> optax.GradientTransformation:
    """``u -> u + weight_decay * factor_leaf * p``: torch's L2 term with a per-leaf factor.

    ``optax.add_decayed_weights`` with one rate per parameter (the rules of mup and u-μP give each its
    own). ``weight_decay`` may be traced (``inject_hyperparams``); leaves whose factor is 0 are left
    untouched. ``update`` needs ``params``.

    Args:
        weight_decay: the base decay rate: a Python float or a scalar array (possibly traced).
        factors: a pytree with the structure of the params and a Python float per leaf (a
            :class:`~jaxlinear.optim.Factors`' ``weight_decay``), multiplying ``weight_decay`` per
            leaf; None decays every leaf by ``weight_decay``.

    Returns:
        A stateless ``optax.GradientTransformation`` whose ``update`` requires ``params``.

    Raises:
        ValueError: for a negative or NaN rate or factor; at ``update``, if ``params`` is None or the
            factors' tree does not match the updates'.
        TypeError: for a rate or factor that is not a number.

    Example:
        >>> import jax.numpy as jnp
        >>> tx = add_decayed_weights_per_leaf(0.5, {"w": 1.0, "b": 0.0})
        >>> p = {"w": jnp.full(2, 2.0), "b": jnp.ones(2)}
        >>> u, _ = tx.update({"w": jnp.zeros(2), "b": jnp.zeros(2)}, tx.init(p), p)
        >>> u["w"].tolist(), u["b"].tolist()
        ([1.0, 1.0], [0.0, 0.0])
    """
    check_hyperparam("weight_decay", weight_decay)
    if factors is not None:
        check_factor_tree("factors", factors)
    fixed = None if factors is None else _pure(factors)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("`params` must be passed to `update` for weight decay, got None.")
        boxed, updates, params = updates, _unboxed(updates), _unboxed(params)
        f = jax.tree.map(lambda _: 1.0, updates) if fixed is None else fixed
        check_same_structure("factors.weight_decay", f, updates)

        def leaf(s, u, p):
            if _is_skipped(u) or (isinstance(s, float | int) and s == 0):
                return u
            return u + (weight_decay * s * p).astype(u.dtype)

        return _reboxed(boxed, jax.tree.map(leaf, f, updates, params)), state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)


def scale_by_learning_rate(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformation:
    """``u -> -learning_rate * u``, the rate a float, a traced scalar or an optax schedule.

    Unlike ``optax.scale``, an array (traced) rate is cast to each update's dtype first, so bf16
    updates stay bf16 under ``inject_hyperparams`` and ``jax.vmap``.

    Args:
        learning_rate: a Python float, a scalar array (possibly traced), or an optax schedule
            ``step -> rate`` (then this is ``optax.scale_by_learning_rate(learning_rate)``).

    Returns:
        An ``optax.GradientTransformation``: stateless for a fixed rate, counting steps for a
        schedule.

    Raises:
        TypeError: for a rate that is not a number or schedule; at ``init`` / ``update``, for
            integer params or updates (torch's optimizers take floating params only).
        ValueError: for a negative or NaN rate.

    Example:
        >>> import jax.numpy as jnp
        >>> tx = scale_by_learning_rate(0.5)
        >>> tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))[0]["w"].tolist()
        [-0.5, -0.5]
    """
    check_hyperparam("learning_rate", learning_rate, schedule=True)
    if callable(learning_rate):
        inner = optax.scale_by_learning_rate(learning_rate)

        def init_schedule(params):
            _check_floating("params", params)
            return inner.init(params)

        def update_schedule(updates, state, params=None):
            _check_floating("updates", updates)
            return inner.update(updates, state, params)

        return optax.GradientTransformation(init_schedule, update_schedule)

    def init_fn(params):
        _check_floating("params", params)
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        _check_floating("updates", updates)
        out = jax.tree.map(lambda u: jnp.asarray(-learning_rate, u.dtype) * u, updates)
        return out, state

    return optax.GradientTransformation(init_fn, update_fn)


def _log(beta: Any) -> Any:
    if isinstance(beta, float | int):
        return math.log(beta) if beta > 0 else -math.inf
    return jnp.log(beta)


class TorchAdamState(NamedTuple):
    """State of :func:`scale_by_torch_adam`: the step count and torch's ``exp_avg`` / ``exp_avg_sq``.

    Attributes:
        count: the number of steps taken, an int32 scalar.
        mu: the first moments (torch's ``exp_avg``), a pytree like the params, in their dtypes.
        nu: the second moments (torch's ``exp_avg_sq``), a pytree like the params, in their dtypes.
    """

    count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride] (optax's field name)
    mu: PyTree
    nu: PyTree


def scale_by_torch_adam(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8
) -> optax.GradientTransformation:
    """torch's Adam direction, ``m_hat / (sqrt(v) / sqrt(1 - b2**t) + eps)`` with torch's operations.

    ``m`` is ``lerp(m, g, 1 - b1)``, ``v = v * b2 + (1 - b2) * g * g``, the output
    ``(m / (sqrt(v) / sqrt(bc2) + eps)) / bc1`` with the bias corrections ``1 - b**t`` computed as
    ``-expm1(t * log b)`` (no float32 cancellation; torch computes them in float64). The same maths as
    ``optax.scale_by_adam`` in torch's order, so trajectories stay within float32 ulps of torch's.
    Moments are kept in the params' dtype, as torch does.

    Args:
        b1: the first-moment decay (torch's ``betas[0]``), a float in [0, 1) or a scalar array.
        b2: the second-moment decay (torch's ``betas[1]``), a float in [0, 1) or a scalar array.
        eps: added to the bias-corrected ``sqrt(v)``, a float >= 0 or a scalar array.

    Returns:
        An ``optax.GradientTransformation`` with a :class:`TorchAdamState`; its updates are the
        direction only (chain a learning rate after it).

    Raises:
        ValueError: for a beta outside [0, 1) or a negative or NaN ``eps``; at ``update``, for a
            state of other params (another tree or shapes).
        TypeError: at ``update``, for updates whose dtype is not their parameter's (e.g. float32
            gradients of bfloat16 params: torch's gradients always have the parameter's dtype, and
            the moments stay in it, so the state's dtype would otherwise change silently).

    Example:
        >>> import jax.numpy as jnp
        >>> tx = scale_by_torch_adam()
        >>> p = {"w": jnp.zeros(2)}
        >>> u, _ = tx.update({"w": jnp.array([1.0, -4.0])}, tx.init(p))
        >>> [round(x, 5) for x in u["w"].tolist()]  # the first step is sign(g)
        [1.0, -1.0]
    """

    check_hyperparam("b1", b1, below=1.0)
    check_hyperparam("b2", b2, below=1.0)
    check_hyperparam("eps", eps)

    def init_fn(params):
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)
        return TorchAdamState(jnp.zeros([], jnp.int32), zeros(), zeros())

    def update_fn(updates, state, params=None):
        del params
        _check_state("state", state.mu, updates)
        count = jnp.asarray(optax.safe_increment(state.count))
        t = count.astype(jnp.float32)
        bc1 = -jnp.expm1(t * jnp.asarray(_log(b1), jnp.float32))
        bc2_sqrt = jnp.sqrt(-jnp.expm1(t * jnp.asarray(_log(b2), jnp.float32)))

        mu = jax.tree.map(
            lambda g, m: m + jnp.asarray(1 - b1, m.dtype) * (g - m),  # torch's lerp (weight < 0.5)
            updates,
            state.mu,
        )
        nu = jax.tree.map(
            lambda g, v: v * jnp.asarray(b2, v.dtype) + jnp.asarray(1 - b2, v.dtype) * g * g,
            updates,
            state.nu,
        )

        def direction(g, m, v):
            dt = m.dtype
            denom = jnp.sqrt(v) / bc2_sqrt.astype(dt) + jnp.asarray(eps, dt)
            return ((m / denom) / bc1.astype(dt)).astype(g.dtype)

        return jax.tree.map(direction, updates, mu, nu), TorchAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


class TorchMomentumState(NamedTuple):
    """State of :func:`torch_momentum`: the step count and torch's ``momentum_buffer``.

    Attributes:
        count: the number of steps taken, an int32 scalar (0 before the first step).
        trace: the momentum buffers (torch's ``momentum_buffer``), a pytree like the params.
    """

    count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride] (optax's field name)
    trace: PyTree


def torch_momentum(
    momentum: Any, dampening: Any = 0.0, nesterov: bool = False
) -> optax.GradientTransformation:
    """torch SGD's momentum: ``buf = g`` on the first step, then ``momentum * buf + (1 - dampening) * g``.

    The output is ``buf``, or ``g + momentum * buf`` with ``nesterov``. (``optax.trace`` has no
    dampening, and would damp the first step.)

    Args:
        momentum: the momentum factor, a float >= 0 or a scalar array.
        dampening: the dampening of the gradient after the first step, a float or a scalar array.
        nesterov: whether to return torch's Nesterov update ``g + momentum * buf`` instead of
            ``buf``.

    Returns:
        An ``optax.GradientTransformation`` with a :class:`TorchMomentumState`; its updates are the
        direction only (chain a learning rate after it).

    Raises:
        ValueError: for a negative or NaN momentum, a dampening outside [0, 1]; at ``update``, for a
            state of other params.
        TypeError: for a ``nesterov`` that is not a bool; at ``update``, for updates whose dtype is
            not their parameter's (as in :func:`scale_by_torch_adam`).

    Example:
        >>> import jax.numpy as jnp
        >>> tx = torch_momentum(0.9, dampening=0.5)
        >>> p = {"w": jnp.zeros(1)}
        >>> s = tx.init(p)
        >>> u, s = tx.update({"w": jnp.ones(1)}, s)
        >>> u, s = tx.update({"w": jnp.ones(1)}, s)
        >>> round(float(u["w"][0]), 4)  # 0.9 * 1 + 0.5 * 1
        1.4
    """

    check_hyperparam("momentum", momentum)
    check_hyperparam("dampening", dampening, at_most=1.0)
    check_bool("nesterov", nesterov)

    def init_fn(params):
        return TorchMomentumState(jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        del params
        _check_state("state", state.trace, updates)
        first = state.count == 0

        def buf(g, b):
            dt = b.dtype
            later = b * jnp.asarray(momentum, dt) + jnp.asarray(1 - dampening, dt) * g
            return jnp.where(first, g.astype(dt), later)

        trace = jax.tree.map(buf, updates, state.trace)
        if nesterov:
            out = jax.tree.map(
                lambda g, b: (g + jnp.asarray(momentum, b.dtype) * b).astype(g.dtype),
                updates,
                trace,
            )
        else:
            out = jax.tree.map(lambda g, b: b.astype(g.dtype), updates, trace)
        return out, TorchMomentumState(jnp.asarray(optax.safe_increment(state.count)), trace)

    return optax.GradientTransformation(init_fn, update_fn)
