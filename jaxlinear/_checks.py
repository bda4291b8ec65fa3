"""One error style for the whole package: "`arg` must be <expected>, got <value>."

Every check runs on static information (Python values, shapes, dtypes), so it raises at construction or
trace time, before any compute.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (listed in the message)."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.")


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise unless ``value`` is a Python int > 0 (or >= 0 with ``allow_zero``); bools are rejected."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be an int {bound}, got {value!r}.")


def check_floating_dtype(name: str, dtype: Any, *, allow_none: bool = False) -> None:
    """Raise ``TypeError`` unless ``dtype`` is a real floating dtype (or None with ``allow_none``)."""
    if dtype is None and allow_none:
        return
    try:
        ok = jnp.issubdtype(dtype, jnp.floating)
    except TypeError:
        ok = False
    if not ok:
        raise TypeError(
            f"`{name}` must be a floating dtype (float32, bfloat16, ...), got {dtype!r}."
        )


def check_floating_array(name: str, x: Any) -> None:
    """Raise ``TypeError`` unless ``x`` is an array of a real floating dtype."""
    dtype = getattr(x, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"`{name}` must be a floating array (float32, bfloat16, ...), got dtype {dtype}."
        )


def check_min_ndim(name: str, x: Any, ndim: int, what: str) -> None:
    """Raise ``ValueError`` unless ``x.ndim >= ndim``; ``what`` describes the expected layout."""
    if np.ndim(x) < ndim:
        raise ValueError(
            f"`{name}` must have at least {ndim} dimension(s) {what}, got shape {np.shape(x)}."
        )


def check_trailing_shape(name: str, x: Any, expected: Sequence[int], what: str) -> None:
    """Raise ``ValueError`` unless the last dims of ``x`` equal ``expected`` exactly (no broadcasting)."""
    expected = tuple(int(d) for d in expected)
    shape = tuple(np.shape(x))
    if len(shape) < len(expected) or shape[len(shape) - len(expected) :] != expected:
        raise ValueError(f"`{name}` must have trailing shape {expected} {what}, got shape {shape}.")


def check_shape(name: str, x: Any, expected: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``x.shape == expected``."""
    expected = tuple(int(d) for d in expected)
    if tuple(np.shape(x)) != expected:
        raise ValueError(f"`{name}` must have shape {expected}, got {tuple(np.shape(x))}.")


def check_in_features(name: str, x: Any, kernel_shape: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``x.shape[-1]`` equals the kernel's input size ``kernel_shape[0]``."""
    n_kernel, shape = int(kernel_shape[0]), tuple(np.shape(x))
    if not shape or shape[-1] != n_kernel:
        raise ValueError(
            f"`{name}` must have {n_kernel} input features (its last dim), as the layer's kernel "
            f"{tuple(kernel_shape)}, got shape {shape}."
        )
