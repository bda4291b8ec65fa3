"""Behaviour of ``jl.growing`` beyond the gromo parity cases: errors, grad, FO, apply_change."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl

G = jl.growing


def sse(pred, y):
    return jnp.sum((pred - y) ** 2)


def _setup(hidden=2, layers=1, act="tanh", n=64, seed=0):
    model = G.GrowingMLP(5, 3, hidden, layers, act)
    x = jax.random.normal(jax.random.key(seed), (n, 5))
    y = jnp.sin(x[:, :3] * 2.0)
    params = model.init(jax.random.key(seed + 1), x)["params"]
    stats = G.update_statistics(model, params, G.init_statistics(model), x, y, sse)
    return model, params, x, y, stats


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`activation` must be one of .* or a JAX callable"):
        G.GrowingMLP(5, 3, 2, 1, "softplus")
    with pytest.raises(TypeError, match="`activation` must be one of"):
        G.GrowingMLP(5, 3, 2, 1, 3.0)
    with pytest.raises(ValueError, match="`hidden_features` must have 2 widths"):
        G.GrowingMLP(5, 3, (2,), 2)
    with pytest.raises(ValueError, match="`tensor_m` must have shape"):
        G.compute_optimal_delta(jnp.eye(3), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="`tensor_s` must be a square matrix"):
        G.compute_optimal_delta(jnp.ones((3, 2)), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="`maximum_added_neurons` must be an int >= 0"):
        G.compute_optimal_added_parameters(jnp.eye(3), jnp.ones((3, 2)), maximum_added_neurons=-1)
    with pytest.raises(ValueError, match="must not both be > 0"):
        G.add_parameters({"kernel": jnp.zeros((2, 3))}, None, None, 1, 1)
    with pytest.raises(ValueError, match="`x_ext` must be given"):
        G.layer_extended_forward(
            {"kernel": jnp.zeros((2, 3))}, jnp.ones((1, 2)), extended_input=jnp.ones((3, 1))
        )
    model, params, x, y, stats = _setup()
    with pytest.raises(ValueError, match="`loss_reduction` must be one of"):
        G.update_statistics(model, params, stats, x, y, sse, "none")
    with pytest.raises(TypeError, match="`model` must be a jaxlinear.growing.GrowingMLP"):
        G.init_statistics(jl.Linear(3))
    with pytest.raises(ValueError, match="`x` must have 5 features"):
        model.apply({"params": params}, jnp.ones((2, 4)))


def test_mean_loss_is_rescaled_to_the_summed_loss():
    model, params, x, y, stats = _setup()
    mse_rows = lambda pred, t: jnp.sum((pred - t) ** 2) / pred.shape[0]  # noqa: E731
    stats_mean = G.update_statistics(
        model, params, G.init_statistics(model), x, y, mse_rows, "mean"
    )
    for a, b in zip(jax.tree.leaves(stats), jax.tree.leaves(stats_mean), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_statistics_are_per_sample_means():
    """gromo's test_sample_number_invariant: the same batch twice gives the same means."""
    model, params, x, y, stats = _setup()
    twice = G.update_statistics(model, params, stats, x, y, sse)
    for a, b in zip(stats.tensor_m, twice.tensor_m, strict=True):
        np.testing.assert_allclose(a.mean(), b.mean(), rtol=1e-6, atol=1e-7)
        assert int(b.count) == 2 * int(a.count)


