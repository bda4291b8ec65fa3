"""jl.quantization without torch: formulas against numpy references, errors, dtypes, jit/pytree use."""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxlinear import quantization as Q
from jaxlinear.int8 import _linear


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
            lambda: Q.quantize_per_channel(jnp.ones((2, 3)), jnp.ones(2), jnp.zeros(2, int), 1),
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


@pytest.mark.parametrize(
    ("form", "operands"),
    [("u8s8", "tensor<17x8xui8>, tensor<8x12xi8>) -> tensor<17x12xi32>"),
     ("s8s8", "tensor<18x8xi8>, tensor<8x12xi8>) -> tensor<18x12xi32>")],
)  # fmt: skip
def test_int8_product_is_one_int8_gemm(monkeypatch, form, operands):
    """The product is one 8-bit GEMM with an int32 result (the HLO XLA CPU sends to YNNPACK): a
    uint8 × int8 dot of the raw activations (CPUs with AVX-512 VNNI), or an int8 × int8 dot of the
    activations shifted by 128 with a row of ones for the exact correction (other x86 CPUs); never an
    int32 GEMM of converted operands, never a wrapping int8 result."""
    monkeypatch.setenv("JAXLINEAR_INT8_DOT", form)
    jax.clear_caches()
    x = Q.quantize(jnp.ones((16, 8)), 0.1, 3)
    w = Q.quantize(jnp.ones((8, 12)), 0.1, 0, jnp.int8)
    for sat in (False, True):
        fn = jax.jit(lambda x, w, s=sat: Q.quantized_linear(x, w, None, 0.5, 0, int16_saturation=s))
        text = fn.lower(x, w).as_text()
        dots = [line for line in text.splitlines() if "stablehlo.dot_general" in line]
        assert len(dots) == 1, dots
        assert operands in dots[0], dots[0]
    jax.clear_caches()


def test_int8_dot_form_follows_the_cpu(monkeypatch):
    """u8 × s8 only where YNNPACK's kernel for it is fast (AVX-512 VNNI); s8 × s8 on other x86 CPUs;
    unchanged (u8 × s8) where the CPU flags cannot be read; the environment variable wins."""
    from jaxlinear.int8 import _int8_dot

    monkeypatch.delenv("JAXLINEAR_INT8_DOT", raising=False)
    monkeypatch.setattr(_int8_dot.platform, "machine", lambda: "x86_64")
    for flags, form in [
        (frozenset({"avx2", "fma", "avx512f", "avx512_vnni"}), "u8s8"),
        (frozenset({"avx2", "fma", "avx512f", "avx512bw"}), "s8s8"),
        (frozenset({"avx2", "fma"}), "s8s8"),
        (None, "u8s8"),
    ]:
        monkeypatch.setattr(_int8_dot, "_cpu_flags", lambda flags=flags: flags)
        assert _int8_dot.cpu_form() == form, flags
    monkeypatch.setattr(_int8_dot.platform, "machine", lambda: "aarch64")
    assert _int8_dot.cpu_form() == "u8s8"
    for form in ("u8s8", "s8s8"):
        monkeypatch.setenv("JAXLINEAR_INT8_DOT", form)
        assert _int8_dot.cpu_form() == form
    monkeypatch.setenv("JAXLINEAR_INT8_DOT", "vnni")
    with pytest.raises(ValueError, match=r"`JAXLINEAR_INT8_DOT` must be one of \('u8s8', 's8s8'\)"):
        _int8_dot.cpu_form()


def test_quantized_linear_matches_float_reference():
    """Exact integer maths (``int16_saturation=False``, the default, on every host): the result is the
    rounded float product within one output step. (FBGEMM's saturating sums are checked against a numpy
    model in test_quantization_saturation.py.)"""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 32)).astype(np.float32)
    w = rng.uniform(-1, 1, (32, 4)).astype(np.float32)
    b = rng.uniform(-1, 1, 4).astype(np.float32)
    xq = Q.quantize(x, 1 / 127.0, 127)
    wq = Q.quantize_per_channel(w, np.abs(w).max(0) / 127.5, np.zeros(4, int), 1)
    for engine in ("x86", "qnnpack"):
        y = jax.jit(
            lambda x, w, b, e=engine: Q.quantized_linear(
                x, w, b, 0.05, 128, engine=e, int16_saturation=False
            )
        )(xq, wq, b)
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


