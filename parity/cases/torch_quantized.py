"""torch's quantized path vs ``jl.quantization``: quantize/dequantize, observers, static and dynamic linear.

Integer outputs are compared bit-exactly (``EXACT``), and every check's name carries its mismatch count
(``... 0/12800 mismatches``), so a failure says how many elements differ. Weights move through the
module's own ``state_dict`` (packed params) and ``jl.interop.from_torch``; quantized tensors cannot go
through safetensors, so one case also goes through a ``torch.save`` file read with ``weights_only=True``.

FBGEMM's pairwise int16 saturation depends on the CPU torch runs on; jaxlinear's never does (it is the
``int16_saturation`` argument). This module is the only place that looks at the torch host, by asking
torch itself (:func:`torch_fbgemm_saturates`), to pick the argument that matches torch here. Every x86
case with full-range activations runs with that argument against torch on this host, and the AVX2
cases run ``int16_saturation=True`` against torch forced onto FBGEMM's AVX2 kernels in a subprocess;
with ``reduce_range`` activations both settings must equal torch. So on an AVX-512 VNNI host both
settings are checked against torch, and on an AVX2 host the saturating one (the exact one is then
checked by the reduce_range cases and by tests/test_quantization_saturation.py against numpy).
"""

import contextlib
import functools
import os
import subprocess
import sys
import tempfile
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.ao.nn import quantized as nnq
from torch.ao.nn.intrinsic import quantized as nniq
from torch.ao.nn.quantized import dynamic as nnqd
from torch.ao.quantization import observer as obs

import jaxlinear as jl
from jaxlinear import quantization as Q
from parity.exchange import load_torch_file
from parity.harness import EXACT, Case, Check, register

GROUP = "quantized"
TORCH_DTYPES = {"uint8": torch.quint8, "int8": torch.qint8}
SCHEMES = {
    "per_tensor_sym": (torch.per_tensor_symmetric, False),
    "per_channel_sym": (torch.per_channel_symmetric, True),
    "per_tensor_affine": (torch.per_tensor_affine, False),
    "per_channel_affine": (torch.per_channel_affine, True),
}


def exact_check(name: str, got, want) -> Check:
    """A bit-exact check whose name counts the mismatching elements."""
    got, want = np.asarray(got), np.asarray(want)
    bad = int(np.sum(got != want)) if got.shape == want.shape else -1
    return Check(f"{name} {bad}/{want.size} mismatches", got, want, EXACT)


def finite_code(a) -> np.ndarray:
    """``a`` with ±inf as ±1e38, so the harness's ``|got - want|`` compares infinities exactly too
    (NaN stays NaN: the harness requires NaNs at the same places)."""
    a = np.asarray(a, np.float64)
    return np.where(np.isposinf(a), 1e38, np.where(np.isneginf(a), -1e38, a))


@contextlib.contextmanager
def _quiet():
    """torch 2.14 warns on every quantized tensor creation (pytorch#184982)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _data(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Random values, exact ties ``(k + 1/2)·s``, their float neighbours, and the range's edges."""
    s32 = np.float32(scale)
    k = rng.integers(-300, 300, n).astype(np.float32)
    ties = (k + np.float32(0.5)) * s32
    near = np.nextafter(ties, np.where(rng.random(n) < 0.5, -np.inf, np.inf).astype(np.float32))
    plain = rng.standard_normal(n).astype(np.float32) * np.float32(120 * scale)
    return np.concatenate([plain, ties, near, k * s32]).astype(np.float32)


