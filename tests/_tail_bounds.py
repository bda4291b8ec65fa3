"""Bounds for statistical assertions, each with a stated false-failure probability ``fail``.

A statistical test asserts that a random quantity lies in an interval from this module, with ``fail``
(the probability that a correct implementation still lands outside) chosen so that the test's total,
by the union bound over its assertions and hypothesis examples, is at most 1e-6. The bounds are
derived from the sample size and the distribution of what is actually random: exact chi-square
quantiles for iid normal samples, Bernstein's inequality for bounded samples, and for the entries of
a product of two Gaussian matrices (which share one factor, so they are *not* independent) the
Laurent-Massart and Davidson-Szarek inequalities, conditionally on the shared factor. They hold up to
float32 rounding of the samples.
"""

import math

from scipy import stats

__all__ = [
    "bernstein_mean_bound",
    "chi2_std_bounds",
    "gaussian_abs_max_lower",
    "gaussian_mean_bound",
    "gaussian_product_std_bounds",
    "uniform_abs_max_lower",
    "uniform_std_bounds",
]


def chi2_std_bounds(dof: int, fail: float) -> tuple[float, float]:
    """``(lo, hi)`` for ``s/σ``, ``s`` a sample std with ``dof`` degrees of freedom of iid N(μ, σ²).

    ``dof * s²/σ² ~ χ²(dof)`` exactly (``dof = n - 1`` for ``std(ddof=1)`` of n samples, ``n`` for
    the root mean square of zero-mean samples); each side fails with probability ``fail / 2``.
    """
    lo, hi = stats.chi2.ppf([fail / 2, 1 - fail / 2], dof)
    return math.sqrt(lo / dof), math.sqrt(hi / dof)


def gaussian_mean_bound(n: int, fail: float) -> float:
    """``|mean|/σ`` of n iid N(0, σ²) exceeds this with probability ``fail`` (the mean is N(0, σ²/n))."""
    return float(stats.norm.isf(fail / 2)) / math.sqrt(n)


def gaussian_abs_max_lower(n: int, fail: float) -> float:
    """``max |x_i| / σ`` of n iid N(0, σ²) is below this with probability ``fail``.

    ``P(max < z) = (1 - P(|x| > z))^n = fail`` solved for z.
    """
    p_exceed = -math.expm1(math.log(fail) / n)  # 1 - fail^(1/n), accurately
    return float(stats.norm.isf(p_exceed / 2))


def uniform_abs_max_lower(n: int, fail: float) -> float:
    """``max |x_i| / b`` of n iid U(-b, b) is below this with probability ``fail``: ``fail^(1/n)``."""
    return math.exp(math.log(fail) / n)


def bernstein_mean_bound(n: int, variance: float, bound: float, fail: float) -> float:
    """``|mean - μ|`` of n iid samples with ``|x - μ| <= bound`` and the given variance exceeds this
    with probability at most ``fail``.

    Bernstein: ``P(|mean - μ| >= ε) <= 2 exp(-n ε² / (2 variance + 2 bound ε / 3))``, solved for ε.
    """
    t = math.log(2 / fail)
    a = bound * t / 3
    return (a + math.sqrt(a * a + 2 * n * variance * t)) / n


def uniform_std_bounds(n: int, fail: float) -> tuple[float, float]:
    """``(lo, hi)`` for ``std(ddof=0)/(b/√3)`` of n iid U(-b, b) (``b/√3`` the distribution's std).

    ``std² = mean(x²) - mean(x)²``: ``x²`` lies in ``[0, b²]`` around its mean ``b²/3`` (deviation
    at most ``2b²/3``, variance ``4b⁴/45``) and ``x`` in ``[-b, b]`` (variance ``b²/3``); each of the
    two Bernstein bounds fails with probability ``fail / 2``. Take ``b = 1``.
    """
    e2 = bernstein_mean_bound(n, 4 / 45, 2 / 3, fail / 2)
    e1 = bernstein_mean_bound(n, 1 / 3, 1.0, fail / 2)
    return math.sqrt(max(1 / 3 - e2 - e1 * e1, 0.0) * 3), math.sqrt((1 / 3 + e2) * 3)


def gaussian_product_std_bounds(p: int, q: int, r: int, fail: float) -> tuple[float, float]:
    """``(lo, hi)`` for ``std(Y, ddof=1)`` over all entries of ``Y = A C / √q``, A ``(p, q)`` and
    C ``(q, r)`` independent with iid N(0, 1) entries (so ``E[Y²] = 1``).

    The entries of Y share A's rows and C's columns, so they are not independent and
    ``(pr - 1) s²`` is not chi-square. Conditionally on C, with ``λ`` the eigenvalues of ``C Cᵀ``,
    ``q ΣY² = Σ_j λ_j χ²_j(p)`` (a weighted chi-square), and

    1. ``F = Σλ = ||C||_F² ~ χ²(qr)``: ``F <= qr + 2√(qrt) + 2t`` and ``F >= qr - 2√(qrt)``
       (Laurent-Massart), each failing with probability ``e^-t``;
    2. ``λ_max = ||C||₂² <= Λ = (√q + √r + √(2t))²`` (Davidson-Szarek), failing w.p. ``e^-t``;
    3. ``q ΣY² - pF`` lies in ``[-2√(p Σλ² t), 2√(p Σλ² t) + 2 λ_max t]`` (Laurent-Massart for
       weighted chi-squares, two events), with ``Σλ² <= λ_max F``;
    4. the sum of all entries is ``N(0, p ||C 1||² / q)`` with ``||C 1||² <= λ_max r``, so its
       square is at most ``2t p Λ r / q`` (fails w.p. ``e^-t``); it enters ``s²`` through the mean.

    Six events with ``t = ln(6 / fail)``. The roles of A and C can be swapped (``Yᵀ = Cᵀ Aᵀ / √q``);
    the orientation giving the narrower interval is used (chosen from the sizes only).
    """
    t = math.log(6 / fail)
    best = (0.0, math.inf)
    for p_, r_ in ((p, r), (r, p)):
        n = p_ * r_
        f_hi = q * r_ + 2 * math.sqrt(q * r_ * t) + 2 * t
        f_lo = q * r_ - 2 * math.sqrt(q * r_ * t)
        lam = (math.sqrt(q) + math.sqrt(r_) + math.sqrt(2 * t)) ** 2
        dev = 2 * math.sqrt(p_ * lam * f_hi * t)
        sum_sq_hi = (p_ * f_hi + dev + 2 * lam * t) / q
        sum_sq_lo = (p_ * f_lo - dev) / q
        mean_sq_hi = 2 * t * lam / q  # (Σ Y)² / N
        lo = math.sqrt(max(sum_sq_lo - mean_sq_hi, 0.0) / (n - 1))
        hi = math.sqrt(sum_sq_hi / (n - 1))
        if hi - lo < best[1] - best[0]:
            best = (lo, hi)
    return best
