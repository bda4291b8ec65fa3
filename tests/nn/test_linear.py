"""``jl.Linear``: params, init distribution, shapes, dtypes, errors, consistency with flax Dense."""

import flax.linen as nn
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import jaxlinear as jl
from tests import _tail_bounds as tail_bounds

BATCHES = [(), (3,), (2, 3), (0,), (2, 0, 3)]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("use_bias", [True, False])
def test_shapes_and_param_layout(key, batch, use_bias):
    layer = jl.Linear(7, use_bias=use_bias)
    x = jnp.ones((*batch, 5))
    variables = layer.init(key, x)
    expected = {"kernel": (5, 7), **({"bias": (7,)} if use_bias else {})}
    assert jax.tree.map(jnp.shape, variables["params"]) == expected
    y = layer.apply(variables, x)
    assert y.shape == (*batch, 7) and y.dtype == jnp.float32


def test_init_bounds_and_std_match_torch(key):
    """U(±1/√in). Fixed key; the bounds also hold for any key: each of the five assertions fails
    with probability <= FAIL = 2e-7 for a correct init (1e-6 in all), see tests/_tail_bounds.py."""
    fail = 2e-7
    n_in, n_out = 400, 300
    variables = jl.Linear(n_out).init(key, jnp.ones((1, n_in)))
    bound = np.float32(1 / np.sqrt(n_in))
    for name in ("kernel", "bias"):
        w = np.asarray(variables["params"][name], np.float64)
        assert np.abs(w).max() <= bound
        # the whole interval is used: max |w| / bound is below fail^(1/n) with probability fail
        assert np.abs(w).max() > tail_bounds.uniform_abs_max_lower(w.size, fail) * bound
    kernel = np.asarray(variables["params"]["kernel"], np.float64)
    lo, hi = tail_bounds.uniform_std_bounds(kernel.size, fail)  # relative to b/√3, Bernstein
    assert lo < kernel.std() / (bound / np.sqrt(3)) < hi
    # |mean| of 120k U(-b, b) samples (variance b²/3), Bernstein
    assert (
        abs(kernel.mean()) < tail_bounds.bernstein_mean_bound(kernel.size, 1 / 3, 1, fail) * bound
    )


def test_zero_in_features_gives_zeros(key):
    layer = jl.Linear(4)
    variables = layer.init(key, jnp.ones((2, 0)))
    y = layer.apply(variables, jnp.ones((3, 0)))
    np.testing.assert_array_equal(y, np.zeros((3, 4)))
    grads = jax.grad(lambda v: layer.apply(v, jnp.ones((3, 0))).sum())(variables)
    assert not np.isnan(np.asarray(grads["params"]["bias"])).any()


def test_known_answer_with_ones():
    variables = {"params": {"kernel": jnp.ones((3, 4)), "bias": jnp.ones(4)}}
    np.testing.assert_array_equal(jl.Linear(4).apply(variables, jnp.ones((1, 3))), 4.0)


