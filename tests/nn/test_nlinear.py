"""``jl.NLinear``: params, init, shapes, equivalence with separate Linear layers, errors."""

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import jaxlinear as jl
from tests import _tail_bounds as tail_bounds


@pytest.mark.parametrize("n", [3, (2, 3)])
@pytest.mark.parametrize("batch", [(), (4,), (2, 5), (0,)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_shapes_and_param_layout(key, n, batch, use_bias):
    n_shape = (n,) if isinstance(n, int) else n
    layer = jl.NLinear(n, 7, use_bias=use_bias)
    x = jnp.ones((*batch, *n_shape, 5))
    variables = layer.init(key, x)
    expected = {"kernel": (*n_shape, 5, 7), **({"bias": (*n_shape, 7)} if use_bias else {})}
    assert jax.tree.map(jnp.shape, variables["params"]) == expected
    assert layer.apply(variables, x).shape == (*batch, *n_shape, 7)


def test_each_slice_is_its_own_linear(key):
    layer = jl.NLinear((2, 3), 4)
    x = jax.random.normal(key, (5, 2, 3, 6))
    variables = layer.init(key, x)
    y = layer.apply(variables, x)
    p = variables["params"]
    for i in range(2):
        for j in range(3):
            want = np.asarray(x[:, i, j]) @ np.asarray(p["kernel"][i, j]) + np.asarray(
                p["bias"][i, j]
            )
            np.testing.assert_allclose(y[:, i, j], want, rtol=1e-5, atol=1e-6)


def test_init_bounds_and_batch_axes_not_in_fan_in(key):
    """U(±1/√in) with in the per-member size. Fixed key; each of the three statistical assertions
    fails with probability <= 3e-7 for a correct init and any key (tests/_tail_bounds.py)."""
    fail = 3e-7
    n_in = 256
    variables = jl.NLinear(16, 64).init(key, jnp.ones((1, 16, n_in)))
    bound = np.float32(1 / np.sqrt(n_in))  # fan_in is `in` only, never n * in
    for name in ("kernel", "bias"):
        w = np.asarray(variables["params"][name], np.float64)
        assert tail_bounds.uniform_abs_max_lower(w.size, fail) * bound < np.abs(w).max() <= bound
    kernel = np.asarray(variables["params"]["kernel"], np.float64)
    lo, hi = tail_bounds.uniform_std_bounds(kernel.size, fail)  # relative to b/√3
    assert lo < kernel.std() / (bound / np.sqrt(3)) < hi
    # with fan_in n * in = 4096 the std would be 4x smaller: far outside the bounds
    assert hi < 4 * lo


def test_zero_in_features_gives_zeros(key):
    layer = jl.NLinear(3, 2)
    variables = layer.init(key, jnp.ones((1, 3, 0)))
    np.testing.assert_array_equal(layer.apply(variables, jnp.ones((4, 3, 0))), np.zeros((4, 3, 2)))


def test_bf16_compute(key):
    layer = jl.NLinear(2, 3, dtype=jnp.bfloat16)
    variables = layer.init(key, jnp.ones((4, 2, 5)))
    assert variables["params"]["kernel"].dtype == jnp.float32
    assert layer.apply(variables, jnp.ones((4, 2, 5))).dtype == jnp.bfloat16


@pytest.mark.parametrize("n", [0, -1, (), (2, 0), 2.5, "3", True, None])
def test_bad_n(n):
    with pytest.raises((ValueError, TypeError), match="`n` must be"):
        jl.NLinear(n, 4)


@pytest.mark.parametrize("features", [0, -2])
def test_bad_features(features):
    with pytest.raises(ValueError, match="`features` must be an int > 0"):
        jl.NLinear(3, features)


@pytest.mark.parametrize("shape", [(4, 2, 5), (4, 5), (5,), (4, 3, 2, 5)])
def test_input_must_match_n_exactly(key, shape):
    layer = jl.NLinear(3, 2)
    with pytest.raises(ValueError, match="`x` must have"):
        layer.init(key, jnp.ones(shape))


def test_wrong_in_features_after_init(key):
    layer = jl.NLinear(3, 2)
    variables = layer.init(key, jnp.ones((4, 3, 5)))
    with pytest.raises(ValueError, match=r"`x` must have trailing shape \(3, 5\)"):
        layer.apply(variables, jnp.ones((4, 3, 6)))


def test_non_float_input(key):
    with pytest.raises(TypeError, match="`x` must be a floating array"):
        jl.NLinear(3, 2).init(key, jnp.ones((4, 3, 5), jnp.int32))


@settings(max_examples=6, deadline=None)
@given(
    batch=st.lists(st.integers(0, 3), max_size=2),
    n=st.lists(st.integers(1, 3), min_size=1, max_size=2),
    n_in=st.integers(0, 5),
    n_out=st.integers(1, 5),
)
def test_any_shape_matches_einsum(batch, n, n_in, n_out):
    layer = jl.NLinear(tuple(n), n_out)
    x = jax.random.normal(jax.random.key(2), (*batch, *n, n_in))
    variables = layer.init(jax.random.key(1), x)
    p = variables["params"]
    want = np.einsum("...i,...io->...o", np.asarray(x), np.asarray(p["kernel"])) + np.asarray(
        p["bias"]
    )
    np.testing.assert_allclose(layer.apply(variables, x), want, rtol=1e-5, atol=1e-6)


def test_member_major_layout_equals_batch_major():
    """(*n, ..., in) member-major gives the batch-major values, params and gradients, moved axes."""
    x = jax.random.normal(jax.random.key(1), (6, 2, 3, 5))  # (B1, B2, n, in)
    layer, member = jl.NLinear(3, 4), jl.NLinear(3, 4, layout="member_major")
    variables = layer.init(jax.random.key(0), x)
    xm = jnp.moveaxis(x, 2, 0)  # (n, B1, B2, in)
    assert jax.tree.map(jnp.shape, member.init(jax.random.key(0), xm)) == jax.tree.map(
        jnp.shape, variables
    )
    y, ym = layer.apply(variables, x), member.apply(variables, xm)
    np.testing.assert_allclose(jnp.moveaxis(ym, 0, 2), y, rtol=1e-6, atol=1e-6)
    g = jax.random.normal(jax.random.key(2), y.shape)
    _, vjp = jax.vjp(layer.apply, variables, x)
    _, vjp_m = jax.vjp(member.apply, variables, xm)
    (dv, dx), (dv_m, dx_m) = vjp(g), vjp_m(jnp.moveaxis(g, 2, 0))
    np.testing.assert_allclose(jnp.moveaxis(dx_m, 0, 2), dx, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(dv_m), jax.tree.leaves(dv), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_member_major_errors():
    with pytest.raises(ValueError, match="`layout` must be one of"):
        jl.NLinear(3, 4, layout="n_first")
    member = jl.NLinear(3, 4, layout="member_major")
    with pytest.raises(ValueError, match=r"`x` must have shape \(\*n, \.\.\., in_features\)"):
        member.init(jax.random.key(0), jnp.ones((5, 3, 2)))
    variables = member.init(jax.random.key(0), jnp.ones((3, 5, 2)))
    with pytest.raises(ValueError, match="`x` must have 2 input features"):
        member.apply(variables, jnp.ones((3, 5, 7)))
