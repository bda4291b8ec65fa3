"""Simulated low-precision matmuls: ``simulate_format`` / ``simulate_fp8`` as function transforms.

``unit_scaling.transforms.simulate_format`` rewrites a torch module's graph so that the inputs and
weight of every ``F.linear`` / ``U.linear`` / attention are rounded to a forward format and the
gradient of their output to a backward format; the matmul itself still runs in float32. Here the
function is traced to a jaxpr and re-evaluated with the same rounding around every matrix product
(``dot_general``: ``jnp.matmul``, ``einsum``, ``nn.Dense``, every jaxlinear layer):

- forward: each floating operand is rounded to ``fwd_format`` (straight-through gradient);
- backward: the product's output gradient is rounded to ``bwd_format`` (after the bias add when
  the product's only use is ``+ bias``, so that the bias gradient is rounded too, as the reference
  rounds the gradient of ``F.linear``'s output).

A product inside a ``custom_vjp``/``custom_jvp`` function (``jl.scaling.linear``,
``jl.UnitScaledLinear``) is rounded at that function's boundary: its inputs that feed a product
(the input and kernel, not the bias) before the function (before any scale it applies, as the
reference rounds ``U.linear``'s arguments), and the gradient of its outputs. Differences from the
reference: every matrix product is rounded, not just linear/attention calls (so an attention's two
products are rounded separately rather than at ``q``/``k``/``v``); stochastic rounding needs a key.
"""

import functools
import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, jaxprs_in_params

from jaxlinear._typing import PRNGKey
from jaxlinear.scaling._formats import Format, FPFormat, _cast, _cast_grad, _check_format
from jaxlinear.scaling._interpret import (
    REMAT,
    bind,
    check_fn,
    contains,
    evaluate,
    inner,
    refuse,
    trace,
)

__all__ = ["simulate_format", "simulate_fp8"]

_DOT = ("dot_general",)
_CUSTOM = ("custom_vjp_call", "custom_jvp_call")


_SHAPE_ONLY = ("reshape", "squeeze", "expand_dims")
_CONTROL_FLOW = ("scan", "while", "cond")


def _is_product(eqn: JaxprEqn) -> bool:
    """A matrix product, or a custom-derivative function around one (``functional.linear``'s)."""
    if eqn.primitive.name in _DOT:
        return True
    if eqn.primitive.name not in _CUSTOM:
        return False
    call = eqn.params["call_jaxpr"]
    return contains(call.jaxpr if isinstance(call, ClosedJaxpr) else call, _DOT)


def _stochastic(fmt: Any) -> bool:
    return isinstance(fmt, FPFormat) and fmt.rounding == "stochastic"


def _feeds_dot(jaxpr: Jaxpr) -> list[bool]:
    """For each input of ``jaxpr``: does it reach an operand of a matrix product?"""
    reach: set[Any] = set()
    for eqn in reversed(jaxpr.eqns):
        nested = any(contains(sub, _DOT) for sub in jaxprs_in_params(eqn.params))
        if eqn.primitive.name in _DOT or nested or any(o in reach for o in eqn.outvars):
            reach.update(v for v in eqn.invars if not isinstance(v, Literal))
    return [v in reach for v in jaxpr.invars]


def _fed_by_dot(jaxpr: Jaxpr) -> list[bool]:
    """For each output of ``jaxpr``: does it depend on a matrix product's result?"""
    dep: set[Any] = set()
    for eqn in jaxpr.eqns:
        nested = any(contains(sub, _DOT) for sub in jaxprs_in_params(eqn.params))
        ins = [v for v in eqn.invars if not isinstance(v, Literal)]
        if eqn.primitive.name in _DOT or nested or any(v in dep for v in ins):
            dep.update(eqn.outvars)
    return [not isinstance(v, Literal) and v in dep for v in jaxpr.outvars]


def _is_float(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.floating)


