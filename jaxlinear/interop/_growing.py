"""gromo ``GrowingMLP`` <-> :class:`jaxlinear.growing.GrowingMLP`: its layers' own converters.

Each layer of a ``GrowingMLP`` is a :class:`~jaxlinear.growing.GrowableLinear`, a ``jl.Linear``, so
it converts with ``jl.Linear``'s registered converter (``torch.nn.Linear``'s ``weight (out, in)`` /
``bias (out,)`` <-> ``kernel (in, out)`` / ``bias``), as in any model. What the model adds is gromo's
key names, ``layers.{i}.layer.{weight,bias}`` for ``params["layers_{i}"]`` (the generic name match
would look for ``layers.{i}``), and the buckets: a model with ``capacity`` reads the state dict at its
initial widths (``hidden_features``) into a bucket and writes its active neurons only, which needs
the active widths of ``variables["growth"]``, held by the model, not by its layers.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.growing import GrowableLinear, GrowingMLP, pad, unpad
from jaxlinear.growing._model import check_params
from jaxlinear.interop._arrays import check_keys, layer_params
from jaxlinear.interop._registry import Converter, converter_for, register


def _prefix(i: int) -> str:
    return f"layers.{i}.layer."


def _layers(module: GrowingMLP) -> list[tuple[GrowableLinear, Converter]]:
    """Each layer as the model builds it, with its registered converter (``jl.Linear``'s)."""
    widths = module.widths
    out = []
    for i in range(module.num_layers):
        axes = None if module.kernel_axes is None else module.kernel_axes[i]
        layer = GrowableLinear(
            widths[i + 1],
            use_bias=module.use_bias,
            param_dtype=module.param_dtype,
            kernel_axes=axes,
        )
        converter = converter_for(layer)
        assert converter is not None  # jl.Linear's, registered by interop's import
        out.append((layer, converter))
    return out


def _from_torch(module: GrowingMLP, state_dict: Mapping[str, Any]) -> PyTree:
    if module.capacity is not None:
        plain = module.clone(capacity=None)
        _, variables = pad(plain, _from_torch(plain, state_dict), module.capacity)
        return variables
    names = ["weight", "bias"] if module.use_bias else ["weight"]
    keys = [_prefix(i) + n for i in range(module.num_layers) for n in names]
    check_keys(state_dict, keys, [], f"GrowingMLP(use_bias={module.use_bias})")
    params = {}
    for i, (layer, converter) in enumerate(_layers(module)):
        own = {n: state_dict[_prefix(i) + n] for n in names}
        try:
            params[f"layers_{i}"] = converter.from_torch(layer, own)["params"]
        except ValueError as err:
            raise ValueError(f"GrowingMLP layer {i} (`{_prefix(i)}*`): {err}") from err
    try:
        check_params(module, params)
    except ValueError as err:  # an input width that does not fit
        raise ValueError(
            f"`state_dict` must have shapes for widths {module.widths}: {err}"
        ) from err
    return {"params": params}


def _to_torch(module: GrowingMLP, variables: PyTree) -> dict[str, np.ndarray]:
    if module.capacity is not None:
        module, params = unpad(module, variables)
        return _to_torch(module, {"params": params})
    params = layer_params(variables)
    names = sorted(f"layers_{i}" for i in range(module.num_layers))
    if set(params) != set(names):
        raise ValueError(
            f"`variables['params']` for GrowingMLP(widths={module.widths}) must have layers "
            f"{names}, got {sorted(params)}."
        )
    check_params(module, params)
    state = {}
    for i, (layer, converter) in enumerate(_layers(module)):
        own = converter.to_torch(layer, {"params": params[f"layers_{i}"]})
        state.update({_prefix(i) + k: v for k, v in own.items()})
    return state


register(GrowingMLP, Converter("gromo.containers.growing_mlp.GrowingMLP", _from_torch, _to_torch))
