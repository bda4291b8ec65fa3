"""torchao's int8 linear schemes (torchao 0.18, ``quantize_`` with ``Int8WeightOnlyConfig`` /
``Int8DynamicActivationInt8WeightConfig``, version 2, default arguments), number for number.

Weights (``Int8Tensor.from_hp(w, PerRow())``): symmetric int8 per output channel,
``scale = max(|min⁻|, max⁺) / 127.5`` computed in the weight's dtype and clamped below at float32's eps,
then float32; ``q = clamp(rne(w · fl32(1/scale)), -128, 127)`` (the clamp keeps -128, which a product just past -127.5 reaches).
Kernels here are in the JAX layout ``(..., in, out)``: channels are the last axis, the reduction is over
``in`` (axis -2), and leading axes (``NLinear`` members) get their own scales.

- weight-only: ``y = (x @ q.astype(x.dtype)) · scale + bias``, a float matmul in the input's dtype;
- dynamic: activations symmetric int8 per row (token) with the same rule, an exact int8 × int8 → int32
  product, then ``fl32(acc) · s_x`` rounded to the input's dtype, ``· s_w`` (float32), ``+ bias``
  (no FMA, as torch's separate ops), rounded to the input's dtype.
"""

from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxlinear._checks import check_floating_array, check_min_ndim, check_shape
from jaxlinear._typing import Array
from jaxlinear.int8._numerics import divide, mul_then_add

__all__ = ["torchao_dynamic_linear", "torchao_quantize_weight", "torchao_weight_only_linear"]

EPS = np.float32(np.finfo(np.float32).eps)


def _symmetric_scale(x: Array, axis: int) -> Array:
    """``max(|min⁻|, max⁺) / 127.5`` along ``axis`` in ``x``'s dtype, clamped at eps, as float32."""
    lo = jnp.minimum(jnp.min(x, axis=axis), 0)
    hi = jnp.maximum(jnp.max(x, axis=axis), 0)
    scale = divide(jnp.maximum(-lo, hi), jnp.asarray(127.5, x.dtype))
    return jnp.maximum(scale, jnp.asarray(EPS, x.dtype)).astype(jnp.float32)


def _quantize(x: Array, scale: Array) -> Array:
    q = jnp.round(x.astype(jnp.float32) * divide(jnp.float32(1.0), scale))
    return jnp.clip(q, -128, 127).astype(jnp.int8)


def torchao_quantize_weight(kernel: Array) -> tuple[Array, Array]:
    """``(int8 values, float32 scales)`` of a kernel ``(..., in, out)``, as torchao's ``Int8Tensor``
    (``PerRow``) of the torch weight ``(out, in)``: scales ``(..., out)``.

    Each output column is quantized symmetrically: ``scale = max(|min⁻|, max⁺) / 127.5`` (in the
    kernel's dtype, at least float32 eps), ``q = clip(rne(w * (1 / scale)), -128, 127)``.

    Args:
        kernel: a floating kernel of shape ``(..., in, out)`` (a jaxlinear/Flax layout; leading dims,
            e.g. an NLinear's members, are batched).

    Returns:
        ``(values, scales)``: int8 values of ``kernel``'s shape and float32 scales of shape
        ``(..., out)``.

    Example:
        >>> q, s = torchao_quantize_weight(jnp.array([[1.0, -0.5], [-2.0, 0.25]]))
        >>> q, s * 127.5
        (Array([[  64, -127],
               [-127,   64]], dtype=int8), Array([2. , 0.5], dtype=float32))
    """
    kernel = jnp.asarray(kernel)
    check_floating_array("kernel", kernel)
    check_min_ndim("kernel", kernel, 2, "(..., in, out)")
    scale = _symmetric_scale(kernel, axis=-2)
    return _quantize(kernel, scale[..., None, :]), scale


def _members_dot(x: Array, kernel: Array, preferred: Any) -> Array:
    """``x (..., *n, in) @ kernel (*n, in, out)`` member by member (a plain dot for ``n = ()``)."""
    m = kernel.ndim - 2
    if m == 0:
        dims = (((x.ndim - 1,), (0,)), ((), ()))
        return lax.dot_general(x, kernel, dims, preferred_element_type=preferred)
    n_shape, n_in = kernel.shape[:m], kernel.shape[-2]
    batch = x.shape[: x.ndim - m - 1]
    n = int(np.prod(n_shape))
    xm = jnp.moveaxis(x.reshape(-1, n, n_in), 1, 0)  # (n, B, in)
    k = kernel.reshape(n, n_in, -1)
    y = lax.dot_general(xm, k, (((2,), (1,)), ((0,), (0,))), preferred_element_type=preferred)
    return jnp.moveaxis(y, 0, 1).reshape(*batch, *n_shape, -1)