def torch_per_tensor_model(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """torch's per-tensor kernel as measured, int32 wrap included: ``t = min(x·fl32(1/s), 2**31 - 128)``
    (NaN -> 2**31 - 128), ``rne(t)`` to int32 (out of range -> INT_MIN), ``+ zp`` wrapping, clamp."""
    qmin, qmax = Q.qrange(dtype)
    inv = np.float32(1) / np.float32(scale)
    with np.errstate(invalid="ignore", over="ignore"):
        t = x.astype(np.float32) * inv
        t = np.where(np.isnan(t), np.float32(2**31 - 128), np.minimum(t, np.float32(2**31 - 128)))
        r = np.rint(t).astype(np.float64)
    r = np.where(r < -(2.0**31), -(2.0**31), r).astype(np.int64)
    r = (r + zero_point + 2**31) % 2**32 - 2**31  # int32 wrap-around
    return np.clip(r, qmin, qmax)


def _quantize_case(dtype: str, zero_point: int, scale: float, seed: int) -> list[Check]:
    """Exact everywhere torch saturates correctly; where its int32 conversion wraps (known bug), the
    measured model of torch's kernel must reproduce torch, and jaxlinear the saturated value."""
    rng = np.random.default_rng(seed)
    x = _data(rng, 4000, scale)
    special = [np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 3e9 * scale, -3e9 * scale]
    x = np.concatenate([x, np.float32(special)])
    with _quiet():
        ref = torch.quantize_per_tensor(torch.from_numpy(x), scale, zero_point, TORCH_DTYPES[dtype])
        want, want_deq = ref.int_repr().numpy(), ref.dequantize().numpy()
    qt = jax.jit(lambda v: Q.quantize(v, scale, zero_point, dtype))(x)
    got, got_deq = np.asarray(qt.values), np.asarray(Q.dequantize(qt))
    qmin, qmax = Q.qrange(dtype)
    with np.errstate(invalid="ignore"):
        correct = np.clip(np.rint(x * (np.float32(1) / np.float32(scale))) + zero_point, qmin, qmax)
    correct = np.where(np.isnan(x), qmax, correct)
    wraps = torch_per_tensor_model(x, scale, zero_point, dtype) != correct
    n = int(wraps.sum())
    return [
        exact_check("int_repr", got[~wraps], want[~wraps]),
        exact_check("dequantize", got_deq[~wraps], want_deq[~wraps]),
        exact_check(
            "torch kernel model (wrap included)",
            torch_per_tensor_model(x, scale, zero_point, dtype),
            want,
        ),
        exact_check(
            f"saturated where torch wraps ({n})", got[wraps], correct[wraps].astype(got.dtype)
        ),
    ]


def _qint8_wrap_case() -> list[Check]:
    """known_reference_bugs.md: torch's qint8 wraps for |x/scale| beyond int32 (-1e9 -> 127); jaxlinear
    saturates to -128, the value ``clamp(round(x/s) + zp)`` gives."""
    x = np.float32([-1e9, 1e9, -3e9])
    got = np.asarray(Q.quantize(x, 0.1, -7, jnp.int8).values)
    want = np.clip(np.round(x.astype(np.float64) / np.float32(0.1)) - 7, -128, 127)
    with _quiet():
        torch_value = torch.quantize_per_tensor(torch.from_numpy(x), 0.1, -7, torch.qint8)
    wrapped = int(np.sum(torch_value.int_repr().numpy() != want))
    return [exact_check(f"saturates (torch wraps {wrapped}/3)", got, want.astype(np.int8))]


def _per_channel_case(dtype: str, axis: int, seed: int) -> list[Check]:
    rng = np.random.default_rng(seed)
    shape = [37, 41]
    n = shape[axis]
    # float64, as torch stores them, holding float32 values, as torch's observers produce: torch's
    # per-channel dequantize multiplies by the float64 scale, jaxlinear's QTensor holds float32.
    scales = rng.uniform(0.005, 0.2, n).astype(np.float32).astype(np.float64)
    zps = rng.integers(0, 256, n) if dtype == "uint8" else rng.integers(-128, 128, n)
    base = _data(rng, 37 * 41 // 4 + 1, 0.05)[: 37 * 41].reshape(shape)
    bshape = [1, 1]
    bshape[axis] = n
    x = (base / np.float32(0.05) * scales.astype(np.float32).reshape(bshape)).astype(np.float32)
    x.flat[::97] = np.nan
    with _quiet():
        ref = torch.quantize_per_channel(
            torch.from_numpy(x),
            torch.from_numpy(scales),
            torch.from_numpy(zps),
            axis,
            TORCH_DTYPES[dtype],
        )
        want, want_deq = ref.int_repr().numpy(), ref.dequantize().numpy()
    qt = Q.quantize_per_channel(x, scales, zps, axis, dtype)
    return [
        exact_check("int_repr", qt.values, want),
        exact_check("dequantize", Q.dequantize(qt), want_deq),
    ]


def _observer_case(dtype: str, scheme: str, reduce_range: bool, seed: int) -> list[Check]:
    qscheme, per_channel = SCHEMES[scheme]
    kwargs = {"dtype": TORCH_DTYPES[dtype], "qscheme": qscheme, "reduce_range": reduce_range}
    ref = (
        obs.PerChannelMinMaxObserver(ch_axis=1, **kwargs)
        if per_channel
        else obs.MinMaxObserver(**kwargs)
    )
    rng = np.random.default_rng(seed)
    state = None
    for i in range(3):
        x = (rng.standard_normal((16, 9)) * (1 + i) + rng.normal()).astype(np.float32)
        with _quiet():
            ref(torch.from_numpy(x))
        state = Q.min_max(x, axis=1 if per_channel else None, state=state)
    with _quiet():
        scale_want, zp_want = ref.calculate_qparams()
    symmetric = "sym" in scheme
    scale, zp = Q.choose_qparams(*state, dtype, symmetric=symmetric, reduce_range=reduce_range)
    return [
        exact_check("scale", np.reshape(scale, -1), scale_want.numpy()),
        exact_check("zero_point", np.reshape(zp, -1), zp_want.numpy()),
    ]


def _observer_nonfinite_case(dtype: str, scheme: str) -> list[Check]:
    """NaN/inf observed: torch's scale is NaN/inf and its zero point comes from an int32 cast of NaN
    (``INT_MIN``, wrapping) before the clamp; jaxlinear gives the same qparams."""
    qscheme, per_channel = SCHEMES[scheme]
    nan, inf = np.nan, np.inf
    x = np.float32([[1.0, nan, -2.0], [1.0, inf, 0.5], [-inf, 2.0, 0.1], [inf, -inf, 3.0]])
    kwargs = {"dtype": TORCH_DTYPES[dtype], "qscheme": qscheme}
    scales, zps, got_s, got_z = [], [], [], []
    rows = [x] if per_channel else list(x)
    for data in rows:
        ref = (
            obs.PerChannelMinMaxObserver(ch_axis=0, **kwargs)
            if per_channel
            else obs.MinMaxObserver(**kwargs)
        )
        with _quiet():
            ref(torch.from_numpy(data))
            s, z = ref.calculate_qparams()
        scales.append(s.numpy().ravel())
        zps.append(z.numpy().ravel())
        lo, hi = Q.min_max(data, axis=0 if per_channel else None)
        s, z = Q.choose_qparams(lo, hi, dtype, symmetric="sym" in scheme)
        got_s.append(np.reshape(s, -1))
        got_z.append(np.reshape(z, -1))
    want_s, want_z = np.concatenate(scales), np.concatenate(zps)
    n_nan, n_inf = int(np.isnan(want_s).sum()), int(np.isinf(want_s).sum())
    return [
        Check(
            f"scale ({n_nan} NaN, {n_inf} inf)",
            finite_code(np.concatenate(got_s)),
            finite_code(want_s),
            EXACT,
        ),
        exact_check("zero_point", np.concatenate(got_z), want_z),
    ]


def _dynamic_qparams_case(seed: int) -> list[Check]:
    """``ChooseQuantizationParams`` through torch's own dynamic quantization of random ranges."""
    rng = np.random.default_rng(seed)
    lows = np.concatenate([-rng.exponential(2.0, 200), [0.0, -1.0, -1e-7, -3e-6, 0.0]])
    highs = np.concatenate([rng.exponential(2.0, 200), [1.0, 1.0, 2e-7, 0.0, 0.0]])
    got_s, got_z, want_s, want_z = [], [], [], []
    lows, highs = lows.astype(np.float32), highs.astype(np.float32)
    for reduce_range in (False, True):
        for lo, hi in zip(lows, highs, strict=True):
            x = torch.tensor([lo, hi], dtype=torch.float32)
            with _quiet():
                q = torch.quantize_per_tensor_dynamic(x, torch.quint8, reduce_range)
            want_s.append(np.float32(q.q_scale()))
            want_z.append(q.q_zero_point())
        fn = jax.jit(functools.partial(Q.choose_qparams_dynamic, reduce_range=reduce_range))
        s, z = fn(lows, highs)  # elementwise over the 205 ranges
        got_s.extend(np.asarray(s))
        got_z.extend(np.asarray(z))
    return [
        exact_check("scale", np.array(got_s), np.array(want_s)),
        exact_check("zero_point", np.array(got_z), np.array(want_z)),
    ]


def _weight(rng, n_out: int, n_in: int, scheme: str, small_pairs: bool = False) -> torch.Tensor:
    """A qint8 weight from the reference observer for ``scheme``; with ``small_pairs`` the input
    features of every other K pair are 10× smaller (those pairs cannot saturate)."""
    qscheme, per_channel = SCHEMES[scheme]
    w = torch.from_numpy(rng.standard_normal((n_out, n_in)).astype(np.float32) * 0.1)
    if small_pairs:
        w = w * torch.from_numpy(
            np.where(np.arange(n_in) // 2 % 2 == 1, 0.1, 1.0).astype(np.float32)
        )
    if scheme == "per_tensor_affine":
        w = w + 0.03  # a non-zero weight zero point
    ob = (
        obs.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=qscheme)
        if per_channel
        else obs.MinMaxObserver(dtype=torch.qint8, qscheme=qscheme)
    )
    with _quiet():
        ob(w)
        s, z = ob.calculate_qparams()
        if per_channel:
            return torch.quantize_per_channel(w, s.double(), z, 0, torch.qint8)
        return torch.quantize_per_tensor(w, float(s), int(z), torch.qint8)


def _act_qparams(x: np.ndarray, reduce_range: bool) -> tuple[float, int]:
    ob = obs.MinMaxObserver(dtype=torch.quint8, reduce_range=reduce_range)
    with _quiet():
        ob(torch.from_numpy(x))
        s, z = ob.calculate_qparams()
    return float(s), int(z)


def _torch_static(
    engine, scheme, bias, reduce_range, seed, shape, relu=False, batch=None, small_pairs=False
):
    """The torch module (weight packed under ``engine``), its uint8 input and its output ``int_repr``."""
    m, k, n = shape
    rng = np.random.default_rng(seed)
    torch.backends.quantized.engine = engine  # the engine packs the weight: set it first
    try:
        qw = _weight(rng, n, k, scheme, small_pairs)
        b = torch.from_numpy(rng.standard_normal(n).astype(np.float32)) if bias else None
        x = (rng.standard_normal((m, k)) + 0.3).astype(np.float32)
        x_s, x_zp = _act_qparams(x, reduce_range)
        with _quiet():
            xq = torch.quantize_per_tensor(torch.from_numpy(x), x_s, x_zp, torch.quint8)
            y_float = torch.nn.functional.linear(xq.dequantize(), qw.dequantize(), b)
        y_s, y_zp = _act_qparams(y_float.numpy(), False)
        ref = nniq.LinearReLU(k, n, bias=bias) if relu else nnq.Linear(k, n, bias_=bias)
        ref.set_weight_bias(qw, b)
        ref.scale, ref.zero_point = y_s, y_zp
        if batch is not None:
            xq = xq.reshape(*batch, k)
        with _quiet():
            want = ref(xq).int_repr().numpy()
    finally:
        torch.backends.quantized.engine = "x86"
    return ref, xq.int_repr().numpy(), x_s, x_zp, want


def _torch_dynamic(engine, scheme, bias, reduce_range, seed, shape):
    """The torch dynamic module, its float input and ``linear_dynamic``'s output."""
    m, k, n = shape
    rng = np.random.default_rng(seed)
    torch.backends.quantized.engine = engine
    try:
        qw = _weight(rng, n, k, scheme)
        b = torch.from_numpy(rng.standard_normal(n).astype(np.float32)) if bias else None
        ref = nnqd.Linear(k, n, bias_=bias)
        ref.set_weight_bias(qw, b)
        x = (rng.standard_normal((m, k)) + 0.3).astype(np.float32)
        with _quiet():
            packed = ref._packed_params._packed_params
            want = torch.ops.quantized.linear_dynamic(torch.from_numpy(x), packed, reduce_range)
    finally:
        torch.backends.quantized.engine = "x86"
    return ref, x, want.numpy()


def saturation_probe() -> int:
    """torch x86 on x = 255, w = 127, K = 64, output scale 1e4: 207 exact, 105 if pairs saturate."""
    k = 64
    with _quiet():
        x = torch.quantize_per_tensor(torch.full((1, k), 255.0), 1.0, 0, torch.quint8)
        w = torch.quantize_per_tensor(torch.full((1, k), 127.0), 1.0, 0, torch.qint8)
        ref = nnq.Linear(k, 1, bias_=False)
        ref.set_weight_bias(w, None)
        ref.scale, ref.zero_point = 1e4, 0
        return int(ref(x).int_repr().item())


@functools.cache
def torch_fbgemm_saturates() -> bool:
    """Whether torch's FBGEMM sums pairs in saturating int16 in this process (CPUs without AVX-512
    VNNI, or ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2``): torch's own answer to :func:`saturation_probe`.

    The ``int16_saturation`` argument that gives torch's numbers here. jaxlinear never asks.
    """
    probe = saturation_probe()
    if probe not in (105, 207):
        raise RuntimeError(f"the FBGEMM saturation probe must give 105 or 207, got {probe}.")
    return probe == 105


# Full-range x86 configurations also run against torch forced onto FBGEMM's saturating AVX2 kernels
# (FBGEMM_ENABLE_INSTRUCTIONS=AVX2, in a subprocess), so the int16 emulation is checked on any host.
STATIC_SHAPE, DYNAMIC_SHAPE = (128, 256, 100), (64, 256, 100)
AVX2_STATIC = [
    (scheme, bias, relu, False)
    for scheme in ("per_tensor_sym", "per_channel_sym", "per_tensor_affine")
    for bias in (True, False)
    for relu in (False,)
] + [("per_channel_sym", True, True, False), ("per_tensor_sym", True, False, True)]
AVX2_DYNAMIC = [(s, b) for s in ("per_tensor_sym", "per_channel_sym") for b in (True, False)]


def avx2_main(path: str) -> None:
    """Run in the subprocess: every AVX2 reference output, plus the saturation probe."""
    out = {"probe": np.array(saturation_probe())}
    for i, (scheme, bias, relu, small_pairs) in enumerate(AVX2_STATIC):
        *_, want = _torch_static(
            "x86", scheme, bias, False, 300 + i, STATIC_SHAPE, relu, small_pairs=small_pairs
        )
        out[f"static{i}"] = want
    for i, (scheme, bias) in enumerate(AVX2_DYNAMIC):
        *_, want = _torch_dynamic("x86", scheme, bias, False, 400 + i, DYNAMIC_SHAPE)
        out[f"dynamic{i}"] = want
    np.savez(path, **out)


@functools.cache
def _avx2_outputs() -> dict[str, np.ndarray]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "JAX_PLATFORMS": "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "avx2.npz")
        code = f"from parity.cases.torch_quantized import avx2_main; avx2_main({path!r})"
        subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=root, env=env, check=True)
        with np.load(path) as data:
            return dict(data)


def _jax_static(ref, xq, x_s, x_zp, engine, scheme, bias, relu, saturation, state_dict=None):
    n = ref.weight().shape[0]
    layer = jl.QuantizedLinear(
        n,
        use_bias=bias,
        per_channel=SCHEMES[scheme][1],
        engine=engine,
        relu=relu,
        int16_saturation=saturation,
    )
    variables = jl.interop.from_torch(layer, ref.state_dict() if state_dict is None else state_dict)
    x_q = Q.QTensor(jnp.asarray(xq), jnp.float32(x_s), jnp.int32(x_zp))
    return np.asarray(jax.jit(layer.apply)(variables, x_q).values)


def _static_case(
    engine: str,
    scheme: str,
    bias: bool,
    reduce_range: bool,
    seed: int,
    shape=STATIC_SHAPE,
    relu: bool = False,
    batch: tuple[int, ...] | None = None,
    via_file: bool = False,
) -> list[Check]:
    """torch on this host vs jaxlinear with the ``int16_saturation`` matching torch here; with
    ``reduce_range`` activations (nothing can saturate) both settings must give torch's numbers."""
    ref, xq, x_s, x_zp, want = _torch_static(
        engine, scheme, bias, reduce_range, seed, shape, relu, batch
    )
    state_dict = None
    if via_file:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "qlinear.pt")
            torch.save(ref.state_dict(), path)
            state_dict = load_torch_file(path)
    settings = _settings(engine, reduce_range)
    return [
        exact_check(
            f"int_repr int16_saturation={sat}",
            _jax_static(ref, xq, x_s, x_zp, engine, scheme, bias, relu, sat, state_dict),
            want,
        )
        for sat in settings
    ]


