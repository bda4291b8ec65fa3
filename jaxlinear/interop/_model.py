"""``from_torch`` / ``to_torch``: one layer, or a whole linen model of registered layers.

A layer with a converter (``jl.Linear``, ``nn.Dense``, ``nn.LayerNorm``, ``nn.Embed``, ...) converts its
own ``state_dict`` (keys unchanged). Any other linen model is walked with
:func:`jaxlinear.walker.find_layers` (its layers in call order, shapes from an abstract ``init``) and
each layer is paired with a torch key prefix:

1. ``mapping={flax_path: torch_prefix}`` first (``"block/Linear_1": "blocks.0.fc"``);
2. then by name: a layer whose path, dotted, is a torch prefix (``fc1`` <-> ``fc1.weight``; Flax
   ``nn.Sequential``'s ``layers_2`` <-> torch ``nn.Sequential``'s ``2``; a setup list's ``layer_3`` <->
   ``ModuleList``'s ``layer.3``);
3. then by weight shape: a layer and a torch prefix that are the only ones left with that shape;
4. then, among equal-shaped layers, in the order they are called, on both sides: the walker's trace
   orders the Flax layers, and a run of the torch module with forward hooks orders torch's. This needs
   the torch module itself: from a bare ``state_dict`` or a weights file (whose keys are sorted),
   equal-shaped layers that names do not decide are refused with a ``ValueError`` naming them.

A model class with a registered :class:`~jaxlinear.interop.ModelLayout` (``GrowingMLP``)
adds its default ``mapping`` (gromo's ``layers.{i}.layer``) and, for params stored larger than the
torch reference holds them (capacity buckets), the model at the reference's shapes.

Every pair is checked by the layer's converter and the shapes ``init`` would create, and, given the torch
module, the settings a ``state_dict`` does not hold (a LayerNorm's ``eps``). Given the torch module and
example inputs, both models run and the outputs must agree (``check``). Anything left unmatched raises a
``ValueError`` that names the layers and prefixes and asks for ``mapping``. Layers lifted by ``nn.vmap``
/ ``nn.scan`` (stacked params) are not converted.
"""

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from jaxlinear._checks import ParamMismatchError, ParamNotFoundError
from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import layer_params
from jaxlinear.interop._norms import unchecked_epsilon
from jaxlinear.interop._registry import (
    Converter,
    ModelLayout,
    converter_for,
    layout_for,
    registered_types,
)
from jaxlinear.interop._torch_run import compare_outputs, is_torch_module, run_torch, to_jax_inputs
from jaxlinear.walker import LayerCall, find_layers, params_at, replace_at

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


# torch.nn.MultiheadAttention's own weights; its ``out_proj`` Linear belongs to its group
ATTENTION_LEAVES = ("in_proj_weight", "q_proj_weight")


