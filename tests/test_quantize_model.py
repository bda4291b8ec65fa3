"""``jl.quantization.quantize(model, ...)``: every mode and scheme on a mixed model, NLinear's per-member
scheme, dtypes, bad input, QAT (numbers against torch are parity cases: ``torch_quantized``,
``torchao``)."""

import typing

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlinear as jl
from jaxlinear import quantization as Q

MODES = [
    ("dynamic", "torch.ao", "x86"),
    ("dynamic", "torch.ao", "qnnpack"),
    ("dynamic", "torchao", "x86"),
    ("static", "torch.ao", "x86"),
    ("static", "torch.ao", "qnnpack"),
    ("weight_only", "torchao", "x86"),
]


class Mixed(nn.Module):
    """jl.Linear -> nn.Dense -> broadcast to 3 members -> jl.NLinear, with a LayerNorm kept in float."""

    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x):
        h = nn.relu(jl.Linear(32, dtype=self.dtype)(x))
        h = nn.LayerNorm(dtype=self.dtype)(nn.Dense(24, dtype=self.dtype)(h))
        h = jnp.broadcast_to(h[..., None, :], (*h.shape[:-1], 3, h.shape[-1]))
        return jl.NLinear(3, 5, dtype=self.dtype)(nn.relu(h))


def _setup(dtype=None):
    model = Mixed(dtype)
    x = jax.random.normal(jax.random.key(0), (64, 12))
    return model, model.init(jax.random.key(1), x), x


@pytest.mark.parametrize(("mode", "scheme", "engine"), MODES)
def test_every_mode_quantizes_every_layer_and_stays_close(mode, scheme, engine):
    model, variables, x = _setup()
    calibration = [x[:32], x[32:]] if mode == "static" else None
    qmodel, qv = Q.quantize(
        model, variables, mode=mode, scheme=scheme, engine=engine, calibration=calibration
    )
    params = qv["params"]
    assert qmodel.paths == (("Linear_0",), ("Dense_0",), ("NLinear_0",))
    for name in ("Linear_0", "Dense_0", "NLinear_0"):
        assert params[name]["kernel"].dtype == jnp.int8
    # the references' defaults: torchao and x86 static per member and output channel; torch.ao dynamic
    # (quantize_dynamic's default_dynamic_qconfig) and qnnpack static per member
    per_channel = scheme == "torchao" or (mode == "static" and engine != "qnnpack")
    assert params["NLinear_0"]["kernel_scale"].shape == ((3, 5) if per_channel else (3,))
    assert qmodel.per_channel == per_channel
    assert params["LayerNorm_0"]["scale"].dtype == jnp.float32  # not a linear layer: float
    y = jax.jit(qmodel.apply)(qv, x)
    ref = model.apply(variables, x)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    # int8 error bound: a few quantization steps of each layer, far below the output's scale
    assert float(jnp.abs(y - ref).max()) < 0.1 * float(jnp.abs(ref).max())


@pytest.mark.parametrize(("mode", "scheme", "engine"), MODES)
def test_nlinear_members_are_separate_linears(mode, scheme, engine):
    """Member i of a quantized NLinear equals a quantized Linear with kernel[i] on x[..., i, :]."""
    n, x = 3, jax.random.normal(jax.random.key(2), (16, 3, 6)) * jnp.array([[[1.0], [4.0], [0.1]]])
    nlin = jl.NLinear(n, 4)
    v = nlin.init(jax.random.key(3), x)
    cal = [x] if mode == "static" else None
    kw = {"mode": mode, "scheme": scheme, "engine": engine, "calibration": cal}
    qn, qvn = Q.quantize(nlin, v, **kw)
    got = qn.apply(qvn, x)
    for i in range(n):
        lin = jl.Linear(4)
        vi = {"params": {"kernel": v["params"]["kernel"][i], "bias": v["params"]["bias"][i]}}
        cal_i = [x[:, i]] if mode == "static" else None
        ql, qvl = Q.quantize(lin, vi, **{**kw, "calibration": cal_i})
        np.testing.assert_array_equal(qvn["params"]["kernel"][i], qvl["params"]["kernel"])
        np.testing.assert_array_equal(got[:, i], ql.apply(qvl, x[:, i]))


