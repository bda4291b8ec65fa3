"""jl.scaling: scale_fwd/scale_bwd, constraints, linear/linear_readout (values, dtypes, errors, stats).

Parity with the torch reference is in parity/cases/unit_scaling.py; these are the properties of the
reference's own test suite (std of output and gradients ≈ 1 under the documented constraints) and
the contract details.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxlinear import scaling
from tests import _tail_bounds as tail_bounds

# ---------------------------------------------------------------------------------------------------
# scale_fwd / scale_bwd


def test_scale_fwd_scales_forward_only():
    x = jnp.arange(5.0)
    y, vjp = jax.vjp(lambda v: scaling.scale_fwd(v, 3.5), x)
    np.testing.assert_array_equal(y, x * 3.5)
    np.testing.assert_array_equal(vjp(x)[0], x)


def test_scale_bwd_scales_backward_only():
    x = jnp.arange(5.0)
    y, vjp = jax.vjp(lambda v: scaling.scale_bwd(v, 3.5), x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(vjp(x)[0], x * 3.5)


def test_bf16_forward_scale_is_not_rounded_backward_scale_is():
    s = 1 / math.sqrt(1000)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(4096), jnp.bfloat16)
    y = scaling.scale_fwd(x, s)
    want = (x.astype(jnp.float32) * np.float32(s)).astype(jnp.bfloat16)  # torch: fp32 opmath
    np.testing.assert_array_equal(np.asarray(y, np.float32), np.asarray(want, np.float32))
    assert (np.asarray(y) != np.asarray(x * jnp.bfloat16(s))).any()  # the naive product differs
    _, vjp = jax.vjp(lambda v: scaling.scale_bwd(v, s), x)
    (g,) = vjp(jnp.ones_like(x))
    assert g.dtype == jnp.bfloat16
    assert float(g[0]) == float(jnp.bfloat16(s)) == 0.03173828125  # rounded to bf16 first


def test_scales_keep_dtype_and_are_static():
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        x = jnp.ones(3, dtype)
        assert scaling.scale_fwd(x, 0.5).dtype == dtype
        assert jax.grad(lambda v: scaling.scale_bwd(v, 0.5).sum())(x).dtype == dtype
    with pytest.raises(TypeError, match="`scale` must be a real number"):
        scaling.scale_fwd(jnp.ones(3), jnp.float32(2.0))
    with pytest.raises(TypeError, match="`x` must be a floating array"):
        scaling.scale_bwd(jnp.ones(3, jnp.int32), 2.0)


def test_jit_keeps_every_bf16_rounding():
    """Under jit XLA may fuse the matmul output's rounding away; reduce_precision keeps it."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((6, 5, 37)), jnp.bfloat16)
    k = jnp.asarray(rng.standard_normal((37, 19)), jnp.bfloat16)
    b = jnp.asarray(rng.standard_normal(19), jnp.bfloat16)
    g = jnp.asarray(rng.standard_normal((6, 5, 19)), jnp.bfloat16)

    def f(x, k, b):
        y, vjp = jax.vjp(functools.partial(scaling.linear, constraint="gmean"), x, k, b)
        return y, vjp(g)

    eager, jitted = f(x, k, b), jax.jit(f)(x, k, b)
    for a, c in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(c, np.float32))


# ---------------------------------------------------------------------------------------------------
# constraints (the values of the reference's test_constraints.py)


def test_constraint_values():
    assert scaling.gmean(8.0, 2.0) == 4.0
    assert scaling.gmean(12.75, 55.0, 0.001) == pytest.approx(0.8884322)
    assert scaling.hmean(8.0, 2.0) == 3.2
    assert scaling.hmean(12.75, 55.0, 0.001) == pytest.approx(0.00299971)
    assert scaling.amean(8.0, 2.0) == 5.0
    assert scaling.amean(12.75, 55.0, 0.001) == pytest.approx(22.583667)
    assert scaling.to_output_scale(2.0, 3.0) == 2.0
    assert scaling.to_output_scale(2.0, 3.0, 4.0) == 2.0
    assert scaling.to_grad_input_scale(2.0, 3.0) == 3.0
    assert scaling.apply_constraint("gmean", 1.0, 4.0, 2.0) == (2.0, 2.0, 2.0)
    assert scaling.apply_constraint("hmean", 8.0, 2.0) == (3.2, 3.2)
    assert scaling.apply_constraint(None, 8.0, 2.0) == (8.0, 2.0)
    assert scaling.apply_constraint("", 8.0, 2.0) == (8.0, 2.0)


