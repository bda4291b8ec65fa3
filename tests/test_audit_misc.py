"""Audit table (tests/_audit.py): ``jl.quantization`` functions and whole-model quantize,
``jl.parametrizations``, ``jl.initializers``, ``jl.walker`` and the ``jl.growing`` entry points."""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl
from jaxlinear import initializers as init
from jaxlinear import parametrizations as pz
from jaxlinear import walker
from jaxlinear.quantization import QTensor
from tests._audit import bad, check, good

Q = jl.quantization
G = jl.growing
KEY = jax.random.key(0)
X = jnp.ones((2, 3))


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return jl.Linear(2)(nn.relu(jl.Linear(4)(x)))


@functools.cache
def _mlp():
    model = _MLP()
    return model, model.init(KEY, X)


def _quantize_static(calibration):
    model, variables = _mlp()
    return Q.quantize(model, variables, mode="static", calibration=calibration)


@functools.cache
def _growing():
    model = G.GrowingMLP(3, 2, 4, 1)
    return model, model.init(KEY, X)["params"]


CASES = [
    # tensors and qparams
    bad("quantize scale 0", lambda: Q.quantize(X, 0.0, 0), ValueError, "scale"),
    bad("quantize scale nan", lambda: Q.quantize(X, math.nan, 0), ValueError, "scale"),
    bad("quantize zero_point float", lambda: Q.quantize(X, 0.1, 1.5), TypeError, "zero_point"),
    bad("quantize zero_point 256", lambda: Q.quantize(X, 0.1, 256), ValueError, "zero_point"),
    bad("quantize dtype int32", lambda: Q.quantize(X, 0.1, 0, jnp.int32), ValueError, "dtype"),
    bad("quantize int input", lambda: Q.quantize(jnp.ones(2, int), 0.1, 0), TypeError, "x"),
    good("quantize empty", lambda: Q.quantize(jnp.ones(0), 0.1, 0).values.shape, (0,)),
    good(
        "quantize saturates",
        lambda: Q.quantize(jnp.array([-1e9, 1e9]), 0.1, -7, jnp.int8).values,
        np.array([-128, 127], np.int8),
    ),
    bad(
        "quantize_per_channel axis 2",
        lambda: Q.quantize_per_channel(X, jnp.ones(2), jnp.zeros(2, int), 2),
        ValueError,
        "axis",
    ),
    bad(
        "quantize_per_channel scales shape",
        lambda: Q.quantize_per_channel(X, jnp.ones(3), jnp.zeros(3, int), 0),
        ValueError,
        "scale",
    ),
    bad("QTensor float values", lambda: QTensor(X, 0.1, 0), TypeError, "values"),
    bad(
        "QTensor axis str",
        lambda: QTensor(jnp.ones(3, jnp.int8), jnp.ones(3), jnp.zeros(3, int), "0"),
        TypeError,
        "axis",
    ),
    bad(
        "QTensor zero_point range",
        lambda: QTensor(jnp.ones(3, jnp.int8), 0.1, 200),
        ValueError,
        "zero_point",
    ),
    bad("dequantize not a QTensor", lambda: Q.dequantize(X), TypeError, "qt"),
    bad("qrange dtype float", lambda: Q.qrange(jnp.float32), ValueError, "dtype"),
    bad("qrange reduce_range str", lambda: Q.qrange(jnp.uint8, "yes"), TypeError, "reduce_range"),
    good("qrange reduce_range numpy bool", lambda: Q.qrange(jnp.uint8, np.bool_(True)), (0, 127)),
    bad("min_max empty", lambda: Q.min_max(jnp.ones(0)), ValueError, "x"),
    bad("min_max int", lambda: Q.min_max(jnp.ones(3, int)), TypeError, "x"),
    bad("min_max axis 3", lambda: Q.min_max(X, axis=3), ValueError, "axis"),
    good(
        "min_max empty with state keeps it",
        lambda: Q.min_max(jnp.ones(0), state=(jnp.float32(-1), jnp.float32(2))),
        (-1.0, 2.0),
    ),
    good(
        "min_max nan propagates",
        lambda: bool(jnp.isnan(Q.min_max(jnp.array([1.0, jnp.nan]))[0])),
        True,
    ),
    bad(
        "choose_qparams min > max",
        lambda: Q.choose_qparams(jnp.float32(2), jnp.float32(1)),
        ValueError,
        "min_val",
    ),
    bad(
        "choose_qparams eps negative",
        lambda: Q.choose_qparams(jnp.float32(0), jnp.float32(1), eps=-1.0),
        ValueError,
        "eps",
    ),
    bad(
        "choose_qparams symmetric str",
        lambda: Q.choose_qparams(jnp.float32(0), jnp.float32(1), symmetric="y"),
        TypeError,
        "symmetric",
    ),
    bad(
        "choose_qparams_dynamic qmin > qmax",
        lambda: Q.choose_qparams_dynamic(0.0, 1.0, qmin=10, qmax=0),
        ValueError,
        "qmin",
    ),
    bad("fake_quantize qmin > qmax", lambda: Q.fake_quantize(X, 0.1, 0, 10, 0), ValueError, "qmin"),
    bad(
        "fake_quantize scale negative",
        lambda: Q.fake_quantize(X, -0.1, 0, 0, 255),
        ValueError,
        "scale",
    ),
    bad(
        "fake_quantize_per_channel axis 5",
        lambda: Q.fake_quantize_per_channel(X, jnp.ones(2), jnp.zeros(2, int), 5, 0, 255),
        ValueError,
        "axis",
    ),
    bad("int8_dot float", lambda: Q.int8_dot(X, X.T), TypeError, "a"),
    bad(
        "int8_dot shapes",
        lambda: Q.int8_dot(jnp.ones((2, 3), jnp.uint8), jnp.ones((4, 2), jnp.int8)),
        ValueError,
        "w",
    ),
    bad(
        "torchao_quantize_weight int",
        lambda: Q.torchao_quantize_weight(jnp.ones((3, 4), int)),
        TypeError,
        "kernel",
    ),
    bad(
        "torchao_weight_only_linear scale shape",
        lambda: Q.torchao_weight_only_linear(X, jnp.ones((3, 4), jnp.int8), jnp.ones(3)),
        ValueError,
        "scale",
    ),
    bad(
        "quantized_linear engine",
        lambda: Q.quantized_linear(
            Q.quantize(X, 0.1, 0),
            Q.quantize_per_channel(jnp.ones((3, 4)), jnp.ones(4), jnp.zeros(4, int), 1),
            None,
            1.0,
            0,
            engine="arm",
        ),
        ValueError,
        "engine",
    ),
    bad(
        "dynamic_quantized_linear kernel not a QTensor",
        lambda: Q.dynamic_quantized_linear(X, jnp.ones((3, 4))),
        TypeError,
        "kernel",
    ),
    # whole-model quantize and calibration
    bad("quantize model mode", lambda: Q.quantize(*_mlp(), mode="int4"), ValueError, "mode"),
    bad(
        "quantize model engine",
        lambda: Q.quantize(*_mlp(), mode="dynamic", engine="arm"),
        ValueError,
        "engine",
    ),
    bad(
        "quantize model per_channel str",
        lambda: Q.quantize(*_mlp(), mode="dynamic", per_channel="yes"),
        TypeError,
        "per_channel",
    ),
    good(
        "quantize model per_channel numpy bool",
        lambda: Q.quantize(*_mlp(), mode="dynamic", per_channel=np.bool_(True))[0].per_channel,
        True,
    ),
    bad(
        "quantize model scheme",
        lambda: Q.quantize(*_mlp(), mode="dynamic", scheme="int4"),
        ValueError,
        "scheme",
    ),
    bad("quantize static no calibration", lambda: _quantize_static(None), TypeError, "calibration"),
    bad(
        "quantize static empty calibration", lambda: _quantize_static([]), ValueError, "calibration"
    ),
    bad(
        "quantize static empty batch",
        lambda: _quantize_static([jnp.ones((0, 3))]),
        ValueError,
        "calibration",
    ),
    bad(
        "quantize static dict batch", lambda: _quantize_static([{"x": X}]), TypeError, "calibration"
    ),
    bad(
        "quantize static wrong features",
        lambda: _quantize_static([jnp.ones((2, 5))]),
        ValueError,
        "x",
    ),
    bad(
        "quantize dynamic with calibration",
        lambda: Q.quantize(*_mlp(), mode="dynamic", calibration=[X]),
        ValueError,
        "calibration",
    ),
    bad(
        "quantize model not a module",
        lambda: Q.quantize(lambda x: x, {}, mode="dynamic"),
        TypeError,
        "model",
    ),
    # parametrizations and initializers
    bad(
        "get_parametrization unknown",
        lambda: pz.get_parametrization("ntk2"),
        ValueError,
        "parametrization",
    ),
    bad("get_parametrization int", lambda: pz.get_parametrization(3), TypeError, "parametrization"),
    bad(
        "canonical_optimizer lion", lambda: pz.canonical_optimizer("lion"), ValueError, "optimizer"
    ),
    bad("mup_width_mult base 0", lambda: pz.mup_width_mult(4, 0), ValueError, "base_fan_in"),
    good("mup_width_mult real fan_in", lambda: pz.mup_width_mult(4.5, 2), 2.25),
    bad(
        "mup_readout_input width_mult 0",
        lambda: pz.mup_readout_input(X, 0.0),
        ValueError,
        "width_mult",
    ),
    bad(
        "mup_readout_input output_mult nan",
        lambda: pz.mup_readout_input(X, 1.0, math.nan),
        ValueError,
        "output_mult",
    ),
    bad(
        "weight_init_scale fan_in 0",
        lambda: pz.MaximalUpdate().weight_init_scale(0, 4),
        ValueError,
        "fan_in",
    ),
    bad(
        "weight_lr_scale optimizer",
        lambda: pz.MaximalUpdate().weight_lr_scale(4, 4, "lion"),
        ValueError,
        "optimizer",
    ),
    good("torch_uniform_bound 0 is torch's 0", lambda: init.torch_uniform_bound(0), 0.0),
    bad("torch_uniform negative", lambda: init.torch_uniform(-1), ValueError, "fan_in"),
    bad("normal std negative", lambda: init.normal(-1.0), ValueError, "std"),
    bad("normal std nan", lambda: init.normal(math.nan), ValueError, "std"),
    good("normal std 0", lambda: init.normal(0.0)(KEY, (2,)), [0.0, 0.0]),
    good("normal std numpy float", lambda: init.normal(np.float32(0.0))(KEY, (1,)), [0.0]),
    bad(
        "layer_inits layer_type",
        lambda: init.layer_inits("mup", 3, 4, "middle"),
        ValueError,
        "layer_type",
    ),
    # walker
    bad("walker.walk module not a module", lambda: walker.walk(3, {}), TypeError, "module"),
    bad(
        "walker.walk variables without params",
        lambda: walker.walk(_mlp()[0], {}, X),
        ValueError,
        "params",
    ),
    bad(
        "walker.walk wrong input",
        lambda: walker.walk(_mlp()[0], _mlp()[1], jnp.ones((2, 5))),
        ValueError,
        "x",
    ),
    good(
        "walker.find_layers",
        lambda: [c.name for c in walker.find_layers(*_mlp(), X)],
        ["Linear_1", "Linear_0"],
    ),  # call order: the inner Linear_1 runs first
    good("walker.find_layers again", lambda: len(walker.find_layers(*_mlp(), X)), 2),
    bad(
        "walker.params_at missing path",
        lambda: walker.params_at(_mlp()[1], ("nope",)),
        ValueError,
        "nope",
    ),
    bad(
        "walker.find_layers types not types",
        lambda: walker.find_layers(*_mlp(), X, types=["Linear"]),
        TypeError,
        "types",
    ),
    # growing entry points (argument checks only; helper R1 owns growth itself)
    bad("GrowingMLP in_features 0", lambda: G.GrowingMLP(0, 2, 4, 1), ValueError, "in_features"),
    bad(
        "GrowingMLP activation unknown",
        lambda: G.GrowingMLP(3, 2, 4, 1, activation="swish2"),
        ValueError,
        "activation",
    ),
    bad(
        "GrowingMLP hidden negative",
        lambda: G.GrowingMLP(3, 2, -1, 1),
        ValueError,
        "hidden_features",
    ),
    bad(
        "GrowingMLP use_bias str",
        lambda: G.GrowingMLP(3, 2, 4, 1, use_bias="yes"),
        TypeError,
        "use_bias",
    ),
    bad(
        "GrowingMLP wrong input",
        lambda: _growing()[0].apply({"params": _growing()[1]}, jnp.ones((2, 5))),
        ValueError,
        "x",
    ),
    bad("bucket_capacity width negative", lambda: G.bucket_capacity(-1), ValueError, "width"),
    bad(
        "activation_gradient_at_zero unknown",
        lambda: G.activation_gradient_at_zero("swish2"),
        ValueError,
        "activation",
    ),
    bad("compute_s_update 1-d", lambda: G.compute_s_update(jnp.ones(3)), ValueError, "x"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_audit(case):
    check(case)