def test_numerics_never_read_the_host(monkeypatch):
    """No /proc/cpuinfo, no FBGEMM environment: the same integers whatever the host claims.

    The only host read in the package is ``int8_dot``'s choice of CPU kernel, and both of its forms
    give the same integers: pinned here, so that nothing else may read the CPU flags."""
    import builtins

    x = Q.quantize(jnp.full((2, 64), 2.0), 1 / 127, 0)  # 254: pairs saturate when asked to
    w = Q.quantize(jnp.ones((64, 3)), 1 / 127, 0, jnp.int8)

    def run():
        return [
            np.asarray(Q.quantized_linear(x, w, None, 1.0, 0, int16_saturation=s).values)
            for s in (False, True)
        ]

    monkeypatch.setenv("JAXLINEAR_INT8_DOT", "u8s8")
    jax.clear_caches()
    exact, saturated = run()
    assert (exact != saturated).all()
    real_open = builtins.open

    def guarded_open(path, *args, **kwargs):
        assert "cpuinfo" not in str(path), "jaxlinear read the host's CPU flags"
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    for form in ("u8s8", "s8s8"):
        monkeypatch.setenv("JAXLINEAR_INT8_DOT", form)
        for value in ("AVX2", "AVX512_E1"):
            monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", value)
            jax.clear_caches()
            got_exact, got_saturated = run()
            np.testing.assert_array_equal(got_exact, exact)
            np.testing.assert_array_equal(got_saturated, saturated)
    jax.clear_caches()


def test_fake_quantize_straight_through():
    x = jnp.float32([-1.0, 0.0, 0.26, 5.0])
    y, vjp = jax.vjp(lambda v: Q.fake_quantize(v, 0.1, 10, 0, 20), x)
    np.testing.assert_allclose(np.asarray(y), [-1.0, 0.0, 0.3, 1.0], atol=1e-6)
    np.testing.assert_array_equal(np.asarray(vjp(jnp.ones(4))[0]), [1, 1, 1, 0])


