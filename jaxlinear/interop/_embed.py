"""``torch.nn.Embedding`` <-> ``flax.linen.Embed``: ``weight (num_embeddings, features)`` is Flax's
``embedding``, as is.

torch's ``padding_idx`` only keeps that row's gradient at zero (the forward is the same; mask the row's
update if you train); ``max_norm`` renormalises rows in the forward, which ``nn.Embed`` does not: a torch
module with ``max_norm`` is refused.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import check_keys, check_params, layer_params, to_numpy
from jaxlinear.interop._registry import Converter, register


def _owner(module: nn.Embed) -> str:
    return f"Embed({module.num_embeddings}, {module.features})"


def _from_torch(module: nn.Embed, state_dict: Mapping[str, Any]) -> PyTree:
    check_keys(state_dict, ["weight"], [], _owner(module))
    weight = to_numpy(state_dict["weight"])
    want = (module.num_embeddings, module.features)
    if weight.shape != want:
        raise ValueError(f"`state_dict['weight']` must have shape {want}, got {weight.shape}.")
    return {"params": {"embedding": jnp.asarray(weight, module.param_dtype)}}


def _to_torch(module: nn.Embed, variables: PyTree) -> dict[str, np.ndarray]:
    want = {"embedding": (module.num_embeddings, module.features)}
    params = check_params(layer_params(variables), want, _owner(module))
    return {"weight": np.array(params["embedding"])}


def _check(module: nn.Embed, torch_module: Any) -> str | None:
    if getattr(torch_module, "max_norm", None) is not None:
        return (
            f"the torch Embedding renormalises rows to max_norm={torch_module.max_norm} in its "
            "forward; flax.linen.Embed does not"
        )
    return None


register(nn.Embed, Converter("torch.nn.Embedding", _from_torch, _to_torch, _check))
