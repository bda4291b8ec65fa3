"""``jl.quantization.HistogramObserver`` against torch's ``HistogramObserver``, bit for bit (histogram,
searched range, scale, zero point), its torch building blocks, and ``quantize(mode="static")``'s
default activation observer (the whole-model numbers against torch are parity cases:
``torch_quantized``)."""

import warnings
from fractions import Fraction
from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.ao.quantization.observer import HistogramObserver as TorchHistogramObserver

import jaxlinear as jl
from jaxlinear import quantization as Q
from jaxlinear.int8 import _histogram as H

# (dtype, reduce_range): x86/fbgemm's default qconfig, qnnpack/onednn's, and qint8
CONFIGS = [(np.uint8, True), (np.uint8, False), (np.int8, False)]
TORCH_DTYPE = {np.uint8: torch.quint8, np.int8: torch.qint8}


def _batches(name: str) -> list[np.ndarray]:
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    data = {
        "normal": [rng.standard_normal(4000)],
        "cauchy (heavy tails)": [rng.standard_cauchy(4000)],
        "relu (all >= 0)": [np.maximum(rng.standard_normal((64, 40)), 0)],
        "lognormal": [rng.lognormal(0, 2, 3000)],
        "constant": [np.full(100, 0.7)],
        "constant twice, then wider": [np.full(50, 0.7), np.full(9, 0.7), rng.standard_normal(300)],
        "4 calls, growing and shifting ranges (re-binning)": [
            rng.standard_normal(1000),
            3 * rng.standard_normal(1000),
            0.5 * rng.standard_normal(1000) + 2,
            rng.uniform(-10, 1, 700),
        ],
        "2 calls, same range": [np.array([-1.0, 1.0]), rng.uniform(-1, 1, 500)],
        "2 calls, heavy tails": [rng.standard_t(2, 3000), 2 * rng.standard_t(3, 3000)],
        "shifted far from 0": [rng.standard_normal(2000) + 100],
    }[name]
    return [np.asarray(b, np.float32) for b in data]


DISTRIBUTIONS = [
    "normal",
    "cauchy (heavy tails)",
    "relu (all >= 0)",
    "lognormal",
    "constant",
    "constant twice, then wider",
    "4 calls, growing and shifting ranges (re-binning)",
    "2 calls, same range",
    "2 calls, heavy tails",
    "shifted far from 0",
]


def _torch_observer(batches, dtype, reduce_range):
    ref = TorchHistogramObserver(dtype=TORCH_DTYPE[dtype], reduce_range=reduce_range)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in batches:
            ref(torch.from_numpy(b))
    return ref


@pytest.mark.parametrize("name", DISTRIBUTIONS)
@pytest.mark.parametrize(("dtype", "reduce_range"), CONFIGS)
def test_bit_exact_with_torch(name, dtype, reduce_range):
    batches = _batches(name)
    ref = _torch_observer(batches, dtype, reduce_range)
    obs = Q.HistogramObserver(dtype=dtype, reduce_range=reduce_range)
    for b in batches:
        obs.update(b)
    np.testing.assert_array_equal(obs.histogram, ref.histogram.numpy())
    assert (obs.min_val, obs.max_val) == (ref.min_val.item(), ref.max_val.item())
    want_lo, want_hi = ref._non_linear_param_search()
    lo, hi = obs.min_max()
    assert (float(lo), float(hi)) == (want_lo.item(), want_hi.item())
    want_s, want_zp = ref.calculate_qparams()
    s, zp = obs.qparams()
    assert np.float32(s) == np.float32(want_s.item())
    assert int(zp) == int(want_zp.item())


def test_bit_exact_with_torch_random_trials():
    """Random mixtures of distributions, sizes, scales and 1-3 calls: every searched range equal."""
    rng = np.random.default_rng(7)
    for _ in range(12):
        batches = []
        for _ in range(int(rng.integers(1, 4))):
            kind = int(rng.integers(0, 4))
            n = int(rng.integers(1, 6000))
            x = [rng.standard_normal, rng.standard_cauchy, rng.random, rng.standard_exponential][
                kind
            ](n)
            batches.append((x * 10 ** rng.uniform(-3, 3) + rng.normal()).astype(np.float32))
        rr = bool(rng.integers(0, 2))
        ref = _torch_observer(batches, np.uint8, rr)
        obs = Q.HistogramObserver(reduce_range=rr)
        for b in batches:
            obs.update(b)
        want = ref._non_linear_param_search()
        assert tuple(map(float, obs.min_max())) == (want[0].item(), want[1].item())


def test_linspace_histc_sum_are_torchs():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = np.sort(rng.standard_normal(2).astype(np.float32) * 10)
        for steps in (2049, 32769):
            want = torch.linspace(torch.tensor(a), torch.tensor(b), steps).numpy()
            np.testing.assert_array_equal(H.linspace(a, b, steps), want)
        x = (rng.standard_normal(3000) * 5).astype(np.float32)
        lo, hi = np.float32(x.min() - abs(a)), np.float32(x.max() + abs(b))
        want = torch.histc(torch.from_numpy(x), 2048, min=float(lo), max=float(hi)).numpy()
        np.testing.assert_array_equal(H.histc(x, 2048, lo, hi), want)
        v = (rng.standard_normal(2048) * 10 ** rng.uniform(-3, 3, 2048)).astype(np.float32)
        width = H.default_vector_width()
        assert H.torch_sum(v, width) == torch.from_numpy(v).sum().item()


