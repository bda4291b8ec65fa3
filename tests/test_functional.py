"""The pure core: ``linear`` and ``nlinear`` against numpy, and their errors."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlinear.functional import linear, nlinear

RNG = np.random.default_rng(0)


def test_linear_matches_numpy(strict_dtypes):
    x, k, b = (RNG.standard_normal(s).astype(np.float32) for s in [(2, 3, 5), (5, 7), (7,)])
    np.testing.assert_allclose(linear(jnp.asarray(x), k, b), x @ k + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(linear(jnp.asarray(x), k), x @ k, rtol=1e-5, atol=1e-6)


def test_nlinear_matches_einsum(strict_dtypes):
    x, k, b = (
        RNG.standard_normal(s).astype(np.float32) for s in [(4, 2, 3, 5), (2, 3, 5, 7), (2, 3, 7)]
    )
    want = np.einsum("bnmi,nmio->bnmo", x, k) + b
    np.testing.assert_allclose(nlinear(jnp.asarray(x), k, b), want, rtol=1e-5, atol=1e-6)


def test_linear_errors():
    with pytest.raises(ValueError, match=r"`kernel` must have shape \(in_features, out_features\)"):
        linear(jnp.ones((2, 3)), jnp.ones((3,)))
    with pytest.raises(ValueError, match=r"`x` must have trailing shape \(3,\)"):
        linear(jnp.ones((2, 4)), jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"`bias` must have shape \(5,\)"):
        linear(jnp.ones((2, 3)), jnp.ones((3, 5)), jnp.ones((2, 5)))


def test_nlinear_errors():
    with pytest.raises(ValueError, match="`kernel` must have shape"):
        nlinear(jnp.ones((2, 3)), jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"`x` must have trailing shape \(2, 3\)"):
        nlinear(jnp.ones((4, 3, 3)), jnp.ones((2, 3, 5)))
    with pytest.raises(ValueError, match=r"`bias` must have shape \(2, 5\)"):
        nlinear(jnp.ones((4, 2, 3)), jnp.ones((2, 3, 5)), jnp.ones((5,)))
