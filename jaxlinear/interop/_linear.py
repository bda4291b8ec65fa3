"""``torch.nn.Linear`` <-> :class:`jaxlinear.Linear`: transpose ``weight (out, in)`` to ``kernel (in, out)``."""

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import check_keys, to_numpy
from jaxlinear.interop._registry import Converter, register
from jaxlinear.nn import Linear


def _from_torch(module: Linear, state_dict: Mapping[str, Any]) -> PyTree:
    keys = ["weight", "bias"] if module.use_bias else ["weight"]
    check_keys(state_dict, keys, [], f"Linear(use_bias={module.use_bias})")
    weight = to_numpy(state_dict["weight"])
    if weight.ndim != 2 or weight.shape[0] != module.features:
        raise ValueError(
            f"`state_dict['weight']` must have shape ({module.features}, in_features), "
            f"got {weight.shape}."
        )
    params = {"kernel": jnp.asarray(weight.T, module.param_dtype)}
    if module.use_bias:
        bias = to_numpy(state_dict["bias"])
        if bias.shape != (module.features,):
            raise ValueError(
                f"`state_dict['bias']` must have shape ({module.features},), got {bias.shape}."
            )
        params["bias"] = jnp.asarray(bias, module.param_dtype)
    return {"params": params}


def _to_torch(module: Linear, variables: PyTree) -> dict[str, np.ndarray]:
    params = variables["params"]
    state = {"weight": np.array(np.asarray(params["kernel"]).T, order="C")}
    if module.use_bias:
        state["bias"] = np.array(params["bias"])
    return state


register(Linear, Converter("torch.nn.Linear", _from_torch, _to_torch))
