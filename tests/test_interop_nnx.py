"""``from_torch`` / ``to_torch`` on native NNX models: an ``nnx.State`` for ``nnx.update``, no variables."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlinear as jl


class Net(nnx.Module):
    """torch's ``Ref`` in NNX: a ModuleList of blocks, Flax's ``nnx.Linear`` beside jaxlinear's."""

    def __init__(self, rngs: nnx.Rngs):
        self.blocks = nnx.List([jl.nnx.Linear(4, 6, rngs=rngs), nnx.Linear(6, 6, rngs=rngs)])
        self.ens = jl.nnx.NLinear(2, 6, 3, rngs=rngs)

    def __call__(self, x):
        for b in self.blocks:
            x = jnp.tanh(b(x))
        return self.ens(jnp.stack([x, x], -2))


class Ref(torch.nn.Module):
    def __init__(self):
        super().__init__()
        import delu

        self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 6), torch.nn.Linear(6, 6)])
        self.ens = delu.nn.NLinear(2, 6, 3)

    def forward(self, x):
        for b in self.blocks:
            x = torch.tanh(b(x))
        return self.ens(torch.stack([x, x], -2))


@pytest.fixture(scope="module")
def ref():
    pytest.importorskip("delu")
    torch.manual_seed(0)
    return Ref()


def test_from_torch_gives_a_state_for_nnx_update(ref):
    model = Net(nnx.Rngs(0))
    state = jl.interop.from_torch(model, ref.state_dict())
    assert isinstance(state, nnx.State)
    nnx.update(model, state)
    x = np.random.default_rng(0).standard_normal((5, 4), dtype=np.float32)
    want = ref(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(x), want, rtol=1e-5, atol=1e-6)


def test_to_torch_takes_no_variables_and_round_trips(ref):
    model = Net(nnx.Rngs(1))
    sd = jl.interop.to_torch(model)
    assert list(sd) == list(ref.state_dict())
    other = Ref()
    other.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    x = np.random.default_rng(1).standard_normal((3, 4), dtype=np.float32)
    np.testing.assert_allclose(model(x), other(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    with pytest.raises(TypeError, match="`variables` must be omitted"):
        jl.interop.to_torch(model, {"params": {}})


def test_single_nnx_layer_converts_with_its_twins_converter():
    ref = torch.nn.Linear(3, 5)
    layer = jl.nnx.Linear(3, 5, rngs=nnx.Rngs(0))
    nnx.update(layer, jl.interop.from_torch(layer, ref.state_dict()))
    np.testing.assert_array_equal(layer.kernel[...], ref.weight.detach().numpy().T)
    assert set(jl.interop.to_torch(layer)) == {"weight", "bias"}
    with pytest.raises(ValueError, match="shapes"):
        jl.interop.from_torch(jl.nnx.Linear(4, 5, rngs=nnx.Rngs(0)), ref.state_dict())


def test_uncovered_params_are_named():
    class WithNorm(nnx.Module):
        def __init__(self, rngs):
            self.fc = jl.nnx.Linear(3, 4, rngs=rngs)
            self.scale = nnx.Param(jnp.ones(4))

        def __call__(self, x):
            return self.fc(x) * self.scale[...][None]

    model = WithNorm(nnx.Rngs(0))
    with pytest.raises(ValueError, match="no converter covers.*scale"):
        jl.interop.to_torch(model)


def test_flax_nnx_embed_and_layernorm_port_with_the_real_model_converters():
    """Flax's own NNX layers answer as their linen twins: nn.Embed / nn.LayerNorm converters, settings
    checked against the torch module (LayerNorm eps), and the output checked on example inputs."""

    class Tiny(nnx.Module):
        def __init__(self, eps: float, rngs: nnx.Rngs):
            self.embed = nnx.Embed(11, 8, rngs=rngs)
            self.norm = nnx.LayerNorm(8, epsilon=eps, rngs=rngs)
            self.head = jl.nnx.Linear(8, 3, rngs=rngs)

        def __call__(self, ids):
            return self.head(self.norm(self.embed(ids)))

    class TorchTiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(11, 8)
            self.norm = torch.nn.LayerNorm(8)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, ids):
            return self.head(self.norm(self.embed(ids)))

    torch.manual_seed(0)
    ref = TorchTiny()
    with torch.no_grad():
        ref.norm.weight.normal_()
        ref.norm.bias.normal_()
    ids = np.array([[1, 4, 7], [0, 10, 2]])
    model = Tiny(1e-5, nnx.Rngs(0))
    nnx.update(model, jl.interop.from_torch(model, ref, example_inputs=ids))  # checked run
    want = ref(torch.from_numpy(ids)).detach().numpy()
    np.testing.assert_allclose(model(jnp.asarray(ids)), want, rtol=1e-5, atol=1e-5)
    assert list(jl.interop.to_torch(model, like=ref, example_inputs=ids)) == list(ref.state_dict())
    with pytest.raises(ValueError, match="eps"):
        jl.interop.from_torch(Tiny(1e-6, nnx.Rngs(0)), ref, example_inputs=ids)


def test_bridged_linen_layers_port_beside_native_ones():
    import flax.linen as nn

    class Mixed(nnx.Module):
        def __init__(self, rngs):
            self.fc = jl.nnx.Linear(4, 8, rngs=rngs)
            self.block = nnx.bridge.ToNNX(nn.Sequential([jl.Linear(8), nn.relu, nn.Dense(3)]),
                                          rngs=rngs)  # fmt: skip

        def __call__(self, x):
            return self.block(jnp.tanh(self.fc(x)))

    class TorchMixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 8)
            self.block = torch.nn.Sequential(
                torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
            )

        def forward(self, x):
            return self.block(torch.tanh(self.fc(x)))

    torch.manual_seed(0)
    ref = TorchMixed()
    model = Mixed(nnx.Rngs(0))
    nnx.bridge.lazy_init(model, jnp.ones((1, 4)))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    nnx.update(model, jl.interop.from_torch(model, ref, example_inputs=x))  # checked run
    assert list(jl.interop.to_torch(model)) == list(ref.state_dict())
