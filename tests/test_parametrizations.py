"""jl.parametrizations rules and errors, and jl.Linear's parametrized init (statistics)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl
from jaxlinear.parametrizations import (
    MaximalUpdate,
    NeuralTangent,
    Parametrization,
    Standard,
    UnknownOptimizerError,
    ZeroFanError,
    canonical_optimizer,
    get_parametrization,
    mup_readout_input,
    mup_width_mult,
)
from tests import _tail_bounds as tail_bounds

ALL = [Standard(), NeuralTangent(), MaximalUpdate()]


# --- rules (the exact grid against inferno is parity case (a)) --------------------------------


@pytest.mark.parametrize(
    ("p", "layer_type", "std"),
    [
        (Standard(), "output", 1 / 8),
        (NeuralTangent(), "input", 1.0),
        (MaximalUpdate(), "hidden", 1 / 8),
        (MaximalUpdate(), "output", 1 / 64),
    ],
)
def test_weight_init_scale_known_values(p, layer_type, std):
    got = p.weight_init_scale(64, 32, layer_type)
    assert type(got) is float and got == std
    assert p.bias_init_scale(64, 32, layer_type) == 1.0


@pytest.mark.parametrize(
    ("p", "optimizer", "layer_type", "weight", "bias"),
    [
        (Standard(), "adamw", "input", 1.0, 1.0),
        (NeuralTangent(), "sgd", "input", 1.0, 1 / 64),
        (NeuralTangent(), "SGD", "hidden", 1 / 64, 1 / 64),
        (MaximalUpdate(), "sgd", "input", 32.0, 32.0),
        (MaximalUpdate(), "SGD", "hidden", 1.0, 32.0),
        (MaximalUpdate(), "sgd", "output", 1 / 64, 32.0),
        (MaximalUpdate(), "adam", "input", 1.0, 1.0),
        (MaximalUpdate(), "AdamW", "hidden", 1 / 64, 1.0),
        (MaximalUpdate(), "Adam", "output", 1 / 64, 1.0),
    ],
)
def test_lr_scale_known_values(p, optimizer, layer_type, weight, bias):
    assert p.weight_lr_scale(64, 32, optimizer, layer_type) == weight
    got = p.bias_lr_scale(64, 32, optimizer, layer_type)
    assert type(got) is float and got == bias


@pytest.mark.parametrize(("name", "rule"), [("sgd", "SGD"), ("adam", "Adam"), ("adamw", "Adam")])
def test_optimizer_aliases(name, rule):
    assert canonical_optimizer(name) == rule


@pytest.mark.parametrize("p", ALL)
@pytest.mark.parametrize("optimizer", ["rmsprop", "ADAM", "", None, "Sgd"])
def test_unknown_optimizer_raises_for_every_parametrization(p, optimizer):
    with pytest.raises(ValueError, match="`optimizer` must be one of") as info:
        p.bias_lr_scale(8, 4, optimizer)
    assert isinstance(info.value, NotImplementedError)  # inferno's exception type
    assert isinstance(info.value, UnknownOptimizerError)


def test_neural_tangent_adam_raises_not_implemented():
    with pytest.raises(NotImplementedError, match="SGD only"):
        NeuralTangent().weight_lr_scale(8, 4, "adam")
    assert NeuralTangent().bias_lr_scale(8, 4, "adam") == 1 / 8  # as inferno


@pytest.mark.parametrize("p", ALL)
@pytest.mark.parametrize("layer_type", ["Hidden", "bogus", None])
def test_bad_layer_type(p, layer_type):
    with pytest.raises(
        ValueError, match="`layer_type` must be one of \\('input', 'hidden', 'output'\\)"
    ):
        p.weight_init_scale(8, 4, layer_type)


@pytest.mark.parametrize(
    "call",
    [
        lambda: Standard().weight_init_scale(0, 4),
        lambda: MaximalUpdate().weight_lr_scale(0, 4, "adam", "output"),
        lambda: NeuralTangent().bias_lr_scale(0, 4, "sgd"),
    ],
)
def test_zero_fan_raises_like_inferno(call):
    with pytest.raises(ValueError, match="`fan_in` must be > 0") as info:
        call()
    assert isinstance(info.value, ZeroDivisionError) and isinstance(info.value, ZeroFanError)


def test_zero_fan_where_inferno_returns_a_value():
    assert MaximalUpdate().weight_lr_scale(0, 4, "sgd", "input") == 4.0
    assert Standard().weight_lr_scale(0, 0, "sgd") == 1.0


@pytest.mark.parametrize(
    ("fan_in", "error", "match"),
    [("8", TypeError, "real number"), (True, TypeError, "real number"), (-1, ValueError, ">= 0"),
     (math.nan, ValueError, "finite"), (math.inf, ValueError, "finite")],
)  # fmt: skip
def test_bad_fans(fan_in, error, match):
    with pytest.raises(error, match=f"`fan_in` must be .*{match}"):
        Standard().bias_init_scale(fan_in, 4)


def test_float_fans_accepted():
    assert (
        MaximalUpdate().bias_lr_scale(1.0, 16, "sgd", "input") == 16.0
    )  # inferno's norm-layer call


def test_base_class_has_no_rules():
    with pytest.raises(NotImplementedError, match="defines no weight_init_scale"):
        Parametrization().weight_init_scale(4, 4)


def test_equality_hash_repr():
    assert MaximalUpdate() == MaximalUpdate() and hash(Standard()) == hash(Standard())
    assert MaximalUpdate() != Standard() and repr(NeuralTangent()) == "NeuralTangent()"


@pytest.mark.parametrize(
    ("name", "cls"),
    [("sp", Standard), ("standard", Standard), ("ntp", NeuralTangent), ("mup", MaximalUpdate)],
)
def test_get_parametrization_names(name, cls):
    assert type(get_parametrization(name)) is cls


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (MaximalUpdate, TypeError, "must be an instance, e.g. MaximalUpdate\\(\\)"),
        ("muP", ValueError, "`parametrization` must be one of"),
        (3, TypeError, "`parametrization` must be a jaxlinear.parametrizations.Parametrization"),
    ],
)
def test_get_parametrization_errors(value, error, match):
    with pytest.raises(error, match=match):
        get_parametrization(value)


def test_mup_readout_helpers():
    assert mup_width_mult(256, 64) == 4.0 and mup_width_mult(8, 8) == 1.0
    x = jnp.ones((3,), jnp.bfloat16)
    y = mup_readout_input(x, 4.0, output_mult=2.0)
    assert y.dtype == jnp.bfloat16 and y.tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="`base_fan_in` must be > 0"):
        mup_width_mult(8, 0)


# --- jl.Linear with a parametrization: init statistics ----------------------------------------

N_IN, N_OUT = 256, 256


@pytest.mark.parametrize("p", ALL)
@pytest.mark.parametrize("layer_type", ["input", "hidden", "output"])
def test_linear_init_is_normal_with_the_parametrizations_std(p, layer_type):
    """Fixed keys; for any key each of the four statistical assertions fails with probability
    <= FAIL = 2.5e-7 for a correct init (1e-6 per test), see tests/_tail_bounds.py."""
    fail = 2.5e-7
    layer = jl.Linear(N_OUT, parametrization=p, layer_type=layer_type)
    params = layer.init(jax.random.key(1), jnp.ones((1, N_IN)))["params"]
    w = np.asarray(params["kernel"], np.float64)
    std = p.weight_init_scale(N_IN, N_OUT, layer_type)
    lo, hi = tail_bounds.chi2_std_bounds(w.size - 1, fail)  # exact: 65535 dof
    assert lo < w.std(ddof=1) / std < hi
    assert abs(w.mean()) < tail_bounds.gaussian_mean_bound(w.size, fail) * std
    # untruncated (a truncated normal stops at 2 std)
    assert np.abs(w).max() / std > tail_bounds.gaussian_abs_max_lower(w.size, fail) > 3
    # the bias std (1 for all three) on a wider layer
    wide = jl.Linear(8192, parametrization=p, layer_type=layer_type)
    b = np.asarray(wide.init(jax.random.key(2), jnp.ones((1, 3)))["params"]["bias"], np.float64)
    b_std = p.bias_init_scale(3, 8192, layer_type)
    lo, hi = tail_bounds.chi2_std_bounds(b.size - 1, fail)
    assert lo < b.std(ddof=1) / b_std < hi


def test_linear_without_parametrization_keeps_torch_init():
    k = jl.Linear(64).init(jax.random.key(0), jnp.ones((1, 16)))["params"]["kernel"]
    assert float(jnp.abs(k).max()) <= 0.25 and float(jnp.abs(k).max()) > 0.24  # U(±1/4)


def test_linear_parametrization_by_name_and_bf16():
    layer = jl.Linear(5, parametrization="mup", layer_type="output", param_dtype=jnp.bfloat16)
    v = layer.init(jax.random.key(0), jnp.ones((2, 7)))
    assert v["params"]["kernel"].dtype == jnp.bfloat16
    assert layer.apply(v, jnp.ones((2, 7))).shape == (2, 5)


def test_linear_forward_has_no_multiplier():
    layer = jl.Linear(3, parametrization=NeuralTangent(), layer_type="hidden")
    v = layer.init(jax.random.key(0), jnp.ones((1, 4)))
    x = jnp.arange(8.0).reshape(2, 4)
    want = x @ v["params"]["kernel"] + v["params"]["bias"].reshape(1, -1)
    np.testing.assert_array_equal(layer.apply(v, x), want)


def test_linear_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="`layer_type` must be one of"):
        jl.Linear(3, layer_type="readout")
    with pytest.raises(TypeError, match="must be an instance"):
        jl.Linear(3, parametrization=MaximalUpdate)
    with pytest.raises(ValueError, match="`parametrization` must be one of"):
        jl.Linear(3, parametrization="nope")


def test_linear_zero_fan_in_with_parametrization_raises_clearly():
    with pytest.raises(ValueError, match="`fan_in` must be > 0"):
        jl.Linear(3, parametrization="mup").init(jax.random.key(0), jnp.ones((1, 0)))


# --- interop with inferno's state_dict keys (no torch needed) -----------------------------------


def _inferno_state(n_in=4, n_out=3, temperature=1.0):
    rng = np.random.default_rng(0)
    return {
        "params.weight": rng.standard_normal((n_out, n_in)).astype(np.float32),
        "params.bias": rng.standard_normal(n_out).astype(np.float32),
        "params.temperature": np.array([temperature], np.float32),
    }


def test_from_torch_inferno_keys_and_round_trip():
    layer = jl.Linear(3, parametrization=MaximalUpdate(), layer_type="output")
    sd = _inferno_state()
    v = jl.interop.from_torch(layer, sd)
    np.testing.assert_array_equal(v["params"]["kernel"], sd["params.weight"].T)
    back = jl.interop.to_torch(layer, v)
    assert sorted(back) == ["params.bias", "params.temperature", "params.weight"]
    np.testing.assert_array_equal(back["params.weight"], sd["params.weight"])
    plain = jl.interop.to_torch(jl.Linear(3), v)
    assert sorted(plain) == ["bias", "weight"]


def test_from_torch_inferno_rejects_temperature_and_bad_keys():
    layer = jl.Linear(3, parametrization=MaximalUpdate(), layer_type="output")
    with pytest.raises(ValueError, match="temperature.*must be \\[1.0\\]"):
        jl.interop.from_torch(layer, _inferno_state(temperature=2.0))
    hidden = jl.Linear(3, parametrization=MaximalUpdate())
    with pytest.raises(KeyError, match="unexpected \\['params.temperature'\\]"):
        jl.interop.from_torch(hidden, _inferno_state())


def test_mup_attention_scale_and_attention():
    from jaxlinear.parametrizations import mup_attention_scale, mup_dot_product_attention

    assert mup_attention_scale(16) == 1 / 16 and mup_attention_scale(16, attn_mult=4.0) == 0.25
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="head_dim"):
            mup_attention_scale(bad)
    with pytest.raises(TypeError, match="attn_mult"):
        mup_attention_scale(8, attn_mult="1")
    q, k, v = (jax.random.normal(jax.random.key(i), (2, 5, 2, 8)) for i in range(3))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * 3.0 / 8  # attn_mult 3, 1/head_dim
    want = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, -1), v)
    got = mup_dot_product_attention(q, k, v, attn_mult=3.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_mup_zero_init():
    from jaxlinear.parametrizations import mup_zero_init

    v = {"params": {"blk": {"q": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}},
                    "head": {"kernel": jnp.ones((2, 3))}}, "stats": {"n": jnp.ones(1)}}  # fmt: skip
    z = mup_zero_init(v, "blk/q", "head")
    assert (
        float(z["params"]["blk"]["q"]["kernel"].sum())
        == 0.0
        == float(z["params"]["head"]["kernel"].sum())
    )
    assert float(v["params"]["head"]["kernel"].sum()) == 6.0 and z["stats"] is v["stats"]
    assert float(mup_zero_init(v["params"], "head")["head"]["kernel"].sum()) == 0.0
    with pytest.raises(ValueError, match="'blk/x'"):
        mup_zero_init(v, "blk/x")
    with pytest.raises(ValueError, match="at least one layer"):
        mup_zero_init(v)
