"""``unit_scaling.Linear`` / ``LinearReadout`` <-> :class:`jaxlinear.UnitScaledLinear` /
:class:`jaxlinear.LinearReadout`: transpose ``weight (out, in)`` to ``kernel (in, out)``.

The u-μP metadata of the torch parameters (``mup_type``, ``mup_scaling_depth``) is not part of a
``state_dict``; in jaxlinear it comes from the module (:func:`jaxlinear.optim.mup_types`).
"""

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import check_keys, to_numpy
from jaxlinear.interop._registry import Converter, register
from jaxlinear.nn import LinearReadout, UnitScaledLinear


def _from_torch(module: UnitScaledLinear, state_dict: Mapping[str, Any]) -> PyTree:
    owner = f"{type(module).__name__}(use_bias={module.use_bias})"
    keys = ["weight", "bias"] if module.use_bias else ["weight"]
    check_keys(state_dict, keys, [], owner)
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


def _to_torch(module: UnitScaledLinear, variables: PyTree) -> dict[str, np.ndarray]:
    params = variables["params"]
    state = {"weight": np.ascontiguousarray(np.asarray(params["kernel"]).T)}
    if module.use_bias:
        state["bias"] = np.asarray(params["bias"])
    return state


register(UnitScaledLinear, Converter("unit_scaling.Linear", _from_torch, _to_torch))
register(LinearReadout, Converter("unit_scaling.LinearReadout", _from_torch, _to_torch))
