import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlinear.initializers import torch_uniform, torch_uniform_bound


@pytest.mark.parametrize("fan_in", [1, 3, 5, 1000, 4099])
def test_bound_is_torch_bound_in_float32(fan_in):
    # torch: kaiming_uniform_(a=sqrt(5)) -> gain/sqrt(3)... ; both round to this float32
    gain = np.sqrt(2.0 / (1 + 5.0))
    kaiming = np.sqrt(3.0) * gain / np.sqrt(fan_in)
    assert np.float32(torch_uniform_bound(fan_in)) == np.float32(kaiming)


def test_zero_fan_in_gives_zeros():
    assert torch_uniform_bound(0) == 0.0
    np.testing.assert_array_equal(torch_uniform(0)(jax.random.key(0), (0, 3)), np.zeros((0, 3)))
    np.testing.assert_array_equal(torch_uniform(0)(jax.random.key(0), (3,)), np.zeros(3))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_and_range(dtype):
    w = torch_uniform(9)(jax.random.key(0), (50, 40), dtype)
    assert w.dtype == dtype
    assert float(jnp.abs(w.astype(jnp.float32)).max()) <= float(jnp.asarray(1 / 3, dtype))