def _groups(state_dict: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The keys grouped by layer prefix, in declaration order (see :func:`_ordered`), leaves as keys.
    A ``MultiheadAttention``'s ``out_proj.*`` stays in its group."""
    groups: dict[str, dict[str, Any]] = {}
    for key in _ordered(list(state_dict)):
        prefix, leaf = _split(key)
        groups.setdefault(prefix, {})[leaf] = state_dict[key]
    for prefix in [p for p, g in groups.items() if any(k in g for k in ATTENTION_LEAVES)]:
        out = f"{prefix}.out_proj" if prefix else "out_proj"
        for leaf, value in groups.pop(out, {}).items():
            groups[prefix][f"out_proj.{leaf}"] = value
    return groups


def _under(state_dict: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The keys under ``prefix`` with the prefix removed (everything for ``""``)."""
    if not prefix:
        return dict(state_dict)
    start = prefix + "."
    return {k[len(start) :]: v for k, v in state_dict.items() if k.startswith(start)}


def _covers(prefix: str, other: str) -> bool:
    return not prefix or other == prefix or other.startswith(prefix + ".")


def _torch_part(part: str) -> str:
    """Flax ``nn.Sequential``'s ``layers_{i}`` -> ``{i}``; a setup list ``blocks_{i}`` (lower-case
    name) -> ``blocks.{i}`` (torch's ``ModuleList``); Flax's automatic ``Dense_0`` stays."""
    part = re.sub(r"^layers_(\d+)$", r"\1", part)
    return re.sub(r"^([a-z][A-Za-z0-9_]*)_(\d+)$", r"\1.\2", part)


def torch_name(path: Sequence[str]) -> str:
    """The default torch prefix of a Flax layer path: dotted, Flax ``nn.Sequential``'s ``layers_{i}``
    written as torch ``nn.Sequential``'s ``{i}``, a list of submodules ``blocks_{i}`` (a lower-case
    name) as torch ``ModuleList``'s ``blocks.{i}``.

    Example:
        >>> torch_name(("layers_2",)), torch_name(("block", "Dense_0")), torch_name(("layer_3", "fc"))
        ('2', 'block.Dense_0', 'layer.3.fc')
    """
    return ".".join(_torch_part(p) for p in path)


def torch_names(path: Sequence[str]) -> list[str]:
    """The torch prefixes a Flax layer's name matches: :func:`torch_name`, then the path dotted as
    it is.

    Example:
        >>> torch_names(("encoder", "layer_3", "output"))
        ['encoder.layer.3.output', 'encoder.layer_3.output']
    """
    first, plain = torch_name(path), ".".join(path)
    return [first] if plain == first else [first, plain]


def _value_shape(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, tuple | list) and value:  # torch.ao packed params: (qweight, bias)
        value = value[0]
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(int(d) for d in shape)


WEIGHTS = (
    "weight",
    "params.weight",
    "_packed_params._packed_params",
    "in_proj_weight",
    "q_proj_weight",
)


def _probes(state_dict: Mapping[str, Any], limit: int = 8) -> list[np.ndarray]:
    """One-row inputs to trace a model with when no example is given: ``(1, in)`` (standard normal,
    seed 0) for each distinct torch ``(out, in)`` weight in the state_dict's order, ``(1, *n, in)`` for
    a delu ``(*n, in, out)`` one, then token ids ``(1, 1)`` (zeros) for a model that starts with an
    embedding."""
    rng = np.random.default_rng(0)
    shapes: list[tuple[int, ...]] = []
    for key in _ordered(list(state_dict)):
        if _split(key)[1] not in WEIGHTS:
            continue
        shape = _value_shape(state_dict[key])
        if shape is None or len(shape) < 2:
            continue
        probe = (1, shape[1]) if len(shape) == 2 else (1, *shape[:-1])
        if probe not in shapes:
            shapes.append(probe)
    probes = [rng.standard_normal(s).astype(np.float32) for s in shapes[: limit - 1]]
    return [*probes, np.zeros((1, 1), np.int32)] if probes else []


def _natural(key: str) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", key)]


def _ordered(keys: list[str]) -> list[str]:
    """``keys`` in their order, or in natural order (``blocks.2`` before ``blocks.10``) when they
    are sorted as strings: weight files (safetensors) store keys sorted, losing declaration order."""
    return sorted(keys, key=_natural) if keys == sorted(keys) else keys


def _abstract_variables(module: nn.Module, example: tuple) -> PyTree:
    arrays = [i for i, a in enumerate(example) if hasattr(a, "shape") and hasattr(a, "dtype")]

    def init(*values):
        args = list(example)
        for i, value in zip(arrays, values, strict=True):
            args[i] = value
        keys = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
        return module.init(keys, *args)

    shapes = [jax.ShapeDtypeStruct(np.shape(example[i]), example[i].dtype) for i in arrays]
    return jax.eval_shape(init, *shapes)


def _variables_error(module: nn.Module, err: Exception) -> ValueError | None:
    """A clear error when the model's own error says the variables are not the module's."""
    inner = err.__cause__ if isinstance(err, ValueError) and err.__cause__ is not None else err
    kind = type(inner).__name__
    if isinstance(inner, ParamNotFoundError):  # a jaxlinear layer's own check
        return ValueError(f"`variables` lack params of `{type(module).__name__}`: {inner}")
    if "ScopeParamShapeError" in kind or isinstance(inner, ParamMismatchError):
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


def _weight_shape(state: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The shape of a layer's main weight in torch layout (its signature for matching)."""
    for leaf in WEIGHTS:
        if leaf in state:
            return _value_shape(state[leaf])
    return None


def _is_index(value: Any) -> bool:
    """An integer (or bool) tensor: a buffer of indices or counts, not a weight."""
    dtype = str(getattr(value, "dtype", "float"))
    return ("int" in dtype or "bool" in dtype) and "qint" not in dtype and "quint" not in dtype


def _match(
    module: nn.Module,
    layers: list[LayerCall],
    groups: dict[str, dict[str, Any]],
    mapping: dict[str, str],
    signature: Callable[[LayerCall], tuple[int, ...] | None],
    fits: Callable[[LayerCall, str, bool], str | None],
    order: Mapping[str, int] | None = None,
) -> list[tuple[LayerCall, str]]:
    """Pair every layer with a torch prefix: ``mapping``, then same names, then the only layer and
    prefix left with one weight shape (``signature``), then equal-shaped ones in call order: the
    layers' (the walker's) with torch's ``order`` (``{torch module name: first call}``, from a run of
    the torch module; ``None`` for a bare state_dict, which refuses them). ``fits(call, prefix,
    mapped)`` returns None or why a pair does not fit. Raises ``ValueError`` naming what is left."""
    problems: list[str] = []
    ambiguous: list[str] = []
    pairs: list[tuple[LayerCall, str, str]] = []
    free = [g for g in groups if not any(_covers(p, g) for p in mapping.values())]
    rest = []
    for call in layers:
        name = next((n for n in torch_names(call.path) if n in free), None)
        if call.name in mapping:
            pairs.append((call, mapping[call.name], "mapping"))
        elif name is not None:
            pairs.append((call, name, "same name"))
            free.remove(name)
        else:
            rest.append(call)
    shapes = {c.name: signature(c) for c in rest}
    left = [c for c in rest if shapes[c.name] is None]
    buckets: dict[tuple[int, ...], tuple[list[LayerCall], list[str]]] = {}
    for call in rest:
        if shapes[call.name] is not None:
            buckets.setdefault(shapes[call.name], ([], []))[0].append(call)  # type: ignore[index]
    for prefix in free:
        shape = _weight_shape(groups[prefix])
        if shape in buckets:
            buckets[shape][1].append(prefix)
    for shape, (calls, prefixes) in buckets.items():
        if len(calls) == 1 and len(prefixes) == 1:
            pairs.append((calls[0], prefixes[0], "the only ones of their shape"))
            free.remove(prefixes[0])
            continue
        rank = order or {}
        called = sorted((p for p in prefixes if p in rank), key=lambda p: rank[p])
        if len(calls) > 1 and len(prefixes) > 1 and (order is None or len(called) < len(calls)):
            flax_names = [c.name for c in calls]
            if order is None:
                ambiguous.append(f"Flax {flax_names} and torch {prefixes} (torch weight {shape})")
            else:
                uncalled = [p for p in prefixes if p not in order]
                ambiguous.append(
                    f"Flax {flax_names} and torch {prefixes} (torch weight {shape}): torch did not "
                    f"call {uncalled} on the example inputs, so its call order does not decide"
                )
            for prefix in prefixes:
                free.remove(prefix)
            continue
        ordered = called + [p for p in prefixes if p not in called]
        for call, prefix in zip(calls, ordered, strict=False):
            pairs.append((call, prefix, "call order"))
            free.remove(prefix)
        left += calls[len(ordered) :]
    for call, prefix, how in pairs:
        why = fits(call, prefix, how == "mapping")
        if why:
            problems.append(f"{call.name!r} -> {prefix!r} ({how}): {why}")
    problems += [
        f"{c.name!r} (torch weight {signature(c)}): no torch prefix with that weight shape left"
        for c in left
    ]
    buffers = [p for p in free if all(_is_index(v) for v in groups[p].values())]
    if buffers:  # position ids and counters a layer computes itself (BERT's position_ids)
        warnings.warn(
            "ignored integer buffers that no layer takes: "
            f"{[f'{p}.{k}' if p else k for p in buffers for k in groups[p]]}",
            UserWarning,
            stacklevel=4,
        )
    problems += [
        f"torch prefix {p!r} ({sorted(groups[p])}): no layer left" for p in free if p not in buffers
    ]
    if ambiguous:
        problems.insert(
            0,
            "equal-shaped layers whose names do not decide: "
            + "; ".join(ambiguous)
            + (
                " (a state_dict or weights file does not say which torch layer is called first: "
                "pass the torch module itself, whose call order decides, or mapping=)"
                if order is None
                else ""
            ),
        )
    if problems:
        raise ValueError(
            f"could not match the layers of `{type(module).__name__}` to the torch state_dict: "
            + "; ".join(problems)
            + f". Layers in call order: {[c.name for c in layers]}; torch prefixes: {list(groups)}. "
            "Pass mapping={flax_path: torch_prefix} for the layers that cannot be matched by name "
            "or by order (or example_inputs= if the model's input is not one row for its first "
            "weight)."
        )
    index = {c.name: i for i, c in enumerate(layers)}
    return [(c, p) for c, p, _ in sorted(pairs, key=lambda t: index[t[0].name])]


def _converter(module: Any) -> Converter:
    """The converter of a layer the walker found (found because it has one)."""
    converter = converter_for(module)
    if converter is None:
        raise TypeError(f"{type(module).__name__} has no converter.")
    return converter


def _shapes(tree: Any) -> Any:
    return jax.tree.map(lambda a: tuple(np.shape(a)), tree)


def _leaf_paths(tree: Any) -> list[str]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return ["/".join(str(getattr(k, "key", k)) for k in path) for path, _ in flat]


def _as_tuple(example_inputs: Any) -> tuple:
    return example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)


