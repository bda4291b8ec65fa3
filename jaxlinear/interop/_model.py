"""``from_torch`` / ``to_torch``: one layer, or a whole linen model of registered layers.

A layer with a converter (``jl.Linear``, ``jl.NLinear``, ``nn.Dense``, ...) converts its own
``state_dict`` (keys unchanged). Any other linen model is walked with :func:`jaxlinear.walker.find_layers`
(its layers in call order, shapes from an abstract ``init``: nothing is computed) and each layer is
paired with a torch key prefix:

1. ``mapping={flax_path: torch_prefix}`` first (``"block/Linear_1": "blocks.0.fc"``);
2. then by name: a layer whose path, dotted, is a torch prefix (``fc1`` <-> ``fc1.weight``; Flax
   ``nn.Sequential``'s ``layers_2`` <-> torch ``nn.Sequential``'s ``2``);
3. then in order: the remaining layers in call order with the remaining prefixes in ``state_dict``
   order (torch's declaration order), each pair checked by the layer's converter and the shapes.

Anything left unmatched raises a ``ValueError`` that names the layers and prefixes and asks for
``mapping``. Layers lifted by ``nn.vmap`` / ``nn.scan`` (stacked params) are not converted.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import layer_params
from jaxlinear.interop._registry import converter_for, registered_types
from jaxlinear.walker import LayerCall, find_layers, params_at

__all__ = ["from_torch", "to_torch"]

# state_dict leaves of the registered torch layers, longest first: what is left of a key is its layer
LEAVES = (
    "_packed_params._packed_params",
    "_packed_params.dtype",
    "params.temperature",
    "params.weight",
    "params.bias",
    "zero_point",
    "scale",
    "weight",
    "bias",
)


def _state_dict(state_dict: Any) -> Mapping[str, Any]:
    """A ``Mapping[str, value]``: the argument itself, or what its ``state_dict()`` returns."""
    if (
        state_dict is not None
        and not isinstance(state_dict, Mapping)
        and callable(getattr(state_dict, "state_dict", None))
    ):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            "`state_dict` must be a torch state_dict (a mapping of key to tensor or array) or an "
            f"object with a `state_dict()` method (a torch module), got {type(state_dict).__name__}."
        )
    bad = [k for k in state_dict if not isinstance(k, str)]
    if bad:
        raise TypeError(f"`state_dict` keys must be strings, got {bad[:3]!r}.")
    return state_dict


def _split(key: str) -> tuple[str, str]:
    """``(layer prefix, leaf)`` of a torch key: ``"blocks.0.fc.weight" -> ("blocks.0.fc", "weight")``."""
    for leaf in LEAVES:
        if key == leaf:
            return "", leaf
        if key.endswith("." + leaf):
            return key[: -len(leaf) - 1], leaf
    head, _, tail = key.rpartition(".")
    return head, tail


def _groups(state_dict: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The keys grouped by layer prefix, in declaration order (see :func:`_ordered`), leaves as keys."""
    groups: dict[str, dict[str, Any]] = {}
    for key in _ordered(list(state_dict)):
        prefix, leaf = _split(key)
        groups.setdefault(prefix, {})[leaf] = state_dict[key]
    return groups