def _settings(engine: str, reduce_range: bool) -> tuple[bool, ...]:
    """The ``int16_saturation`` values that must reproduce torch on this host."""
    if engine == "qnnpack":
        return (False,)
    if reduce_range:
        return (False, True)
    return (torch_fbgemm_saturates(),)


def _static_avx2_case(i: int) -> list[Check]:
    """torch forced onto FBGEMM's AVX2 kernels (pairwise int16 saturation) vs ``int16_saturation=True``."""
    scheme, bias, relu, small_pairs = AVX2_STATIC[i]
    outputs = _avx2_outputs()
    ref, xq, x_s, x_zp, host_want = _torch_static(
        "x86", scheme, bias, False, 300 + i, STATIC_SHAPE, relu, small_pairs=small_pairs
    )
    got = _jax_static(ref, xq, x_s, x_zp, "x86", scheme, bias, relu, True)
    differs = int(np.sum(outputs[f"static{i}"] != host_want))
    return [
        exact_check("probe saturates", outputs["probe"], np.array(105)),
        exact_check(f"int_repr (AVX2 != host on {differs})", got, outputs[f"static{i}"]),
    ]


def _dynamic_case(
    engine: str, scheme: str, bias: bool, reduce_range: bool, seed: int, shape=DYNAMIC_SHAPE
) -> list[Check]:
    ref, x, want = _torch_dynamic(engine, scheme, bias, reduce_range, seed, shape)
    return [
        exact_check(
            f"output int16_saturation={sat}",
            _jax_dynamic(ref, x, engine, scheme, bias, reduce_range, sat),
            want,
        )
        for sat in _settings(engine, reduce_range)
    ]


