"""The walker on native NNX models: paths, linen twins, call order, shapes; mixed with Flax's NNX layers
and bridged linen layers; ``lr_factors`` on them."""

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxlinear as jl
from jaxlinear import walker


class Mixed(nnx.Module):
    """Declared in another order than called; a list, Flax's own layers and a bridged linen layer."""

    def __init__(self, rngs: nnx.Rngs):
        self.head = jl.nnx.Linear(16, 3, parametrization="mup", layer_type="output", rngs=rngs)
        self.norm = nnx.LayerNorm(16, rngs=rngs)
        self.blocks = nnx.List([
            jl.nnx.Linear(16, 16, parametrization="mup", rngs=rngs),
            nnx.Linear(16, 16, rngs=rngs),
        ])  # fmt: skip
        self.ens = jl.nnx.NLinear(2, 16, 16, parametrization="mup", rngs=rngs)
        self.bridged = nnx.bridge.ToNNX(nn.Sequential([jl.Linear(16, parametrization="mup")]),
                                        rngs=rngs)  # fmt: skip
        self.embed = nnx.Embed(10, 8, rngs=rngs)
        self.inp = jl.nnx.Linear(8, 16, parametrization="mup", layer_type="input", rngs=rngs)

    def __call__(self, tokens):
        x = jnp.tanh(self.inp(self.embed(tokens)))
        for block in self.blocks:
            x = jnp.tanh(block(x))
        x = self.ens(jnp.stack([x, x], -2)).mean(-2)
        x = self.bridged(self.norm(x))
        return self.head(x)


@pytest.fixture(scope="module")
def mixed():
    model = Mixed(nnx.Rngs(0))
    tokens = jnp.zeros((4,), jnp.int32)
    nnx.bridge.lazy_init(model, tokens)
    return model, tokens


def test_walk_nnx_lists_layers_in_call_order_with_twins_and_shapes(mixed):
    model, tokens = mixed
    before = nnx.to_pure_dict(nnx.state(model, nnx.Any(nnx.Param, nnx.RngCount)))
    w = walker.walk_nnx(model, tokens, types=(jl.Linear, jl.NLinear, nn.Dense, nn.Embed))
    got = [(c.path, type(c.module).__name__, c.shapes.get("kernel")) for c in w.layers]
    assert got == [
        (("embed",), "Embed", None),
        (("inp",), "Linear", (8, 16)),
        (("blocks", 0), "Linear", (16, 16)),
        (("blocks", 1), "Dense", (16, 16)),
        (("ens",), "NLinear", (2, 16, 16)),
        (("bridged", "layers_0"), "Linear", (16, 16)),
        (("head",), "Linear", (16, 3)),
    ]
    assert w.param_owners == [
        ("embed",), ("inp",), ("blocks", 0), ("blocks", 1), ("ens",), ("norm",),
        ("bridged", "layers_0"), ("head",),
    ]  # fmt: skip
    assert w.layers[2].name == "blocks/0"
    assert (
        w.layers[-1].module.parametrization == "mup" and w.layers[-1].module.layer_type == "output"
    )
    # nothing computed on the model itself: its state (rng counters included) is unchanged
    after = nnx.to_pure_dict(nnx.state(model, nnx.Any(nnx.Param, nnx.RngCount)))
    jax.tree.map(np.testing.assert_array_equal, before, after)
    # the classes are restored
    assert "__call__" not in jl.nnx.LinearReadout.__dict__


def test_walk_nnx_probes_without_inputs():
    model = nnx.Sequential(
        jl.nnx.Linear(3, 5, rngs=nnx.Rngs(0)), jnp.tanh, nnx.Linear(5, 2, rngs=nnx.Rngs(1))
    )
    assert [c.path for c in walker.find_nnx_layers(model)] == [("layers", 0), ("layers", 2)]
    with pytest.raises(TypeError, match="nnx.Module"):
        walker.walk_nnx(jl.Linear(3))


def test_substitute_nnx_layers_observes_and_replaces():
    model = nnx.Sequential(
        jl.nnx.Linear(3, 5, rngs=nnx.Rngs(0)), jl.nnx.Linear(5, 2, rngs=nnx.Rngs(1))
    )
    seen = []

    def observe(m, x):
        seen.append(x.shape)
        return m(x)

    x = jnp.ones((4, 3))
    with walker.substitute_nnx_layers(model, {("layers", 1): observe}):
        y = model(x)
    assert seen == [(4, 5)]
    np.testing.assert_array_equal(y, model(x))


def test_lr_factors_of_a_native_mixed_model(mixed):
    model, tokens = mixed
    with pytest.raises(ValueError, match="no rule covers"):
        jl.optim.lr_factors(model, tokens, optimizer="adam")
    f = jl.optim.lr_factors(model, tokens, optimizer="adam", default=1.0)
    state = nnx.as_pure(nnx.state(model, nnx.Param))
    assert jax.tree.structure(f.lr) == jax.tree.structure(state)
    assert f.lr["inp"]["kernel"] == 1.0 and f.lr["head"]["kernel"] == 1 / 16
    assert f.lr["blocks"][0]["kernel"] == 1 / 16 and f.lr["blocks"][1]["kernel"] == 1.0
    assert f.lr["ens"]["kernel"] == 1 / 16
    assert f.lr["bridged"]["layers_0"]["kernel"] == 1 / 16
    assert f.lr["embed"]["embedding"] == 1.0 and f.lr["norm"]["scale"] == 1.0


def test_lr_factors_warns_on_a_forgotten_layer_type_in_call_order():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.a = jl.nnx.Linear(4, 8, parametrization="mup", rngs=rngs)  # the input layer
            self.b = jl.nnx.Linear(8, 2, parametrization="mup", layer_type="output", rngs=rngs)

        def __call__(self, x):
            return self.b(self.a(x))

    with pytest.warns(jl.optim.LayerTypeWarning, match="first layer"):
        jl.optim.lr_factors(Net(nnx.Rngs(0)), optimizer="adam")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jl.optim.lr_factors(jl.nnx.UnitScaledLinear(4, 2, rngs=nnx.Rngs(0)), optimizer="sgd")
