"""``torch.nn.MultiheadAttention`` <-> ``flax.linen.MultiHeadDotProductAttention``.

torch packs the query, key and value projections into one ``in_proj_weight (3E, E)`` (and
``in_proj_bias (3E,)``) when the key and value inputs have the query's width, else keeps
``q_proj_weight``, ``k_proj_weight (E, kdim)``, ``v_proj_weight (E, vdim)``; the output projection is
``out_proj.weight (E, E)`` / ``out_proj.bias``. Flax keeps one ``DenseGeneral`` per projection with the
heads split out: ``query/kernel (in, heads, head_dim)``, ``query/bias (heads, head_dim)``, ...,
``out/kernel (heads, head_dim, E)``. torch splits ``E`` as ``(heads, head_dim)``, heads first, as Flax
does, so the conversion is a transpose and a reshape. The number of heads is not in a ``state_dict``:
given the torch module it is checked; from a bare ``state_dict`` the Flax layer's ``num_heads`` is used.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import check_keys, layer_params, to_numpy
from jaxlinear.interop._registry import Converter, register

_PROJ = ("query", "key", "value")


def _owner(module: nn.MultiHeadDotProductAttention) -> str:
    return f"MultiHeadDotProductAttention(num_heads={module.num_heads}, use_bias={module.use_bias})"


def _supported(module: nn.MultiHeadDotProductAttention) -> None:
    if module.normalize_qk:
        raise ValueError(
            "`module` must have normalize_qk=False: torch.nn.MultiheadAttention has no query/key "
            "LayerNorm."
        )
    if module.decode:
        raise ValueError("`module` must have decode=False (no cache in torch's state_dict).")


def _from_torch(module: nn.MultiHeadDotProductAttention, state_dict: Mapping[str, Any]) -> PyTree:
    _supported(module)
    packed = "in_proj_weight" in state_dict
    keys = ["in_proj_weight"] if packed else [f"{p}_proj_weight" for p in "qkv"]
    keys.append("out_proj.weight")
    if module.use_bias:
        keys += ["in_proj_bias", "out_proj.bias"]
    check_keys(state_dict, keys, [], _owner(module))
    if packed:
        weights = np.split(to_numpy(state_dict["in_proj_weight"]), 3, axis=0)
    else:
        weights = [to_numpy(state_dict[f"{p}_proj_weight"]) for p in "qkv"]
    width, heads = weights[0].shape[0], module.num_heads
    if width % heads or any(w.ndim != 2 or w.shape[0] != width for w in weights):
        raise ValueError(
            f"the query/key/value weights must be (E, in) with E = {width} a multiple of num_heads="
            f"{heads}, got shapes {[w.shape for w in weights]}."
        )
    head_dim = width // heads
    dtype = module.param_dtype
    params: dict[str, Any] = {}
    for name, weight in zip(_PROJ, weights, strict=True):
        kernel = weight.T.reshape(weight.shape[1], heads, head_dim)
        params[name] = {"kernel": jnp.asarray(kernel, dtype)}
    out = to_numpy(state_dict["out_proj.weight"])
    if out.ndim != 2 or out.shape[1] != width:
        raise ValueError(
            f"`state_dict['out_proj.weight']` must be (out, {width}), got {out.shape}."
        )
    params["out"] = {"kernel": jnp.asarray(out.T.reshape(heads, head_dim, out.shape[0]), dtype)}
    if module.use_bias:
        biases = np.split(to_numpy(state_dict["in_proj_bias"]), 3)
        for name, bias in zip(_PROJ, biases, strict=True):
            params[name]["bias"] = jnp.asarray(bias.reshape(heads, head_dim), dtype)
        params["out"]["bias"] = jnp.asarray(to_numpy(state_dict["out_proj.bias"]), dtype)
    return {"params": params}


def _to_torch(module: nn.MultiHeadDotProductAttention, variables: PyTree) -> dict[str, np.ndarray]:
    _supported(module)
    params = layer_params(variables)
    want = ["key", "out", "query", "value"]
    if not isinstance(params, Mapping) or sorted(params) != want:
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(f"`variables['params']` for {_owner(module)} must have {want}, got {got}.")
    kernels = [np.asarray(params[p]["kernel"]) for p in _PROJ]
    out = np.asarray(params["out"]["kernel"])
    if any(k.ndim != 3 or k.shape[1] != module.num_heads for k in kernels) or out.ndim != 3:
        raise ValueError(
            f"the kernels of {_owner(module)} must be query/key/value (in, {module.num_heads}, "
            f"head_dim) and out ({module.num_heads}, head_dim, out), got "
            f"{[k.shape for k in kernels]} and {out.shape}."
        )
    width = kernels[0].shape[1] * kernels[0].shape[2]
    if kernels[0].shape[0] != width:
        raise ValueError(
            f"torch.nn.MultiheadAttention needs qkv_features == the query's width, got "
            f"{width} and {kernels[0].shape[0]}."
        )
    weights = [np.ascontiguousarray(k.reshape(k.shape[0], width).T) for k in kernels]
    state: dict[str, np.ndarray] = {}
    if all(w.shape[1] == width for w in weights):  # torch's _qkv_same_embed_dim
        state["in_proj_weight"] = np.concatenate(weights, axis=0)
    else:
        state.update({f"{p}_proj_weight": w for p, w in zip("qkv", weights, strict=True)})
    if module.use_bias:
        state["in_proj_bias"] = np.concatenate(
            [np.asarray(params[p]["bias"]).reshape(width) for p in _PROJ]
        )
    state["out_proj.weight"] = np.ascontiguousarray(out.reshape(width, out.shape[-1]).T)
    if module.use_bias:
        state["out_proj.bias"] = np.array(params["out"]["bias"])
    return state


def _check(module: nn.MultiHeadDotProductAttention, torch_module: Any) -> str | None:
    if not any(c.__name__ == "MultiheadAttention" for c in type(torch_module).__mro__):
        return (
            f"the torch layer is a {type(torch_module).__name__}, not a torch.nn.MultiheadAttention"
        )
    if torch_module.num_heads != module.num_heads:
        return (
            f"torch num_heads={torch_module.num_heads}, Flax num_heads={module.num_heads}: build "
            f"the Flax layer with num_heads={torch_module.num_heads}"
        )
    if getattr(torch_module, "add_zero_attn", False):
        return "torch add_zero_attn=True has no Flax counterpart"
    return None


register(
    nn.MultiHeadDotProductAttention,
    Converter("torch.nn.MultiheadAttention", _from_torch, _to_torch, _check),
)
