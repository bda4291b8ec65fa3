"""Capacity buckets (growth that rarely recompiles) and optimizer state carried across growth."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlinear as jl
from tests._compiles import count_compiles

G = jl.growing


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def _data(n=256, d_in=6, d_out=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in), dtype=np.float32)
    y = np.sin(x @ rng.standard_normal((d_in, d_out), dtype=np.float32))
    return [(jnp.asarray(x[i : i + 64]), jnp.asarray(y[i : i + 64])) for i in range(0, n, 64)]


def _inactive_are_zero(model, variables):
    widths = G.active_widths(model, variables)
    params = variables["params"]
    for i in range(model.num_layers):
        kernel = np.asarray(params[f"layers_{i}"]["kernel"])
        assert not kernel[widths[i] :].any() and not kernel[:, widths[i + 1] :].any()
        assert not np.asarray(params[f"layers_{i}"]["bias"])[widths[i + 1] :].any()


def test_bucketed_growth_is_the_unbucketed_growth(act="selu"):
    """Same layer, neurons and γ at every step; the same network (to float rounding).

    A bucketed chain runs beside the plain one (its own buckets filling); each step is also
    compared from the same start (the plain params padded), where the results must agree to the
    parity cases' growth tolerance.
    """
    batches = _data()
    plain = G.GrowingMLP(6, 2, (1, 2), 2, act)
    params = plain.init(jax.random.key(0), batches[0][0])["params"]
    chain, chain_vars = G.pad(plain, params, capacity=2)
    x = jnp.concatenate([b[0] for b in batches])
    for _ in range(3):
        bucketed, variables = G.pad(plain, params, capacity=chain.capacity)
        chain, chain_vars, cstep = G.grow(
            chain, chain_vars, batches, mse, loss_reduction="mean", maximum_added_neurons=3
        )
        bucketed, variables, bstep = G.grow(
            bucketed, variables, batches, mse, loss_reduction="mean", maximum_added_neurons=3
        )
        plain, params, step = G.grow(
            plain, params, batches, mse, loss_reduction="mean", maximum_added_neurons=3
        )
        for other in (bstep, cstep):
            assert (other.layer_index, other.added_neurons, other.gamma) == (
                step.layer_index,
                step.added_neurons,
                step.gamma,
            )
        assert chain.capacity == bucketed.capacity
        # the solves run on padded matrices (other LAPACK blockings): the parity cases' tolerance
        np.testing.assert_allclose(bstep.losses, step.losses, rtol=1e-4, atol=1e-5)
        assert G.active_widths(bucketed, variables) == plain.widths
        assert G.active_widths(chain, chain_vars) == plain.widths
        _inactive_are_zero(bucketed, variables)
        _inactive_are_zero(chain, chain_vars)
        unpadded, unpadded_params = G.unpad(bucketed, variables)
        assert unpadded == plain
        for a, b in zip(jax.tree.leaves(unpadded_params), jax.tree.leaves(params), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        # The padded forward is the unpadded one's function. Its outputs agree to float rounding,
        # not bit for bit: XLA's CPU GEMM sums a zero-padded contraction in another order
        # (measured: 107 of 480 shapes differ by up to 4e-6).
        np.testing.assert_allclose(
            bucketed.apply(variables, x),
            unpadded.apply({"params": unpadded_params}, x),
            rtol=1e-6,
            atol=1e-6,
        )
    assert chain.capacity != (2, 2)  # a bucket filled on the way


def test_growth_within_a_bucket_compiles_nothing():
    batches = _data()
    model = G.GrowingMLP(6, 2, (2, 2), 2, "tanh", capacity=64)
    variables = model.init(jax.random.key(0), batches[0][0])
    model, variables, _ = G.grow(
        model, variables, batches, mse, loss_reduction="mean", maximum_added_neurons=2
    )
    stats = G.init_statistics(model)
    for x, y in batches:
        stats = G.update_statistics(model, variables, stats, x, y, mse, "mean")
    for u in G.compute_optimal_updates(model, stats, maximum_added_neurons=2):  # every layer once
        G.line_search(model, variables, u, batches, mse)
        G.apply_change(model, variables, u, 0.5)
    assert model.capacity == (64, 64)
    # every program of every layer compiled once: a growth step in the bucket compiles nothing
    with count_compiles() as compiled:
        model, variables, _ = G.grow(
            model, variables, batches, mse, loss_reduction="mean", maximum_added_neurons=2
        )
    assert compiled == []


def test_training_leaves_inactive_neurons_at_zero():
    batches = _data()
    model = G.GrowingMLP(6, 2, (3, 2), 2, "sigmoid", capacity=8)  # sigmoid(0) = 0.5 != 0
    variables = model.init(jax.random.key(0), batches[0][0])
    opt = optax.adamw(1e-2)
    state = opt.init(variables["params"])

    def loss(p, growth, x, y):
        return mse(model.apply({"params": p, "growth": growth}, x), y)

    for x, y in batches * 3:
        grads = jax.grad(loss)(variables["params"], variables["growth"], x, y)
        updates, state = opt.update(grads, state, variables["params"])
        variables = {**variables, "params": optax.apply_updates(variables["params"], updates)}
    _inactive_are_zero(model, variables)


def test_opt_state_survives_growth():
    """Adam's moments of the old params are kept bit for bit; the new ones start at zero."""
    batches = _data()
    model = G.GrowingMLP(6, 2, 3, 1, "tanh")
    params = model.init(jax.random.key(0), batches[0][0])["params"]
    opt = optax.adam(1e-2)
    state = opt.init(params)

    def loss(p, x, y):
        return mse(model.apply({"params": p}, x), y)

    for x, y in batches:
        grads = jax.grad(loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    new_model, new_params, step = G.grow(
        model, params, batches, mse, loss_reduction="mean", opt_state=state
    )
    k = step.added_neurons
    assert k > 0
    new_state = step.opt_state
    for old, new in ((state[0].mu, new_state[0].mu), (state[0].nu, new_state[0].nu)):
        k0, b0, k1 = (
            np.asarray(new["layers_0"]["kernel"]),
            np.asarray(new["layers_0"]["bias"]),
            np.asarray(new["layers_1"]["kernel"]),
        )
        np.testing.assert_array_equal(k0[:, :3], old["layers_0"]["kernel"])
        np.testing.assert_array_equal(b0[:3], old["layers_0"]["bias"])
        np.testing.assert_array_equal(k1[:3], old["layers_1"]["kernel"])
        np.testing.assert_array_equal(new["layers_1"]["bias"], old["layers_1"]["bias"])
        assert not k0[:, 3:].any() and not b0[3:].any() and not k1[3:].any()
        assert k0.shape == new_params["layers_0"]["kernel"].shape
    assert int(new_state[0].count) == int(state[0].count) == len(batches)
    # Adam continues on the grown params
    x, y = batches[0]
    grads = jax.grad(lambda p: mse(new_model.apply({"params": p}, x), y))(new_params)
    updates, _ = opt.update(grads, new_state, new_params)
    assert all(np.isfinite(u).all() for u in jax.tree.leaves(updates))
    assert G.grow_opt_state(state, params) is not state  # a new tree, the same arrays
    assert all(
        a is b
        for a, b in zip(
            jax.tree.leaves(G.grow_opt_state(state, params)), jax.tree.leaves(state), strict=True
        )
    )


def test_opt_state_of_a_bucketed_model():
    batches = _data()
    model = G.GrowingMLP(6, 2, 2, 1, "tanh", capacity=4)
    variables = model.init(jax.random.key(0), batches[0][0])
    state = optax.sgd(1e-2, momentum=0.9).init(variables["params"])
    state = jax.tree.map(lambda a: a + 1.0 if a.dtype == jnp.float32 else a, state)
    model2, variables2, step = G.grow(
        model, variables, batches, mse, loss_reduction="mean", opt_state=state
    )
    grown = jax.tree.leaves(step.opt_state)
    if model2.capacity == model.capacity:  # same shapes: the state is the same
        for a, b in zip(grown, jax.tree.leaves(state), strict=True):
            np.testing.assert_array_equal(a, b)
    for a, p in zip(grown, jax.tree.leaves(variables2["params"]), strict=True):
        assert a.shape == p.shape
    with pytest.raises(ValueError, match="larger than `params`"):
        G.grow_opt_state(step.opt_state, jax.tree.map(lambda a: a[..., :1], variables2["params"]))
