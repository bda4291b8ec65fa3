"""Unit-scaled normalisation: ``layer_norm`` and ``rms_norm`` (``unit_scaling.functional``).

A normalisation already outputs unit-scaled values and passes unit-scaled gradients back, so only
the affine parameters' gradients are scaled: by ``√(prod(normalized_shape) / x.size)``, i.e.
``1/√(number of normalised rows)``, which turns a sum over the rows into a unit-scaled gradient.
"""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_real, check_trailing_shape
from jaxlinear._typing import Array
from jaxlinear.scaling._checks import as_float_array
from jaxlinear.scaling._opmath import compute_dtype, upcast
from jaxlinear.scaling._scale import scale_bwd
from jaxlinear.scaling._scope import op_scope

__all__ = ["layer_norm", "rms_norm"]


def _normalized_shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, bool):
        shape = ()
    elif isinstance(normalized_shape, int):
        return (normalized_shape,)
    else:
        try:
            shape = tuple(int(d) for d in normalized_shape)
        except TypeError:
            shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(
            f"`normalized_shape` must be a positive int or a non-empty sequence of them, "
            f"got {normalized_shape!r}."
        )
    return shape


def _affine_grad_scale(x: Array, shape: tuple[int, ...]) -> float:
    if x.size == 0:
        raise ValueError(f"`x` must be non-empty for a unit-scaled norm, got shape {x.shape}.")
    return (math.prod(shape) / x.size) ** 0.5


def _check_param(name: str, p: Array | None, shape: tuple[int, ...]) -> Array | None:
    if p is None:
        return None
    p = as_float_array(name, p)
    if p.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape} (normalized_shape), got {p.shape}.")
    return p


def _lead(p: Array, ndim: int) -> Array:
    """``p`` with leading unit dims up to ``ndim`` (explicit broadcasting, as flax does)."""
    return p.reshape((1,) * (ndim - p.ndim) + p.shape)


@op_scope
def layer_norm(
    x: Array,
    normalized_shape: int | Sequence[int],
    weight: Array | None = None,
    bias: Array | None = None,
    eps: float = 1e-5,
) -> Array:
    """A unit-scaled layer norm, ``unit_scaling.functional.layer_norm``.

    ``F.layer_norm`` over the last ``len(normalized_shape)`` dims (biased variance, ``eps`` inside
    the square root), with the gradients of ``weight`` and ``bias`` scaled by
    ``√(prod(normalized_shape) / x.size)``. Half precision computes in float32 and rounds once.

    Args:
        x: ``(..., *normalized_shape)``.
        normalized_shape: an int or a sequence of ints, the trailing dims to normalise.
        weight: ``normalized_shape`` or None.
        bias: ``normalized_shape`` or None.
        eps: added to the variance.

    Returns:
        An array like ``x``.

    Example:
        >>> layer_norm(jnp.array([[1.0, 3.0]]), 2, eps=0.0).tolist()
        [[-1.0, 1.0]]
    """
    x = as_float_array("x", x)
    shape = _normalized_shape(normalized_shape)
    check_trailing_shape("x", x, shape, "(..., *normalized_shape)")
    weight = _check_param("weight", weight, shape)
    bias = _check_param("bias", bias, shape)
    eps = check_real("eps", eps, min_value=0.0)
    s = _affine_grad_scale(x, shape)
    weight = scale_bwd(weight, s) if weight is not None else None
    bias = scale_bwd(bias, s) if bias is not None else None
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    xc = upcast(x)
    mean = jnp.mean(xc, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(xc - mean), axis=axes, keepdims=True)
    y = (xc - mean) * jax.lax.rsqrt(var + jnp.asarray(eps, xc.dtype))
    if weight is not None:
        y = y * _lead(upcast(weight).astype(xc.dtype), x.ndim)
    if bias is not None:
        y = y + _lead(upcast(bias).astype(xc.dtype), x.ndim)
    return y.astype(x.dtype)


@op_scope
def rms_norm(
    x: Array,
    normalized_shape: int | Sequence[int],
    weight: Array | None = None,
    eps: float = 1e-5,
) -> Array:
    """A unit-scaled RMS norm, ``unit_scaling.functional.rms_norm``.

    ``x / rms(x)`` with ``rms = √(mean(x²) + eps)`` over the trailing dims (computed in float32 and
    rounded to ``x``'s dtype, as the reference), times ``weight``, whose gradient is scaled by
    ``√(prod(normalized_shape) / x.size)``. The reference asserts on a list ``normalized_shape``;
    any int or sequence is accepted here.

    Args:
        x: ``(..., *normalized_shape)``.
        normalized_shape: an int or a sequence of ints.
        weight: ``normalized_shape`` or None.
        eps: added to the mean square.

    Returns:
        An array like ``x``.

    Example:
        >>> rms_norm(jnp.array([[3.0, -3.0]]), (2,), eps=0.0).tolist()
        [[1.0, -1.0]]
    """
    x = as_float_array("x", x)
    shape = _normalized_shape(normalized_shape)
    check_trailing_shape("x", x, shape, "(..., *normalized_shape)")
    weight = _check_param("weight", weight, shape)
    if eps is not None:
        eps = check_real("eps", eps, min_value=0.0)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    ms = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=axes, keepdims=True)
    if eps:
        ms = ms + eps
    rms = jnp.sqrt(ms).astype(x.dtype)
    compute = compute_dtype(x.dtype)
    y = (upcast(x) / upcast(rms).astype(compute)).astype(x.dtype)
    if weight is not None:
        weight = scale_bwd(weight, _affine_grad_scale(x, shape))
        y = (upcast(y) * _lead(upcast(weight).astype(compute), x.ndim)).astype(x.dtype)
    return y
