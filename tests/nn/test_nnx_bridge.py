"""NNX users wrap the linen modules with ``flax.nnx.bridge.ToNNX``: same numbers as linen."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxlinear as jl


def test_to_nnx_gives_the_linen_numbers():
    x = jax.random.normal(jax.random.key(1), (4, 2, 5))
    for linen_module in (jl.Linear(3), jl.NLinear(2, 3)):
        model = nnx.bridge.ToNNX(linen_module, rngs=nnx.Rngs(0))
        nnx.bridge.lazy_init(model, x)
        y_nnx = model(x)
        _, state = nnx.split(model)
        params = jax.tree.map(
            lambda v: v, nnx.to_pure_dict(state), is_leaf=lambda v: isinstance(v, jnp.ndarray)
        )
        y_linen = linen_module.apply({"params": params}, x)
        np.testing.assert_array_equal(y_nnx, y_linen)
