"""Bad input to the layers and pure functions: each class of rejected input raises a ``TypeError`` or
``ValueError`` whose message names the argument (and its value), before any compute.

Covers ``jl.Linear``, ``jl.NLinear``, ``jl.UnitScaledLinear``, ``jl.LinearReadout``,
``jl.functional``, ``jl.scaling``, ``jl.initializers`` and ``jl.parametrizations``; weight files are
in tests/test_safetensors.py, quantization, optimizers and growing in their own files.
"""

import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl
from jaxlinear import functional, initializers, parametrizations, scaling

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    lambda **kw: jl.Linear(4, **kw),
    lambda **kw: jl.NLinear(2, 4, **kw),
    lambda **kw: jl.UnitScaledLinear(4, **kw),
    lambda **kw: jl.LinearReadout(4, **kw),
]
LAYER_IDS = ["Linear", "NLinear", "UnitScaledLinear", "LinearReadout"]


def _x(layer, in_features=3, batch=2):
    n = layer.n_shape if isinstance(layer, jl.NLinear) else ()
    return (batch, *n, in_features)


# --- booleans -------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("value", ["False", "True", 0, 1, None, 1.0])
def test_use_bias_must_be_a_bool(make, value):
    """``use_bias="False"`` used to create a bias (any non-empty string is truthy)."""
    with pytest.raises(
        TypeError, match=rf"`use_bias` must be a bool \(True or False\), got .*{value!r}"
    ):
        make(use_bias=value)


@pytest.mark.parametrize("make", LAYERS, ids=LAYER_IDS)
def test_numpy_bools_are_bools(make):
    layer = make(use_bias=np.bool_(False))
    variables = layer.init(jax.random.key(0), jnp.ones(_x(layer)))
    assert "bias" not in variables["params"]


# --- sizes XLA cannot compile (they abort the process) -------------------------------------------

TOO_BIG = 2**31  # XLA CPU aborts on a vector-matrix product with an output dim of 2**31 or more


@pytest.mark.parametrize(
    "make",
    [
        lambda: jl.Linear(TOO_BIG),
        lambda: jl.NLinear(2, TOO_BIG),
        lambda: jl.UnitScaledLinear(TOO_BIG),
        lambda: jl.LinearReadout(TOO_BIG),
    ],
    ids=LAYER_IDS,
)
def test_features_above_the_xla_dimension_limit(make):
    with pytest.raises(
        ValueError, match=r"`features` must be <= 2\*\*31 - 1 = 2147483647 .*got 2147483648"
    ):
        make()


@pytest.mark.parametrize("n", [TOO_BIG, (2, TOO_BIG)])
def test_nlinear_n_above_the_xla_dimension_limit(n):
    with pytest.raises(ValueError, match=r"`n` must be <= 2\*\*31 - 1 .*got 2147483648"):
        jl.NLinear(n, 4)


@pytest.mark.parametrize(
    "layer",
    [jl.Linear(2), jl.NLinear(2, 2), jl.UnitScaledLinear(2), jl.LinearReadout(2)],
    ids=LAYER_IDS,
)
def test_in_features_above_the_xla_dimension_limit(layer):
    # abstract input: nothing is allocated or compiled, so a missing check could not abort here
    x = jax.ShapeDtypeStruct(_x(layer, in_features=TOO_BIG, batch=1), jnp.float32)
    with pytest.raises(
        ValueError, match=r"`x.shape\[-1\]` must be <= 2\*\*31 - 1 .*got 2147483648"
    ):
        jax.eval_shape(layer.init, jax.random.key(0), x)


def test_largest_dimension_is_accepted():
    x = jax.ShapeDtypeStruct((1, 3), jnp.float32)
    shapes = jax.eval_shape(jl.Linear(2**31 - 1).init, jax.random.key(0), x)
    assert shapes["params"]["kernel"].shape == (3, 2**31 - 1)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, k: functional.linear(x, k),
        lambda x, k: functional.nlinear(x[:, None], k[None]),
        lambda x, k: scaling.linear(x, k),
    ],
    ids=["functional.linear", "functional.nlinear", "scaling.linear"],
)
def test_functions_reject_kernels_above_the_xla_dimension_limit(fn):
    x = jax.ShapeDtypeStruct((1, 3), jnp.float32)
    k = jax.ShapeDtypeStruct((3, TOO_BIG), jnp.float32)
    with pytest.raises(ValueError, match=r"`kernel.shape` must be <= 2\*\*31 - 1 .*got 2147483648"):
        jax.eval_shape(fn, x, k)


