"""Torch's checks of optimizer hyperparameters, at construction: "`arg` must be <expected>, got <value>."

A hyperparameter may be a Python number, a concrete array, an optax schedule (the learning rate) or a
traced value (under ``jax.jit``, ``jax.vmap`` or ``optax.inject_hyperparams``); only values known at
construction are checked (a traced value cannot be).
"""

import math
from numbers import Real
from typing import Any

import jax.numpy as jnp

from jaxlinear._checks import concrete

__all__ = ["check_hyperparam"]


def _is_real_array(value: Any) -> bool:
    """An array (or a numpy scalar) of an integer or floating dtype: not bool, not complex."""
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return False
    return bool(
        jnp.issubdtype(value.dtype, jnp.integer) or jnp.issubdtype(value.dtype, jnp.floating)
    )


def check_hyperparam(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    below: float | None = None,
    at_most: float | None = None,
    schedule: bool = False,
) -> None:
    """Raise unless ``value`` is a number ``>= low`` (and ``< below`` / ``<= at_most``), NaN rejected.

    Raises:
        TypeError: for a bool (``np.bool_`` and bool arrays too), a string, None, a complex number
            or any non-number (a callable unless ``schedule``).
        ValueError: for NaN, infinity or a value out of range.
    """
    if schedule and callable(value):
        return
    expected = f"a finite number >= {low:g}"
    if below is not None:
        expected = f"a number in [{low:g}, {below:g})"
    if at_most is not None:
        expected = f"a number in [{low:g}, {at_most:g}]"
    if schedule:
        expected += " or an optax schedule"
    is_array = _is_real_array(value)
    if isinstance(value, bool) or not (isinstance(value, Real) or is_array):
        raise TypeError(f"`{name}` must be {expected}, got {type(value).__name__} {value!r}.")
    if is_array and getattr(value, "ndim", 0) != 0:
        raise ValueError(
            f"`{name}` must be a scalar, {expected}, got shape {getattr(value, 'shape', ())}."
        )
    known = concrete(value)  # None when traced (unknown until run time)
    if known is None:
        return
    v = float(known)
    ok = math.isfinite(v) and v >= low
    if below is not None:
        ok = ok and v < below
    if at_most is not None:
        ok = ok and v <= at_most
    if not ok:
        raise ValueError(f"`{name}` must be {expected}, got {v!r}.")
