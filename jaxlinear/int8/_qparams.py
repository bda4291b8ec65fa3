"""Where scales and zero points come from: torch's min/max observers and ``ChooseQuantizationParams``.

- :func:`min_max` / :func:`choose_qparams` are ``MinMaxObserver`` / ``PerChannelMinMaxObserver``:
  running min and max, then (float32 arithmetic, as the observers' tensors)

  * affine: ``scale = max(fl32(max⁺ - min⁻) / (qmax - qmin), eps)``,
    ``zero_point = clamp(qmin - rne(min⁻ / scale), qmin, qmax)``;
  * symmetric: ``scale = max(max(-min⁻, max⁺) / ((qmax - qmin) / 2), eps)``, zero point 0 (int8) or
    128 (uint8), where ``min⁻ = min(min, 0)`` and ``max⁺ = max(max, 0)``.

- :func:`choose_qparams_dynamic` is the C++ ``quant_utils::ChooseQuantizationParams`` that the dynamic
  linear runs on every call (double-precision intermediate arithmetic, computed in float64 locally with
  ``jax.enable_x64``, so it is bit-exact under ``jit`` without enabling x64 globally).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxlinear._checks import check_bool, check_floating_array, check_real
from jaxlinear._typing import Array, Dtype
from jaxlinear.int8._checks import check_min_le_max, check_qrange
from jaxlinear.int8._numerics import divide, to_int32
from jaxlinear.int8._qtensor import _dtype_name, qrange

__all__ = [
    "choose_qparams",
    "choose_qparams_dynamic",
    "fbgemm_min_max",
    "min_and_max",
    "min_max",
    "with_fbgemm_min_max",
]

EPS = float(np.finfo(np.float32).eps)
SMALL_SCALE_THRESHOLD = np.float32(6.1e-5)  # a C++ float constant


def min_max(
    x: Array, axis: int | None = None, state: tuple[Array, Array] | None = None
) -> tuple[Array, Array]:
    """Running ``(min, max)`` of ``x``, as ``MinMaxObserver`` (``axis=None``) or
    ``PerChannelMinMaxObserver(ch_axis=axis)`` record it; ``state`` is the previous pair.

    Args:
        x: the observed values, an array of any shape (cast to float32).
        axis: None for one per-tensor pair, or the channel axis, an int in ``[-x.ndim, x.ndim)``:
            the min and max are then taken over every other axis.
        state: the ``(min, max)`` observed so far (a previous return value), or None for the first
            observation.

    Returns:
        ``(min, max)``, float32 scalars (``axis=None``) or arrays of shape ``(x.shape[axis],)``,
        combined with ``state`` when given.

    An empty ``x`` observes nothing: ``state`` is returned unchanged, as torch's observers return
    early on an empty tensor; without a ``state`` it is an error (torch's ``aminmax`` raises).

    Raises:
        ValueError: if ``axis`` is out of range for ``x``, or ``x`` is empty without a ``state``.
        TypeError: if ``x`` is not floating.

    Example:
        >>> lo, hi = min_max(jnp.array([[1.0, -2.0], [3.0, 0.5]]))
        >>> lo, hi = min_max(jnp.array([4.0]), state=(lo, hi))
        >>> float(lo), float(hi)
        (-2.0, 4.0)
        >>> min_max(jnp.array([[1.0, -2.0], [3.0, 0.5]]), axis=0)[1]  # channels are rows
        Array([1., 3.], dtype=float32)
    """
    x = jnp.asarray(x)
    check_floating_array("x", x)
    x = x.astype(jnp.float32)
    if axis is not None and not -x.ndim <= axis < x.ndim:
        raise ValueError(f"`axis` must be an int in [-{x.ndim}, {x.ndim}), got {axis!r}.")
    if x.size == 0:
        if state is None:
            raise ValueError(
                f"`x` must hold at least one value to observe (or pass the `state` to keep), got "
                f"shape {x.shape}."
            )
        return jnp.asarray(state[0], jnp.float32), jnp.asarray(state[1], jnp.float32)
    if axis is None:
        lo, hi = jnp.min(x), jnp.max(x)
    else:
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"`axis` must be an int in [-{x.ndim}, {x.ndim}), got {axis!r}.")
        others = tuple(d for d in range(x.ndim) if d != axis % x.ndim)
        lo, hi = jnp.min(x, axis=others), jnp.max(x, axis=others)
    if state is not None:
        lo, hi = jnp.minimum(lo, state[0]), jnp.maximum(hi, state[1])
    return lo, hi


def fbgemm_min_max(x: Array) -> tuple[Array, Array]:
    """The ``(min, max)`` torch's x86 dynamic linear takes of its input: ``fbgemm::FindMinMax``.

    Equal to ``min``/``max`` of ``x`` without NaN. With NaN it reproduces the AVX2 kernel (8 float lanes,
    ``_mm256_min_ps(acc, v)`` returns ``v`` when either is NaN, then ``std::min`` over the lanes and the
    tail, which keeps the first operand): a NaN restarts its lane, so the elements of that lane before
    it are not seen; a NaN in the last block and in the tail is skipped; a NaN first element gives NaN
    (torch then raises in ``ChooseQuantizationParams``). An empty ``x`` gives ``(0, 0)``.

    Args:
        x: the dynamic linear's input, an array of any shape (cast to float32 and flattened).

    Returns:
        ``(min, max)`` as float32 scalars.

    Example:
        >>> x = jnp.array([0.5, -9.0] + [1.0] * 6 + [2.0, jnp.nan] + [1.0] * 6 + [3.0])
        >>> [float(v) for v in fbgemm_min_max(x)]  # -9 (x[1]) is in the lane x[9] = NaN restarts
        [0.5, 3.0]
    """
    a = jnp.asarray(x, jnp.float32)
    if a.size == 0:
        return jnp.float32(0), jnp.float32(0)
    return with_fbgemm_min_max(a, lambda lo, hi, a: (lo, hi))


def min_and_max(x: Array) -> tuple[Array, Array]:
    """``(jnp.min(x), jnp.max(x))`` (NaN if ``x`` holds one) in one pass: one variadic reduction, which
    XLA CPU runs as one loop (two reductions are two passes over ``x``, each a YNNPACK call)."""
    inf = jnp.asarray(jnp.inf, x.dtype)
    return lax.reduce(
        (x, x),
        (inf, -inf),
        lambda a, b: (lax.min(a[0], b[0]), lax.max(a[1], b[1])),
        tuple(range(x.ndim)),
    )


def with_fbgemm_min_max(x: Array, fn: Callable[[Array, Array, Array], Any]) -> Any:
    """``fn(lo, hi, x)`` with ``(lo, hi) = fbgemm_min_max(x)``, for a non-empty float32 ``x``.

    ``fn`` runs inside the one ``lax.cond`` that picks the NaN path, on ``x`` as that conditional's
    operand: XLA then materializes ``x`` once (it is what the min and max read too) and cannot fuse
    its producer (a previous layer's epilogue, say) into each of ``fn``'s reads, recomputing it.
    """
    lo, hi = min_and_max(x)

    def nan_path(x):
        return fn(*_find_min_max_nan(x), x)

    return lax.cond(jnp.isnan(lo) | jnp.isnan(hi), nan_path, lambda x: fn(lo, hi, x), x)


def _find_min_max_nan(a: Array) -> tuple[Array, Array]:
    a = a.ravel()
    first, n = a[0], a.size
    full = n // 8 * 8
    lanes = a[:full].reshape(-1, 8)
    rows = jnp.arange(lanes.shape[0]).reshape(-1, 1)
    last_nan = jnp.max(jnp.where(jnp.isnan(lanes), rows, -1), axis=0, initial=-1, keepdims=True)
    seen = jnp.concatenate([(rows > last_nan).ravel(), ~jnp.isnan(a[full:])])
    lo = jnp.minimum(first, jnp.min(jnp.where(seen, a, jnp.inf)))
    hi = jnp.maximum(first, jnp.max(jnp.where(seen, a, -jnp.inf)))
    return lo, hi


def choose_qparams(
    min_val: Array,
    max_val: Array,
    dtype: Dtype = jnp.uint8,
    *,
    symmetric: bool = False,
    reduce_range: bool = False,
    eps: float = EPS,
) -> tuple[Array, Array]:
    """``(scale, zero_point)`` from observed ``min``/``max``, as torch's ``MinMaxObserver``.

    Scalars give per-tensor qparams, ``(C,)`` arrays per-channel ones (``PerChannelMinMaxObserver``).
    Nothing observed (``min=inf``, ``max=-inf``) gives scale 1 and zero point 0, as torch.

    Args:
        min_val: the observed minimum from :func:`min_max`, a scalar or ``(C,)`` per channel.
        max_val: the observed maximum, shaped like ``min_val``.
        dtype: ``jnp.uint8`` (activations) or ``jnp.int8`` (weights).
        symmetric: ``per_tensor_symmetric`` / ``per_channel_symmetric`` (zero point 0 for int8, 128 for
            uint8) instead of affine.
        reduce_range: use 7 bits (uint8 ``[0, 127]``, int8 ``[-64, 63]``), the x86 default for activations.
        eps: the smallest scale (torch: float32 eps).

    Returns:
        ``scale`` (float32) and ``zero_point`` (int32), shaped like ``min_val``.

    Raises:
        ValueError: if a concrete ``min_val > max_val`` (torch's observer asserts it), if the shapes
            differ, or for symmetric uint8 with ``reduce_range`` (torch raises too).
        TypeError: if ``symmetric`` or ``reduce_range`` is not a bool.

    Example:
        >>> s, zp = choose_qparams(jnp.float32(-1.0), jnp.float32(3.0))
        >>> round(float(s), 6), int(zp)
        (0.015686, 64)
        >>> s, zp = choose_qparams(jnp.float32(-1.0), jnp.float32(3.0), jnp.int8, symmetric=True)
        >>> round(float(s) * 127.5, 4), int(zp)
        (3.0, 0)
    """
    name = _dtype_name(dtype)
    check_bool("symmetric", symmetric)
    check_bool("reduce_range", reduce_range)
    eps = check_real("eps", eps, min_value=0.0, strict=True)
    if symmetric and reduce_range and name == "uint8":
        raise ValueError(
            "`reduce_range` must be False for symmetric uint8 qparams (torch raises "
            "NotImplementedError: Cannot reduce range for symmetric quantization for quint8)."
        )
    qmin, qmax = qrange(name, reduce_range)
    min_val = jnp.asarray(min_val, jnp.float32)
    max_val = jnp.asarray(max_val, jnp.float32)
    if min_val.shape != max_val.shape:
        raise ValueError(
            f"`min_val` and `max_val` must have the same shape, got {min_val.shape} and "
            f"{max_val.shape}."
        )
    check_min_le_max(min_val, max_val)
    min_neg = jnp.minimum(min_val, 0.0)
    max_pos = jnp.maximum(max_val, 0.0)
    eps32 = jnp.float32(eps)
    if symmetric:
        amax = jnp.maximum(-min_neg, max_pos)
        scale = jnp.maximum(divide(amax, jnp.float32((qmax - qmin) / 2)), eps32)
        zp_value = 128 if name == "uint8" else 0
        zero_point = jnp.full(min_val.shape, zp_value, jnp.int32)
    else:
        scale = jnp.maximum(divide(max_pos - min_neg, jnp.float32(qmax - qmin)), eps32)
        # torch: ``qmin - round(min/scale).to(int)`` in int32 (NaN -> INT_MIN, wrapping), then clamp.
        zero_point = jnp.int32(qmin) - to_int32(jnp.round(divide(min_neg, scale)))
        zero_point = jnp.clip(zero_point, qmin, qmax)
    empty = (min_val == jnp.inf) & (max_val == -jnp.inf)
    scale = jnp.where(empty, jnp.float32(1.0), scale)
    zero_point = jnp.where(empty, 0, zero_point)
    return scale, zero_point


def choose_qparams_dynamic(
    min_val: Any, max_val: Any, *, reduce_range: bool = False, qmin: int = 0, qmax: int = 255
) -> tuple[Array, Array]:
    """``quant_utils::ChooseQuantizationParams``: the activation qparams of torch's dynamic linear.

    The range is halved with ``reduce_range``, extended to contain 0, ``scale = (max - min) / (qmax -
    qmin)`` in double (0.1 if it is 0 or its float reciprocal is inf, at least 6.1e-5), and the zero point
    is nudged from whichever end has the smaller error. Computed in float64 (``jax.enable_x64`` locally).

    Args:
        min_val: the observed minimum (:func:`fbgemm_min_max`), a float or float32 scalar.
        max_val: the observed maximum, a float or float32 scalar.
        reduce_range: halve ``qmin`` and ``qmax`` (7 bits: ``[0, 127]`` for the default range), as the
            x86 and fbgemm engines do.
        qmin: the smallest quantized value (0 for quint8).
        qmax: the largest quantized value (255 for quint8).

    Returns:
        ``scale`` (float32, what quantization uses) and ``zero_point`` (int32), scalars.

    Raises:
        TypeError: if ``reduce_range`` is not a bool or ``qmin``/``qmax`` not ints.
        ValueError: if ``qmin > qmax``.

    Example:
        >>> s, zp = choose_qparams_dynamic(-1.0, 3.0)
        >>> round(float(s), 6), int(zp)
        (0.015686, 64)
        >>> s, zp = choose_qparams_dynamic(-1.0, 3.0, reduce_range=True)
        >>> round(float(s), 6), int(zp)
        (0.031496, 32)
    """
    check_bool("reduce_range", reduce_range)
    check_qrange(qmin, qmax)
    if reduce_range:
        qmin, qmax = qmin // 2, qmax // 2
    lo32 = jnp.minimum(jnp.asarray(min_val, jnp.float32), 0.0)
    hi32 = jnp.maximum(jnp.asarray(max_val, jnp.float32), 0.0)
    with jax.enable_x64(True):
        f64 = jnp.float64
        lo, hi = lo32.astype(f64), hi32.astype(f64)
        scale = divide(hi - lo, f64(qmax - qmin))
        scale32 = scale.astype(jnp.float32)
        bad = (scale32 == 0) | jnp.isinf(jnp.float32(1.0) / scale32)
        scale = jnp.where(bad, f64(0.1), scale)
        small = scale < f64(SMALL_SCALE_THRESHOLD)
        # min/max stay float in the C++ code: rescale them in float32 arithmetic.
        org32 = scale.astype(jnp.float32)
        amp32 = divide(jnp.float32(SMALL_SCALE_THRESHOLD), org32)
        span32 = jnp.float32(SMALL_SCALE_THRESHOLD) * jnp.float32(qmax - qmin)
        lo_s = jnp.where(lo32 == 0, lo32, jnp.where(hi32 == 0, -span32, lo32 * amp32))
        hi_s = jnp.where(lo32 == 0, span32, jnp.where(hi32 == 0, hi32, hi32 * amp32))
        lo = jnp.where(small, lo_s.astype(f64), lo)
        hi = jnp.where(small, hi_s.astype(f64), hi)
        scale = jnp.where(small, f64(SMALL_SCALE_THRESHOLD), scale)
        lo_q, hi_q = divide(jnp.stack([lo, hi]), scale)  # one division: one fusion, not two
        zp_from_min = qmin - lo_q
        zp_from_max = qmax - hi_q
        err_min = abs(qmin) - jnp.abs(lo_q)
        err_max = abs(qmax) - jnp.abs(hi_q)
        initial = jnp.where(err_min < err_max, zp_from_min, zp_from_max)
        nudged = jnp.where(
            initial < qmin, f64(qmin), jnp.where(initial > qmax, f64(qmax), jnp.round(initial))
        )
        return scale.astype(jnp.float32), to_int32(nudged)
