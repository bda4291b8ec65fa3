"""``grow`` without ``capacity`` runs in automatic buckets: unpadded results, few compilations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlinear as jl
from jaxlinear.growing._model import check_params
from tests._compiles import count_compiles

G = jl.growing


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 6), dtype=np.float32)
    y = np.sin(x @ rng.standard_normal((6, 2), dtype=np.float32))
    return [(jnp.asarray(x[i : i + 64]), jnp.asarray(y[i : i + 64])) for i in (0, 64)]


def test_default_growth_is_the_bucketed_growth_unpadded(batches):
    plain = G.GrowingMLP(6, 2, (1, 2), 2, "tanh")
    params = plain.init(jax.random.key(0), batches[0][0])["params"]
    bucketed, variables = G.pad(plain, params)
    for _ in range(2):
        plain, params, step = G.grow(
            plain, params, batches, mse, loss_reduction="mean", maximum_added_neurons=2
        )
        bucketed, variables, bstep = G.grow(
            bucketed, variables, batches, mse, loss_reduction="mean", maximum_added_neurons=2
        )
        assert plain.capacity is None
        check_params(plain, params)  # unpadded: the params are at the model's widths
        assert (step.layer_index, step.added_neurons, step.gamma) == (
            bstep.layer_index,
            bstep.added_neurons,
            bstep.gamma,
        )
        unpadded, unpadded_params = G.unpad(bucketed, variables)
        assert unpadded.widths == plain.widths
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(unpadded_params), strict=True):
            np.testing.assert_array_equal(a, b)


def test_default_growth_compiles_only_when_a_bucket_fills(batches):
    model = G.GrowingMLP(6, 2, 1, 1, "tanh")  # one growable layer: the same programs every step
    params = model.init(jax.random.key(0), batches[0][0])["params"]
    model, params, _ = G.grow(
        model, params, batches, mse, loss_reduction="mean", maximum_added_neurons=1
    )
    with count_compiles() as compiled:
        for _ in range(3):  # widths 3, 4, 5: all in the bucket of 8
            model, params, step = G.grow(
                model, params, batches, mse, loss_reduction="mean", maximum_added_neurons=1
            )
            assert step.added_neurons == 1
    assert model.widths == (6, 5, 2)
    assert compiled == []


def test_default_growth_carries_the_optimizer_state(batches):
    model = G.GrowingMLP(6, 2, 3, 1, "tanh")
    params = model.init(jax.random.key(0), batches[0][0])["params"]
    state = optax.adam(1e-2).init(params)
    new_model, new_params, step = G.grow(
        model, params, batches, mse, loss_reduction="mean", opt_state=state
    )
    assert jax.tree.map(jnp.shape, step.opt_state[0].mu) == jax.tree.map(jnp.shape, new_params)


def test_variables_in_variables_out(batches):
    model = G.GrowingMLP(6, 2, 3, 1, "tanh")
    variables = model.init(jax.random.key(0), batches[0][0])
    new_model, new_variables, _ = G.grow(model, variables, batches, mse, loss_reduction="mean")
    assert set(new_variables) == {"params"}
    check_params(new_model, new_variables["params"])