@pytest.mark.parametrize(
    "call, error, match",
    [
        # zero points: torch's range check, and no truncation of a fractional value
        (
            lambda: Q.quantize(jnp.ones(3), 0.1, 300),
            ValueError,
            r"`zero_point` must lie in \[0, 255\]",
        ),
        (lambda: Q.quantize(jnp.ones(3), 0.1, -1), ValueError, r"must lie in \[0, 255\]"),
        (lambda: Q.quantize(jnp.ones(3), 0.1, 128, jnp.int8), ValueError, r"\[-128, 127\]"),
        (lambda: Q.quantize(jnp.ones(3), 0.1, 1.5), TypeError, "`zero_point` must be an integer"),
        (lambda: Q.quantize(jnp.ones(3), 0.1, jnp.float32(3)), TypeError, "must be an integer"),
        (lambda: Q.quantize(jnp.ones(3), 0.1, True), TypeError, "must be an integer"),
        (
            lambda: Q.quantize_per_channel(
                jnp.ones((2, 3)), jnp.ones(3), jnp.array([0, 0, 200]), 1
            ),
            ValueError,
            r"`zero_points` must lie in \[-128, 127\] \(the range of int8\), got \[200\]",
        ),
        (
            lambda: Q.quantize_per_channel(jnp.ones((2, 3)), jnp.ones(3), jnp.full(3, 0.5), 1),
            TypeError,
            "`zero_points` must be an integer",
        ),
        # scales
        (lambda: Q.quantize(jnp.ones(3), 0.0, 0), ValueError, "`scale` must be finite and > 0"),
        (lambda: Q.quantize(jnp.ones(3), -0.1, 0), ValueError, "`scale` must be finite and > 0"),
        (lambda: Q.quantize(jnp.ones(3), jnp.nan, 0), ValueError, "`scale` must be finite"),
        (
            lambda: Q.quantize_per_channel(jnp.ones((2, 3)), jnp.array([1, 0, 1.0]), [0] * 3, 1),
            ValueError,
            "`scales` must be finite and > 0",
        ),
        # fake quantization: torch's qmin <= qmax and qmin <= zero point <= qmax
        (
            lambda: Q.fake_quantize(jnp.ones(3), 0.1, 7, 10, 5),
            ValueError,
            "`qmin` must be <= `qmax`",
        ),
        (
            lambda: Q.fake_quantize(jnp.ones(3), 0.1, 30, 0, 20),
            ValueError,
            r"must lie in \[0, 20\]",
        ),
        (lambda: Q.fake_quantize(jnp.ones(3), 0.1, 3, 0.0, 20), TypeError, "`qmin` must be an int"),
        (lambda: Q.fake_quantize(jnp.ones(3), 0.1, 2.5, 0, 20), TypeError, "must be an integer"),
        (
            lambda: Q.fake_quantize_per_channel(
                jnp.ones((2, 3)), jnp.ones(3), jnp.zeros(3, int), 1, 10, 5
            ),
            ValueError,
            "`qmin` must be <= `qmax`",
        ),
        # observers
        (lambda: Q.choose_qparams(3.0, -1.0), ValueError, "`min_val` must be <= `max_val`"),
        (
            lambda: Q.choose_qparams(jnp.array([0.0, 3.0]), jnp.array([1.0, 2.0])),
            ValueError,
            r"got min_val=\[3.0\] and max_val=\[2.0\]",
        ),
        (
            lambda: Q.choose_qparams(0.0, 1.0, symmetric="no"),
            TypeError,
            "`symmetric` must be a bool",
        ),
        (lambda: Q.choose_qparams_dynamic(0.0, 1.0, reduce_range=1), TypeError, "must be a bool"),
        # QTensor
        (lambda: Q.QTensor(jnp.ones(3), 0.1, 0), TypeError, "`values` must be an int8 or uint8"),
        (lambda: Q.QTensor(jnp.ones(3, jnp.int32), 0.1, 0), TypeError, "int8 or uint8"),
        (lambda: Q.QTensor(jnp.ones(3, jnp.uint8), 0.1, 0.5), TypeError, "must be an integer"),
        (lambda: Q.QTensor(jnp.ones(3, jnp.uint8), 0.1, 256), ValueError, r"\[0, 255\]"),
        (
            lambda: Q.QTensor(jnp.ones(3, jnp.uint8), jnp.ones(3), jnp.zeros(3, int)),
            ValueError,
            r"must be scalars for a per-tensor QTensor \(axis=None\), got shapes \(3,\)",
        ),
        (
            lambda: Q.QTensor(jnp.ones((2, 3), jnp.int8), jnp.ones(2), jnp.zeros(2, int), 1),
            ValueError,
            r"must have shape \(3,\) \(values.shape\[1\]\)",
        ),
        (lambda: Q.QTensor(jnp.ones((2, 3), jnp.int8), 1.0, 0, 2), ValueError, "`axis` must be in"),
        (lambda: Q.QTensor(jnp.ones((2, 3), jnp.int8), 1.0, 0, "1"), TypeError, "`axis` must be"),
        # the linear maps' flags and output qparams
        (
            lambda: Q.quantized_linear(_X, _W, None, 1.0, 0, int16_saturation=None),
            TypeError,
            r"`int16_saturation` must be a bool \(True or False\), got NoneType None",
        ),
        (
            lambda: Q.quantized_linear(
                _X, _W, None, 1.0, 0, engine="qnnpack", int16_saturation=True
            ),
            ValueError,
            "`int16_saturation` must be False with engine 'qnnpack'",
        ),
        (lambda: Q.quantized_linear(_X, _W, None, 1.0, 0, relu="False"), TypeError, "`relu`"),
        (
            lambda: Q.quantized_linear(_X, _W, None, 1.0, 300),
            ValueError,
            "`out_zero_point` must lie",
        ),
        (lambda: Q.quantized_linear(_X, _W, None, 1.0, 2.0), TypeError, "`out_zero_point` must be"),
        (
            lambda: Q.quantized_linear(_X, _W, None, 0.0, 0),
            ValueError,
            "`out_scale` must be finite",
        ),
        (
            lambda: Q.dynamic_quantized_linear(jnp.ones((2, 3)), _W, reduce_range="True"),
            TypeError,
            "`reduce_range` must be a bool",
        ),
        (lambda: Q.int8_dot(jnp.ones((2, 3), jnp.int32), _W.values), TypeError, "uint8 or int8"),
        (
            lambda: Q.int8_dot(jnp.ones((2, 5), jnp.uint8), _W.values),
            ValueError,
            "must be matrices",
        ),
    ],
)
def test_bad_input_is_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()


_X = Q.QTensor(np.ones((2, 3), np.uint8), 0.1, 0)
_W = Q.QTensor(np.ones((3, 4), np.int8), 0.1, 0)


