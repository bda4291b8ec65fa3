"""Weight files: safetensors only, so loading never runs pickled code."""

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from jaxlinear.interop._arrays import to_numpy

__all__ = ["load_safetensors", "save_safetensors"]


def save_safetensors(path: str | os.PathLike, state_dict: Mapping[str, Any]) -> None:
    """Write a ``state_dict`` (torch tensors, numpy or jax arrays) to a safetensors file.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_safetensors(p, {"weight": np.ones((2, 3), np.float32)})
        >>> load_safetensors(p)["weight"].shape
        (2, 3)
    """
    arrays = {k: np.ascontiguousarray(to_numpy(v)) for k, v in state_dict.items()}
    save_file(arrays, os.fspath(path))


def load_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a safetensors file into a ``state_dict`` of numpy arrays (keys unchanged)."""
    return load_file(os.fspath(path))