@pytest.mark.parametrize(("mode", "scheme"), [("dynamic", "torch.ao"), ("dynamic", "torchao"),
                                              ("static", "torch.ao"), ("weight_only", "torchao")])  # fmt: skip
def test_bf16_model_stays_bf16(mode, scheme):
    model, variables, x = _setup(jnp.bfloat16)
    cal = [x] if mode == "static" else None
    qmodel, qv = Q.quantize(model, variables, mode=mode, scheme=scheme, calibration=cal)
    y = jax.jit(qmodel.apply)(qv, x.astype(jnp.bfloat16))
    assert y.dtype == jnp.bfloat16 == model.apply(variables, x.astype(jnp.bfloat16)).dtype


def test_dense_and_linear_quantize_alike():
    x = jax.random.normal(jax.random.key(4), (8, 5))
    v = jl.Linear(3).init(jax.random.key(5), x)
    for mode in ("dynamic", "weight_only"):
        a = Q.quantize(jl.Linear(3), v, mode=mode)
        b = Q.quantize(nn.Dense(3), v, mode=mode)
        np.testing.assert_array_equal(a[0].apply(a[1], x), b[0].apply(b[1], x))


def test_per_tensor_weights():
    model, variables, x = _setup()
    _, qv = Q.quantize(model, variables, mode="dynamic", per_channel=False)
    assert qv["params"]["Linear_0"]["kernel_scale"].shape == ()
    assert qv["params"]["NLinear_0"]["kernel_scale"].shape == (3,)  # per member


@pytest.mark.parametrize(
    ("mode", "engine", "per_channel"),
    [("dynamic", "x86", False), ("dynamic", "qnnpack", False), ("static", "x86", True),
     ("static", "fbgemm", True), ("static", "qnnpack", False)],
)  # fmt: skip
def test_defaults_are_the_references_defaults(mode, engine, per_channel):
    """quantize_dynamic(m, {nn.Linear}, dtype=qint8) is per tensor; get_default_qconfig(engine) per
    channel for x86/fbgemm (the parity cases compare the numbers with the real torch calls)."""
    model, variables, x = _setup()
    cal = [x] if mode == "static" else None
    qmodel, qv = Q.quantize(model, variables, mode=mode, engine=engine, calibration=cal)
    explicit = Q.quantize(
        model, variables, mode=mode, engine=engine, calibration=cal, per_channel=per_channel
    )[1]
    assert qmodel.per_channel is per_channel
    assert qv["params"]["Linear_0"]["kernel_scale"].shape == ((32,) if per_channel else ())
    for a, b in zip(jax.tree.leaves(qv), jax.tree.leaves(explicit), strict=True):
        np.testing.assert_array_equal(a, b)


class Twice(nn.Module):
    """One jl.Linear called twice; the second call sees ~10x larger inputs."""

    @nn.compact
    def __call__(self, x):
        fc = jl.Linear(6, name="fc")
        return fc(10.0 * nn.relu(fc(x)))


def test_static_observes_every_call_of_a_layer():
    model, x = Twice(), jax.random.normal(jax.random.key(0), (32, 6))
    variables = model.init(jax.random.key(1), x)
    qmodel, qv = Q.quantize(
        model, variables, mode="static", calibration=[x[:16], x[16:]], activation_observer="minmax"
    )  # the default (histogram) observer is fed every call too: tests/test_histogram_observer.py
    k, b = variables["params"]["fc"]["kernel"], variables["params"]["fc"]["bias"]
    first = x @ k + b[None]
    h = 10.0 * jax.nn.relu(first)
    ins = jnp.concatenate([x.ravel(), h.ravel()])
    outs = jnp.concatenate([first.ravel(), (h @ k + b[None]).ravel()])
    want_in = Q.choose_qparams(ins.min(), ins.max(), reduce_range=True)
    want_out = Q.choose_qparams(outs.min(), outs.max(), reduce_range=True)
    p = qv["params"]["fc"]
    np.testing.assert_allclose(p["in_scale"], want_in[0], rtol=1e-6)
    np.testing.assert_allclose(p["out_scale"], want_out[0], rtol=1e-6)
    ref = model.apply(variables, x)
    err = float(jnp.abs(qmodel.apply(qv, x) - ref).max())
    # int8 steps of the wide shared range, no clipping
    assert err < 0.15 * float(jnp.abs(ref).max())


