"""``Factors`` and ``lr_factors``: every parameter's learning-rate and weight-decay factor, by the rule of
the layer that owns it.

The model is walked once (:mod:`jaxlinear.walker`); each jaxlinear layer answers for its own params with
its ``lr_rule`` (inferno's for ``Linear``/``NLinear`` with a parametrization, torch's plain factor 1
without one, unit_scaling's u-μP rule for ``UnitScaledLinear``/``LinearReadout``). A parameter no rule
covers is an error that lists it, unless the caller gives a ``default``.
"""

import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax

from jaxlinear import walker
from jaxlinear._checks import check_real
from jaxlinear._typing import PyTree
from jaxlinear.nn import Linear, LinearReadout, NLinear, UnitScaledLinear
from jaxlinear.parametrizations import Standard, canonical_optimizer, get_parametrization

__all__ = ["Factors", "LayerTypeWarning", "lr_factors"]

RULE_TYPES = (Linear, NLinear, UnitScaledLinear)


class Factors(NamedTuple):
    """Per-parameter factors: two pytrees shaped like the params, a Python float per leaf.

    The learning rate of a parameter is ``learning_rate * lr[leaf]``; its weight decay
    ``weight_decay * weight_decay[leaf]`` (coupled L2 for :func:`~jaxlinear.optim.sgd` and
    :func:`~jaxlinear.optim.adam`, decoupled and scaled by the parameter's own learning rate for
    :func:`~jaxlinear.optim.adamw`, as torch's param groups do).

    Attributes:
        lr: the learning-rate factor of every parameter.
        weight_decay: the weight-decay factor of every parameter.

    Example:
        >>> f = Factors({"w": 0.5}, {"w": 1.0})
        >>> f.lr["w"], f.weight_decay["w"]
        (0.5, 1.0)
    """

    lr: PyTree
    weight_decay: PyTree


class LayerTypeWarning(UserWarning):
    """A ``layer_type`` that is probably a mistake (see :func:`lr_factors`)."""


def _name(path: tuple) -> str:
    return "/".join(map(str, path)) or "(the model itself)"


def _depth_of(path: tuple[str, ...], depth: Mapping[str, int]) -> int | None:
    name = "/".join(path)
    hits = [p for p in depth if name == p.strip("/") or name.startswith(p.strip("/") + "/")]
    if len(hits) > 1:
        raise ValueError(
            f"`depth` must not nest depth-scaled stacks (the reference forbids it), got {hits} for the "
            f"layer {name!r}."
        )
    return depth[hits[0]] if hits else None


def _check_depth(depth: Any) -> dict[str, int]:
    if depth is None:
        return {}
    if not isinstance(depth, Mapping):
        raise TypeError(
            "`depth` must be None or a mapping {'path/of/stack': number of layers} (the reference's "
            f"DepthSequential), got {type(depth).__name__} {depth!r}."
        )
    for prefix, d in depth.items():
        if not isinstance(prefix, str):
            raise TypeError(
                f"`depth` keys must be path strings like 'block/stack', got {prefix!r}."
            )
        if isinstance(d, bool) or not isinstance(d, int) or d <= 0:
            raise ValueError(f"`depth[{prefix!r}]` must be an int > 0, got {d!r}.")
    return dict(depth)


def _readout_constraint(layers: list[walker.LayerCall]) -> str | None:
    constraints = {c.module.constraint for c in layers if isinstance(c.module, LinearReadout)}
    if len(constraints) > 1:
        raise ValueError(
            "the model's LinearReadout layers must share one `constraint` (u-μP's SGD rule depends on "
            f"it), got {sorted(map(str, constraints))}."
        )
    return constraints.pop() if constraints else None


def _warn_layer_types(walk: walker.ModelWalk, *, positional: bool = True) -> None:
    by_path = {c.path: c.module for c in walk.layers}
    for call in walk.layers:
        m = call.module
        if (
            isinstance(m, Linear | NLinear)
            and m.parametrization is None
            and m.layer_type != "hidden"
        ):
            warnings.warn(
                f"the {type(m).__name__} at {_name(call.path)!r} has layer_type={m.layer_type!r} but no "
                "`parametrization`: the layer type has no effect (torch's init and learning rate); "
                "pass the parametrization too.",
                LayerTypeWarning,
                stacklevel=3,
            )
    owners = walk.param_owners if positional else []
    for path, wanted in ((owners[:1], "input"), (owners[-1:], "output")):
        if not path or path[0] not in by_path:
            continue
        m = by_path[path[0]]
        if not isinstance(m, Linear | NLinear) or m.parametrization is None:
            continue
        if isinstance(get_parametrization(m.parametrization), Standard):
            continue  # SP's rules do not depend on the layer type
        if m.layer_type == "hidden" and len(owners) > 1:
            where = "first" if wanted == "input" else "last"
            warnings.warn(
                f"the {type(m).__name__} at {_name(path[0])!r} is the model's {where} layer with "
                f"params but has layer_type='hidden' (the default) under {m.parametrization!r}: its "
                f"{'init and ' if wanted == 'output' else ''}learning rate follow the hidden rule. "
                f"Pass layer_type={wanted!r} (or silence this LayerTypeWarning if it is hidden).",
                LayerTypeWarning,
                stacklevel=3,
            )


