"""jl.optim.lr_scales, the parametrized optimizer builders, the mup rules and the coordinate check."""

import copy

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlinear as jl
from jaxlinear.parametrizations import MaximalUpdate, NeuralTangent, Standard

MUP = MaximalUpdate()


class MLP(nn.Module):
    width: int = 16
    parametrization: object = MUP

    @nn.compact
    def __call__(self, x):
        p = self.parametrization
        x = jnp.tanh(jl.Linear(self.width, parametrization=p, layer_type="input")(x))
        x = jnp.tanh(jl.Linear(self.width, parametrization=p)(x))
        return jl.Linear(3, parametrization=p, layer_type="output")(x)


class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        return jnp.tanh(jl.Linear(24, parametrization=MUP, name="dense")(x))


class Nested(nn.Module):
    """Setup-style parent with a compact child, a LayerNorm and an unparametrized Linear."""

    def setup(self):
        self.stem = jl.Linear(24, parametrization=MUP, layer_type="input")
        self.block = Block()
        self.norm = nn.LayerNorm()
        self.head = jl.Linear(2, parametrization=MUP, layer_type="output")
        self.side = jl.Linear(2)

    def __call__(self, x):
        h = self.norm(self.block(self.stem(x)))
        return self.head(h) + self.side(h)


def _init(model, n_in=5):
    return model.init(jax.random.key(0), jnp.ones((2, n_in)))


def test_lr_scales_mlp_without_inputs_matches_the_rules():
    model = MLP(16)
    v = _init(model)
    got = jl.optim.lr_scales(model, v, "sgd")
    assert got == {
        "Linear_0": {"kernel": 16.0, "bias": 16.0},
        "Linear_1": {"kernel": 1.0, "bias": 16.0},
        "Linear_2": {"kernel": 1 / 16, "bias": 3.0},
    }
    assert jax.tree.structure(got) == jax.tree.structure(v["params"])


def test_lr_scales_nested_norm_and_plain_layers():
    model = Nested()
    v = _init(model)
    got = jl.optim.lr_scales(model, v, "adam", jnp.ones((1, 5)))
    assert got["stem"] == {"kernel": 1.0, "bias": 1.0}
    assert got["block"]["dense"] == {"kernel": 1 / 24, "bias": 1.0}
    assert got["head"] == {"kernel": 1 / 24, "bias": 1.0}
    assert got["norm"] == {"scale": 1.0, "bias": 1.0}  # inferno drops these; jaxlinear trains them
    assert got["side"] == {"kernel": 1.0, "bias": 1.0}  # no parametrization: base lr
    assert jl.optim.lr_scales(model, v, "adam") == got  # the probe finds the same layers


def test_lr_scales_single_layer():
    layer = jl.Linear(7, parametrization=MUP, layer_type="input")
    v = layer.init(jax.random.key(0), jnp.ones((1, 3)))
    assert jl.optim.lr_scales(layer, v, "SGD") == {"kernel": 7.0, "bias": 7.0}


def test_lr_scales_errors():
    model = MLP(8, NeuralTangent())
    v = _init(model)
    with pytest.raises(NotImplementedError, match="SGD only"):
        jl.optim.lr_scales(model, v, "adam")
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        jl.optim.lr_scales(model, v, "lion")
    with pytest.raises(ValueError, match="`variables` must be the model's variables"):
        jl.optim.lr_scales(model, v["params"], "sgd")


class ImageModel(nn.Module):
    """The first op needs an image: the (1, in) probe cannot call it."""

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], 4, 4).sum(axis=1)
        return jl.Linear(3, parametrization=MUP)(x)


def test_lr_scales_asks_for_inputs_when_the_probe_fails():
    model = ImageModel()
    v = model.init(jax.random.key(0), jnp.ones((2, 16)))
    with pytest.raises(ValueError, match="pass example inputs"):
        jl.optim.lr_scales(model, v, "adam")
    got = jl.optim.lr_scales(model, v, "adam", jnp.ones((1, 16)))
    assert got == {"Linear_0": {"kernel": 0.25, "bias": 1.0}}


