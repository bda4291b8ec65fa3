"""``from_torch`` / ``to_torch`` for native NNX models: the linen path, through the walker's NNX reading.

An NNX model's layers are found by :func:`jaxlinear.walker.walk_nnx` (call order, paths such as
``("blocks", 0, "fc")``, each layer answering as its linen twin); each twin's converter does the
conversion, and the layers are paired with torch key prefixes exactly as for linen models
(``mapping``, names, shapes, then both models' call order when the torch module is given; the path
dotted is torch's name, so an ``nnx.List`` of blocks matches a ``torch.nn.ModuleList``). Given the torch
module and example inputs, both models run and must agree (``check``). The result is an ``nnx.State``
for ``nnx.update``.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxlinear.interop._model import (
    _as_tuple,
    _check_mapping,
    _groups,
    _mapping_type,
    _match,
    _pairs_text,
    _settings,
    _shapes,
    _submodule,
    _under,
    _warn_unchecked,
    _weight_shape,
    export_state,
    first_fitting,
    from_torch_arguments,
    trace_like,
)
from jaxlinear.interop._registry import converter_for, registered_types
from jaxlinear.interop._torch_run import compare_outputs, is_torch_module, run_torch, to_jax_inputs
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


def _converter(module: Any) -> Any:
    """The converter of a layer the walker found by the registered types (never None)."""
    converter = converter_for(module)
    assert converter is not None, type(module).__name__
    return converter


def _leaf_paths(tree: Any) -> list[tuple]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [tuple(getattr(k, "key", getattr(k, "idx", k)) for k in path) for path, _ in flat]


def _layers(model: Any, example: tuple) -> tuple[list[LayerCall], dict[str, tuple]]:
    """The converter-covered layers with params, in call order, with string paths (torch names), and
    the typed path of each (``nnx.List`` indices stay ints in the state)."""
    calls = [c for c in walk_nnx(model, *example, types=registered_types()).layers if c.shapes]
    if not calls:
        kinds = sorted(t.__name__ for t in registered_types())
        raise ValueError(
            f"`module` must call at least one layer with a converter (the linen twins of {kinds}), "
            f"got none in `{type(model).__name__}`."
        )
    typed = {c.name: c.path for c in calls}
    return [dataclasses.replace(c, path=tuple(map(str, c.path))) for c in calls], typed


def _to_state(model: Any, params: dict[tuple, Mapping[str, Any]]) -> Any:
    """``nnx.state(model, nnx.Param)`` (a new State) with the converted layers' params in place."""
    from flax import nnx

    state = nnx.clone(nnx.state(model, nnx.Param))
    pure: dict = {}
    for path, layer in params.items():
        node = pure
        for k in path:
            node = node.setdefault(k, {})
        node.update(layer)
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


def _run_check(model: Any, state: Any, example: tuple, torch_output: Any, pairs: str) -> None:
    """The port's output on ``example`` (a copy of ``model`` updated with ``state``) vs torch's."""
    from flax import nnx

    copy = nnx.clone(model)
    nnx.update(copy, state)
    with jax.default_matmul_precision("highest"):
        output = copy(*to_jax_inputs(example))
    problems = compare_outputs(output, torch_output)
    if problems:
        raise ValueError(
            f"the port of `{type(model).__name__}` does not compute what the torch module does on "
            f"the example inputs: {'; '.join(problems)}. {pairs}Check that both models are built "
            "alike (activations, epsilons, residuals) or pass `mapping`; `check=False` skips this."
        )


