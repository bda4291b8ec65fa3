"""Moving reference weights from torch to jaxlinear the way users do: through a weight file.

``export_state_dict`` writes the torch module's own ``state_dict()`` to a safetensors file and reads it
back as numpy arrays (no pickle). ``load_torch_file`` reads a ``torch.save``d file with
``weights_only=True``, which refuses to run pickled code.
"""

import os
import tempfile
from typing import Any

import numpy as np
import torch

from jaxlinear.interop import load_safetensors, save_safetensors


def export_state_dict(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """``module.state_dict()`` after a round trip through a safetensors file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "weights.safetensors")
        save_safetensors(path, module.state_dict())
        return load_safetensors(path)


def load_torch_file(path: str | os.PathLike) -> dict[str, Any]:
    """A ``torch.save``d state dict, loaded with ``weights_only=True`` (never executes pickled code)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def to_tensor(value: np.ndarray | Any) -> torch.Tensor:
    """A torch tensor from a numpy/jax array; bfloat16 arrays become bfloat16 tensors."""
    array = np.asarray(value)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(array, copy=True, order="C"))


def to_array(tensor: torch.Tensor) -> np.ndarray:
    """A numpy array of a torch tensor, bfloat16 widened to float32 (exact)."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()
