"""FPFormat / cast / simulate_format (parity with the reference: parity/cases/unit_scaling_formats.py)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxlinear as jl
from jaxlinear.scaling import FPFormat, cast, cast_bwd, simulate_format, simulate_fp8

E4M3 = FPFormat(4, 3, "nearest")
E5M2 = FPFormat(5, 2, "nearest")


def test_format_properties_and_validation():
    assert FPFormat(4, 3).srbits == 20 and FPFormat(4, 3).rounding == "stochastic"
    assert E5M2.max_absolute_value == 57344.0 and E4M3.bits == 8
    for kwargs, match in [
        ({"exponent_bits": 1, "mantissa_bits": 3}, "`exponent_bits`"),
        ({"exponent_bits": 8, "mantissa_bits": 3}, "`exponent_bits`"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "rounding": "up"}, "`rounding`"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "rounding": "nearest", "srbits": 2}, "`srbits`"),
    ]:
        with pytest.raises(ValueError, match=match):
            FPFormat(**kwargs)


def test_cast_rounds_ties_toward_zero_saturates_and_keeps_dtype():
    x = jnp.array([1.0625, -1.0625, 1.1875, 1e6, -jnp.inf, 2.0**-11], jnp.float32)
    assert cast(x, E4M3).tolist() == [1.0, -1.0, 1.125, 240.0, -240.0, 0.0]  # RNE: 1.25
    xb = x.astype(jnp.bfloat16)
    assert cast(xb, E4M3).dtype == jnp.bfloat16
    assert cast(jnp.array([500.0]), jnp.float8_e4m3fn).tolist() == [448.0]  # saturating cast


def test_stochastic_rounding_needs_a_key_and_is_unbiased_on_average():
    with pytest.raises(ValueError, match="`key` must be a PRNG key"):
        cast(jnp.ones(2), FPFormat(4, 3))
    x = jnp.full((100_000,), 1.03125)  # a quarter of the way from 1 to 1.125 in E4M3
    y = cast(x, FPFormat(4, 3), key=jax.random.key(0))
    assert set(jnp.unique(y).tolist()) == {1.0, 1.125}
    # P(up) = 1/4 (up to the reference's half-ulp bias correction); fixed key, so deterministic
    assert abs(float(jnp.mean(y == 1.125)) - 0.25) < 0.01


def test_cast_gradients():
    g = jax.grad(lambda v: cast(v, E4M3).sum())(jnp.array([1.0625]))
    assert g.tolist() == [1.0]  # straight through
    g = jax.grad(lambda v: (cast_bwd(v, E5M2) * 1e-9).sum())(jnp.ones(2))
    assert g.tolist() == [0.0, 0.0]  # below E5M2's smallest subnormal


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = jl.scaling.gelu(jl.UnitScaledLinear(32)(x))
        return nn.Dense(4)(x)


def test_simulate_rounds_every_matmul_of_a_flax_model_under_jit_and_grad():
    model = _MLP()
    x = jax.random.normal(jax.random.key(0), (8, 16)) * 3
    params = model.init(jax.random.key(1), x)
    sim = simulate_format(model.apply, E4M3, E5M2)

    def manual(p, x):
        k1, k2 = p["params"]["UnitScaledLinear_0"]["kernel"], p["params"]["Dense_0"]["kernel"]
        h = jl.scaling.gelu(jl.scaling.linear(cast(x, E4M3), cast(k1, E4M3)))
        return cast(h, E4M3) @ cast(k2, E4M3) + p["params"]["Dense_0"]["bias"][None]

    got = jax.jit(sim)(params, x)
    assert jnp.array_equal(got, manual(params, x))
    assert not jnp.array_equal(got, model.apply(params, x))
    loss = lambda p: jnp.sum(sim(p, x) ** 2)
    grads = jax.jit(jax.grad(loss))(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)


def test_simulate_fp8_needs_a_key_for_stochastic_rounding_and_handles_scan():
    f = lambda a, b: a @ b
    with pytest.raises(ValueError, match="`rounding_key` must be a PRNG key"):
        simulate_fp8(f)(jnp.ones((2, 2)), jnp.ones((2, 2)))
    y = simulate_fp8(f)(jnp.ones((2, 2)) * 1.03, jnp.ones((2, 2)), rounding_key=jax.random.key(0))
    assert y.shape == (2, 2)

    def scanned(x, ws):
        return jax.lax.scan(lambda h, w: (h @ w, None), x, ws)[0]

    x, ws = jnp.full((1, 1), 1.0625), jnp.ones((3, 1, 1))
    assert simulate_format(scanned, E4M3, None)(x, ws).tolist() == [[1.0]]
    assert scanned(x, ws).tolist() == [[1.0625]]