def nnx_from_torch(
    model: Any,
    source: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    example_inputs: Any = None,
    check: bool | None = None,
) -> Any:
    """The NNX branch of :func:`jaxlinear.interop.from_torch`: an ``nnx.State`` of the model's params."""
    torch_module, state_dict, examples, do_check = from_torch_arguments(
        source, mapping, example_inputs, check
    )
    twin = linen_twin(model)
    converter = None if twin is None else converter_for(twin)
    if converter is not None and mapping is None:  # one layer: its own state_dict
        params = dict(converter.from_torch(twin, state_dict)["params"])
        want = _shapes(_pure_params(model))
        if _shapes(params) != want:
            raise ValueError(
                f"the torch weights give params of shapes {_shapes(params)}, the layer "
                f"`{type(model).__name__}` has {want}."
            )
        why = _settings(converter, twin, torch_module)
        if why:
            raise ValueError(f"`{type(model).__name__}` does not match the torch layer: {why}.")
        state = _to_state(model, {(): params})
        if do_check:
            _run_check(model, state, examples[0], run_torch(torch_module, examples[0])[1], "")
        return state

    def convert(traced: Any, order: Mapping[str, int] | None) -> tuple[Any, list]:
        layers, typed = traced
        return _from_torch_walked(model, state_dict, mapping, layers, typed, order, torch_module)

    example, torch_output, state, pairs = first_fitting(
        type(model).__name__,
        examples,
        lambda example: _layers(model, example),
        torch_module,
        convert,
    )
    if do_check:
        _run_check(model, state, example, torch_output, _pairs_text(pairs))
    return state


def _from_torch_walked(
    model: Any,
    state_dict: Mapping[str, Any],
    mapping: Any,
    layers: list[LayerCall],
    typed: dict[str, tuple],
    order: Mapping[str, int] | None,
    torch_module: Any,
) -> tuple[Any, list[tuple[LayerCall, str]]]:
    mapping = _check_mapping(mapping, layers)
    groups = _groups(state_dict)
    current = _pure_params(model)
    converted: dict[str, Any] = {}

    def own(call: LayerCall) -> dict:
        return {k: v for k, v in _at(current, typed[call.name]).items() if k in call.shapes}

    def signature(call: LayerCall) -> tuple[int, ...] | None:
        zeros = {k: np.zeros(np.shape(v), v.dtype) for k, v in own(call).items()}
        try:
            exported = _converter(call.module).to_torch(call.module, {"params": zeros})
        except (KeyError, ValueError, TypeError):
            return None
        return _weight_shape(exported)

    def fits(call: LayerCall, prefix: str, mapped: bool) -> str | None:
        sub = _under(state_dict, prefix) if mapped else groups[prefix]
        converter = _converter(call.module)
        try:
            variables = converter.from_torch(call.module, sub)
        except (KeyError, ValueError, TypeError) as err:
            return str(err).strip("\"'").rstrip(".")
        got, want = _shapes(dict(variables["params"])), _shapes(own(call))
        if got != want:
            return f"params of shapes {got}, the layer has {want}"
        why = _settings(converter, call.module, _submodule(torch_module, prefix))
        if why:
            return why
        converted[call.name] = variables["params"]
        return None

    pairs = _match(model, layers, groups, mapping, signature, fits, order)
    _check_covered(model, [typed[c.name] for c, _ in pairs])
    if torch_module is None:
        _warn_unchecked([c.module for c, _ in pairs])
    state = _to_state(model, {typed[c.name]: converted[c.name] for c, _ in pairs})
    return state, pairs


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
    torch_like = like if is_torch_module(like) else None
    current = _pure_params(model)
    twin = linen_twin(model)
    converter = None if twin is None else converter_for(twin)
    if converter is not None and mapping is None:
        why = _settings(converter, twin, torch_like)
        if why:
            raise ValueError(f"`{type(model).__name__}` does not match the torch layer: {why}.")
        return converter.to_torch(twin, {"params": current})
    user = None if example_inputs is None else _as_tuple(example_inputs)
    (layers, typed), order = trace_like(
        type(model).__name__, user, torch_like, lambda example: _layers(model, example)
    )
    mapping = _check_mapping(mapping, layers)
    exported = {}
    for c in layers:
        params = {k: v for k, v in _at(current, typed[c.name]).items() if k in c.shapes}
        exported[c.name] = _converter(c.module).to_torch(c.module, {"params": params})
    _check_covered(model, list(typed.values()))
    return export_state(model, layers, exported, mapping, like, order)