@pytest.mark.parametrize("name", ["invalid", "pow", "prod", "to_left_grad_scale", 3])
def test_unknown_constraint_is_rejected(name):
    # the reference's getattr lookup accepts "pow" (math.pow) silently; jaxlinear does not
    with pytest.raises(ValueError, match="`constraint` must be one of"):
        scaling.apply_constraint(name, 0.5, 0.25)
    with pytest.raises(ValueError, match="`constraint` must be one of"):
        scaling.linear(jnp.ones((2, 3)), jnp.ones((3, 4)), constraint=name)


@pytest.mark.parametrize(
    "constraint, readout, s_out, s_gin",
    [  # the table of unit_scaling.md §1.3/§1.5: fan_in 256, fan_out 64
        (None, False, 0.0625, 0.125),
        ("gmean", False, 0.08838834764831845, 0.08838834764831845),
        ("hmean", False, 1 / 12, 1 / 12),
        ("amean", False, 0.09375, 0.09375),
        ("to_output_scale", False, 0.0625, 0.0625),
        ("to_grad_input_scale", False, 0.125, 0.125),
        (None, True, 0.00390625, 0.125),
        ("gmean", True, 0.02209708691207961, 0.02209708691207961),
        ("hmean", True, 0.007575757575757576, 0.007575757575757576),
        ("amean", True, 0.064453125, 0.064453125),
        ("to_output_scale", True, 0.00390625, 0.00390625),
        ("to_grad_input_scale", True, 0.125, 0.125),
    ],
)
def test_linear_scales_table(constraint, readout, s_out, s_gin):
    power = (1.0, 0.5, 0.5) if readout else (0.5, 0.5, 0.5)
    got = scaling.linear_scales(256, 64, 1024, constraint, power)
    assert got == pytest.approx((s_out, s_gin, 1 / 32), rel=1e-15)


# ---------------------------------------------------------------------------------------------------
# linear: exact formulas, B, errors


def _vjp(fn, *args, g):
    y, vjp = jax.vjp(fn, *args)
    return y, vjp(g)


@pytest.mark.parametrize("readout", [False, True])
@pytest.mark.parametrize("constraint", [None, "gmean", "to_output_scale"])
def test_linear_formulas(readout, constraint):
    """y = s_out (xW + b); dx = s_gin g Wᵀ; dW = s_w xᵀg; db = s_w Σg (g is not scaled by s_out)."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 3, 11)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((11, 5)), jnp.float32)
    b = jnp.asarray(rng.standard_normal(5), jnp.float32)
    g = jnp.asarray(rng.standard_normal((2, 3, 5)), jnp.float32)
    fn = scaling.linear_readout if readout else scaling.linear
    y, (dx, dk, db) = _vjp(functools.partial(fn, constraint=constraint), x, k, b, g=g)
    power = (1.0, 0.5, 0.5) if readout else (0.5, 0.5, 0.5)
    s_out, s_gin, s_w = scaling.linear_scales(11, 5, 6, constraint, power)
    np.testing.assert_allclose(y, s_out * (x @ k + b.reshape(1, 1, -1)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, s_gin * (g @ k.T), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        dk, s_w * (x.reshape(6, 11).T @ g.reshape(6, 5)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(db, s_w * g.reshape(6, 5).sum(0), rtol=1e-5, atol=1e-6)


def test_gradients_are_constant_multiples_of_the_true_ones():
    """dx/true = s_gin/s_out and dW/true = B^-1/2 / s_out (unit_scaling.md §1.3)."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((64, 16)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((16, 4)), jnp.float32)
    g = jnp.asarray(rng.standard_normal((64, 4)), jnp.float32)
    _, (dx, dk) = _vjp(functools.partial(scaling.linear_readout), x, k, g=g)
    s_out = 1 / 16
    _, (tx, tk) = _vjp(lambda x, k: s_out * (x @ k), x, k, g=g)
    np.testing.assert_allclose(dx, tx * (0.5 / s_out), rtol=1e-5)
    np.testing.assert_allclose(dk, tk * (1 / 8 / s_out), rtol=1e-5)


def test_batch_counts_every_leading_dim():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((4, 6, 5, 7)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((7, 3)), jnp.float32)
    g = jnp.asarray(rng.standard_normal((4, 6, 5, 3)), jnp.float32)
    _, (_, dk4) = _vjp(scaling.linear, x, k, g=g)
    _, (_, dk2) = _vjp(scaling.linear, x.reshape(-1, 7), k, g=g.reshape(-1, 3))
    np.testing.assert_allclose(dk4, dk2, rtol=1e-5, atol=1e-6)
    s_w = 1 / 120**0.5
    np.testing.assert_allclose(
        dk2, s_w * (x.reshape(-1, 7).T @ g.reshape(-1, 3)), rtol=1e-5, atol=1e-6
    )
    # 1-D input: B = 1
    _, (_, dk1) = _vjp(scaling.linear, x[0, 0, 0], k, g=g[0, 0, 0])
    np.testing.assert_allclose(dk1, jnp.outer(x[0, 0, 0], g[0, 0, 0]), rtol=1e-5, atol=1e-6)