def _leaf_names(key_path: tuple) -> tuple:
    out = []
    for k in key_path:
        if isinstance(k, jax.tree_util.DictKey):
            out.append(k.key)
        elif isinstance(k, jax.tree_util.SequenceKey):
            out.append(k.idx)
        elif isinstance(k, jax.tree_util.GetAttrKey):
            if k.name != "value":  # an nnx.Variable's array
                out.append(k.name)
        else:
            out.append(getattr(k, "key", k))
    return tuple(out)


def _rules(
    layers: list[walker.LayerCall], optimizer: str, depth: dict[str, int], prefix: tuple = ()
) -> tuple[dict[tuple, tuple[float, float]], set[str]]:
    """``{param path: (lr, wd)}`` of every layer with a rule, and the depth prefixes used."""
    readout = _readout_constraint(layers)
    out: dict[tuple, tuple[float, float]] = {}
    used: set[str] = set()
    for call in layers:
        full = tuple(map(str, (*prefix, *call.path)))
        d = _depth_of(full, depth) if depth else None
        if d is not None:
            used.update(p for p in depth if _depth_of(full, {p: depth[p]}) is not None)
        rule = call.module.lr_rule(call.shapes, optimizer, depth=d, readout_constraint=readout)
        for name, pair in rule.items():
            out[(*prefix, *call.path, name)] = pair
    return out, used


def lr_factors(
    module: Any,
    variables: PyTree = None,
    *example_inputs: Any,
    optimizer: str,
    depth: Mapping[str, int] | None = None,
    default: float | None = None,
) -> Factors:
    """The learning-rate and weight-decay factor of every parameter, by its layer's own rule.

    The model is traced once, abstractly (nothing is computed), to find its jaxlinear layers; each
    gives the factors of its params (``layer.lr_rule``):

    - :class:`~jaxlinear.Linear` / :class:`~jaxlinear.NLinear` with a parametrization: inferno's
      ``parameters_and_lrs`` factors for its fans and ``layer_type`` (per member for ``NLinear``),
      weight-decay factor 1; without a parametrization, factor 1 (torch's plain optimizer);
    - :class:`~jaxlinear.UnitScaledLinear` / :class:`~jaxlinear.LinearReadout`: ``unit_scaling.optim``'s
      u-μP factor (its SGD rule reads the model's ``LinearReadout`` constraint), ``depth**-0.5`` inside a
      depth-scaled stack, and weight-decay factor ``1 / lr factor`` (the reference's weight decay is
      independent of each parameter's lr: ``unit_scaling.optim.AdamW(lr, weight_decay=wd)`` is
      ``adamw(lr, factors, weight_decay=wd / lr)``).

    Layers lifted by ``nn.vmap`` / ``nn.scan`` get their rule per slice. Any other parameter (``nn.Dense``,
    norms, embeddings) is an error listing its path, unless ``default`` is given: then it gets lr factor
    ``default`` and weight-decay factor 1. (inferno drops norm-layer params from its groups, so a torch
    optimizer never moves them; here they train at ``default``.)

    Mistakes made loud (a :class:`LayerTypeWarning` naming the layer): a ``Linear``/``NLinear`` with a
    non-Standard parametrization left at ``layer_type="hidden"`` while it is the model's first or last
    layer with params, and a ``layer_type`` other than ``"hidden"`` without a parametrization.

    Args:
        module: a Flax linen module, or an ``nnx.Module`` whose jaxlinear layers are bridged with
            ``nnx.bridge.ToNNX`` (then ``variables`` is omitted: positional arguments after the model
            are its example inputs). The factor trees are then ``nnx.State`` objects matching
            ``nnx.state(model, nnx.Param)``, as ``nnx.Optimizer`` hands them to optax.
        variables: the linen model's variables (``module.init(...)``, ``jl.interop.from_torch(...)``).
        *example_inputs: inputs of the model (only shapes are used). Without them the model is called
            on a probe built from its first kernel, which suffices when its first layer is dense.
        optimizer: ``"sgd"``/``"SGD"`` or ``"adam"``/``"Adam"``/``"adamw"``/``"AdamW"``.
        depth: u-μP depth-scaled stacks (the reference's ``DepthSequential``): ``{"path/prefix": n}``
            gives every unit-scaled layer under the prefix ``depth**-0.5``; ``n`` is the number of layers
            of the stack.
        default: the lr factor of parameters no jaxlinear layer owns; None makes them an error.

    Returns:
        :class:`Factors` with the structure of ``variables["params"]`` (or the NNX model's params).

    Raises:
        ValueError: for an uncovered parameter without ``default``, a negative or NaN ``default``, an
            unknown optimizer, a bad or unused ``depth`` prefix, or a model the walker cannot call
            (pass example inputs).
        NotImplementedError: where inferno raises (``NeuralTangent`` with Adam).

    Example:
        >>> import flax.linen as nn, jax, jax.numpy as jnp, jaxlinear as jl
        >>> class MLP(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x):
        ...         x = nn.tanh(jl.Linear(64, parametrization="mup", layer_type="input")(x))
        ...         x = nn.tanh(jl.NLinear(2, 64, parametrization="mup")(jnp.stack([x, x], -2)))
        ...         return jl.Linear(4, parametrization="mup", layer_type="output")(x)
        >>> model = MLP()
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 8)))
        >>> jl.optim.lr_factors(model, variables, optimizer="adam").lr
        {'Linear_0': {'bias': 1.0, 'kernel': 1.0}, 'Linear_1': {'bias': 1.0, 'kernel': 0.015625}, 'NLinear_0': {'bias': 1.0, 'kernel': 0.015625}}
    """
    canonical_optimizer(optimizer)  # one error for a bad name, whatever the model holds
    depth_map = _check_depth(depth)
    if default is not None:  # a finite factor >= 0, as every rule's
        default = check_real("default", default, min_value=0.0)
    if not isinstance(module, nn.Module) and _is_nnx(module):
        return _nnx_factors(module, variables, example_inputs, optimizer, depth_map, default)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"`module` must be a flax.linen Module or an nnx.Module, got {type(module).__name__}."
        )
    walk = walker.walk(module, variables, *example_inputs, types=RULE_TYPES)
    _warn_layer_types(walk)
    rules, used = _rules(walk.layers, optimizer, depth_map)
    _check_depth_used(depth_map, used)
    return _build(walker.params_at(variables, ()), rules, default)


