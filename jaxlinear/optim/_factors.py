"""``Factors`` and ``lr_factors``: every parameter's learning-rate and weight-decay factor, by the rule of
the layer that owns it.

The model is walked once (:mod:`jaxlinear.walker`); each jaxlinear layer answers for its own params with
its ``lr_rule`` (inferno's for ``Linear``/``NLinear`` with a parametrization, torch's plain factor 1
without one, unit_scaling's u-μP rule for ``UnitScaledLinear``/``LinearReadout``); embeddings and norms
follow the model's parametrization (μP's vector-like rule). A parameter no rule covers is an error that
lists it, unless the caller gives a ``default``.
"""

import math
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax

from jaxlinear import walker
from jaxlinear._checks import check_positive_int, check_real
from jaxlinear._typing import PyTree
from jaxlinear.nn import Linear, LinearReadout, NLinear, UnitScaledLinear
from jaxlinear.parametrizations import Standard, canonical_optimizer, get_parametrization
from jaxlinear.tabm._lr_rule import TabmLrRule

__all__ = ["Factors", "LayerTypeWarning", "lr_factors"]

#: Layers with an ``lr_rule``: jaxlinear's dense layers and the tabm layers.
RULE_TYPES = (Linear, NLinear, UnitScaledLinear, TabmLrRule)
#: Layers whose params are vector-like under μP (one width dim): they follow the model's parametrization.
VECTOR_TYPES = (nn.Embed, nn.LayerNorm, nn.RMSNorm)


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
        check_positive_int(f"depth[{prefix!r}]", d)
    return {prefix: int(d) for prefix, d in depth.items()}


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


def _family(m: Any) -> str | None:
    """The parametrization a rule layer trains under, by name (None: torch's plain factor 1)."""
    if isinstance(m, UnitScaledLinear):  # LinearReadout included
        return "u-μP (unit-scaled layers)"
    parametrization = getattr(m, "parametrization", None)  # tabm's torch-init layers have none
    if parametrization is None:
        return None
    return type(get_parametrization(parametrization)).__name__


def _split(walk: walker.ModelWalk) -> tuple[walker.ModelWalk, list[walker.LayerCall]]:
    """The walk of the rule layers, and the embeddings and norms."""
    rules = [c for c in walk.layers if isinstance(c.module, RULE_TYPES)]
    vectors = [c for c in walk.layers if isinstance(c.module, VECTOR_TYPES)]
    return walker.ModelWalk(rules, walk.param_owners), vectors


def _vector_rules(
    rule_layers: list[walker.LayerCall],
    vector_layers: list[walker.LayerCall],
    optimizer: str,
    default: float | None,
) -> dict[tuple, tuple[float, float]]:
    """The rules of ``nn.Embed`` / ``nn.LayerNorm`` / ``nn.RMSNorm`` params under the model's
    parametrization: the rule of an input layer's weight (μP's vector-like rule)."""
    if not vector_layers or not rule_layers:
        return {}
    by_family: dict[str | None, list[str]] = {}
    for call in rule_layers:
        by_family.setdefault(_family(call.module), []).append(_name(call.path))
    if len(by_family) > 1:
        if default is not None:  # explicit: the caller chose the factor of the other params
            return {}
        listing = "; ".join(
            f"{'no parametrization' if f is None else f}: {names}" for f, names in by_family.items()
        )
        raise ValueError(
            "the model's jaxlinear layers must share one parametrization for its embeddings and norms "
            f"to follow it, got several ({listing}); give every Linear/NLinear the same "
            "`parametrization`, or pass `default=` (a float) for the embedding and norm params."
        )
    family = next(iter(by_family))
    if family is None or family.startswith("u-μP"):
        return {}  # torch's plain optimizer / unit_scaling: no rule here (error unless default)
    param = next(
        p for c in rule_layers if (p := getattr(c.module, "parametrization", None)) is not None
    )
    rule = get_parametrization(param)
    out: dict[tuple, tuple[float, float]] = {}
    for call in vector_layers:
        for name, shape in call.shapes.items():
            if isinstance(call.module, nn.Embed):  # a lookup: one-hot(vocab) @ table (vocab, d)
                fan_in, fan_out = shape[0], math.prod(shape[1:])
            else:  # a norm's scale or bias: a diagonal, one input per feature
                fan_in, fan_out = 1, math.prod(shape)
            lr = rule.weight_lr_scale(fan_in, fan_out, optimizer, "input")
            out[(*call.path, name)] = (float(lr), 1.0)
    return out


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
    - the :mod:`jaxlinear.tabm` layers: :class:`~jaxlinear.tabm.LinearEnsemble` as ``NLinear`` (per
      member); the others (torch's init, no parametrization) factor 1, as a ``Linear`` without a
      parametrization: tabm trains with one plain torch optimizer over all parameters.

    - ``nn.Embed``, ``nn.LayerNorm``, ``nn.RMSNorm`` *under a parametrization* (every ``Linear`` /
      ``NLinear`` found has the same non-None ``parametrization``): the rule of an input layer's weight,
      μP's vector-like rule as Microsoft mup's ``MuSGD``/``MuAdam`` apply it (μP: SGD ``width``, Adam 1;
      an embedding ``(vocab, d)`` has fans ``(vocab, d)``, a norm's scale or bias ``(1, d)``), weight-decay
      factor 1. Layers with mixed parametrizations (or none beside one) make these params an error
      naming the layers of each, unless ``default`` is given (then they take it).

    Layers lifted by ``nn.vmap`` / ``nn.scan`` get their rule per slice. Any other parameter
    (``nn.Dense``, ``nn.DenseGeneral``, and embeddings/norms without a parametrization) is an error
    listing its path, unless ``default`` is given: then it gets lr factor ``default`` and weight-decay
    factor 1. (inferno drops norm-layer params from its groups, so a torch optimizer never moves them;
    here they train.)

    Mistakes made loud (a :class:`LayerTypeWarning` naming the layer): a ``Linear``/``NLinear`` with a
    non-Standard parametrization left at ``layer_type="hidden"`` while it is the model's first or last
    layer with params, and a ``layer_type`` other than ``"hidden"`` without a parametrization.

    Args:
        module: a Flax linen module, or an ``nnx.Module`` (native :mod:`jaxlinear.nnx` layers,
            Flax's NNX layers, linen layers bridged with ``nnx.bridge.ToNNX``, any mix; then
            ``variables`` is omitted: positional arguments after the model are its example inputs). The factor trees are then ``nnx.State`` objects matching
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
        ValueError: for an uncovered parameter without ``default``, a negative or NaN ``default``,
            embeddings or norms in a model whose layers mix parametrizations (without ``default``), an
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
    walk, vectors = _split(
        walker.walk(module, variables, *example_inputs, types=RULE_TYPES + VECTOR_TYPES)
    )
    _warn_layer_types(walk)
    rules, used = _rules(walk.layers, optimizer, depth_map)
    rules = {**_vector_rules(walk.layers, vectors, optimizer, default), **rules}
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
    # native NNX layers answer as their linen twins; bridged linen modules are walked inside
    walk, vectors = _split(walker.walk_nnx(model, *args, types=RULE_TYPES + VECTOR_TYPES))
    _warn_layer_types(walk)
    rules, used = _rules(walk.layers, optimizer, depth)
    rules = {**_vector_rules(walk.layers, vectors, optimizer, default), **rules}
    _check_depth_used(depth, used)
    state = nnx.as_pure(nnx.state(model, nnx.Param))
    return _build(state, rules, default)
