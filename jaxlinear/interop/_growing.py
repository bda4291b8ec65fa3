"""gromo ``GrowingMLP`` <-> :class:`jaxlinear.growing.GrowingMLP`.

gromo keys: ``layers.{i}.layer.weight (out, in)`` and ``layers.{i}.layer.bias (out,)``; jaxlinear:
``params["layers_{i}"] = {"kernel": (in, out), "bias": (out,)}`` in the module's ``param_dtype``.
A model with ``capacity`` reads the state dict at its initial widths (``hidden_features``) into a
bucket and writes its active neurons only.
"""

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.growing import GrowingMLP, pad, unpad
from jaxlinear.interop._arrays import check_keys, check_params, layer_params, to_numpy
from jaxlinear.interop._registry import Converter, register


def _keys(module: GrowingMLP) -> list[str]:
    names = ["weight", "bias"] if module.use_bias else ["weight"]
    return [f"layers.{i}.layer.{n}" for i in range(module.num_layers) for n in names]


def _from_torch(module: GrowingMLP, state_dict: Mapping[str, Any]) -> PyTree:
    if module.capacity is not None:
        plain = module.clone(capacity=None)
        _, variables = pad(plain, _from_torch(plain, state_dict), module.capacity)
        return variables
    check_keys(state_dict, _keys(module), [], f"GrowingMLP(use_bias={module.use_bias})")
    widths = module.widths
    params = {}
    for i in range(module.num_layers):
        weight = to_numpy(state_dict[f"layers.{i}.layer.weight"])
        want = (widths[i + 1], widths[i])
        if weight.shape != want:
            raise ValueError(
                f"`state_dict['layers.{i}.layer.weight']` must have shape {want} for widths "
                f"{widths}, got {weight.shape}."
            )
        layer = {"kernel": jnp.asarray(weight.T, module.param_dtype)}
        if module.use_bias:
            bias = to_numpy(state_dict[f"layers.{i}.layer.bias"])
            if bias.shape != (widths[i + 1],):
                raise ValueError(
                    f"`state_dict['layers.{i}.layer.bias']` must have shape ({widths[i + 1]},), "
                    f"got {bias.shape}."
                )
            layer["bias"] = jnp.asarray(bias, module.param_dtype)
        params[f"layers_{i}"] = layer
    return {"params": params}


def _to_torch(module: GrowingMLP, variables: PyTree) -> dict[str, np.ndarray]:
    if module.capacity is not None:
        module, params = unpad(module, variables)
        return _to_torch(module, {"params": params})
    params = layer_params(variables)
    widths = module.widths
    names = sorted(f"layers_{i}" for i in range(module.num_layers))
    if set(params) != set(names):
        raise ValueError(
            f"`variables['params']` for GrowingMLP(widths={widths}) must have layers {names}, got "
            f"{sorted(params)}."
        )
    state = {}
    for i in range(module.num_layers):
        shapes: dict[str, tuple[int | None, ...]] = {"kernel": (widths[i], widths[i + 1])}
        if module.use_bias:
            shapes["bias"] = (widths[i + 1],)
        layer = check_params(params[f"layers_{i}"], shapes, f"GrowingMLP layer {i}")
        state[f"layers.{i}.layer.weight"] = np.ascontiguousarray(np.asarray(layer["kernel"]).T)
        if module.use_bias:
            state[f"layers.{i}.layer.bias"] = np.asarray(layer["bias"])
    return state


register(GrowingMLP, Converter("gromo.containers.growing_mlp.GrowingMLP", _from_torch, _to_torch))
