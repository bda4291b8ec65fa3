"""Arrays from any framework as numpy, without importing torch (duck-typed, as penzai does)."""

from collections.abc import Iterable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = ["check_keys", "to_numpy"]


def to_numpy(value: Any) -> np.ndarray:
    """A numpy copy of a torch tensor, jax array or array-like; bfloat16 stays bfloat16.

    torch tensors are detached and moved to the CPU first (duck-typed: nothing imports torch).

    Example:
        >>> to_numpy(jnp.ones((2,), jnp.bfloat16)).dtype
        dtype(bfloat16)
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        value = value.detach().cpu()
        if getattr(value, "is_quantized", False):
            raise TypeError(
                "quantized torch tensors must be converted with their own converter "
                "(values, scale and zero point), not read as plain arrays."
            )
        if (
            str(value.dtype) == "torch.bfloat16"
        ):  # numpy has no bfloat16: go through float32 (exact)
            return value.float().numpy().astype(jnp.bfloat16)
        return value.numpy().copy()
    return np.array(value)


def check_keys(
    state_dict: Mapping[str, Any], required: Iterable[str], optional: Iterable[str], owner: str
) -> None:
    """Raise ``KeyError`` listing missing and unexpected keys of a torch ``state_dict``."""
    required, optional = set(required), set(optional)
    missing = sorted(required - set(state_dict))
    unexpected = sorted(set(state_dict) - required - optional)
    if missing or unexpected:
        raise KeyError(
            f"`state_dict` for {owner} must have keys {sorted(required)}"
            + (f" (optionally {sorted(optional)})" if optional else "")
            + f"; missing {missing}, unexpected {unexpected}."
        )