class _Rounder:
    """The rule that rounds around every matrix product; one key per rounding site."""

    def __init__(self, fwd: Any, bwd: Any, key: PRNGKey | None) -> None:
        self.fwd, self.bwd, self.key = fwd, bwd, key
        self.sites = itertools.count()
        self.bias_add: dict[Any, Any] = {}  # dot output -> the add of a bias that alone uses it

    def prepare(self, jaxpr: Jaxpr) -> None:
        """Find ``dot -> add(bias)`` pairs: the output gradient is rounded after the bias add, as
        the reference rounds the gradient of ``F.linear``'s output (so the bias gets it too)."""
        uses: dict[Any, list[JaxprEqn]] = {}
        for eqn in jaxpr.eqns:
            for v in eqn.invars:
                if not isinstance(v, Literal):
                    uses.setdefault(v, []).append(eqn)
        outs = set(v for v in jaxpr.outvars if not isinstance(v, Literal))
        for eqn in jaxpr.eqns:
            if len(eqn.outvars) != 1 or not _is_product(eqn):
                continue
            (v,) = eqn.outvars
            w = v  # follow shape-only ops (jl.Linear flattens and restores the batch dims)
            while len(uses.get(w, [])) == 1 and uses[w][0].primitive.name in _SHAPE_ONLY:
                w = uses[w][0].outvars[0]
            users = uses.get(w, [])
            if len(users) == 1 and users[0].primitive.name == "add" and w not in outs:
                self.bias_add[v] = users[0].outvars[0]
        self.deferred = set(self.bias_add.values())

    def evaluate(self, jaxpr: Jaxpr, consts: Any, args: list[Any]) -> list[Any]:
        self.prepare(jaxpr)
        return evaluate(jaxpr, consts, args, self)

    def _key(self, fmt: Any) -> PRNGKey | None:
        if not _stochastic(fmt):
            return None
        if self.key is None:
            raise ValueError(
                "stochastic rounding inside a scan/cond/while body is not supported; use "
                "rounding='nearest' or a float8 dtype there."
            )
        return jax.random.fold_in(self.key, next(self.sites))

    def round_fwd(self, x: Any) -> Any:
        if self.fwd is None or not _is_float(x):
            return x
        return _cast(x, self.fwd, self._key(self.fwd))

    def round_bwd(self, x: Any) -> Any:
        if self.bwd is None or not _is_float(x):
            return x
        return _cast_grad(x, self.bwd, self._key(self.bwd))

    def __call__(self, eqn: JaxprEqn, invals: list[Any]) -> list[Any] | None:
        name = eqn.primitive.name
        if name in _DOT:
            outs = bind(eqn, [self.round_fwd(v) for v in invals])
            if eqn.outvars[0] in self.bias_add:
                return outs
            return [self.round_bwd(o) for o in outs]
        if name == "add" and eqn.outvars[0] in self.deferred:
            return [self.round_bwd(o) for o in bind(eqn, invals)]
        body = inner(eqn)
        if body is not None:
            if not contains(body[0], _DOT):
                return None
            if name in REMAT:  # keep the rematerialisation: the rounded body, checkpointed
                run = lambda *a: self.evaluate(body[0], body[1], list(a))  # noqa: E731
                policy = eqn.params.get("policy")
                prevent_cse = eqn.params.get("prevent_cse", True)
                return list(jax.checkpoint(run, policy=policy, prevent_cse=prevent_cse)(*invals))
            return self.evaluate(*body, invals)
        if name in _CUSTOM:
            call = eqn.params["call_jaxpr"]
            call = call.jaxpr if isinstance(call, ClosedJaxpr) else call
            if not contains(call, _DOT):
                return None
            if len(call.invars) != len(invals):
                refuse(eqn, "simulate_format", "its inputs do not match its body's")
            feeds = _feeds_dot(call)
            ins = [self.round_fwd(v) if f else v for v, f in zip(invals, feeds, strict=True)]
            outs = bind(eqn, ins)
            fed = _fed_by_dot(call)
            return [
                self.round_bwd(o) if f and v not in self.bias_add else o
                for o, f, v in zip(outs, fed, eqn.outvars, strict=True)
            ]
        return self._control_flow(eqn, invals)

    def _control_flow(self, eqn: JaxprEqn, invals: list[Any]) -> list[Any] | None:
        """scan / cond / while: the same rule inside their bodies (new jaxprs, same signature).
        Any other higher-order primitive around a matrix product is refused (shard_map, ...)."""
        if not any(contains(sub, _DOT) for sub in jaxprs_in_params(eqn.params)):
            return None
        if eqn.primitive.name not in _CONTROL_FLOW:
            refuse(eqn, "simulate_format", "a matrix product inside it would not be rounded")
        inside = _Rounder(self.fwd, self.bwd, None)

        def rewrite(v: Any) -> Any:
            if isinstance(v, tuple):
                return tuple(rewrite(u) for u in v)
            if isinstance(v, ClosedJaxpr) and contains(v.jaxpr, _DOT):
                avals = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in v.in_avals]
                run = lambda *a, v=v: inside.evaluate(v.jaxpr, v.consts, list(a))
                return jax.make_jaxpr(run)(*avals)
            return v

        params = {k: rewrite(v) for k, v in eqn.params.items()}
        return bind(eqn.replace(params=params), invals)


