"""gromo's options beyond the parity cases: through ``grow``, errors, random neurons as a start."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl

G = jl.growing


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def _batches(d_in=5, d_out=3, n=128):
    x = jax.random.normal(jax.random.key(0), (n, d_in))
    y = jnp.sin(x[:, :d_out] * 2.0)
    return [(x[:64], y[:64]), (x[64:], y[64:])]


def test_grow_passes_the_options_and_the_logspace_search():
    batches = _batches()
    model = G.GrowingMLP(5, 3, 2, 1, "tanh")
    params = model.init(jax.random.key(1), batches[0][0])["params"]
    _, _, fisher = G.grow(
        model, params, batches, mse, loss_reduction="mean", use_fisher=True, fisher_shrinkage=0.1
    )
    _, _, plain = G.grow(model, params, batches, mse, loss_reduction="mean")
    assert fisher.first_order_improvements != plain.first_order_improvements
    _, _, step = G.grow(model, params, batches, mse, loss_reduction="mean", gammas="logspace")
    assert len(step.gammas) == len(step.losses) >= 101 and step.gammas[0] == 0.0
    assert step.loss == min(step.losses) <= step.losses[0]
    assert step.gamma == step.gammas[int(np.argmin(step.losses))]
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['use_fishr'\\]"):
        G.grow(model, params, batches, mse, loss_reduction="mean", use_fishr=True)
    with pytest.raises(ValueError, match="`gammas` must be one of \\('logspace',\\)"):
        G.grow(model, params, batches, mse, loss_reduction="mean", gammas="grid")
    with pytest.raises(ValueError, match="`fisher_shrinkage` must be a float in \\[0, 1\\]"):
        G.grow(
            model,
            params,
            batches,
            mse,
            loss_reduction="mean",
            use_fisher=True,
            fisher_shrinkage=2.0,
        )


def test_fisher_needs_the_gradient_covariance():
    batches = _batches()
    model = G.GrowingMLP(5, 3, 2, 1, "tanh")
    params = model.init(jax.random.key(1), batches[0][0])["params"]
    stats = G.update_statistics(model, params, G.init_statistics(model), *batches[0], mse, "mean")
    with pytest.raises(ValueError, match="`use_fisher=True` needs E"):
        G.compute_optimal_updates(model, stats, use_fisher=True)


def test_random_neurons_start_growth_where_tiny_cannot():
    batches = _batches()
    model = G.GrowingMLP(5, 3, 0, 2, "tanh")
    params = model.init(jax.random.key(1), batches[0][0])["params"]
    with pytest.raises(ValueError, match="no hidden layer that can grow"):
        G.grow(model, params, batches, mse, loss_reduction="mean")
    update = G.create_layer_extensions(
        model, params, 1, 2, jax.random.key(2), input_extension_init="zeros"
    )
    assert not np.asarray(update.extended_input).any()
    model, params = G.apply_change(model, params, update, 1.0)
    assert model.widths == (5, 2, 0, 3)
    model, params, step = G.grow(model, params, batches, mse, loss_reduction="mean")
    assert step.layer_index == 2 and step.added_neurons > 0
    with pytest.raises(ValueError, match="`output_extension_init` must be one of"):
        G.create_layer_extensions(
            model, params, 1, 2, jax.random.key(2), output_extension_init="he"
        )
    with pytest.raises(ValueError, match="`layer_index` must be a growable layer in \\[1, 2\\]"):
        G.create_layer_extensions(model, params, 0, 2, jax.random.key(2))


def test_adjusting_an_update():
    batches = _batches()
    model = G.GrowingMLP(5, 3, 3, 1, "tanh")
    params = model.init(jax.random.key(1), batches[0][0])["params"]
    stats = G.update_statistics(model, params, G.init_statistics(model), *batches[0], mse, "mean")
    (u,) = G.compute_optimal_updates(model, stats)
    kept = G.sub_select_update(model, u, threshold=float(u.singular_values[0]))
    assert kept.added_neurons == 1
    zeroed = G.sub_select_update(model, u, 1, zeros_if_not_enough=True, zeros_fan_out=True)
    assert zeroed.added_neurons == u.added_neurons
    assert not np.asarray(zeroed.extended_input[:, 1:]).any()
    assert float(zeroed.first_order_improvement) == pytest.approx(
        float(kept.first_order_improvement), rel=1e-6
    )
    with pytest.raises(ValueError, match="`normalization_type` must be one of"):
        G.normalize_optimal_updates(model, params, u, normalization_type="max")
    with pytest.raises(ValueError, match="`std_target` must be a positive float"):
        G.normalize_optimal_updates(model, params, u, std_target=-1.0)
    with pytest.raises(ValueError, match="`keep_neurons` or `threshold` must be given"):
        G.sub_select_update(model, u)


@pytest.mark.parametrize("capacity", [None, 8])
def test_statistics_fused_into_the_training_step(capacity):
    """The training backward's statistics equal a separate statistics pass; the grads are the loss's."""
    batches = _batches()
    model = G.GrowingMLP(5, 3, (0, 3), 2, "tanh", capacity=capacity)
    variables = model.init(jax.random.key(1), batches[0][0])
    params = variables if capacity else variables["params"]
    fused = separate = G.init_statistics(model, covariance_loss_gradient=True)
    for x, y in batches:
        loss, grads, fused = G.value_and_grad_with_statistics(
            model, params, fused, x, y, mse, loss_reduction="mean"
        )
        separate = G.update_statistics(model, params, separate, x, y, mse, "mean")
        want_loss, want_grads = jax.value_and_grad(
            lambda p: mse(model.apply({**variables, "params": p}, x), y)  # noqa: B023
        )(variables["params"])
        np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
        for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(separate), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_block_statistics_match_the_pure_updates():
    """The loop assembles x̃ᵀx̃ from xᵀx, the column sums and n: the pure updates' numbers."""
    batches = _batches()
    model = G.GrowingMLP(5, 3, 4, 1, "relu")
    params = model.init(jax.random.key(1), batches[0][0])["params"]
    x, y = batches[0]
    stats = G.update_statistics(model, params, G.init_statistics(model), x, y, mse, "mean")
    s0, n = G.compute_s_update(x)
    np.testing.assert_allclose(stats.tensor_s[0].sum, s0, rtol=1e-6, atol=1e-5)
    assert int(stats.tensor_s[0].count) == n


