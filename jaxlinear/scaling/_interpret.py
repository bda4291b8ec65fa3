"""A small jaxpr interpreter shared by :func:`simulate_format` and :func:`track_scales`.

A function is traced once to a jaxpr (:func:`trace`) and evaluated equation by equation
(:func:`evaluate`); a ``rule`` may replace any equation's evaluation. Evaluation binds the same
primitives again, so the result is traceable: it runs under ``jit``, ``grad`` and ``vmap``, and
custom derivative rules (``custom_vjp``/``custom_jvp``) are kept.
"""

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, jaxprs_in_params

__all__ = ["Traced", "check_fn", "contains", "evaluate", "has_body", "refuse", "trace"]

# calls that only group equations: their body may be evaluated in place (inlined). ``remat2`` is
# ``jax.checkpoint`` / ``nn.remat`` (its numbers are its body's; only memory differs)
INLINE = ("jit", "pjit", "closed_call", "core_call", "checkpoint", "remat", "remat2")
REMAT = ("checkpoint", "remat", "remat2")

Rule = Callable[[JaxprEqn, list[Any]], list[Any] | None]


class Traced:
    """``fn(*args, **kwargs)`` as a closed jaxpr over its array leaves; other leaves stay static."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        with_path, treedef = jax.tree_util.tree_flatten_with_path((args, kwargs))
        leaves = [leaf for _, leaf in with_path]
        self.dynamic = [i for i, leaf in enumerate(leaves) if _is_array(leaf)]
        self.paths = [jax.tree_util.keystr(with_path[i][0]) for i in self.dynamic]
        static = list(leaves)

        def flat_fn(*dyn: Any) -> Any:
            full = list(static)
            for i, v in zip(self.dynamic, dyn, strict=True):
                full[i] = v
            a, k = jax.tree.unflatten(treedef, full)
            return fn(*a, **k)

        self.args = [leaves[i] for i in self.dynamic]
        self.closed, out_shape = jax.make_jaxpr(flat_fn, return_shape=True)(*self.args)
        self.out_tree = jax.tree.structure(out_shape)

    def run(self, rule: Rule | None = None, args: Sequence[Any] | None = None) -> Any:
        """Evaluate with ``rule``; returns the output pytree."""
        outs = evaluate(self.closed.jaxpr, self.closed.consts, args or self.args, rule)
        return jax.tree.unflatten(self.out_tree, outs)


def trace(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Traced:
    return Traced(fn, args, kwargs)


def check_fn(fn: Any) -> None:
    """Raise ``TypeError`` unless ``fn`` is callable."""
    if not callable(fn):
        raise TypeError(f"`fn` must be a callable (a function or model.apply), got {fn!r:.80}.")


def has_body(eqn: JaxprEqn) -> bool:
    """Whether ``eqn`` is a higher-order primitive (its params hold a jaxpr)."""
    return any(True for _ in jaxprs_in_params(eqn.params))


def refuse(eqn: JaxprEqn, transform: str, why: str) -> None:
    """Raise ``NotImplementedError`` for a higher-order primitive ``transform`` cannot look inside."""
    raise NotImplementedError(
        f"`fn` calls `{eqn.primitive.name}`, a higher-order primitive that {transform} does not "
        f"look inside ({why}); its result would silently be the untransformed one. Supported: "
        "jit, jax.checkpoint/remat, custom_jvp/custom_vjp functions, scan, while and cond."
    )


def _is_array(x: Any) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic)


def contains(jaxpr: Jaxpr, names: Sequence[str]) -> bool:
    """Whether ``jaxpr`` (or any jaxpr nested in its equations) has a primitive in ``names``."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in names:
            return True
        if any(contains(sub, names) for sub in jaxprs_in_params(eqn.params)):
            return True
    return False


def inner(eqn: JaxprEqn) -> tuple[Jaxpr, Sequence[Any]] | None:
    """The body and constants of an inlinable call equation, else None."""
    if eqn.primitive.name not in INLINE:
        return None
    body = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
    if isinstance(body, ClosedJaxpr):
        return body.jaxpr, body.consts
    if isinstance(body, Jaxpr):
        return body, ()
    return None


def bind(eqn: JaxprEqn, invals: Sequence[Any]) -> list[Any]:
    """Evaluate one equation as JAX would."""
    params = eqn.primitive.get_bind_params(eqn.params)
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


def evaluate(
    jaxpr: Jaxpr, consts: Sequence[Any], args: Sequence[Any], rule: Rule | None = None
) -> list[Any]:
    """Evaluate ``jaxpr``; ``rule(eqn, invals)`` may return the outputs of an equation instead."""
    env: dict[Any, Any] = {}

    def read(v: Any) -> Any:
        return v.val if isinstance(v, Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts, strict=True):
        env[v] = c
    for v, a in zip(jaxpr.invars, args, strict=True):
        env[v] = a
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        outs = rule(eqn, invals) if rule is not None else None
        if outs is None:
            outs = bind(eqn, invals)
        for v, o in zip(eqn.outvars, outs, strict=True):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]