def _grads(params, value=1.0):
    return jax.tree.map(lambda p: jnp.full_like(p, value), params)


def test_scale_by_learning_rates_constant_and_schedule_agree():
    factors = {"a": 4.0, "b": 0.5}
    g = {"a": jnp.ones(3), "b": jnp.ones(3)}
    const = jl.optim.scale_by_learning_rates(factors, 0.1)
    sched = jl.optim.scale_by_learning_rates(factors, optax.constant_schedule(0.1))
    u1, _ = const.update(g, const.init(g))
    u2, _ = sched.update(g, sched.init(g))
    np.testing.assert_allclose(u1["a"], -0.4, rtol=1e-7)
    np.testing.assert_allclose(u2["b"], u1["b"], rtol=1e-7)


def test_parametrized_sgd_equals_manual_chain():
    model = MLP(16)
    v = _init(model)
    g = jax.tree.map(
        lambda p: jnp.sin(jnp.arange(p.size, dtype=p.dtype)).reshape(p.shape), v["params"]
    )
    tx = jl.optim.parametrized_sgd(model, v, 0.1, momentum=0.9, weight_decay=0.01)
    scales = jl.optim.lr_scales(model, v, "sgd")
    manual = optax.chain(
        optax.add_decayed_weights(0.01),
        optax.trace(0.9),
        jl.optim.scale_by_lr_factors(scales),
        optax.scale(-0.1),
    )
    u, _ = tx.update(g, tx.init(v["params"]), v["params"])
    w, _ = manual.update(g, manual.init(v["params"]), v["params"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9), u, w)


def test_adam_weight_decay_is_coupled_adamw_decoupled():
    """First Adam step is ~sign(direction): coupled L2 flips it, decoupled decay does not."""
    layer = jl.Linear(1, parametrization=Standard())
    params = {"kernel": -jnp.ones((1, 1)), "bias": -jnp.ones((1,))}
    v = {"params": params}
    g = _grads(params, 0.01)  # g + 0.1 * p = -0.09
    adam = jl.optim.parametrized_adam(
        layer, v, 0.1, weight_decay=0.1, example_inputs=jnp.ones((1, 1))
    )
    adamw = jl.optim.parametrized_adamw(
        layer, v, 0.1, weight_decay=0.1, example_inputs=jnp.ones((1, 1))
    )
    u, _ = adam.update(g, adam.init(params), params)
    uw, _ = adamw.update(g, adamw.init(params), params)
    np.testing.assert_allclose(u["kernel"], 0.1, rtol=1e-5)  # -lr * sign(-0.09)
    np.testing.assert_allclose(uw["kernel"], -0.1 * (1 - 0.1), rtol=1e-5)  # -lr * (1 + wd * p)


def test_builders_keep_bf16_updates():
    model = MLP(8)
    v = _init(model)
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), v["params"])
    for tx in (
        jl.optim.parametrized_adam(model, v, 1e-3),
        jl.optim.parametrized_sgd(model, v, 1e-3),
    ):
        u, _ = tx.update(_grads(params), tx.init(params), params)
        assert {x.dtype for x in jax.tree.leaves(u)} == {jnp.dtype(jnp.bfloat16)}


def test_parametrized_adam_trains_an_mlp_under_jit():
    model = MLP(16)
    v = _init(model)
    x = jnp.linspace(-1, 1, 40).reshape(8, 5)
    y = jnp.sin(x[:, :3])
    tx = jl.optim.parametrized_adam(model, v, 1e-2)

    @jax.jit
    def step(params, state):
        loss, g = jax.value_and_grad(lambda p: jnp.mean((model.apply({"params": p}, x) - y) ** 2))(
            params
        )
        u, state = tx.update(g, state, params)
        return optax.apply_updates(params, u), state, loss

    params, state = v["params"], tx.init(v["params"])
    losses = []
    for _ in range(30):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


# --- mup rules ---------------------------------------------------------------------------------

PARAMS = {
    "in": {"kernel": jnp.zeros((8, 64)), "bias": jnp.zeros(64)},
    "hid": {"kernel": jnp.zeros((64, 64)), "bias": jnp.zeros(64)},
    "out": {"kernel": jnp.zeros((64, 3)), "bias": jnp.zeros(3)},
}
BASE = jax.tree.map(
    lambda a: jax.ShapeDtypeStruct(tuple(8 if d == 64 else d for d in a.shape), a.dtype), PARAMS
)


