"""``track_scales``: the scale of every intermediate of a function, forward and backward.

The JAX counterpart of ``unit_scaling.transforms.track_scales`` (which traces a torch module with
TorchDynamo): the function is traced to a jaxpr and re-evaluated once; every floating intermediate
is recorded in the forward pass, and its gradient in the backward pass (through a zero "probe"
added to it, whose gradient is the intermediate's). The statistics are the reference's ``Metrics``:
``mean_abs``, ``abs_mean``, ``std`` (unbiased, as ``torch.std``), ``abs_max``, ``abs_min``,
``numel``.
"""

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import source_info_util

from jaxlinear._checks import check_choice
from jaxlinear.scaling._interpret import bind, check_fn, evaluate, has_body, inner, refuse, trace
from jaxlinear.scaling._scope import OPS

__all__ = ["ScaleRecord", "ScaleReport", "Stats", "track_scales"]


@dataclasses.dataclass(frozen=True)
class Stats:
    """Statistics of one tensor (``unit_scaling.transforms.Metrics.Data``), computed in float64.

    Attributes:
        mean_abs: ``mean(|x|)``.
        abs_mean: ``|mean(x)|``.
        std: the unbiased standard deviation (``torch.std``); NaN for fewer than two elements.
        abs_max: ``max(|x|)``.
        abs_min: ``min(|x|)``.
        numel: the number of elements (with 0, every statistic is NaN).

    Example:
        >>> Stats.of(jnp.array([-1.0, 3.0]))
        Stats(mean_abs=2.0, abs_mean=1.0, std=2.8284271247461903, abs_max=3.0, abs_min=1.0, numel=2)
    """

    mean_abs: float
    abs_mean: float
    std: float
    abs_max: float
    abs_min: float
    numel: int

    @classmethod
    def of(cls, x: Any) -> "Stats":
        """The statistics of ``x``.

        Args:
            x: an array or array-like of any shape and real dtype (read as float64).

        Returns:
            A :class:`Stats`.
        """
        a = np.asarray(x, np.float64).ravel()
        if a.size == 0:
            nan = float("nan")
            return cls(nan, nan, nan, nan, nan, 0)
        std = float(np.std(a, ddof=1)) if a.size > 1 else float("nan")
        absa = np.abs(a)
        return cls(
            float(absa.mean()),
            float(abs(a.mean())),
            std,
            float(absa.max()),
            float(absa.min()),
            a.size,
        )


@dataclasses.dataclass(frozen=True)
class ScaleRecord:
    """One intermediate: where it comes from, its forward statistics and its gradient's.

    Attributes:
        index: its position in the report (evaluation order, the inputs first).
        name: the module path (flax name stack) and primitive, e.g. ``"MLP/fc1/custom_vjp_call"``;
            for an input, ``"input"`` and its pytree path; for a ``jl.scaling`` op with
            ``detail="scopes"``, the op's scope.
        primitive: the JAX primitive that produced it; ``"input"`` for the function's arguments.
        source: ``file:line (function)`` of the code that produced it (empty for inputs and
            ``jl.scaling`` ops).
        shape: its shape.
        dtype: its dtype's name (``"float32"``).
        fwd: the statistics of its value.
        bwd: the statistics of its gradient (for the report's cotangent), or None.
    """

    index: int
    name: str
    primitive: str
    source: str
    shape: tuple[int, ...]
    dtype: str
    fwd: Stats
    bwd: Stats | None


