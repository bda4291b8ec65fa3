"""Unit-scaled residual connections: ``residual_split`` / ``residual_add`` / ``residual_apply``.

A residual layer ``x + f(x)`` mixes two unit-scaled branches, so their sum would have std √2 and
the gradient arriving at ``x`` would add two unit gradients. The reference weights the residual
branch by ``τ/√(1+τ²)`` and the skip branch by ``1/√(1+τ²)`` (the squares sum to 1): in the forward
pass at the add (:func:`residual_add`) and in the backward pass at the split (:func:`residual_split`),
so the branch itself still sees unit-scaled values and gradients.

Note:
    The reference's docstrings say larger ``tau`` favours the skip branch; its code (and this port)
    weights the residual branch by ``tau/√(1+tau²)``, so larger ``tau`` favours the *residual* branch.
"""

from collections.abc import Callable

import jax.numpy as jnp  # noqa: F401 (doctests)

from jaxlinear._checks import check_real
from jaxlinear._typing import Array
from jaxlinear.scaling._checks import as_float_array
from jaxlinear.scaling._scale import scale_bwd, scale_fwd
from jaxlinear.scaling._scope import op_scope

__all__ = [
    "residual_add",
    "residual_apply",
    "residual_split",
    "residual_weights",
    "transformer_residual_scaling_rule",
]


def _check_tau(tau: float) -> float:
    return check_real("tau", tau, min_value=0.0)


def residual_weights(tau: float = 1.0) -> tuple[float, float]:
    """``(residual, skip)`` weights ``(τ/√(1+τ²), 1/√(1+τ²))``: the one place of the rule.

    Args:
        tau: the weight of the residual branch relative to the skip branch, a finite Python
            float (or int) >= 0.

    Returns:
        ``(residual, skip)`` as Python floats; their squares sum to 1.

    Raises:
        TypeError: if ``tau`` is not a Python float or int (a bool, an array).
        ValueError: if ``tau`` is negative, NaN or inf.

    Example:
        >>> residual_weights(1.0)
        (0.7071067811865475, 0.7071067811865475)
    """
    tau = _check_tau(tau)
    denom = (1 + tau**2) ** 0.5
    return tau / denom, 1 / denom


def residual_split(x: Array, tau: float = 1.0) -> tuple[Array, Array]:
    """Split ``x`` into ``(residual, skip)`` inputs of a residual layer (``unit_scaling``'s).

    Both are ``x`` in the forward pass; in the backward pass the residual branch's gradient is
    multiplied by ``τ/√(1+τ²)`` and the skip branch's by ``1/√(1+τ²)``. Use with
    :func:`residual_add` and the same ``tau``.

    Args:
        x: the layer input.
        tau: the weight of the residual branch relative to the skip branch (>= 0).

    Returns:
        ``(residual, skip)``.

    Example:
        >>> r, s = residual_split(jnp.ones(2))
        >>> r.tolist(), s.tolist()
        ([1.0, 1.0], [1.0, 1.0])
    """
    x = as_float_array("x", x)
    w_res, w_skip = residual_weights(tau)
    return scale_bwd(x, w_res), scale_bwd(x, w_skip)


@op_scope
def residual_add(residual: Array, skip: Array, tau: float = 1.0) -> Array:
    """``τ/√(1+τ²)·residual + 1/√(1+τ²)·skip``, scaled in the forward pass only (``unit_scaling``'s).

    Args:
        residual: the residual branch's output.
        skip: the skip branch (from :func:`residual_split`).
        tau: the same ``tau`` as the split.

    Returns:
        The sum.

    Example:
        >>> residual_add(jnp.ones(1), jnp.ones(1), tau=0.0).tolist()
        [1.0]
    """
    residual = as_float_array("residual", residual)
    skip = as_float_array("skip", skip)
    if residual.shape != skip.shape:
        raise ValueError(
            f"`skip` must have the shape of `residual` {residual.shape}, got {skip.shape}."
        )
    w_res, w_skip = residual_weights(tau)
    return scale_fwd(residual, w_res) + scale_fwd(skip, w_skip)


def residual_apply(fn: Callable[[Array], Array], x: Array, tau: float = 1.0) -> Array:
    """``residual_add(fn(residual), skip, tau)`` after ``residual_split(x, tau)``.

    Args:
        fn: the residual branch.
        x: the layer input, also the skip connection.
        tau: the weight of the residual branch relative to the skip branch.

    Returns:
        The layer output.

    Example:
        >>> residual_apply(lambda v: 3 * v, jnp.ones(1), tau=1.0).tolist()
        [2.8284270763397217]
    """
    residual, skip = residual_split(x, tau)
    return residual_add(fn(residual), skip, tau)


def transformer_residual_scaling_rule(
    residual_mult: float = 1.0, residual_attn_ratio: float = 1.0
) -> Callable[[int, int], float]:
    """u-μP's ``tau`` per residual branch of a transformer (``unit_scaling.core.functional``).

    For a stack that starts with an embedding and alternates attention (even ``index``) and MLP
    (odd ``index``) branches, ``fn(index, layers)`` (``layers`` counts branches) gives each branch
    the ``tau`` for which every attention and every MLP branch contributes equally, their total
    relative to the embedding is ``residual_mult``, and attention/MLP is ``residual_attn_ratio``.

    Args:
        residual_mult: the total weight of the residual branches relative to the embedding, a
            float > 0 (u-μP's hyperparameter of the same name).
        residual_attn_ratio: the weight of the attention branches relative to the MLP branches,
            a float > 0.

    Returns:
        A function ``(index, layers) -> tau`` (Python ints to a Python float) to pass as the
        ``tau`` of :func:`residual_split` / :func:`residual_add` for branch ``index`` of ``layers``.

    Example:
        >>> rule = transformer_residual_scaling_rule()
        >>> round(rule(0, 4), 6), round(rule(1, 4), 6)  # 1/√(layers/2 + index)
        (0.707107, 0.57735)
    """
    alpha_mlp = residual_mult * (2 / (1 + residual_attn_ratio**2)) ** 0.5
    alpha_attn = residual_attn_ratio * alpha_mlp

    def _tau(index: int, layers: int) -> float:
        n_attn = (index + 1) // 2
        n_mlp = index // 2
        alpha = alpha_attn if index % 2 == 0 else alpha_mlp
        return alpha / (layers / 2 + n_attn * alpha_attn**2 + n_mlp * alpha_mlp**2) ** 0.5

    return _tau
