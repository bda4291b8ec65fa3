"""Unit scaling (``unit_scaling`` 0.3.5): separate forward and backward scales, constraints, linear.

A unit-scaled op multiplies its output by ``s_out`` in the forward pass only (:func:`scale_fwd`) and
the gradients of its inputs by their own scales in the backward pass only (:func:`scale_bwd`). The
gradients are therefore *not* the true gradients of the forward function: each differs by a constant,
chosen so that outputs and gradients all have a standard deviation close to 1.

Kernels use the JAX layout ``(in, out)``, the transpose of ``unit_scaling.Linear.weight``.

Dtypes follow torch exactly: the forward scale is applied in float32 to half-precision arrays and
rounded once (the scale itself is not rounded), the backward scale is rounded to the gradient's dtype
first (torch saves ``tensor(scale, dtype=x.dtype)``), so bfloat16 results are bit-identical.
"""

import functools
import math
from collections.abc import Callable
from numbers import Real

import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.dtypes import promote_dtype
from jax import lax

from jaxlinear import functional
from jaxlinear._checks import (
    check_dim,
    check_floating_array,
    check_floating_dtype,
    check_min_ndim,
    check_shape,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike

__all__ = [
    "CONSTRAINTS",
    "amean",
    "apply_constraint",
    "check_constraint",
    "gmean",
    "hmean",
    "linear",
    "linear_readout",
    "linear_scales",
    "scale_bwd",
    "scale_fwd",
    "to_grad_input_scale",
    "to_output_scale",
]


# ---------------------------------------------------------------------------------------------------
# scale_fwd / scale_bwd


def _compute_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """float32 for half precision (torch's opmath type), else the dtype itself."""
    return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else jnp.dtype(dtype)


def _round_to(x: Array, dtype: jnp.dtype) -> Array:
    """``x`` (in a wider dtype) rounded to the values of ``dtype``, kept in ``x``'s dtype.

    ``lax.reduce_precision`` may not be removed by XLA's excess-precision simplifications, unlike a
    ``convert`` pair, so a rounding torch does is never skipped under ``jit``.
    """
    info = jnp.finfo(dtype)
    return lax.reduce_precision(x, exponent_bits=info.nexp, mantissa_bits=info.nmant)


def _multiply(x: Array, scale: float, *, round_scale: bool) -> Array:
    """``scale * x`` as torch computes it, in ``x``'s dtype.

    torch multiplies half-precision tensors in float32 and rounds once. A Python-float scale enters as
    float32 (``round_scale=False``: ``scale_fwd``); a scale saved as ``tensor(scale, dtype=x.dtype)``
    is first rounded to ``x``'s dtype (``round_scale=True``: ``scale_bwd``).
    """
    dtype = x.dtype
    compute = _compute_dtype(dtype)
    s = jnp.asarray(scale, dtype if round_scale else compute).astype(compute)
    xc = x.astype(compute)
    if compute != dtype:
        xc = _round_to(xc, dtype)  # no-op on values; keeps XLA from fusing away an earlier rounding
    return (xc * s).astype(dtype)


def _check_scale(name: str, scale: float) -> float:
    if isinstance(scale, bool) or not isinstance(scale, int | float):
        raise TypeError(
            f"`{name}` must be a Python float (a static scale), got {type(scale).__name__}."
        )
    return float(scale)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _scale_fwd(x: Array, scale: float) -> Array:
    return _multiply(x, scale, round_scale=False)


def _scale_fwd_fwd(x: Array, scale: float) -> tuple[Array, None]:
    return _multiply(x, scale, round_scale=False), None


def _scale_fwd_bwd(scale: float, res: None, g: Array) -> tuple[Array]:
    del scale, res
    return (g,)


_scale_fwd.defvjp(_scale_fwd_fwd, _scale_fwd_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _scale_bwd(x: Array, scale: float) -> Array:
    return x


def _scale_bwd_fwd(x: Array, scale: float) -> tuple[Array, None]:
    return x, None


def _scale_bwd_bwd(scale: float, res: None, g: Array) -> tuple[Array]:
    del res
    return (_multiply(g, scale, round_scale=True),)


_scale_bwd.defvjp(_scale_bwd_fwd, _scale_bwd_bwd)


def scale_fwd(x: Array, scale: float) -> Array:
    """Multiply by ``scale`` in the forward pass only; the gradient passes through unchanged.

    ``unit_scaling.scale_fwd``. For half-precision ``x`` the product is computed in float32 with the
    float32 value of ``scale`` and rounded once, as torch does.

    Args:
        x: a floating array.
        scale: a Python float (static: it is part of the traced function). Any float is applied
            as torch applies it, negative, inf and NaN included (the reference raises for none).

    Raises:
        TypeError: for a ``scale`` that is not a Python number (an array, a string) or a non-floating
            ``x``.

    Returns:
        ``scale * x`` in ``x``'s dtype, whose VJP is the identity.

    Example:
        >>> x = jnp.arange(3.0)
        >>> y, vjp = jax.vjp(lambda x: scale_fwd(x, 3.5), x)
        >>> y.tolist(), vjp(jnp.ones(3))[0].tolist()
        ([0.0, 3.5, 7.0], [1.0, 1.0, 1.0])
    """
    x = jnp.asarray(x)
    check_floating_array("x", x)
    return _scale_fwd(x, _check_scale("scale", scale))


def scale_bwd(x: Array, scale: float) -> Array:
    """The identity in the forward pass; the gradient is multiplied by ``scale``.

    ``unit_scaling.scale_bwd``. As in torch, ``scale`` is first rounded to the gradient's dtype
    (``1/√1000`` becomes 0.031738 in bfloat16), then multiplied in float32 and rounded once.

    Args:
        x: a floating array.
        scale: a Python float (static); negative, inf and NaN are applied as torch does.

    Raises:
        TypeError: for a ``scale`` that is not a Python number or a non-floating ``x``.

    Returns:
        ``x`` unchanged, whose VJP is ``g -> scale * g``.

    Example:
        >>> x = jnp.arange(3.0)
        >>> y, vjp = jax.vjp(lambda x: scale_bwd(x, 3.5), x)
        >>> y.tolist(), vjp(jnp.ones(3))[0].tolist()
        ([0.0, 1.0, 2.0], [3.5, 3.5, 3.5])
    """
    x = jnp.asarray(x)
    check_floating_array("x", x)
    return _scale_bwd(x, _check_scale("scale", scale))


# ---------------------------------------------------------------------------------------------------
# constraints: a group of scales -> one shared scale (the formulas of unit_scaling.constraints)


def _check_scales(scales: tuple[float, ...]) -> None:
    if not scales:
        raise ValueError("`scales` must be at least one scale, got none.")


def gmean(*scales: float) -> float:
    """The geometric mean ``(∏ s)^(1/n)``, bit-identical to ``unit_scaling.constraints.gmean``.

    Example:
        >>> gmean(8.0, 2.0)
        4.0
    """
    _check_scales(scales)
    return math.pow(math.prod(scales), 1 / len(scales))


def hmean(*scales: float) -> float:
    """The harmonic mean ``n / Σ(1/s)``, as ``unit_scaling.constraints.hmean`` computes it.

    Example:
        >>> hmean(8.0, 2.0)
        3.2
    """
    _check_scales(scales)
    return 1 / (sum(1 / s for s in scales) / len(scales))


def amean(*scales: float) -> float:
    """The arithmetic mean ``Σ s / n``.

    Example:
        >>> amean(8.0, 2.0)
        5.0
    """
    _check_scales(scales)
    return sum(scales) / len(scales)


def to_output_scale(output_scale: float, *grad_input_scales: float) -> float:
    """Every scale becomes the output scale (u-μP's default for hidden layers).

    Example:
        >>> to_output_scale(2.0, 3.0)
        2.0
    """
    return output_scale


def to_grad_input_scale(output_scale: float, grad_input_scale: float) -> float:
    """Both scales become the grad-input scale (exactly two scales).

    Example:
        >>> to_grad_input_scale(2.0, 3.0)
        3.0
    """
    return grad_input_scale


CONSTRAINTS: dict[str, Callable[..., float]] = {
    "gmean": gmean,
    "hmean": hmean,
    "amean": amean,
    "to_output_scale": to_output_scale,
    "to_grad_input_scale": to_grad_input_scale,
}
_CONSTRAINT_CHOICES = (None, *CONSTRAINTS)


def check_constraint(constraint: str | None) -> None:
    """Raise ``ValueError`` unless ``constraint`` is None, ``""`` or one of the five names."""
    if constraint == "":
        return
    if constraint is not None and not isinstance(constraint, str):
        raise ValueError(f"`constraint` must be one of {_CONSTRAINT_CHOICES}, got {constraint!r}.")
    if constraint not in _CONSTRAINT_CHOICES:
        raise ValueError(f"`constraint` must be one of {_CONSTRAINT_CHOICES}, got {constraint!r}.")


def apply_constraint(constraint: str | None, *scales: float) -> tuple[float, ...]:
    """Apply a named constraint to a group of scales: every slot gets the constraint's value.

    ``None`` (or ``""``, as in the reference) leaves the scales unconstrained.

    Warning:
        ``unit_scaling.constraints.apply_constraint`` looks the name up with ``getattr`` on its module,
        so it silently accepts unrelated names such as ``"pow"``; jaxlinear accepts only
        :data:`CONSTRAINTS`' five names and None.

    Raises:
        ValueError: for any other name.

    Example:
        >>> apply_constraint("gmean", 1.0, 4.0, 2.0)
        (2.0, 2.0, 2.0)
        >>> apply_constraint(None, 0.5, 0.25)
        (0.5, 0.25)
    """
    check_constraint(constraint)
    if not constraint:
        return tuple(scales)
    value = CONSTRAINTS[constraint](*scales)
    return tuple(value for _ in scales)


# ---------------------------------------------------------------------------------------------------
# linear


def _check_scale_power(scale_power: tuple[float, float, float]) -> tuple[float, float, float]:
    def is_real(p: object) -> bool:
        return isinstance(p, Real | np.floating | np.integer) and not isinstance(p, bool | np.bool_)

    try:
        powers = tuple(float(p) for p in scale_power if is_real(p))
        ok = not isinstance(scale_power, str) and len(powers) == len(tuple(scale_power)) == 3
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(
            "`scale_power` must be three floats (output, grad input, grad weight), "
            f"got {scale_power!r}."
        )
    return powers  # type: ignore[return-value]


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}.")


def linear_scales(
    fan_in: int,
    fan_out: int,
    batch_size: int,
    constraint: str | None = "to_output_scale",
    scale_power: tuple[float, float, float] = (0.5, 0.5, 0.5),
) -> tuple[float, float, float]:
    """``(s_out, s_grad_input, s_grad_weight)`` of a unit-scaled linear, as Python floats.

    ``s_out = 1/fan_in**p0``, ``s_grad_input = 1/fan_out**p1`` (then constrained together) and
    ``s_grad_weight = 1/batch_size**p2`` (never constrained; also the bias's grad scale), computed
    with the same float64 expressions as ``unit_scaling.functional.linear``.

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is not positive (torch raises ``ZeroDivisionError``), or for an unknown
            constraint or ``scale_power``.

    Example:
        >>> linear_scales(256, 64, 1024, None)
        (0.0625, 0.125, 0.03125)
        >>> linear_scales(256, 64, 1024, "to_output_scale")
        (0.0625, 0.0625, 0.03125)
    """
    check_constraint(constraint)
    p0, p1, p2 = _check_scale_power(scale_power)
    for name, n in (("fan_in", fan_in), ("fan_out", fan_out), ("batch_size", batch_size)):
        _check_int(name, n)
    for name, n in (("fan_in", fan_in), ("fan_out", fan_out)):
        if n <= 0:
            raise ValueError(f"`{name}` must be > 0 for a unit-scaled linear, got {n}.")
    if batch_size <= 0:
        raise ValueError(
            "`batch_size` must be > 0: a unit-scaled linear needs a non-empty batch, its gradient "
            "scale is 1/B**p with B the number of rows (the product of all leading dims of `x`), "
            f"got B = {batch_size}."
        )
    s_out = 1 / fan_in**p0
    s_gin = 1 / fan_out**p1
    s_w = 1 / batch_size**p2
    s_out, s_gin = apply_constraint(constraint, s_out, s_gin)
    return s_out, s_gin, s_w


def linear(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    constraint: str | None = "to_output_scale",
    scale_power: tuple[float, float, float] = (0.5, 0.5, 0.5),
    *,
    batch_size: int | None = None,
    dtype: Dtype | None = None,
    precision: PrecisionLike = None,
) -> Array:
    """A unit-scaled linear map, ``unit_scaling.functional.linear``: ``(..., in) -> (..., out)``.

    Forward: ``y = s_out * (x @ kernel + bias)`` (the bias is *inside* the output scale). Backward:
    ``dx = s_gin * (g @ kernel.T)``, ``dkernel = s_w * (x.T @ g)``, ``dbias = s_w * Σ g`` over the
    rows, where ``g`` is the output's cotangent (not multiplied by ``s_out``) and the scales are
    those of :func:`linear_scales` with ``B = x.size // in``: every leading dim of the whole input
    counts, so do not call this inside a ``vmap`` over the batch (B would be 1); pass ``batch_size``
    to state the batch explicitly in that case.

    In float32/float64 (all operands of one dtype) each scale multiplies the smaller operand of its
    matmul, e.g. ``x @ (s_out * kernel)`` when the kernel is smaller than the output: the same values
    up to float rounding (within float32 parity), one pass less over a large array. In half
    precision the operations are torch's, in torch's order, so results are bit-identical.

    The backward scales are applied to each operand in its own dtype, before the operands are
    promoted to the compute dtype (``dtype``, or promoted from the operands): float32 params with
    bfloat16 compute give float32 gradients scaled in float32, as torch's ``autocast`` does.

    Args:
        x: input ``(..., in)``.
        kernel: ``(in, out)``, the transpose of ``unit_scaling.Linear.weight``.
        bias: ``(out,)`` or None.
        constraint: None, ``"gmean"``, ``"hmean"``, ``"amean"``, ``"to_output_scale"`` or
            ``"to_grad_input_scale"``: how ``s_out`` and ``s_gin`` are tied.
        scale_power: powers ``(p0, p1, p2)`` of fan_in, fan_out and B in the three scales.
        batch_size: B in the weight-grad scale; None counts the rows of ``x``.
        dtype: the compute dtype; None promotes from the operands.
        precision: passed to ``lax.dot_general``.

    Raises:
        ValueError: for an empty batch, ``in == 0``, shapes that do not fit, an unknown constraint.

    Example:
        >>> x = jnp.ones((4, 16)); k = jnp.ones((16, 3))
        >>> y, vjp = jax.vjp(linear, x, k)
        >>> float(y[0, 0])  # 16 / √16
        4.0
        >>> dx, dk = vjp(jnp.ones((4, 3)))
        >>> float(dx[0, 0]), float(dk[0, 0])  # s_gin = s_out = 1/4 (to_output_scale); 4 / √4
        (0.75, 2.0)
    """
    x = jnp.asarray(x)
    kernel = jnp.asarray(kernel)
    check_floating_array("x", x)
    check_floating_array("kernel", kernel)
    if kernel.ndim != 2:
        raise ValueError(
            f"`kernel` must have shape (in_features, out_features), got {kernel.shape}."
        )
    check_min_ndim("x", x, 1, "(..., in_features)")
    fan_in, fan_out = kernel.shape
    check_dim("kernel.shape", max(fan_in, fan_out))
    if x.shape[-1] != fan_in:
        raise ValueError(
            f"`x` must have shape (..., {fan_in}) to match `kernel` {kernel.shape}, got {x.shape}."
        )
    if bias is not None:
        bias = jnp.asarray(bias)
        check_floating_array("bias", bias)
        check_shape("bias", bias, (fan_out,))
    if fan_in == 0:
        raise ValueError(
            f"`x` must have at least one input feature for a unit-scaled linear, got {x.shape}."
        )
    if batch_size is None:
        batch_size = x.size // fan_in
    elif isinstance(batch_size, bool | np.bool_) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"`batch_size` must be an int or None, got {batch_size!r}.")
    check_floating_dtype("dtype", dtype, allow_none=True)
    s_out, s_gin, s_w = linear_scales(fan_in, fan_out, batch_size, constraint, scale_power)
    dtypes = {x.dtype, kernel.dtype} | ({bias.dtype} if bias is not None else set())
    if len(dtypes) == 1 and (dtype is None or jnp.dtype(dtype) == x.dtype):
        if jnp.finfo(x.dtype).bits >= 32:  # no rounding to mimic: fold scales into the small side
            return _linear_folded(x, kernel, bias, (s_out, s_gin, s_w), precision)
    x = scale_bwd(x, s_gin)
    kernel = scale_bwd(kernel, s_w)
    bias = scale_bwd(bias, s_w) if bias is not None else None
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=dtype)
    y = functional.linear(x, kernel, bias, precision=precision)
    return scale_fwd(y, s_out)


