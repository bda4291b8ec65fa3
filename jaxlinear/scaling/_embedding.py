"""Unit-scaled embedding lookup, ``unit_scaling.functional.embedding``."""

import math

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_index_range
from jaxlinear._typing import Array
from jaxlinear.scaling._checks import as_float_array
from jaxlinear.scaling._scale import scale_bwd
from jaxlinear.scaling._scope import op_scope

__all__ = ["embedding"]


@op_scope
def embedding(indices: Array, weight: Array, padding_idx: int | None = None) -> Array:
    """A unit-scaled lookup ``weight[indices]``, ``unit_scaling.functional.embedding``.

    No forward scale (rows of a N(0, 1) table are unit-scaled); the table's gradient is scaled by
    ``√(num_embeddings / indices.size)``. The row ``padding_idx`` (negative counts from the end, as
    in torch) gets no gradient. ``max_norm`` (an in-place renormalisation of the table),
    ``scale_grad_by_freq`` and ``sparse`` are not supported, as the reference does not support the
    last two. Concrete indices outside ``[0, num_embeddings)`` raise (as torch does; ``-1`` is not
    the last row); traced ones (under ``jit``) cannot be checked and JAX clamps them to the range.

    Args:
        indices: an integer array of any shape.
        weight: the table ``(num_embeddings, features)`` (the same layout as torch and flax).
        padding_idx: a row that receives no gradient, or None.

    Returns:
        ``(*indices.shape, features)``.

    Raises:
        ValueError: for a concrete index outside ``[0, num_embeddings)``, empty ``indices``, a
            ``weight`` that is not 2-D or a ``padding_idx`` out of range.
        TypeError: for non-integer ``indices`` or a non-int ``padding_idx``.

    Example:
        >>> embedding(jnp.array([1, 0]), jnp.eye(2)).tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    indices = jnp.asarray(indices)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"`indices` must be an integer array, got dtype {indices.dtype}.")
    weight = as_float_array("weight", weight)
    if weight.ndim != 2:
        raise ValueError(
            f"`weight` must have shape (num_embeddings, features), got {weight.shape}."
        )
    num = weight.shape[0]
    if padding_idx is not None:
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, int):
            raise TypeError(f"`padding_idx` must be an int or None, got {padding_idx!r}.")
        if not -num <= padding_idx < num:
            raise ValueError(f"`padding_idx` must be in [-{num}, {num}), got {padding_idx}.")
        padding_idx %= num
    check_index_range("indices", indices, num, f"rows of the {num}-row `weight`, as torch requires")
    if indices.size == 0:
        raise ValueError(
            f"`indices` must be non-empty (the gradient scale is 1/√indices.size), "
            f"got shape {indices.shape}."
        )
    weight = scale_bwd(weight, (num / math.prod(indices.shape)) ** 0.5)
    out = jnp.take(weight, indices, axis=0)
    if padding_idx is not None:
        pad = (indices == padding_idx)[..., None]
        out = jnp.where(pad, jax.lax.stop_gradient(out), out)
    return out
