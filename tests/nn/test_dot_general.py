"""``dot_general`` / ``dot_general_cls`` on the float layers (as Flax's ``nn.Dense``), linen and NNX."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

import jaxlinear as jl

RTOL, ATOL = 1e-5, 1e-6  # fp32: the injected lax.dot_general vs jaxlinear's own product

# (linen layer with extra kwargs, its NNX twin with the same kwargs, input shape)
LAYERS = {
    "Linear": (lambda **kw: jl.Linear(4, **kw), lambda **kw: jl.nnx.Linear(3, 4, **kw), (5, 3)),
    "NLinear": (
        lambda **kw: jl.NLinear((2, 3), 4, **kw),
        lambda **kw: jl.nnx.NLinear((2, 3), 5, 4, **kw),
        (6, 2, 3, 5),
    ),
    "NLinear member_major": (
        lambda **kw: jl.NLinear(2, 4, layout="member_major", **kw),
        lambda **kw: jl.nnx.NLinear(2, 3, 4, layout="member_major", **kw),
        (2, 7, 3),
    ),
    "UnitScaledLinear": (
        lambda **kw: jl.UnitScaledLinear(4, use_bias=True, **kw),
        lambda **kw: jl.nnx.UnitScaledLinear(3, 4, use_bias=True, **kw),
        (5, 3),
    ),
    "LinearReadout": (
        lambda **kw: jl.LinearReadout(4, use_bias=True, constraint="gmean", **kw),
        lambda **kw: jl.nnx.LinearReadout(3, 4, use_bias=True, constraint="gmean", **kw),
        (2, 5, 3),
    ),
}


@functools.cache
def _setup(name):
    make, _, shape = LAYERS[name]
    x = jax.random.normal(jax.random.key(1), shape)
    params = make().init(jax.random.key(0), x)["params"]
    # a non-zero bias (unit-scaled layers start at zeros)
    params = {**params, "bias": jax.random.normal(jax.random.key(2), params["bias"].shape)}
    return x, {"params": params}


def _value_and_grads(layer, variables, x):
    def loss(v, x):
        return (layer.apply(v, x) ** 2).sum()

    return layer.apply(variables, x), jax.grad(loss, argnums=(0, 1))(variables, x)


class Counting:
    """A dot_general that records its calls and scales the product (so its use shows in the output)."""

    def __init__(self, scale: float = 1.0):
        self.calls, self.scale = [], scale

    def __call__(self, lhs, rhs, dims, precision=None, **kwargs):
        self.calls.append((dims, precision))
        return self.scale * lax.dot_general(lhs, rhs, dims, precision=precision, **kwargs)


@pytest.mark.parametrize("name", LAYERS)
def test_injected_lax_dot_general_gives_the_default_numbers(name):
    make, _, _ = LAYERS[name]
    x, variables = _setup(name)
    y0, g0 = _value_and_grads(make(), variables, x)
    y1, g1 = _value_and_grads(make(dot_general=lax.dot_general), variables, x)
    np.testing.assert_allclose(y1, y0, rtol=RTOL, atol=ATOL)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL), g1, g0)
    # dot_general_cls: a class built at every call
    y2 = make(dot_general_cls=lambda: lax.dot_general).apply(variables, x)
    np.testing.assert_array_equal(y2, y1)


@pytest.mark.parametrize("name", LAYERS)
def test_injected_dot_general_is_called_with_precision_and_its_product_used(name):
    make, _, _ = LAYERS[name]
    x, variables = _setup(name)
    default = make().apply(variables, x)
    zero_bias = jnp.zeros_like(variables["params"]["bias"])
    no_bias = make().apply({"params": {**variables["params"], "bias": zero_bias}}, x)
    dot = Counting(scale=2.0)
    y = make(dot_general=dot, precision="highest").apply(variables, x)
    assert len(dot.calls) == 1 and dot.calls[0][1] == "highest"
    # the layer's output is built on the injected product: 2 * product + bias (inside the scales)
    np.testing.assert_allclose(y, default + no_bias, rtol=RTOL, atol=ATOL)


def test_dot_general_cls_is_built_at_every_call():
    built = []

    class Dot(Counting):
        def __init__(self):
            super().__init__()
            built.append(self)

    x, variables = _setup("Linear")
    layer = jl.Linear(4, dot_general_cls=Dot)
    layer.apply(variables, x)
    layer.apply(variables, x)
    assert len(built) == 2 and all(len(d.calls) == 1 for d in built)
    assert built[0].calls[0][0] == (((1,), (0,)), ((), ()))  # nn.Dense's dimension numbers


@pytest.mark.parametrize("name", LAYERS)
def test_nnx_twin_with_a_dot_general_is_bit_identical_to_linen(name):
    _, make_nnx, shape = LAYERS[name]
    dot = Counting(scale=0.5)
    layer = make_nnx(dot_general=dot, rngs=nnx.Rngs(0))
    layer.bias[...] = jax.random.normal(jax.random.key(2), layer.bias.shape)
    x = jax.random.normal(jax.random.key(1), shape)
    twin = layer.linen_twin()
    assert twin.dot_general is dot
    variables = {"params": nnx.to_pure_dict(nnx.state(layer, nnx.Param))}
    np.testing.assert_array_equal(layer(x), twin.apply(variables, x))
    g_nnx = nnx.grad(lambda m: (m(x) ** 2).sum())(layer)
    g_linen = jax.grad(lambda v: (twin.apply(v, x) ** 2).sum())(variables)
    jax.tree.map(np.testing.assert_array_equal, nnx.to_pure_dict(g_nnx), g_linen["params"])
    assert dot.calls  # the injected product ran in both


@pytest.mark.parametrize("name", LAYERS)
def test_bad_dot_general_arguments_raise_before_compute(name):
    make, make_nnx, _ = LAYERS[name]
    with pytest.raises(TypeError, match="`dot_general` must be None or callable"):
        make(dot_general="lax")
    with pytest.raises(TypeError, match="`dot_general_cls` must be None or callable"):
        make(dot_general_cls=3)
    with pytest.raises(ValueError, match="`dot_general` and `dot_general_cls` both given"):
        make(dot_general=lax.dot_general, dot_general_cls=lambda: lax.dot_general)
    with pytest.raises(TypeError, match="`dot_general` must be None or callable"):
        make_nnx(dot_general=1.0, rngs=nnx.Rngs(0))
    x, variables = _setup(name)
    with pytest.raises(TypeError, match="`dot_general_cls` must build a dot product function"):
        make(dot_general_cls=lambda: None).apply(variables, x)


def test_workflows_on_a_layer_with_a_dot_general():
    """lr_factors reads params only; quantize replaces the product with the int8 one."""
    x, variables = _setup("Linear")
    plain, injected = jl.Linear(4), jl.Linear(4, dot_general=Counting(scale=3.0))
    f0 = jl.optim.lr_factors(plain, variables, x, optimizer="adam")
    f1 = jl.optim.lr_factors(injected, variables, x, optimizer="adam")
    assert f0 == f1
    q0, qv0 = jl.quantization.quantize(plain, variables, mode="dynamic")
    q1, qv1 = jl.quantization.quantize(injected, variables, mode="dynamic")
    np.testing.assert_array_equal(q1.apply(qv1, x), q0.apply(qv0, x))


def test_growable_linear_uses_and_checks_its_dot_general():
    x, variables = _setup("Linear")
    dot = Counting(scale=2.0)
    y = jl.growing.GrowableLinear(4, dot_general=dot).apply(variables, x)
    assert len(dot.calls) == 1
    zero_bias = {"params": {**variables["params"], "bias": jnp.zeros(4)}}
    expected = jl.Linear(4).apply(variables, x) + jl.Linear(4).apply(zero_bias, x)
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=ATOL)
    with pytest.raises(ValueError, match="`dot_general` and `dot_general_cls` both given"):
        jl.growing.GrowableLinear(4, dot_general=dot, dot_general_cls=Counting)
