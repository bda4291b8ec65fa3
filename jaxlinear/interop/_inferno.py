"""``inferno.bnn.Linear`` <-> :class:`jaxlinear.Linear` (next to ``torch.nn.Linear``).

inferno keeps its parameters in a ``ParameterDict``: ``state_dict`` keys ``params.weight`` (out, in),
``params.bias`` and, for output layers, ``params.temperature`` (shape (1,), a constant 1 that divides
the output in eval mode). ``from_torch`` on a :class:`jaxlinear.Linear` accepts both key styles:
``weight``/``bias`` (torch.nn.Linear) and ``params.*`` (inferno). ``to_torch`` writes inferno's keys
when the layer has a parametrization (inferno's ``Linear`` also loads ``weight``/``bias``), torch's
otherwise.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import check_keys, to_numpy
from jaxlinear.interop._linear import dense_from_torch, dense_to_torch
from jaxlinear.interop._registry import Converter, register
from jaxlinear.nn import Linear

_PREFIX = "params."


def _is_inferno(state_dict: Mapping[str, Any]) -> bool:
    return any(k.startswith(_PREFIX) for k in state_dict)


def _from_torch(module: Linear, state_dict: Mapping[str, Any]) -> PyTree:
    if not _is_inferno(state_dict):
        return dense_from_torch(module, state_dict)
    keys = ["params.weight", "params.bias"] if module.use_bias else ["params.weight"]
    optional = ["params.temperature"] if module.layer_type == "output" else []
    check_keys(
        state_dict,
        keys,
        optional,
        f"inferno.bnn.Linear (use_bias={module.use_bias}, layer_type={module.layer_type!r})",
    )
    if "params.temperature" in state_dict:
        temperature = to_numpy(state_dict["params.temperature"])
        if temperature.shape != (1,) or float(temperature[0]) != 1.0:
            raise ValueError(
                "`state_dict['params.temperature']` must be [1.0] (jaxlinear.Linear has no "
                f"temperature scaling; divide the outputs yourself), got {temperature.tolist()}."
            )
    plain = {k[len(_PREFIX) :]: v for k, v in state_dict.items() if k != "params.temperature"}
    return dense_from_torch(module, plain)


def _to_torch(module: Linear, variables: PyTree) -> dict[str, np.ndarray]:
    state = dense_to_torch(module, variables)
    if module.parametrization is None:
        return state
    state = {_PREFIX + k: v for k, v in state.items()}
    if module.layer_type == "output":
        dtype = state["params.weight"].dtype
        state["params.temperature"] = np.ones((1,), dtype)
    return state


register(Linear, Converter("torch.nn.Linear or inferno.bnn.Linear", _from_torch, _to_torch))