def _settings(converter: Any, module: Any, torch_module: Any) -> str | None:
    """Why the torch layer's settings (not in its state_dict) differ from the Flax layer's, or None."""
    if converter is None or converter.check_torch is None or torch_module is None:
        return None
    return converter.check_torch(module, torch_module)


def _submodule(torch_module: Any, prefix: str) -> Any:
    if torch_module is None:
        return None
    return dict(torch_module.named_modules()).get(prefix)


def _check_arg(check: Any, torch_module: Any) -> None:
    if check is not None and not isinstance(check, bool):
        raise TypeError(f"`check` must be a bool or None, got {check!r}.")
    if check and torch_module is None:
        raise ValueError(
            "`check=True` runs the torch module beside the port: pass the torch module as "
            "`state_dict`, not a state_dict or weights file."
        )


def _run_check(
    module: Any, variables: PyTree, example: tuple, torch_output: Any, pairs: str
) -> None:
    inputs = to_jax_inputs(example)
    arrays = all(hasattr(x, "shape") and hasattr(x, "dtype") for x in inputs)
    apply = jax.jit(module.apply) if arrays else module.apply  # compiled: faster than op by op
    with jax.default_matmul_precision("highest"):
        output = apply(variables, *inputs)
    problems = compare_outputs(output, torch_output)
    if problems:
        raise ValueError(
            f"the port of `{type(module).__name__}` does not compute what the torch module does on "
            f"the example inputs: {'; '.join(problems)}. {pairs}Check that both models are built "
            "alike (activations, epsilons, residuals) or pass `mapping`; `check=False` skips this."
        )


