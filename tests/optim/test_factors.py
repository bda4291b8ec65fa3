"""jl.optim.lr_factors (every layer family, lifted layers, depth, NNX, loud mistakes) and mup_factors."""

import copy
import subprocess
import sys
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxlinear as jl
from jaxlinear.parametrizations import MaximalUpdate, NeuralTangent

MUP = MaximalUpdate()


class Mixed(nn.Module):
    """jl.Linear (μP input), jl.NLinear (μP hidden), a plain Linear, unit-scaled layers, a readout."""

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(jl.Linear(16, parametrization=MUP, layer_type="input", name="inp")(x))
        x = jl.NLinear(2, 16, parametrization=MUP, name="ens")(jnp.stack([x, x], -2)).mean(-2)
        x = jl.Linear(16, name="plain")(x)
        x = jl.UnitScaledLinear(16, use_bias=True, name="us")(x)
        return jl.LinearReadout(3, name="readout")(x)


def _init(model, x):
    return model.init(jax.random.key(0), x)


def test_mixed_model_gets_a_factor_on_every_leaf():
    x = jnp.ones((2, 8))
    model = Mixed()
    v = _init(model, x)
    f = jl.optim.lr_factors(model, v, optimizer="adam")
    assert jax.tree.structure(f.lr) == jax.tree.structure(v["params"])
    assert f.lr == {
        "inp": {"kernel": 1.0, "bias": 1.0},
        "ens": {"kernel": 1 / 16, "bias": 1.0},  # per member: fan_in 16, never 2 * 16
        "plain": {"kernel": 1.0, "bias": 1.0},
        "us": {"kernel": 0.25, "bias": 1.0},
        "readout": {"kernel": 1.0},
    }
    assert f.weight_decay["us"]["kernel"] == 4.0 and f.weight_decay["inp"]["kernel"] == 1.0
    sgd = jl.optim.lr_factors(model, v, optimizer="sgd")
    assert sgd.lr["inp"]["kernel"] == 16.0 and sgd.lr["us"]["kernel"] == 0.25  # readout None


def test_uncovered_params_are_listed_unless_default():
    model = nn.Sequential([jl.Linear(8, parametrization=MUP, layer_type="input"), nn.LayerNorm(),
                           nn.Dense(4), jl.Linear(2, parametrization=MUP, layer_type="output")])  # fmt: skip
    v = _init(model, jnp.ones((1, 5)))
    # the LayerNorm follows the model's parametrization (vector-like); the nn.Dense has no rule
    with pytest.raises(ValueError, match=r"no rule covers \['layers_2/bias', 'layers_2/kernel'\]"):
        jl.optim.lr_factors(model, v, optimizer="adam")
    f = jl.optim.lr_factors(model, v, optimizer="adam", default=0.5)
    assert f.lr["layers_1"] == {"bias": 1.0, "scale": 1.0} and f.lr["layers_2"]["kernel"] == 0.5
    assert f.weight_decay["layers_2"]["kernel"] == 1.0
    assert f.lr["layers_3"]["kernel"] == 1 / 4


class Lifted(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = jl.Linear(6, parametrization=MUP, layer_type="input")(x)
        stack = nn.vmap(jl.Linear, variable_axes={"params": 0}, split_rngs={"params": True},
                        in_axes=None, out_axes=0, axis_size=3)  # fmt: skip
        x = stack(6, parametrization=MUP, name="vmapped")(x).mean(0)

        class Block(nn.Module):
            @nn.compact
            def __call__(self, h, _):
                return jl.UnitScaledLinear(6, use_bias=True, name="u")(h), None

        scan = nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=4)
        x, _ = scan(name="scanned")(x, None)
        return jl.Linear(2, parametrization=MUP, layer_type="output")(x)


