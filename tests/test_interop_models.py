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


# ---------------------------------------------------------------- never silently wrong (v3)
class _Swapped(torch.nn.Module):
    """Two same-shape layers, proj_out declared before proj_in, called proj_in first."""

    def __init__(self):
        super().__init__()
        self.proj_out = torch.nn.Linear(8, 8)
        self.proj_in = torch.nn.Linear(8, 8)

    def forward(self, x):
        return self.proj_out(torch.tanh(self.proj_in(x)))


class _TwoDense(nn.Module):
    act: str = "tanh"

    @nn.compact
    def __call__(self, x):
        first = nn.Dense(8, name="a")(x)
        return nn.Dense(8, name="b")(jnp.tanh(first) if self.act == "tanh" else nn.relu(first))


def _kernel_of(variables, name):
    return np.asarray(variables["params"][name]["kernel"]).T


def test_call_order_from_the_module_state_dict_refused(key):
    torch.manual_seed(0)
    ref, model = _Swapped(), _TwoDense()
    variables = jl.interop.from_torch(model, ref)  # traced on a probe: right
    np.testing.assert_array_equal(_kernel_of(variables, "a"), ref.proj_in.weight.detach())
    np.testing.assert_array_equal(_kernel_of(variables, "b"), ref.proj_out.weight.detach())
    refused = r"equal-shaped layers whose names do not decide: Flax \['a', 'b'\] and torch \['proj_out', 'proj_in'\]"
    with pytest.raises(ValueError, match=refused):
        jl.interop.from_torch(model, ref.state_dict())
    back = jl.interop.to_torch(model, variables, like=ref)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(back[k], v.numpy())
    with pytest.raises(ValueError, match="equal-shaped layers whose names do not decide"):
        jl.interop.to_torch(model, variables, like=ref.state_dict())
    mapped = jl.interop.from_torch(
        model, ref.state_dict(), mapping={"a": "proj_in", "b": "proj_out"}
    )
    jax.tree.map(np.testing.assert_array_equal, mapped, variables)


def test_sorted_file_encoder_decoder_refused():
    class EncDec(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)

        def forward(self, x):
            return self.decoder(torch.tanh(self.encoder(x)))

    ref = EncDec()
    state = export_state_dict(ref)
    assert list(state)[0].startswith("decoder")  # a file's keys come back sorted
    with pytest.raises(ValueError, match=r"torch \['decoder', 'encoder'\].*pass the torch module"):
        jl.interop.from_torch(_TwoDense(), state)
    variables = jl.interop.from_torch(_TwoDense(), ref)
    np.testing.assert_array_equal(_kernel_of(variables, "a"), ref.encoder.weight.detach())


def test_output_check_catches_a_model_built_differently():
    torch.manual_seed(1)
    ref, x = _Swapped(), np.random.default_rng(0).standard_normal((4, 8), dtype=np.float32)
    jl.interop.from_torch(_TwoDense(), ref, example_inputs=x)  # checked: agrees
    with pytest.raises(ValueError, match=r"does not compute what the torch module does.*output 0"):
        jl.interop.from_torch(_TwoDense(act="relu"), ref, example_inputs=x)
    jl.interop.from_torch(_TwoDense(act="relu"), ref, example_inputs=x, check=False)
    with pytest.raises(ValueError, match="`check=True` runs the torch module"):
        jl.interop.from_torch(_TwoDense(), ref.state_dict(), check=True)
    with pytest.raises(TypeError, match="`check` must be a bool"):
        jl.interop.from_torch(_TwoDense(), ref, check="yes")


def _normed(eps):
    return nn.Sequential([nn.Dense(16), nn.LayerNorm(epsilon=eps), nn.gelu, nn.Dense(3)])


def test_layer_norm_epsilon_is_checked_or_warned():
    ref = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.LayerNorm(16), torch.nn.GELU(), torch.nn.Linear(16, 3)
    )
    with pytest.raises(ValueError, match=r"torch eps=1e-05, Flax epsilon=1e-06: .*epsilon=1e-05"):
        jl.interop.from_torch(_normed(1e-6), ref)
    with pytest.warns(UserWarning, match="keep Flax's default epsilon=1e-6"):
        jl.interop.from_torch(_normed(1e-6), ref.state_dict())
    variables = jl.interop.from_torch(_normed(1e-5), ref)
    assert variables["params"]["layers_1"]["scale"].shape == (16,)
    rms = torch.nn.RMSNorm(16)  # eps=None: finfo(float32).eps
    with pytest.raises(ValueError, match=r"eps=None: finfo\(float32\).eps"):
        jl.interop.from_torch(nn.RMSNorm(), rms)


def test_attention_heads_are_checked():
    ref = torch.nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match="torch num_heads=2, Flax num_heads=4"):
        jl.interop.from_torch(nn.MultiHeadDotProductAttention(num_heads=4), ref)
    variables = jl.interop.from_torch(nn.MultiHeadDotProductAttention(num_heads=2), ref)
    assert variables["params"]["query"]["kernel"].shape == (8, 2, 4)


def test_dense_general_needs_a_2d_kernel():
    with pytest.raises(ValueError, match="DenseGeneral with a 2-D kernel"):
        jl.interop.from_torch(nn.DenseGeneral((2, 3)), torch.nn.Linear(4, 6))


def test_register_checks_its_arguments():
    converter = jl.interop.Converter("torch.nn.Linear", lambda m, s: {}, lambda m, v: {})
    with pytest.raises(TypeError, match="`module_cls` must be a Flax Module class"):
        jl.interop.register("nn.Dense", converter)
    with pytest.raises(TypeError, match="`converter` must be a jaxlinear.interop.Converter"):
        jl.interop.register(nn.Dense, "torch.nn.Linear")
    with pytest.raises(TypeError, match="`from_torch` must be callable"):
        jl.interop.Converter("torch.nn.Linear", "junk", lambda m, v: {})


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.ao's deprecation notice
def test_quantized_model_loads_float_layers_too():
    """quantize_dynamic keeps LayerNorm in float: from_torch(qmodel, ...) loads it with its converter."""
    torch.manual_seed(0)
    ref = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.ReLU(), torch.nn.Linear(16, 4)
    ).eval()
    model = nn.Sequential([nn.Dense(16), nn.LayerNorm(epsilon=1e-5), nn.relu, nn.Dense(4)])
    qmodel, qvariables = jl.quantization.quantize(
        model, jl.interop.from_torch(model, ref), mode="dynamic"
    )
    torch_q = torch.ao.quantization.quantize_dynamic(ref, {torch.nn.Linear}, dtype=torch.qint8)
    loaded = jl.interop.from_torch(qmodel, torch_q)
    jax.tree.map(np.testing.assert_array_equal, loaded, qvariables)
