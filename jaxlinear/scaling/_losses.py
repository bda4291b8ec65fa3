"""Unit-scaled losses: ``mse_loss`` and ``cross_entropy`` (``unit_scaling.functional``).

Losses are unconstrained: the forward scale only turns a sum into a mean (``1/B``) and the backward
scale makes the gradient of the loss's input unit-scaled *without* the ``1/B`` of a mean, so the
gradients entering the model have std ≈ 1 whatever the batch size.
"""

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_choice, check_index_range, check_int
from jaxlinear._typing import Array
from jaxlinear.scaling._checks import as_float_array, check_mult
from jaxlinear.scaling._opmath import in_opmath, upcast
from jaxlinear.scaling._scale import scale_bwd, scale_fwd
from jaxlinear.scaling._scope import op_scope

__all__ = ["cross_entropy", "mse_loss"]

_REDUCTIONS = ("mean", "sum")


@op_scope
def mse_loss(x: Array, target: Array, reduction: str = "mean") -> Array:
    """A unit-scaled squared error, ``unit_scaling.functional.mse_loss``.

    ``Σ (x − target)²`` (``reduction="sum"``), or that times ``1/x.size`` in the forward pass only
    (``"mean"``). Both ``x``'s and ``target``'s gradients are scaled by ``8^(-1/2)``
    (``2(x − t)`` of std 2√2 for unit-normal ``x`` and ``t``).

    Args:
        x: the prediction.
        target: the same shape as ``x``.
        reduction: ``"mean"`` or ``"sum"`` (the reference asserts on ``"none"``).

    Returns:
        A scalar.

    Example:
        >>> float(mse_loss(jnp.array([1.0, 3.0]), jnp.zeros(2)))
        5.0
    """
    x = as_float_array("x", x)
    target = as_float_array("target", target)
    check_choice("reduction", reduction, _REDUCTIONS)
    if x.shape != target.shape:
        raise ValueError(f"`target` must have the shape of `x` {x.shape}, got {target.shape}.")
    grad_scale = 8**-0.5
    x = scale_bwd(x, grad_scale)
    target = scale_bwd(target, grad_scale)
    loss = in_opmath(lambda a, b: jnp.sum(jnp.square(a - b)), x, target)
    if reduction == "mean":
        return scale_fwd(loss, 1 / x.size)
    return loss


@op_scope
def cross_entropy(
    x: Array,
    target: Array,
    ignore_index: int = -100,
    reduction: str = "mean",
    mult: float = 1.0,
) -> Array:
    """A unit-scaled cross entropy, ``unit_scaling.functional.cross_entropy``.

    torch's ``F.cross_entropy(mult * x, target, reduction="sum")``; with ``"mean"`` the sum is
    multiplied by ``1/B`` in the forward pass only. The logits' gradient is scaled by
    ``V/√(V − 1)`` (``V`` the number of classes) and not by ``mult`` (the ``mult`` multiplies the
    forward only). As in the reference, ``"mean"`` divides by the batch size *including* ignored
    targets (torch's ``F.cross_entropy`` divides by the non-ignored count). Class weights and label
    smoothing are not supported, as in the reference (which raises on them).

    Args:
        x: logits ``(V,)`` or ``(B, V)``.
        target: class indices ``()``/``(B,)`` (integers in ``[0, V)``; ``ignore_index`` entries
            are skipped) or class probabilities of ``x``'s shape. A concrete index outside
            ``[0, V)`` (``-1`` included) raises, as torch does; a traced one (under ``jit``) cannot be
            checked: JAX then picks a clamped class (a wrong loss), so check labels before ``jit``.
        ignore_index: the target index that contributes nothing.
        reduction: ``"mean"`` or ``"sum"``.
        mult: the α hyperparameter (a positive float), the logits' forward multiplier.

    Returns:
        A scalar.

    Raises:
        ValueError: for a concrete class index outside ``[0, V)`` (other than ``ignore_index``), a
            ``target`` or ``x`` of the wrong shape, or a bad ``mult``/``reduction``.
        TypeError: for a non-integer, non-floating ``target`` or a non-int ``ignore_index``.

    Example:
        >>> round(float(cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 3]))), 4)  # log 4
        1.3863
    """
    x = as_float_array("x", x)
    check_choice("reduction", reduction, _REDUCTIONS)
    mult = check_mult(mult)
    if x.ndim == 2:
        batch_size, vocab = x.shape
    elif x.ndim == 1:
        batch_size, vocab = 1, x.shape[0]
    else:
        raise ValueError(f"`x` must have shape (V,) or (B, V), got {x.shape}.")
    if vocab < 2 or batch_size == 0:
        raise ValueError(
            f"`x` must have at least 2 classes and 1 row (the scale is V/√(V − 1)), got {x.shape}."
        )
    target = jnp.asarray(target)
    probs = jnp.issubdtype(target.dtype, jnp.floating)
    if probs and target.shape != x.shape:
        raise ValueError(f"`target` (probabilities) must have shape {x.shape}, got {target.shape}.")
    if not probs:
        if not jnp.issubdtype(target.dtype, jnp.integer):
            raise TypeError(f"`target` must be integer or floating, got dtype {target.dtype}.")
        if target.shape != x.shape[:-1]:
            raise ValueError(f"`target` must have shape {x.shape[:-1]}, got {target.shape}.")
        check_int("ignore_index", ignore_index)
        what = f"a class of the {vocab} logits, or ignore_index={ignore_index}, as torch requires"
        check_index_range("target", target, vocab, what, ignore=ignore_index)

    x = scale_bwd(x, vocab / (vocab - 1) ** 0.5)
    x = scale_fwd(x, mult)
    logp = in_opmath(lambda v: jax.nn.log_softmax(v, axis=-1), x)
    lp = upcast(logp).astype(jnp.float32)
    if probs:
        loss = -jnp.sum(lp * upcast(target).astype(jnp.float32))
    else:
        valid = target != ignore_index
        safe = jnp.where(valid, target, 0)
        picked = jnp.take_along_axis(lp, safe[..., None], axis=-1)[..., 0]
        loss = -jnp.sum(jnp.where(valid, picked, 0.0))
    loss = loss.astype(x.dtype)
    if reduction == "mean":
        return scale_fwd(loss, 1 / batch_size)
    return loss
