"""Inputs that used to give a silently wrong growth (issue 21): each is now right or a clear error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl

G = jl.growing


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


@pytest.fixture(scope="module")
def bucketed():
    model = G.GrowingMLP(5, 3, 2, 1, "tanh", capacity=8)
    x = jax.random.normal(jax.random.key(1), (32, 5))
    y = jnp.sin(x[:, :3])
    return model, model.init(jax.random.key(0), x), x, y


@pytest.mark.parametrize("capacity", [None, 8])
def test_init_variables_apply_at_any_batch_size(capacity):
    model = G.GrowingMLP(5, 3, 2, 2, "tanh", capacity=capacity)
    variables = model.init(jax.random.key(0), jnp.ones((8, 5)))
    assert "perturbations" not in variables  # a probe shaped like the init batch
    x = jax.random.normal(jax.random.key(1), (3, 5))
    out = model.apply(variables, x)
    assert out.shape == (3, 3)
    want = model.apply({k: v for k, v in variables.items() if k != "perturbations"}, x)
    np.testing.assert_array_equal(out, want)


def test_line_search_never_picks_a_nan_loss(bucketed):
    model, variables, x, y = bucketed
    stats = G.update_statistics(model, variables, G.init_statistics(model), x, y, mse, "mean")
    update = G.compute_optimal_updates(model, stats)[0]

    def loss(pred, t):  # NaN once the extension moves predictions far (large γ)
        return jnp.where(jnp.abs(pred).max() < 50.0, mse(pred, t), jnp.nan)

    gamma, losses = G.line_search(model, variables, update, [(x, y)], loss, [0.0, 1e6, 0.5])
    assert np.isnan(losses[1]) and gamma != 1e6
    assert gamma == [0.0, 1e6, 0.5][int(np.nanargmin(losses))]
    with pytest.raises(ValueError, match="`loss_fn` must give a loss that is not NaN"):
        G.line_search(model, variables, update, [(x, y)], lambda p, t: jnp.nan * mse(p, t))


def test_grow_refuses_an_all_nan_line_search(bucketed):
    model, variables, x, y = bucketed

    def loss(pred, t):  # finite gradients for the statistics, NaN losses in the line search
        return mse(pred, t) + jnp.where(jnp.abs(pred).max() < 0.0, 0.0, jnp.nan)

    with pytest.raises(ValueError, match="not NaN"):
        G.grow(model, variables, [(x, y)], jax.jit(lambda p, t: loss(p, t)))


def test_grow_refuses_an_empty_batch(bucketed):
    model, variables, x, y = bucketed
    with pytest.raises(ValueError, match=r"`batches` must not hold an empty batch.*batch 1"):
        G.grow(model, variables, [(x, y), (x[:0], y[:0])], mse, loss_reduction="mean")


def test_grow_with_batches_of_x_only_names_the_pairs(bucketed):
    model, variables, x, _ = bucketed
    with pytest.raises(TypeError, match=r"`batches` must hold \(x, y\) pairs"):
        G.grow(model, variables, [x[:16], x[16:]], mse, loss_reduction="mean")
    with pytest.raises(TypeError, match=r"`batches` must hold \(x, y\) pairs"):
        G.grow(model, variables, [(x,)], mse, loss_reduction="mean")


@pytest.mark.parametrize(
    "widths, error",
    [([9], ValueError), ([-1], ValueError), (np.array([2.5], np.float32), TypeError)],
)
def test_active_widths_must_fit_the_capacity(bucketed, widths, error):
    model, variables, x, y = bucketed
    bad = {"params": variables["params"], "growth": {"widths": jnp.asarray(widths)}}
    with pytest.raises(error, match=r"`variables\['growth'\]\['widths'\]`"):
        G.grow(model, bad, [(x, y)], mse, loss_reduction="mean")
    with pytest.raises(error, match=r"`variables\['growth'\]\['widths'\]`"):
        G.active_widths(model, bad)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"numerical_threshold": float("nan")}, "numerical_threshold"),
        ({"numerical_threshold": -1.0}, "numerical_threshold"),
        ({"statistical_threshold": -1e-3}, "statistical_threshold"),
        ({"statistical_threshold": float("inf")}, "statistical_threshold"),
        ({"gammas": [-1.0, 0.5]}, "gammas"),
        ({"gammas": [float("nan"), 1.0]}, "gammas"),
        ({"gammas": []}, "gammas"),
    ],
)
def test_grow_rejects_bad_thresholds_and_gammas(bucketed, kwargs, name):
    model, variables, x, y = bucketed
    with pytest.raises(ValueError, match=f"`{name}`"):
        G.grow(model, variables, [(x, y)], mse, loss_reduction="mean", **kwargs)


def test_compute_optimal_updates_rejects_bad_thresholds(bucketed):
    model, variables, x, y = bucketed
    stats = G.update_statistics(model, variables, G.init_statistics(model), x, y, mse, "mean")
    with pytest.raises(ValueError, match="`statistical_threshold`"):
        G.compute_optimal_updates(model, stats, statistical_threshold=-1.0)
    with pytest.raises(ValueError, match="`numerical_threshold`"):
        G.compute_optimal_updates(model, stats, numerical_threshold=float("nan"))


def test_apply_change_rejects_singular_values_of_another_count():
    model = G.GrowingMLP(5, 3, 2, 1, "tanh")
    x = jax.random.normal(jax.random.key(1), (32, 5))
    params = model.init(jax.random.key(0), x)["params"]
    stats = G.update_statistics(model, params, G.init_statistics(model), x, jnp.sin(x[:, :3]), mse)
    update = G.compute_optimal_updates(model, stats)[0]
    k = update.extended_input.shape[1]
    bad = update._replace(singular_values=jnp.ones((k + 1,)))
    with pytest.raises(ValueError, match="`update.singular_values` must have shape"):
        G.apply_change(model, params, bad, 0.5)
