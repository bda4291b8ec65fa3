"""GrowingMLP on functional.linear (dtypes, activations, empty batches) and bad input to the loop."""

import builtins

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl
from tests._compiles import count_compiles

G = jl.growing


def sse(pred, y):
    return jnp.sum((pred - y) ** 2)


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def _setup(hidden=2, layers=1, act="tanh", n=64):
    model = G.GrowingMLP(5, 3, hidden, layers, act)
    x = jax.random.normal(jax.random.key(0), (n, 5))
    y = jnp.sin(x[:, :3] * 2.0)
    params = model.init(jax.random.key(1), x)["params"]
    stats = G.update_statistics(model, params, G.init_statistics(model), x, y, sse)
    return model, params, x, y, stats


def test_layers_are_functional_linear():
    model, params, x, _, _ = _setup(hidden=4)
    h = jnp.tanh(jl.functional.linear(x, **params["layers_0"]))
    want = jl.functional.linear(h, **params["layers_1"])
    np.testing.assert_array_equal(model.apply({"params": params}, x), want)


def test_dtype_and_param_dtype():
    model = G.GrowingMLP(5, 3, 4, 1, "relu", param_dtype=jnp.bfloat16, dtype=jnp.bfloat16)
    x = jnp.ones((2, 5))
    params = model.init(jax.random.key(0), x)["params"]
    assert {p.dtype for p in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}
    assert model.apply({"params": params}, x).dtype == jnp.bfloat16
    state = jl.interop.to_torch(model, {"params": params})
    back = jl.interop.from_torch(model, state)["params"]
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        assert a.dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    with pytest.raises(TypeError, match="`param_dtype` must be a floating dtype"):
        G.GrowingMLP(5, 3, 4, 1, param_dtype=jnp.int32)
    with pytest.raises(
        TypeError, match="`use_bias` must be a bool \\(True or False\\), got str 'False'"
    ):
        G.GrowingMLP(5, 3, 4, 1, use_bias="False")
    with pytest.raises(ValueError, match="`capacity` must be >= the hidden widths"):
        G.GrowingMLP(5, 3, 4, 1, capacity=2)


def test_precision_is_passed_to_the_matmuls():
    model = G.GrowingMLP(5, 3, 4, 1, "relu", precision="highest")
    x = jax.random.normal(jax.random.key(0), (3, 5))
    params = model.init(jax.random.key(0), x)["params"]
    jaxpr = str(jax.make_jaxpr(lambda p: model.apply({"params": p}, x))(params))
    assert jaxpr.count("precision=(Precision.HIGHEST, Precision.HIGHEST)") == 2


def test_any_jax_callable_is_an_activation():
    x = jax.random.normal(jax.random.key(0), (16, 5))
    by_name = G.GrowingMLP(5, 3, 4, 1, "tanh")
    by_fn = G.GrowingMLP(5, 3, 4, 1, jnp.tanh)
    params = by_name.init(jax.random.key(0), x)["params"]
    np.testing.assert_array_equal(
        by_name.apply({"params": params}, x), by_fn.apply({"params": params}, x)
    )
    assert G.activation_gradient_at_zero(jnp.tanh) == G.activation_gradient_at_zero("tanh") == 1.0
    # not in gromo's table: σ'(0⁺) by autodiff at 1e-5, as gromo's numerical fallback
    assert G.activation_gradient_at_zero(jax.nn.softplus) == pytest.approx(0.5, abs=1e-5)
    assert G.activation_gradient_at_zero(lambda z: jnp.maximum(z, 0.0)) == 1.0
    model = G.GrowingMLP(5, 3, 2, 1, jax.nn.softplus)
    p = model.init(jax.random.key(0), x)["params"]
    stats = G.update_statistics(model, p, G.init_statistics(model), x, jnp.sin(x[:, :3]), sse)
    (u,) = G.compute_optimal_updates(model, stats)
    want = u.parameter_update_decrease + G.activation_gradient_at_zero(jax.nn.softplus) * jnp.sum(
        u.singular_values**2
    )
    np.testing.assert_allclose(u.first_order_improvement, want, rtol=1e-6)


@pytest.mark.parametrize("capacity", [None, 8])
def test_empty_batch_gives_empty_output(capacity):
    model = G.GrowingMLP(5, 3, 2, 2, "relu", capacity=capacity)
    variables = model.init(jax.random.key(0), jnp.ones((1, 5)))
    assert model.apply(variables, jnp.zeros((0, 5))).shape == (0, 3)
    assert model.apply(variables, jnp.zeros((0, 5, 1))).shape == (0, 3)