def _jax_dynamic(ref, x, engine, scheme, bias, reduce_range, saturation):
    n = ref.weight().shape[0]
    layer = jl.DynamicQuantizedLinear(
        n,
        use_bias=bias,
        per_channel=SCHEMES[scheme][1],
        engine=engine,
        reduce_range=reduce_range,
        int16_saturation=saturation,
    )
    variables = jl.interop.from_torch(layer, ref.state_dict())
    return np.asarray(jax.jit(layer.apply)(variables, x))


def _dynamic_avx2_case(i: int) -> list[Check]:
    scheme, bias = AVX2_DYNAMIC[i]
    outputs = _avx2_outputs()
    ref, x, host_want = _torch_dynamic("x86", scheme, bias, False, 400 + i, DYNAMIC_SHAPE)
    got = _jax_dynamic(ref, x, "x86", scheme, bias, False, True)
    differs = int(np.sum(outputs[f"dynamic{i}"] != host_want))
    return [exact_check(f"output (AVX2 != host on {differs})", got, outputs[f"dynamic{i}"])]


def _dynamic_module_case() -> list[Check]:
    """The module's own forward (``reduce_range=True``), 3-D input."""
    rng = np.random.default_rng(7)
    ref = nnqd.Linear(48, 20)
    with _quiet():
        bias = torch.from_numpy(rng.standard_normal(20).astype(np.float32))
        ref.set_weight_bias(_weight(rng, 20, 48, "per_channel_sym"), bias)
        x = rng.standard_normal((3, 5, 48)).astype(np.float32)
        want = ref(torch.from_numpy(x)).numpy()
    layer = jl.DynamicQuantizedLinear(20, per_channel=True)
    got = np.asarray(layer.apply(jl.interop.from_torch(layer, ref.state_dict()), x))
    bad = int(np.sum(got != want))
    return [Check(f"output {bad}/{want.size} mismatches", got, want)]


def _nonfinite_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """(5, 20) inputs (96 elements in 8-float blocks, a tail of 4) with NaN/inf where FBGEMM's
    ``FindMinMax`` treats them differently, and extremes in the lanes a NaN restarts."""
    base = rng.standard_normal((5, 20)).astype(np.float32)

    def with_values(**positions):
        x = base.copy()
        for flat, value in positions.values():
            x.flat[flat] = value
        return x

    nan, inf = np.float32(np.nan), np.float32(np.inf)
    return {
        "finite": base,
        "NaN first": with_values(a=(0, nan)),
        "NaN mid lane 5 after its extreme": with_values(a=(5, -7.0), b=(13, 8.0), c=(21, nan)),
        "NaN in the last block": with_values(a=(3, 9.0), b=(91, nan)),
        "NaN in the tail": with_values(a=(98, nan)),
        "NaNs in two lanes": with_values(a=(1, -6.0), b=(17, nan), c=(2, 6.5), d=(42, nan)),
        "+inf": with_values(a=(17, inf)),
        "-inf": with_values(a=(50, -inf)),
        "NaN and -inf": with_values(a=(30, nan), b=(60, -inf)),
    }


