"""The TINY statistics of gromo's ``LinearGrowingModule`` as pure updates: ``(batch sum, count)``.

Conventions (gromo's, see ``gromo.modules.linear_growing_module``):

- an input ``x`` of shape ``(n, ..., d)`` is flattened to ``(n·..., d)`` rows for the outer products,
  but the **count is the leading dimension** ``n`` only (gromo's released behaviour: the statistics of
  3-D inputs are per sequence, not per token);
- the bias is a ones column appended **last** ("input extended"), present only when the layer that
  consumes that input has a bias;
- ``grad`` is the gradient of the **summed** loss with respect to the pre-activation (per-sample
  gradients, not divided by the batch size). With a mean-reduced loss multiply the gradient by the
  batch size first (:func:`jaxlinear.growing.update_statistics` does it for ``loss_reduction="mean"``);
- sums accumulate in the input dtype (float32) and are divided by the count only when read
  (:meth:`RunningSum.mean`).
"""

import math
from typing import NamedTuple

import jax.numpy as jnp

from jaxlinear._checks import check_min_ndim
from jaxlinear._typing import Array

__all__ = [
    "RunningSum",
    "compute_covariance_loss_gradient_update",
    "compute_cross_covariance_update",
    "compute_m_prev_update",
    "compute_m_update",
    "compute_n_update",
    "compute_s_update",
    "input_extended",
    "tensor_n",
]


class RunningSum(NamedTuple):
    """A running sum of per-batch statistics and the number of samples seen (gromo's ``TensorStatistic``).

    Attributes:
        sum: the sum of the batch sums.
        count: the number of samples seen (an int32 scalar).

    Example:
        >>> stat = RunningSum.zeros((2, 2))
        >>> stat = stat.add(compute_s_update(jnp.ones((3, 1))))
        >>> stat.mean().tolist(), int(stat.count)
        ([[1.0, 1.0], [1.0, 1.0]], 3)
    """

    sum: Array
    count: Array  # int32 scalar  # pyright: ignore[reportIncompatibleMethodOverride]

    @classmethod
    def zeros(cls, shape: tuple[int, ...], dtype=jnp.float32) -> "RunningSum":
        """An empty statistic: zero sum, zero count.

        Args:
            shape: the statistic's shape.
            dtype: its dtype.
        """
        return cls(jnp.zeros(shape, dtype), jnp.zeros((), jnp.int32))

    def add(self, update: tuple[Array, int | Array]) -> "RunningSum":
        """This sum plus one ``(batch_sum, batch_count)`` update.

        Args:
            update: ``(batch_sum, batch_count)``, e.g. from :func:`compute_s_update`.
        """
        batch_sum, batch_count = update
        if batch_sum.shape != self.sum.shape:
            raise ValueError(
                f"`update` must have a sum of shape {self.sum.shape}, got {batch_sum.shape}."
            )
        return RunningSum(self.sum + batch_sum, self.count + jnp.asarray(batch_count, jnp.int32))

    def mean(self) -> Array:
        """``sum / count`` (NaN-free only once at least one sample was seen)."""
        return self.sum / self.count.astype(self.sum.dtype)


def _rows(x: Array) -> Array:
    return jnp.reshape(x, (math.prod(x.shape[:-1]), x.shape[-1]))  # -1 fails with 0 features


def input_extended(x: Array, use_bias: bool) -> Array:
    """``x`` with a ones column appended last when ``use_bias`` (gromo's ``input_extended``).

    Args:
        x: an input ``(batch, ..., d)``.
        use_bias: append the ones column.

    Example:
        >>> input_extended(jnp.zeros((2, 3)), True).shape
        (2, 4)
    """
    check_min_ndim("x", x, 2, "(batch, ..., features)")
    if not use_bias:
        return x
    return jnp.concatenate([x, jnp.ones((*x.shape[:-1], 1), x.dtype)], axis=-1)


def _outer(a: Array, b: Array) -> Array:
    return jnp.einsum("ij,ik->jk", _rows(a), _rows(b))


def _check_pair(a: Array, name_a: str, b: Array, name_b: str) -> None:
    check_min_ndim(name_a, a, 2, "(batch, ..., features)")
    check_min_ndim(name_b, b, 2, "(batch, ..., features)")
    if a.shape[:-1] != b.shape[:-1]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same leading shape, got {a.shape} and {b.shape}."
        )


def compute_s_update(x: Array, use_bias: bool = True) -> tuple[Array, int]:
    """Update of S = x̃ᵀx̃ for the layer whose input is ``x``: ``((d+bias, d+bias), n)``.

    Args:
        x: the layer's input ``(batch, ..., d)``.
        use_bias: whether the layer has a bias (a ones column is appended).

    Example:
        >>> s, n = compute_s_update(jnp.ones((4, 2)))
        >>> s.shape, n
        ((3, 3), 4)
    """
    check_min_ndim("x", x, 2, "(batch, ..., features)")
    xe = input_extended(x, use_bias)
    return _outer(xe, xe), x.shape[0]