def test_issue_example_raises_instead_of_aborting():
    """``jl.Linear(2**31).init(...)`` used to abort the interpreter inside XLA; run it in a child
    process so that a regression fails this test instead of killing pytest. The child limits its
    own address space to 4 GiB, so a regression cannot exhaust the host's memory either."""
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))\n"
        "import jax, jax.numpy as jnp, jaxlinear as jl\n"
        "try:\n"
        "    jl.Linear(2**31).init(jax.random.key(0), jnp.ones((1, 3)))\n"
        "except ValueError as e:\n"
        "    print('ValueError:', e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ValueError: `features` must be <= 2**31 - 1" in result.stdout


# --- params given to a layer ----------------------------------------------------------------------


@pytest.mark.parametrize("make", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("name", ["kernel", "bias"])
def test_integer_params_are_rejected(make, name):
    layer = make(use_bias=True)
    variables = layer.init(jax.random.key(0), jnp.ones(_x(layer)))
    params = dict(variables["params"])
    params[name] = params[name].astype(jnp.int32)
    with pytest.raises(TypeError, match=rf"`variables\['params'\]\['{name}'\]` must be a floating"):
        layer.apply({"params": params}, jnp.ones(_x(layer)))


@pytest.mark.parametrize("make", LAYERS, ids=LAYER_IDS)
def test_bias_given_to_a_layer_without_bias_is_not_dropped_silently(make):
    with_bias = make(use_bias=True)
    variables = with_bias.init(jax.random.key(0), jnp.ones(_x(with_bias)))
    without = make(use_bias=False)
    with pytest.raises(
        ValueError, match=r"`variables\['params'\]` must not have a 'bias'.*use_bias=False"
    ):
        without.apply(variables, jnp.ones(_x(without)))


def test_numpy_ints_are_sizes():
    assert jl.NLinear(np.int64(2), np.int64(3)).n_shape == (2,)
    assert jl.NLinear((np.int32(2), 3), 4).n_shape == (2, 3)
    v = jl.NLinear(np.int64(2), 3).init(jax.random.key(0), jnp.ones((1, 2, 5)))
    assert v["params"]["kernel"].shape == (2, 5, 3)


# --- jl.functional --------------------------------------------------------------------------------

X, K = jnp.ones((2, 3)), jnp.ones((3, 4))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: functional.linear(X, K.astype(jnp.int32)),
            TypeError,
            "`kernel` must be a floating",
        ),
        (lambda: functional.linear(X, K, jnp.ones(4, int)), TypeError, "`bias` must be a floating"),
        (
            lambda: functional.linear(X, K.astype(jnp.bfloat16)),
            TypeError,
            r"`kernel` must have the dtype of `x` \(float32\), got bfloat16",
        ),
        (
            lambda: functional.nlinear(X[:, None], K[None].astype(jnp.int8)),
            TypeError,
            "`kernel` must be a floating",
        ),
        (
            lambda: functional.nlinear(X[:, None], K[None].astype(jnp.float16)),
            TypeError,
            "`kernel` must have the dtype of `x`",
        ),
        (
            lambda: functional.nlinear(X[:, None], K[None], jnp.ones((1, 4), bool)),
            TypeError,
            "`bias` must be a floating",
        ),
    ],
)
def test_functional_operand_dtypes(call, error, match):
    """torch.nn.functional.linear raises for mixed dtypes; lax.dot_general used to accept them."""
    with pytest.raises(error, match=match):
        call()


def test_functional_accepts_array_likes():
    y = functional.linear([[1.0, 2.0, 3.0]], np.ones((3, 4), np.float32).tolist())
    np.testing.assert_array_equal(y, np.full((1, 4), 6.0))


