"""jl.UnitScaledLinear / jl.LinearReadout: defaults, params, init, module == pure function, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl
from jaxlinear import scaling
from tests import _tail_bounds as tail_bounds

MODULES = [jl.UnitScaledLinear, jl.LinearReadout]


def test_defaults_follow_the_reference_code_not_its_docstrings():
    layer, readout = jl.UnitScaledLinear(4), jl.LinearReadout(4)
    assert layer.use_bias is False and readout.use_bias is False
    assert layer.constraint == "to_output_scale" and readout.constraint is None
    assert layer.weight_mup_type == "weight" and readout.weight_mup_type == "output"


@pytest.mark.parametrize("cls", MODULES)
@pytest.mark.parametrize("use_bias", [False, True])
def test_params_and_init(cls, use_bias):
    layer = cls(512, use_bias=use_bias)
    variables = layer.init(jax.random.key(0), jnp.ones((2, 384)))
    params = variables["params"]
    assert params["kernel"].shape == (384, 512) and params["kernel"].dtype == jnp.float32
    # N(0, 1), not lecun/uniform. Fixed key; for any key each of the three assertions fails with
    # probability <= 3e-7 (tests/_tail_bounds.py: exact chi-square, normal mean, normal max)
    fail = 3e-7
    k = np.asarray(params["kernel"], np.float64)
    lo, hi = tail_bounds.chi2_std_bounds(k.size - 1, fail)
    assert lo < k.std(ddof=1) < hi
    assert abs(k.mean()) < tail_bounds.gaussian_mean_bound(k.size, fail)
    # a normal tail: far outside any 1/√in uniform bound
    assert np.abs(k).max() > tail_bounds.gaussian_abs_max_lower(k.size, fail) > 3.5
    if use_bias:
        np.testing.assert_array_equal(params["bias"], np.zeros(512, np.float32))
    else:
        assert "bias" not in params


@pytest.mark.parametrize(
    "cls, fn", [(jl.UnitScaledLinear, scaling.linear), (jl.LinearReadout, scaling.linear_readout)]
)
@pytest.mark.parametrize("constraint", [None, "gmean", "to_grad_input_scale"])
def test_module_is_the_pure_function(cls, fn, constraint):
    layer = cls(5, use_bias=True, constraint=constraint)
    x = jax.random.normal(jax.random.key(1), (3, 4, 7))
    variables = layer.init(jax.random.key(0), x)
    variables = jax.tree.map(lambda v: v + 0.5, variables)  # a non-zero bias
    g = jax.random.normal(jax.random.key(2), (3, 4, 5))
    y, vjp = jax.vjp(layer.apply, variables, x)
    gv, gx = vjp(g)
    p = variables["params"]
    y2, vjp2 = jax.vjp(lambda x, k, b: fn(x, k, b, constraint), x, p["kernel"], p["bias"])
    gx2, gk2, gb2 = vjp2(g)
    for a, b in [(y, y2), (gx, gx2), (gv["params"]["kernel"], gk2), (gv["params"]["bias"], gb2)]:
        np.testing.assert_array_equal(a, b)


def test_bias_is_inside_the_output_scale():
    """W = 0, b = 1: Linear(4 -> 3) outputs 1/√4, LinearReadout 1/4 (unit_scaling.md §1.4)."""
    x = jnp.ones((2, 4))
    for cls, want in [(jl.UnitScaledLinear, 0.5), (jl.LinearReadout, 0.25)]:
        layer = cls(3, use_bias=True)
        variables = {"params": {"kernel": jnp.zeros((4, 3)), "bias": jnp.ones(3)}}
        np.testing.assert_array_equal(layer.apply(variables, x), np.full((2, 3), want, np.float32))


@pytest.mark.parametrize("cls", MODULES)
@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
def test_leading_dims(cls, batch):
    layer = cls(6)
    x = jnp.ones((*batch, 4))
    variables = layer.init(jax.random.key(0), jnp.ones((1, 4)))
    assert layer.apply(variables, x).shape == (*batch, 6)


@pytest.mark.parametrize("cls", MODULES)
def test_dtypes(cls):
    x = jnp.ones((2, 4), jnp.float32)
    layer = cls(3, dtype=jnp.bfloat16)
    variables = layer.init(jax.random.key(0), x)
    assert variables["params"]["kernel"].dtype == jnp.float32
    assert layer.apply(variables, x).dtype == jnp.bfloat16
    layer = cls(3, param_dtype=jnp.bfloat16)
    variables = layer.init(jax.random.key(0), x.astype(jnp.bfloat16))
    assert variables["params"]["kernel"].dtype == jnp.bfloat16
    assert layer.apply(variables, x.astype(jnp.bfloat16)).dtype == jnp.bfloat16


def test_errors():
    with pytest.raises(ValueError, match="`constraint` must be one of"):
        jl.UnitScaledLinear(3, constraint="pow")
    with pytest.raises(ValueError, match="`weight_mup_type` must be one of"):
        jl.LinearReadout(3, weight_mup_type="foo")  # the reference accepts any string
    with pytest.raises(ValueError, match="`features` must be an int > 0"):
        jl.UnitScaledLinear(0)
    layer = jl.UnitScaledLinear(3)
    variables = layer.init(jax.random.key(0), jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="non-empty batch"):
        layer.apply(variables, jnp.ones((0, 4)))
    with pytest.raises(ValueError, match="`x` must have 4 input features"):
        layer.apply(variables, jnp.ones((2, 5)))


def test_jit_compiles_once():
    layer = jl.LinearReadout(3, use_bias=True)
    variables = layer.init(jax.random.key(0), jnp.ones((2, 4)))
    traces = []  # one entry per trace: a second entry would be a recompile

    def loss(v, x):
        traces.append(x.shape)
        return layer.apply(v, x).sum()

    f = jax.jit(jax.grad(loss))
    f(variables, jnp.ones((2, 4)))
    f(variables, jnp.ones((2, 4)) * 2)
    assert traces == [(2, 4)]


@pytest.mark.parametrize("cls", MODULES)
def test_interop_round_trip_and_errors(cls):
    layer = cls(3, use_bias=True)
    variables = layer.init(jax.random.key(0), jnp.ones((2, 4)))
    sd = jl.interop.to_torch(layer, variables)
    assert sd["weight"].shape == (3, 4) and sd["bias"].shape == (3,)
    back = jl.interop.from_torch(layer, sd)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(variables), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(KeyError, match="missing \\['bias'\\]"):
        jl.interop.from_torch(layer, {"weight": sd["weight"]})
    with pytest.raises(
        ValueError, match="`state_dict\\['weight'\\]` must have shape \\(3, in_features\\)"
    ):
        jl.interop.from_torch(layer, {"weight": sd["weight"].T, "bias": sd["bias"]})