def compute_m_update(x: Array, grad: Array, use_bias: bool = True) -> tuple[Array, int]:
    """Update of M = x̃ᵀg: the layer's input ``x`` against the pre-activation gradient ``grad``.

    Args:
        x: the layer's input ``(batch, ..., d)``.
        grad: the summed loss's gradient at the layer's pre-activation ``(batch, ..., out)``.
        use_bias: whether the layer has a bias.

    Example:
        >>> m, n = compute_m_update(jnp.ones((4, 2)), jnp.ones((4, 5)))
        >>> m.shape, n
        ((3, 5), 4)
    """
    _check_pair(x, "x", grad, "grad")
    return _outer(input_extended(x, use_bias), grad), x.shape[0]


def compute_m_prev_update(
    x_prev: Array, grad: Array, use_bias_prev: bool = True
) -> tuple[Array, int]:
    """Update of M₋₂ = x̃₋₂ᵀg: the previous layer's input against this layer's gradient.

    ``use_bias_prev`` is the bias of the previous layer (the one that consumes ``x_prev``).

    Args:
        x_prev: the previous layer's input ``(batch, ..., d_prev)``.
        grad: this layer's pre-activation gradient ``(batch, ..., out)``.
        use_bias_prev: whether the previous layer has a bias.

    Example:
        >>> m, n = compute_m_prev_update(jnp.ones((4, 6)), jnp.ones((4, 5)), False)
        >>> m.shape, n
        ((6, 5), 4)
    """
    _check_pair(x_prev, "x_prev", grad, "grad")
    return _outer(input_extended(x_prev, use_bias_prev), grad), grad.shape[0]


def compute_cross_covariance_update(
    x_prev: Array, x: Array, use_bias_prev: bool = True, use_bias: bool = True
) -> tuple[Array, int]:
    """Update of P = x̃₋₂ᵀx̃: previous layer's input (its bias) against this layer's input (its bias).

    Args:
        x_prev: the previous layer's input ``(batch, ..., d_prev)``.
        x: this layer's input ``(batch, ..., d)``.
        use_bias_prev: whether the previous layer has a bias.
        use_bias: whether this layer has a bias.

    Example:
        >>> p, n = compute_cross_covariance_update(jnp.ones((4, 6)), jnp.ones((4, 2)))
        >>> p.shape, n
        ((7, 3), 4)
    """
    _check_pair(x_prev, "x_prev", x, "x")
    return _outer(input_extended(x_prev, use_bias_prev), input_extended(x, use_bias)), x.shape[0]


def compute_covariance_loss_gradient_update(grad: Array) -> tuple[Array, int]:
    """Update of E = gᵀg, the empirical Fisher of the pre-activation gradients.

    Args:
        grad: the pre-activation gradient ``(batch, ..., out)``.

    Example:
        >>> e, n = compute_covariance_loss_gradient_update(jnp.ones((4, 5)))
        >>> e.shape, n
        ((5, 5), 4)
    """
    check_min_ndim("grad", grad, 2, "(batch, ..., features)")
    return _outer(grad, grad), grad.shape[0]


def compute_n_update(
    x_prev: Array, x: Array, grad: Array, delta_raw: Array, use_bias: bool = True
) -> tuple[Array, int]:
    """gromo's ``compute_n_update`` of the previous layer: ``x₋₂ᵀ (g − x̃ δᵀ)`` (no ones column on x₋₂).

    ``x_prev`` is the previous layer's input, ``x``/``grad`` this layer's input and pre-activation
    gradient, ``delta_raw`` this layer's δ ``(out, in + bias)``. Unlike the other updates the count is
    every row (``n·...``), as in gromo. The growth pipeline does not use it: it forms N from the
    accumulated means with :func:`tensor_n`.

    Args:
        x_prev: the previous layer's input.
        x: this layer's input.
        grad: this layer's pre-activation gradient.
        delta_raw: this layer's δ ``(out, in + bias)``.
        use_bias: whether this layer has a bias.

    Example:
        >>> n_sum, n = compute_n_update(jnp.ones((4, 6)), jnp.ones((4, 2)), jnp.ones((4, 5)),
        ...                             jnp.zeros((5, 3)))
        >>> n_sum.shape, n
        ((6, 5), 4)
    """
    _check_pair(x_prev, "x_prev", grad, "grad")
    _check_pair(x, "x", grad, "grad")
    projected = grad - input_extended(x, use_bias) @ delta_raw.T
    return _outer(x_prev, projected), math.prod(x_prev.shape[:-1])


def tensor_n(m_prev: Array, cross_covariance: Array, delta_raw: Array) -> Array:
    """N = −M₋₂ + P δᵀ from the *means* of M₋₂ and P and δ ``(out, in + bias)`` (gromo's ``tensor_n``).

    Args:
        m_prev: the mean M₋₂ ``(in_prev + bias, out)``.
        cross_covariance: the mean P ``(in_prev + bias, in + bias)``.
        delta_raw: δ ``(out, in + bias)``.

    Example:
        >>> tensor_n(jnp.ones((6, 5)), jnp.ones((6, 3)), jnp.zeros((5, 3))).shape
        (6, 5)
    """
    if cross_covariance.shape[1] != delta_raw.shape[1] or m_prev.shape[1] != delta_raw.shape[0]:
        raise ValueError(
            "`delta_raw` must have shape (m_prev.shape[1], cross_covariance.shape[1]) = "
            f"{(m_prev.shape[1], cross_covariance.shape[1])}, got {delta_raw.shape}."
        )
    return -m_prev + cross_covariance @ delta_raw.T