def test_valid_edge_cases_keep_working():
    # traced qparams cannot be range-checked, and need not be
    q = jax.jit(lambda x, s, z: Q.quantize(x, s, z).values)(jnp.ones(3), 0.5, 3)
    assert q.tolist() == [5, 5, 5]
    # numpy integers, integral zero points of any integer dtype, float64 scales
    assert Q.quantize(np.ones(2), np.float64(0.5), np.int64(255)).values.tolist() == [255, 255]
    # the empty observer and qmin == qmax
    assert float(Q.choose_qparams(jnp.inf, -jnp.inf)[0]) == 1.0
    assert Q.fake_quantize(jnp.ones(2), 0.5, 3, 3, 3).tolist() == [0.0, 0.0]
    # empty batches, static and dynamic, and a QTensor rebuilt by JAX from other leaves
    empty = Q.quantize(jnp.ones((0, 3)), 0.1, 0)
    assert Q.quantized_linear(empty, _W, None, 1.0, 0, int16_saturation=True).values.shape == (0, 4)
    assert Q.dynamic_quantized_linear(jnp.ones((0, 3)), _W, int16_saturation=True).shape == (0, 4)
    shapes = jax.tree.map(jnp.shape, _W)
    assert shapes.values == (3, 4) and shapes.axis is None


@pytest.fixture(params=["u8s8", "s8s8"])
def int8_dot_form(request, monkeypatch):
    """Each CPU lowering of ``int8_dot`` in turn, whatever this host would pick."""
    monkeypatch.setenv("JAXLINEAR_INT8_DOT", request.param)
    jax.clear_caches()
    yield request.param
    jax.clear_caches()


def test_int8_dot_is_exact_everywhere(int8_dot_form):
    rng = np.random.default_rng(0)
    for m, k, n in [(1, 7, 3), (5, 300, 40), (37, 64, 9), (0, 5, 3), (4, 0, 3), (16, 16, 16)]:
        w = rng.integers(-128, 128, (k, n)).astype(np.int8)
        for dtype, lo, hi in ((np.uint8, 0, 256), (np.int8, -128, 128)):
            a = rng.integers(lo, hi, (m, k)).astype(dtype)
            want = a.astype(np.int64) @ w.astype(np.int64)
            np.testing.assert_array_equal(np.asarray(Q.int8_dot(a, w)), want)  # eager
            np.testing.assert_array_equal(np.asarray(jax.jit(Q.int8_dot)(a, w)), want)
    extremes = np.full((8, 64), 255, np.uint8), np.full((64, 8), -128, np.int8)
    assert int(Q.int8_dot(*extremes)[0, 0]) == -255 * 128 * 64  # no int16 pair saturation


def test_int8_dot_transforms(int8_dot_form):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (3, 6, 10)).astype(np.uint8)
    w = rng.integers(-128, 128, (3, 10, 4)).astype(np.int8)
    want = np.einsum("bmk,bkn->bmn", a.astype(np.int64), w.astype(np.int64))
    np.testing.assert_array_equal(np.asarray(jax.vmap(Q.int8_dot)(a, w)), want)
    np.testing.assert_array_equal(
        np.asarray(jax.vmap(Q.int8_dot, in_axes=(0, None))(a, w[0])),
        np.einsum("bmk,kn->bmn", a.astype(np.int64), w[0].astype(np.int64)),
    )
    np.testing.assert_array_equal(
        np.asarray(jax.vmap(Q.int8_dot, in_axes=(None, 0))(a[0], w)),
        np.einsum("mk,bkn->bmn", a[0].astype(np.int64), w.astype(np.int64)),
    )
    # differentiable through a quantized layer: the integer product has zero tangents (the
    # gradient flows through the activation scale only, as the float ops around it say)
    kernel = Q.QTensor(jnp.asarray(w[0]), 0.1, 0)
    x = jnp.asarray(rng.standard_normal((2, 10)), jnp.float32)
    g = jax.grad(lambda x: Q.dynamic_quantized_linear(x, kernel).sum())(x)
    assert g.shape == (2, 10) and bool(jnp.isfinite(g).all())
    dot_sum = lambda a: Q.int8_dot(a, w[0]).sum().astype(jnp.float32)
    assert jax.grad(dot_sum, allow_int=True)(a[0]).dtype == jax.dtypes.float0


