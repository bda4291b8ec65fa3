"""Suite-wide JAX settings: rank promotion raises, full-fp32 matmuls (CPU numbers on every backend)."""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(0)


@pytest.fixture
def strict_dtypes():
    """Strict dtype promotion, for pure functions where mixing dtypes is a bug."""
    with jax.numpy_dtype_promotion("strict"):
        yield