def _under(state_dict: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The keys under ``prefix`` with the prefix removed (everything for ``""``)."""
    if not prefix:
        return dict(state_dict)
    start = prefix + "."
    return {k[len(start) :]: v for k, v in state_dict.items() if k.startswith(start)}


def _covers(prefix: str, other: str) -> bool:
    return not prefix or other == prefix or other.startswith(prefix + ".")


def torch_name(path: Sequence[str]) -> str:
    """The default torch prefix of a Flax layer path: dotted, Flax ``nn.Sequential``'s ``layers_{i}``
    written as torch ``nn.Sequential``'s ``{i}``.

    Example:
        >>> torch_name(("layers_2",)), torch_name(("block", "Dense_0"))
        ('2', 'block.Dense_0')
    """
    return ".".join(re.sub(r"^layers_(\d+)$", r"\1", p) for p in path)


def _value_shape(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, tuple | list) and value:  # torch.ao packed params: (qweight, bias)
        value = value[0]
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(int(d) for d in shape)


def _probes(state_dict: Mapping[str, Any]) -> list[jax.ShapeDtypeStruct]:
    """One-row inputs for each distinct weight of the state_dict, in its order: ``(1, in)`` for a
    torch ``(out, in)`` weight, ``(1, *n, in)`` for a delu ``(*n, in, out)`` one."""
    probes: list[jax.ShapeDtypeStruct] = []
    for key in _ordered(list(state_dict)):
        leaf = _split(key)[1]
        if leaf not in ("weight", "params.weight", "_packed_params._packed_params"):
            continue
        shape = _value_shape(state_dict[key])
        if shape is None or len(shape) < 2:
            continue
        probe = (1, shape[1]) if len(shape) == 2 else (1, *shape[:-1])
        if all(p.shape != probe for p in probes):
            probes.append(jax.ShapeDtypeStruct(probe, jnp.float32))
    return probes


def _natural(key: str) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", key)]


def _ordered(keys: list[str]) -> list[str]:
    """``keys`` in their order, or in natural order (``blocks.2`` before ``blocks.10``) when they
    are sorted as strings: weight files (safetensors) store keys sorted, losing declaration order."""
    return sorted(keys, key=_natural) if keys == sorted(keys) else keys


def _abstract_variables(module: nn.Module, example: tuple) -> PyTree:
    def init(*args):
        keys = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
        return module.init(keys, *args)

    return jax.eval_shape(init, *example)


def _variables_error(module: nn.Module, err: Exception) -> ValueError | None:
    """A clear error when the model's own error says the variables are not the module's."""
    inner = err.__cause__ if isinstance(err, ValueError) and err.__cause__ is not None else err
    kind = type(inner).__name__
    if "ScopeParamShapeError" in kind:
        return ValueError(f"`variables` do not fit `{type(module).__name__}`: {inner}")
    if "InvalidRngError" in kind:  # flax asks for an rng to create a param the variables lack
        return ValueError(f"`variables` lack params of `{type(module).__name__}`: {inner}")
    return None


def _layers(module: nn.Module, variables: PyTree, example: tuple) -> list[LayerCall]:
    try:
        layers = find_layers(module, variables, *example, types=registered_types())
    except Exception as err:
        clear = _variables_error(module, err)
        if clear is not None:
            raise clear from err
        raise
    if not layers:
        kinds = sorted(t.__name__ for t in registered_types())
        raise ValueError(
            f"`module` must call at least one layer of {kinds}, got none in "
            f"`{type(module).__name__}`."
        )
    for call in layers:
        if any(call.stacked.values()):
            raise ValueError(
                f"the layer at {call.name!r} is lifted by nn.vmap/nn.scan (stacked params "
                f"{dict(call.stacked)}); from_torch/to_torch convert unlifted layers only."
            )
    return layers


def _mapping_type(mapping: Any) -> None:
    if mapping is not None and (
        not isinstance(mapping, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
    ):
        raise TypeError(
            "`mapping` must be a dict {flax_path: torch_prefix} of strings (paths as "
            f"'block/Linear_1'), got {mapping!r}."
        )


def _check_mapping(mapping: Any, layers: list[LayerCall]) -> dict[str, str]:
    _mapping_type(mapping)
    if mapping is None:
        return {}
    names = [c.name for c in layers]
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ValueError(f"`mapping` must name layers of the model, among {names}; got {unknown}.")
    return dict(mapping)


WEIGHTS = ("weight", "params.weight", "_packed_params._packed_params")


def _weight_shape(state: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The shape of a layer's main weight in torch layout (its signature for matching)."""
    for leaf in WEIGHTS:
        if leaf in state:
            return _value_shape(state[leaf])
    return None


def _match(
    module: nn.Module,
    layers: list[LayerCall],
    groups: dict[str, dict[str, Any]],
    mapping: dict[str, str],
    signature: Callable[[LayerCall], tuple[int, ...] | None],
    fits: Callable[[LayerCall, str, bool], str | None],
) -> list[tuple[LayerCall, str]]:
    """Pair every layer with a torch prefix: ``mapping``, then same names, then, among the layers and
    prefixes whose weights have one shape (``signature``), call order with declaration order.
    ``fits(call, prefix, mapped)`` returns None or why a pair does not fit. Raises ``ValueError``
    naming what is left."""
    problems: list[str] = []
    pairs: list[tuple[LayerCall, str, str]] = []
    free = [g for g in groups if not any(_covers(p, g) for p in mapping.values())]
    rest = []
    for call in layers:
        name = torch_name(call.path)
        if call.name in mapping:
            pairs.append((call, mapping[call.name], "mapping"))
        elif name in free:
            pairs.append((call, name, "same name"))
            free.remove(name)
        else:
            rest.append(call)
    left = []
    for call in rest:
        want = signature(call)
        prefix = next((g for g in free if _weight_shape(groups[g]) == want), None)
        if want is None or prefix is None:
            left.append(call)
            continue
        pairs.append((call, prefix, "call order"))
        free.remove(prefix)
    for call, prefix, how in pairs:
        why = fits(call, prefix, how == "mapping")
        if why:
            problems.append(f"{call.name!r} -> {prefix!r} ({how}): {why}")
    problems += [
        f"{c.name!r} (torch weight {signature(c)}): no torch prefix with that weight shape left"
        for c in left
    ]
    problems += [f"torch prefix {p!r} ({sorted(groups[p])}): no layer left" for p in free]
    if problems:
        raise ValueError(
            f"could not match the layers of `{type(module).__name__}` to the torch state_dict: "
            + "; ".join(problems)
            + f". Layers in call order: {[c.name for c in layers]}; torch prefixes: {list(groups)}. "
            "Pass mapping={flax_path: torch_prefix} for the layers that cannot be matched by name "
            "or by order (or example_inputs= if the model's input is not one row for its first "
            "weight)."
        )
    order = {c.name: i for i, c in enumerate(layers)}
    return [(c, p) for c, p, _ in sorted(pairs, key=lambda t: order[t[0].name])]


def _shapes(tree: Any) -> Any:
    return jax.tree.map(lambda a: tuple(np.shape(a)), tree)


def _set(tree: dict, path: Sequence[str], value: Any) -> None:
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = value


def _leaf_paths(tree: Any) -> list[str]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return ["/".join(str(getattr(k, "key", k)) for k in path) for path, _ in flat]


def from_torch(
    module: nn.Module,
    state_dict: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    example_inputs: Any = None,
) -> PyTree:
    """Flax variables for ``module`` from a torch ``state_dict`` (keys unchanged).

    ``module`` is one layer with a converter (its torch reference's own ``state_dict``), or any linen
    model of such layers (``jl.Linear``, ``jl.NLinear``, ``nn.Dense``, the unit-scaled and quantized
    layers, ``GrowingMLP``): its layers are paired with torch key prefixes by ``mapping``, by name,
    then in call order (see the module docstring), every pair checked by the layer's converter and
    the shapes ``module.init`` would create. Values may be torch tensors, numpy or jax arrays; params
    are cast to each layer's ``param_dtype``.

    Args:
        module: a layer or a linen model.
        state_dict: a ``state_dict()`` mapping, or an object with a ``state_dict()`` method.
        mapping: ``{flax_path: torch_prefix}`` (``{"head": "classifier"}``, ``{"block/Linear_1":
            "blocks.0.fc2"}``) for layers the automatic matching cannot pair.
        example_inputs: an input (or a tuple of inputs; arrays or ``jax.ShapeDtypeStruct``) to trace
            the model with; by default ``(1, in)`` from the first torch weight.

    Returns:
        ``{"params": ...}``, accepted by ``module.apply``.

    Raises:
        TypeError: ``state_dict`` is not a mapping (nor has ``state_dict()``), ``mapping`` is not a
            dict of strings, or a single ``module`` has no converter and is not a linen model.
        KeyError: a single layer's keys are missing or unexpected.
        ValueError: shapes do not fit; layers or torch prefixes are left unmatched (the message
            names them and asks for ``mapping``); the model has params no converter covers.

    Example:
        >>> import flax.linen as nn, numpy as np, jaxlinear as jl
        >>> sd = {"0.weight": np.ones((8, 3), np.float32), "0.bias": np.zeros(8, np.float32),
        ...       "2.weight": np.ones((2, 8), np.float32), "2.bias": np.zeros(2, np.float32)}
        >>> model = nn.Sequential([jl.Linear(8), nn.relu, nn.Dense(2)])  # torch Sequential's layout
        >>> v = jl.interop.from_torch(model, sd)
        >>> jax.tree.map(np.shape, v)["params"]["layers_2"]
        {'bias': (2,), 'kernel': (8, 2)}
    """
    state_dict = _state_dict(state_dict)
    _mapping_type(mapping)
    converter = converter_for(module)
    if converter is not None and mapping is None:
        return _named_like_layer(module, converter.from_torch(module, state_dict))
    if not isinstance(module, nn.Module):
        kinds = sorted(t.__name__ for t in registered_types())
        raise TypeError(
            f"`module` must be a flax.linen Module (a layer of {kinds} or a model of them), got "
            f"{type(module).__name__}."
        )
    if example_inputs is not None:
        examples = [example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)]
    else:
        examples = [(p,) for p in _probes(state_dict)][:8]
        if not examples:
            raise ValueError(
                f"`state_dict` has no 2-D or larger weight to build an example input for "
                f"`{type(module).__name__}` from; pass `example_inputs`."
            )
    first_error: Exception | None = None
    for example in examples:  # the model's input is one of the weights' input shapes
        try:
            return _from_torch_traced(module, state_dict, mapping, example)
        except ValueError as err:
            first_error = first_error or err
        except Exception as err:  # noqa: BLE001 - the model rejects this probe input: try the next
            first_error = first_error or ValueError(
                f"`{type(module).__name__}` cannot be called on an input of shape "
                f"{example[0].shape if hasattr(example[0], 'shape') else example}: {err}; pass "
                "`example_inputs`."
            )
    assert first_error is not None
    raise first_error


