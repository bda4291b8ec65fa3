"""``from_torch`` / ``to_torch`` for native NNX models: the linen path, through the walker's NNX reading.

An NNX model's layers are found by :func:`jaxlinear.walker.walk_nnx` (call order, paths such as
``("blocks", 0, "fc")``, each layer answering as its linen twin); each twin's converter does the
conversion, and the layers are paired with torch key prefixes exactly as for linen models
(``mapping``, then names, then call order; the path dotted is torch's name, so an ``nnx.List`` of
blocks matches a ``torch.nn.ModuleList``). The result is an ``nnx.State`` for ``nnx.update``.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxlinear.interop._model import (
    _check_mapping,
    _groups,
    _mapping_type,
    _match,
    _probes,
    _shapes,
    _state_dict,
    _under,
    _weight_shape,
    torch_name,
)
from jaxlinear.interop._registry import converter_for, registered_types
from jaxlinear.walker import LayerCall, linen_twin, walk_nnx

__all__ = ["is_nnx", "nnx_from_torch", "nnx_to_torch"]


def is_nnx(module: Any) -> bool:
    """Whether ``module`` is an ``nnx.Module`` (the NNX entry points of the model workflows)."""
    from flax import nnx

    return isinstance(module, nnx.Module)


def _pure_params(model: Any) -> dict:
    from flax import nnx

    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def _at(tree: Any, path: tuple) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def _leaf_paths(tree: Any) -> list[tuple]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [tuple(getattr(k, "key", getattr(k, "idx", k)) for k in path) for path, _ in flat]


def _layers(model: Any, example: tuple) -> tuple[list[LayerCall], dict[str, tuple]]:
    """The converter-covered layers in call order, with string paths (torch names), and the typed
    path of each (``nnx.List`` indices stay ints in the state)."""
    calls = walk_nnx(model, *example, types=registered_types()).layers
    if not calls:
        kinds = sorted(t.__name__ for t in registered_types())
        raise ValueError(
            f"`module` must call at least one layer with a converter (the linen twins of {kinds}), "
            f"got none in `{type(model).__name__}`."
        )
    typed = {c.name: c.path for c in calls}
    return [dataclasses.replace(c, path=tuple(map(str, c.path))) for c in calls], typed


def _to_state(model: Any, params: dict[tuple, Mapping[str, Any]]) -> Any:
    """``nnx.state(model, nnx.Param)`` with the converted layers' params in place."""
    from flax import nnx

    state = nnx.state(model, nnx.Param)
    flat = {}
    for path, layer in params.items():
        for name, value in layer.items():
            flat[(*path, name)] = value
    pure: dict = {}
    for key, value in flat.items():
        node = pure
        for k in key[:-1]:
            node = node.setdefault(k, {})
        node[key[-1]] = value
    nnx.replace_by_pure_dict(state, pure)
    return state


def _check_covered(model: Any, covered: list[tuple]) -> None:
    stray = [
        "/".join(map(str, p))
        for p in _leaf_paths(_pure_params(model))
        if not any(p[: len(c)] == c for c in covered)
    ]
    if stray:
        raise ValueError(
            f"`{type(model).__name__}` has params no converter covers (from_torch converts the "
            f"layers {sorted(t.__name__ for t in registered_types())} and Flax's NNX twins of "
            f"them): {stray}; load them yourself with nnx.update."
        )


