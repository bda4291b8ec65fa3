"""A GrowingMLP in the whole-model workflows with no special case: its layers are ``GrowableLinear``
(a ``jl.Linear``), so ``lr_factors``, ``quantize`` and ``from_torch`` treat it as any model."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl
from jaxlinear.walker import find_layers

G = jl.growing


class _PlainStack(nn.Module):
    """The GrowingMLP 5 -> 4 -> 4 -> 3 (tanh) as plain ``jl.Linear`` layers with the same names."""

    @nn.compact
    def __call__(self, x):
        for i, features in enumerate((4, 4)):
            x = jnp.tanh(jl.Linear(features, name=f"layers_{i}")(x))
        return jl.Linear(3, name="layers_2")(x)


@pytest.fixture(scope="module")
def grown():
    model = G.GrowingMLP(5, 3, 4, 2, "tanh")
    variables = model.init(jax.random.key(0), jnp.ones((1, 5)))
    x = jax.random.normal(jax.random.key(1), (16, 5))
    return model, variables, x


def test_layers_are_linear_to_the_walker(grown):
    model, variables, _ = grown
    calls = find_layers(model, variables)
    assert [c.name for c in calls] == ["layers_0", "layers_1", "layers_2"]
    assert all(isinstance(c.module, jl.Linear) for c in calls)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("capacity", [None, 8])
def test_lr_factors_without_default(optimizer, capacity):
    model = G.GrowingMLP(5, 3, 4, 2, "tanh", capacity=capacity)
    variables = model.init(jax.random.key(0), jnp.ones((1, 5)))
    factors = jl.optim.lr_factors(model, variables, optimizer=optimizer)  # no default=
    want = {f"layers_{i}": {"bias": 1.0, "kernel": 1.0} for i in range(3)}  # torch's plain factor
    assert factors.lr == want and factors.weight_decay == want


def test_growable_linear_answers_its_parametrization_rule():
    layer = G.GrowableLinear(8, parametrization="mup", layer_type="hidden")
    shapes = {"kernel": (64, 8), "bias": (8,)}
    want = jl.Linear(8, parametrization="mup").lr_rule(shapes, "adam")
    assert layer.lr_rule(shapes, "adam") == want == {"kernel": (1 / 64, 1.0), "bias": (1.0, 1.0)}


def test_quantize_dynamic_equals_the_plain_linear_stack(grown):
    model, variables, x = grown
    qmodel, qvars = jl.quantization.quantize(model, variables, mode="dynamic")
    pmodel, pvars = jl.quantization.quantize(_PlainStack(), variables, mode="dynamic")
    jax.tree.map(np.testing.assert_array_equal, qvars, pvars)
    np.testing.assert_array_equal(qmodel.apply(qvars, x), pmodel.apply(pvars, x))


def test_quantize_dynamic_of_a_bucketed_model_equals_its_unpadded_one(grown):
    model, variables, x = grown
    bucketed, bvars = G.pad(model, variables["params"], 8)
    qb, qbv = jl.quantization.quantize(bucketed, bvars, mode="dynamic")
    qp, qpv = jl.quantization.quantize(model, variables, mode="dynamic")
    np.testing.assert_array_equal(qb.apply(qbv, x), qp.apply(qpv, x))


def test_from_torch_of_gromo_module_through_the_layer_converters():
    torch = pytest.importorskip("torch")
    gromo_mlp = pytest.importorskip("gromo.containers.growing_mlp")
    torch.manual_seed(0)
    ref = gromo_mlp.GrowingMLP(5, 3, 4, 2, activation=torch.nn.Tanh(), use_bias=True)
    model = G.GrowingMLP(5, 3, 4, 2, "tanh")
    variables = jl.interop.from_torch(model, ref.state_dict())
    x = np.random.default_rng(0).standard_normal((16, 5)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(model.apply(variables, x)), want, rtol=1e-5, atol=1e-6)
    state = jl.interop.to_torch(model, variables)
    assert sorted(state) == sorted(ref.state_dict())
    for key, value in ref.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy())


def test_from_torch_of_gromo_module_is_the_generic_walk_with_gromo_names():
    """No converter for the model: its layers' own, paired by the layout's names (gromo's
    ``layers.{i}.layer``); with the torch module and inputs, both models run and must agree."""
    torch = pytest.importorskip("torch")
    gromo_mlp = pytest.importorskip("gromo.containers.growing_mlp")
    from jaxlinear.interop._registry import converter_for

    model = G.GrowingMLP(5, 3, 4, 2, "tanh")
    assert converter_for(model) is None
    torch.manual_seed(1)
    ref = gromo_mlp.GrowingMLP(5, 3, 4, 2, activation=torch.nn.Tanh(), use_bias=True)
    x = np.random.default_rng(1).standard_normal((8, 5)).astype(np.float32)
    variables = jl.interop.from_torch(model, ref, example_inputs=x)  # check=True: outputs agree
    state = jl.interop.to_torch(model, variables, like=ref)
    assert list(state) == list(ref.state_dict())
    with pytest.raises(ValueError, match="layers.1.layer"):  # a wider state: the pair's shapes
        jl.interop.from_torch(G.GrowingMLP(5, 3, 2, 2, "tanh"), ref.state_dict())


def test_from_torch_of_a_bucketed_model_pads_and_to_torch_writes_the_active_neurons():
    torch = pytest.importorskip("torch")
    gromo_mlp = pytest.importorskip("gromo.containers.growing_mlp")
    torch.manual_seed(2)
    ref = gromo_mlp.GrowingMLP(5, 3, 3, 1, activation=torch.nn.Tanh(), use_bias=True)
    model = G.GrowingMLP(5, 3, 3, 1, "tanh", capacity=8)
    variables = jl.interop.from_torch(model, ref.state_dict())
    assert variables["params"]["layers_0"]["kernel"].shape == (5, 8)
    assert variables["growth"]["widths"].tolist() == [3]
    x = np.random.default_rng(2).standard_normal((16, 5)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(model.apply(variables, x)), want, rtol=1e-5, atol=1e-6)
    state = jl.interop.to_torch(model, variables)
    assert {k: v.shape for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in ref.state_dict().items()
    }
    for key, value in ref.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy())
    fewer = {**variables, "growth": {"widths": jnp.asarray([2], jnp.int32)}}  # 2 active neurons
    assert jl.interop.to_torch(model, fewer)["layers.1.layer.weight"].shape == (3, 2)
    with pytest.raises(ValueError, match="growth"):
        jl.interop.to_torch(model, {"params": variables["params"]})