def test_lifted_layers_get_their_rule_per_slice_and_depth():
    model = Lifted()
    v = _init(model, jnp.ones((3, 5)))
    assert v["params"]["vmapped"]["kernel"].shape == (3, 6, 6)
    f = jl.optim.lr_factors(model, v, optimizer="adam", depth={"scanned": 4})
    assert f.lr["vmapped"]["kernel"] == 1 / 6  # fan_in of one slice, not n * 6
    assert f.lr["scanned"]["u"]["kernel"] == 4**-0.5 * 6**-0.5
    assert f.lr["scanned"]["u"]["bias"] == 0.5
    assert f.weight_decay["scanned"]["u"]["bias"] == 2.0


def test_depth_errors():
    model = Lifted()
    v = _init(model, jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="no layer under them"):
        jl.optim.lr_factors(model, v, optimizer="adam", depth={"nowhere": 2})
    with pytest.raises(ValueError, match="inferno's rules, which have no depth"):
        jl.optim.lr_factors(model, v, optimizer="adam", depth={"vmapped": 2})
    with pytest.raises(ValueError, match=r"`depth\['scanned'\]` must be an int > 0"):
        jl.optim.lr_factors(model, v, optimizer="adam", depth={"scanned": 0})
    with pytest.raises(TypeError, match="`depth` must be None or a mapping"):
        jl.optim.lr_factors(model, v, optimizer="adam", depth=4)


