"""FBGEMM's pairwise int16 saturation (``vpmaddubsw``), emulated exactly, only where it can happen.

FBGEMM's AVX2 and AVX-512 (non-VNNI) kernels sum the uint8 × int8 products of the K pairs
``(2i, 2i + 1)`` in int16 with saturation before the exact int32 accumulation:
``Σ_i clip(x[2i]·w[2i] + x[2i+1]·w[2i+1], -32768, 32767)``; VNNI kernels (``vpdpbusd``) do not.
An odd last element has no partner and never saturates (``|x·w| <= 255·128``).

Since ``|pair| <= max(x[2i])·max|w[2i]| + max(x[2i+1])·max|w[2i+1]|`` (maxima over the batch and over
the output channels), saturation is impossible

1. everywhere when ``max(x) <= 127`` (``2·127·128 < 2**15``: ``reduce_range`` activations, torch's x86
   default): then the result is the exact product and nothing else runs;
2. for every pair whose bound above is <= 32767.

Otherwise the correction ``Σ_i clip(pair_i) - pair_i`` is added to the exact product, computed only over
the pairs that can saturate, a few at a time: memory O(batch × out) plus a tile of at most
``_TILE`` int32 values (or one batch × out slice), never batch × in/2 × out.
"""

import jax.numpy as jnp
from jax import lax

from jaxlinear._typing import Array

__all__ = ["saturation_correction", "with_int16_saturation"]

_INT16_MAX = 32767
_TILE = 1 << 20  # int32 elements of one (batch, pairs, out) tile: 4 MiB


def saturation_correction(x: Array, w: Array) -> Array:
    """``Σ_i clip(p_i, -2**15, 2**15 - 1) - p_i`` over the K pairs ``p_i = x[:, 2i]·w[2i] +
    x[:, 2i+1]·w[2i+1]``, as ``(m, n)`` int32; pairs whose bound excludes saturation are skipped.

    Args:
        x: ``(m, k)`` uint8.
        w: ``(k, n)`` int8.
    """
    m, k = x.shape
    n = w.shape[1]
    pairs = k // 2
    if m == 0 or n == 0 or pairs == 0:
        return jnp.zeros((m, n), jnp.int32)
    xp = x[:, : 2 * pairs].reshape(m, pairs, 2)
    wp = w[: 2 * pairs].reshape(pairs, 2, n)
    x_max = jnp.max(xp, axis=0).astype(jnp.int32)  # (pairs, 2)
    w_max = jnp.max(jnp.abs(wp.astype(jnp.int32)), axis=2)  # (pairs, 2)
    risky = jnp.sum(x_max * w_max, axis=1) > _INT16_MAX
    count = jnp.sum(risky, dtype=jnp.int32)
    chunk = max(1, min(pairs, _TILE // (m * n)))
    # The risky pair indices first, padded to whole chunks; the padding is masked out.
    order = jnp.argsort(~risky, stable=True).astype(jnp.int32)
    order = jnp.pad(order, (0, -pairs % chunk))

    def body(c, acc):
        start = c * chunk
        ids = lax.dynamic_slice(order, (start,), (chunk,))
        live = start + jnp.arange(chunk) < count
        xs = xp[:, ids].astype(jnp.int32)  # (m, chunk, 2)
        ws = wp[ids].astype(jnp.int32)  # (chunk, 2, n)
        p = xs[:, :, 0, None] * ws[None, :, 0] + xs[:, :, 1, None] * ws[None, :, 1]
        excess = jnp.clip(p, -_INT16_MAX - 1, _INT16_MAX) - p
        return acc + jnp.sum(jnp.where(live[None, :, None], excess, 0), axis=1)

    n_chunks = (count + chunk - 1) // chunk
    return lax.fori_loop(0, n_chunks, body, jnp.zeros((m, n), jnp.int32))


def with_int16_saturation(prod: Array, x: Array, w: Array) -> Array:
    """``prod`` (the exact ``x @ w``) turned into FBGEMM's pairwise-saturated sum.

    Costs one ``max(x)`` when ``x <= 127`` (nothing can saturate), else the bounded emulation.
    """
    if x.size == 0 or prod.size == 0:
        return prod
    return lax.cond(
        jnp.max(x) <= 127,
        lambda p, x, w: p,
        lambda p, x, w: p + saturation_correction(x, w),
        prod,
        x,
        w,
    )
