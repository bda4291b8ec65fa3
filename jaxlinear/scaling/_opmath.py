"""torch's half-precision arithmetic, for ops whose bfloat16 results should match torch's.

torch computes a bfloat16/float16 op in float32 ("opmath") and rounds its result once; a Python
scalar operand enters as float32. These helpers do the same, and put a ``reduce_precision`` after
each upcast so that XLA's excess-precision simplification cannot skip a rounding torch does.
"""

from collections.abc import Callable

import jax.numpy as jnp
from jax import lax

from jaxlinear._numerics import divide
from jaxlinear._typing import Array

__all__ = ["compute_dtype", "divide_by_scale", "in_opmath", "multiply", "round_to", "upcast"]


def compute_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """float32 for half precision (torch's opmath type), else the dtype itself."""
    return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else jnp.dtype(dtype)


def round_to(x: Array, dtype: jnp.dtype) -> Array:
    """``x`` (in a wider dtype) rounded to the values of ``dtype``, kept in ``x``'s dtype.

    ``lax.reduce_precision`` may not be removed by XLA's excess-precision simplifications, unlike a
    ``convert`` pair, so a rounding torch does is never skipped under ``jit``.
    """
    info = jnp.finfo(dtype)
    return lax.reduce_precision(x, exponent_bits=info.nexp, mantissa_bits=info.nmant)


def upcast(x: Array) -> Array:
    """``x`` in its compute dtype (a no-op for float32/float64)."""
    dtype = x.dtype
    compute = compute_dtype(dtype)
    if compute == dtype:
        return x
    return round_to(x.astype(compute), dtype)  # no-op on values; pins the earlier rounding


def multiply(x: Array, scale: float, *, round_scale: bool = False) -> Array:
    """``scale * x`` as torch computes it, in ``x``'s dtype.

    A Python-float scale enters as float32 (``round_scale=False``: ``x * 0.3``, ``scale_fwd``); a
    scale saved as ``tensor(scale, dtype=x.dtype)`` is first rounded to ``x``'s dtype
    (``round_scale=True``: ``scale_bwd``).
    """
    dtype = x.dtype
    compute = compute_dtype(dtype)
    s = jnp.asarray(scale, dtype if round_scale else compute).astype(compute)
    return (upcast(x) * s).astype(dtype)


def divide_by_scale(x: Array, scale: float) -> Array:
    """``x / scale`` with a Python-float ``scale``, as torch computes it (float32, one true IEEE
    division by :func:`jaxlinear._numerics.divide`, also under ``jit``), in ``x``'s dtype."""
    dtype = x.dtype
    return divide(upcast(x), jnp.asarray(scale, compute_dtype(dtype))).astype(dtype)


def in_opmath(f: Callable[..., Array], *xs: Array) -> Array:
    """``f(*xs)`` computed in the compute dtype of ``xs[0]`` and rounded once to that dtype."""
    dtype = xs[0].dtype
    return f(*(upcast(x) for x in xs)).astype(dtype)
