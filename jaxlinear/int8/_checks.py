"""Argument checks of ``jl.quantization`` (qparams), in the package's one error style
(``jaxlinear._checks``, which holds the general ones such as ``check_bool``).

Values are checked when they are concrete (Python numbers, numpy or committed JAX arrays); traced values
(inside ``jit``) can only be checked for dtype and shape, which is always done.
"""

from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import concrete as concrete  # the package's one "value known now?" helper

__all__ = [
    "check_integer_zero_point",
    "check_min_le_max",
    "check_qrange",
    "check_scale",
    "check_zero_point_range",
    "concrete",
]


def check_integer_zero_point(name: str, zero_point: Any) -> None:
    """Raise ``TypeError`` unless ``zero_point`` is an integer (Python int or an integer array).

    A fractional or float zero point is rejected, not truncated (torch's Python API rejects a float).
    """
    if isinstance(zero_point, int | np.integer) and not isinstance(zero_point, bool):
        return
    dtype = getattr(zero_point, "dtype", None)
    if dtype is None:  # a Python float, a list, ...
        value = concrete(zero_point)
        dtype = None if value is None else value.dtype
    if dtype is None or dtype == np.bool_ or not jnp.issubdtype(dtype, jnp.integer):
        value = concrete(zero_point)
        shown = value.ravel()[:4].tolist() if value is not None else type(zero_point).__name__
        raise TypeError(
            f"`{name}` must be an integer (an int or an integer array), got {dtype} {shown}."
        )


def check_zero_point_range(name: str, zero_point: Any, qmin: int, qmax: int, what: str) -> None:
    """Raise ``ValueError`` if a concrete ``zero_point`` leaves ``[qmin, qmax]`` (torch raises too)."""
    value = concrete(zero_point)
    if value is None or value.size == 0:
        return
    bad = (value < qmin) | (value > qmax)
    if np.any(bad):
        raise ValueError(
            f"`{name}` must lie in [{qmin}, {qmax}] ({what}), got {value[bad].ravel()[:4].tolist()}."
        )


def check_scale(name: str, scale: Any) -> None:
    """Raise ``ValueError`` if a concrete ``scale`` is not finite and > 0 (0, negative, NaN, inf)."""
    value = concrete(scale)
    if value is None or value.size == 0:
        return
    value = value.astype(np.float32)
    bad = ~(np.isfinite(value) & (value > 0))
    if np.any(bad):
        raise ValueError(
            f"`{name}` must be finite and > 0 (as float32), got {value[bad].ravel()[:4].tolist()}."
        )


def check_qrange(qmin: Any, qmax: Any) -> None:
    """Raise unless ``qmin`` and ``qmax`` are Python ints with ``qmin <= qmax`` (torch's check)."""
    for name, value in (("qmin", qmin), ("qmax", qmax)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}.")
    if qmin > qmax:
        raise ValueError(f"`qmin` must be <= `qmax`, got qmin={qmin} and qmax={qmax}.")


def check_min_le_max(min_val: Any, max_val: Any) -> None:
    """Raise ``ValueError`` where concrete ``min_val > max_val`` (torch's observer asserts it).

    The empty-observer pair ``(inf, -inf)`` is allowed; NaN compares false and passes (torch: NaN scale).
    """
    lo, hi = concrete(min_val), concrete(max_val)
    if lo is None or hi is None:
        return
    lo, hi = np.broadcast_arrays(lo.astype(np.float32), hi.astype(np.float32))
    empty = (lo == np.inf) & (hi == -np.inf)
    bad = (lo > hi) & ~empty
    if np.any(bad):
        raise ValueError(
            f"`min_val` must be <= `max_val`, got min_val={lo[bad].ravel()[:4].tolist()} and "
            f"max_val={hi[bad].ravel()[:4].tolist()}."
        )
