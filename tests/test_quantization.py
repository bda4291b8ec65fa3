"""jl.quantization without torch: formulas against numpy references, errors, dtypes, jit/pytree use."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxlinear import quantization as Q
from jaxlinear.quantization import _linear


def np_quantize(x, scale, zp, qmin, qmax):
    """The reference formula: multiply by the float32 reciprocal, rne, then the zero point, clamp."""
    inv = np.float32(1) / np.float32(scale)
    q = np.rint(x.astype(np.float32) * inv) + zp
    return np.where(np.isnan(q), qmax, np.clip(q, qmin, qmax))


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(2.0**-10, 10.0, width=32),
    zp=st.integers(0, 255),
    seed=st.integers(0, 2**16),
)
def test_quantize_matches_formula(scale, zp, seed):
    rng = np.random.default_rng(seed)
    k = rng.integers(-300, 300, 64).astype(np.float32)
    x = np.concatenate([(k + 0.5) * np.float32(scale), rng.standard_normal(64) * 100 * scale])
    x = x.astype(np.float32)
    got = Q.quantize(x, scale, zp, jnp.uint8).values
    np.testing.assert_array_equal(np.asarray(got), np_quantize(x, scale, zp, 0, 255))


def test_round_before_zero_point():
    # x/s = 0.5 with an odd zero point: rne(0.5) + 1 = 1, whereas rne(0.5 + 1) would be 2.
    assert int(Q.quantize(jnp.float32([0.5]), 1.0, 1).values[0]) == 1


def test_special_values_per_tensor_and_per_channel():
    x = jnp.float32([jnp.nan, jnp.inf, -jnp.inf, 1e30, -1e30])
    assert Q.quantize(x, 0.1, 200, jnp.uint8).values.tolist() == [255, 255, 0, 255, 0]
    assert Q.quantize(x, 0.1, -7, jnp.int8).values.tolist() == [127, 127, -128, 127, -128]
    pc = Q.quantize_per_channel(x.reshape(1, -1), jnp.float32([0.1]), jnp.int32([3]), 0, jnp.int8)
    assert pc.values.tolist() == [[0, 127, -128, 127, -128]]  # NaN -> 0 per channel, as torch


def test_dequantize_per_channel_axis():
    w = jnp.arange(6, dtype=jnp.float32).reshape(2, 3)
    qt = Q.quantize_per_channel(w, jnp.float32([1.0, 0.5, 2.0]), jnp.int32([0, 1, 2]), 1)
    np.testing.assert_array_equal(np.asarray(Q.dequantize(qt)), [[0, 1, 2], [3, 4, 4]])


def test_qtensor_is_a_pytree_with_static_axis():
    qt = Q.quantize_per_channel(jnp.ones((2, 3)), jnp.ones(3), jnp.zeros(3, int), 1)
    leaves, tree = jax.tree.flatten(qt)
    assert len(leaves) == 3 and jax.tree.unflatten(tree, leaves).axis == 1
    out = jax.jit(lambda q: Q.dequantize(q))(qt)
    assert out.shape == (2, 3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: Q.quantize(jnp.ones(3), 0.1, 0, jnp.int16), "`dtype` must be one of"),
        (lambda: Q.quantize(jnp.ones(3, int), 0.1, 0), "`x` must be a floating array"),
        (
            lambda: Q.quantize(jnp.ones(3), jnp.ones(3), 0),
            "`scale` and `zero_point` must be scalars",
        ),
        (
            lambda: Q.quantize_per_channel(jnp.ones((2, 3)), jnp.ones(2), jnp.zeros(2), 1),
            r"must have shape \(3,\)",
        ),
        (lambda: Q.quantize_per_channel(jnp.ones((2, 3)), 1, 0, 2), "`axis` must be an int"),
        (
            lambda: Q.choose_qparams(0.0, 1.0, jnp.uint8, symmetric=True, reduce_range=True),
            "`reduce_range` must be False",
        ),
        (lambda: Q.dequantize(jnp.ones(3)), "`qt` must be a QTensor"),
    ],
)
def test_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_choose_qparams_symmetric_weight():
    s, zp = Q.choose_qparams(jnp.float32(-2.0), jnp.float32(1.0), jnp.int8, symmetric=True)
    assert float(s) == np.float32(2.0) / np.float32(127.5) and int(zp) == 0
    x = np.float32([2.0, -2.0])
    q = Q.quantize(x, s, zp, jnp.int8).values
    np.testing.assert_array_equal(np.asarray(q), np_quantize(x, s, 0, -128, 127))


def test_choose_qparams_empty_observer():
    s, zp = Q.choose_qparams(jnp.float32(jnp.inf), jnp.float32(-jnp.inf))
    assert float(s) == 1.0 and int(zp) == 0


def np_sat16(xq, wq):
    """Pairwise int16-saturated Σ xq·wq, written independently with int64 numpy."""
    x, w = xq.astype(np.int64), wq.astype(np.int64)
    if x.shape[1] % 2:
        x, w = np.pad(x, ((0, 0), (0, 1))), np.pad(w, ((0, 1), (0, 0)))
    prods = x[:, :, None] * w[None, :, :]  # (m, k, n)
    pairs = prods[:, 0::2] + prods[:, 1::2]
    return np.clip(pairs, -32768, 32767).sum(1)


@pytest.mark.parametrize("k", [8, 9])
def test_sat16_accumulator_matches_numpy(k):
    rng = np.random.default_rng(k)
    xq = rng.integers(0, 256, (5, k)).astype(np.uint8)
    wq = rng.integers(-128, 128, (k, 7)).astype(np.int8)
    xq[0] = 255
    wq[:, 0] = 127  # saturates
    kernel = Q.QTensor(jnp.asarray(wq), jnp.float32(1), jnp.int32(3))
    got = _linear._accumulator(jnp.asarray(xq), jnp.int32(5), kernel, saturate=True)
    ones = np.ones_like(xq)
    want = (
        np_sat16(xq, wq)
        - np_sat16(5 * ones, wq)
        - 3 * (xq.astype(np.int64) - 5).sum(1, keepdims=True)
    )
    np.testing.assert_array_equal(np.asarray(got), want)
    exact = (xq.astype(np.int64) - 5) @ (wq.astype(np.int64) - 3)
    assert (want != exact).any()  # the case does saturate
    for zp in (5, 200):  # xq - zp fits int8 or not: both exact paths
        got = _linear._accumulator(jnp.asarray(xq), jnp.int32(zp), kernel, saturate=False)
        want = (xq.astype(np.int64) - zp) @ (wq.astype(np.int64) - 3)
        np.testing.assert_array_equal(np.asarray(got), want)


def test_int8_dot_in_jaxpr():
    """The product runs as s8 x s8 -> s32 (never u8 x s8, never a wrapping int8 result)."""
    x = Q.quantize(jnp.ones((4, 8)), 0.1, 3)
    w = Q.quantize(jnp.ones((8, 5)), 0.1, 0, jnp.int8)
    jaxpr = jax.make_jaxpr(
        lambda x, w: Q.quantized_linear(x, w, None, 0.5, 0, int16_saturation=False)
    )(x, w)
    dots = list(_dots(jaxpr.jaxpr))
    assert dots  # one per branch of the (activation range) cond
    for dot in dots:
        assert [v.aval.dtype for v in dot.invars] == [jnp.int8, jnp.int8]
        assert dot.outvars[0].aval.dtype == jnp.int32


def _dots(jaxpr):
    """Every dot_general of a jaxpr, sub-jaxprs (cond branches, pjit) included."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    yield from _dots(getattr(inner, "jaxpr", inner))


