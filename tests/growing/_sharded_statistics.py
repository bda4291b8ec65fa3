"""Run in a subprocess by ``test_sharded.py``: 8 simulated CPU devices, batch-sharded statistics.

Prints one JSON line: the max abs/rel differences between the sharded and the single-device results.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import json  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

import jaxlinear as jl  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    model = jl.growing.GrowingMLP(6, 4, 5, 2, "tanh")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 64, 6), dtype=np.float32)
    y = np.sin(x[..., :4]) + 0.1 * rng.standard_normal((3, 64, 4), dtype=np.float32)
    params = model.init(jax.random.key(0), jnp.asarray(x[0]))["params"]
    sse = lambda pred, t: jnp.sum((pred - t) ** 2)  # noqa: E731
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    shard = NamedSharding(mesh, PartitionSpec("batch"))
    single = sharded = jl.growing.init_statistics(model)
    for xb, yb in zip(x, y, strict=True):
        single = jl.growing.update_statistics(
            model, params, single, jnp.asarray(xb), jnp.asarray(yb), sse
        )
        xs, ys = jax.device_put(xb, shard), jax.device_put(yb, shard)
        assert len(xs.sharding.device_set) == 8
        sharded = jl.growing.update_statistics(model, params, sharded, xs, ys, sse)
    diffs = {}
    for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(sharded), strict=True):
        diffs[f"stat{len(diffs)}"] = (a, b)
    for u_single, u_sharded in zip(
        jl.growing.compute_optimal_updates(model, single),
        jl.growing.compute_optimal_updates(model, sharded),
        strict=True,
    ):
        i = u_single.layer_index
        diffs[f"delta{i}"] = (u_single.optimal_delta, u_sharded.optimal_delta)
        diffs[f"sv{i}"] = (u_single.singular_values, u_sharded.singular_values)
        diffs[f"fo{i}"] = (u_single.first_order_improvement, u_sharded.first_order_improvement)
        diffs[f"omega_alpha{i}"] = (
            u_single.extended_input @ u_single.extended_output,
            u_sharded.extended_input @ u_sharded.extended_output,
        )
    out = {}
    for k, (a, b) in diffs.items():
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            out[k] = {"shape": [list(a.shape), list(b.shape)]}
            continue
        # statistics: fp32; δ, λ, FO, ω·α go through an LU solve / eigh / SVD (condition numbers):
        # the parity cases' GROWTH tolerance
        rtol, atol = (1e-5, 1e-6) if k.startswith("stat") else (1e-4, 1e-5)
        ok = bool(np.allclose(b, a, rtol=rtol, atol=atol))
        err = float(np.abs(a - b).max()) if a.size else 0.0
        out[k] = {"ok": ok, "max_abs": err}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