def from_torch(
    module: nn.Module,
    state_dict: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    example_inputs: Any = None,
    check: bool | None = None,
) -> PyTree:
    """Flax variables for ``module`` from a torch module or ``state_dict`` (keys unchanged).

    ``module`` is one layer with a converter (its torch reference's own ``state_dict``), or any linen
    model of such layers (``jl.Linear``, ``jl.NLinear``, ``nn.Dense``, ``nn.DenseGeneral``,
    ``nn.Embed``, ``nn.LayerNorm``, ``nn.RMSNorm``, ``nn.MultiHeadDotProductAttention``, the
    unit-scaled and quantized layers): its layers are paired with torch key prefixes by ``mapping``
    (a model with a registered layout, such as ``GrowingMLP``, supplies gromo's names), by name, by
    weight shape, then in the order both models call them (see the module docstring), every pair
    checked by the layer's converter and the shapes ``module.init`` would create. Never a silent
    guess: given the torch module, equal-shaped layers are paired by a traced
    run of it (forward hooks) and its layers' settings (LayerNorm ``eps``, ...) are checked; given a
    bare ``state_dict`` or weights file, equal-shaped layers that names do not decide are refused.
    Given the torch module and ``example_inputs``, both models run on them and their outputs must
    agree (``check``). Values may be torch tensors, numpy or jax arrays; params are cast to each
    layer's ``param_dtype``.

    ``module`` may be a native ``nnx.Module`` (:mod:`jaxlinear.nnx` layers, Flax's ``nnx.Linear`` /
    ``Embed`` / ``LayerNorm``, bridged linen layers): then its layers (paths such as ``blocks/0/fc``,
    torch's ``blocks.0.fc``) are matched the same way and the result is an ``nnx.State`` of its
    params, to load with ``nnx.update(module, state)``.

    Args:
        module: a layer, a linen model or an ``nnx.Module``.
        state_dict: the torch module (preferred: its call order and settings are then known), a
            ``state_dict()`` mapping, or a weights file's mapping (``load_safetensors``).
        mapping: ``{flax_path: torch_prefix}`` (``{"head": "classifier"}``, ``{"block/Linear_1":
            "blocks.0.fc2"}``) for layers the automatic matching cannot pair.
        example_inputs: an input, or a tuple of positional inputs (numpy, jax or torch arrays), that
            both models accept; by default one row ``(1, in)`` per torch weight is tried (then token
            ids ``(1, 1)``).
        check: run both models on ``example_inputs`` and raise if any output differs by more than
            ``1e-4`` of its largest value (``CHECK_RTOL``). Default:
            on when ``state_dict`` is a torch module and ``example_inputs`` are given.

    Returns:
        ``{"params": ...}``, accepted by ``module.apply``; for an ``nnx.Module`` an ``nnx.State``
        shaped like ``nnx.state(module, nnx.Param)``.

    Raises:
        TypeError: ``state_dict`` is not a mapping (nor has ``state_dict()``), ``mapping`` is not a
            dict of strings, ``check`` not a bool, or a single ``module`` has no converter and is not
            a linen model.
        KeyError: a single layer's keys are missing or unexpected.
        ValueError: shapes or settings do not fit; layers or torch prefixes are left unmatched, or
            equal-shaped ones cannot be told apart (the message names them and asks for the torch
            module or ``mapping``); the model has params no converter covers; the outputs differ.

    Example:
        >>> import flax.linen as nn, numpy as np, jaxlinear as jl
        >>> sd = {"0.weight": np.ones((8, 3), np.float32), "0.bias": np.zeros(8, np.float32),
        ...       "2.weight": np.ones((2, 8), np.float32), "2.bias": np.zeros(2, np.float32)}
        >>> model = nn.Sequential([jl.Linear(8), nn.relu, nn.Dense(2)])  # torch Sequential's layout
        >>> v = jl.interop.from_torch(model, sd)
        >>> jax.tree.map(np.shape, v)["params"]["layers_2"]
        {'bias': (2,), 'kernel': (8, 2)}
    """
    from jaxlinear.interop import _nnx  # the NNX branch builds on this module

    if _nnx.is_nnx(module):
        return _nnx.nnx_from_torch(
            module, state_dict, mapping=mapping, example_inputs=example_inputs, check=check
        )
    layout = layout_for(module)
    if layout is not None:  # a model whose torch reference names or sizes its layers its own way
        plain = layout.plain(module)
        variables = _from_torch(
            plain, state_dict, _layout_mapping(layout, plain, mapping), example_inputs, check
        )
        return layout.to_stored(module, variables)
    return _from_torch(module, state_dict, mapping, example_inputs, check)