def test_one_dimensional_input(key):
    layer = jl.Linear(4)
    variables = layer.init(key, jnp.ones(3))
    x = jnp.arange(3.0)
    y = layer.apply(variables, x)
    p = variables["params"]
    np.testing.assert_allclose(y, x @ p["kernel"] + p["bias"], rtol=1e-6)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("dtype", [None, jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("param_dtype", [jnp.float32, jnp.bfloat16])
def test_consistent_with_flax_dense_in_fp32(key, use_bias, dtype, param_dtype):
    """Same variables, same numbers as flax's Dense wherever both compute in float32."""
    x = jax.random.normal(key, (4, 5))
    ours = jl.Linear(7, use_bias=use_bias, dtype=dtype, param_dtype=param_dtype)
    variables = ours.init(key, x)
    theirs = nn.Dense(7, use_bias=use_bias, dtype=dtype, param_dtype=param_dtype)
    y, y_ref = ours.apply(variables, x), theirs.apply(variables, x)
    assert y.dtype == y_ref.dtype
    if y.dtype == jnp.float32:
        np.testing.assert_array_equal(y, y_ref)
    else:  # bf16: we accumulate and add the bias in f32 and round once; Dense rounds twice
        np.testing.assert_allclose(
            y.astype(np.float32), y_ref.astype(np.float32), rtol=2e-2, atol=2e-2
        )


def test_bf16_compute_with_fp32_params(key):
    layer = jl.Linear(6, dtype=jnp.bfloat16)
    x = jax.random.normal(key, (8, 5))
    variables = layer.init(key, x)
    assert variables["params"]["kernel"].dtype == jnp.float32
    y = layer.apply(variables, x)
    assert y.dtype == jnp.bfloat16
    as_bf16 = lambda a: np.asarray(a.astype(jnp.bfloat16), np.float32)
    p = variables["params"]
    exact = as_bf16(x) @ as_bf16(p["kernel"]) + as_bf16(p["bias"])[None, :]
    # one rounding of the f32 result: within half a bf16 ulp (2^-9 relative)
    np.testing.assert_allclose(np.asarray(y, np.float32), exact, rtol=2**-8, atol=1e-6)
    grads = jax.grad(lambda v: layer.apply(v, x).astype(jnp.float32).sum())(variables)
    assert grads["params"]["kernel"].dtype == jnp.float32


def test_bf16_input_promotes_to_fp32_by_default(key):
    layer = jl.Linear(3)
    x = jnp.ones((2, 4), jnp.bfloat16)
    assert layer.apply(layer.init(key, x), x).dtype == jnp.float32


def test_jit_does_not_recompile(key):
    layer = jl.Linear(3)
    variables = layer.init(key, jnp.ones((2, 4)))
    traces = []  # one entry per trace: a second entry would be a recompile

    @jax.jit
    def f(variables, x):
        traces.append(x.shape)
        return layer.apply(variables, x)

    f(variables, np.ones((2, 4), np.float32))
    f(variables, np.full((2, 4), 2.0, np.float32))
    assert traces == [(2, 4)]


@settings(max_examples=8, deadline=None)
@given(
    batch=st.lists(st.integers(0, 4), max_size=3),
    n_in=st.integers(0, 9),
    n_out=st.integers(1, 9),
)
def test_any_batch_shape_matches_flattened(batch, n_in, n_out):
    layer = jl.Linear(n_out)
    variables = layer.init(jax.random.key(1), jnp.ones((1, n_in)))
    x = jax.random.normal(jax.random.key(2), (*batch, n_in))
    y = layer.apply(variables, x)
    assert y.shape == (*batch, n_out)
    flat = layer.apply(variables, x.reshape(int(np.prod(batch)), n_in)).reshape(*batch, n_out)
    np.testing.assert_allclose(y, flat, rtol=1e-6, atol=1e-7)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("features", [0, -3])
def test_non_positive_features(features):
    with pytest.raises(ValueError, match="`features` must be an int > 0"):
        jl.Linear(features)


@pytest.mark.parametrize("features", [2.0, "4", True])
def test_non_int_features(features):
    with pytest.raises(TypeError, match="`features` must be an int"):
        jl.Linear(features)


def test_wrong_input_feature_size(key):
    layer = jl.Linear(4)
    variables = layer.init(key, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"`x` must have 3 input features .* got shape \(2, 5\)"):
        layer.apply(variables, jnp.ones((2, 5)))


def test_scalar_input(key):
    with pytest.raises(ValueError, match="`x` must have at least 1 dimension"):
        jl.Linear(4).init(key, jnp.float32(1.0))


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_, jnp.complex64])
def test_non_float_input(key, dtype):
    with pytest.raises(TypeError, match="`x` must be a floating array"):
        jl.Linear(4).init(key, jnp.ones((2, 3), dtype))


@pytest.mark.parametrize("field", ["dtype", "param_dtype"])
def test_non_float_dtypes(field):
    with pytest.raises(TypeError, match=f"`{field}` must be a floating dtype"):
        jl.Linear(4, **{field: jnp.int8})