def test_mup_rules_table():
    sgd = jl.optim.mup_lr_scales(PARAMS, BASE, "sgd")
    adam = jl.optim.mup_lr_scales(PARAMS, BASE, "adam")
    wd = jl.optim.mup_weight_decay_scales(PARAMS, BASE, "sgd")
    assert sgd == {"in": {"kernel": 8.0, "bias": 8.0}, "hid": {"kernel": 1.0, "bias": 8.0},
                   "out": {"kernel": 8.0, "bias": 1.0}}  # fmt: skip
    assert adam == {"in": {"kernel": 1.0, "bias": 1.0}, "hid": {"kernel": 0.125, "bias": 1.0},
                    "out": {"kernel": 1.0, "bias": 1.0}}  # fmt: skip
    assert wd["in"]["kernel"] == 0.125 and wd["hid"]["kernel"] == 1.0
    assert jl.optim.mup_weight_decay_scales(PARAMS, BASE, "adamw")["hid"]["kernel"] == 8.0


def test_mup_rules_survive_copies_and_variables():
    """mup loses `infshape` on deepcopy; jaxlinear's rules are a function of shapes only."""
    want = jl.optim.mup_lr_scales(PARAMS, BASE, "adam")
    assert jl.optim.mup_lr_scales(copy.deepcopy(PARAMS), BASE, "adam") == want
    assert jl.optim.mup_lr_scales({"params": PARAMS}, {"params": BASE}, "adam") == want
    assert set(jax.tree.leaves(jl.optim.mup_lr_scales(PARAMS, PARAMS, "sgd"))) == {1.0}


def test_mup_rules_errors():
    with pytest.raises(ValueError, match="must have the same parameters"):
        jl.optim.mup_lr_scales(PARAMS, {"in": BASE["in"]}, "sgd")
    with pytest.raises(ValueError, match="support 1-D and 2-D"):
        jl.optim.mup_lr_scales({"w": jnp.zeros((2, 3, 4))}, {"w": jnp.zeros((2, 3, 2))}, "sgd")
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        jl.optim.mup_lr_scales(PARAMS, BASE, "adagrad")


# --- coordinate check --------------------------------------------------------------------------


def test_coord_check_mup_flat_sp_grows():
    x = jnp.linspace(-1, 1, 64).reshape(32, 2)
    y = jnp.sin(3 * x[:, :1])
    widths = [32, 512]
    adam = lambda m, v: jl.optim.parametrized_adam(m, v, 3e-2)

    def growth(p):
        class Model(nn.Module):
            width: int

            @nn.compact
            def __call__(self, x):
                x = jnp.tanh(jl.Linear(self.width, parametrization=p, layer_type="input")(x))
                x = jnp.tanh(jl.Linear(self.width, parametrization=p)(x))
                return jl.Linear(1, parametrization=p, layer_type="output")(x)

        recs = jl.optim.coord_check(Model, widths, x, y, adam, steps=2)
        assert {(r.width, r.step) for r in recs} == {(w, t) for w in widths for t in range(3)}
        l1 = {r.width: r.l1 for r in recs if r.step == 2 and r.layer == "Linear_1"}
        return l1[512] / l1[32]

    assert growth(Standard()) > 3.0  # SP: hidden activations grow with width after updates
    assert 0.7 < growth(MUP) < 1.3  # muP: flat


def test_coord_check_validates_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    with pytest.raises(ValueError, match="`width` must be an int > 0"):
        jl.optim.coord_check(
            MLP, [0], jnp.ones((2, 5)), jnp.ones((2, 3)), jl.optim.parametrized_sgd
        )
    recs = [jl.optim.CoordRecord(w, t, "Linear_0", 1.0 + t) for w in (8, 16) for t in range(3)]
    fig = jl.optim.plot_coord_check(recs, title="x")
    assert len(fig.axes) == 3
    matplotlib.pyplot.close(fig)
