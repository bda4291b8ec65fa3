"""Arrays from any framework as numpy, without importing torch (duck-typed, as penzai does)."""

from collections.abc import Iterable, Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

__all__ = ["check_keys", "check_params", "layer_params", "to_numpy"]


def to_numpy(value: Any) -> np.ndarray:
    """A numpy copy of a torch tensor, jax array or array-like; bfloat16 stays bfloat16.

    torch tensors are detached and moved to the CPU first (duck-typed: nothing imports torch).

    Args:
        value: a ``torch.Tensor`` (any device, with or without grad), a jax array, a numpy array or
            anything ``np.array`` accepts (nested lists, scalars).

    Returns:
        A new numpy array with ``value``'s shape and dtype (a torch bfloat16 tensor becomes an
        ``ml_dtypes`` bfloat16 array, exactly).

    Raises:
        TypeError: if ``value`` is a quantized torch tensor or a torchao quantized tensor (they are
            loaded by their layers' converters, not read as plain arrays), or not array-like (numpy
            would make an object array of it).

    Example:
        >>> to_numpy(jnp.ones((2,), jnp.bfloat16)).dtype
        dtype(bfloat16)
    """
    if hasattr(value, "qdata") and hasattr(value, "block_size"):  # a torchao quantized tensor
        raise TypeError(
            "torchao-quantized weights must be loaded into a quantized model: "
            "from_torch(qmodel, state_dict) with qmodel from jl.quantization.quantize(...)."
        )
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
    array = np.array(value)
    if array.dtype == object:
        raise TypeError(
            f"`value` must be an array or array-like of numbers, got {type(value).__name__} "
            f"{value!r:.80}."
        )
    return array


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


def check_params(
    params: Any, expected: Mapping[str, tuple[int | None, ...]], owner: str
) -> Mapping[str, Any]:
    """Check a layer's ``variables["params"]`` before export: names, then shapes.

    ``expected`` maps each param name to its shape, ``None`` for a dim the module does not fix (the
    input size). Raises ``ValueError`` naming the missing or unexpected params, or the wrong shape.
    """
    if not isinstance(params, Mapping):
        raise ValueError(
            f"`variables['params']` for {owner} must be a mapping of param name to array, got "
            f"{type(params).__name__}."
        )
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"`variables['params']` for {owner} must have params {sorted(expected)}; missing "
            f"{missing}, unexpected {unexpected}."
        )
    for name, shape in expected.items():
        got = tuple(np.shape(params[name]))
        if len(got) != len(shape) or any(
            w is not None and w != g for w, g in zip(shape, got, strict=True)
        ):
            want = "(" + ", ".join("in" if d is None else str(d) for d in shape)
            want += ",)" if len(shape) == 1 else ")"
            raise ValueError(
                f"`variables['params']['{name}']` for {owner} must have shape {want}, got {got}."
            )
    return params


def layer_params(variables: Any) -> Mapping[str, Any]:
    """``variables["params"]`` (unboxed), or ``TypeError`` when ``variables`` is not a model's variables."""
    if not isinstance(variables, Mapping) or "params" not in variables:
        kind = (
            f"keys {sorted(variables)}"
            if isinstance(variables, Mapping)
            else type(variables).__name__
        )
        raise TypeError(
            "`variables` must be a mapping with a 'params' collection (what `module.init` or "
            f"`from_torch` returns), got {kind}."
        )
    return nn.unbox(variables["params"])