def _from_torch_traced(
    module: nn.Module, state_dict: Mapping[str, Any], mapping: Any, example: tuple
) -> PyTree:
    abstract = _abstract_variables(module, example)
    layers = _layers(module, abstract, example)
    mapping = _check_mapping(mapping, layers)
    groups = _groups(state_dict)
    converted: dict[str, PyTree] = {}

    def signature(call: LayerCall) -> tuple[int, ...] | None:
        shapes = dict(params_at(abstract, call.path))
        zeros = {k: np.zeros(v.shape, v.dtype) for k, v in shapes.items()}
        try:
            return _weight_shape(
                converter_for(call.module).to_torch(call.module, {"params": zeros})
            )
        except (KeyError, ValueError, TypeError):
            return None

    def fits(call: LayerCall, prefix: str, mapped: bool) -> str | None:
        sub = _under(state_dict, prefix) if mapped else groups[prefix]
        try:
            variables = converter_for(call.module).from_torch(call.module, sub)
        except (KeyError, ValueError, TypeError) as err:
            return str(err).strip("\"'").rstrip(".")
        got, want = _shapes(variables["params"]), _shapes(dict(params_at(abstract, call.path)))
        if got != want:
            return f"params of shapes {got}, the layer needs {want}"
        converted[call.name] = variables["params"]
        return None

    pairs = _match(module, layers, groups, mapping, signature, fits)
    params: dict[str, Any] = {}
    for call, _ in pairs:
        if not call.path:
            params = dict(converted[call.name])
        else:
            _set(params, call.path, converted[call.name])
    missing = sorted(set(_leaf_paths(nn.unbox(abstract["params"]))) - set(_leaf_paths(params)))
    others = sorted(set(abstract) - {"params"})
    if missing or others:
        raise ValueError(
            f"`{type(module).__name__}` has variables no converter covers (from_torch converts "
            f"{sorted(t.__name__ for t in registered_types())}): params {missing}, collections "
            f"{others}; load them yourself and merge."
        )
    return {"params": _boxed_like(abstract["params"], params)}