def simulate_format(
    fn: Callable[..., Any], fwd_format: Format | None, bwd_format: Format | None
) -> Callable[..., Any]:
    """``fn`` with every matrix product's inputs rounded to ``fwd_format`` and gradients to
    ``bwd_format`` (``unit_scaling.transforms.simulate_format``, as a JAX function transform).

    The result takes ``fn``'s arguments, plus a keyword ``rounding_key`` (a PRNG key) when a
    format rounds stochastically; each rounding site draws from its own ``fold_in`` of it. It
    works under ``jit``, ``grad`` and ``vmap``, on a flax ``model.apply`` or any function.
    Arithmetic stays in the inputs' dtype (the reference simulates in float32): the point is the
    formats' range and resolution, not speed.

    Args:
        fn: the function (e.g. ``model.apply`` or a loss function).
        fwd_format: an :class:`FPFormat`, a float dtype (``jnp.float8_e4m3fn``: XLA's
            round-to-nearest-even cast after saturating at the dtype's largest value), or None.
        bwd_format: the same, for the output gradient of each product.

    Returns:
        The transformed function.

    Raises:
        TypeError: for a ``fn`` that is not callable or a format that is neither an
            :class:`FPFormat` nor a float dtype.
        ValueError: for a float dtype without zero or negatives (``float8_e8m0fnu``).
        NotImplementedError: when called, if ``fn`` holds a matrix product inside a higher-order
            primitive other than ``jit``, ``jax.checkpoint``, ``custom_jvp``/``custom_vjp``,
            ``scan``, ``while`` and ``cond`` (e.g. ``shard_map``): it would not be rounded.
            ``jax.checkpoint`` stays a checkpoint around the rounded body.

    Example:
        >>> fmt = FPFormat(4, 3, "nearest")
        >>> f = simulate_format(lambda a, b: a @ b, fmt, None)
        >>> f(jnp.array([[1.0625]]), jnp.array([[1.0]])).tolist()  # 1.0625 rounds to 1 in E4M3
        [[1.0]]
    """
    check_fn(fn)
    fwd = None if fwd_format is None else _check_format(fwd_format, "fwd_format")
    bwd = None if bwd_format is None else _check_format(bwd_format, "bwd_format")
    stochastic = _stochastic(fwd) or _stochastic(bwd)

    @functools.wraps(fn)
    def wrapped(*args: Any, rounding_key: PRNGKey | None = None, **kwargs: Any) -> Any:
        if stochastic and rounding_key is None:
            raise ValueError(
                f"`rounding_key` must be a PRNG key: the formats ({fwd}, {bwd}) round "
                "stochastically, got None."
            )
        traced = trace(fn, *args, **kwargs)
        rounder = _Rounder(fwd, bwd, rounding_key)
        rounder.prepare(traced.closed.jaxpr)
        return traced.run(rounder)

    return wrapped


def simulate_fp8(fn: Callable[..., Any], rounding: str = "stochastic") -> Callable[..., Any]:
    """``simulate_format(fn, FPFormat(4, 3), FPFormat(5, 2))``: E4M3 forward, E5M2 backward.

    ``unit_scaling.transforms.simulate_fp8`` (whose formats round stochastically: pass
    ``rounding_key=`` to the result, or ``rounding="nearest"``). The reference's E4M3 is IEEE-like
    (largest value 240); for OCP ``float8_e4m3fn`` (448) use
    ``simulate_format(fn, jnp.float8_e4m3fn, jnp.float8_e5m2)``.

    Args:
        fn: the function (e.g. ``model.apply`` or a loss function).
        rounding: ``"stochastic"`` (the reference's) or ``"nearest"`` (round to nearest even),
            for both formats.

    Returns:
        The transformed function; with stochastic rounding it needs a ``rounding_key=`` keyword.

    Raises:
        ValueError: if ``rounding`` is not ``"stochastic"`` or ``"nearest"``.

    Example:
        >>> f = simulate_fp8(lambda a, b: a @ b, rounding="nearest")
        >>> f(jnp.array([[300.0]]), jnp.array([[1.0]])).tolist()  # saturates at 240
        [[240.0]]
    """
    return simulate_format(fn, FPFormat(4, 3, rounding), FPFormat(5, 2, rounding))
