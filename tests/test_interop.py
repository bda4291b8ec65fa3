"""``jl.interop``: from_torch/to_torch round trips, key and shape checks, weight files (no pickle)."""

import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from delu.nn import NLinear as DeluNLinear

import jaxlinear as jl
from parity.exchange import load_torch_file


@pytest.mark.parametrize("use_bias", [True, False])
def test_linear_round_trip_is_exact(key, use_bias):
    layer = jl.Linear(7, use_bias=use_bias)
    variables = layer.init(key, jnp.ones((1, 5)))
    state = jl.interop.to_torch(layer, variables)
    assert state["weight"].shape == (7, 5) and state["weight"].flags["C_CONTIGUOUS"]
    ref = torch.nn.Linear(5, 7, bias=use_bias)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    back = jl.interop.from_torch(layer, ref.state_dict())
    jax.tree.map(np.testing.assert_array_equal, back, variables)


@pytest.mark.parametrize("n", [3, (2, 3)])
def test_nlinear_round_trip_is_exact(key, n):
    n_shape = (n,) if isinstance(n, int) else n
    layer = jl.NLinear(n, 4)
    variables = layer.init(key, jnp.ones((1, *n_shape, 5)))
    ref = DeluNLinear(n, 5, 4)
    ref.load_state_dict(
        {k: torch.from_numpy(v) for k, v in jl.interop.to_torch(layer, variables).items()}
    )
    back = jl.interop.from_torch(layer, ref.state_dict())
    jax.tree.map(np.testing.assert_array_equal, back, variables)


def test_from_torch_casts_to_param_dtype_and_reads_bf16():
    ref = torch.nn.Linear(3, 2).to(torch.bfloat16)
    v = jl.interop.from_torch(jl.Linear(2), ref.state_dict())
    assert v["params"]["kernel"].dtype == jnp.float32
    np.testing.assert_array_equal(v["params"]["kernel"], ref.weight.float().detach().numpy().T)
    v16 = jl.interop.from_torch(jl.Linear(2, param_dtype=jnp.bfloat16), ref.state_dict())
    assert v16["params"]["bias"].dtype == jnp.bfloat16


def test_missing_and_unexpected_keys():
    sd = {"weight": np.ones((2, 3), np.float32), "extra": np.ones(1)}
    with pytest.raises(KeyError, match=r"missing \['bias'\], unexpected \['extra'\]"):
        jl.interop.from_torch(jl.Linear(2), sd)
    with pytest.raises(KeyError, match=r"unexpected \['bias'\]"):
        jl.interop.from_torch(jl.Linear(2, use_bias=False), torch.nn.Linear(3, 2).state_dict())


def test_wrong_shapes():
    with pytest.raises(
        ValueError, match=r"`state_dict\['weight'\]` must have shape \(5, in_features\)"
    ):
        jl.interop.from_torch(jl.Linear(5), torch.nn.Linear(3, 2).state_dict())
    with pytest.raises(ValueError, match=r"`state_dict\['weight'\]` must have shape"):
        jl.interop.from_torch(jl.NLinear(4, 2), DeluNLinear(3, 5, 2).state_dict())


def test_unknown_module_type():
    with pytest.raises(TypeError, match="`module` must be a flax.linen Module"):
        jl.interop.from_torch(object(), {})


def test_state_dict_none_or_not_a_mapping():
    with pytest.raises(TypeError, match="`state_dict` must be a torch state_dict .* got NoneType"):
        jl.interop.from_torch(jl.Linear(2), None)
    with pytest.raises(TypeError, match="got list"):
        jl.interop.from_torch(jl.Linear(2), [np.ones((2, 3))])


def test_from_torch_takes_a_module_with_state_dict():
    ref = torch.nn.Linear(3, 2)
    v = jl.interop.from_torch(jl.Linear(2), ref)
    np.testing.assert_array_equal(v["params"]["kernel"], ref.weight.detach().numpy().T)


def test_to_torch_checks_variables_against_the_module(key):
    v5 = jl.Linear(5).init(key, jnp.ones((1, 3)))
    with pytest.raises(
        ValueError,
        match=r"\['kernel'\]` for Linear\(4, use_bias=True\) must have shape \(in, 4\), got \(3, 5\)",
    ):
        jl.interop.to_torch(jl.Linear(4), v5)
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['bias'\]"):
        jl.interop.to_torch(jl.Linear(5, use_bias=False), v5)  # the bias is never dropped silently
    with pytest.raises(ValueError, match=r"missing \['bias'\]"):
        jl.interop.to_torch(jl.Linear(5), {"params": {"kernel": v5["params"]["kernel"]}})
    with pytest.raises(TypeError, match="`variables` must be a mapping with a 'params'"):
        jl.interop.to_torch(jl.Linear(5), v5["params"])
    vn = jl.NLinear(3, 4).init(key, jnp.ones((1, 3, 2)))
    with pytest.raises(
        ValueError, match=r"\['bias'\]` for NLinear\(2, 4.*must have shape \(2, 4\), got \(3, 4\)"
    ):
        jl.interop.to_torch(
            jl.NLinear(2, 4),
            {"params": {"kernel": jnp.ones((2, 2, 4)), "bias": vn["params"]["bias"]}},
        )


def test_register_refuses_a_second_converter():
    from jaxlinear.interop._registry import converter_for

    with pytest.raises(ValueError, match="`module_cls` must not have a converter yet, got Linear"):
        jl.interop.register(jl.Linear, converter_for(jl.Linear(1)))


def test_safetensors_round_trip(tmp_path):
    ref = torch.nn.Linear(4, 3)
    path = tmp_path / "w.safetensors"
    jl.interop.save_safetensors(path, ref.state_dict())
    loaded = jl.interop.load_safetensors(path)
    assert set(loaded) == {"weight", "bias"}
    np.testing.assert_array_equal(loaded["weight"], ref.weight.detach().numpy())


def test_safetensors_keeps_bf16(tmp_path):
    path = tmp_path / "w.safetensors"
    jl.interop.save_safetensors(path, torch.nn.Linear(4, 3).to(torch.bfloat16).state_dict())
    assert jl.interop.load_safetensors(path)["weight"].dtype == jnp.bfloat16


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_torch_file_never_unpickles_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"weight": _Evil()}, f)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_torch_file(path)


def test_torch_file_with_tensors_loads(tmp_path):
    ref = torch.nn.Linear(4, 3)
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    v = jl.interop.from_torch(jl.Linear(3), load_torch_file(tmp_path / "w.pt"))
    np.testing.assert_array_equal(v["params"]["bias"], ref.bias.detach().numpy())
