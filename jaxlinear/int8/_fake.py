"""Fake quantization with straight-through gradients: torch's ``fake_quantize_per_tensor_affine`` /
``fake_quantize_per_channel_affine``, the building block of quantization-aware training.

Forward: ``(clamp(rne(x · fl32(1/s)) + zp, qmin, qmax) - zp) · s``, the float value int8 inference will
see. Backward: the gradient passes unchanged where ``qmin <= rne(x/s) + zp <= qmax`` and is zero where the
value was clamped (torch's mask); no gradient flows to the scale or zero point.
"""

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_floating_array
from jaxlinear._typing import Array
from jaxlinear.int8._checks import (
    check_integer_zero_point,
    check_qrange,
    check_scale,
    check_zero_point_range,
)
from jaxlinear.int8._numerics import divide
from jaxlinear.int8._qtensor import channel_qparams

__all__ = ["fake_quantize", "fake_quantize_per_channel"]


@jax.custom_vjp
def _fake(x: Array, scale: Array, zero_point: Array, qmin: Array, qmax: Array) -> Array:
    return _fake_fwd(x, scale, zero_point, qmin, qmax)[0]


def _fake_fwd(x, scale, zero_point, qmin, qmax):
    zp = zero_point  # float32 holding an integer (every custom_vjp input is float)
    q = jnp.round(x * divide(jnp.float32(1.0), scale)) + zp
    mask = (q >= qmin) & (q <= qmax)
    y = (jnp.clip(q, qmin, qmax) - zp) * scale
    return y.astype(x.dtype), (mask, scale, zero_point, qmin, qmax)


def _fake_bwd(res, g):
    mask, scale, zero_point, qmin, qmax = res
    zeros = jax.tree.map(jnp.zeros_like, (scale, zero_point, qmin, qmax))
    return (jnp.where(mask, g, jnp.zeros_like(g)), *zeros)


_fake.defvjp(_fake_fwd, _fake_bwd)


def fake_quantize(
    x: Array, scale: Array | float, zero_point: Array | int, qmin: int, qmax: int
) -> Array:
    """Quantize then dequantize ``x`` per tensor, with a straight-through (masked) gradient.

    Args:
        x: a floating array.
        scale: the scale, a scalar (finite, > 0; used as float32).
        zero_point: the zero point, an integer scalar in ``[qmin, qmax]``.
        qmin: the smallest quantized value, a Python int (e.g. ``qrange(jnp.uint8, True)[0]``).
        qmax: the largest quantized value, a Python int >= ``qmin``.

    Returns:
        An array like ``x`` (shape and dtype), ``(clamp(rne(x * fl32(1/scale)) + zero_point, qmin,
        qmax) - zero_point) * scale``. Its gradient is 1 where ``x`` was not clamped, 0 elsewhere.

    Raises:
        TypeError: if ``x`` is not a float array, ``zero_point`` not an integer or ``qmin``/``qmax``
            not ints.
        ValueError: if ``qmin > qmax``, a concrete ``zero_point`` is outside ``[qmin, qmax]`` (torch
            raises on both), a concrete ``scale`` is not finite and > 0, or the qparams are not scalars.

    Example:
        >>> x = jnp.array([-1.0, 0.26, 3.0])
        >>> fake_quantize(x, 0.1, 10, 0, 20)
        Array([-1. ,  0.3,  1. ], dtype=float32)
        >>> jax.grad(lambda v: fake_quantize(v, 0.1, 10, 0, 20).sum())(x)
        Array([1., 1., 0.], dtype=float32)
    """
    x = jnp.asarray(x)
    check_floating_array("x", x)
    check_qrange(qmin, qmax)
    check_integer_zero_point("zero_point", zero_point)
    scale = jnp.asarray(scale, jnp.float32)
    zero_point = jnp.asarray(zero_point, jnp.int32)
    if scale.ndim or zero_point.ndim:
        raise ValueError(
            f"`scale` and `zero_point` must be scalars (use fake_quantize_per_channel), got shapes "
            f"{scale.shape} and {zero_point.shape}."
        )
    check_scale("scale", scale)
    check_zero_point_range("zero_point", zero_point, qmin, qmax, "[qmin, qmax]")
    return _fake(x, scale, zero_point.astype(jnp.float32), jnp.float32(qmin), jnp.float32(qmax))


def fake_quantize_per_channel(
    x: Array, scales: Array, zero_points: Array, axis: int, qmin: int, qmax: int
) -> Array:
    """Per-channel :func:`fake_quantize` along ``axis`` (``torch.fake_quantize_per_channel_affine``).

    Args:
        x: a floating array.
        scales: one scale per channel, shape ``(x.shape[axis],)``, finite and > 0.
        zero_points: one integer zero point per channel, shape ``(x.shape[axis],)``, in
            ``[qmin, qmax]``.
        axis: the channel axis, an int in ``[-x.ndim, x.ndim)``.
        qmin: the smallest quantized value, a Python int.
        qmax: the largest quantized value, a Python int >= ``qmin``.

    Returns:
        An array like ``x``: each channel quantized and dequantized with its own qparams. Its
        gradient is 1 where ``x`` was not clamped to ``[qmin, qmax]`` and 0 elsewhere.

    Raises:
        TypeError: if ``x`` is not a float array, ``zero_points`` are not integers or
            ``qmin``/``qmax`` not ints.
        ValueError: if ``axis`` is out of range, ``scales``/``zero_points`` do not have shape
            ``(x.shape[axis],)``, ``qmin > qmax``, or concrete ``scales`` are not finite and > 0 or
            ``zero_points`` lie outside ``[qmin, qmax]``.

    Example:
        >>> w = jnp.array([[0.5, -0.2], [0.05, 0.9]])
        >>> y = fake_quantize_per_channel(w, jnp.array([0.25, 0.1]), jnp.zeros(2, int), 1, -128, 127)
        >>> [[round(float(v), 3) for v in row] for row in y]
        [[0.5, -0.2], [0.0, 0.9]]
    """
    x = jnp.asarray(x)
    check_floating_array("x", x)
    check_qrange(qmin, qmax)
    axis, scales, zero_points, shape = channel_qparams(x, scales, zero_points, axis)
    check_zero_point_range("zero_points", zero_points, qmin, qmax, "[qmin, qmax]")
    return _fake(
        x,
        scales.reshape(shape),
        zero_points.reshape(shape).astype(jnp.float32),
        jnp.float32(qmin),
        jnp.float32(qmax),
    )
