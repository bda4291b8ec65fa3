"""Suite-wide settings: JAX (rank promotion raises, full-fp32 matmuls) and hypothesis (derandomized).

Hypothesis runs derandomized everywhere (CI or not): every run draws the same examples, so no re-run
can flip a test. ``HYPOTHESIS_PROFILE=explore`` draws fresh random examples, to search for new
failures locally; a failure prints a blob that ``@reproduce_failure`` replays.
"""

import os

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_default_matmul_precision", "highest")

settings.register_profile(
    "derandomized", derandomize=True, deadline=None, print_blob=True, database=None
)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(0)


@pytest.fixture
def strict_dtypes():
    """Strict dtype promotion, for pure functions where mixing dtypes is a bug."""
    with jax.numpy_dtype_promotion("strict"):
        yield
