"""TINY's closed forms (gromo ``utils/tools.py``): the optimal δ, S^{-1/2}, the new neurons, the FO.

Every function here is jittable except :func:`compute_optimal_added_parameters`, whose number of new
neurons depends on the data; its jittable twin :func:`compute_optimal_added_parameters_padded` returns
fixed-size arrays and the count.
"""

import inspect
from collections.abc import Callable
from typing import ParamSpec

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_positive_int
from jaxlinear._typing import Array
from jaxlinear.growing._activations import (
    ACTIVATION_GRADIENT_AT_ZERO,
    activation_gradient_at_zero,
)

__all__ = [
    "ACTIVATION_GRADIENT_AT_ZERO",
    "compute_optimal_added_parameters",
    "compute_optimal_added_parameters_padded",
    "compute_optimal_delta",
    "first_order_improvement",
    "shrink_psd_matrix",
    "sqrt_inverse_matrix_semi_positive",
]


def _check_square(name: str, s: Array) -> None:
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"`{name}` must be a square matrix, got shape {s.shape}.")


def _pinv(s: Array) -> Array:
    # torch.linalg.pinv's default cut-off: rtol = eps * max(m, n) (jnp's default is 10x larger).
    rtol = jnp.finfo(s.dtype).eps * max(s.shape)
    return jnp.linalg.pinv(s, rtol=rtol)


def shrink_psd_matrix(matrix: Array, shrinkage: float, size: Array | int | None = None) -> Array:
    """Ledoit-Wolf shrinkage ``(1 − a)·E + a·tr(E)/d·I`` (gromo's ``_shrink_psd_matrix``).

    ``size`` is ``d`` (default: the matrix size; a bucketed layer passes its active width).

    Args:
        matrix: a positive semi-definite matrix ``(d, d)``.
        shrinkage: ``a`` in [0, 1].
        size: the ``d`` of tr(E)/d (the active width of a bucketed layer), default the matrix size.

    Example:
        >>> shrink_psd_matrix(jnp.diag(jnp.array([2.0, 0.0])), 0.5).tolist()
        [[1.5, 0.0], [0.0, 0.5]]
    """
    if not isinstance(shrinkage, int | float) or not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"`fisher_shrinkage` must be a float in [0, 1], got {shrinkage!r}.")
    _check_square("matrix", matrix)
    d = matrix.shape[0] if size is None else size
    scale = jnp.trace(matrix) / jnp.maximum(jnp.asarray(d, matrix.dtype), 1)
    return (1 - shrinkage) * matrix + shrinkage * scale * jnp.eye(
        matrix.shape[0], dtype=matrix.dtype
    )


def _solve_or_pinv(a: Array, b: Array) -> tuple[Array, Array]:
    """``a⁻¹ b`` by LU, or ``pinv(a) b`` when LU meets an exact zero pivot (torch raises there)."""
    lu, piv = jax.scipy.linalg.lu_factor(a)
    singular = jnp.any(jnp.diagonal(lu) == 0)
    return jax.lax.cond(
        singular,
        lambda: (_pinv(a) @ b, jnp.bool_(True)),
        lambda: (jax.scipy.linalg.lu_solve((lu, piv), b), jnp.bool_(False)),
    )