def test_compute_n_update_matches_tensor_n():
    model, params, x, y, stats = _setup()
    (u,) = G.compute_optimal_updates(model, stats)
    _, inter = model.apply({"params": params}, x, mutable=["intermediates"])
    h0, h1 = inter["intermediates"]["input_0"][0], inter["intermediates"]["input_1"][0]
    g = jax.grad(lambda a: sse(a, y))(
        h1 @ params["layers_1"]["kernel"] + params["layers_1"]["bias"][None, :]
    )
    n_sum, count = G.compute_n_update(h0, h1, g, u.optimal_delta)
    np.testing.assert_allclose(n_sum / count, -u.tensor_n[:-1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hidden", [0, 2])
def test_first_order_improvement_predicts_the_loss_decrease(hidden):
    model, params, x, y, stats = _setup(hidden=hidden)
    (u,) = G.compute_optimal_updates(model, stats)
    n = x.shape[0]
    loss = lambda g: sse(G.extended_forward(model, params, x, u, g), y) / n  # noqa: E731
    gamma = 1e-2
    measured = (loss(0.0) - loss(gamma)) / gamma**2
    np.testing.assert_allclose(measured, u.first_order_improvement, rtol=0.05)


def test_extended_forward_differentiable_with_zero_hidden_neurons():
    model, params, x, y, stats = _setup(hidden=0)
    (u,) = G.compute_optimal_updates(model, stats)
    grads = jax.grad(lambda p, g: sse(G.extended_forward(model, p, x, u, g), y), argnums=(0, 1))(
        params, 0.5
    )
    assert grads[0]["layers_1"]["kernel"].shape == (0, 3)
    assert np.isfinite(float(grads[1])) and float(grads[1]) != 0.0


@pytest.mark.parametrize("layers", [1, 2])
def test_apply_change_equals_extended_forward(layers):
    model, params, x, y, stats = _setup(hidden=3, layers=layers, act="relu")
    for u in G.compute_optimal_updates(model, stats):
        want = G.extended_forward(model, params, x, u, 0.7)
        new_model, new_params = G.apply_change(model, params, u, 0.7)
        assert new_model.widths[u.layer_index] == 3 + u.singular_values.shape[0]
        np.testing.assert_allclose(
            new_model.apply({"params": new_params}, x), want, rtol=1e-5, atol=1e-5
        )


def test_sub_selection_does_not_increase_the_first_order_improvement():
    model, params, x, y, stats = _setup(hidden=2)
    (u,) = G.compute_optimal_updates(model, stats)
    a, o, s = G.sub_select_optimal_added_parameters(
        u.extended_output, u.extended_input, u.singular_values, keep_neurons=1
    )
    assert a.shape[0] == o.shape[1] == s.shape[0] == 1
    fo = G.first_order_improvement(u.parameter_update_decrease, s, "tanh")
    assert float(fo) <= float(u.first_order_improvement)


def test_padded_added_parameters_are_jittable():
    s = jnp.eye(4)
    n = jnp.diag(jnp.array([3.0, 2.0, 1e-5]))
    n = jnp.concatenate([n, jnp.zeros((1, 3))])
    a, o, sv, k = jax.jit(G.compute_optimal_added_parameters_padded)(s, n)
    assert int(k) == 2 and sv.shape == (3,) and float(sv[2]) == 0.0
    np.testing.assert_allclose(o @ a, n.T * (n.T >= 1), atol=1e-6)


def test_grow_loop_and_interop_round_trip():
    model = G.GrowingMLP(5, 3, (0, 2), 2, "tanh")
    x = jax.random.normal(jax.random.key(0), (48, 5))
    y = jnp.sin(x[:, :3])
    params = model.init(jax.random.key(1), x)["params"]
    mse = lambda pred, t: jnp.mean((pred - t) ** 2)  # noqa: E731
    batches = [(x[:32], y[:32]), (x[32:], y[32:])]
    new_model, new_params, step = G.grow(
        model, params, batches, mse, loss_reduction="mean", progress=True
    )
    assert sum(new_model.widths[1:-1]) == 2 + step.added_neurons > 2
    assert min(step.losses) <= step.losses[0]
    state = jl.interop.to_torch(new_model, {"params": new_params})
    back = jl.interop.from_torch(new_model, state)["params"]
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(new_params), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="must have shape"):
        jl.interop.from_torch(model, state)


def test_three_scalings_hit_their_own_component():
    """gromo's decoupled factors: (s_δ, s_in, s_out) = (γ², γ, γ) is the legacy γ."""
    model, params, x, y, stats = _setup(hidden=2)
    (u,) = G.compute_optimal_updates(model, stats)
    np.testing.assert_allclose(
        G.extended_forward(model, params, x, u, (0.25, 0.5, 0.5)),
        G.extended_forward(model, params, x, u, 0.5),
        rtol=1e-6,
    )
    base = model.apply({"params": params}, x)
    only_delta = G.extended_forward(model, params, x, u, (1.0, 0.0, 0.0))
    new_model, new_params = G.apply_change(model, params, u, (1.0, 0.0, 0.0))
    np.testing.assert_allclose(new_model.apply({"params": new_params}, x), only_delta, atol=1e-5)
    assert not np.allclose(only_delta, base)
    with pytest.raises(ValueError, match="`gamma` must be a scalar or a 3-tuple"):
        G.extended_forward(model, params, x, u, (1.0, 0.0))


def test_empty_statistics_are_rejected():
    model = G.GrowingMLP(5, 3, 2, 1)
    with pytest.raises(ValueError, match="`stats` must hold at least one batch"):
        G.compute_optimal_updates(model, G.init_statistics(model))


def test_covariance_loss_gradient_is_accumulated_on_request():
    model, params, x, y, stats = _setup(hidden=2)
    assert stats.covariance_loss_gradient == ()
    with_e = G.update_statistics(
        model, params, G.init_statistics(model, covariance_loss_gradient=True), x, y, sse
    )
    (e,) = with_e.covariance_loss_gradient
    out = model.apply({"params": params}, x)
    g = 2 * (out - y)
    np.testing.assert_allclose(e.mean(), g.T @ g / x.shape[0], rtol=1e-5, atol=1e-6)
    without_e = with_e._replace(covariance_loss_gradient=())
    for a, b in zip(jax.tree.leaves(stats), jax.tree.leaves(without_e), strict=True):
        np.testing.assert_array_equal(a, b)
