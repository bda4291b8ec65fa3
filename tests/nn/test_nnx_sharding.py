"""NNX layers on a device mesh: logical names map through Flax's axis rules, numbers stay one device's.

Runs in a subprocess with 8 simulated CPU devices, so the rest of the suite keeps one device.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    import flax.linen as nn
    from flax import nnx
    from jax.sharding import PartitionSpec as P
    import jaxlinear as jl

    assert jax.device_count() == 8
    def build():
        rngs = nnx.Rngs(0)
        return nnx.Sequential(
            jl.nnx.Linear(8, 16, parametrization="mup", layer_type="input",
                          kernel_axes=("embed", "mlp"), rngs=rngs),
            jnp.tanh,
            jl.nnx.NLinear(4, 16, 8, kernel_axes=("member", None, None), rngs=rngs),
        )
    plain = build()
    mesh = jax.make_mesh((2, 4), ("data", "model"))
    rules = (("embed", None), ("mlp", "model"), ("member", "model"))
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        sharded = build()
    first, ens = sharded.layers[0], sharded.layers[2]
    assert first.kernel[...].sharding.spec == P(None, "model"), first.kernel[...].sharding
    assert first.bias[...].sharding.spec == P("model"), first.bias[...].sharding
    assert ens.kernel[...].sharding.spec == P("model", None, None), ens.kernel[...].sharding
    assert ens.kernel[...].addressable_shards[0].data.shape == (1, 16, 8)
    for a, b in zip(jax.tree.leaves(nnx.state(plain, nnx.Param)),
                    jax.tree.leaves(nnx.state(sharded, nnx.Param))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    xs = jax.random.normal(jax.random.key(1), (8, 4, 8))  # (batch, member, in)
    f = nnx.jit(lambda m, x: m(x))
    with jax.set_mesh(mesh):
        y_sharded = f(sharded, jax.device_put(xs, jax.NamedSharding(mesh, P("data"))))
    np.testing.assert_allclose(y_sharded, f(plain, xs), rtol=1e-6, atol=1e-6)
    # factors from global shapes
    f_plain = jl.optim.lr_factors(plain, xs, optimizer="adam")
    f_sharded = jl.optim.lr_factors(sharded, xs, optimizer="adam")
    assert jax.tree.leaves(f_plain.lr) == jax.tree.leaves(f_sharded.lr)
    print("ok")
    """
)


def test_nnx_layers_on_an_8_device_mesh():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-4000:]