def compute_optimal_delta(
    tensor_s: Array,
    tensor_m: Array,
    force_pseudo_inverse: bool | Array = False,
    tensor_covariance_loss_gradient: Array | None = None,
) -> tuple[Array, Array]:
    """δ = (S⁻¹M)ᵀ ``(out, in + bias)`` and the first-order decrease tr(M δ), as gromo's ``optimal_delta``.

    ``tensor_s`` is the mean S ``(in + bias, in + bias)``, ``tensor_m`` the mean M ``(in + bias, out)``.
    The solve is an LU solve, as ``torch.linalg.solve``. torch raises on an exactly singular S (a zero
    pivot, e.g. a dead ReLU unit) and gromo then uses ``pinv(S) M``; ``jnp.linalg.solve`` never raises,
    so the zero pivot is detected here explicitly and the pseudo-inverse (with torch's cut-off
    ``rtol = eps·max(m, n)``) is used instead. With ``tensor_covariance_loss_gradient`` E ``(out,
    out)`` (gromo's ``use_fisher``) δ is preconditioned on the output side, δ ← E⁻¹δ (by the
    pseudo-inverse when E is singular or S needed one). A negative decrease is retried with the
    pseudo-inverse (in float64 when ``jax_enable_x64`` is on, else in the input dtype: gromo always
    uses float64), and if it stays negative δ and the decrease are set to 0. gromo warns on these
    paths; under ``jit`` no warning can be emitted. The δ step is applied as ``W ← W − γ²·δ``.

    Args:
        tensor_s: the mean S ``(in + bias, in + bias)``.
        tensor_m: the mean M ``(in + bias, out)``.
        force_pseudo_inverse: use the pseudo-inverse even when S is invertible.
        tensor_covariance_loss_gradient: E ``(out, out)`` for gromo's ``use_fisher``, or None.

    Example:
        >>> s = jnp.eye(3) * 2.0
        >>> m = jnp.ones((3, 2))
        >>> delta, decrease = compute_optimal_delta(s, m)
        >>> delta.shape, round(float(decrease), 4)
        ((2, 3), 3.0)
    """
    _check_square("tensor_s", tensor_s)
    if tensor_m.ndim != 2 or tensor_m.shape[0] != tensor_s.shape[0]:
        raise ValueError(
            f"`tensor_m` must have shape ({tensor_s.shape[0]}, out_features), got {tensor_m.shape}."
        )
    if tensor_s.dtype != tensor_m.dtype:
        raise TypeError(
            f"`tensor_m` must have the dtype of `tensor_s` ({tensor_s.dtype}), got {tensor_m.dtype}."
        )
    fisher = tensor_covariance_loss_gradient
    if fisher is not None:
        _check_square("tensor_covariance_loss_gradient", fisher)
        if fisher.shape[0] != tensor_m.shape[1]:
            raise ValueError(
                f"`tensor_covariance_loss_gradient` must have shape {(tensor_m.shape[1],) * 2} "
                f"(out_features of `tensor_m`), got {fisher.shape}."
            )
    dtype = tensor_s.dtype
    if tensor_s.shape[0] == 0:  # no input and no bias: nothing to update
        return jnp.zeros(tensor_m.shape[::-1], dtype), jnp.zeros((), dtype)

    def precondition(delta, used_pinv, e):
        if e is None:
            return delta
        return jax.lax.cond(
            used_pinv,
            lambda: _pinv(e) @ delta,
            lambda: _solve_or_pinv(e, delta)[0],
        )

    force = jnp.asarray(force_pseudo_inverse, bool)
    delta_t, used_pinv = jax.lax.cond(
        force,
        lambda: (_pinv(tensor_s) @ tensor_m, jnp.bool_(True)),
        lambda: _solve_or_pinv(tensor_s, tensor_m),
    )
    delta = precondition(delta_t.T, used_pinv, fisher)
    decrease = jnp.trace(tensor_m @ delta)

    wide = jnp.float64 if jax.config.read("jax_enable_x64") else dtype

    def retry():
        s64, m64 = tensor_s.astype(wide), tensor_m.astype(wide)
        e64 = None if fisher is None else fisher.astype(wide)
        d64 = precondition((_pinv(s64) @ m64).T, jnp.bool_(True), e64)
        dec64 = jnp.trace(m64 @ d64)
        ok = dec64 >= 0
        return (
            jnp.where(ok, d64, 0).astype(dtype),
            jnp.where(ok, dec64, 0).astype(dtype),
        )

    def zero():
        return jnp.zeros_like(delta), jnp.zeros_like(decrease)

    def keep():
        return delta, decrease

    branch = jnp.where(decrease < 0, jnp.where(used_pinv, 2, 1), 0)
    return jax.lax.switch(branch, [keep, retry, zero])