def test_fma32_rounds_once():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 5000)).astype(np.float32)
    c = (rng.standard_normal(5000) * 10.0 ** rng.integers(-30, 3, 5000)).astype(np.float32)
    # a double-rounding trap: a*b exactly on a float32 tie, c far below it
    a[0], b[0], c[0] = np.float32(1 + 2**-23), np.float32(1 + 2**-1), np.float32(2**-60)
    got = H.fma32(a, b, c)
    for i in range(50):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        below = np.float32(float(exact))
        cands = [
            np.nextafter(below, np.float32(-np.inf)),
            below,
            np.nextafter(below, np.float32(np.inf)),
        ]
        best = min(
            cands, key=lambda v: (abs(Fraction(float(v)) - exact), int(v.view(np.int32)) & 1)
        )
        assert got[i] == best, i


def test_empty_inf_nan_and_bad_arguments():
    obs = Q.HistogramObserver()
    assert obs.update(np.zeros((0, 3))).histogram is None
    s, zp = obs.qparams()  # nothing observed: torch's defaults
    assert (float(s), int(zp)) == (1.0, 0)
    with pytest.raises(ValueError, match="at least one batch"):
        obs.min_max()
    obs.update([1.0, np.inf, -2.0])  # torch ignores infinities
    assert (obs.min_val, obs.max_val) == (-2.0, 1.0)
    with pytest.raises(ValueError, match="`x` must not hold NaN"):
        obs.update([np.nan])
    with pytest.raises(ValueError, match="`bins`"):
        Q.HistogramObserver(bins=0)
    with pytest.raises(ValueError, match="`vector_width`"):
        Q.HistogramObserver(vector_width=5)


# ------------------------------------------------------------------------------------------ quantize
def _apply(module: nn.Module, params, x) -> jax.Array:
    return cast(jax.Array, module.apply({"params": params}, x))


class Twice(nn.Module):
    """A jl.Linear called twice (the second call ~10x larger) and an NLinear of 2 members."""

    @nn.compact
    def __call__(self, x):
        fc = jl.Linear(6, name="fc")
        h = fc(10.0 * nn.relu(fc(x)))
        h = jnp.broadcast_to(h[..., None, :], (*h.shape[:-1], 2, h.shape[-1]))
        return jl.NLinear(2, 3, name="nl")(h * jnp.array([1.0, 5.0])[None, :, None])


@pytest.fixture(scope="module")
def twice():
    model, x = Twice(), jax.random.normal(jax.random.key(0), (32, 6))
    return model, model.init(jax.random.key(1), x), [x[:16], x[16:]]


@pytest.mark.parametrize("engine", ["x86", "qnnpack"])
def test_static_default_is_the_histogram_observer(twice, engine):
    """Default static activations = torch's default qconfig observer fed every call in order, per
    member (reduce_range for x86, full range for qnnpack)."""
    model, variables, batches = twice
    _, qv = Q.quantize(model, variables, mode="static", calibration=batches, engine=engine)
    p = variables["params"]
    rr = engine != "qnnpack"
    obs_in, obs_out = Q.HistogramObserver(reduce_range=rr), Q.HistogramObserver(reduce_range=rr)
    member = [[Q.HistogramObserver(reduce_range=rr) for _ in range(2)] for _ in range(2)]
    for x in batches:
        y1 = _apply(jl.Linear(6), p["fc"], x)
        h = 10.0 * jax.nn.relu(y1)
        y2 = _apply(jl.Linear(6), p["fc"], h)
        for a, c in ((x, y1), (h, y2)):
            obs_in.update(np.asarray(a))
            obs_out.update(np.asarray(c))
        hm = jnp.broadcast_to(y2[:, None, :], (16, 2, 6)) * jnp.array([1.0, 5.0])[None, :, None]
        ym = _apply(jl.NLinear(2, 3), p["nl"], hm)
        for m in range(2):
            member[0][m].update(np.asarray(hm[:, m]))
            member[1][m].update(np.asarray(ym[:, m]))
    got = qv["params"]
    for side, obs in (("in", obs_in), ("out", obs_out)):
        s, zp = obs.qparams()
        assert got["fc"][f"{side}_scale"] == s and got["fc"][f"{side}_zero_point"] == zp
    for i, side in enumerate(("in", "out")):
        want = [o.qparams() for o in member[i]]
        np.testing.assert_array_equal(got["nl"][f"{side}_scale"], [s for s, _ in want])
        np.testing.assert_array_equal(got["nl"][f"{side}_zero_point"], [zp for _, zp in want])


def test_static_minmax_option_and_validation(twice):
    model, variables, batches = twice
    hist = Q.quantize(model, variables, mode="static", calibration=batches)[1]["params"]["fc"]
    explicit = Q.quantize(
        model, variables, mode="static", calibration=batches, activation_observer="histogram"
    )[1]["params"]["fc"]
    mm = Q.quantize(
        model, variables, mode="static", calibration=batches, activation_observer="minmax"
    )[1]["params"]["fc"]
    assert hist["in_scale"] == explicit["in_scale"]
    fc = variables["params"]["fc"]
    ins = []
    for x in batches:
        ins += [x.ravel(), (10.0 * jax.nn.relu(_apply(jl.Linear(6), fc, x))).ravel()]
    ins = jnp.concatenate(ins)
    want = Q.choose_qparams(ins.min(), ins.max(), reduce_range=True)
    np.testing.assert_allclose(mm["in_scale"], want[0], rtol=1e-6)
    assert Q.ACTIVATION_OBSERVERS == ("histogram", "minmax")
    with pytest.raises(ValueError, match="`activation_observer`.*'histogram', 'minmax'"):
        Q.quantize(model, variables, mode="static", calibration=batches, activation_observer="l2")
    with pytest.raises(ValueError, match="`activation_observer` must be None for mode='dynamic'"):
        Q.quantize(model, variables, mode="dynamic", activation_observer="minmax")
