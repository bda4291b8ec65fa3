"""Unit-scaled binary ops: ``add`` and ``matmul`` (three scales: output, left grad, right grad)."""

import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import Array, PrecisionLike
from jaxlinear.scaling._checks import as_float_array
from jaxlinear.scaling._constraints import apply_constraint, check_constraint
from jaxlinear.scaling._opmath import compute_dtype, in_opmath
from jaxlinear.scaling._scale import scale_bwd, scale_fwd
from jaxlinear.scaling._scope import op_scope

__all__ = ["add", "matmul"]


@op_scope
def add(
    left: Array | float, right: Array | float, constraint: str | None = "to_output_scale"
) -> Array:
    """A unit-scaled addition, ``unit_scaling.functional.add`` (``input``/``other`` are ``left``/``right``).

    Output scale ``1/√2`` (1 if either operand has one element: adding a constant does not change
    the scale); each operand's gradient is scaled by ``1/√k`` where ``k`` is how many times
    broadcasting repeats it; then the three scales are constrained together. A Python number
    operand gives a plain ``left + right``, as in the reference.

    Args:
        left: an array or a Python number.
        right: an array or a Python number (broadcastable against ``left``).
        constraint: None, ``"gmean"``, ``"hmean"``, ``"amean"``, ``"to_output_scale"``,
            ``"to_left_grad_scale"`` or ``"to_right_grad_scale"``.

    Returns:
        The scaled sum.

    Example:
        >>> add(jnp.ones(2), jnp.ones(2)).tolist()  # 2 / √2
        [1.4142135381698608, 1.4142135381698608]
    """
    check_constraint(constraint, arity=3)
    if isinstance(left, int | float) or isinstance(right, int | float):
        return jnp.add(left, right)
    left = as_float_array("left", left)
    right = as_float_array("right", right)
    try:
        shape = np.broadcast_shapes(left.shape, right.shape)
    except ValueError:
        raise ValueError(
            f"`right` must broadcast against `left` {left.shape}, got {right.shape}."
        ) from None
    numel = int(np.prod(shape))
    left_grad = (numel // max(left.size, 1)) ** -0.5 if numel else 1.0
    right_grad = (numel // max(right.size, 1)) ** -0.5 if numel else 1.0
    scalar_input = left.size == 1 or right.size == 1
    output_scale = 2**-0.5 if not scalar_input else 1.0
    output_scale, left_grad, right_grad = apply_constraint(
        constraint, output_scale, left_grad, right_grad
    )
    left = scale_bwd(left, left_grad)
    right = scale_bwd(right, right_grad)
    dtype = jnp.promote_types(left.dtype, right.dtype)
    a, b = (jnp.broadcast_to(v.astype(dtype), shape) for v in (left, right))
    out = in_opmath(jnp.add, a, b)
    return scale_fwd(out, output_scale)


@op_scope
def matmul(
    left: Array,
    right: Array,
    constraint: str | None = "to_output_scale",
    *,
    precision: PrecisionLike = None,
) -> Array:
    """A unit-scaled matrix product, ``unit_scaling.functional.matmul`` (``jnp.matmul`` semantics).

    Output scale ``1/√inner``, left-gradient scale ``1/√right.shape[-1]``, right-gradient scale
    ``1/√left.shape[-2]``, constrained together; leading dims broadcast. Half precision accumulates
    in float32 and rounds once, as torch does.

    Args:
        left: ``(..., m, k)``.
        right: ``(..., k, n)``.
        constraint: as for :func:`add`.
        precision: passed to ``jnp.matmul``.

    Returns:
        ``(..., m, n)``.

    Example:
        >>> matmul(jnp.ones((2, 4)), jnp.ones((4, 3)))[0].tolist()  # 4 / √4
        [2.0, 2.0, 2.0]
    """
    check_constraint(constraint, arity=3)
    left = as_float_array("left", left)
    right = as_float_array("right", right)
    if left.ndim < 2 or right.ndim < 2:
        raise ValueError(
            "`left` and `right` must have at least 2 dims ((..., m, k) and (..., k, n)), "
            f"got {left.shape} and {right.shape}."
        )
    if left.shape[-1] != right.shape[-2]:
        raise ValueError(
            f"`right` must have shape (..., {left.shape[-1]}, n) to match `left` {left.shape}, "
            f"got {right.shape}."
        )
    for name, n in (("left.shape[-1]", left.shape[-1]), ("right.shape[-1]", right.shape[-1]),
                    ("left.shape[-2]", left.shape[-2])):  # fmt: skip
        if n == 0:
            raise ValueError(f"`{name}` must be > 0 for a unit-scaled matmul, got 0.")
    output_scale = left.shape[-1] ** -0.5
    left_grad = right.shape[-1] ** -0.5
    right_grad = left.shape[-2] ** -0.5
    output_scale, left_grad, right_grad = apply_constraint(
        constraint, output_scale, left_grad, right_grad
    )
    left = scale_bwd(left, left_grad)
    right = scale_bwd(right, right_grad)
    dtype = jnp.promote_types(left.dtype, right.dtype)
    try:
        batch = np.broadcast_shapes(left.shape[:-2], right.shape[:-2])
    except ValueError:
        raise ValueError(
            f"`right`'s leading dims must broadcast against `left`'s, got {right.shape} and "
            f"{left.shape}."
        ) from None
    left = jnp.broadcast_to(left, (*batch, *left.shape[-2:]))
    right = jnp.broadcast_to(right, (*batch, *right.shape[-2:]))
    out = jnp.matmul(
        left.astype(dtype),
        right.astype(dtype),
        precision=precision,
        preferred_element_type=compute_dtype(dtype),
    ).astype(dtype)
    return scale_fwd(out, output_scale)