def sqrt_inverse_matrix_semi_positive(matrix: Array, threshold: float = 1e-5) -> Array:
    """S^{-1/2} over the eigenvalues ``> threshold`` (absolute), 0 on the others (gromo's helper).

    eigh reads the lower triangle, as ``torch.linalg.eigh``. If it fails (non-finite eigenvalues),
    ``finfo.resolution · I`` is added and it is retried, as gromo does when eigh raises.

    Args:
        matrix: a symmetric positive semi-definite matrix.
        threshold: eigenvalues ``<=`` it are dropped.

    Example:
        >>> r = sqrt_inverse_matrix_semi_positive(jnp.diag(jnp.array([4.0, 0.0])))
        >>> r.tolist()
        [[0.5, 0.0], [0.0, 0.0]]
    """
    _check_square("matrix", matrix)
    eye = jnp.eye(matrix.shape[0], dtype=matrix.dtype)

    def eigh(m):
        return tuple(jnp.linalg.eigh(m, UPLO="L", symmetrize_input=False))

    values, vectors = eigh(matrix)
    values, vectors = jax.lax.cond(
        jnp.all(jnp.isfinite(values)),
        lambda: (values, vectors),
        lambda: eigh(matrix + jnp.finfo(matrix.dtype).resolution * eye),
    )
    keep = values > threshold
    inv_sqrt = jnp.where(keep, jax.lax.rsqrt(jnp.where(keep, values, 1)), 0)
    return (vectors * inv_sqrt[None, :]) @ vectors.T


def _allclose_sym(s: Array) -> Array:
    # torch.allclose defaults: rtol 1e-5, atol 1e-8
    return jnp.all(jnp.abs(s - s.T) <= 1e-8 + 1e-5 * jnp.abs(s.T))


def _symmetrized(name: str, matrix: Array, size: int, n_shape: tuple[int, ...]) -> Array:
    """``matrix`` checked square ``(size, size)`` (to match N of shape ``n_shape``) and symmetrised
    when it is not allclose to its transpose (gromo warns and does so; no warning under jit)."""
    _check_square(name, matrix)
    if matrix.shape[0] != size:
        raise ValueError(
            f"`{name}` must have shape ({size}, {size}) to match `matrix_n` {n_shape}, "
            f"got {matrix.shape}."
        )
    return jnp.where(_allclose_sym(matrix), matrix, (matrix + matrix.T) / 2)