def test_quantizing_quantized_variables_or_model_is_refused():
    model, variables, x = _setup()
    qmodel, qv = Q.quantize(model, variables, mode="dynamic")
    with pytest.raises(
        ValueError, match="`variables` must hold float kernels.*Linear_0 \\(int8\\)"
    ):
        Q.quantize(model, qv, mode="dynamic")
    with pytest.raises(ValueError, match="`model` must be a float model, got a QuantizedModel"):
        Q.quantize(qmodel, qv, mode="dynamic")


class Encoder(nn.Module):
    """Embed -> LayerNorm -> attention -> jl.Linear -> nn.Dense: only the last two are quantized."""

    @nn.compact
    def __call__(self, ids):
        h = nn.LayerNorm()(nn.Embed(20, 16)(ids))
        h = h + nn.MultiHeadDotProductAttention(num_heads=2)(h)
        return nn.Dense(4)(nn.gelu(jl.Linear(32)(h)))


@pytest.mark.parametrize("mode", ["dynamic", "static", "weight_only"])
def test_only_linear_layers_of_a_transformer_are_quantized(mode):
    model, ids = Encoder(), jnp.arange(14).reshape(2, 7) % 20
    variables = model.init(jax.random.key(0), ids)
    cal = [ids] if mode == "static" else None
    qmodel, qv = Q.quantize(model, variables, mode=mode, calibration=cal, example_inputs=ids)
    assert qmodel.paths == (("Linear_0",), ("Dense_0",))
    p = qv["params"]
    for name in ("Embed_0", "LayerNorm_0", "MultiHeadDotProductAttention_0"):
        for a, b in zip(jax.tree.leaves(p[name]), jax.tree.leaves(variables["params"][name]),
                        strict=True):  # fmt: skip
            assert a.dtype == jnp.float32
            np.testing.assert_array_equal(a, b)
    ref = model.apply(variables, ids)
    err = float(jnp.abs(jax.jit(qmodel.apply)(qv, ids) - ref).max())
    assert err < 0.1 * float(jnp.abs(ref).max())


def test_calibration_must_be_finite_and_present():
    model, variables, x = _setup()
    bad = x.at[3, 2].set(jnp.nan)
    with pytest.raises(
        ValueError, match="`calibration` must hold finite values, got NaN or inf in batch 1"
    ):
        Q.quantize(model, variables, mode="static", calibration=[x, bad])
    with pytest.raises(ValueError, match="got NaN or inf in batch 0"):
        Q.quantize(model, variables, mode="static", calibration=[x.at[0, 0].set(jnp.inf)])
    with pytest.raises(TypeError, match="`calibration` must be an iterable"):
        Q.quantize(model, variables, mode="static")
    with pytest.raises(ValueError, match="at least one batch"):
        Q.quantize(model, variables, mode="static", calibration=[], example_inputs=x)
    with pytest.raises(ValueError, match="`calibration` must be None for mode='dynamic'"):
        Q.quantize(model, variables, mode="dynamic", calibration=[x])


