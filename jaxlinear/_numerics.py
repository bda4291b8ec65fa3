"""The package's one division that rounds exactly as IEEE (and torch's C++) does, under ``jit`` too.

XLA CPU turns ``array / scalar`` into a multiply by the (rounded) reciprocal, which can differ from
``fl32(a / b)`` in the last bit. :func:`divide` keeps a true division: the divisor is broadcast behind an
``optimization_barrier``, so XLA cannot fold it into a constant reciprocal. Used by the int8 numerics
(``jaxlinear.quantization``) and the unit-scaled ops (``jaxlinear.scaling``).
"""

import jax.numpy as jnp
from jax import lax

from jaxlinear._typing import Array

__all__ = ["divide"]


def divide(a: Array, b: Array) -> Array:
    """``fl32(a / b)`` elementwise, with a true division (no reciprocal multiply), broadcasting.

    Args:
        a: the dividend, an array or a number.
        b: the divisor, an array or a number (broadcast against ``a``).

    Returns:
        ``a / b`` with the broadcast shape, rounded once.

    Example:
        >>> divide(jnp.float32(1.0), jnp.float32(3.0)).item() == float(jnp.float32(1 / 3))
        True
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    shape = jnp.broadcast_shapes(a.shape, b.shape)
    b = lax.optimization_barrier(jnp.broadcast_to(b, shape))
    return jnp.broadcast_to(a, shape) / b
