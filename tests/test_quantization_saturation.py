"""FBGEMM's two accumulations, both checked on any host: ``int16_saturation`` False and True.

torch's x86 engine sums products exactly on AVX-512 VNNI CPUs and in saturating int16 pairs elsewhere, so
a test against torch on one machine checks only one of them (the parity cases add torch forced onto its
AVX2 kernels in a subprocess). Here every host-sensitive computation runs under both settings against an
independent numpy model of FBGEMM (int64 integers, the requantization formulas of the reference notes),
with full-range activations (where the settings differ) and ``reduce_range`` ones (where they agree).
Fixed seeds throughout.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlinear import quantization as Q
from jaxlinear.int8 import _saturation

SETTINGS = [False, True]


def np_accumulate(xq: np.ndarray, wq: np.ndarray, saturate: bool) -> np.ndarray:
    """``Σ_k xq·wq`` in int64; with ``saturate``, pairs ``(2i, 2i+1)`` clipped to int16 first."""
    x, w = xq.astype(np.int64), wq.astype(np.int64)
    if not saturate:
        return x @ w
    if x.shape[1] % 2:
        x, w = np.pad(x, ((0, 0), (0, 1))), np.pad(w, ((0, 1), (0, 0)))
    pairs = np.einsum("mk,kn->mkn", x[:, 0::2], w[0::2]) + np.einsum(
        "mk,kn->mkn", x[:, 1::2], w[1::2]
    )
    return np.clip(pairs, -32768, 32767).sum(1)


def np_static(xq, x_s, x_zp, wq, w_s, w_zp, bias, out_s, out_zp, per_channel, saturate, relu):
    """FBGEMM's static linear: corrected accumulator, float bias fold, requantization."""
    k = xq.shape[1]
    acc = (
        np_accumulate(xq, wq, saturate)
        - x_zp * wq.astype(np.int64).sum(0)
        - (xq.astype(np.int64).sum(1, keepdims=True) - k * x_zp) * w_zp
    )
    acc_f = acc.astype(np.float32)
    atw = np.float32(x_s) * w_s.astype(np.float32)
    mult = (atw / np.float32(out_s)).astype(np.float32)
    if bias is None:
        xf = acc_f
    elif per_channel:
        xf = acc_f + (bias / atw).astype(np.float32)
    else:  # one rounding (FMA); the product of two float32 is exact in float64
        recip = np.float32(1) / atw
        xf = (acc_f.astype(np.float64) + bias.astype(np.float64) * np.float64(recip)).astype(
            np.float32
        )
    y = np.rint((xf * mult).astype(np.float32)) + out_zp
    return np.clip(y, out_zp if relu else 0, 255).astype(np.uint8)


def _problem(seed, m, k, n, scheme, x_max):
    rng = np.random.default_rng(seed)
    xq = rng.integers(0, x_max + 1, (m, k)).astype(np.uint8)
    xq[0, :] = x_max  # a row that saturates whenever the setting allows it
    wq = rng.integers(-128, 128, (k, n)).astype(np.int8)
    wq[:, 0] = 127
    if scheme == "per_channel":
        w_s = rng.uniform(0.005, 0.02, n).astype(np.float32)
        w_zp = np.zeros(n, np.int64)
    elif scheme == "per_tensor_affine":
        w_s, w_zp = np.float32(0.01), 3
    else:
        w_s, w_zp = np.float32(0.01), 0
    bias = rng.standard_normal(n).astype(np.float32)
    return xq, wq, w_s, w_zp, bias


@pytest.mark.parametrize("saturate", SETTINGS)
@pytest.mark.parametrize("scheme", ["per_tensor", "per_channel", "per_tensor_affine"])
@pytest.mark.parametrize("x_max", [255, 127])
@pytest.mark.parametrize("bias", [True, False])
def test_static_matches_fbgemm_model(saturate, scheme, x_max, bias):
    m, k, n = 24, 37, 11  # odd K: the last element has no pair
    xq, wq, w_s, w_zp, b = _problem(k + n, m, k, n, scheme, x_max)
    x_s, x_zp, out_s, out_zp = np.float32(0.02), 7, np.float32(0.9), 100
    per_channel = scheme == "per_channel"
    kernel = Q.QTensor(jnp.asarray(wq), w_s, w_zp, 1 if per_channel else None)
    x = Q.QTensor(jnp.asarray(xq), x_s, x_zp)
    b = b if bias else None
    for relu in (False, True):
        got = jax.jit(
            lambda x, w, b, r=relu: (
                Q.quantized_linear(x, w, b, out_s, out_zp, relu=r, int16_saturation=saturate).values
            )
        )(x, kernel, b)
        want = np_static(
            xq, x_s, x_zp, wq, np.asarray(w_s), w_zp, b, out_s, out_zp, per_channel, saturate, relu
        )
        np.testing.assert_array_equal(np.asarray(got), want)
    if x_max == 255 and saturate:  # the case does exercise the saturation
        assert (np_accumulate(xq, wq, True) != np_accumulate(xq, wq, False)).any()