def _dynamic_nonfinite_case(engine: str) -> list[Check]:
    """NaN/inf in a batch: the qparams are per tensor, so torch's answer depends on where they are
    (x86: ``FindMinMax``). Where torch raises (x86: a NaN first; qnnpack: any NaN or inf), jaxlinear
    returns NaN everywhere (it cannot raise under ``jit``)."""
    rng = np.random.default_rng(31)
    ref, _, _ = _torch_dynamic(engine, "per_channel_sym", True, True, 30, (5, 20, 7))
    # a NaN element is quantized to 255 even with reduce_range: its pairs can saturate on AVX2 hosts
    saturation = engine == "x86" and torch_fbgemm_saturates()
    layer = jl.DynamicQuantizedLinear(
        7, per_channel=True, engine=engine, int16_saturation=saturation
    )
    variables = jl.interop.from_torch(layer, ref.state_dict())
    apply = jax.jit(layer.apply)
    checks = []
    torch.backends.quantized.engine = engine
    try:
        for name, x in _nonfinite_inputs(rng).items():
            try:
                with _quiet():
                    want = ref(torch.from_numpy(x)).numpy()
                raised = ""
            except RuntimeError:
                want, raised = np.full((5, 7), np.nan, np.float32), " (torch raises)"
            got = np.asarray(apply(variables, x))
            same = (got == want) | (np.isnan(got) & np.isnan(want))
            bad = int(np.sum(~same))
            checks.append(
                Check(
                    f"{name}{raised} {bad}/{want.size} mismatches",
                    finite_code(got),
                    finite_code(want),
                    EXACT,
                )
            )
    finally:
        torch.backends.quantized.engine = "x86"
    return checks


def _register_all() -> None:
    def add(reference, name, fn, tol=EXACT):
        register(Case(GROUP, reference, name, tol, fn))

    for dtype, zps in (("uint8", (0, 1, 128, 255)), ("int8", (0, -7, 5))):
        for i, zp in enumerate(zps):
            add(
                "torch.quantize_per_tensor",
                f"quantize {dtype} zp={zp}",
                functools.partial(_quantize_case, dtype, zp, 0.0371 * (i + 1), i),
            )
    add("torch.quantize_per_tensor", "qint8 saturation (torch wraps)", _qint8_wrap_case)
    for dtype in ("int8", "uint8"):
        for axis in (0, 1):
            add(
                "torch.quantize_per_channel",
                f"quantize {dtype} axis={axis}",
                functools.partial(_per_channel_case, dtype, axis, axis + 3),
            )
    for scheme in SCHEMES:
        for dtype in ("uint8", "int8"):
            for reduce_range in (False, True):
                if "sym" in scheme and dtype == "uint8" and reduce_range:
                    continue  # torch raises NotImplementedError (tested in tests/)
                add(
                    "torch.ao.quantization.MinMaxObserver",
                    f"observer {scheme} {dtype} reduce_range={reduce_range}",
                    functools.partial(_observer_case, dtype, scheme, reduce_range, 11),
                )
    for scheme in ("per_tensor_affine", "per_tensor_sym", "per_channel_affine"):
        for dtype in ("uint8", "int8"):
            add(
                "torch.ao.quantization.MinMaxObserver",
                f"observer {scheme} {dtype} NaN/inf observed",
                functools.partial(_observer_nonfinite_case, dtype, scheme),
            )
    add(
        "ChooseQuantizationParams",
        "dynamic qparams (410 ranges)",
        functools.partial(_dynamic_qparams_case, 5),
    )
    seed = 100
    for engine in ("x86", "qnnpack"):
        for scheme in ("per_tensor_sym", "per_channel_sym", "per_tensor_affine"):
            for bias in (True, False):
                for reduce_range in (True, False):
                    seed += 1
                    add(
                        "torch.ao.nn.quantized.Linear",
                        f"static {engine} {scheme} bias={bias} reduce_range={reduce_range}",
                        functools.partial(_static_case, engine, scheme, bias, reduce_range, seed),
                    )
    add(
        "torch.ao.nn.quantized.Linear",
        "static x86 3-D input, odd K, torch.save file",
        functools.partial(
            _static_case,
            "x86",
            "per_channel_sym",
            True,
            False,
            7,
            (24, 33, 10),
            False,
            (2, 12),
            True,
        ),
    )
    add(
        "torch.ao.nn.quantized.Linear",
        "static x86 zero batch",
        functools.partial(_static_case, "x86", "per_tensor_sym", True, True, 8, (0, 16, 5)),
    )
    for engine in ("x86", "qnnpack"):
        add(
            "torch.ao.nn.intrinsic.quantized.LinearReLU",
            f"static {engine} LinearReLU full range",
            functools.partial(_static_case, engine, "per_channel_sym", True, False, 9, relu=True),
        )
    for engine in ("x86", "qnnpack"):
        for scheme in ("per_tensor_sym", "per_channel_sym"):
            for bias in (True, False):
                for reduce_range in (True, False):
                    seed += 1
                    add(
                        "torch.ao.nn.quantized.dynamic.Linear",
                        f"dynamic {engine} {scheme} bias={bias} reduce_range={reduce_range}",
                        functools.partial(_dynamic_case, engine, scheme, bias, reduce_range, seed),
                    )
    add("torch.ao.nn.quantized.dynamic.Linear", "dynamic module forward 3-D", _dynamic_module_case)
    for engine in ("x86", "qnnpack"):
        add(
            "torch.ao.nn.quantized.dynamic.Linear",
            f"dynamic {engine} NaN/inf in the batch",
            functools.partial(_dynamic_nonfinite_case, engine),
        )
    for i, (scheme, bias, relu, small_pairs) in enumerate(AVX2_STATIC):
        reference = (
            "torch.ao.nn.intrinsic.quantized.LinearReLU" if relu else "torch.ao.nn.quantized.Linear"
        )
        add(
            reference,
            f"static x86 AVX2 int16 saturation {scheme} bias={bias}"
            + (" relu" if relu else "")
            + (" half the K pairs cannot saturate" if small_pairs else ""),
            functools.partial(_static_avx2_case, i),
        )
    for i, (scheme, bias) in enumerate(AVX2_DYNAMIC):
        add(
            "torch.ao.nn.quantized.dynamic.Linear",
            f"dynamic x86 AVX2 int16 saturation {scheme} bias={bias}",
            functools.partial(_dynamic_avx2_case, i),
        )


