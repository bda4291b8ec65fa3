"""Argument checks shared by the unit-scaled ops (the package's one error style)."""

from typing import Any

import jax.numpy as jnp

from jaxlinear._checks import check_floating_array, check_real
from jaxlinear._typing import Array

__all__ = ["as_float_array", "check_mult", "check_probability"]


def as_float_array(name: str, x: Any) -> Array:
    """``x`` as a JAX array, which must be floating."""
    x = jnp.asarray(x)
    check_floating_array(name, x)
    return x


def check_mult(mult: Any, name: str = "mult") -> float:
    """A static, positive, finite real number (a hyperparameter of the scaling rule), as a float.

    The package's one meaning of "a real number" (:func:`jaxlinear._checks.check_real`): Python and
    numpy numbers, not bools, strings or arrays.
    """
    return check_real(name, mult, min_value=0.0, strict=True)


def check_probability(name: str, p: Any, *, allow_one: bool = True) -> float:
    """A static real number in [0, 1] ([0, 1) without ``allow_one``), as a float."""
    p = check_real(name, p, min_value=0.0)
    upper_ok = p <= 1 if allow_one else p < 1
    if not (p >= 0 and upper_ok):
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"`{name}` must be a float in {bound}, got {p!r}.")
    return float(p)