def nnx_from_torch(
    model: Any, state_dict: Any, *, mapping: Mapping[str, str] | None = None, example_inputs: Any
) -> Any:
    """The NNX branch of :func:`jaxlinear.interop.from_torch`: an ``nnx.State`` of the model's params."""
    state_dict = _state_dict(state_dict)
    _mapping_type(mapping)
    twin = linen_twin(model)
    if twin is not None and converter_for(twin) is not None and mapping is None:
        params = converter_for(twin).from_torch(twin, state_dict)["params"]
        want = _shapes(_pure_params(model))
        if _shapes(dict(params)) != want:
            raise ValueError(
                f"the torch weights give params of shapes {_shapes(dict(params))}, the layer "
                f"`{type(model).__name__}` has {want}."
            )
        return _to_state(model, {(): params})
    if example_inputs is not None:
        examples = [example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)]
    else:
        examples = [(p,) for p in _probes(state_dict)][:8]
        if not examples:
            raise ValueError(
                f"`state_dict` has no 2-D or larger weight to build an example input for "
                f"`{type(model).__name__}` from; pass `example_inputs`."
            )
    first_error: Exception | None = None
    for example in examples:
        try:
            return _from_torch_walked(model, state_dict, mapping, example)
        except ValueError as err:
            first_error = first_error or err
        except Exception as err:  # noqa: BLE001 - the model rejects this probe input: try the next
            first_error = first_error or ValueError(
                f"`{type(model).__name__}` cannot be called on an input of shape "
                f"{getattr(example[0], 'shape', example)}: {err}; pass `example_inputs`."
            )
    assert first_error is not None
    raise first_error


def _from_torch_walked(
    model: Any, state_dict: Mapping[str, Any], mapping: Any, example: tuple
) -> Any:
    layers, typed = _layers(model, example)
    mapping = _check_mapping(mapping, layers)
    groups = _groups(state_dict)
    current = _pure_params(model)
    converted: dict[str, Any] = {}

    def own(call: LayerCall) -> dict:
        return {k: v for k, v in _at(current, typed[call.name]).items() if k in call.shapes}

    def signature(call: LayerCall) -> tuple[int, ...] | None:
        zeros = {k: np.zeros(np.shape(v), v.dtype) for k, v in own(call).items()}
        try:
            exported = converter_for(call.module).to_torch(call.module, {"params": zeros})
        except (KeyError, ValueError, TypeError):
            return None
        return _weight_shape(exported)

    def fits(call: LayerCall, prefix: str, mapped: bool) -> str | None:
        sub = _under(state_dict, prefix) if mapped else groups[prefix]
        try:
            variables = converter_for(call.module).from_torch(call.module, sub)
        except (KeyError, ValueError, TypeError) as err:
            return str(err).strip("\"'").rstrip(".")
        got, want = _shapes(dict(variables["params"])), _shapes(own(call))
        if got != want:
            return f"params of shapes {got}, the layer has {want}"
        converted[call.name] = variables["params"]
        return None

    pairs = _match(model, layers, groups, mapping, signature, fits)
    _check_covered(model, [typed[c.name] for c, _ in pairs])
    return _to_state(model, {typed[c.name]: converted[c.name] for c, _ in pairs})


def nnx_to_torch(
    model: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    like: Any = None,
    example_inputs: Any = None,
) -> dict[str, np.ndarray]:
    """The NNX branch of :func:`jaxlinear.interop.to_torch`: the model's params as a torch
    ``state_dict``."""
    _mapping_type(mapping)
    current = _pure_params(model)
    twin = linen_twin(model)
    if twin is not None and converter_for(twin) is not None and mapping is None and like is None:
        return converter_for(twin).to_torch(twin, {"params": current})
    example = () if example_inputs is None else example_inputs
    layers, typed = _layers(model, example if isinstance(example, tuple) else (example,))
    mapping = _check_mapping(mapping, layers)
    exported = {}
    for c in layers:
        params = {k: v for k, v in _at(current, typed[c.name]).items() if k in c.shapes}
        exported[c.name] = converter_for(c.module).to_torch(c.module, {"params": params})
    _check_covered(model, list(typed.values()))
    if like is not None:
        reference = _state_dict(like)
        groups = _groups(reference)

        def fits(call: LayerCall, prefix: str, mapped: bool) -> str | None:
            want = _under(reference, prefix) if mapped else groups[prefix]
            got = exported[call.name]
            want_shapes = {k: tuple(np.shape(v)) for k, v in want.items()}
            got_shapes = {k: v.shape for k, v in got.items()}
            return None if want_shapes == got_shapes else f"{got_shapes} != {want_shapes}"

        pairs = _match(
            model, layers, groups, mapping, lambda c: _weight_shape(exported[c.name]), fits
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
    if like is not None:
        order = {k: i for i, k in enumerate(_state_dict(like))}
        state = dict(sorted(state.items(), key=lambda kv: order.get(kv[0], len(order))))
    return state