@dataclasses.dataclass(frozen=True)
class ScaleReport:
    """The records of :func:`track_scales`, printable as a table and plottable.

    Attributes:
        records: one :class:`ScaleRecord` per recorded intermediate, in evaluation order.

    Example:
        >>> report = track_scales(lambda x: jnp.sum(2 * x), jnp.ones(3), detail="ops")
        >>> [(r.name, r.fwd.mean_abs, r.bwd.mean_abs) for r in report.records]
        [('input[0]', 1.0, 2.0), ('mul', 2.0, 1.0), ('reduce_sum', 6.0, 1.0)]
    """

    records: tuple[ScaleRecord, ...]

    def to_dicts(self) -> list[dict[str, Any]]:
        """One flat dict per record (``fwd_std``, ``bwd_std``, ...), e.g. for pandas."""
        rows = []
        for r in self.records:
            row = {k: getattr(r, k) for k in ("index", "name", "primitive", "source", "shape")}
            row["dtype"] = r.dtype
            for side in ("fwd", "bwd"):
                stats = getattr(r, side)
                for f in dataclasses.fields(Stats):
                    row[f"{side}_{f.name}"] = getattr(stats, f.name) if stats else float("nan")
            rows.append(row)
        return rows

    def __str__(self) -> str:
        head = f"{'#':>3}  {'name':<44} {'shape':<16} {'fwd std':>10} {'bwd std':>10}"
        lines = [head, "-" * len(head)]
        for r in self.records:
            bwd = r.bwd.std if r.bwd is not None else float("nan")
            shape = "x".join(map(str, r.shape)) or "()"
            lines.append(
                f"{r.index:>3}  {r.name[-44:]:<44} {shape:<16} {r.fwd.std:>10.4g} {bwd:>10.4g}"
            )
        return "\n".join(lines)

    def plot(self, ax: Any = None, metric: str = "std") -> Any:
        """log2 of ``metric`` forward and backward per intermediate (matplotlib, optional).

        Args:
            ax: a matplotlib ``Axes`` to draw into; None creates a new figure.
            metric: the :class:`Stats` field to plot (``"std"``, ``"mean_abs"``, ``"abs_max"``, ...).

        Returns:
            The matplotlib ``Axes``.

        Raises:
            ImportError: if matplotlib is not installed.
            ValueError: if ``metric`` is not a field of :class:`Stats`.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:  # pragma: no cover - matplotlib is an optional dependency
            raise ImportError("ScaleReport.plot needs matplotlib: pip install matplotlib") from err
        check_choice("metric", metric, [f.name for f in dataclasses.fields(Stats)])
        if ax is None:
            _, ax = plt.subplots(figsize=(max(6, 0.35 * len(self.records)), 3.5))
        idx = [r.index for r in self.records]
        log2 = lambda v: math.log2(v) if v and v > 0 and math.isfinite(v) else float("nan")
        ax.plot(idx, [log2(getattr(r.fwd, metric)) for r in self.records], "o-", label="forward")
        bwd = [log2(getattr(r.bwd, metric)) if r.bwd else float("nan") for r in self.records]
        ax.plot(idx, bwd, "s--", label="backward")
        ax.axhline(0.0, color="gray", lw=0.8)
        ax.set_xticks(idx, [r.name.split("/")[-2] if "/" in r.name else r.name for r in self.records],
                      rotation=90, fontsize=7)  # fmt: skip
        ax.set_ylabel(f"log2 {metric}")
        ax.legend()
        return ax


def _group(eqn: Any, prefix: str = "") -> tuple[str, str]:
    """(name stack, source): the equations of one jl.scaling op share a group whatever their lines.

    ``prefix`` is the name stack of an inlined ``jit`` call (its body's stacks are relative).
    """
    stack = "/".join(s for s in (prefix, str(eqn.source_info.name_stack)) if s)
    source = source_info_util.summarize(eqn.source_info)
    parts = stack.split("/")
    for i, part in enumerate(parts):  # inside a jl.scaling op: the outermost op's scope
        if part in OPS:
            return "/".join(parts[: i + 1]), ""
    return stack, source


# custom-derivative functions are recorded as one op (their outputs), as the reference's leaf modules
_ONE_OP = ("custom_jvp_call", "custom_vjp_call")


def _is_float(v: Any) -> bool:
    return jnp.issubdtype(v.aval.dtype, jnp.floating) if hasattr(v, "aval") else False


class _Tracker:
    """Adds a probe to every recorded output; ``detail="scopes"`` records one output per group of
    consecutive equations from the same module and source line (an op's internals)."""

    def __init__(self, detail: str, probes: Sequence[Any] | None) -> None:
        self.detail, self.probes = detail, probes
        self.values: list[Any] = []
        self.meta: list[tuple[str, str, str]] = []

    def _record(self, x: Any, name: str, primitive: str, source: str) -> Any:
        i = len(self.values)
        self.values.append(x)
        self.meta.append((name, primitive, source))
        return x + self.probes[i] if self.probes is not None else x

    def inputs(self, args: Sequence[Any], paths: Sequence[str]) -> list[Any]:
        """The float arguments, named by their pytree path (``[0]['params']['fc1']['kernel']``)."""
        return [
            self._record(a, "input" + p.removeprefix("[0]"), "input", "")
            if jnp.issubdtype(a.dtype, jnp.floating)
            else a
            for a, p in zip(args, paths, strict=True)
        ]

    def evaluate(self, jaxpr: Any, consts: Any, args: Sequence[Any], prefix: str = "") -> list[Any]:
        eqns = jaxpr.eqns
        keys = [_group(e, prefix) for e in eqns]
        last = {i for i in range(len(eqns)) if i + 1 == len(eqns) or keys[i + 1] != keys[i]}
        position = {id(e): i for i, e in enumerate(eqns)}

        def rule(eqn: Any, invals: list[Any]) -> list[Any]:
            body = inner(eqn)
            in_op = keys[position[id(eqn)]][1] == ""  # part of a jl.scaling op: one record
            if body is not None and not in_op:  # a jit call: track inside it
                stack = "/".join(s for s in (prefix, str(eqn.source_info.name_stack)) if s)
                outs = self.evaluate(body[0], body[1], invals, stack)
            else:
                if not in_op and eqn.primitive.name not in _ONE_OP and has_body(eqn):
                    refuse(
                        eqn, "track_scales", "its intermediates would be missing from the report"
                    )
                outs = bind(eqn, invals)
            i = position[id(eqn)]
            if self.detail == "scopes" and i not in last:
                return outs
            stack, source = keys[i]
            if self.detail == "scopes" and stack.rsplit("/", 1)[-1] in OPS:
                name = stack
            else:
                name = f"{stack}/{eqn.primitive.name}" if stack else eqn.primitive.name
            source = source or source_info_util.summarize(eqn.source_info)
            return [
                self._record(o, name, eqn.primitive.name, source) if _is_float(v) else o
                for o, v in zip(outs, eqn.outvars, strict=True)
            ]

        return evaluate(jaxpr, consts, args, rule)


def track_scales(
    fn: Callable[..., Any],
    *args: Any,
    cotangent: Any = None,
    seed: int = 0,
    detail: str = "scopes",
    **kwargs: Any,
) -> ScaleReport:
    """Run ``fn(*args, **kwargs)`` once forward and backward and report every intermediate's scale.

    ``unit_scaling.transforms.track_scales`` for JAX functions (a flax ``model.apply``, a loss
    function, anything traceable). The backward pass starts from ``cotangent``: by default 1 for a
    scalar output (a loss), else a standard-normal array drawn with ``seed`` (the reference's
    ``unit_backward``). Gradients are those of all float array arguments and intermediates; a
    unit-scaled model's custom gradients (``scale_bwd``...) are what is recorded.

    Args:
        fn: the function.
        *args: its arguments (array leaves are traced, other leaves stay static).
        cotangent: the output's cotangent (a pytree like the output), or None.
        seed: the seed of the default random cotangent.
        detail: ``"scopes"`` (one record per op: the last output of consecutive equations from the
            same module path and source line) or ``"ops"`` (every primitive's output).
        **kwargs: keyword arguments of ``fn``.

    Returns:
        A :class:`ScaleReport`; ``print(report)`` shows the table, ``report.plot()`` the picture.

    Raises:
        TypeError: for a ``fn`` that is not callable.
        ValueError: for an unknown ``detail``.
        NotImplementedError: if ``fn`` uses a higher-order primitive whose inside cannot be recorded
            (``scan``, ``while``, ``cond``, ``shard_map``...: one record per step does not exist);
            ``jit`` and ``jax.checkpoint`` bodies are recorded, ``custom_jvp``/``custom_vjp``
            functions (``jax.nn.relu``, the unit-scaled ops) as one op.

    Example:
        >>> f = lambda x: jnp.sum(jnp.tanh(x) ** 2)
        >>> report = track_scales(f, jnp.ones((2, 3)), detail="ops")
        >>> [r.primitive for r in report.records]
        ['input', 'tanh', 'integer_pow', 'reduce_sum']
    """
    check_fn(fn)
    check_choice("detail", detail, ("scopes", "ops"))
    traced = trace(fn, *args, **kwargs)
    jaxpr, consts = traced.closed.jaxpr, traced.closed.consts

    trackers: list[_Tracker] = []

    def forward(probes: Sequence[Any] | None, dyn: Sequence[Any]) -> tuple[Any, list[Any]]:
        tracker = _Tracker(detail, probes)
        trackers.append(tracker)
        outs = tracker.evaluate(jaxpr, consts, tracker.inputs(dyn, traced.paths))
        return jax.tree.unflatten(traced.out_tree, outs), tracker.values

    shapes = jax.eval_shape(lambda d: forward(None, d)[1], traced.args)
    probes = [jnp.zeros(s.shape, s.dtype) for s in shapes]
    out, vjp, values = jax.vjp(lambda p: forward(p, traced.args), probes, has_aux=True)
    if cotangent is None:
        leaves, treedef = jax.tree.flatten(out)
        if len(leaves) == 1 and jnp.size(leaves[0]) == 1:
            cotangent = jax.tree.unflatten(treedef, [jnp.ones_like(leaves[0])])
        else:
            keys = jax.random.split(jax.random.key(seed), len(leaves))
            cotangent = jax.tree.unflatten(
                treedef,
                [jax.random.normal(k, v.shape, v.dtype) for k, v in zip(keys, leaves, strict=True)],
            )
    (grads,) = vjp(cotangent)
    records = []
    meta = trackers[-1].meta
    for i, ((name, prim, source), v, g) in enumerate(zip(meta, values, grads, strict=True)):
        records.append(
            ScaleRecord(
                i, name, prim, source, tuple(v.shape), str(v.dtype), Stats.of(v), Stats.of(g)
            )
        )
    return ScaleReport(tuple(records))