def test_bad_arguments():
    model, variables, _ = _setup()
    with pytest.raises(ValueError, match="`mode` must be one of"):
        Q.quantize(model, variables, mode="int8")
    with pytest.raises(ValueError, match="`scheme` must be one of \\('torch.ao',\\)"):
        Q.quantize(model, variables, mode="static", scheme="torchao", calibration=[])
    with pytest.raises(ValueError, match="`engine` must be one of"):
        Q.quantize(model, variables, mode="dynamic", engine="onednn")
    with pytest.raises(
        ValueError, match="`per_channel` must be None or True with scheme='torchao'"
    ):
        Q.quantize(model, variables, mode="weight_only", per_channel=False)
    with pytest.raises(TypeError, match="`per_channel` must be None or a bool"):
        Q.quantize(model, variables, mode="dynamic", per_channel="False")


def test_unit_scaled_layers_are_refused():
    model = nn.Sequential([jl.Linear(8), jl.UnitScaledLinear(4)])
    x = jnp.ones((2, 3))
    variables = model.init(jax.random.key(0), x)
    with pytest.raises(
        ValueError, match=r"unit-scaled layers, got \['layers_1 \(UnitScaledLinear\)'\]"
    ):
        Q.quantize(model, variables, mode="dynamic")


def test_a_model_without_linear_layers_is_refused():
    model = nn.Sequential([nn.LayerNorm(), jl.DynamicQuantizedLinear(2)])
    variables = model.init(jax.random.key(0), jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="at least one jl.Linear, jl.NLinear or nn.Dense"):
        Q.quantize(model, variables, mode="dynamic", example_inputs=jnp.ones((1, 3)))


def test_tensor_form_is_unchanged():
    qt = Q.quantize(jnp.array([0.0, 0.5, 1.0]), 0.5, 1, jnp.uint8)
    np.testing.assert_array_equal(qt.values, [1, 2, 3])
    assert Q.quantize(jnp.array([0.5]), scale=0.5, zero_point=1).values.tolist() == [2]


def test_quantize_declares_its_forms_and_the_package_is_eager():
    """Three typed overloads (array, linen model, NNX model), and no lazy names: every public name
    is in the package's namespace once it is imported (what docs and type checkers read)."""
    forms = typing.get_overloads(Q.quantize)
    returns = [typing.get_type_hints(f)["return"] for f in forms]
    assert returns[0] is jl.int8.QTensor and len(forms) == 3
    assert not hasattr(Q, "__getattr__")
    assert all(name in vars(Q) for name in Q.__all__)
    assert all(
        getattr(Q, name) is getattr(jl.int8, name) for name in jl.int8.__all__ if name != "quantize"
    )


def test_qat_step_reduces_loss():
    model = nn.Sequential([jl.Linear(16), nn.relu, nn.Dense(3)])
    x = jax.random.normal(jax.random.key(0), (64, 8))
    target = jnp.sin(x[:, :3])
    variables = model.init(jax.random.key(1), x)
    opt = optax.adam(1e-2)
    state = opt.init(variables)

    def loss(v):
        return jnp.mean((Q.fake_quantized_apply(model, v, x) - target) ** 2)

    @jax.jit
    def step(v, state):
        grads = jax.grad(loss)(v)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(v, updates), state

    first = float(jax.jit(loss)(variables))
    for _ in range(20):
        variables, state = step(variables, state)
    assert float(jax.jit(loss)(variables)) < first


def test_to_torch_of_a_quantized_model_writes_int8_in_torch_layout():
    model, variables, x = _setup()
    qmodel, qv = Q.quantize(model, variables, mode="static", calibration=[x])
    state = jl.interop.to_torch(qmodel, qv)
    assert state["Linear_0.weight"].dtype == np.int8
    assert state["Linear_0.weight"].shape == (32, 12)  # (out, in)
    assert state["NLinear_0.weight"].shape == (3, 24, 5)  # delu's layout
    assert {"Linear_0.input_scale", "Linear_0.zero_point", "Dense_0.weight_zero_point"} <= set(
        state
    )
    with pytest.raises(ValueError, match="must hold int8 kernels"):
        jl.interop.to_torch(qmodel, variables)
