"""``delu.nn.NLinear`` <-> :class:`jaxlinear.NLinear`: the layouts agree, ``weight`` is ``kernel``."""

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import check_keys, check_params, layer_params, to_numpy
from jaxlinear.interop._registry import Converter, register
from jaxlinear.nn import NLinear


def _from_torch(module: NLinear, state_dict: Mapping[str, Any]) -> PyTree:
    keys = ["weight", "bias"] if module.use_bias else ["weight"]
    check_keys(state_dict, keys, [], f"NLinear(use_bias={module.use_bias})")
    n = module.n_shape
    weight = to_numpy(state_dict["weight"])
    if (
        weight.shape[: len(n)] != n
        or weight.ndim != len(n) + 2
        or weight.shape[-1] != module.features
    ):
        raise ValueError(
            f"`state_dict['weight']` must have shape (*{n}, in_features, {module.features}), "
            f"got {weight.shape}."
        )
    params = {"kernel": jnp.asarray(weight, module.param_dtype)}
    if module.use_bias:
        bias = to_numpy(state_dict["bias"])
        if bias.shape != (*n, module.features):
            raise ValueError(
                f"`state_dict['bias']` must have shape {(*n, module.features)}, got {bias.shape}."
            )
        params["bias"] = jnp.asarray(bias, module.param_dtype)
    return {"params": params}


def _to_torch(module: NLinear, variables: PyTree) -> dict[str, np.ndarray]:
    n, f = module.n_shape, module.features
    expected = {"kernel": (*n, None, f), **({"bias": (*n, f)} if module.use_bias else {})}
    owner = f"NLinear({module.n}, {f}, use_bias={module.use_bias})"
    params = check_params(layer_params(variables), expected, owner)
    state = {"weight": np.array(params["kernel"])}
    if module.use_bias:
        state["bias"] = np.array(params["bias"])
    return state


register(NLinear, Converter("delu.nn.NLinear", _from_torch, _to_torch))