def _layout_mapping(layout: ModelLayout, module: Any, mapping: Any) -> dict[str, str]:
    """The layout's default mapping of ``module``, the caller's ``mapping`` entries first."""
    _mapping_type(mapping)
    return {**layout.mapping(module), **(mapping or {})}


def from_torch_arguments(
    source: Any, mapping: Any, example_inputs: Any, check: bool | None
) -> tuple[Any, Mapping[str, Any], list[tuple], bool]:
    """``from_torch``'s arguments checked: ``(torch module or None, state_dict, example inputs to
    try, whether to run the output check)``; shared by the linen and NNX branches.

    The examples are the caller's inputs, else one probe row per torch weight shape; the check runs
    by default when the torch module and example inputs are both given.
    """
    torch_module = source if is_torch_module(source) else None
    state_dict = _state_dict(source)
    _mapping_type(mapping)
    _check_arg(check, torch_module)
    user = None if example_inputs is None else _as_tuple(example_inputs)
    do_check = check if check is not None else (torch_module is not None and user is not None)
    examples = [user] if user is not None else _probes(state_dict)
    examples = [e if isinstance(e, tuple) else (e,) for e in examples]
    return torch_module, state_dict, examples, do_check


def _from_torch(
    module: nn.Module,
    state_dict: Any,
    mapping: Mapping[str, str] | None,
    example_inputs: Any,
    check: bool | None,
) -> PyTree:
    """:func:`from_torch` of a linen module (at its torch reference's shapes: layouts are applied by
    the caller)."""
    torch_module, state_dict, examples, do_check = from_torch_arguments(
        state_dict, mapping, example_inputs, check
    )
    converter = converter_for(module)
    if converter is not None and mapping is None:
        variables = converter.from_torch(module, state_dict)
        why = _settings(converter, module, torch_module)
        if why:
            raise ValueError(f"`{type(module).__name__}` does not match the torch layer: {why}.")
        if do_check:
            _check_layer(module, variables, torch_module, examples)
        elif torch_module is None:
            _warn_unchecked([module])
        return _named_like_layer(module, variables)
    if not isinstance(module, nn.Module):
        kinds = sorted(t.__name__ for t in registered_types())
        raise TypeError(
            f"`module` must be a flax.linen Module (a layer of {kinds} or a model of them), got "
            f"{type(module).__name__}."
        )

    def trace(example: tuple) -> tuple[PyTree, list[LayerCall]]:
        abstract = _abstract_variables(module, example)
        return abstract, _layers(module, abstract, example)

    def convert(traced: Any, order: Mapping[str, int] | None) -> tuple[PyTree, list]:
        abstract, layers = traced
        return _from_torch_traced(
            module, state_dict, mapping, abstract, layers, order, torch_module
        )

    example, torch_output, variables, pairs = first_fitting(
        type(module).__name__, examples, trace, torch_module, convert
    )
    if do_check:
        _run_check(module, variables, example, torch_output, _pairs_text(pairs))
    return variables