def _check_linear(x: Array, kernel: Array, scale: Array, bias: Array | None) -> None:
    """The arguments of the torchao linears: float ``x (..., *n, in)``, int8 ``kernel (*n, in, out)``,
    ``scale`` and ``bias`` ``(*n, out)``."""
    check_floating_array("x", x)
    if getattr(kernel, "dtype", None) != jnp.int8:
        raise TypeError(f"`kernel` must be an int8 array, got {getattr(kernel, 'dtype', kernel)}.")
    check_min_ndim("kernel", kernel, 2, "(*n, in, out)")
    n_in, rows = kernel.shape[-2], (*kernel.shape[:-2], kernel.shape[-1])
    if x.ndim < kernel.ndim - 1 or tuple(x.shape[x.ndim - kernel.ndim + 1 :]) != kernel.shape[
        :-2
    ] + (n_in,):
        raise ValueError(
            f"`x` must have trailing shape {(*kernel.shape[:-2], n_in)} to match the kernel "
            f"{kernel.shape}, got {x.shape}."
        )
    check_shape("scale", scale, rows)
    if bias is not None:
        check_shape("bias", bias, rows)


def _rowwise(a: Array, y: Array) -> Array:
    """``a (*n, out)`` shaped to broadcast against ``y (..., *n, out)`` (explicit ranks)."""
    return a.reshape((1,) * (y.ndim - a.ndim) + a.shape)


def torchao_weight_only_linear(
    x: Array, kernel: Array, scale: Array, bias: Array | None = None
) -> Array:
    """``Int8WeightOnlyConfig``'s forward: ``(x @ kernel.astype(x.dtype)) · scale + bias`` in ``x``'s dtype.

    Args:
        x: ``(..., *n, in)``, float.
        kernel: int8 ``(*n, in, out)``; scale: float32 ``(*n, out)``; bias: ``(*n, out)`` or None
            (``n = ()`` for a plain linear; otherwise one linear per member, as ``NLinear``).

    Example:
        >>> q, s = torchao_quantize_weight(jnp.eye(2))
        >>> torchao_weight_only_linear(jnp.array([[0.5, -1.0]]), q, s).round(2)
        Array([[ 0.5, -1. ]], dtype=float32)
    """
    x = jnp.asarray(x)
    _check_linear(x, kernel, scale, bias)
    dt = x.dtype
    y = _members_dot(x, kernel.astype(dt), jnp.float32).astype(dt)
    y = y * _rowwise(scale.astype(dt), y)
    if bias is not None:
        y = y + _rowwise(bias.astype(y.dtype), y)
    return y.astype(dt)


def torchao_dynamic_linear(
    x: Array, kernel: Array, scale: Array, bias: Array | None = None
) -> Array:
    """``Int8DynamicActivationInt8WeightConfig``'s forward: per-row symmetric int8 activations.

    Args:
        x: ``(..., *n, in)``, float; each row (token, and member) gets its own activation scale.
        kernel: int8 ``(*n, in, out)``; scale: float32 ``(*n, out)``; bias: ``(*n, out)`` or None.

    Example:
        >>> q, s = torchao_quantize_weight(jnp.eye(2))
        >>> torchao_dynamic_linear(jnp.array([[0.5, -1.0]]), q, s).round(1)
        Array([[ 0.5, -1. ]], dtype=float32)
    """
    x = jnp.asarray(x)
    _check_linear(x, kernel, scale, bias)
    dt = x.dtype
    if x.size == 0:
        s_x = jnp.zeros(x.shape[:-1], jnp.float32)
    else:
        s_x = _symmetric_scale(x, axis=-1)
    xq = _quantize(x, s_x[..., None])
    acc = _members_dot(xq, kernel, jnp.int32)
    y = (acc.astype(jnp.float32) * s_x[..., None]).astype(dt)
    w_s = _rowwise(scale.astype(jnp.float32), y)
    if bias is None:
        return (y * w_s).astype(dt)
    # torch: `y * w_s`, then `y += bias`: two roundings, never an FMA
    return mul_then_add(y, w_s, _rowwise(bias, y)).astype(dt)
