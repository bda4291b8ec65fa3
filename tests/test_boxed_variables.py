"""Every workflow above the layers takes boxed (``nn.LogicallyPartitioned``) variables as plain ones:
apply, the walker, lr factors, the optimizers, quantize, interop and growth (one device; the mesh runs
are in test_sharded.py)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = jl.Linear(8, parametrization="mup", layer_type="input", kernel_axes=("embed", "mlp"))(x)
        x = jl.NLinear(2, 8, parametrization="mup", kernel_axes=(None, "mlp", "embed"))(
            jnp.stack([nn.relu(x)] * 2, -2)
        )
        return jl.Linear(
            3, parametrization="mup", layer_type="output", kernel_axes=("embed", None)
        )(nn.relu(x.mean(-2)))


X = jnp.linspace(-1, 1, 20).reshape(4, 5)


@pytest.fixture(scope="module")
def model_and_variables():
    model = MLP()
    boxed = model.init(jax.random.key(0), X)
    return model, boxed, nn.unbox(boxed)


def test_walker_sees_global_shapes(model_and_variables):
    model, boxed, plain = model_and_variables
    shapes = lambda v: [c.shapes for c in jl.walker.find_layers(model, v, X)]  # noqa: E731
    assert shapes(boxed) == shapes(plain)


def test_adamw_on_boxed_params_equals_plain(model_and_variables):
    model, boxed, plain = model_and_variables
    factors = jl.optim.lr_factors(model, boxed, X, optimizer="adamw")
    assert factors == jl.optim.lr_factors(model, plain, X, optimizer="adamw")
    tx = jl.optim.adamw(1e-2, factors, weight_decay=0.1)

    def step(params):
        grads = jax.grad(lambda p: jnp.sum(model.apply({"params": p}, X) ** 2))(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return optax_apply(params, updates)

    got, want = step(boxed["params"]), step(plain["params"])
    assert nn.get_partition_spec(got) == nn.get_partition_spec(boxed["params"])  # names kept
    jax.tree.map(np.testing.assert_array_equal, nn.unbox(got), want)


def optax_apply(params, updates):
    return jax.tree.map(lambda p, u: p + u, params, updates)


def test_interop_round_trip_keeps_names(model_and_variables):
    model, boxed, plain = model_and_variables
    sd = jl.interop.to_torch(model, boxed, example_inputs=X)
    want = jl.interop.to_torch(model, plain, example_inputs=X)
    assert sd.keys() == want.keys()
    for k in sd:
        np.testing.assert_array_equal(sd[k], want[k])
    back = jl.interop.from_torch(model, sd, example_inputs=X)
    assert nn.get_partition_spec(back) == nn.get_partition_spec(boxed)
    jax.tree.map(np.testing.assert_array_equal, nn.unbox(back), plain)
    one = jl.Linear(8, kernel_axes=("embed", "mlp"))
    layer = jl.interop.from_torch(one, {"weight": np.ones((8, 5), np.float32), "bias": np.ones(8)})
    assert nn.get_partition_spec(layer)["params"]["bias"] == jax.sharding.PartitionSpec("mlp")


def test_quantize_keeps_names_and_numbers(model_and_variables):
    model, boxed, plain = model_and_variables
    qmodel, qboxed = jl.quantization.quantize(
        model, boxed, mode="dynamic", per_channel=True, example_inputs=X
    )
    _, qplain = jl.quantization.quantize(
        model, plain, mode="dynamic", per_channel=True, example_inputs=X
    )
    specs = nn.get_partition_spec(qboxed)["params"]
    assert specs["NLinear_0"]["kernel"] == jax.sharding.PartitionSpec(None, "mlp", "embed")
    assert specs["NLinear_0"]["kernel_scale"] == jax.sharding.PartitionSpec(None, "embed")
    jax.tree.map(np.testing.assert_array_equal, nn.unbox(qboxed), qplain)
    np.testing.assert_array_equal(qmodel.apply(qboxed, X), qmodel.apply(qplain, X))


def test_growing_mlp_kernel_axes():
    names = (("embed", "mlp"), ("mlp", None))
    model = jl.growing.GrowingMLP(5, 3, 4, 1, "relu", kernel_axes=names)
    boxed = model.init(jax.random.key(0), X)
    specs = nn.get_partition_spec(boxed)["params"]
    assert specs["layers_1"] == {
        "kernel": jax.sharding.PartitionSpec("mlp", None),
        "bias": jax.sharding.PartitionSpec(None),
    }
    plain_model = jl.growing.GrowingMLP(5, 3, 4, 1, "relu")
    np.testing.assert_array_equal(model.apply(boxed, X), plain_model.apply(nn.unbox(boxed), X))
    sse = lambda pred, t: jnp.sum((pred - t) ** 2)  # noqa: E731
    y = jnp.ones((4, 3))
    stats = [
        jl.growing.update_statistics(m, v["params"], jl.growing.init_statistics(m), X, y, sse)
        for m, v in ((model, boxed), (plain_model, nn.unbox(boxed)))
    ]
    jax.tree.map(np.testing.assert_array_equal, stats[0], stats[1])
    with pytest.raises(ValueError, match="one entry per layer"):
        jl.growing.GrowingMLP(5, 3, 4, 1, kernel_axes=names[:1])
    with pytest.raises(ValueError, match="kernel_axes.*2 dims"):
        jl.growing.GrowingMLP(5, 3, 4, 1, kernel_axes=(("a",), None))