def np_find_min_max(a):
    """fbgemm::FindMinMax (AVX2), written as the C++ loop: 8 lanes with ``_mm256_min_ps(acc, v)``
    (``acc < v ? acc : v``: v when either is NaN), then ``std::min`` (first operand on NaN)."""
    a = a.ravel()
    lo = hi = a[0]
    full = a.size // 8 * 8
    if full:
        mins, maxs = np.full(8, a[0]), np.full(8, a[0])
        for row in a[:full].reshape(-1, 8):
            mins = np.where(mins < row, mins, row)
            maxs = np.where(maxs > row, maxs, row)
        for v_min, v_max in zip(mins, maxs, strict=True):
            lo = v_min if v_min < lo else lo
            hi = v_max if hi < v_max else hi
    for v in a[full:]:
        lo = v if v < lo else lo
        hi = v if hi < v else hi
    return lo, hi


def test_fbgemm_min_max_matches_the_cpp_loop():
    rng = np.random.default_rng(2)
    for trial in range(60):
        x = rng.standard_normal(int(rng.integers(1, 90))).astype(np.float32)
        for i in rng.integers(0, x.size, int(rng.integers(0, 4))):
            x[i] = rng.choice([np.nan, np.nan, 9.0, -9.0, np.inf, -np.inf])
        got = [float(v) for v in jax.jit(Q.fbgemm_min_max)(x)]
        want = [float(v) for v in np_find_min_max(x)]
        np.testing.assert_array_equal(got, want, err_msg=f"trial {trial}: {x.tolist()}")


def test_dynamic_nan_in_a_batch_is_per_tensor_as_in_torch():
    """x86: a NaN (not first) leaves the other rows finite (FindMinMax skips it); a NaN first, or any
    NaN with qnnpack, is where torch raises: every output is NaN."""
    rng = np.random.default_rng(4)
    w = Q.quantize(jnp.asarray(rng.standard_normal((16, 5)), jnp.float32), 0.02, 0, jnp.int8)
    x = rng.standard_normal((6, 16)).astype(np.float32)
    apply = jax.jit(Q.dynamic_quantized_linear, static_argnames="engine")
    x_mid = x.copy()
    x_mid[3, 7] = np.nan
    y = np.asarray(apply(x_mid, w))
    assert np.isfinite(y).all()
    x_first = x.copy()
    x_first[0, 0] = np.nan
    assert np.isnan(np.asarray(apply(x_first, w))).all()
    assert np.isnan(np.asarray(apply(x_mid, w, engine="qnnpack"))).all()
    assert np.isfinite(np.asarray(apply(x, w, engine="qnnpack"))).all()


def test_dynamic_linear_is_one_gemm_and_one_min_max_pass():
    """The NaN-path conditional holds only the quantization: under vmap (NLinear members), where a
    conditional runs both branches, the GEMM is still traced once; outside vmap, min and max are one
    reduction (the NaN path's own reductions stay inside the conditional); a NaN in one member leaves
    the others finite (the per-member FindMinMax)."""
    rng = np.random.default_rng(5)
    w = Q.quantize(jnp.asarray(rng.standard_normal((3, 16, 5)), jnp.float32), 0.02, 0, jnp.int8)
    x = rng.standard_normal((3, 6, 16)).astype(np.float32)
    x[1, 2, 3] = np.nan

    def f(x, values):
        return Q.dynamic_quantized_linear(x, Q.QTensor(values, w.scale, w.zero_point))

    for fn, args in ((jax.vmap(f), (x, w.values)), (f, (x[0], w.values[0]))):
        assert str(jax.make_jaxpr(fn)(*args)).count("jaxlinear_u8s8_dot") == 1

    def outside_cond(jaxpr) -> list[str]:  # primitives, in nested jits too, but not in a cond
        names = []
        for eqn in jaxpr.eqns:
            names.append(eqn.primitive.name)
            if eqn.primitive.name != "cond":
                for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                    names += outside_cond(sub)
        return names

    outside = outside_cond(jax.make_jaxpr(f)(x[0], w.values[0]).jaxpr)
    assert outside.count("reduce") == 1 and "cond" in outside  # min and max: one variadic reduce
    assert "reduce_min" not in outside and "reduce_max" not in outside
    got = np.asarray(jax.jit(jax.vmap(f))(x, w.values))
    want = np.stack([np.asarray(f(x[i], w.values[i])) for i in range(3)])
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).all()