_register_all()


def _fake_quant_case(per_channel: bool) -> list[Check]:
    """``torch.fake_quantize_per_{tensor,channel}_affine``: values and the masked (STE) gradient."""
    rng = np.random.default_rng(21)
    x = rng.standard_normal((6, 40)).astype(np.float32) * 3
    g = rng.standard_normal((6, 40)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    if per_channel:
        scales = rng.uniform(0.01, 0.05, 40).astype(np.float32)
        zps = rng.integers(-20, 20, 40).astype(np.int32)
        y = torch.fake_quantize_per_channel_affine(
            xt, torch.from_numpy(scales), torch.from_numpy(zps), 1, -128, 127
        )
        fn = lambda v: Q.fake_quantize_per_channel(v, scales, zps, 1, -128, 127)  # noqa: E731
    else:
        y = torch.fake_quantize_per_tensor_affine(xt, 0.02, 100, 0, 255)
        fn = lambda v: Q.fake_quantize(v, 0.02, 100, 0, 255)  # noqa: E731
    y.backward(torch.from_numpy(g))
    got, vjp = jax.vjp(jax.jit(fn), jnp.asarray(x))
    return [
        exact_check("output", got, y.detach().numpy()),
        exact_check("grad x", vjp(jnp.asarray(g))[0], xt.grad.numpy()),
    ]


class _TorchChain(torch.nn.Module):
    """QuantStub -> Linear -> DeQuantStub per layer, ReLU in float: torch's eager-mode static
    quantization of every Linear, as ``jl.quantization.quantize(mode="static")`` runs it."""

    def __init__(self, sizes):
        super().__init__()
        pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
        self.fcs = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in pairs)
        self.quants = torch.nn.ModuleList(torch.ao.quantization.QuantStub() for _ in pairs)
        self.dequants = torch.nn.ModuleList(torch.ao.quantization.DeQuantStub() for _ in pairs)

    def forward(self, x):
        for i, (fc, q, dq) in enumerate(zip(self.fcs, self.quants, self.dequants, strict=True)):
            x = dq(fc(q(x)))
            x = torch.relu(x) if i < len(self.fcs) - 1 else x
        return x


def _float_twin(sizes):
    import flax.linen as nn

    layers = []
    for b in sizes[1:]:
        layers += [jl.Linear(b), nn.relu]
    return nn.Sequential(layers[:-1])


def _minmax_default_qconfig(engine: str):
    """``get_default_qconfig(engine)`` with its ``HistogramObserver`` replaced by a ``MinMaxObserver``
    of the same ``reduce_range`` (jaxlinear's activation observer); the weight observer is torch's."""
    from torch.ao.quantization import QConfig, get_default_qconfig

    default = get_default_qconfig(engine)
    reduce_range = default.activation.p.keywords.get("reduce_range", False)
    return QConfig(
        activation=obs.MinMaxObserver.with_args(reduce_range=reduce_range), weight=default.weight
    )


def _torch_ptq(ref, qconfig, engine: str, batches, x: np.ndarray):
    """torch's eager post-training static quantization of ``ref`` with ``qconfig`` under ``engine``:
    prepare, calibrate on ``batches``, convert; ``(quantized module, its output on x)``."""
    from torch.ao.quantization import convert, prepare

    setattr(ref, "qconfig", qconfig)  # noqa: B010 (not a Module/Tensor)
    torch.backends.quantized.engine = engine
    try:
        with _quiet():
            prepared = prepare(ref)
            for b in batches:
                prepared(torch.from_numpy(b))
            quantized = convert(prepared)
            return quantized, quantized(torch.from_numpy(x)).numpy()
    finally:
        torch.backends.quantized.engine = "x86"


class _Twice(nn.Module):
    """One ``jl.Linear`` called twice (the twin of ``_TorchTwice``)."""

    @nn.compact
    def __call__(self, x):
        fc = jl.Linear(12, name="fc")
        return fc(nn.relu(fc(x)))


