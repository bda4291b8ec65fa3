"""The statistical bounds of tests/_tail_bounds.py: never narrower than the central limit theorem
says they must be, and they cover fixed-seed simulations (deterministic: numpy's seeded generator)."""

import math

import numpy as np
import pytest
from scipy import stats

from tests import _tail_bounds as tb


@pytest.mark.parametrize("p, q, r", [(128, 256, 256), (256, 1024, 640), (8, 16, 12), (1000, 3, 2)])
@pytest.mark.parametrize("fail", [1e-8, 1e-3])
def test_product_bounds_contain_the_normal_approximation(p, q, r, fail):
    """Var(ΣY²) = 2pqr(q + r + 1) + 2p²qr exactly for Y = AC/√q, so the sample second moment
    has sd √(2(q + r + 1)/(pqr) + 2/(qr)); a valid bound contains its normal-quantile interval."""
    sd = math.sqrt(2 * (q + r + 1) / (p * q * r) + 2 / (q * r))
    z = stats.norm.isf(fail / 2)
    lo, hi = tb.gaussian_product_std_bounds(p, q, r, fail)
    assert lo**2 <= max(1 - z * sd, 0) and hi**2 > 1 + z * sd


def test_chi2_bounds_are_the_quantiles_of_the_sample_variance():
    for dof in (255, 65535):
        lo, hi = tb.chi2_std_bounds(dof, 1e-8)
        np.testing.assert_allclose(stats.chi2.cdf(dof * lo**2, dof), 0.5e-8, rtol=1e-6)
        np.testing.assert_allclose(stats.chi2.sf(dof * hi**2, dof), 0.5e-8, rtol=1e-6)


def test_bounds_cover_seeded_simulations():
    rng = np.random.default_rng(0)
    fail = 1e-3  # 200 draws each: a miss would be a bug in a bound, not chance (p < 0.2 per bound)
    lo, hi = tb.gaussian_product_std_bounds(6, 10, 7, fail)
    for _ in range(200):
        y = rng.standard_normal((6, 10)) @ rng.standard_normal((10, 7)) / math.sqrt(10)
        assert lo <= y.std(ddof=1) <= hi
    lo, hi = tb.uniform_std_bounds(500, fail)
    m = tb.bernstein_mean_bound(500, 1 / 3, 1.0, fail)
    cut = tb.uniform_abs_max_lower(500, fail)
    for _ in range(200):
        u = rng.uniform(-1, 1, 500)
        assert lo <= u.std() * math.sqrt(3) <= hi and abs(u.mean()) <= m and abs(u).max() > cut
    lo, hi = tb.chi2_std_bounds(99, fail)
    m, cut = tb.gaussian_mean_bound(100, fail), tb.gaussian_abs_max_lower(100, fail)
    for _ in range(200):
        x = rng.standard_normal(100)
        assert lo <= x.std(ddof=1) <= hi and abs(x.mean()) <= m and abs(x).max() > cut