def test_growth_from_adjacent_empty_hidden_layers_is_a_clear_error():
    model = G.GrowingMLP(8, 2, 0, 2, "relu")
    x = jax.random.normal(jax.random.key(0), (32, 8))
    params = model.init(jax.random.key(1), x)["params"]
    with pytest.raises(
        ValueError, match="no hidden layer that can grow at widths \\(8, 0, 0, 2\\)"
    ):
        G.grow(model, params, [(x, x[:, :2])], mse, loss_reduction="mean")
    # one empty layer next to a non-empty one grows
    model = G.GrowingMLP(8, 2, (0, 3), 2, "tanh")  # (ReLU: relu'(0) = 0, no gradient reaches h1)
    params = model.init(jax.random.key(1), x)["params"]
    new_model, _, step = G.grow(model, params, [(x, x[:, :2])], mse, loss_reduction="mean")
    assert step.layer_index == 1 and new_model.widths[1] == step.added_neurons > 0


def test_progress_bar_is_optional(monkeypatch, capsys):
    model, params, x, y, _ = _setup()
    batches = [(x, y)]

    class Bar:
        def __init__(self):
            self.n, self.postfix = 0, None

        def update(self, k):
            self.n += k

        def set_postfix(self, **kw):
            self.postfix = kw

    bar = Bar()
    m1, p1, s1 = G.grow(model, params, batches, mse, loss_reduction="mean", progress=bar)
    m2, p2, s2 = G.grow(m1, p1, batches, mse, loss_reduction="mean", progress=bar)
    assert bar.n == 2 and bar.postfix["widths"] == m2.widths[1:-1]
    assert float(bar.postfix["loss"]) == pytest.approx(s2.loss, rel=1e-3)
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    _, _, step = G.grow(
        model, params, batches, mse, loss_reduction="mean", progress=True
    )  # no tqdm: no bar, no error
    assert step.added_neurons == s1.added_neurons
    with pytest.raises(TypeError, match="`progress` must be a bool or a tqdm-like bar"):
        G.grow(model, params, batches, mse, loss_reduction="mean", progress="yes")


def test_line_search_compiles_once_per_shape():
    model, params, x, y, stats = _setup()
    (u,) = G.compute_optimal_updates(model, stats)
    G.line_search(model, params, u, [(x, y)], mse)
    u2 = u._replace(extended_input=u.extended_input * 0.5)
    with count_compiles() as compiled:
        G.line_search(
            model, params, u2, [(x, y)], mse, gammas=(0.0, 0.3, 0.7, 1.0, 2.0, 3.0, 4.0, 5.0)
        )
    assert compiled == []


def test_bad_growth_input_is_rejected():
    model, params, x, y, stats = _setup()
    (u,) = G.compute_optimal_updates(model, stats)
    x_nan = x.at[3, 1].set(jnp.nan)
    with pytest.raises(
        ValueError, match=r"`batches\[1\]\[0\]` must hold finite values, got \[nan\]"
    ):
        G.grow(model, params, [(x, y), (x_nan, y)], mse, loss_reduction="mean")
    with pytest.raises(ValueError, match="`params` must be finite"):
        bad = jax.tree.map(lambda a: a.at[0].set(jnp.nan), params)
        G.grow(model, bad, [(x, y)], mse, loss_reduction="mean")
    with pytest.raises(ValueError, match="not NaN"):
        G.select_best_update([u, u._replace(first_order_improvement=jnp.float32(jnp.nan))])
    other = G.GrowingMLP(5, 3, 4, 1, "tanh")
    with pytest.raises(
        ValueError, match="`stats.tensor_s` must have shapes .* statistics of another model"
    ):
        G.compute_optimal_updates(other, stats)
    with pytest.raises(ValueError, match="`update.optimal_delta` must have shape \\(3, 3\\)"):
        G.apply_change(model, params, u._replace(optimal_delta=jnp.zeros((3, 5))), 1.0)
    with pytest.raises(ValueError, match="`update.extended_output` must have shape"):
        G.extended_forward(
            model, params, x, u._replace(extended_output=u.extended_output[:, 1:]), 1.0
        )
    with pytest.raises(
        ValueError, match="`update.layer_index` must be a growable layer in \\[1, 1\\]"
    ):
        G.apply_change(model, params, u._replace(layer_index=0), 1.0)
    with pytest.raises(ValueError, match="`batches` must hold at least one"):
        G.line_search(model, params, u, [], mse)
    with pytest.raises(ValueError, match="`batches` must hold at least one"):
        G.grow(model, params, [], mse, loss_reduction="mean")
    with pytest.raises(ValueError, match="`x` must have 5 features"):
        G.update_statistics(model, params, stats, jnp.ones((4, 6)), jnp.ones((4, 3)), sse)
    with pytest.raises(ValueError, match="`params\\['layers_0'\\]` must have shapes"):
        G.update_statistics(other, params, G.init_statistics(other), x, y, sse)
    with pytest.raises(ValueError, match="`extended_input` .* must add the same number of neurons"):
        G.apply_layer_change(
            params["layers_1"],
            params["layers_0"],
            extended_input=jnp.ones((3, 2)),
            extended_output=jnp.ones((1, 6)),
        )
