"""Argument checks shared by the unit-scaled ops (the package's one error style)."""

from typing import Any

import jax.numpy as jnp

from jaxlinear._checks import check_floating_array
from jaxlinear._typing import Array

__all__ = ["as_float_array", "check_mult", "check_probability"]


def as_float_array(name: str, x: Any) -> Array:
    """``x`` as a JAX array, which must be floating."""
    x = jnp.asarray(x)
    check_floating_array(name, x)
    return x


def check_mult(mult: Any, name: str = "mult") -> float:
    """A static, positive, finite Python float (a hyperparameter of the scaling rule)."""
    if isinstance(mult, bool) or not isinstance(mult, int | float):
        raise TypeError(f"`{name}` must be a Python float > 0, got {type(mult).__name__} {mult!r}.")
    if not mult > 0 or mult == float("inf"):
        raise ValueError(f"`{name}` must be a finite float > 0, got {mult!r}.")
    return float(mult)


def check_probability(name: str, p: Any, *, allow_one: bool = True) -> float:
    """A static Python float in [0, 1] ([0, 1) without ``allow_one``)."""
    if isinstance(p, bool) or not isinstance(p, int | float):
        raise TypeError(f"`{name}` must be a Python float in [0, 1], got {type(p).__name__}.")
    upper_ok = p <= 1 if allow_one else p < 1
    if not (p >= 0 and upper_ok):
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"`{name}` must be a float in {bound}, got {p!r}.")
    return float(p)
