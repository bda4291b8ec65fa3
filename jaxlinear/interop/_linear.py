"""``torch.nn.Linear`` <-> ``flax.linen.Dense`` (and :class:`jaxlinear.Linear`): transpose ``weight (out, in)`` to ``kernel (in, out)``.

``dense_from_torch`` / ``dense_to_torch`` serve every dense module with ``features``, ``use_bias`` and
``param_dtype`` whose torch counterpart stores ``weight (out, in)`` and ``bias (out,)`` (also the
unit-scaled layers).
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import check_keys, check_params, layer_params, to_numpy
from jaxlinear.interop._registry import Converter, register


def dense_from_torch(module: Any, state_dict: Mapping[str, Any]) -> PyTree:
    """Variables ``{"params": {"kernel": W.T, "bias": b}}`` from ``weight``/``bias``, checked."""
    keys = ["weight", "bias"] if module.use_bias else ["weight"]
    check_keys(state_dict, keys, [], f"{type(module).__name__}(use_bias={module.use_bias})")
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


def dense_to_torch(module: Any, variables: PyTree) -> dict[str, np.ndarray]:
    """``{"weight": kernel.T, "bias": bias}`` as writable numpy arrays, after checking the params."""
    expected: dict[str, tuple[int | None, ...]] = {"kernel": (None, module.features)}
    if module.use_bias:
        expected["bias"] = (module.features,)
    owner = f"{type(module).__name__}({module.features}, use_bias={module.use_bias})"
    params = check_params(layer_params(variables), expected, owner)
    state = {"weight": np.array(np.asarray(params["kernel"]).T, order="C")}
    if module.use_bias:
        state["bias"] = np.array(params["bias"])
    return state


def _dense_general(module: nn.DenseGeneral) -> Any:
    """``module`` as a 2-D dense layer (``features``, ``use_bias``, ``param_dtype``), or ValueError."""
    features = module.features
    features = features if isinstance(features, int) else tuple(features)
    axis = module.axis if isinstance(module.axis, int) else tuple(module.axis)
    if isinstance(features, tuple):
        features = features[0] if len(features) == 1 else None
    if isinstance(axis, tuple):
        axis = axis[0] if len(axis) == 1 else None
    if features is None or axis != -1 or tuple(module.batch_dims):
        raise ValueError(
            "`module` must be a DenseGeneral with a 2-D kernel (one feature dim, axis=-1, no "
            f"batch_dims) to map to torch.nn.Linear, got features={module.features!r}, "
            f"axis={module.axis!r}, batch_dims={module.batch_dims!r}."
        )
    return nn.Dense(features, use_bias=module.use_bias, param_dtype=module.param_dtype, parent=None)


def _dense_general_from_torch(module: nn.DenseGeneral, state_dict: Mapping[str, Any]) -> PyTree:
    return dense_from_torch(_dense_general(module), state_dict)


def _dense_general_to_torch(module: nn.DenseGeneral, variables: PyTree) -> dict[str, np.ndarray]:
    return dense_to_torch(_dense_general(module), variables)


# jl.Linear is registered in _inferno (it also reads inferno.bnn.Linear's keys)
register(nn.Dense, Converter("torch.nn.Linear", dense_from_torch, dense_to_torch))
register(
    nn.DenseGeneral,
    Converter("torch.nn.Linear", _dense_general_from_torch, _dense_general_to_torch),
)
