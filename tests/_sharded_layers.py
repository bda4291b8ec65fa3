"""Run in a subprocess by ``test_sharded.py``: jaxlinear layers on 8 simulated CPU devices.

Each case runs a model sharded on a mesh through Flax's logical axis names (``kernel_axes``) and on one
device, and compares: init (bit-exact: sharding never changes the values drawn), forward and a few
``jl.optim.adamw`` steps (fp32 tolerance: a sharded sum adds in another order), lr factors
(identical) and whole-model quantization (bit-exact int8 weights; outputs to fp32 tolerance).
Prints one JSON line: ``{check: {"ok": bool, ...}}``.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import json  # noqa: E402

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

import jaxlinear as jl  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")

RTOL, ATOL = 1e-5, 1e-6  # fp32: the same sums in another order
OUT: dict[str, dict] = {}
AUTO = (jax.sharding.AxisType.Auto,)  # Flax linen's logical-axis workflow (as nn.Dense)


class MLP(nn.Module):
    """A μP MLP whose hidden dims are "mlp" (Megatron's column- then row-parallel pair)."""

    width: int = 64

    @nn.compact
    def __call__(self, x):
        x = jl.Linear(
            self.width, parametrization="mup", layer_type="input", kernel_axes=("embed", "mlp")
        )(x)
        x = jl.Linear(self.width, parametrization="mup", kernel_axes=("mlp", "embed"))(nn.relu(x))
        x = jl.Linear(
            self.width, parametrization="mup", layer_type="hidden", kernel_axes=("embed", "mlp")
        )(nn.relu(x))
        return jl.Linear(4, parametrization="mup", layer_type="output", kernel_axes=("mlp", None))(
            nn.relu(x)
        )


class Ensemble(nn.Module):
    """Eight NLinear members (member-major), one per device under ("ensemble" -> mesh axis)."""

    @nn.compact
    def __call__(self, x):
        axes = ("ensemble", None, None)
        x = nn.relu(jl.NLinear(8, 32, layout="member_major", kernel_axes=axes)(x))
        return jl.NLinear(8, 2, layout="member_major", kernel_axes=axes)(x)


def close(name, a, b, exact=False):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    if jax.tree.structure(a) != jax.tree.structure(b):
        OUT[name] = {"ok": False, "why": "structure"}
        return
    worst = 0.0
    ok = True
    for x, y in zip(leaves_a, leaves_b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != y.dtype or x.shape != y.shape:
            OUT[name] = {"ok": False, "why": f"{x.dtype}{x.shape} vs {y.dtype}{y.shape}"}
            return
        if exact:
            ok &= x.tobytes() == y.tobytes()
        else:
            ok &= bool(np.allclose(x, y, rtol=RTOL, atol=ATOL))
        if x.size:
            worst = max(worst, float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()))
    OUT[name] = {"ok": ok, "max_abs": worst, "exact": exact}


def check(name, ok, **info):
    OUT[name] = {"ok": bool(ok), **info}


def train(model, variables, x, y, factors, steps=3):
    """``steps`` adamw steps on the (boxed or plain) params (the jitted step keeps their shardings):
    the params after them, the losses, and the forward of the initial params."""
    tx = jl.optim.adamw(1e-2, factors, weight_decay=0.1)
    params = variables["params"]
    state = tx.init(params)

    @jax.jit
    def step(params, state, x, y):
        def loss(p):
            out = model.apply({"params": p}, x)
            return jnp.mean((out - y) ** 2), out

        (value, out), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, state = tx.update(grads, state, params)
        return jax.tree.map(lambda p, u: p + u, params, updates), state, value, out

    losses, outputs = [], []
    for _ in range(steps):
        params, state, value, out = step(params, state, x, y)
        losses.append(value)
        outputs.append(out)
    return params, losses, outputs[0]  # outputs[0]: the forward of the initial params


def sharded_init(model, mesh, rules, *inputs):
    """``model.init`` compiled with the sharding the logical names and ``rules`` ask for."""
    abstract = jax.eval_shape(model.init, jax.random.key(0), *inputs)
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(abstract), mesh, rules)
    return jax.jit(model.init, out_shardings=shardings)(jax.random.key(0), *inputs)


