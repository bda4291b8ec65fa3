"""The u-μP learning-rate rules of ``unit_scaling.optim`` (0.3.5) as per-leaf factors and optax chains.

``unit_scaling.optim`` gives every parameter its own torch param group with
``lr_p = lr * factor(p)`` and, with independent weight decay (the default), ``wd_p = wd / lr_p``.
The factor depends on the parameter's u-μP label (``mup_type``: ``"weight"``, ``"bias"``, ``"norm"``
or ``"output"``), its fan-in and the depth of the stack it lives in:

============================  =========================  ===========================================
mup_type                      Adam / AdamW / SGD(None)   SGD(readout_constraint="to_output_scale")
============================  =========================  ===========================================
``"weight"``                  ``depth**-0.5 / √fan_in``   ``depth**-0.5 * √fan_in``
``"bias"``, ``"norm"``        ``depth**-0.5``             ``depth**-0.5 * shape[0]``
``"output"``                  ``depth**-0.5``             ``depth**-0.5``
============================  =========================  ===========================================

``depth**-0.5`` is 1 outside a depth-scaled stack. fan_in is read in the JAX layout
``(..., in, out)``: ``prod(shape[:-1])`` for a kernel, ``shape[0]`` for a vector (torch's
``(out, in)`` / ``(out, in, k)`` give the same numbers). An embedding table ``(num, features)`` is
the exception: the reference's fan-in is ``features``; set such a leaf's factor by hand
(``depth**-0.5 / √features`` for Adam).
"""

import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import traverse_util

from jaxlinear._checks import check_choice
from jaxlinear._typing import PyTree
from jaxlinear.nn._unit_scaled import MUP_TYPES, UnitScaledLinear
from jaxlinear.optim._lr_factors import scale_by_lr_factors
from jaxlinear.optim._weight_decay import add_decayed_weights_per_leaf

__all__ = [
    "TorchAdamState",
    "mup_types",
    "unit_scaling_adam",
    "unit_scaling_adamw",
    "unit_scaling_lr_scales",
    "unit_scaling_sgd",
    "unit_scaling_weight_decays",
]

OPTIMIZERS = ("adam", "adamw", "sgd")
READOUT_CONSTRAINTS = (None, "to_output_scale")


def _flat(tree: PyTree) -> dict[tuple[str, ...], Any]:
    return traverse_util.flatten_dict(nn.unbox(tree) if tree is not None else {})


def mup_types(module: nn.Module, variables: PyTree, *args: Any, **kwargs: Any) -> PyTree:
    """The u-μP label of every parameter of ``module``: a nested dict like ``variables["params"]``.

    ``module.apply(variables, *args, **kwargs)`` is traced abstractly (no compute) and every
    :class:`~jaxlinear.UnitScaledLinear` / :class:`~jaxlinear.LinearReadout` met on the way labels its
    kernel with its ``weight_mup_type`` and its bias ``"bias"``, as the reference's ``uu.Parameter``
    tags do. Parameters of other modules get None; set their label by hand (``"weight"``,
    ``"bias"``, ``"norm"`` or ``"output"``) or let the rules treat them as non-unit-scaled. A single
    layer needs no inputs: ``mup_types(jl.UnitScaledLinear(8), variables)``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.LinearReadout(3, use_bias=True)
        >>> x = jnp.ones((2, 4))
        >>> mup_types(layer, layer.init(jax.random.key(0), x), x)
        {'bias': 'bias', 'kernel': 'output'}
    """
    if not args and not kwargs and isinstance(module, UnitScaledLinear):  # one layer: no tracing
        return {k: module.weight_mup_type if k == "kernel" else "bias" for k in variables["params"]}
    found: dict[tuple[str, ...], dict[str, str]] = {}

    def interceptor(next_fun, f_args, f_kwargs, context):
        m = context.module
        if isinstance(m, UnitScaledLinear) and context.method_name == "__call__":
            found[tuple(m.scope.path)] = {"kernel": m.weight_mup_type, "bias": "bias"}
        return next_fun(*f_args, **f_kwargs)

    with nn.intercept_methods(interceptor):
        jax.eval_shape(functools.partial(module.apply, **kwargs), variables, *args)
    flat = _flat(variables["params"])
    return traverse_util.unflatten_dict(
        {path: found.get(path[:-1], {}).get(path[-1]) for path in flat}
    )


def _depth_of(path: tuple[str, ...], depths: Mapping[str, int]) -> int | None:
    name = "/".join(path)
    hits = [p for p in depths if name == p or name.startswith(p.rstrip("/") + "/")]
    if len(hits) > 1:
        raise ValueError(
            f"`depths` must not nest depth-scaled stacks (the reference forbids it), got {hits} "
            f"for the parameter {name!r}."
        )
    return depths[hits[0]] if hits else None