def first_fitting(
    name: str,
    examples: list[tuple],
    trace: Callable[[tuple], Any],
    torch_module: Any,
    convert: Callable[[Any, Mapping[str, int] | None], tuple[Any, list]],
) -> tuple[tuple, Any, Any, list]:
    """The first example input on which the model traces, the torch module (if given) runs and the
    layers convert: ``(example, torch output, variables, pairs)``.

    ``trace(jax example)`` finds the model's layers (raising if the model rejects the input);
    ``convert(traced, torch call order)`` pairs and converts them. The linen and NNX ``from_torch``
    share this loop over the probe inputs (one row per torch weight shape: the model's input is one
    of them). Raises the most telling error when no example fits: a pairing error of an example the
    model could be traced on, else the first tracing error.
    """
    if not examples:
        raise ValueError(
            f"`state_dict` has no 2-D or larger weight to build an example input for `{name}` "
            "from; pass `example_inputs`."
        )
    first_error: Exception | None = None  # of a probe the model could not be traced on
    match_error: Exception | None = None  # of a probe it could: says more
    for example in examples:
        try:
            traced = trace(to_jax_inputs(example))
        except ValueError as err:
            first_error = first_error or err
            continue
        except Exception as err:  # noqa: BLE001 - the model rejects this probe input: try the next
            first_error = first_error or ValueError(
                f"`{name}` cannot be called on an input of shape "
                f"{[np.shape(a) for a in example]}: {err}; pass `example_inputs`."
            )
            continue
        order, torch_output = None, None
        if torch_module is not None:
            try:
                order, torch_output = run_torch(torch_module, example)
            except Exception as err:  # noqa: BLE001 - torch rejects this probe input: try the next
                first_error = first_error or ValueError(
                    f"the torch module ({type(torch_module).__name__}) cannot be called on inputs "
                    f"of shapes {[np.shape(a) for a in example]}: {type(err).__name__}: {err}; pass "
                    "`example_inputs` that both models accept (or the module's state_dict(), to "
                    "pair layers by names and shapes only)."
                )
                continue
        try:
            variables, pairs = convert(traced, order)
        except ValueError as err:
            match_error = match_error or err
            continue
        return example, torch_output, variables, pairs
    error = match_error or first_error
    assert error is not None
    raise error


def trace_like(
    name: str, user: tuple | None, torch_like: Any, trace: Callable[[tuple], Any]
) -> tuple[Any, Mapping[str, int] | None]:
    """``(trace(example), torch call order)`` for ``to_torch``: on ``user``'s inputs (or none)
    without a torch module ``like``; with one, on the first input (``user``'s or a probe of its weights)
    both models run on, so that its call order pairs equal-shaped layers."""
    if torch_like is None:
        return trace(to_jax_inputs(user) if user is not None else ()), None
    examples = [user] if user is not None else [(p,) for p in _probes(_state_dict(torch_like))]
    errors: list[Exception] = []
    for example in examples:
        try:
            traced = trace(to_jax_inputs(example))
            return traced, run_torch(torch_like, example)[0]
        except Exception as err:  # noqa: BLE001 - this input does not fit: try the next
            errors.append(err)
    raise ValueError(
        f"could not run both `{name}` and the torch module `like` on one input to pair their "
        "layers in call order; pass `example_inputs` both accept."
        + (f" First error: {type(errors[0]).__name__}: {errors[0]}" if errors else "")
    )


