"""Whole-model ``from_torch`` / ``to_torch``: matching rules, errors, round trips (outputs vs torch are
parity cases, ``parity/cases/torch_models.py``)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxlinear as jl
from parity.exchange import export_state_dict


def _mlp(sizes=(4, 8, 8, 3)):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def _flax_mlp(sizes=(4, 8, 8, 3)):
    layers = []
    for b in sizes[1:]:
        layers += [jl.Linear(b), nn.relu]
    return nn.Sequential(layers[:-1])


def test_sequential_round_trip_default_names(key):
    model = _flax_mlp()
    variables = model.init(key, jnp.ones((1, 4)))
    state = jl.interop.to_torch(model, variables)  # layers_{i} -> {i}: torch Sequential's names
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    ref = _mlp()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    back = jl.interop.from_torch(model, ref)
    jax.tree.map(np.testing.assert_array_equal, back, variables)


def test_sorted_weight_file_keeps_numeric_order():
    """safetensors stores keys sorted ("10" before "2"): indices are read in numeric order."""
    sizes = (3, 5, 5, 5, 5, 5, 5, 2)  # 7 layers: torch indices 0, 2, ..., 12
    ref = _mlp(sizes)
    variables = jl.interop.from_torch(_flax_mlp(sizes), export_state_dict(ref))
    np.testing.assert_array_equal(
        variables["params"]["layers_10"]["kernel"], ref[10].weight.detach().numpy().T
    )


def test_unmatched_layers_are_named_and_mapping_is_asked_for():
    ref = _mlp((4, 8, 3))
    with pytest.raises(
        ValueError, match=r"'layers_2' -> '2' \(same name\): .*got \(3, 8\)\. Layers.*Pass mapping="
    ):
        jl.interop.from_torch(_flax_mlp((4, 8, 5)), ref)
    extra = {**ref.state_dict(), "aux.weight": torch.ones(2, 8)}
    with pytest.raises(ValueError, match=r"torch prefix 'aux' \(\['weight'\]\): no layer left"):
        jl.interop.from_torch(_flax_mlp((4, 8, 3)), extra)


def test_bad_mapping():
    ref = _mlp((4, 8, 3))
    with pytest.raises(ValueError, match=r"`mapping` must name layers of the model.*\['nope'\]"):
        jl.interop.from_torch(_flax_mlp((4, 8, 3)), ref, mapping={"nope": "0"})
    with pytest.raises(TypeError, match="`mapping` must be a dict"):
        jl.interop.from_torch(_flax_mlp((4, 8, 3)), ref, mapping={"layers_0": 0})
    with pytest.raises(ValueError, match=r"'layers_0' -> '2' \(mapping\)"):
        jl.interop.from_torch(_flax_mlp((4, 8, 3)), ref, mapping={"layers_0": "2"})


class _Gain(nn.Module):
    @nn.compact
    def __call__(self, x):
        return x * self.param("gain", nn.initializers.ones, (1, x.shape[-1]))


class _Gained(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(_Gain()(nn.Dense(8)(x)))


def test_params_no_converter_covers_are_an_error(key):
    model = _Gained()
    variables = model.init(key, jnp.ones((1, 4)))
    with pytest.raises(ValueError, match=r"no converter covers .*_Gain_0/gain"):
        jl.interop.to_torch(model, variables)
    ref = _mlp((4, 8, 3))
    with pytest.raises(ValueError, match=r"no converter covers .*_Gain_0/gain"):
        jl.interop.from_torch(model, ref)


def test_to_torch_of_a_model_checks_shapes(key):
    model = _flax_mlp((4, 8, 3))
    variables = model.init(key, jnp.ones((1, 4)))
    wrong = jax.tree.map(lambda a: a, variables)
    wrong["params"]["layers_2"].pop("bias")
    with pytest.raises(ValueError, match=r"`variables` lack params of `Sequential`: layers_2"):
        jl.interop.to_torch(model, wrong)


def test_example_inputs_for_models_whose_input_is_not_a_weight_row(key):
    class Embedded(nn.Module):
        @nn.compact
        def __call__(self, ids):
            return jl.Linear(3)(jnp.take(jnp.eye(6), ids, axis=0))

    model = Embedded()
    ids = jnp.zeros((2,), jnp.int32)
    ref = torch.nn.Linear(6, 3)
    state = ref.state_dict()  # the module itself would be run on `ids` too
    variables = jl.interop.from_torch(model, state, example_inputs=ids, mapping={"Linear_0": ""})
    np.testing.assert_array_equal(variables["params"]["Linear_0"]["bias"], ref.bias.detach())