def _fan_in(shape: tuple[int, ...], name: str) -> int:
    if len(shape) == 0:
        raise ValueError(f"a u-μP parameter must have at least one dim, got a scalar at {name!r}.")
    return shape[0] if len(shape) == 1 else math.prod(shape[:-1])


def unit_scaling_lr_scales(
    params: PyTree,
    types: PyTree,
    optimizer: str = "adam",
    *,
    readout_constraint: str | None = None,
    depths: Mapping[str, int] | None = None,
    allow_non_unit_scaling_params: bool = False,
) -> PyTree:
    """Per-parameter learning-rate factors of ``unit_scaling.optim`` (``lr_p = lr * factor``).

    Args:
        params: the params tree (only shapes are read).
        types: the u-μP label of every leaf (:func:`mup_types`), None for non-unit-scaled leaves.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        readout_constraint: for SGD, the ``constraint`` of the model's ``LinearReadout``: None or
            ``"to_output_scale"`` (the reference handles only these).
        depths: depth-scaled stacks (``uu.DepthSequential``): ``{"path/prefix": depth}``, where
            ``depth`` is the number of layers of the stack; every parameter under the prefix gets
            ``depth**-0.5``.
        allow_non_unit_scaling_params: give leaves labelled None the factor 1 instead of raising.

    Returns:
        A tree like ``params`` with a Python float per leaf (for
        :func:`jaxlinear.optim.scale_by_lr_factors`).

    Raises:
        ValueError: for an unknown optimizer, readout constraint or label, a None label (unless
            allowed), a scalar parameter or nested depth prefixes.

    Example:
        >>> import jax.numpy as jnp
        >>> params = {"hidden": {"kernel": jnp.zeros((16, 8))}, "out": {"kernel": jnp.zeros((8, 2))}}
        >>> types = {"hidden": {"kernel": "weight"}, "out": {"kernel": "output"}}
        >>> unit_scaling_lr_scales(params, types, "adam", depths={"hidden": 4})
        {'hidden': {'kernel': 0.125}, 'out': {'kernel': 1.0}}
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("readout_constraint", readout_constraint, READOUT_CONSTRAINTS)
    depths = dict(depths or {})
    for prefix, depth in depths.items():
        if isinstance(depth, bool) or not isinstance(depth, int) or depth <= 0:
            raise ValueError(f"`depths[{prefix!r}]` must be an int > 0, got {depth!r}.")
    flat_params = _flat(params)
    flat_types = _flat(types)
    if set(flat_types) != set(flat_params):
        missing = sorted("/".join(p) for p in set(flat_params) - set(flat_types))
        extra = sorted("/".join(p) for p in set(flat_types) - set(flat_params))
        raise ValueError(
            f"`types` must label every parameter of `params`; missing {missing}, unknown {extra}."
        )
    unused = [p for p in depths if not any(_depth_of(path, {p: 1}) for path in flat_params)]
    if unused:
        raise ValueError(f"`depths` prefixes must name parameters of `params`, got {unused}.")
    sgd_to_output = optimizer == "sgd" and readout_constraint == "to_output_scale"
    factors = {}
    for path, leaf in flat_params.items():
        name = "/".join(path)
        mup_type = flat_types[path]
        if mup_type is None:
            if not allow_non_unit_scaling_params:
                raise ValueError(
                    f"every parameter must have a u-μP label in {MUP_TYPES}, got None for {name!r}"
                    " (a non-unit-scaled module?); label it or pass "
                    "`allow_non_unit_scaling_params=True` (factor 1)."
                )
            factors[path] = 1.0
            continue
        check_choice(f"types[{name!r}]", mup_type, MUP_TYPES)
        depth = _depth_of(path, depths)
        scale = 1 if depth is None else depth**-0.5
        shape = tuple(jnp.shape(leaf))
        if mup_type in ("bias", "norm"):
            factor = scale * shape[0] if sgd_to_output else scale  # the reference's shape[0]
        elif mup_type == "weight":
            factor = scale * _fan_in(shape, name) ** (0.5 if sgd_to_output else -0.5)
        else:  # "output"
            factor = scale
        factors[path] = float(factor)
    return traverse_util.unflatten_dict(factors)


def _base_lr(learning_rate: float | optax.Schedule, base_learning_rate: float | None) -> float:
    if base_learning_rate is not None:
        return float(base_learning_rate)
    if callable(learning_rate):
        raise ValueError(
            "`base_learning_rate` must be given when `learning_rate` is a schedule and the weight "
            "decay is independent of the learning rate (the reference divides by the lr passed to "
            "the optimizer, before any scheduler)."
        )
    return float(learning_rate)


def unit_scaling_weight_decays(
    lr_factors: PyTree,
    learning_rate: float,
    weight_decay: float,
    *,
    independent_weight_decay: bool = True,
) -> PyTree:
    """Per-parameter weight decay of ``unit_scaling.optim``: ``wd / (lr * factor)`` (or ``wd``).

    With AdamW's decoupled decay, ``lr_p * wd_p = wd``: every parameter decays by ``wd`` per step,
    whatever its learning rate.

    Example:
        >>> unit_scaling_weight_decays({"w": 0.25, "b": 1.0}, 0.1, 1e-3)
        {'b': 0.01, 'w': 0.04}
    """
    if not independent_weight_decay:
        return jax.tree.map(lambda f: float(weight_decay), lr_factors)
    return jax.tree.map(lambda f: float(weight_decay) / float(learning_rate * f), lr_factors)


def _decays(lr_factors, learning_rate, base_learning_rate, weight_decay, independent_weight_decay):
    if not weight_decay:
        return None
    lr = _base_lr(learning_rate, base_learning_rate) if independent_weight_decay else 1.0
    return unit_scaling_weight_decays(
        lr_factors, lr, weight_decay, independent_weight_decay=independent_weight_decay
    )


def _log(beta: float) -> float:
    return math.log(beta) if beta > 0 else -math.inf


class TorchAdamState(NamedTuple):
    """State of :func:`unit_scaling_adam` / :func:`unit_scaling_adamw`: step count and moments."""

    count: jax.Array
    mu: PyTree
    nu: PyTree


def _torch_adam(
    learning_rate: float | optax.Schedule,
    lr_factors: PyTree,
    decays: PyTree | None,
    *,
    b1: float,
    b2: float,
    eps: float,
    decoupled: bool,
) -> optax.GradientTransformation:
    """torch's single-tensor Adam/AdamW step with a per-leaf lr ``learning_rate * factor``.

    The operations and their order are torch's (``lerp`` for the first moment,
    ``sqrt(v) / sqrt(1 - b2**t) + eps``, step size ``lr_p / (1 - b1**t)``, AdamW's
    ``p * (1 - lr_p * wd_p)`` before the step), so trajectories stay within float32 ulps of torch's
    rather than drifting by the different roundings of ``optax.adamw``.
    """

    def init_fn(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return TorchAdamState(jnp.zeros([], jnp.int32), zeros, jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        if decays is not None and params is None:
            raise ValueError("`params` must be passed to `update` for weight decay, got None.")
        _check_same_structure("lr_factors", lr_factors, updates)
        count = state.count + 1
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        t = count.astype(jnp.float32)
        # 1 - b**t without float32 cancellation (torch computes it in float64): -expm1(t * log b)
        bc1 = -jnp.expm1(t * jnp.float32(_log(b1)))
        bc2_sqrt = jnp.sqrt(-jnp.expm1(t * jnp.float32(_log(b2))))
        wds = decays if decays is not None else jax.tree.map(lambda f: 0.0, lr_factors)
        ps = params if params is not None else updates

        def leaf(g, m, v, p, f, wd):
            lr_p = lr * f
            if wd and not decoupled:  # Adam: L2 decay enters the gradient
                g = g + jnp.asarray(wd, g.dtype) * p
            m = m + jnp.asarray(1 - b1, m.dtype) * (g - m)  # torch's lerp (weight < 0.5)
            v = v * jnp.asarray(b2, v.dtype) + jnp.asarray(1 - b2, v.dtype) * g * g
            denom = jnp.sqrt(v) / bc2_sqrt.astype(v.dtype) + jnp.asarray(eps, v.dtype)
            u = jnp.asarray(-lr_p / bc1, m.dtype) * (m / denom)
            if wd and decoupled:  # AdamW: p * (1 - lr_p * wd_p) first (exact difference)
                u = (p * jnp.asarray(1 - lr_p * wd, p.dtype) - p) + u
            return u.astype(g.dtype), m, v

        out = jax.tree.map(leaf, updates, state.mu, state.nu, ps, lr_factors, wds)
        is_triple = lambda x: isinstance(x, tuple) and len(x) == 3
        pick = lambda i: jax.tree.map(lambda o: o[i], out, is_leaf=is_triple)
        return pick(0), TorchAdamState(count, pick(1), pick(2))

    return optax.GradientTransformation(init_fn, update_fn)


def _check_same_structure(name: str, tree: PyTree, updates: PyTree) -> None:
    if jax.tree.structure(tree) != jax.tree.structure(updates):
        raise ValueError(
            f"`{name}` must have the same tree structure as the updates (one float per parameter),"
            f" got {jax.tree.structure(tree)} for updates {jax.tree.structure(updates)}."
        )


def unit_scaling_adam(
    learning_rate: float | optax.Schedule,
    lr_factors: PyTree,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    independent_weight_decay: bool = True,
    base_learning_rate: float | None = None,
) -> optax.GradientTransformation:
    """``unit_scaling.optim.Adam``: torch Adam (L2 weight decay) with u-μP per-parameter lrs.

    Each parameter follows torch's Adam with ``lr_p = learning_rate * factor`` and
    ``g + wd_p * p`` as its gradient, ``wd_p`` from :func:`unit_scaling_weight_decays`.
    ``base_learning_rate`` is the lr the weight decay is made independent of (needed only when
    ``learning_rate`` is a schedule). For a composable chain use
    ``optax.chain(optax.scale_by_adam(), jl.optim.scale_by_lr_factors(f), optax.scale(-lr))``
    (same maths, optax's roundings).

    Example:
        >>> import jax.numpy as jnp
        >>> p = {"w": jnp.ones((4, 2))}
        >>> tx = unit_scaling_adam(0.1, unit_scaling_lr_scales(p, {"w": "weight"}))
        >>> u, _ = tx.update({"w": jnp.ones((4, 2))}, tx.init(p), p)
        >>> round(float(u["w"][0, 0]), 4)  # -0.1 / √4
        -0.05
    """
    decays = _decays(
        lr_factors, learning_rate, base_learning_rate, weight_decay, independent_weight_decay
    )
    return _torch_adam(learning_rate, lr_factors, decays, b1=b1, b2=b2, eps=eps, decoupled=False)


def unit_scaling_adamw(
    learning_rate: float | optax.Schedule,
    lr_factors: PyTree,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    independent_weight_decay: bool = True,
    base_learning_rate: float | None = None,
) -> optax.GradientTransformation:
    """``unit_scaling.optim.AdamW``: decoupled weight decay with u-μP per-parameter lrs.

    Each step is torch's AdamW, ``p * (1 - lr_p * wd_p) - lr_p * adam``, with
    ``lr_p = learning_rate * factor`` and, by default, ``wd_p = wd / lr_p``: every parameter decays
    by ``wd`` per step. The default ``weight_decay`` is 0, as in ``unit_scaling.optim.AdamW``
    (torch's own AdamW defaults to 1e-2).

    Example:
        >>> import jax.numpy as jnp
        >>> p = {"w": jnp.ones((4, 2))}
        >>> tx = unit_scaling_adamw(0.1, {"w": 0.5}, weight_decay=0.01)
        >>> u, _ = tx.update({"w": jnp.zeros((4, 2))}, tx.init(p), p)
        >>> round(float(u["w"][0, 0]), 6)  # only the decay: -wd * p
        -0.01
    """
    decays = _decays(
        lr_factors, learning_rate, base_learning_rate, weight_decay, independent_weight_decay
    )
    return _torch_adam(learning_rate, lr_factors, decays, b1=b1, b2=b2, eps=eps, decoupled=True)


def unit_scaling_sgd(
    learning_rate: float | optax.Schedule,
    lr_factors: PyTree,
    *,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    independent_weight_decay: bool = True,
    base_learning_rate: float | None = None,
) -> optax.GradientTransformation:
    """``unit_scaling.optim.SGD``: torch SGD (L2 weight decay, momentum without dampening).

    Build ``lr_factors`` with ``unit_scaling_lr_scales(..., "sgd", readout_constraint=c)`` where
    ``c`` is the ``LinearReadout``'s constraint.

    Example:
        >>> import jax.numpy as jnp
        >>> p = {"w": jnp.ones((4, 2))}
        >>> f = unit_scaling_lr_scales(p, {"w": "weight"}, "sgd", readout_constraint="to_output_scale")
        >>> tx = unit_scaling_sgd(0.1, f)
        >>> u, _ = tx.update({"w": jnp.ones((4, 2))}, tx.init(p), p)
        >>> round(float(u["w"][0, 0]), 4)  # -0.1 * √4
        -0.2
    """
    decays = _decays(
        lr_factors, learning_rate, base_learning_rate, weight_decay, independent_weight_decay
    )
    return optax.chain(
        add_decayed_weights_per_leaf(decays) if decays is not None else optax.identity(),
        optax.trace(decay=momentum, nesterov=nesterov) if momentum else optax.identity(),
        scale_by_lr_factors(lr_factors),
        optax.scale_by_learning_rate(learning_rate),
    )
