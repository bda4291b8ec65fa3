"""One error style for the whole package: "`arg` must be <expected>, got <value>."

Every check runs on static information (Python values, shapes, dtypes), so it raises at construction or
trace time, before any compute.
"""

import math
from collections.abc import Iterable, Sequence
from numbers import Real
from typing import Any

import jax.numpy as jnp
import numpy as np


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (listed in the message)."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.")


# The largest array dimension XLA compiles safely. XLA CPU rewrites a vector-matrix product with an
# output dimension of 2**31 or more into a reshape whose size overflows int32 and aborts the whole
# process (`Check failed: ... f32[1,-2147483648]`), an abort no Python code can catch (jaxlinear
# 0.1 with jax 0.10: `Linear(2**31)` applied to one row). Sizes are limited per dimension, not per
# array: arrays of more than 2**31 elements with smaller dimensions compile and run.
MAX_DIM = 2**31 - 1


def check_bool(name: str, value: Any) -> None:
    """Raise ``TypeError`` unless ``value`` is a bool (``"False"`` would otherwise count as True)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"`{name}` must be a bool (True or False), got {type(value).__name__} {value!r}."
        )


def check_dim(name: str, value: int) -> None:
    """Raise ``ValueError`` if the array size ``value`` exceeds :data:`MAX_DIM` (``2**31 - 1``).

    Checked before any array of that size is created or compiled: XLA aborts the process instead.
    """
    if value > MAX_DIM:
        raise ValueError(
            f"`{name}` must be <= 2**31 - 1 = {MAX_DIM} (the largest array dimension XLA can "
            f"compile; larger ones abort the process), got {value}."
        )


def check_real(
    name: str, value: Any, *, min_value: float | None = None, strict: bool = False
) -> float:
    """Return ``float(value)`` if ``value`` is a finite real number (not a bool, not a string)
    ``>= min_value`` (``> min_value`` with ``strict``); raise ``TypeError``/``ValueError`` otherwise.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real | np.floating | np.integer):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__} {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    if min_value is not None and (value <= min_value if strict else value < min_value):
        raise ValueError(f"`{name}` must be {'>' if strict else '>='} {min_value}, got {value!r}.")
    return value


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise unless ``value`` is a Python int > 0 (or >= 0 with ``allow_zero``); bools are rejected."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be an int {bound}, got {value!r}.")


def check_floating_dtype(name: str, dtype: Any, *, allow_none: bool = False) -> None:
    """Raise ``TypeError`` unless ``dtype`` is a real floating dtype (or None with ``allow_none``)."""
    if dtype is None:
        if allow_none:
            return
        ok = False  # jnp.issubdtype reads None as numpy's default float64
    else:
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


def check_layer_params(module: Any, use_bias: bool) -> None:
    """Inside a layer's ``__call__``: the given params are floating, and no bias is silently dropped.

    Flax ignores a variable the layer does not ask for, so a ``bias`` given to a layer built with
    ``use_bias=False`` would be dropped without a word; integer params would be promoted silently.
    """
    for name in ("kernel", "bias"):
        if module.has_variable("params", name):
            value = module.get_variable("params", name)
            value = value.unbox() if hasattr(value, "unbox") else value  # a partitioned box
            check_floating_array(f"variables['params']['{name}']", value)
    if not use_bias and module.has_variable("params", "bias"):
        raise ValueError(
            "`variables['params']` must not have a 'bias' for a layer built with use_bias=False "
            "(it would be ignored); build the layer with use_bias=True or drop the bias."
        )
