"""``jl.nnx`` layers: the linen layers' params, numbers, init distributions, errors and sharding names."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxlinear as jl
from tests import _tail_bounds as tail_bounds

FAIL = 2e-7


def _params(layer):
    return {"params": nnx.to_pure_dict(nnx.state(layer, nnx.Param))}


# (nnx layer, input shape): every layer family, with and without bias / parametrization
CASES = [
    (lambda r: jl.nnx.Linear(5, 7, rngs=r), (3, 5)),
    (lambda r: jl.nnx.Linear(5, 7, use_bias=False, rngs=r), (2, 3, 5)),
    (lambda r: jl.nnx.Linear(6, 4, parametrization="mup", layer_type="output", rngs=r), (4, 6)),
    (lambda r: jl.nnx.Linear(5, 3, dtype=jnp.bfloat16, rngs=r), (3, 5)),
    (lambda r: jl.nnx.NLinear(3, 5, 4, rngs=r), (2, 3, 5)),
    (lambda r: jl.nnx.NLinear((2, 3), 5, 4, parametrization="ntp", rngs=r), (7, 2, 3, 5)),
    (lambda r: jl.nnx.NLinear(3, 5, 4, layout="member_major", rngs=r), (3, 6, 5)),
    (lambda r: jl.nnx.UnitScaledLinear(5, 7, rngs=r), (3, 5)),
    (lambda r: jl.nnx.UnitScaledLinear(5, 7, use_bias=True, constraint="gmean", rngs=r), (3, 5)),
    (lambda r: jl.nnx.LinearReadout(5, 7, use_bias=True, rngs=r), (2, 3, 5)),
]


@pytest.mark.parametrize("make, shape", CASES)
def test_same_params_give_the_linen_twins_numbers_bit_for_bit(make, shape):
    layer = make(nnx.Rngs(0))
    if layer.bias is not None:  # a non-zero bias (unit-scaled layers start at zeros)
        layer.bias[...] = jax.random.normal(jax.random.key(2), layer.bias.shape)
    x = jax.random.normal(jax.random.key(1), shape)
    twin, variables = layer.linen_twin(), _params(layer)
    np.testing.assert_array_equal(layer(x), twin.apply(variables, x))
    g_nnx = nnx.grad(lambda m: (m(x) ** 2).sum())(layer)
    g_linen = jax.grad(lambda v: (twin.apply(v, x) ** 2).sum())(variables)
    jax.tree.map(np.testing.assert_array_equal, nnx.to_pure_dict(g_nnx), g_linen["params"])
    # the linen twin's init creates the same param shapes and dtypes
    linen_init = jax.eval_shape(twin.init, jax.random.key(0), x)["params"]
    assert jax.tree.map(lambda a: (a.shape, a.dtype), linen_init) == jax.tree.map(
        lambda a: (a.shape, a.dtype), variables["params"]
    )


def test_nnx_jit_gives_the_eager_numbers():
    layer = jl.nnx.NLinear(3, 5, 4, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 3, 5))
    np.testing.assert_array_equal(nnx.jit(lambda m, x: m(x))(layer, x), layer(x))


def test_linear_init_is_torch_uniform():
    n_in, n_out = 400, 300
    layer = jl.nnx.Linear(n_in, n_out, rngs=nnx.Rngs(0))
    bound = np.float32(1 / np.sqrt(n_in))
    for p in (layer.kernel, layer.bias):
        w = np.asarray(p[...], np.float64)
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > tail_bounds.uniform_abs_max_lower(w.size, FAIL) * bound
    kernel = np.asarray(layer.kernel[...], np.float64)
    lo, hi = tail_bounds.uniform_std_bounds(kernel.size, FAIL)
    assert lo < kernel.std() / (bound / np.sqrt(3)) < hi


@pytest.mark.parametrize(
    "make, fans",
    [
        (
            lambda r: jl.nnx.Linear(256, 300, parametrization="mup", layer_type="output", rngs=r),
            None,
        ),
        (lambda r: jl.nnx.NLinear(3, 256, 100, parametrization="mup", rngs=r), None),
        (lambda r: jl.nnx.UnitScaledLinear(256, 300, use_bias=True, rngs=r), "unit"),
    ],
)
def test_normal_inits_follow_the_linen_scales(make, fans):
    layer = make(nnx.Rngs(3))
    kernel = np.asarray(layer.kernel[...], np.float64)
    n_in, n_out = kernel.shape[-2:]
    if fans == "unit":
        std = 1.0
        np.testing.assert_array_equal(layer.bias[...], 0.0)
    else:
        p = jl.parametrizations.get_parametrization(layer.parametrization)
        std = p.weight_init_scale(n_in, n_out, layer.layer_type)
    lo, hi = tail_bounds.chi2_std_bounds(kernel.size, FAIL)
    assert lo < np.sqrt((kernel**2).mean()) / std < hi


def test_custom_initializers_are_used():
    zeros = jax.nn.initializers.zeros
    layer = jl.nnx.NLinear(2, 3, 4, kernel_init=zeros, bias_init=jax.nn.initializers.ones,
                           rngs=nnx.Rngs(0))  # fmt: skip
    np.testing.assert_array_equal(layer.kernel[...], 0.0)
    np.testing.assert_array_equal(layer.bias[...], 1.0)


def test_rng_streams_are_counters_not_names():
    """NNX draws kernel then bias from the ``params`` stream in build order (documented)."""
    rngs = nnx.Rngs(0)
    a = jl.nnx.Linear(3, 4, rngs=rngs)
    b = jl.nnx.Linear(3, 4, rngs=rngs)
    assert not np.array_equal(a.kernel[...], b.kernel[...])
    again = jl.nnx.Linear(3, 4, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(a.kernel[...], again.kernel[...])
    twin_init = a.linen_twin().init(jax.random.key(0), jnp.ones((1, 3)))["params"]["kernel"]
    assert not np.array_equal(twin_init, a.kernel[...])  # other stream, same distribution


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda r: jl.nnx.Linear(3, 0, rngs=r), ValueError, "`out_features` must be an int > 0"),
        (lambda r: jl.nnx.Linear(3.0, 2, rngs=r), TypeError, "`in_features` must be an int"),
        (lambda r: jl.nnx.Linear(3, 2, use_bias=1, rngs=r), TypeError, "`use_bias` must be a bool"),
        (
            lambda r: jl.nnx.Linear(3, 2, layer_type="in", rngs=r),
            ValueError,
            "`layer_type` must be",
        ),
        (
            lambda r: jl.nnx.Linear(3, 2, parametrization="xp", rngs=r),
            ValueError,
            "parametrization",
        ),
        (lambda r: jl.nnx.Linear(3, 2, param_dtype=jnp.int8, rngs=r), TypeError, "`param_dtype`"),
        (lambda r: jl.nnx.Linear(3, 2, kernel_axes=("a",), rngs=r), ValueError, "`kernel_axes`"),
        (lambda r: jl.nnx.Linear(3, 2, kernel_axes="ab", rngs=r), TypeError, "`kernel_axes`"),
        (
            lambda r: jl.nnx.Linear(3, 2, parametrization="mup", kernel_init=jnp.zeros, rngs=r),
            ValueError,
            "`kernel_init` must be None with a parametrization",
        ),
        (lambda r: jl.nnx.NLinear((), 3, 2, rngs=r), ValueError, "`n` must be"),
        (lambda r: jl.nnx.NLinear(2, 3, 2, layout="x", rngs=r), ValueError, "`layout` must be"),
        (lambda r: jl.nnx.UnitScaledLinear(3, 2, constraint="x", rngs=r), ValueError, "constraint"),
        (lambda r: jl.nnx.LinearReadout(3, 2, weight_mup_type="w", rngs=r), ValueError, "mup_type"),
    ],
)
def test_bad_arguments_raise_the_linen_messages(make, error, match):
    with pytest.raises(error, match=match):
        make(nnx.Rngs(0))


def test_bad_inputs_raise():
    layer = jl.nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="must have 3 input features"):
        layer(jnp.ones((2, 4)))
    with pytest.raises(TypeError, match="`x` must be a floating array"):
        layer(jnp.ones((2, 3), jnp.int32))
    with pytest.raises(ValueError, match="trailing shape"):
        jl.nnx.NLinear(2, 3, 4, rngs=nnx.Rngs(0))(jnp.ones((5, 3, 3)))


def test_sharding_names_are_nnx_partition_specs():
    P = jax.sharding.PartitionSpec
    layer = jl.nnx.Linear(4, 8, kernel_axes=("embed", "mlp"), rngs=nnx.Rngs(0))
    spec = nnx.get_partition_spec(nnx.state(layer, nnx.Param))
    assert spec["kernel"].get_value() == P("embed", "mlp") and spec["bias"].get_value() == P("mlp")
    ens = jl.nnx.NLinear(2, 4, 8, kernel_axes=("member", None, "mlp"), rngs=nnx.Rngs(0))
    spec = nnx.get_partition_spec(nnx.state(ens, nnx.Param))
    assert spec["kernel"].get_value() == P("member", None, "mlp") and spec["bias"].get_value() == P(
        "member", "mlp"
    )
    ro = jl.nnx.LinearReadout(4, 8, use_bias=True, kernel_axes=("a", "b"), bias_axes=(None,),
                              rngs=nnx.Rngs(0))  # fmt: skip
    assert nnx.get_partition_spec(nnx.state(ro, nnx.Param))["bias"].get_value() == P(None)
    plain = jl.nnx.Linear(4, 8, rngs=nnx.Rngs(0))
    assert nnx.get_partition_spec(nnx.state(plain, nnx.Param))["kernel"].get_value() == P()


def test_lr_rules_are_the_linen_rules():
    layer = jl.nnx.NLinear(4, 16, 8, parametrization="mup", layer_type="input", rngs=nnx.Rngs(0))
    shapes = {"kernel": (4, 16, 8), "bias": (4, 8)}
    assert layer.lr_rule(shapes, "sgd") == layer.linen_twin().lr_rule(shapes, "sgd")
    ro = jl.nnx.LinearReadout(16, 8, rngs=nnx.Rngs(0))
    assert ro.lr_rule({"kernel": (16, 8)}, "adam") == {"kernel": (1.0, 1.0)}