def mlp_cases():
    model = MLP()
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((16, 32), dtype=np.float32))
    y = jnp.asarray(rng.standard_normal((16, 4), dtype=np.float32))
    single = jax.jit(model.init)(jax.random.key(0), x)  # jitted as the sharded init (same fusions)
    plain = nn.unbox(single)
    factors = jl.optim.lr_factors(model, plain, optimizer="adamw")
    ref_params, ref_losses, ref_out = train(model, plain, x, y, factors)

    # lr factors of boxed variables (global shapes) equal those of plain ones
    check("lr_factors_boxed", jl.optim.lr_factors(model, single, optimizer="adamw") == factors)

    # data parallel: params replicated on 8 devices, the batch split 8 ways
    mesh = jax.make_mesh((8,), ("data",), AUTO)
    variables = jax.device_put(single, NamedSharding(mesh, PartitionSpec()))
    batch = NamedSharding(mesh, PartitionSpec("data"))
    xs, ys = jax.device_put(x, batch), jax.device_put(y, batch)
    params, losses, out = train(model, variables, xs, ys, factors)
    close("dp/forward", out, ref_out)
    close("dp/train_params", nn.unbox(params), ref_params)
    close("dp/train_losses", losses, ref_losses)

    # tensor parallel on (2 data x 4 model): hidden dims split 4 ways, the batch 2 ways
    mesh = jax.make_mesh((2, 4), ("data", "model"), AUTO * 2)
    rules = (("batch", "data"), ("embed", None), ("mlp", "model"))
    variables = sharded_init(model, mesh, rules, x)
    kernel = nn.unbox(variables)["params"]["Linear_0"]["kernel"]
    check(
        "tp/kernel_split_4_ways",
        kernel.sharding.spec == PartitionSpec(None, "model")
        and {s.data.shape for s in kernel.addressable_shards} == {(32, 16)},
        spec=str(kernel.sharding.spec),
    )
    check(
        "tp/lr_factors_sharded",
        jl.optim.lr_factors(model, variables, optimizer="adamw") == factors,
    )
    close("tp/init", nn.unbox(variables), plain, exact=True)
    batch = NamedSharding(mesh, PartitionSpec("data"))
    xs, ys = jax.device_put(x, batch), jax.device_put(y, batch)
    params, losses, out = train(model, variables, xs, ys, factors)
    close("tp/forward", out, ref_out)
    trained = nn.unbox(params)["Linear_1"]["kernel"]
    check(
        "tp/trained_stays_sharded",
        {s.data.shape for s in trained.addressable_shards} == {(16, 64)},
        spec=str(trained.sharding.spec),
    )
    close("tp/train_params", nn.unbox(params), ref_params)
    close("tp/train_losses", losses, ref_losses)

    # a quantized model on the mesh: the unsharded numbers, int8 kernels keep their names
    qmodel, qref = jl.quantization.quantize(model, plain, mode="dynamic", per_channel=True)
    qmodel_s, qvars = jl.quantization.quantize(model, variables, mode="dynamic", per_channel=True)
    specs = nn.get_partition_spec(qvars)["params"]["Linear_0"]
    check(
        "quantized/names",
        specs["kernel"] == PartitionSpec("embed", "mlp")
        and specs["kernel_scale"] == PartitionSpec("mlp"),
        specs={k: str(v) for k, v in specs.items()},
    )
    close("quantized/weights", nn.unbox(qvars), qref, exact=True)
    qsharded = jax.jit(qmodel_s.apply)(qvars, xs)
    close("quantized/forward", qsharded, jax.jit(qmodel.apply)(qref, x), exact=True)


def ensemble_case():
    model = Ensemble()
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((8, 16, 6), dtype=np.float32))  # member-major (n, B, in)
    y = jnp.asarray(rng.standard_normal((8, 16, 2), dtype=np.float32))
    plain = nn.unbox(jax.jit(model.init)(jax.random.key(0), x))
    factors = jl.optim.lr_factors(model, plain, x, optimizer="adamw")
    ref_params, ref_losses, ref_out = train(model, plain, x, y, factors)
    mesh = jax.make_mesh((8,), ("model",), AUTO)
    rules = (("ensemble", "model"),)
    variables = sharded_init(model, mesh, rules, x)
    kernel = nn.unbox(variables)["params"]["NLinear_0"]["kernel"]
    devices = {s.device for s in kernel.addressable_shards}
    check(
        "ensemble/one_member_per_device",
        len(devices) == 8 and all(s.data.shape == (1, 6, 32) for s in kernel.addressable_shards),
    )
    close("ensemble/init", nn.unbox(variables), plain, exact=True)
    xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec("model")))
    ys = jax.device_put(y, NamedSharding(mesh, PartitionSpec("model")))
    params, losses, out = train(model, variables, xs, ys, factors)
    close("ensemble/forward", out, ref_out)
    close("ensemble/train_params", nn.unbox(params), ref_params)
    close("ensemble/train_losses", losses, ref_losses)


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    mlp_cases()
    ensemble_case()
    print(json.dumps(OUT))


if __name__ == "__main__":
    main()
