"""Properties of the unit-scaled ops of ``jl.scaling`` (parity: parity/cases/unit_scaling_ops.py).

Statistical checks use fixed seeds (deterministic), on the reference's own tests' protocol:
unit-normal inputs and cotangents, std within 0.1 of the target.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlinear import scaling


def _std(x) -> float:
    return float(jnp.std(x.astype(jnp.float32), ddof=1))


def _unit_vjp(f, *xs, seed=0):
    y, vjp = jax.vjp(f, *xs)
    g = jax.random.normal(jax.random.key(seed), y.shape, y.dtype)
    return y, vjp(g)


@pytest.mark.parametrize("op", ["gelu", "silu"])
@pytest.mark.parametrize("mult", [0.25, 1.0, 4.0])
def test_activations_are_unit_scaled_unconstrained(op, mult):
    x = jax.random.normal(jax.random.key(1), (1024, 256))
    y, (dx,) = _unit_vjp(lambda v: getattr(scaling, op)(v, mult=mult, constraint=None), x)
    assert abs(_std(y) - 1) < 0.1
    assert abs(_std(dx) - 1) < 0.1


def test_relu_recipe_in_the_docs_is_unit_scaled():
    s_out = 2**0.5 / (1 - 1 / math.pi) ** 0.5
    relu = scaling.scale_elementwise(jax.nn.relu, s_out, 2**0.5, constraint=None)
    x = jax.random.normal(jax.random.key(2), (1024, 256))
    y, (dx,) = _unit_vjp(relu, x)
    assert abs(_std(y) - 1) < 0.05 and abs(_std(dx) - 1) < 0.05
    plain, (dplain,) = _unit_vjp(jax.nn.relu, x)  # what the docs say relu alone loses
    assert abs(_std(plain) - 0.584) < 0.01 and abs(_std(dplain) - 2**-0.5) < 0.01


def test_silu_glu_and_matmul_and_add_are_unit_scaled():
    k = jax.random.split(jax.random.key(3), 4)
    a, b = jax.random.normal(k[0], (512, 256)), jax.random.normal(k[1], (512, 256))
    y, (da, db) = _unit_vjp(lambda u, v: scaling.silu_glu(u, v), a, b)
    assert abs(_std(y) - 1) < 0.2 and abs(_std(da) - 1) < 0.2 and abs(_std(db) - 1) < 0.2
    m = jax.random.normal(k[2], (256, 384))
    y, (dl, dr) = _unit_vjp(lambda u, v: scaling.matmul(u, v, constraint=None), a, m)
    assert all(abs(_std(t) - 1) < 0.1 for t in (y, dl, dr))
    y, (dl, dr) = _unit_vjp(lambda u, v: scaling.add(u, v, constraint=None), a, b[0])
    assert all(abs(_std(t) - 1) < 0.1 for t in (y, dl, dr))


@pytest.mark.parametrize("tau", [0.2, 1.0, 3.0])
def test_residual_with_unit_branch_is_unit_scaled(tau):
    x = jax.random.normal(jax.random.key(4), (512, 128))
    k = jax.random.normal(jax.random.key(5), (128, 128))
    branch = lambda v: scaling.linear(v, k, constraint=None)
    y, (dx,) = _unit_vjp(lambda v: scaling.residual_apply(branch, v, tau), x)
    assert abs(_std(y) - 1) < 0.1 and abs(_std(dx) - 1) < 0.1


def test_residual_weights_square_to_one_and_favour_the_residual_for_large_tau():
    for tau in (0.0, 0.3, 1.0, 7.0):
        r, s = scaling.residual_weights(tau)
        assert r**2 + s**2 == pytest.approx(1.0)
    assert scaling.residual_weights(3.0)[0] > scaling.residual_weights(3.0)[1]


def test_losses_have_unit_input_gradients():
    x = jax.random.normal(jax.random.key(6), (256, 1000))
    t = jax.random.randint(jax.random.key(7), (256,), 0, 1000)
    loss, (dx,) = _unit_vjp(lambda v: scaling.cross_entropy(v, t), x)
    dx = jax.grad(lambda v: scaling.cross_entropy(v, t))(x)
    assert abs(_std(dx) - 1) < 0.1
    y = jax.random.normal(jax.random.key(8), (256, 64))
    dx, dy = jax.grad(scaling.mse_loss, argnums=(0, 1))(y, jnp.zeros_like(y))
    assert abs(_std(dx) - 1 / 2**0.5) < 0.1  # 2(x - 0)/√8 for a zero target: std 1/√2


def test_dropout_needs_a_key_and_is_deterministic_given_one():
    x = jnp.ones((4, 8))
    with pytest.raises(ValueError, match="`key` must be a PRNG key"):
        scaling.dropout(x, 0.5)
    a = scaling.dropout(x, 0.5, key=jax.random.key(0))
    assert jnp.array_equal(a, scaling.dropout(x, 0.5, key=jax.random.key(0)))
    assert set(np.unique(np.asarray(a)).tolist()) <= {0.0, float(np.float32(2 * 0.5**0.5))}
    with pytest.raises(ValueError, match="`p` must be a float in"):
        scaling.dropout(x, 1.5, key=jax.random.key(0))


def test_ops_jit_and_keep_dtype():
    x = jnp.ones((2, 8), jnp.bfloat16)
    for f in (scaling.gelu, scaling.silu, scaling.softmax, lambda v: scaling.rms_norm(v, 8)):
        assert jax.jit(f)(x).dtype == jnp.bfloat16


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: scaling.gelu(jnp.ones(2), approximate="fast"), ValueError, "`approximate`"),
        (lambda: scaling.gelu(jnp.ones(2), mult=0.0), ValueError, "`mult` must be"),
        (lambda: scaling.silu(jnp.ones(2, jnp.int32)), TypeError, "`x` must be a floating"),
        (lambda: scaling.silu_glu(jnp.ones(2), jnp.ones(3)), ValueError, "`gate` must have"),
        (lambda: scaling.softmax(jnp.ones(2), axis=1), ValueError, "`axis` must be"),
        (lambda: scaling.add(jnp.ones(2), jnp.ones(3)), ValueError, "`right` must broadcast"),
        (
            lambda: scaling.add(jnp.ones(2), jnp.ones(2), "to_grad_input_scale"),
            ValueError,
            "`constraint` must be one of",
        ),
        (
            lambda: scaling.matmul(jnp.ones((2, 3)), jnp.ones((4, 2))),
            ValueError,
            "`right` must have shape",
        ),
        (lambda: scaling.matmul(jnp.ones(3), jnp.ones((3, 2))), ValueError, "at least 2 dims"),
        (
            lambda: scaling.layer_norm(jnp.ones((2, 3)), 4),
            ValueError,
            "`x` must have trailing shape",
        ),
        (
            lambda: scaling.rms_norm(jnp.ones((2, 3)), 3, jnp.ones(4)),
            ValueError,
            "`weight` must have shape",
        ),
        (lambda: scaling.embedding(jnp.ones(2), jnp.ones((3, 2))), TypeError, "`indices`"),
        (
            lambda: scaling.embedding(jnp.array([0]), jnp.ones((3, 2)), padding_idx=3),
            ValueError,
            "`padding_idx` must be in",
        ),
        (
            lambda: scaling.mse_loss(jnp.ones(2), jnp.ones(3)),
            ValueError,
            "`target` must have the shape",
        ),
        (
            lambda: scaling.mse_loss(jnp.ones(2), jnp.ones(2), reduction="none"),
            ValueError,
            "`reduction` must be one of",
        ),
        (
            lambda: scaling.cross_entropy(jnp.ones((2, 3, 4)), jnp.zeros(2, int)),
            ValueError,
            "`x` must have shape",
        ),
        (
            lambda: scaling.cross_entropy(jnp.ones((2, 1)), jnp.zeros(2, int)),
            ValueError,
            "at least 2 classes",
        ),
        (
            lambda: scaling.scaled_dot_product_attention(
                jnp.ones((2, 4)), jnp.ones((3, 4)), jnp.ones((2, 4))
            ),
            ValueError,
            "`key` must have shape",
        ),
        (
            lambda: scaling.scaled_dot_product_attention(
                jnp.ones((2, 4)), jnp.ones((2, 4)), jnp.ones((2, 4)), dropout_p=0.1
            ),
            ValueError,
            "`dropout_key`",
        ),
        (lambda: scaling.residual_split(jnp.ones(2), tau=-1.0), ValueError, "`tau` must be"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_ternary_constraints():
    assert scaling.apply_constraint("to_left_grad_scale", 1.0, 2.0, 3.0) == (2.0, 2.0, 2.0)
    assert scaling.apply_constraint("to_right_grad_scale", 1.0, 2.0, 3.0) == (3.0, 3.0, 3.0)
    with pytest.raises(ValueError, match="`constraint` must be one of"):
        scaling.apply_constraint("to_right_grad_scale", 1.0, 2.0)


def test_embedding_padding_row_gets_no_gradient():
    w = jnp.ones((5, 3))
    g = jax.grad(lambda t: scaling.embedding(jnp.array([0, 4, 4]), t, padding_idx=-1).sum())(w)
    assert float(jnp.abs(g[4]).max()) == 0.0 and float(g[0, 0]) == pytest.approx((5 / 3) ** 0.5)


def test_attention_masks_broadcast_explicitly():
    q = jax.random.normal(jax.random.key(9), (2, 3, 5, 4))
    causal = scaling.scaled_dot_product_attention(q, q, q, is_causal=True)
    mask = jnp.tril(jnp.ones((5, 5), bool))
    # the same masked values; only the scaling rule differs (causal uses log(S)/S in its model)
    masked = scaling.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    ratio = causal / masked
    assert float(jnp.std(ratio)) < 1e-5
    with pytest.raises(ValueError, match="`attn_mask` must be None when is_causal"):
        scaling.scaled_dot_product_attention(q, q, q, attn_mask=mask, is_causal=True)