# --- jl.scaling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.int8, "foo", jnp.complex64])
def test_scaling_linear_dtype(dtype):
    with pytest.raises(TypeError, match=rf"`dtype` must be a floating dtype .*got .*{dtype!s:.8}"):
        scaling.linear(X, K, dtype=dtype)


@pytest.mark.parametrize("power", ["abc", "123", (0.5, "0.5", 0.5), (0.5, True, 0.5), 0.5, None])
def test_scaling_scale_power(power):
    with pytest.raises(ValueError, match="`scale_power` must be three floats"):
        scaling.linear(X, K, scale_power=power)


@pytest.mark.parametrize(
    "args, name",
    [
        (("3", 4, 2), "fan_in"),
        ((math.nan, 4, 2), "fan_in"),
        ((2.5, 4, 2), "fan_in"),
        ((3, 4.0, 2), "fan_out"),
        ((3, 4, True), "batch_size"),
        ((3, 4, None), "batch_size"),
    ],
)
def test_scaling_sizes_must_be_ints(args, name):
    with pytest.raises(TypeError, match=rf"`{name}` must be an int, got"):
        scaling.linear_scales(*args)


@pytest.mark.parametrize("batch_size", [0, -3])
def test_scaling_batch_size_must_be_positive(batch_size):
    with pytest.raises(ValueError, match=rf"`batch_size` must be > 0.*got B = {batch_size}"):
        scaling.linear(X, K, batch_size=batch_size)


def test_scaling_numpy_int_batch_size_is_accepted():
    np.testing.assert_array_equal(
        scaling.linear(X, K, batch_size=np.int64(2)), scaling.linear(X, K, batch_size=2)
    )


@pytest.mark.parametrize(
    "call",
    [scaling.gmean, scaling.hmean, scaling.amean, lambda: scaling.apply_constraint("gmean")],
    ids=["gmean", "hmean", "amean", "apply_constraint"],
)
def test_constraints_need_a_scale(call):
    with pytest.raises(ValueError, match="`scales` must be at least one scale"):
        call()


# --- jl.initializers ------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [initializers.torch_uniform_bound, initializers.torch_uniform])
@pytest.mark.parametrize(
    "fan_in, error, match",
    [
        (-4, ValueError, r"`fan_in` must be an int >= 0, got -4"),
        (math.nan, TypeError, r"`fan_in` must be an int, got float nan"),
        ("4", TypeError, r"`fan_in` must be an int, got str '4'"),
        (2.5, TypeError, r"`fan_in` must be an int, got float 2.5"),
    ],
)
def test_torch_uniform_fan_in(fn, fan_in, error, match):
    """A negative fan_in used to give bound 0 (all-zero weights); torch cannot build such a layer."""
    with pytest.raises(error, match=match):
        fn(fan_in)


@pytest.mark.parametrize(
    "std, error, match",
    [
        ("0.5", TypeError, r"`std` must be a real number, got str '0.5'"),
        (True, TypeError, r"`std` must be a real number, got bool True"),
        (math.inf, ValueError, r"`std` must be finite, got inf"),
        (math.nan, ValueError, r"`std` must be finite, got nan"),
        (-1.0, ValueError, r"`std` must be >= 0.0, got -1.0"),
    ],
)
def test_normal_std(std, error, match):
    with pytest.raises(error, match=match):
        initializers.normal(std)


# --- jl.parametrizations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "width_mult, output_mult, error, match",
    [
        (0.0, 1.0, ValueError, r"`width_mult` must be > 0.0, got 0.0"),
        (-2.0, 1.0, ValueError, r"`width_mult` must be > 0.0, got -2.0"),
        (math.nan, 1.0, ValueError, r"`width_mult` must be finite, got nan"),
        ("2", 1.0, TypeError, r"`width_mult` must be a real number, got str '2'"),
        (2.0, "a", TypeError, r"`output_mult` must be a real number, got str 'a'"),
        (2.0, math.inf, ValueError, r"`output_mult` must be finite, got inf"),
    ],
)
def test_mup_readout_input(width_mult, output_mult, error, match):
    with pytest.raises(error, match=match):
        parametrizations.mup_readout_input(jnp.ones(2), width_mult, output_mult)