def _check_depth_used(depth: dict[str, int], used: set[str]) -> None:
    unused = sorted(set(depth) - used)
    if unused:
        raise ValueError(
            f"`depth` prefixes must name layers of the model with a rule, got {unused} (no layer under "
            "them)."
        )


def _build(
    params: PyTree, rules: dict[tuple, tuple[float, float]], default: float | None
) -> Factors:
    missing: list[str] = []

    def pick(i: int):
        def fn(key_path, leaf):
            del leaf
            names = _leaf_names(key_path)
            if names in rules:
                return rules[names][i]
            if i == 0:
                missing.append(_name(names))
            return (1.0 if default is None else float(default)) if i == 0 else 1.0

        return fn

    lr = jax.tree_util.tree_map_with_path(pick(0), params)
    wd = jax.tree_util.tree_map_with_path(pick(1), params)
    if missing and default is None:
        raise ValueError(
            "every parameter must belong to a jaxlinear layer with a learning-rate rule, or pass "
            f"`default=` (a float) for the others; no rule covers {missing}."
        )
    return Factors(lr, wd)


def _is_nnx(module: Any) -> bool:
    from flax import nnx

    return isinstance(module, nnx.Module)


def _nnx_factors(model, first, inputs, optimizer, depth, default) -> Factors:
    from flax import nnx

    if isinstance(first, Mapping) and "params" in first:
        raise TypeError(
            "`variables` must be omitted for an nnx.Module (its params are its own state); pass only "
            "example inputs after the model."
        )
    args = inputs if first is None else (first, *inputs)
    rules: dict[tuple, tuple[float, float]] = {}
    used: set[str] = set()
    for b in walker.find_bridged(model, *args):
        call_args = b.args or ()
        call_kwargs = b.kwargs or {}
        walk = walker.walk(b.module, b.variables, *call_args, types=RULE_TYPES, **call_kwargs)
        _warn_layer_types(walk, positional=False)  # the NNX model's layer order is unknown
        sub_rules, sub_used = _rules(walk.layers, optimizer, depth, b.path)
        rules.update(sub_rules)
        used.update(sub_used)
    _check_depth_used(depth, used)
    state = nnx.as_pure(nnx.state(model, nnx.Param))
    return _build(state, rules, default)