def test_optimizer_and_default_errors():
    layer = jl.Linear(3, parametrization=NeuralTangent())
    v = _init(layer, jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        jl.optim.lr_factors(layer, v, optimizer="adagrad")
    with pytest.raises(NotImplementedError):  # inferno's NTP has no Adam rule
        jl.optim.lr_factors(layer, v, optimizer="adam")
    with pytest.raises(TypeError, match="`default` must be a real number"):
        jl.optim.lr_factors(layer, v, optimizer="sgd", default="1")


def test_readout_constraint_drives_umup_sgd_and_must_agree():
    class Net(nn.Module):
        constraints: tuple

        @nn.compact
        def __call__(self, x):
            x = jl.UnitScaledLinear(8, use_bias=True)(x)
            return sum(jl.LinearReadout(2, constraint=c)(x) for c in self.constraints)

    x = jnp.ones((2, 4))
    net = Net(("to_output_scale",))
    f = jl.optim.lr_factors(net, _init(net, x), optimizer="sgd")
    assert f.lr["UnitScaledLinear_0"] == {"kernel": 2.0, "bias": 8.0}  # √fan_in, shape[0]
    net = Net(("to_output_scale", None))
    with pytest.raises(ValueError, match="share one `constraint`"):
        jl.optim.lr_factors(net, _init(net, x), optimizer="sgd")
    net = Net(("gmean",))
    with pytest.raises(ValueError, match="`readout_constraint` must be one of"):
        jl.optim.lr_factors(net, _init(net, x), optimizer="sgd")


class Forgotten(nn.Module):
    first: str = "hidden"
    last: str = "hidden"
    parametrization: object = MUP

    @nn.compact
    def __call__(self, x):
        p = self.parametrization
        x = jnp.tanh(jl.Linear(8, parametrization=p, layer_type=self.first)(x))
        x = jnp.tanh(jl.Linear(8, parametrization=p)(x))
        return jl.Linear(2, parametrization=p, layer_type=self.last)(x)


def test_forgotten_layer_types_warn_naming_the_layer():
    x = jnp.ones((1, 4))
    m = Forgotten()
    with pytest.warns(jl.optim.LayerTypeWarning, match="'Linear_0' is the model's first layer"):
        with pytest.warns(jl.optim.LayerTypeWarning, match="'Linear_2' is the model's last layer"):
            jl.optim.lr_factors(m, _init(m, x), optimizer="adam")
    m = Forgotten("input", "output", None)
    with pytest.warns(jl.optim.LayerTypeWarning, match="'Linear_2' has layer_type='output' but no"):
        with pytest.warns(jl.optim.LayerTypeWarning, match="'Linear_0' has layer_type='input'"):
            jl.optim.lr_factors(m, _init(m, x), optimizer="adam")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = Forgotten("input", "output")
        jl.optim.lr_factors(m, _init(m, x), optimizer="adam")  # correct: silent
        m = Forgotten(parametrization="sp")
        jl.optim.lr_factors(m, _init(m, x), optimizer="adam")  # SP ignores layer types


class NnxNet(nnx.Module):
    def __init__(self, rngs):
        self.inp = nnx.bridge.ToNNX(
            jl.Linear(16, parametrization="mup", layer_type="input"), rngs=rngs
        )
        self.blocks = nnx.List([
            nnx.bridge.ToNNX(nn.Sequential([jl.Linear(16, parametrization="mup"), jnp.tanh,
                                            jl.NLinear(1, 16, parametrization="mup")]), rngs=rngs)
        ])  # fmt: skip
        self.out = nnx.bridge.ToNNX(jl.Linear(2, parametrization="mup", layer_type="output"),
                                    rngs=rngs)  # fmt: skip

    def __call__(self, x):
        x = jnp.tanh(self.inp(x))
        x = self.blocks[0](x[..., None, :])[..., 0, :]
        return self.out(jnp.tanh(x))


def test_nnx_factors_match_linen_and_nnx_state():
    model = NnxNet(nnx.Rngs(0))
    x = jnp.ones((3, 5))
    nnx.bridge.lazy_init(model, x)
    f = jl.optim.lr_factors(model, x, optimizer="adam")
    state = nnx.as_pure(nnx.state(model, nnx.Param))
    assert jax.tree.structure(f.lr) == jax.tree.structure(state)
    assert f.lr["inp"]["kernel"] == 1.0 and f.lr["out"]["kernel"] == 1 / 16
    assert f.lr["blocks"][0]["layers_0"]["kernel"] == 1 / 16
    assert f.lr["blocks"][0]["layers_2"]["kernel"] == 1 / 16
    with pytest.raises(TypeError, match="`variables` must be omitted"):
        jl.optim.lr_factors(model, {"params": {}}, optimizer="adam")


def test_nnx_model_trains_with_nnx_optimizer_as_linen_does():
    model = NnxNet(nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (8, 5))
    y = jax.random.normal(jax.random.key(2), (8, 2))
    nnx.bridge.lazy_init(model, x)
    params0 = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    f = jl.optim.lr_factors(model, x, optimizer="adamw")
    optimizer = nnx.Optimizer(model, jl.optim.adamw(1e-2, f, weight_decay=0.1), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(step(model, optimizer)) for _ in range(3)]
    # the same steps on the pure params with the same transform
    tx = jl.optim.adamw(1e-2, f, weight_decay=0.1)
    graphdef, _ = nnx.split(model)
    params = jax.tree.map(jnp.asarray, params0)
    state = nnx.as_pure(nnx.state(model, nnx.Param))
    params = jax.tree.unflatten(jax.tree.structure(state), jax.tree.leaves(params))
    opt_state = tx.init(params)

    def loss_fn(p):
        m = NnxNet(nnx.Rngs(0))
        nnx.bridge.lazy_init(m, x)
        nnx.update(m, p)
        return jnp.mean((m(x) - y) ** 2)

    for want in losses:
        loss, g = jax.value_and_grad(loss_fn)(params)
        np.testing.assert_allclose(float(loss), want, rtol=1e-6)
        u, opt_state = tx.update(g, opt_state, params)
        params = jax.tree.map(lambda a, b: a + b, params, u)
    assert losses[-1] < losses[0]
    del graphdef


# --- mup rules ---------------------------------------------------------------------------------

PARAMS = {
    "in": {"kernel": jnp.zeros((8, 64)), "bias": jnp.zeros(64)},
    "hid": {"kernel": jnp.zeros((64, 64)), "bias": jnp.zeros(64)},
    "out": {"kernel": jnp.zeros((64, 3)), "bias": jnp.zeros(3)},
}
BASE = jax.tree.map(
    lambda a: jax.ShapeDtypeStruct(tuple(8 if d == 64 else d for d in a.shape), a.dtype), PARAMS
)


def test_mup_factors_table():
    sgd = jl.optim.mup_factors(PARAMS, BASE, "sgd")
    adam = jl.optim.mup_factors(PARAMS, BASE, "adam")
    assert sgd.lr == {"in": {"kernel": 8.0, "bias": 8.0}, "hid": {"kernel": 1.0, "bias": 8.0},
                      "out": {"kernel": 8.0, "bias": 1.0}}  # fmt: skip
    assert adam.lr == {"in": {"kernel": 1.0, "bias": 1.0}, "hid": {"kernel": 0.125, "bias": 1.0},
                       "out": {"kernel": 1.0, "bias": 1.0}}  # fmt: skip
    assert sgd.weight_decay["in"]["kernel"] == 0.125 and sgd.weight_decay["hid"]["kernel"] == 1.0
    assert jl.optim.mup_factors(PARAMS, BASE, "adamw").weight_decay["hid"]["kernel"] == 8.0


def test_mup_factors_survive_copies_and_variables():
    """mup loses `infshape` on deepcopy; jaxlinear's rules are a function of shapes only."""
    want = jl.optim.mup_factors(PARAMS, BASE, "adam")
    assert jl.optim.mup_factors(copy.deepcopy(PARAMS), BASE, "adam") == want
    assert jl.optim.mup_factors({"params": PARAMS}, {"params": BASE}, "adam") == want
    assert set(jax.tree.leaves(jl.optim.mup_factors(PARAMS, PARAMS, "sgd"))) == {1.0}


def test_mup_factors_errors():
    with pytest.raises(ValueError, match="must have the same parameters"):
        jl.optim.mup_factors(PARAMS, {"in": BASE["in"]}, "sgd")
    with pytest.raises(ValueError, match="support 1-D and 2-D"):
        jl.optim.mup_factors({"w": jnp.zeros((2, 3, 4))}, {"w": jnp.zeros((2, 3, 2))}, "sgd")
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        jl.optim.mup_factors(PARAMS, BASE, "adagrad")


def test_import_does_no_work():
    """No backend starts at import: jax.distributed / platform flags can still be set afterwards.

    XLA_FLAGS is read when the CPU backend starts, so a device count set after the import takes effect
    only if the import started none.
    """
    code = (
        "import os\n"
        "import jaxlinear, jaxlinear.optim, jaxlinear.walker\n"
        "os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=3'\n"
        "import jax\n"
        "assert jax.device_count() == 3, jax.devices()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class TinyTransformer(nn.Module):
    """Embed -> LayerNorm -> attention (μP jl.Linear q/k/v/o) -> RMSNorm -> μP readout."""

    parametrization: object = "mup"
    plain: str = ""  # the name of one Linear left without a parametrization

    @nn.compact
    def __call__(self, ids):
        p = self.parametrization
        h = nn.Embed(13, 8, name="emb")(ids)
        x = nn.LayerNorm(name="ln")(h)
        qkv = [jl.Linear(8, parametrization=None if n == self.plain else p, name=n)(x)
               for n in ("q", "k", "v")]  # fmt: skip
        heads = [t.reshape(*t.shape[:-1], 2, 4) for t in qkv]
        a = jl.parametrizations.mup_dot_product_attention(*heads).reshape(h.shape)
        h = h + jl.Linear(8, parametrization=p, name="o")(a)
        out = "hidden" if p is None else "output"  # a layer type without a parametrization warns
        return jl.Linear(13, parametrization=p, layer_type=out, name="head")(
            nn.RMSNorm(name="rms")(h)
        )


IDS = jnp.arange(10).reshape(2, 5)


@pytest.mark.parametrize(("optimizer", "vector"), [("sgd", 8.0), ("adam", 1.0), ("adamw", 1.0)])
def test_embeddings_and_norms_follow_the_parametrization(optimizer, vector):
    """μP's vector-like rule (mup's MuSGD: lr x width; MuAdam: unchanged), no default= needed."""
    model = TinyTransformer()
    v = model.init(jax.random.key(0), IDS)
    f = jl.optim.lr_factors(model, v, IDS, optimizer=optimizer)
    assert f.lr["emb"] == {"embedding": vector}
    assert f.lr["ln"] == {"scale": vector, "bias": vector} and f.lr["rms"] == {"scale": vector}
    assert f.weight_decay["emb"] == {"embedding": 1.0}
    assert f.lr["q"]["kernel"] == (1.0 if optimizer == "sgd" else 1 / 8)


def test_embeddings_and_norms_under_standard_and_ntp():
    v = TinyTransformer("sp").init(jax.random.key(0), IDS)
    f = jl.optim.lr_factors(TinyTransformer("sp"), v, IDS, optimizer="adam")
    assert f.lr["emb"] == {"embedding": 1.0} and f.lr["ln"]["scale"] == 1.0
    ntp = TinyTransformer(NeuralTangent())
    assert jl.optim.lr_factors(ntp, v, IDS, optimizer="sgd").lr["ln"]["bias"] == 1.0
    with pytest.raises(NotImplementedError):  # inferno's NTP has no Adam rule
        jl.optim.lr_factors(ntp, v, IDS, optimizer="adam")


def test_mixed_parametrizations_with_embeddings_are_an_error_unless_default():
    model = TinyTransformer(plain="k")
    v = model.init(jax.random.key(0), IDS)
    with pytest.raises(
        ValueError,
        match=r"share one parametrization.*MaximalUpdate: \['q', 'v', 'o', 'head'\]; "
        r"no parametrization: \['k'\]",
    ):
        jl.optim.lr_factors(model, v, IDS, optimizer="adam")
    f = jl.optim.lr_factors(model, v, IDS, optimizer="adam", default=0.25)  # explicit
    assert f.lr["emb"] == {"embedding": 0.25} and f.lr["k"]["kernel"] == 1.0


def test_embeddings_without_a_parametrization_still_need_default():
    model = TinyTransformer(None)
    v = model.init(jax.random.key(0), IDS)
    with pytest.raises(ValueError, match=r"no rule covers \['emb/embedding'"):
        jl.optim.lr_factors(model, v, IDS, optimizer="adam")
    assert jl.optim.lr_factors(model, v, IDS, optimizer="adam", default=1.0).lr["ln"]["bias"] == 1.0


def test_nnx_embeddings_and_norms_follow_the_parametrization():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.emb = nnx.Embed(13, 8, rngs=rngs)
            self.ln = nnx.LayerNorm(8, rngs=rngs)
            self.head = jl.nnx.Linear(8, 13, parametrization="mup", layer_type="output", rngs=rngs)

        def __call__(self, ids):
            return self.head(self.ln(self.emb(ids)))

    f = jl.optim.lr_factors(Net(nnx.Rngs(0)), IDS, optimizer="sgd")
    assert f.lr["emb"]["embedding"] == 8.0 and f.lr["ln"]["scale"] == 8.0


def test_tabm_layers_have_rules():
    # tabm trains with one plain torch optimizer: factor 1 everywhere, no `default=` needed
    emb = jl.tabm.PeriodicEmbeddings(2, 4, n_frequencies=3, lite=False)
    model = jl.tabm.TabM.make(
        n_num_features=2, cat_cardinalities=[3], d_out=1, k=2, d_block=4, num_embeddings=emb
    )
    x_num, x_cat = jnp.ones((1, 2)), jnp.zeros((1, 1), jnp.int32)
    v = model.init(jax.random.key(0), x_num, x_cat)
    f = jl.optim.lr_factors(model, v, x_num, x_cat, optimizer="adamw")
    assert jax.tree.structure(f.lr) == jax.tree.structure(v["params"])
    assert set(jax.tree.leaves(f.lr)) == set(jax.tree.leaves(f.weight_decay)) == {1.0}
    # a LinearEnsemble with a parametrization follows NLinear's rule, member by member
    ens, nlin = (
        jl.tabm.LinearEnsemble(8, k=2, parametrization=MUP),
        jl.NLinear(2, 8, parametrization=MUP),
    )
    x = jnp.ones((1, 2, 16))
    got = jl.optim.lr_factors(ens, _init(ens, x), optimizer="adam").lr
    assert got == jl.optim.lr_factors(nlin, _init(nlin, x), optimizer="adam").lr
    with pytest.raises(ValueError, match="depth"):
        jl.optim.lr_factors(model, v, x_num, x_cat, optimizer="adam", depth={"backbone": 2})