def _ptq_case(engine: str, per_channel: bool | None) -> list[Check]:
    """Post-training static quantization of a 3-layer MLP: torch's prepare/calibrate/convert (min/max
    activation observers with the engine's ``reduce_range``, symmetric int8 weights) vs
    ``jl.quantization.quantize(mode="static")`` on the same float weights: exact. ``per_channel=None``:
    both sides at their defaults (torch: ``get_default_qconfig(engine)``'s weight observer)."""
    from torch.ao.quantization import QConfig

    sizes = (16, 24, 20, 12)
    torch.manual_seed(0)
    ref = _TorchChain(sizes).eval()
    model = _float_twin(sizes)
    variables = jl.interop.from_torch(model, {k: v for k, v in ref.state_dict().items()
                                              if k.startswith("fcs.")})  # fmt: skip
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((32, 16)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((20, 16)).astype(np.float32) * 1.2
    weight = obs.default_per_channel_weight_observer if per_channel else obs.default_weight_observer
    qconfig = (
        _minmax_default_qconfig(engine)
        if per_channel is None
        else QConfig(
            activation=obs.MinMaxObserver.with_args(reduce_range=engine != "qnnpack"), weight=weight
        )
    )
    quantized, want = _torch_ptq(ref, qconfig, engine, batches, x)
    qweights = [fc.weight().int_repr().numpy() for fc in quantized.fcs]
    qmodel, qv = Q.quantize(
        model,
        variables,
        mode="static",
        calibration=batches,
        engine=engine,
        per_channel=per_channel,
        activation_observer="minmax",
    )
    got = jax.jit(qmodel.apply)(qv, x)
    checks = [exact_check("dequantized output", got, want)]
    for i, w in enumerate(qweights):
        checks.append(
            exact_check(f"int8 weight {i}", qv["params"][f"layers_{2 * i}"]["kernel"].T, w)
        )
    return checks


def _dynamic_model_case(engine: str, per_channel: bool | None) -> list[Check]:
    """``torch.ao.quantization.quantize_dynamic`` of an MLP (default / per-channel dynamic qconfig)
    vs ``jl.quantization.quantize(mode="dynamic")`` on the same float weights: exact.
    ``per_channel=None``: both at their defaults, ``quantize_dynamic(m, {nn.Linear}, dtype=qint8)``."""
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    sizes = (16, 32, 24, 10)
    torch.manual_seed(1)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    ref = torch.nn.Sequential(*layers[:-1]).eval()
    model = _float_twin(sizes)
    variables = jl.interop.from_torch(model, ref)
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    x = np.random.default_rng(1).standard_normal((9, 16)).astype(np.float32)
    torch.backends.quantized.engine = engine
    try:
        with _quiet():
            quantized = (
                quantize_dynamic(ref, {torch.nn.Linear}, dtype=torch.qint8)
                if per_channel is None
                else quantize_dynamic(ref, {torch.nn.Linear: qconfig}, dtype=torch.qint8)
            )
            want = quantized(torch.from_numpy(x)).numpy()
            qweights = [m.weight().int_repr().numpy() for m in quantized if hasattr(m, "weight")]
    finally:
        torch.backends.quantized.engine = "x86"
    qmodel, qv = Q.quantize(
        model, variables, mode="dynamic", engine=engine, per_channel=per_channel
    )
    loaded = jl.interop.from_torch(qmodel, quantized)  # torch's packed int8 weights, read directly
    same = jax.tree.leaves(jax.tree.map(np.array_equal, loaded["params"], qv["params"]))
    checks = [
        exact_check("output", jax.jit(qmodel.apply)(qv, x), want),
        exact_check(
            "from_torch(qmodel, quantized) == quantize", np.array(all(same)), np.array(True)
        ),
    ]
    for i, w in enumerate(qweights):
        checks.append(
            exact_check(f"int8 weight {i}", qv["params"][f"layers_{2 * i}"]["kernel"].T, w)
        )
    return checks


class _TorchTwice(torch.nn.Module):
    """One Linear called twice (QuantStub -> fc -> DeQuantStub, ReLU, and again): its observers see
    both calls, so one set of qparams covers both."""

    def __init__(self, n: int):
        super().__init__()
        self.fc = torch.nn.Linear(n, n)
        self.quant = torch.ao.quantization.QuantStub()
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        x = torch.relu(self.dequant(self.fc(self.quant(x))))
        return self.dequant(self.fc(self.quant(x)))


def _twice_case(engine: str) -> list[Check]:
    """Static quantization of a layer used twice vs torch eager prepare/convert (the engine's default
    qconfig, MinMax activations): the second call's activations are far larger than the first's, so
    observing only the first call would clip them."""
    torch.manual_seed(3)
    ref = _TorchTwice(12).eval()
    with torch.no_grad():
        ref.fc.weight.mul_(4.0)  # the second call sees ~4x larger inputs and outputs
    model = _Twice()
    variables = jl.interop.from_torch(model, {k: v for k, v in ref.state_dict().items()
                                              if k.startswith("fc.")})  # fmt: skip
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((16, 12)).astype(np.float32) for _ in range(2)]
    x = rng.standard_normal((10, 12)).astype(np.float32)
    quantized, want = _torch_ptq(ref, _minmax_default_qconfig(engine), engine, batches, x)
    in_zp = int(quantized.quant.zero_point)
    out_zp = int(quantized.fc.zero_point)
    qmodel, qv = Q.quantize(
        model,
        variables,
        mode="static",
        calibration=batches,
        engine=engine,
        activation_observer="minmax",
    )
    p = qv["params"]["fc"]
    return [
        exact_check("dequantized output", jax.jit(qmodel.apply)(qv, x), want),
        # the zero points are integers (the scales come from a float matmul's max: an ulp apart)
        exact_check("input zero point (both calls observed)", p["in_zero_point"], np.int32(in_zp)),
        exact_check(
            "output zero point (both calls observed)", p["out_zero_point"], np.int32(out_zp)
        ),
    ]


def _register_more() -> None:
    for engine in ("x86", "qnnpack"):
        register(
            Case(
                GROUP,
                "torch.ao.quantization.convert",
                f"PTQ static, one Linear called twice {engine} (quantize)",
                EXACT,
                functools.partial(_twice_case, engine),
            )
        )
    register(
        Case(
            GROUP,
            "torch.fake_quantize_per_tensor_affine",
            "fake quantize per tensor",
            EXACT,
            functools.partial(_fake_quant_case, False),
        )
    )
    register(
        Case(
            GROUP,
            "torch.fake_quantize_per_channel_affine",
            "fake quantize per channel",
            EXACT,
            functools.partial(_fake_quant_case, True),
        )
    )
    for engine in ("x86", "qnnpack"):
        for per_channel in (True, False, None):
            register(
                Case(
                    GROUP,
                    "torch.ao.quantization.convert",
                    f"PTQ static MLP {engine} per_channel={per_channel} (quantize)"
                    if per_channel is not None
                    else f"PTQ static MLP {engine} get_default_qconfig weights, MinMax "
                    "activations (quantize activation_observer='minmax')",
                    EXACT,
                    functools.partial(_ptq_case, engine, per_channel),
                )
            )
            register(
                Case(
                    GROUP,
                    "torch.ao.quantization.quantize_dynamic",
                    f"dynamic MLP {engine} per_channel={per_channel} (quantize)"
                    if per_channel is not None
                    else f"dynamic MLP {engine} defaults: quantize_dynamic(m, {{Linear}}, qint8) "
                    "(quantize)",
                    EXACT,
                    functools.partial(_dynamic_model_case, engine, per_channel),
                )
            )


_register_more()


# ------------------------------------------------------------------------------------------ histogram
def _histogram_batches(dist: str) -> list[np.ndarray]:
    rng = np.random.default_rng(sum(map(ord, dist)))
    data = {
        "normal": [rng.standard_normal(4000)],
        "heavy-tailed (Cauchy)": [rng.standard_cauchy(4000)],
        "after ReLU (all >= 0)": [np.maximum(rng.standard_normal((64, 40)), 0)],
        "constant": [np.full(200, 0.7)],
        "4 calls of growing/shifting ranges (re-binning)": [
            rng.standard_normal(1000),
            3 * rng.standard_normal(1000),
            0.5 * rng.standard_normal(1000) + 2,
            rng.uniform(-10, 1, 700),
        ],
    }[dist]
    return [np.asarray(b, np.float32) for b in data]