def _is_box(x: Any) -> bool:
    return isinstance(x, nn.meta.AxisMetadata)


def _boxed_like(like: Any, params: Any) -> Any:
    """``params`` in the partitioning boxes ``module.init`` creates (a model with ``kernel_axes``)."""
    if not any(_is_box(x) for x in jax.tree.leaves(like, is_leaf=_is_box)):
        return params
    return jax.tree.map(
        lambda b, v: b.replace_boxed(v) if _is_box(b) else v, like, params, is_leaf=_is_box
    )


def _named_like_layer(module: Any, variables: Any) -> Any:
    """One layer's converted variables boxed with its own names (``module.param_axes()``)."""
    axes = module.param_axes() if callable(getattr(module, "param_axes", None)) else {}
    if not any(axes.values()):
        return variables
    params = {
        k: v if axes.get(k) is None else nn.LogicallyPartitioned(v, axes[k])
        for k, v in variables["params"].items()
    }
    return {**variables, "params": params}


def to_torch(
    module: nn.Module,
    variables: PyTree,
    *,
    mapping: Mapping[str, str] | None = None,
    like: Any = None,
    example_inputs: Any = None,
) -> dict[str, np.ndarray]:
    """The torch ``state_dict`` (numpy arrays) for ``variables`` of a layer or a whole model.

    The variables are checked against ``module`` first (param names, shapes, a bias iff
    ``use_bias``). For a model, each layer's keys get a prefix: ``mapping[path]``, else the prefix
    the same layer gets from :func:`from_torch` against ``like`` (a torch ``state_dict`` or module to
    take key names from), else the path dotted (Flax ``nn.Sequential``'s ``layers_{i}`` -> ``{i}``,
    torch ``nn.Sequential``'s names). Load it with
    ``ref.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.

    Args:
        module: a layer with a converter, or a linen model of such layers.
        variables: its variables.
        mapping: ``{flax_path: torch_prefix}``, as in :func:`from_torch`.
        like: a torch ``state_dict`` (or an object with ``state_dict()``) whose key names to use.
        example_inputs: inputs to trace the model with (default: one row for its first kernel).

    Raises:
        TypeError: ``variables`` is not a mapping with ``params``.
        ValueError: the variables do not fit ``module``, hold params no converter covers, or the
            layers cannot be matched to ``like``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.Linear(4)
        >>> sd = jl.interop.to_torch(layer, layer.init(jax.random.key(0), np.ones((1, 3))))
        >>> {k: v.shape for k, v in sd.items()}
        {'weight': (4, 3), 'bias': (4,)}
        >>> jl.interop.to_torch(jl.Linear(5), layer.init(jax.random.key(0), np.ones((1, 3))))
        Traceback (most recent call last):
        ...
        ValueError: `variables['params']['kernel']` for Linear(5, use_bias=True) must have shape (in, 5), got (3, 4).
    """
    _mapping_type(mapping)
    converter = converter_for(module)
    if converter is not None and mapping is None and like is None:
        return converter.to_torch(module, variables)
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be a flax.linen Module, got {type(module).__name__}.")
    layer_params(variables)  # TypeError unless `variables` is a model's variables
    example = () if example_inputs is None else example_inputs
    layers = _layers(module, variables, example if isinstance(example, tuple) else (example,))
    mapping = _check_mapping(mapping, layers)
    exported = {
        c.name: converter_for(c.module).to_torch(c.module, {"params": params_at(variables, c.path)})
        for c in layers
    }
    covered = {c.name for c in layers}
    stray = [
        p
        for p in _leaf_paths(layer_params(variables))
        if not any(p == n or p.startswith(n + "/") or not n for n in covered)
    ]
    if stray:
        raise ValueError(
            f"`variables` hold params no converter covers in `{type(module).__name__}`: {stray}."
        )
    if like is not None:
        groups = _groups(_state_dict(like))
        reference = _state_dict(like)

        def fits(call: LayerCall, prefix: str, mapped: bool) -> str | None:
            want = _under(reference, prefix) if mapped else groups[prefix]
            got = exported[call.name]
            want_shapes = {k: _value_shape(v) for k, v in want.items()}
            got_shapes = {k: v.shape for k, v in got.items()}
            return None if want_shapes == got_shapes else f"{got_shapes} != {want_shapes}"

        pairs = _match(
            module, layers, groups, mapping, lambda c: _weight_shape(exported[c.name]), fits
        )
    else:
        pairs = [(c, mapping.get(c.name, torch_name(c.path))) for c in layers]
    state: dict[str, np.ndarray] = {}
    for call, prefix in pairs:
        for key, value in exported[call.name].items():
            name = f"{prefix}.{key}" if prefix else key
            if name in state:
                raise ValueError(f"two layers export the torch key {name!r}; pass `mapping`.")
            state[name] = value
    if like is not None:  # the reference's key order
        order = {k: i for i, k in enumerate(_state_dict(like))}
        state = dict(sorted(state.items(), key=lambda kv: order.get(kv[0], len(order))))
    return state
