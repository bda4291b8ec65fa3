import jax
import jax.numpy as jnp
import optax
import pytest

from jaxlinear.optim import scale_by_lr_factors


def test_scales_each_leaf_and_keeps_dtype():
    updates = {"a": jnp.ones((2, 3), jnp.bfloat16), "b": jnp.full((3,), 2.0)}
    tx = scale_by_lr_factors({"a": 0.25, "b": 3.0})
    out, _ = tx.update(updates, tx.init(updates))
    assert out["a"].dtype == jnp.bfloat16
    assert float(out["a"][0, 0]) == 0.25 and float(out["b"][0]) == 6.0


def test_callable_factors_see_the_updates():
    tx = scale_by_lr_factors(lambda u: {k: 1.0 / v.shape[0] for k, v in u.items()})
    out, _ = tx.update({"a": jnp.ones(4)}, optax.EmptyState())
    assert float(out["a"][0]) == 0.25


def test_mismatched_tree_is_an_error():
    tx = scale_by_lr_factors({"a": 1.0})
    with pytest.raises(ValueError, match="`factors` must have the same tree structure"):
        tx.update({"a": jnp.ones(2), "b": jnp.ones(2)}, optax.EmptyState())


def test_per_leaf_weight_decay():
    from jaxlinear.optim._weight_decay import add_decayed_weights_per_leaf

    p = {"a": jnp.full(2, 2.0, jnp.bfloat16), "b": jnp.ones(2)}
    tx = add_decayed_weights_per_leaf({"a": 0.25, "b": 0.0})
    u, _ = tx.update(jax.tree.map(jnp.zeros_like, p), tx.init(p), p)
    assert u["a"].dtype == jnp.bfloat16 and float(u["a"][0]) == 0.5 and float(u["b"][0]) == 0.0
    with pytest.raises(ValueError, match="`params` must be passed"):
        tx.update(p, tx.init(p))
    with pytest.raises(ValueError, match="`weight_decays` must have the same tree structure"):
        add_decayed_weights_per_leaf({"a": 0.1}).update(p, optax.EmptyState(), p)
