"""jl.QuantizedLinear / jl.DynamicQuantizedLinear: params, shapes, interop errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl
from jaxlinear import quantization as Q


def _packed_state(per_channel=False, bias=True):
    """A torch-like state_dict built from duck-typed fakes (no torch needed)."""

    class FakeQWeight:
        def __init__(self, values):
            self.values = values

        def int_repr(self):
            return self.values

        def qscheme(self):
            return "torch.per_channel_affine" if per_channel else "torch.per_tensor_affine"

        def q_scale(self):
            return 0.5

        def q_zero_point(self):
            return 0

        def q_per_channel_scales(self):
            return np.full(4, 0.5)

        def q_per_channel_zero_points(self):
            return np.zeros(4, np.int64)

        def q_per_channel_axis(self):
            return 0

    w = FakeQWeight(np.arange(12, dtype=np.int8).reshape(4, 3))
    return {
        "scale": np.float32(0.25),
        "zero_point": np.int64(3),
        "_packed_params.dtype": "torch.qint8",
        "_packed_params._packed_params": (w, np.ones(4, np.float32) if bias else None),
    }


@pytest.mark.parametrize("per_channel", [False, True])
def test_static_from_fake_state_dict(per_channel):
    layer = jl.QuantizedLinear(4, per_channel=per_channel)
    v = jl.interop.from_torch(layer, _packed_state(per_channel))
    assert v["params"]["kernel"].shape == (3, 4) and v["params"]["kernel"].dtype == jnp.int8
    assert v["params"]["kernel_scale"].shape == ((4,) if per_channel else ())
    x = Q.quantize(jnp.ones((2, 5, 3)), 0.1, 0)
    y = layer.apply(v, x)
    assert y.values.shape == (2, 5, 4) and y.values.dtype == jnp.uint8
    assert float(y.scale) == 0.25 and int(y.zero_point) == 3
    sd = jl.interop.to_torch(layer, v)
    np.testing.assert_array_equal(sd["weight"], np.arange(12).reshape(4, 3))


def test_interop_errors():
    with pytest.raises(ValueError, match="`per_channel` of the module must be True"):
        jl.interop.from_torch(jl.QuantizedLinear(4), _packed_state(per_channel=True))
    with pytest.raises(ValueError, match=r"must have shape \(5, in_features\)"):
        jl.interop.from_torch(jl.QuantizedLinear(5), _packed_state())
    with pytest.raises(ValueError, match="`use_bias` of the module must be False"):
        jl.interop.from_torch(jl.QuantizedLinear(4), _packed_state(bias=False))
    with pytest.raises(KeyError, match="missing"):
        jl.interop.from_torch(jl.QuantizedLinear(4), {"scale": 1.0})
    bad = _packed_state()
    bad["_packed_params._packed_params"] = (np.ones((4, 3)), None)
    with pytest.raises(TypeError, match="torch quantized tensor"):
        jl.interop.from_torch(jl.QuantizedLinear(4, use_bias=False), bad)


def test_dynamic_module_shapes_and_zero_batch():
    layer = jl.DynamicQuantizedLinear(4)
    v = jl.interop.from_torch(layer, _packed_state())
    assert sorted(v["params"]) == ["bias", "kernel", "kernel_scale", "kernel_zero_point"]
    assert layer.apply(v, jnp.ones((0, 3))).shape == (0, 4)
    assert layer.apply(v, jnp.ones(3)).shape == (4,)


def test_module_validation():
    with pytest.raises(ValueError, match="`engine` must be one of"):
        jl.QuantizedLinear(4, engine="onednn")
    with pytest.raises(ValueError, match="`features` must be an int > 0"):
        jl.DynamicQuantizedLinear(0)
    layer = jl.QuantizedLinear(4)
    with pytest.raises(TypeError, match="`x` must be a uint8 QTensor"):
        layer.init(jax.random.key(0), jnp.ones((2, 3)))
    v = layer.init(jax.random.key(0), Q.quantize(jnp.ones((2, 3)), 0.1, 0))
    with pytest.raises(ValueError, match="`x` must have 3 input features"):
        layer.apply(v, Q.quantize(jnp.ones((2, 5)), 0.1, 0))


@pytest.mark.parametrize("flag", ["use_bias", "per_channel", "relu", "int16_saturation"])
@pytest.mark.parametrize("value", ["False", "True", 0, None])
def test_module_flags_must_be_bools(flag, value):
    with pytest.raises(TypeError, match=f"`{flag}` must be a bool"):
        jl.QuantizedLinear(4, **{flag: value})
    if flag != "relu":
        with pytest.raises(TypeError, match=f"`{flag}` must be a bool"):
            jl.DynamicQuantizedLinear(4, **{flag: value})
    with pytest.raises(TypeError, match="`reduce_range` must be a bool"):
        jl.DynamicQuantizedLinear(4, reduce_range=value)


def test_module_rejects_qnnpack_saturation():
    for cls in (jl.QuantizedLinear, jl.DynamicQuantizedLinear):
        with pytest.raises(ValueError, match="must be False with engine 'qnnpack'"):
            cls(4, engine="qnnpack", int16_saturation=True)
