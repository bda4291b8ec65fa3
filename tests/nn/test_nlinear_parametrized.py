"""jl.NLinear with a parametrization: N inferno layers in one op (fans per member, interop, rules)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from inferno import bnn

import jaxlinear as jl
from parity.exchange import export_state_dict


@pytest.mark.parametrize("layer_type", ["input", "hidden", "output"])
def test_loads_n_inferno_layers_and_matches_each(layer_type):
    n, n_in, n_out = 3, 7, 5
    torch.manual_seed(0)
    refs = [bnn.Linear(n_in, n_out, layer_type=layer_type, parametrization=bnn.params.MUP())
            for _ in range(n)]  # fmt: skip
    states = [export_state_dict(r.eval()) for r in refs]
    state = {"weight": np.stack([sd["params.weight"].T for sd in states]),
             "bias": np.stack([sd["params.bias"] for sd in states])}  # fmt: skip
    layer = jl.NLinear(n, n_out, parametrization="mup", layer_type=layer_type)
    variables = jl.interop.from_torch(layer, state)
    x = np.random.default_rng(0).standard_normal((4, n, n_in), dtype=np.float32)
    got = layer.apply(variables, x)
    for i, ref in enumerate(refs):
        want = ref(torch.from_numpy(x[:, i])).detach().numpy()
        np.testing.assert_allclose(got[:, i], want, rtol=1e-5, atol=1e-6)


def test_init_scales_are_per_member():
    """Fixed key: deterministic. Bound 6/sqrt(2N) on the std ratio (N = in * out draws per member)."""
    layer = jl.NLinear((2, 3), 32, parametrization="mup", layer_type="output")
    p = layer.init(jax.random.key(0), jnp.ones((1, 2, 3, 128)))["params"]
    assert p["kernel"].shape == (2, 3, 128, 32) and p["bias"].shape == (2, 3, 32)
    std = np.asarray(p["kernel"]).reshape(6, -1).std(axis=1, ddof=1) * 128  # s_w = 1/fan_in
    np.testing.assert_allclose(std, 1.0, atol=6 / np.sqrt(2 * 128 * 32))
    plain = jl.NLinear(3, 4).init(jax.random.key(0), jnp.ones((1, 3, 16)))["params"]
    assert float(jnp.abs(plain["kernel"]).max()) <= 0.25  # delu's U(±1/√in) without one


def test_bad_parametrization_and_layer_type():
    with pytest.raises(ValueError, match="`layer_type` must be one of"):
        jl.NLinear(2, 3, layer_type="Hidden")
    with pytest.raises(ValueError, match="`parametrization` must be one of"):
        jl.NLinear(2, 3, parametrization="muP")
    with pytest.raises(TypeError, match="must be an instance"):
        jl.NLinear(2, 3, parametrization=jl.parametrizations.MaximalUpdate)
