"""``scale_fwd`` / ``scale_bwd``: separate forward and backward scales (``unit_scaling.scale``).

Dtypes follow torch exactly: the forward scale is applied in float32 to half-precision arrays and
rounded once (the scale itself is not rounded), the backward scale is rounded to the gradient's dtype
first (torch saves ``tensor(scale, dtype=x.dtype)``), so bfloat16 results are bit-identical.
"""

import functools

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_floating_array, check_real
from jaxlinear._typing import Array
from jaxlinear.scaling._opmath import multiply

__all__ = ["scale_bwd", "scale_fwd"]


def _multiply(x: Array, scale: float, *, round_scale: bool) -> Array:
    """``scale * x`` as torch computes it (float32 for half precision, one rounding)."""
    return multiply(x, scale, round_scale=round_scale)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _scale_fwd(x: Array, scale: float) -> Array:
    return _multiply(x, scale, round_scale=False)


def _scale_fwd_fwd(x: Array, scale: float) -> tuple[Array, None]:
    return _multiply(x, scale, round_scale=False), None


def _scale_fwd_bwd(scale: float, res: None, g: Array) -> tuple[Array]:
    del scale, res
    return (g,)


_scale_fwd.defvjp(_scale_fwd_fwd, _scale_fwd_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _scale_bwd(x: Array, scale: float) -> Array:
    return x


def _scale_bwd_fwd(x: Array, scale: float) -> tuple[Array, None]:
    return x, None


def _scale_bwd_bwd(scale: float, res: None, g: Array) -> tuple[Array]:
    del res
    return (_multiply(g, scale, round_scale=True),)


_scale_bwd.defvjp(_scale_bwd_fwd, _scale_bwd_bwd)


def scale_fwd(x: Array, scale: float) -> Array:
    """Multiply by ``scale`` in the forward pass only; the gradient passes through unchanged.

    ``unit_scaling.scale_fwd``. For half-precision ``x`` the product is computed in float32 with the
    float32 value of ``scale`` and rounded once, as torch does.

    Args:
        x: a floating array.
        scale: a real number (a Python or numpy float, static: it is part of the traced function).
            Any value is applied as torch applies it, negative, inf and NaN included (the reference
            raises for none).

    Raises:
        TypeError: for a ``scale`` that is not a real number (an array, a string, a bool) or a
            non-floating ``x``.

    Returns:
        ``scale * x`` in ``x``'s dtype, whose VJP is the identity.

    Example:
        >>> x = jnp.arange(3.0)
        >>> y, vjp = jax.vjp(lambda x: scale_fwd(x, 3.5), x)
        >>> y.tolist(), vjp(jnp.ones(3))[0].tolist()
        ([0.0, 3.5, 7.0], [1.0, 1.0, 1.0])
    """
    x = jnp.asarray(x)
    check_floating_array("x", x)
    return _scale_fwd(x, check_real("scale", scale, finite=False))


def scale_bwd(x: Array, scale: float) -> Array:
    """The identity in the forward pass; the gradient is multiplied by ``scale``.

    ``unit_scaling.scale_bwd``. As in torch, ``scale`` is first rounded to the gradient's dtype
    (``1/√1000`` becomes 0.031738 in bfloat16), then multiplied in float32 and rounded once.

    Args:
        x: a floating array.
        scale: a real number (static); negative, inf and NaN are applied as torch does.

    Raises:
        TypeError: for a ``scale`` that is not a real number or a non-floating ``x``.

    Returns:
        ``x`` unchanged, whose VJP is ``g -> scale * g``.

    Example:
        >>> x = jnp.arange(3.0)
        >>> y, vjp = jax.vjp(lambda x: scale_bwd(x, 3.5), x)
        >>> y.tolist(), vjp(jnp.ones(3))[0].tolist()
        ([0.0, 1.0, 2.0], [3.5, 3.5, 3.5])
    """
    x = jnp.asarray(x)
    check_floating_array("x", x)
    return _scale_bwd(x, check_real("scale", scale, finite=False))