def _scaled(a: Array, s: float) -> Array:
    return a * jnp.asarray(s, a.dtype)


def _dot(a: Array, b: Array, contract: tuple[int, int], precision: PrecisionLike) -> Array:
    return lax.dot_general(a, b, (((contract[0],), (contract[1],)), ((), ())), precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _linear_folded(x, kernel, bias, scales, precision):
    return _linear_folded_fwd(x, kernel, bias, scales, precision)[0]


def _linear_folded_fwd(x, kernel, bias, scales, precision):
    """float32/64 path: each scale multiplies the smaller operand of its matmul (one fewer pass
    over a large array); the same values as scaling the result, up to float rounding."""
    s_out = scales[0]
    rows = x.size // kernel.shape[0]
    if kernel.size <= rows * kernel.shape[1]:
        b = _scaled(bias, s_out) if bias is not None else None
        y = functional.linear(x, _scaled(kernel, s_out), b, precision=precision)
    else:
        y = _scaled(functional.linear(x, kernel, bias, precision=precision), s_out)
    return y, (x, kernel, bias is not None)


def _linear_folded_bwd(scales, precision, res, g):
    _, s_gin, s_w = scales
    x, kernel, has_bias = res
    fan_in, fan_out = kernel.shape
    rows = x.size // fan_in
    if kernel.size <= rows * fan_in:
        dx = _dot(g, _scaled(kernel, s_gin), (g.ndim - 1, 1), precision)
    else:
        dx = _scaled(_dot(g, kernel, (g.ndim - 1, 1), precision), s_gin)
    g2 = g.reshape(rows, fan_out)
    dk = _scaled(_dot(x.reshape(rows, fan_in), g2, (0, 0), precision), s_w)
    db = _scaled(g2.sum(0), s_w) if has_bias else None
    return dx, dk, db


_linear_folded.defvjp(_linear_folded_fwd, _linear_folded_bwd)


def linear_readout(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    constraint: str | None = None,
    *,
    batch_size: int | None = None,
    dtype: Dtype | None = None,
    precision: PrecisionLike = None,
) -> Array:
    """The unit-scaled readout, ``unit_scaling.functional.linear_readout``.

    :func:`linear` with ``scale_power=(1.0, 0.5, 0.5)``: the output scale is ``1/fan_in`` (μP's
    readout multiplier) and the default constraint is None (unconstrained).

    Example:
        >>> x = jnp.ones((4, 16)); k = jnp.ones((16, 3))
        >>> float(linear_readout(x, k)[0, 0])  # 16 / 16
        1.0
    """
    return linear(
        x,
        kernel,
        bias,
        constraint,
        (1.0, 0.5, 0.5),
        batch_size=batch_size,
        dtype=dtype,
        precision=precision,
    )
