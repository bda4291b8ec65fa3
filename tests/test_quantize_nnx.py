"""``quantize`` on native NNX models: a quantized NNX module with the linen workflow's numbers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxlinear as jl


@pytest.fixture(scope="module")
def pair():
    """The same MLP in NNX and in linen, with the same params."""
    net = nnx.Sequential(
        jl.nnx.Linear(4, 16, rngs=nnx.Rngs(0)),
        jax.nn.relu,
        nnx.Linear(16, 16, rngs=nnx.Rngs(1)),
        jax.nn.relu,
        jl.nnx.NLinear(1, 16, 3, rngs=nnx.Rngs(2)),
    )
    linen = nn.Sequential([jl.Linear(16), nn.relu, nn.Dense(16), nn.relu, jl.NLinear(1, 3)])
    pure = nnx.to_pure_dict(nnx.state(net, nnx.Param))["layers"]
    variables = {"params": {"inner": {f"layers_{i}": p for i, p in pure.items()}}}
    x = jax.random.normal(jax.random.key(1), (8, 4))
    return net, linen, variables, x


@pytest.mark.parametrize("mode", ["dynamic", "static", "static minmax", "weight_only"])
def test_quantized_nnx_model_equals_the_linen_workflow(pair, mode):
    net, linen, variables, x = pair
    kw = {"calibration": [x]} if mode.startswith("static") else {}
    if mode == "static minmax":  # the observer choice reaches the NNX branch
        mode, kw = "static", {**kw, "activation_observer": "minmax"}
    qnet = jl.quantization.quantize(_wrap(net), mode=mode, **kw)
    qlinen, qv = jl.quantization.quantize(_Wrap(linen), variables, mode=mode, **kw)
    assert isinstance(qnet.inner.layers[0], jl.quantization.QuantizedNnxLayer)
    assert qnet.inner.layers[0].kernel.dtype == jnp.int8
    np.testing.assert_array_equal(qnet(x), qlinen.apply(qv, x))
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(qnet, x), qnet(x), rtol=1e-6, atol=1e-6)
    # the float model is untouched
    assert net.layers[0].kernel.dtype == jnp.float32


class _Wrap(nn.Module):
    """linen: x (B, in) -> Sequential on (B, 1, in) -> (B, 3)."""

    inner: nn.Module

    def __call__(self, x):
        return self.inner(x[:, None, :])[:, 0, :]


class _NnxWrap(nnx.Module):
    def __init__(self, inner):
        self.inner = inner

    def __call__(self, x):
        return self.inner(x[:, None, :])[:, 0, :]


def _wrap(net):
    return _NnxWrap(net)


def test_errors_name_the_problem(pair):
    net, _, _, x = pair
    with pytest.raises(TypeError, match="`variables` must be omitted"):
        jl.quantization.quantize(_wrap(net), None, mode="dynamic")
    with pytest.raises(TypeError, match="an nnx.Module to quantize a whole model"):
        jl.quantization.quantize(object(), mode="dynamic")
    with pytest.raises(ValueError, match="unit-scaled"):
        jl.quantization.quantize(jl.nnx.UnitScaledLinear(3, 2, rngs=nnx.Rngs(0)), mode="dynamic")
    with pytest.raises(ValueError, match="at least one"):
        jl.quantization.quantize(nnx.LayerNorm(3, rngs=nnx.Rngs(0)), mode="dynamic",
                                 example_inputs=jnp.ones((1, 3)))  # fmt: skip


def test_a_single_layer_becomes_a_quantized_layer():
    layer = jl.nnx.Linear(3, 4, rngs=nnx.Rngs(0))
    q = jl.quantization.quantize(layer, mode="dynamic")
    qlinen, qv = jl.quantization.quantize(
        jl.Linear(4), {"params": nnx.to_pure_dict(nnx.state(layer, nnx.Param))}, mode="dynamic"
    )
    x = jax.random.normal(jax.random.key(3), (5, 3))
    np.testing.assert_array_equal(q(x), qlinen.apply(qv, x))


def test_bridged_linen_layers_quantize_beside_native_ones():
    """A mixed model: a native layer, a bridged linen block, Flax's LayerNorm; static mode."""

    class Mixed(nnx.Module):
        def __init__(self, rngs):
            self.inp = jl.nnx.Linear(4, 16, rngs=rngs)
            self.norm = nnx.LayerNorm(16, rngs=rngs)
            self.block = nnx.bridge.ToNNX(nn.Sequential([jl.Linear(16), nn.relu, nn.Dense(3)]),
                                          rngs=rngs)  # fmt: skip

        def __call__(self, x):
            return self.block(self.norm(jax.nn.relu(self.inp(x))))

    class Linen(nn.Module):
        def setup(self):
            self.inp = jl.Linear(16)
            self.norm = nn.LayerNorm()
            self.block = nn.Sequential([jl.Linear(16), nn.relu, nn.Dense(3)])

        def __call__(self, x):
            return self.block(self.norm(jax.nn.relu(self.inp(x))))

    x = jax.random.normal(jax.random.key(1), (8, 4))
    model = Mixed(nnx.Rngs(0))
    nnx.bridge.lazy_init(model, x)
    variables = {"params": nnx.to_pure_dict(nnx.state(model, nnx.Param))}
    q = jl.quantization.quantize(model, mode="static", calibration=[x])
    assert isinstance(q.inp, jl.quantization.QuantizedNnxLayer)
    assert isinstance(q.block, jl.quantization.QuantizedNnxBridge)
    qlinen, qv = jl.quantization.quantize(Linen(), variables, mode="static", calibration=[x])
    np.testing.assert_array_equal(q(x), qlinen.apply(qv, x))
    assert isinstance(model.block, nnx.bridge.ToNNX)  # the float model is untouched