def test_quantized_linear_matches_float_reference():
    """Exact integer maths: the result is the rounded float product within one output step."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 32)).astype(np.float32)
    w = rng.uniform(-1, 1, (32, 4)).astype(np.float32)
    b = rng.uniform(-1, 1, 4).astype(np.float32)
    xq = Q.quantize(x, 1 / 127.0, 127)
    wq = Q.quantize_per_channel(w, np.abs(w).max(0) / 127.5, np.zeros(4, int), 1)
    for engine in ("x86", "qnnpack"):
        y = jax.jit(lambda x, w, b, e=engine: Q.quantized_linear(x, w, b, 0.05, 128, engine=e))(
            xq, wq, b
        )
        want = (Q.dequantize(xq) @ Q.dequantize(wq) + b.reshape(1, -1)) / 0.05 + 128
        assert np.abs(np.asarray(y.values, np.float64) - np.clip(want, 0, 255)).max() <= 0.5 + 1e-3


def test_quantized_linear_errors():
    x = Q.quantize(jnp.ones((2, 3)), 0.1, 0)
    w = Q.quantize(jnp.ones((3, 4)), 0.1, 0, jnp.int8)
    with pytest.raises(ValueError, match="`engine` must be one of"):
        Q.quantized_linear(x, w, None, 1.0, 0, engine="onednn")
    with pytest.raises(TypeError, match="`x` must be a per-tensor uint8 QTensor"):
        Q.quantized_linear(Q.quantize(jnp.ones((2, 3)), 0.1, 0, jnp.int8), w, None, 1.0, 0)
    with pytest.raises(ValueError, match="at least 2 dimension"):
        Q.quantized_linear(Q.quantize(jnp.ones(3), 0.1, 0), w, None, 1.0, 0)
    with pytest.raises(ValueError, match="`x` must have 3 input features"):
        Q.quantized_linear(Q.quantize(jnp.ones((2, 5)), 0.1, 0), w, None, 1.0, 0)
    with pytest.raises(ValueError, match=r"`bias` must have shape \(4,\)"):
        Q.quantized_linear(x, w, jnp.ones(3), 1.0, 0)
    with pytest.raises(TypeError, match="`x` must be float32"):
        Q.dynamic_quantized_linear(jnp.ones((2, 3), jnp.bfloat16), w)


def test_fbgemm_saturation_env(monkeypatch):
    _linear.fbgemm_int16_saturation.cache_clear()
    monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", "AVX2")
    assert _linear.fbgemm_int16_saturation() is True
    _linear.fbgemm_int16_saturation.cache_clear()
    monkeypatch.delenv("FBGEMM_ENABLE_INSTRUCTIONS")
    with open("/proc/cpuinfo") as f:
        vnni = "avx512_vnni" in f.read()
    assert _linear.fbgemm_int16_saturation() is (not vnni)
    _linear.fbgemm_int16_saturation.cache_clear()


def test_fake_quantize_straight_through():
    x = jnp.float32([-1.0, 0.0, 0.26, 5.0])
    y, vjp = jax.vjp(lambda v: Q.fake_quantize(v, 0.1, 10, 0, 20), x)
    np.testing.assert_allclose(np.asarray(y), [-1.0, 0.0, 0.3, 1.0], atol=1e-6)
    np.testing.assert_array_equal(np.asarray(vjp(jnp.ones(4))[0]), [1, 1, 1, 0])
