"""The unit-scaled linear map, ``unit_scaling.functional.linear`` / ``linear_readout``.

Kernels use the JAX layout ``(in, out)``, the transpose of ``unit_scaling.Linear.weight``.
"""

import functools

import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype
from jax import lax

from jaxlinear import functional
from jaxlinear._checks import (
    check_dim,
    check_dot_general,
    check_floating_array,
    check_floating_dtype,
    check_int,
    check_min_ndim,
    check_real,
    check_shape,
)
from jaxlinear._typing import Array, DotGeneralT, Dtype, PrecisionLike
from jaxlinear.scaling._constraints import apply_constraint, check_constraint
from jaxlinear.scaling._scale import scale_bwd, scale_fwd
from jaxlinear.scaling._scope import op_scope

__all__ = ["linear", "linear_readout", "linear_scales"]


def _check_scale_power(scale_power: tuple[float, float, float]) -> tuple[float, float, float]:
    try:
        powers = tuple(check_real("scale_power", p, finite=False) for p in scale_power)
        ok = not isinstance(scale_power, str) and len(powers) == 3
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(
            "`scale_power` must be three floats (output, grad input, grad weight), "
            f"got {scale_power!r}."
        )
    return powers  # type: ignore[return-value]


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

    Args:
        fan_in: the input size ``in``, an int > 0.
        fan_out: the output size ``out``, an int > 0.
        batch_size: the number of rows ``B`` of the input (the product of its leading dims), an
            int > 0.
        constraint: how ``s_out`` and ``s_gin`` are tied: None, ``"gmean"``, ``"hmean"``,
            ``"amean"``, ``"to_output_scale"`` or ``"to_grad_input_scale"``.
        scale_power: three real powers ``(p0, p1, p2)`` of ``fan_in``, ``fan_out`` and
            ``batch_size``.

    Returns:
        ``(s_out, s_grad_input, s_grad_weight)`` as Python floats.

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
        check_int(name, n)
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


@op_scope
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
    dot_general: DotGeneralT | None = None,
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
        dot_general: None (jaxlinear's product) or a function with ``lax.dot_general``'s signature
            for the forward product ``x @ kernel``, as in Flax's ``nn.Dense``
            (:func:`jaxlinear.functional.linear_dot_general`); the scales are applied around it as
            above (unfolded), and its gradient comes from autodiff through it.

    Returns:
        The output ``(..., out)`` in the compute dtype.

    Raises:
        TypeError: if an operand is not a floating array, ``dtype`` is not a floating dtype, or
            ``batch_size`` is not an int.
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
    else:
        check_int("batch_size", batch_size)
    check_floating_dtype("dtype", dtype, allow_none=True)
    check_dot_general(dot_general)
    s_out, s_gin, s_w = linear_scales(fan_in, fan_out, batch_size, constraint, scale_power)
    dtypes = {x.dtype, kernel.dtype} | ({bias.dtype} if bias is not None else set())
    if len(dtypes) == 1 and (dtype is None or jnp.dtype(dtype) == x.dtype) and dot_general is None:
        if jnp.finfo(x.dtype).bits >= 32:  # no rounding to mimic: fold scales into the small side
            return _linear_folded(x, kernel, bias, (s_out, s_gin, s_w), precision)
    x = scale_bwd(x, s_gin)
    kernel = scale_bwd(kernel, s_w)
    bias = scale_bwd(bias, s_w) if bias is not None else None
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=dtype)
    if dot_general is None:
        y = functional.linear(x, kernel, bias, precision=precision)
    else:
        y = functional.linear_dot_general(
            x, kernel, bias, dot_general=dot_general, precision=precision
        )
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
    scaled_kernel = None
    if kernel.size <= rows * kernel.shape[1]:
        b = _scaled(bias, s_out) if bias is not None else None
        scaled_kernel = _scaled(kernel, s_out)
        y = functional.linear(x, scaled_kernel, b, precision=precision)
    else:
        y = _scaled(functional.linear(x, kernel, bias, precision=precision), s_out)
    return y, (x, kernel, scaled_kernel, bias is not None)


def _linear_folded_bwd(scales, precision, res, g):
    s_out, s_gin, s_w = scales
    x, kernel, scaled_kernel, has_bias = res
    fan_in, fan_out = kernel.shape
    rows = x.size // fan_in
    if kernel.size <= rows * fan_in:
        # the forward's s_out * kernel is s_gin * kernel when the constraint made them equal (the
        # default, "to_output_scale"): reuse it rather than scale the kernel again
        if scaled_kernel is not None and s_gin == s_out:
            gin_kernel = scaled_kernel
        else:
            gin_kernel = _scaled(kernel, s_gin)
        dx = _dot(g, gin_kernel, (g.ndim - 1, 1), precision)
    else:
        dx = _scaled(_dot(g, kernel, (g.ndim - 1, 1), precision), s_gin)
    g2, x2 = g.reshape(rows, fan_out), x.reshape(rows, fan_in)
    # s_w multiplies the smallest of g, x and the kernel gradient (one pass over the smallest array;
    # g first: x is transposed for the product, and a scaled transpose copy is slower than a
    # contiguous pass, measured 1.13 vs 1.04 of jl.Linear at b1024 1024->1024)
    if g2.size <= min(x2.size, kernel.size):
        dk = functional.matmul_tn(x2, _scaled(g2, s_w), precision=precision)
    elif x2.size <= kernel.size:
        dk = functional.matmul_tn(_scaled(x2, s_w), g2, precision=precision)
    else:
        dk = _scaled(functional.matmul_tn(x2, g2, precision=precision), s_w)
    db = _scaled(g2.sum(0), s_w) if has_bias else None
    return dx, dk, db


_linear_folded.defvjp(_linear_folded_fwd, _linear_folded_bwd)


@op_scope
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

    Args:
        x: input ``(..., in)``.
        kernel: ``(in, out)``, the transpose of ``unit_scaling.LinearReadout.weight``.
        bias: ``(out,)`` or None.
        constraint: how ``s_out`` and ``s_gin`` are tied (as in :func:`linear`); None leaves them
            unconstrained.
        batch_size: B in the weight-grad scale; None counts the rows of ``x``.
        dtype: the compute dtype; None promotes from the operands.
        precision: passed to ``lax.dot_general``.

    Returns:
        The output ``(..., out)`` in the compute dtype.

    Raises:
        TypeError: as :func:`linear` (non-floating operands or ``dtype``, a non-int ``batch_size``).
        ValueError: as :func:`linear` (an empty batch, ``in == 0``, shapes that do not fit, an
            unknown constraint).

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
