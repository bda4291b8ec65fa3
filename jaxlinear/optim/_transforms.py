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

from jaxlinear._typing import PyTree

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
        ValueError: at ``update``, if the factors' tree does not match the updates'.

    Example:
        >>> import jax.numpy as jnp
        >>> tx = scale_by_lr_factors({"kernel": 0.5, "bias": 2.0})
        >>> g = {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> float(u["kernel"][0, 0]), float(u["bias"][0])
        (0.5, 2.0)
    """
    fixed = None if callable(factors) else _pure(factors)

    def update_fn(updates, state, params=None):
        del params
        boxed, updates = updates, _unboxed(updates)  # partitioned params: factors of the arrays
        f = factors(updates) if fixed is None else fixed
        check_same_structure("factors", f, updates)
        out = jax.tree.map(lambda s, u: u if _is_skipped(u) else u * s, f, updates)
        return _reboxed(boxed, out), state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)


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
        ValueError: at ``update``, if ``params`` is None or the factors' tree does not match the
            updates'.

    Example:
        >>> import jax.numpy as jnp
        >>> tx = add_decayed_weights_per_leaf(0.5, {"w": 1.0, "b": 0.0})
        >>> p = {"w": jnp.full(2, 2.0), "b": jnp.ones(2)}
        >>> u, _ = tx.update({"w": jnp.zeros(2), "b": jnp.zeros(2)}, tx.init(p), p)
        >>> u["w"].tolist(), u["b"].tolist()
        ([1.0, 1.0], [0.0, 0.0])
    """
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

    Example:
        >>> import jax.numpy as jnp
        >>> tx = scale_by_learning_rate(0.5)
        >>> tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))[0]["w"].tolist()
        [-0.5, -0.5]
    """
    if callable(learning_rate):
        return optax.scale_by_learning_rate(learning_rate)

    def update_fn(updates, state, params=None):
        del params
        out = jax.tree.map(lambda u: jnp.asarray(-learning_rate, u.dtype) * u, updates)
        return out, state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)


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

    Example:
        >>> import jax.numpy as jnp
        >>> tx = scale_by_torch_adam()
        >>> p = {"w": jnp.zeros(2)}
        >>> u, _ = tx.update({"w": jnp.array([1.0, -4.0])}, tx.init(p))
        >>> [round(x, 5) for x in u["w"].tolist()]  # the first step is sign(g)
        [1.0, -1.0]
    """

    def init_fn(params):
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)
        return TorchAdamState(jnp.zeros([], jnp.int32), zeros(), zeros())

    def update_fn(updates, state, params=None):
        del params
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

    def init_fn(params):
        return TorchMomentumState(jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        del params
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