def compute_optimal_added_parameters_padded(
    matrix_s: Array | None,
    matrix_n: Array,
    numerical_threshold: float = 1e-6,
    statistical_threshold: float = 1e-3,
    maximum_added_neurons: int | None = None,
    alpha_zero: bool = False,
    omega_zero: bool = False,
    ignore_singular_values: bool = False,
    matrix_covariance_loss_gradient: Array | None = None,
    e_numerical_threshold: float | None = None,
) -> tuple[Array, Array, Array, Array]:
    """The jittable form of :func:`compute_optimal_added_parameters`.

    Returns ``alpha (r, s)``, ``omega (t, r)``, ``singular_values (r,)`` with ``r = min(s, t)`` and the
    number ``k`` of selected neurons (an int32 scalar): rows/columns/entries from ``k`` on are zero.

    Args:
        matrix_s: S_growth ``(s, s)`` or None (identity).
        matrix_n: N ``(s, t)``.
        numerical_threshold: S's eigenvalues kept above it.
        statistical_threshold: singular values kept at or above it (at least one).
        maximum_added_neurons: at most this many neurons, or None.
        alpha_zero: α = 0.
        omega_zero: ω = 0.
        ignore_singular_values: √σ → 1.
        matrix_covariance_loss_gradient: E ``(t, t)`` (``use_fisher``) or None.
        e_numerical_threshold: E's eigenvalues kept above it (default ``numerical_threshold``).

    Example:
        >>> a, o, sv, k = compute_optimal_added_parameters_padded(jnp.eye(3), jnp.eye(3)[:, :2])
        >>> a.shape, o.shape, sv.tolist(), int(k)
        ((2, 3), (2, 2), [1.0, 1.0], 2)
    """
    if matrix_n.ndim != 2:
        raise ValueError(f"`matrix_n` must be a matrix (s, t), got shape {matrix_n.shape}.")
    n1, n2 = matrix_n.shape
    if maximum_added_neurons is not None:
        check_positive_int("maximum_added_neurons", maximum_added_neurons, allow_zero=True)
    if matrix_s is not None:
        matrix_s = _symmetrized("matrix_s", matrix_s, n1, matrix_n.shape)
        # gromo whitens with S^{-1/2} from an eigh. When every eigenvalue is clearly above the
        # threshold (S − shift·I has a Cholesky factor) eigh keeps them all, and the Cholesky
        # factor L (S = LLᵀ) whitens to the same singular values and the same α = L⁻ᵀU√σ
        # (L⁻¹ = R·S^{-1/2} with R orthogonal) at a fraction of eigh's cost.
        eye = jnp.eye(n1, dtype=matrix_s.dtype)
        shift = 2 * numerical_threshold + 16 * jnp.finfo(matrix_s.dtype).eps * jnp.trace(matrix_s)
        use_cholesky = jnp.all(jnp.isfinite(jnp.linalg.cholesky(matrix_s - shift * eye)))
        factor = jnp.linalg.cholesky(jnp.where(use_cholesky, matrix_s, eye))

        def eigh_whitening():
            return sqrt_inverse_matrix_semi_positive(matrix_s, numerical_threshold)

        s_inv_sqrt = jax.lax.cond(use_cholesky, lambda: eye, eigh_whitening)
        matrix_p = jax.lax.cond(
            use_cholesky,
            lambda: jax.scipy.linalg.solve_triangular(factor, matrix_n, lower=True),
            lambda: s_inv_sqrt @ matrix_n,
        )

        # the whitening's transpose applied to the left singular vectors
        def back(u: Array) -> Array:
            return jax.lax.cond(
                use_cholesky,
                lambda: jax.scipy.linalg.solve_triangular(factor, u, lower=True, trans="T"),
                lambda: s_inv_sqrt @ u,
            )
    else:  # GradMax: S = I
        matrix_p = matrix_n

        def back(u: Array) -> Array:
            return u

    e_inv_sqrt = None
    if matrix_covariance_loss_gradient is not None:  # gromo's use_fisher: S^{-1/2} N E^{-1/2}
        e = _symmetrized(
            "matrix_covariance_loss_gradient", matrix_covariance_loss_gradient, n2, matrix_n.shape
        )
        threshold = numerical_threshold if e_numerical_threshold is None else e_numerical_threshold
        e_inv_sqrt = sqrt_inverse_matrix_semi_positive(e, threshold)
        matrix_p = matrix_p @ e_inv_sqrt
    u, s, vh = jnp.linalg.svd(matrix_p, full_matrices=False)
    # a deterministic sign per neuron (LAPACK's is arbitrary): the largest |v| entry is positive
    if vh.size:
        pivot = jnp.take_along_axis(vh, jnp.argmax(jnp.abs(vh), axis=1)[:, None], axis=1)[:, 0]
        sign = jnp.where(pivot < 0, -1.0, 1.0).astype(vh.dtype)
        u, vh = u * sign[None, :], vh * sign[:, None]
    r = s.shape[0]
    if r == 0:
        k = jnp.zeros((), jnp.int32)
    else:
        # s is descending, so {s >= min(thr, max s)} is a prefix holding at least the top value.
        k = jnp.sum(s >= jnp.minimum(statistical_threshold, s[0])).astype(jnp.int32)
    if maximum_added_neurons is not None:
        k = jnp.minimum(k, maximum_added_neurons)
    mask = jnp.arange(r) < k
    s = jnp.where(mask, s, 0)
    sqrt_s = jnp.where(mask, 1.0, 0.0).astype(s.dtype) if ignore_singular_values else jnp.sqrt(s)
    alpha = sqrt_s[None, :] * back(u)  # (n1, r)
    omega = sqrt_s[:, None] * vh  # (r, n2)
    if e_inv_sqrt is not None:
        omega = omega @ e_inv_sqrt
    if alpha_zero:
        alpha = jnp.zeros_like(alpha)
    if omega_zero:
        omega = jnp.zeros_like(omega)
    return alpha.T, omega.T, s, k


P = ParamSpec("P")