def test_vmap_needs_explicit_batch_size():
    """Inside a vmap over rows B would be 1; batch_size states the whole batch."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((8, 5)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((5, 3)), jnp.float32)

    def whole(k):
        return scaling.linear(x, k).sum()

    def per_row(k, batch_size):
        f = lambda r: scaling.linear(r, k, batch_size=batch_size)
        return jax.vmap(f)(x).sum()

    np.testing.assert_allclose(jax.grad(per_row)(k, 8), jax.grad(whole)(k), rtol=1e-6)
    assert not np.allclose(jax.grad(per_row)(k, None), jax.grad(whole)(k))


def test_linear_errors():
    x, k = jnp.ones((2, 3)), jnp.ones((3, 4))
    with pytest.raises(ValueError, match="non-empty batch"):
        scaling.linear(jnp.ones((0, 3)), k)
    with pytest.raises(ValueError, match="non-empty batch"):
        scaling.linear(jnp.ones((2, 0, 3)), k)
    with pytest.raises(ValueError, match="at least one input feature"):
        scaling.linear(jnp.ones((2, 0)), jnp.ones((0, 4)))
    with pytest.raises(ValueError, match=r"`kernel` must have shape \(in_features, out_features\)"):
        scaling.linear(x, jnp.ones(3))
    with pytest.raises(ValueError, match=r"`x` must have shape \(\.\.\., 3\)"):
        scaling.linear(jnp.ones((2, 5)), k)
    with pytest.raises(ValueError, match="`bias` must have shape"):
        scaling.linear(x, k, jnp.ones(3))
    with pytest.raises(ValueError, match="`scale_power` must be three floats"):
        scaling.linear(x, k, scale_power=(0.5, 0.5))
    with pytest.raises(TypeError, match="`x` must be a floating array"):
        scaling.linear(jnp.ones((2, 3), jnp.int32), k)
    with pytest.raises(ValueError, match="`fan_out` must be > 0"):
        scaling.linear_scales(3, 0, 2)


def test_mixed_dtypes_scale_params_in_their_own_dtype():
    """float32 params, bfloat16 compute: grads float32 (torch.autocast's behaviour)."""
    x = jnp.ones((4, 8), jnp.float32)
    k = jnp.ones((8, 3), jnp.float32)
    f = functools.partial(scaling.linear, dtype=jnp.bfloat16)
    y, (dx, dk) = _vjp(f, x, k, g=jnp.ones((4, 3), jnp.bfloat16))
    assert y.dtype == jnp.bfloat16 and dx.dtype == jnp.float32 and dk.dtype == jnp.float32
    assert float(dk[0, 0]) == pytest.approx(4 / 2)  # s_w = 1/√4 applied in float32


# ---------------------------------------------------------------------------------------------------
# properties: std ≈ 1 (the reference's test_functional.py assertions), over drawn shapes
#
# x (B, in), kernel (in, out) and the cotangent g (B, out) are independent N(0, 1) draws, so up to its
# scale each of y = x @ kernel, dx = g @ kernelᵀ and dkernel = xᵀ @ g is a product of two Gaussian
# matrices, whose entries share a factor and are not independent: their std is checked against
# gaussian_product_std_bounds (derived for that structure). dbias = Σ_rows g / √B has `out` iid
# N(0, 1) entries: an exact chi-square bound. Each bound fails with probability FAIL; a test makes at
# most 4 examples x 4 assertions, so its false-failure probability is at most 16 * FAIL <= 1e-6.

FAIL = 1e-6 / 16


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _stats(constraint, readout, fan_in, fan_out, batch, seed):
    keys = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(keys[0], (batch, fan_in))
    k = jax.random.normal(keys[1], (fan_in, fan_out))
    b = jnp.zeros(fan_out)
    g = jax.random.normal(keys[2], (batch, fan_out))
    fn = scaling.linear_readout if readout else scaling.linear
    y, (dx, dk, db) = _vjp(functools.partial(fn, constraint=constraint), x, k, b, g=g)
    return tuple(jnp.std(a, ddof=1) for a in (y, dx, dk, db))  # torch.std is unbiased


def _unit_stats(constraint, readout, fan_in, fan_out, batch, seed):
    return [float(s) for s in _stats(constraint, readout, fan_in, fan_out, batch, seed)]


def _bounds(fan_in, fan_out, batch):
    """(lo, hi) of the std of y, dx, dk, db for unit scales (each failing w.p. FAIL)."""
    return (
        tail_bounds.gaussian_product_std_bounds(batch, fan_in, fan_out, FAIL),  # x @ k / √in
        tail_bounds.gaussian_product_std_bounds(batch, fan_out, fan_in, FAIL),  # g @ kᵀ / √out
        tail_bounds.gaussian_product_std_bounds(fan_in, batch, fan_out, FAIL),  # xᵀ @ g / √B
        tail_bounds.chi2_std_bounds(fan_out - 1, FAIL),  # Σ g / √B: iid N(0, 1), ddof=1
    )


def _assert_within(name, value, bounds, scale=1.0):
    lo, hi = bounds
    assert scale * lo <= value <= scale * hi, (
        f"std of {name} {value} outside [{scale * lo}, {scale * hi}]"
    )


SHAPES = dict(
    fan_in=st.sampled_from([256, 1024]),
    fan_out=st.sampled_from([256, 640]),
    batch=st.sampled_from([128, 256]),
    seed=st.integers(0, 2**16),
)


def test_std_bounds_would_catch_a_wrong_scale():
    """The bounds are narrow enough to reject a scale off by 15% (the smallest shapes drawn)."""
    for lo, hi in _bounds(256, 256, 128)[:3]:
        assert 0.85 < lo < 1 < hi < 1.15
    lo, hi = _bounds(256, 256, 128)[3]
    assert 0.7 < lo < 1 < hi < 1.3


@settings(max_examples=4)
@given(**SHAPES)
def test_unconstrained_linear_is_unit_scaled(fan_in, fan_out, batch, seed):
    stds = _unit_stats(None, False, fan_in, fan_out, batch, seed)
    for name, s, bounds in zip(
        ("y", "dx", "dk", "db"), stds, _bounds(fan_in, fan_out, batch), strict=True
    ):
        _assert_within(name, s, bounds)


@settings(max_examples=4)
@given(constraint=st.sampled_from(["to_output_scale", "to_grad_input_scale", "gmean"]), **SHAPES)
def test_constrained_linear_is_unit_scaled_where_documented(
    constraint, fan_in, fan_out, batch, seed
):
    y, dx, dk, db = _unit_stats(constraint, False, fan_in, fan_out, batch, seed)
    by, bdx, bdk, bdb = _bounds(fan_in, fan_out, batch)
    _assert_within("dk", dk, bdk)
    _assert_within("db", db, bdb)
    if constraint == "to_output_scale":  # s_gin = 1/√in instead of 1/√out
        _assert_within("y", y, by)
        _assert_within("dx", dx, bdx, math.sqrt(fan_out / fan_in))
    elif constraint == "to_grad_input_scale":  # s_out = 1/√out instead of 1/√in
        _assert_within("dx", dx, bdx)
        _assert_within("y", y, by, math.sqrt(fan_in / fan_out))
    else:  # gmean: s = (in * out)^-1/4 for both: they trade off, their product is unit
        lo, hi = by[0] * bdx[0], by[1] * bdx[1]
        assert lo <= y * dx <= hi, f"std(y) * std(dx) = {y * dx} outside [{lo}, {hi}]"


@settings(max_examples=4)
@given(**SHAPES)
def test_readout_output_is_fan_in_to_the_minus_half(fan_in, fan_out, batch, seed):
    y, dx, dk, _ = _unit_stats(None, True, fan_in, fan_out, batch, seed)
    by, bdx, bdk, _ = _bounds(fan_in, fan_out, batch)
    _assert_within("y", y, by, fan_in**-0.5)  # s_out = 1/in instead of 1/√in
    _assert_within("dx", dx, bdx)
    _assert_within("dk", dk, bdk)


@pytest.mark.parametrize("batch", [(2,), (64,), (4, 16)])  # kernel larger / smaller than the output
def test_float32_folded_path_equals_the_composed_ops(batch):
    """float32 folds each scale into the smaller operand; the values match scale_fwd∘linear∘scale_bwd."""
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((*batch, 24)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((24, 10)), jnp.float32)
    b = jnp.asarray(rng.standard_normal(10), jnp.float32)
    g = jnp.asarray(rng.standard_normal((*batch, 10)), jnp.float32)
    rows = math.prod(batch)

    def composed(x, k, b):
        s_out, s_gin, s_w = scaling.linear_scales(24, 10, rows, "gmean")
        x, k, b = scaling.scale_bwd(x, s_gin), scaling.scale_bwd(k, s_w), scaling.scale_bwd(b, s_w)
        return scaling.scale_fwd(x @ k + b.reshape((1,) * (x.ndim - 1) + (-1,)), s_out)

    got = _vjp(functools.partial(scaling.linear, constraint="gmean"), x, k, b, g=g)
    want = _vjp(composed, x, k, b, g=g)
    for a, c in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, c, rtol=2e-6, atol=1e-6)
