"""Pure linear maps: ``linear`` (torch.nn.Linear) and ``nlinear`` (delu.nn.NLinear).

Kernels use the JAX layout ``(in, out)`` (``(*n, in, out)`` for ``nlinear``). Half-precision inputs
(bfloat16, float16) accumulate in float32. ``linear`` adds the bias in float32 and rounds once, as
torch's ``addmm`` does; ``nlinear`` rounds the product, then adds the bias (in float32, rounding
again), as delu's ``x @ W + b`` does.
"""

import math

import jax.numpy as jnp
from jax import lax

from jaxlinear._checks import (
    check_dim,
    check_floating_array,
    check_min_ndim,
    check_shape,
    check_trailing_shape,
)
from jaxlinear._typing import Array, PrecisionLike

__all__ = ["linear", "nlinear"]


def _check_operands(
    x: Array, kernel: Array, bias: Array | None
) -> tuple[Array, Array, Array | None]:
    """Arrays (array-likes converted); x and the kernel of one floating dtype, a floating bias."""
    x, kernel = jnp.asarray(x), jnp.asarray(kernel)
    check_floating_array("x", x)
    check_floating_array("kernel", kernel)
    if kernel.dtype != x.dtype:
        raise TypeError(
            f"`kernel` must have the dtype of `x` ({x.dtype}), got {kernel.dtype} (promote the "
            "operands first, as the layers do)."
        )
    for d in kernel.shape:
        check_dim("kernel.shape", d)
    if bias is not None:
        bias = jnp.asarray(bias)
        check_floating_array("bias", bias)
    return x, kernel, bias


def _accumulation_dtype(dtype: jnp.dtype) -> jnp.dtype | None:
    """float32 for half-precision operands (one rounding at the end), else the operands' dtype."""
    return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else None


def linear(
    x: Array, kernel: Array, bias: Array | None = None, *, precision: PrecisionLike = None
) -> Array:
    """``x @ kernel + bias`` over any leading dims: ``(..., in) -> (..., out)``.

    Args:
        x: input of shape ``(..., in)``; 1-D input gives 1-D output.
        kernel: ``(in, out)``, the transpose of ``torch.nn.Linear.weight``.
        bias: ``(out,)`` or None.
        precision: passed to ``lax.dot_general``.

    Returns:
        ``(..., out)`` in the dtype of ``x`` (``kernel`` must share it; modules promote first; the
        bias may be any floating dtype: it is added in the accumulation dtype).

    Raises:
        TypeError: for non-floating operands or a kernel of another dtype than ``x``.
        ValueError: for shapes that do not fit (no broadcasting) or a dimension above ``2**31 - 1``.

    Example:
        >>> x = jnp.ones((2, 3)); k = jnp.ones((3, 4)); b = jnp.ones((4,))
        >>> linear(x, k, b)
        Array([[4., 4., 4., 4.],
               [4., 4., 4., 4.]], dtype=float32)
    """
    x, kernel, bias = _check_operands(x, kernel, bias)
    check_min_ndim("x", x, 1, "(..., in_features)")
    if kernel.ndim != 2:
        raise ValueError(
            f"`kernel` must have shape (in_features, out_features), got {kernel.shape}."
        )
    check_trailing_shape("x", x, kernel.shape[:1], "(..., in_features) matching `kernel`")
    if bias is not None:
        check_shape("bias", bias, kernel.shape[1:])
    y = lax.dot_general(
        x,
        kernel,
        (((x.ndim - 1,), (0,)), ((), ())),
        precision=precision,
        preferred_element_type=_accumulation_dtype(x.dtype),
    )
    if bias is not None:
        # inside the accumulation dtype: one rounding, as addmm; explicit rank (no rank promotion)
        y = y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))
    return y.astype(x.dtype)


def nlinear(
    x: Array, kernel: Array, bias: Array | None = None, *, precision: PrecisionLike = None
) -> Array:
    """N independent linear maps in one batched op: ``(..., *n, in) -> (..., *n, out)``.

    ``y[..., i, :] = x[..., i, :] @ kernel[i] + bias[i]`` for every index ``i`` of ``n``.

    Args:
        x: ``(..., *n, in)``: the trailing dims must equal ``kernel.shape[:-1]`` exactly.
        kernel: ``(*n, in, out)``, the layout of ``delu.nn.NLinear.weight`` (no transpose).
        bias: ``(*n, out)`` or None.
        precision: passed to ``lax.dot_general``.

    Raises:
        TypeError: for non-floating operands or a kernel of another dtype than ``x``.
        ValueError: for shapes that do not fit (no broadcasting) or a dimension above ``2**31 - 1``.

    Example:
        >>> x = jnp.ones((5, 2, 3)); k = jnp.ones((2, 3, 4)); b = jnp.zeros((2, 4))
        >>> nlinear(x, k, b).shape
        (5, 2, 4)
    """
    x, kernel, bias = _check_operands(x, kernel, bias)
    if kernel.ndim < 3:
        raise ValueError(
            f"`kernel` must have shape (*n, in_features, out_features), got {kernel.shape}."
        )
    n_shape, (n_in, n_out) = kernel.shape[:-2], kernel.shape[-2:]
    check_trailing_shape("x", x, kernel.shape[:-1], "(..., *n, in_features) matching `kernel`")
    if bias is not None:
        check_shape("bias", bias, (*n_shape, n_out))
    batch_shape = x.shape[: x.ndim - len(n_shape) - 1]
    n = math.prod(n_shape)
    # One batched matmul with n as the batch dimension, the layout delu uses: (n, B, in) @ (n, in, out).
    # The input is moved to (n, B, in) explicitly rather than letting dot_general take n as x's
    # second dim: XLA CPU then makes one transposed copy of the cotangent for both dx and dW instead
    # of two (fwd+bwd measured 15-26% faster in isolation; see benchmarks/RESULTS.md).
    xt = jnp.swapaxes(x.reshape(math.prod(batch_shape), n, n_in), 0, 1)
    y = jnp.matmul(
        xt,
        kernel.reshape(n, n_in, n_out),
        precision=precision,
        preferred_element_type=_accumulation_dtype(x.dtype),
    )  # (n, B, out)
    y = jnp.swapaxes(y, 0, 1)
    if bias is not None:
        # delu's `x @ W + b`: round the product to the input dtype, then add in float32 and round
        # again (torch's half-precision add); the bias gradient is then also summed in float32.
        y = y.astype(x.dtype).astype(y.dtype) + bias.reshape(1, n, n_out).astype(y.dtype)
    return y.astype(x.dtype).reshape(*batch_shape, *n_shape, n_out)