def export_state(
    module: Any,
    layers: list[LayerCall],
    exported: Mapping[str, dict[str, np.ndarray]],
    mapping: dict[str, str],
    like: Any,
    order: Mapping[str, int] | None,
) -> dict[str, np.ndarray]:
    """The torch ``state_dict`` of the layers' ``exported`` keys, each under its torch prefix:
    ``mapping``, else paired with ``like`` (a torch module or state_dict, in its key order), else
    the path dotted. Shared by the linen and NNX ``to_torch``."""
    torch_like = like if is_torch_module(like) else None
    if like is not None:
        reference = _state_dict(like)
        groups = _groups(reference)

        def fits(call: LayerCall, prefix: str, mapped: bool) -> str | None:
            want = _under(reference, prefix) if mapped else groups[prefix]
            got = exported[call.name]
            want_shapes = {k: _value_shape(v) for k, v in want.items()}
            got_shapes = {k: v.shape for k, v in got.items()}
            if want_shapes != got_shapes:
                return f"{got_shapes} != {want_shapes}"
            conv = _converter(call.module)
            return _settings(conv, call.module, _submodule(torch_like, prefix))

        pairs = _match(
            module,
            layers,
            groups,
            mapping,
            lambda c: _weight_shape(exported[c.name]),
            fits,
            order,
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
        key_order = {k: i for i, k in enumerate(_state_dict(like))}
        state = dict(sorted(state.items(), key=lambda kv: key_order.get(kv[0], len(key_order))))
    return state


def _pairs_text(pairs: list[tuple[LayerCall, str]]) -> str:
    shown = ", ".join(f"{c.name or '(model)'} <- {p or '(module)'}" for c, p in pairs[:12])
    more = f", ... ({len(pairs)} layers)" if len(pairs) > 12 else ""
    return f"Layers paired: {shown}{more}. "


def _check_layer(module: Any, variables: PyTree, torch_module: Any, examples: list) -> None:
    """The output check of a single layer, on the first example both accept."""
    errors = []
    for example in examples:
        try:
            _, torch_output = run_torch(torch_module, example)
        except Exception as err:  # noqa: BLE001 - try the next probe
            errors.append(err)
            continue
        _run_check(module, variables, example, torch_output, "")
        return
    raise ValueError(
        f"could not run the torch layer to check the port (pass `example_inputs` it accepts, or "
        f"check=False): {errors[0] if errors else 'no example input'}"
    )


def _warn_unchecked(modules: list) -> None:
    unchecked = [unchecked_epsilon(m) for m in modules if unchecked_epsilon(m)]
    if unchecked:
        warnings.warn(
            f"{len(unchecked)} norm layer(s) keep Flax's default epsilon=1e-6 "
            f"({', '.join(unchecked[:4])}), and a state_dict does not "
            "hold torch's eps (torch.nn.LayerNorm's default is 1e-5, RMSNorm's finfo.eps): set "
            "`epsilon=` to the torch model's, or pass the torch module so it is checked.",
            UserWarning,
            stacklevel=3,
        )


def _from_torch_traced(
    module: nn.Module,
    state_dict: Mapping[str, Any],
    mapping: Any,
    abstract: PyTree,
    layers: list[LayerCall],
    order: Mapping[str, int] | None,
    torch_module: Any,
) -> tuple[PyTree, list[tuple[LayerCall, str]]]:
    mapping = _check_mapping(mapping, layers)
    groups = _groups(state_dict)
    converted: dict[str, PyTree] = {}

    def signature(call: LayerCall) -> tuple[int, ...] | None:
        zeros = jax.tree.map(
            lambda v: np.zeros(v.shape, v.dtype), dict(params_at(abstract, call.path))
        )
        try:
            return _weight_shape(_converter(call.module).to_torch(call.module, {"params": zeros}))
        except (KeyError, ValueError, TypeError):
            return None

    def fits(call: LayerCall, prefix: str, mapped: bool) -> str | None:
        sub = _under(state_dict, prefix) if mapped else groups[prefix]
        converter = _converter(call.module)
        try:
            variables = converter.from_torch(call.module, sub)
        except (KeyError, ValueError, TypeError) as err:
            return str(err).strip("\"'").rstrip(".")
        got, want = _shapes(variables["params"]), _shapes(dict(params_at(abstract, call.path)))
        if got != want:
            return f"params of shapes {got}, the layer needs {want}"
        why = _settings(converter, call.module, _submodule(torch_module, prefix))
        if why:
            return why
        converted[call.name] = variables["params"]
        return None

    paramless = [c for c in layers if not params_at(abstract, c.path)]  # e.g. LayerNorm without
    layers = [c for c in layers if c not in paramless]  # scale and bias: nothing to port
    pairs = _match(module, layers, groups, mapping, signature, fits, order)
    params: dict[str, Any] = {}
    for call, _ in pairs:
        params = replace_at(params, call.path, dict(converted[call.name]))
    missing = sorted(set(_leaf_paths(nn.unbox(abstract["params"]))) - set(_leaf_paths(params)))
    others = sorted(set(abstract) - {"params"})
    if missing or others:
        raise ValueError(
            f"`{type(module).__name__}` has variables no converter covers (from_torch converts "
            f"{sorted(t.__name__ for t in registered_types())}): params {missing}, collections "
            f"{others}; load them yourself and merge."
        )
    if torch_module is None:
        _warn_unchecked([c.module for c, _ in pairs])
    return {"params": _boxed_like(abstract["params"], params)}, pairs


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
    variables: PyTree = None,
    *,
    mapping: Mapping[str, str] | None = None,
    like: Any = None,
    example_inputs: Any = None,
) -> dict[str, np.ndarray]:
    """The torch ``state_dict`` (numpy arrays) for ``variables`` of a layer or a whole model.

    The variables are checked against ``module`` first (param names, shapes, a bias iff
    ``use_bias``). For a model, each layer's keys get a prefix: ``mapping[path]``, else the prefix
    the same layer gets from :func:`from_torch` against ``like`` (a torch module, whose call order
    then pairs equal-shaped layers and whose layers' settings are checked, or a ``state_dict``, which
    refuses equal-shaped layers that names do not decide), else the path dotted (Flax
    ``nn.Sequential``'s ``layers_{i}`` -> ``{i}``, a setup list's ``blocks_{i}`` -> ``blocks.{i}``).
    Load it with ``ref.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.

    For a native ``nnx.Module`` ``variables`` is omitted (its params are its own state):
    ``to_torch(nnx_model, like=torch_model)``.

    Args:
        module: a layer with a converter, a linen model of such layers, or an ``nnx.Module``.
        variables: its variables (omitted for an ``nnx.Module``).
        mapping: ``{flax_path: torch_prefix}``, as in :func:`from_torch`.
        like: the torch module (or its ``state_dict``) whose key names to use.
        example_inputs: inputs to trace the model (and ``like``, a torch module) with (default: one
            row for its first kernel, or for ``like``'s first weight).

    Returns:
        The ``state_dict``: torch key to writable numpy array, in ``like``'s key order when given.

    Raises:
        TypeError: ``variables`` is not a mapping with ``params`` (or is given for an nnx.Module).
        ValueError: the variables do not fit ``module``, hold params no converter covers, or the
            layers cannot be matched to ``like`` (or its settings differ).

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
    from jaxlinear.interop import _nnx  # the NNX branch builds on this module

    if _nnx.is_nnx(module):
        if variables is not None:
            raise TypeError(
                "`variables` must be omitted for an nnx.Module (its params are its own state): "
                "to_torch(model, mapping=..., like=..., example_inputs=...)."
            )
        return _nnx.nnx_to_torch(module, mapping=mapping, like=like, example_inputs=example_inputs)
    layout = layout_for(module)
    if layout is not None:  # a model whose torch reference names or sizes its layers its own way
        plain, variables = layout.from_stored(module, variables)
        mapping = _layout_mapping(layout, plain, mapping)
        return _to_torch(plain, variables, mapping, like, example_inputs)
    return _to_torch(module, variables, mapping, like, example_inputs)


def _to_torch(
    module: nn.Module,
    variables: PyTree,
    mapping: Mapping[str, str] | None,
    like: Any,
    example_inputs: Any,
) -> dict[str, np.ndarray]:
    """:func:`to_torch` of a linen module (at its torch reference's shapes: layouts are applied by
    the caller)."""
    _mapping_type(mapping)
    torch_like = like if is_torch_module(like) else None
    converter = converter_for(module)
    if converter is not None and mapping is None and like is None:
        return converter.to_torch(module, variables)
    if converter is not None and mapping is None and torch_like is not None:
        why = _settings(converter, module, torch_like)
        if why:
            raise ValueError(f"`{type(module).__name__}` does not match the torch layer: {why}.")
        return converter.to_torch(module, variables)
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be a flax.linen Module, got {type(module).__name__}.")
    layer_params(variables)  # TypeError unless `variables` is a model's variables
    user = None if example_inputs is None else _as_tuple(example_inputs)
    layers, order = trace_like(
        type(module).__name__,
        user,
        torch_like,
        lambda example: _layers(module, variables, example),
    )
    mapping = _check_mapping(mapping, layers)
    exported = {
        c.name: _converter(c.module).to_torch(c.module, {"params": params_at(variables, c.path)})
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
    layers = [c for c in layers if exported[c.name]]  # paramless layers export nothing
    return export_state(module, layers, exported, mapping, like, order)