def sse(pred, y):
    return jnp.sum((pred - y) ** 2)


def test_grow_default_is_a_summed_loss_as_gromo_statistics():
    """``loss_reduction="sum"`` (the default everywhere, gromo's ``compute_statistics``) with a
    summed loss grows as a mean loss with ``"mean"``: the same statistics, and a line search on the mean
    loss per row (gromo's ``evaluate_model``) either way."""
    batches = _batches()
    model = G.GrowingMLP(5, 3, 2, 1, "tanh")
    params = model.init(jax.random.key(1), batches[0][0])["params"]
    _, _, summed = G.grow(model, params, batches, sse)
    out = 3  # sse over the rows = rows * out * mse
    _, _, mean = G.grow(model, params, batches, lambda p, t: out * mse(p, t), loss_reduction="mean")
    assert (summed.layer_index, summed.added_neurons, summed.gamma) == (
        mean.layer_index,
        mean.added_neurons,
        mean.gamma,
    )
    np.testing.assert_allclose(summed.losses, mean.losses, rtol=1e-5)
    with pytest.raises(ValueError, match="`loss_reduction` must be one of"):
        G.grow(model, params, batches, sse, loss_reduction="none")


def test_line_search_weights_each_batch_by_its_rows_as_gromo_average_meter():
    (x, y), _ = _batches()
    model = G.GrowingMLP(5, 3, 2, 1, "tanh")
    params = model.init(jax.random.key(1), x)["params"]
    stats = G.update_statistics(model, params, G.init_statistics(model), x, y, sse)
    (u,) = G.compute_optimal_updates(model, stats)
    _, whole = G.line_search(model, params, u, [(x, y)], mse)
    _, split = G.line_search(model, params, u, [(x[:48], y[:48]), (x[48:], y[48:])], mse)
    np.testing.assert_allclose(split, whole, rtol=1e-5)
