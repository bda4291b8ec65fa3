"""Float steps that must round exactly as torch's C++ does, whatever XLA's CPU backend rewrites.

XLA CPU turns ``array / scalar`` into a multiply by the (rounded) reciprocal, and contracts ``a * b + c``
into an FMA. ``divide`` keeps a true IEEE division; ``fma`` rounds a multiply-add once (computed in
float64 with ``jax.enable_x64`` locally, no global flag: the product of two float32 values is exact in
float64), and ``mul_then_add`` rounds it twice. ``to_int32`` converts as x86's ``cvt`` instructions do.
"""

import jax
import jax.numpy as jnp

from jaxlinear._numerics import divide as divide  # the package's one true division
from jaxlinear._typing import Array

__all__ = ["divide", "fma", "mul_then_add", "to_int32"]


def fma(a: Array, b: Array, c: Array) -> Array:
    """``fl32(a·b + c)`` as a fused multiply-add of float32 operands computes it, through float64.

    ``a·b`` is exact in float64 (48 significant bits); the sum rounds to float64 and then to float32.
    These two roundings give the FMA's single rounding except when the float64 sum lands exactly on a
    float32 tie it was not on before (double rounding), which needs a sum whose exact value has more
    than 53 significant bits.
    """
    with jax.enable_x64(True):
        f64 = jnp.float64
        return (a.astype(f64) * b.astype(f64) + c.astype(f64)).astype(jnp.float32)


def mul_then_add(a: Array, b: Array, c: Array) -> Array:
    """``fl32(fl32(a·b) + c)``: two roundings, never contracted into an FMA.

    XLA CPU contracts even through float64 round trips and ``optimization_barrier``; a select on the
    product (NaN kept as NaN) is what stops it (measured).
    """
    prod = a * b
    prod = jnp.where(jnp.isnan(prod), jnp.float32(jnp.nan), prod)
    return prod + c


def to_int32(x: Array) -> Array:
    """An integer-valued float to int32 as x86's ``cvt``: NaN and values outside the int32 range give
    ``INT_MIN`` (the "integer indefinite" value; XLA's own conversion saturates instead)."""
    inside = (x >= -(2.0**31)) & (x < 2.0**31)
    return jnp.where(inside, x, 0).astype(jnp.int32) + jnp.where(inside, 0, jnp.int32(-(2**31)))