@pytest.mark.parametrize("saturate", SETTINGS)
@pytest.mark.parametrize("reduce_range", [False, True])
def test_dynamic_matches_fbgemm_model(saturate, reduce_range):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((16, 40)) + 0.5).astype(np.float32)
    wq = rng.integers(-128, 128, (40, 9)).astype(np.int8)
    wq[:, 0] = 127
    w_s = rng.uniform(0.005, 0.02, 9).astype(np.float32)
    b = rng.standard_normal(9).astype(np.float32)
    kernel = Q.QTensor(jnp.asarray(wq), w_s, np.zeros(9, int), 1)
    got = jax.jit(
        lambda x: Q.dynamic_quantized_linear(
            x, kernel, b, reduce_range=reduce_range, int16_saturation=saturate
        )
    )(x)
    s, zp = Q.choose_qparams_dynamic(x.min(), x.max(), reduce_range=reduce_range)
    s, zp = np.float32(s), int(zp)
    xq = np.clip(np.rint(x * (np.float32(1) / s)) + zp, 0, 255).astype(np.uint8)
    acc = np_accumulate(xq, wq, saturate) - zp * wq.astype(np.int64).sum(0)
    mult = (s * w_s).astype(np.float32)
    acc_f = acc.astype(np.float32).astype(np.float64)
    want = (acc_f * mult.astype(np.float64) + b).astype(np.float32)  # FMA: one rounding
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("saturate", SETTINGS)
def test_float_reference_within_a_step_without_saturation(saturate):
    """The float product within one output step whenever nothing can saturate (inputs <= 127), under
    both settings; with full-range inputs only the exact setting stays within it."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 32)).astype(np.float32)
    w = rng.uniform(-1, 1, (32, 4)).astype(np.float32)
    b = rng.uniform(-1, 1, 4).astype(np.float32)
    wq = Q.quantize_per_channel(w, np.abs(w).max(0) / 127.5, np.zeros(4, int), 1)
    for scale, zp in ((1 / 63.0, 63), (1 / 127.0, 127)):  # inputs in [0, 126] / [0, 254]
        xq = Q.quantize(x, scale, zp)
        y = Q.quantized_linear(xq, wq, b, 0.05, 128, int16_saturation=saturate)
        want = (Q.dequantize(xq) @ Q.dequantize(wq) + b.reshape(1, -1)) / 0.05 + 128
        err = np.abs(np.asarray(y.values, np.float64) - np.clip(want, 0, 255)).max()
        if zp == 63 or not saturate:
            assert err <= 0.5 + 1e-3


def test_correction_only_over_pairs_that_can_saturate(monkeypatch):
    """Small tiles (several chunks, a partial last one) and pairs excluded by their bound."""
    monkeypatch.setattr(_saturation, "_TILE", 64)
    rng = np.random.default_rng(3)
    m, k, n = 6, 41, 5
    xq = rng.integers(0, 256, (m, k)).astype(np.uint8)
    wq = rng.integers(-128, 128, (k, n)).astype(np.int8)
    wq[4:12] //= 8  # pairs 2..5 cannot saturate
    got = _saturation.saturation_correction(jnp.asarray(xq), jnp.asarray(wq))
    want = np_accumulate(xq, wq, True) - np_accumulate(xq, wq, False)
    np.testing.assert_array_equal(np.asarray(got), want)
    assert (want != 0).any()
    for shape in ((0, 4, 3), (3, 1, 3), (3, 4, 0)):
        x0 = jnp.zeros(shape[:2], jnp.uint8)
        out = _saturation.saturation_correction(x0, jnp.zeros(shape[1:], jnp.int8))
        assert out.shape == (shape[0], shape[2])


def test_saturating_path_memory_is_batch_times_out():
    """b1024 4096->4096 (35 GB before: batch × in/2 × out): compiled temp memory stays O(batch × out)."""
    m, k, n = 1024, 4096, 4096
    sds = jax.ShapeDtypeStruct
    x = Q.QTensor(sds((m, k), jnp.uint8), sds((), jnp.float32), sds((), jnp.int32))
    w = Q.QTensor(sds((k, n), jnp.int8), sds((n,), jnp.float32), sds((n,), jnp.int32), 1)
    for saturate in SETTINGS:
        fn = jax.jit(
            lambda x, w, s=saturate: Q.quantized_linear(x, w, None, 0.1, 3, int16_saturation=s)
        )
        temp = fn.lower(x, w).compile().memory_analysis().temp_size_in_bytes
        assert temp <= 10 * (m + 1) * n * 4, temp  # a few (batch, out) int32 arrays and a tile