def _histogram_observer_case(engine: str, dist: str, dtype: str = "uint8") -> list[Check]:
    """``get_default_qconfig(engine).activation()`` (a ``HistogramObserver``; for ``dtype="int8"``
    one of qint8) vs ``jl.quantization.HistogramObserver`` on the same batches: the running histogram,
    the searched range and the qparams, bit for bit."""
    from torch.ao.quantization import get_default_qconfig

    factory = get_default_qconfig(engine).activation
    with _quiet():  # torch warns that reduce_range will be deprecated
        ref = factory() if dtype == "uint8" else factory.with_args(dtype=torch.qint8)()
    if not isinstance(ref, obs.HistogramObserver):
        raise AssertionError(f"{engine}'s default activation observer is {type(ref).__name__}")
    mine = Q.HistogramObserver(dtype=jnp.dtype(dtype), reduce_range=bool(ref.reduce_range))
    for b in _histogram_batches(dist):
        with _quiet():
            ref(torch.from_numpy(b))
        mine.update(b)
    with _quiet():
        want_range = [t.item() for t in ref._non_linear_param_search()]
        want_s, want_zp = ref.calculate_qparams()
    s, zp = mine.qparams()
    return [
        exact_check("histogram", mine.histogram, ref.histogram.numpy()),
        exact_check(
            "searched (min, max)", np.array(mine.min_max()), np.array(want_range, np.float32)
        ),
        exact_check("scale", np.asarray(s), np.float32(want_s.item())),
        exact_check("zero point", np.asarray(zp), np.int32(want_zp.item())),
    ]


def _dyadic(a, step: float):
    """``a`` rounded to multiples of ``step`` (a power of two): products and sums of such values are
    exact in float32, so torch's and XLA's float matmuls give identical activations to observe."""
    return np.round(np.asarray(a) / step) * step


def _ptq_histogram_case(engine: str, twice: bool) -> list[Check]:
    """torch's REAL default static quantization: eager prepare/calibrate/convert with
    ``get_default_qconfig(engine)`` (``HistogramObserver`` activations, no observer swapped) vs
    ``jl.quantization.quantize(mode="static")`` at its defaults. Weights, biases and inputs are dyadic
    rationals, so both float models compute bit-identical activations and the checks isolate the
    observers: every layer's input and output scale and zero point, the int8 weights and the
    dequantized output, bit for bit. ``twice``: one Linear called twice (its observers see both calls,
    the second ~4x larger)."""
    from torch.ao.quantization import get_default_qconfig

    rng = np.random.default_rng(11 if twice else 12)
    if twice:
        torch.manual_seed(3)
        ref, model, n_in = _TorchTwice(12).eval(), _Twice(), 12
        with torch.no_grad():
            ref.fc.weight.mul_(4.0)
    else:
        sizes = (16, 24, 20, 12)
        torch.manual_seed(0)
        ref, model, n_in = _TorchChain(sizes).eval(), _float_twin(sizes), sizes[0]
    with torch.no_grad():
        for t in ref.state_dict().values():
            t.copy_(torch.from_numpy(_dyadic(t.numpy(), 1 / 16)))
    variables = jl.interop.from_torch(model, {k: v for k, v in ref.state_dict().items()
                                              if k.startswith("fc")})  # fmt: skip
    batches = [
        _dyadic(rng.standard_normal((32, n_in)) * s, 1 / 8).astype(np.float32) for s in (1, 3, 0.5)
    ]
    x = _dyadic(rng.standard_normal((20, n_in)) * 1.2, 1 / 8).astype(np.float32)
    quantized, want = _torch_ptq(ref, get_default_qconfig(engine), engine, batches, x)
    if twice:
        layers = [(quantized.quant, quantized.fc)]
    else:
        layers = list(zip(quantized.quants, quantized.fcs, strict=True))
    want_qp = [
        (float(q.scale), int(q.zero_point), fc.scale, fc.zero_point, fc.weight().int_repr())
        for q, fc in layers
    ]
    qmodel, qv = Q.quantize(model, variables, mode="static", calibration=batches, engine=engine)
    checks = [exact_check("dequantized output", jax.jit(qmodel.apply)(qv, x), want)]
    names = ["fc"] if twice else [f"layers_{2 * i}" for i in range(len(want_qp))]
    for name, (in_s, in_zp, out_s, out_zp, w) in zip(names, want_qp, strict=True):
        p = qv["params"][name]
        checks += [
            exact_check(f"{name} input scale", p["in_scale"], np.float32(in_s)),
            exact_check(f"{name} input zero point", p["in_zero_point"], np.int32(in_zp)),
            exact_check(f"{name} output scale", p["out_scale"], np.float32(out_s)),
            exact_check(f"{name} output zero point", p["out_zero_point"], np.int32(out_zp)),
            exact_check(f"{name} int8 weight", p["kernel"].T, w.numpy()),
        ]
    return checks


def _register_histogram() -> None:
    for engine in ("x86", "qnnpack"):
        for dist in (
            "normal",
            "heavy-tailed (Cauchy)",
            "after ReLU (all >= 0)",
            "constant",
            "4 calls of growing/shifting ranges (re-binning)",
        ):
            register(
                Case(
                    GROUP,
                    "torch.ao.quantization.HistogramObserver",
                    f"default qconfig activation observer {engine}: {dist}",
                    EXACT,
                    functools.partial(_histogram_observer_case, engine, dist),
                )
            )
        for twice in (False, True):
            register(
                Case(
                    GROUP,
                    "torch.ao.quantization.convert",
                    f"PTQ static {engine} REAL defaults: get_default_qconfig, HistogramObserver "
                    + ("(one Linear called twice) " if twice else "MLP ")
                    + "(quantize)",
                    EXACT,
                    functools.partial(_ptq_histogram_case, engine, twice),
                )
            )
    register(
        Case(
            GROUP,
            "torch.ao.quantization.HistogramObserver",
            "qint8 HistogramObserver: 4 calls of growing/shifting ranges (re-binning)",
            EXACT,
            functools.partial(
                _histogram_observer_case,
                "qnnpack",
                "4 calls of growing/shifting ranges (re-binning)",
                "int8",
            ),
        )
    )


_register_histogram()