def _selected(
    padded: Callable[P, tuple[Array, Array, Array, Array]], doc: str
) -> Callable[P, tuple[Array, Array, Array]]:
    """``padded`` compiled once per set of options, its outputs cut to the ``k`` selected neurons:
    the data-dependent form of a padded solver, with its signature (one list of arguments)."""
    jitted = jax.jit(padded, static_argnums=(2, 3, 4, 5, 6, 7, 9))

    def selected(*args: P.args, **kwargs: P.kwargs) -> tuple[Array, Array, Array]:
        alpha, omega, s, k = jitted(*args, **kwargs)
        k = int(k)
        return alpha[:k], omega[:, :k], s[:k]

    returns = tuple[Array, Array, Array]
    signature = inspect.signature(padded).replace(return_annotation=returns)
    selected.__signature__ = signature  # type: ignore[attr-defined]  # what docs and help() show
    selected.__doc__ = doc
    selected.__name__ = selected.__qualname__ = padded.__name__.removesuffix("_padded")
    selected.__module__ = padded.__module__
    return selected


compute_optimal_added_parameters = _selected(
    compute_optimal_added_parameters_padded,
    """TINY's new neurons: ``alpha (k, s)``, ``omega (t, k)``, singular values ``(k,)``, as gromo.

    ``matrix_s`` is S_growth (the mean x̃₋₂x̃₋₂ᵀ, or None for the identity: GradMax), ``matrix_n`` the
    mean N = −M₋₂ + Pδᵀ ``(s, t)``. S^{-1/2} keeps the eigenvalues ``> numerical_threshold``
    (absolute); the SVD of S^{-1/2}N keeps the singular values ``>= min(statistical_threshold,
    max)`` (so at least one), at most ``maximum_added_neurons``; α = √σ ⊙ S^{-1/2}U, ω = √σ ⊙ V
    (√σ → 1 with ``ignore_singular_values``). With ``matrix_covariance_loss_gradient`` E (gromo's
    ``use_fisher``) the SVD is of S^{-1/2}NE^{-1/2} and ω is multiplied by E^{-1/2} (E's eigenvalues
    kept above ``e_numerical_threshold``, default ``numerical_threshold``). The last column of α is
    the new neurons' bias when the previous layer has one. α and ω are defined up to a joint sign
    per neuron (compare ω·α with gromo); here the sign is fixed so that the largest entry of each
    singular vector v is positive.

    Not jittable (``k`` depends on the data); see :func:`compute_optimal_added_parameters_padded`.

    Args:
        matrix_s, matrix_n, ...: the arguments of :func:`compute_optimal_added_parameters_padded`,
            with the same names and defaults (one signature for both).

    Returns:
        ``(alpha (k, s), omega (t, k), singular_values (k,))``.

    Example:
        >>> alpha, omega, sv = compute_optimal_added_parameters(jnp.eye(3), jnp.diag(jnp.array(
        ...     [2.0, 1e-5, 0.0]))[:, :2])
        >>> alpha.shape, omega.shape, sv.tolist()
        ((1, 3), (2, 1), [2.0])
""",
)


def first_order_improvement(
    parameter_update_decrease: Array | float,
    singular_values: Array | None,
    activation: str | Callable[[Array], Array] = "relu",
    squared_singular_values: bool = True,
) -> Array:
    """decrease + σ'(0⁺)·Σλ² (Σλ when ``squared_singular_values`` is False), gromo's FO.

    ``activation`` is the previous layer's activation, a name (gromo's table of σ'(0⁺), see
    :data:`ACTIVATION_GRADIENT_AT_ZERO`) or a JAX callable (σ'(0⁺) by autodiff). With the legacy
    amplitude γ (δ·γ², α and ω·γ) the mean summed loss (1/n)Σℓᵢ decreases by γ²·FO + o(γ²) for
    activations differentiable at 0.

    Args:
        parameter_update_decrease: δ's first-order decrease.
        singular_values: λ of the new neurons, or None.
        activation: the previous layer's activation (name or callable).
        squared_singular_values: Σλ² (True) or Σλ (gromo's ``ignore_singular_values``).

    Example:
        >>> float(first_order_improvement(1.0, jnp.array([1.0, 2.0]), "sigmoid"))
        2.25
    """
    slope = activation_gradient_at_zero(activation)
    decrease = jnp.asarray(parameter_update_decrease)
    if singular_values is None:
        return decrease
    sv = jnp.asarray(singular_values)
    extra = jnp.sum(sv**2) if squared_singular_values else jnp.sum(sv)
    return decrease + np.float32(slope) * extra
