"""``torch.nn.LayerNorm`` <-> ``flax.linen.LayerNorm`` and ``torch.nn.RMSNorm`` <-> ``flax.linen.RMSNorm``.

torch's ``weight`` is Flax's ``scale``, ``bias`` is ``bias`` (same shape, no transpose). The epsilon is
not in a ``state_dict``, and the defaults differ (Flax ``1e-6``; torch ``LayerNorm`` ``1e-5``, torch
``RMSNorm`` ``None``, i.e. ``torch.finfo(dtype).eps``): given the torch module, ``check_torch`` compares
them (and the normalised axes) and the port fails with the value to set; given a bare ``state_dict``,
:func:`jaxlinear.interop.from_torch` warns when a norm keeps Flax's default epsilon.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import check_keys, layer_params, to_numpy
from jaxlinear.interop._registry import Converter, register

#: Flax's default epsilon of ``nn.LayerNorm`` and ``nn.RMSNorm``.
FLAX_DEFAULT_EPSILON = 1e-6


def _keys(module: Any) -> dict[str, str]:
    """torch leaf -> Flax param name, for the params ``module`` has."""
    keys = {"weight": "scale"} if module.use_scale else {}
    if getattr(module, "use_bias", False):
        keys["bias"] = "bias"
    return keys


def _owner(module: Any) -> str:
    fields = f"use_scale={module.use_scale}"
    if isinstance(module, nn.LayerNorm):
        fields += f", use_bias={module.use_bias}"
    return f"{type(module).__name__}({fields})"


def norm_from_torch(module: Any, state_dict: Mapping[str, Any]) -> PyTree:
    """``{"params": {"scale": weight, "bias": bias}}`` (the params ``module`` has), checked."""
    keys = _keys(module)
    check_keys(state_dict, list(keys), [], _owner(module))
    params = {
        name: jnp.asarray(to_numpy(state_dict[leaf]), module.param_dtype)
        for leaf, name in keys.items()
    }
    shapes = {np.shape(v) for v in params.values()}
    if len(shapes) > 1:
        raise ValueError(
            f"`state_dict['weight']` and `state_dict['bias']` of {_owner(module)} must have one "
            f"shape, got {sorted(shapes)}."
        )
    return {"params": params}


def norm_to_torch(module: Any, variables: PyTree) -> dict[str, np.ndarray]:
    """``{"weight": scale, "bias": bias}`` as numpy arrays, after checking the param names."""
    keys = _keys(module)
    params = layer_params(variables)
    want = sorted(keys.values())
    if not isinstance(params, Mapping) or sorted(params) != want:
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(f"`variables['params']` for {_owner(module)} must have {want}, got {got}.")
    return {leaf: np.array(params[name]) for leaf, name in keys.items()}


def unchecked_epsilon(module: Any) -> str:
    """``"LayerNorm(epsilon=1e-06)"`` when ``module`` is a Flax norm with Flax's default epsilon (which
    differs from torch's defaults and cannot be checked against a bare state_dict), else ``""``."""
    if isinstance(module, nn.LayerNorm | nn.RMSNorm) and module.epsilon == FLAX_DEFAULT_EPSILON:
        return f"{type(module).__name__}(epsilon={module.epsilon!r})"
    return ""


def _is(torch_module: Any, name: str) -> bool:
    return any(c.__name__ == name for c in type(torch_module).__mro__)


def _axes(module: Any, torch_module: Any) -> str | None:
    k = len(tuple(torch_module.normalized_shape))
    want = tuple(range(-k, 0))
    for field in ("reduction_axes", "feature_axes"):
        value = getattr(module, field)
        axes = tuple(value) if isinstance(value, tuple | list) else (value,)
        if all(a < 0 for a in axes) and tuple(sorted(axes)) != want:
            return (
                f"torch normalizes the last {k} dims (normalized_shape "
                f"{tuple(torch_module.normalized_shape)}), the Flax layer has {field}={value!r}: "
                f"set {field}={want if k > 1 else -1}"
            )
    return None


def _check_layer_norm(module: nn.LayerNorm, torch_module: Any) -> str | None:
    if not _is(torch_module, "LayerNorm"):
        return f"the torch layer is a {type(torch_module).__name__}, not a torch.nn.LayerNorm"
    if float(torch_module.eps) != float(module.epsilon):
        return (
            f"torch eps={torch_module.eps!r}, Flax epsilon={module.epsilon!r}: build the Flax layer "
            f"with nn.LayerNorm(epsilon={torch_module.eps!r})"
        )
    return _axes(module, torch_module)


def _check_rms_norm(module: nn.RMSNorm, torch_module: Any) -> str | None:
    if not _is(torch_module, "RMSNorm"):
        return f"the torch layer is a {type(torch_module).__name__}, not a torch.nn.RMSNorm"
    eps = torch_module.eps
    note = ""
    if eps is None:  # torch uses the input dtype's machine epsilon
        eps, note = float(np.finfo(np.float32).eps), " (torch's eps=None: finfo(float32).eps)"
    if float(eps) != float(module.epsilon):
        return (
            f"torch eps={eps!r}{note}, Flax epsilon={module.epsilon!r}: build the Flax layer with "
            f"nn.RMSNorm(epsilon={eps!r})"
        )
    return _axes(module, torch_module)


register(
    nn.LayerNorm,
    Converter("torch.nn.LayerNorm", norm_from_torch, norm_to_torch, _check_layer_norm),
)
register(nn.RMSNorm, Converter("torch.nn.RMSNorm", norm_from_torch, norm_to_torch, _check_rms_norm))
