"""``QTensor`` and torch's ``quantize_per_tensor`` / ``quantize_per_channel`` / ``dequantize``.

torch quantizes as ``q = clamp(rne(x * fl32(1 / fl32(scale))) + zero_point, qmin, qmax)``: a multiply by the
float32 reciprocal, round half to even, *then* the zero point, then saturation; +inf gives ``qmax`` and
-inf ``qmin``. NaN gives ``qmax`` per tensor and 0 per channel, as torch's two kernels do.
Dequantization is ``(q - zero_point) * fl32(scale)``.

.. warning:: torch's per-tensor kernel converts ``rne(x / scale)`` to int32 before adding the zero point,
   so when it leaves the int32 range (|x / scale| >= 2**31, ±inf, and NaN, which it first turns into
   2**31 - 128) the sum wraps for zero points >= 128 (quint8) or < 0 (qint8): x = -1e9, scale 0.1,
   zero point -7 gives 127 instead of -128, and +inf or NaN with quint8 zero point 128 give 0.
   jaxlinear saturates to the correct end (NaN -> qmax) for every zero point.
"""

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_bool, check_choice, check_floating_array
from jaxlinear._typing import Array, Dtype
from jaxlinear.int8._checks import (
    check_integer_zero_point,
    check_scale,
    check_zero_point_range,
)
from jaxlinear.int8._numerics import divide

__all__ = ["QTensor", "dequantize", "qrange", "quantize", "quantize_per_channel"]

_QDTYPES = ("int8", "uint8")


def qrange(dtype: Dtype, reduce_range: bool = False) -> tuple[int, int]:
    """``(qmin, qmax)`` of ``jnp.int8`` / ``jnp.uint8``; ``reduce_range`` drops one bit, as torch.

    Args:
        dtype: ``jnp.int8`` or ``jnp.uint8`` (or their names, ``"int8"``, ``"uint8"``).
        reduce_range: use 7 bits (uint8 ``[0, 127]``, int8 ``[-64, 63]``).

    Returns:
        ``(qmin, qmax)`` as Python ints.

    Raises:
        ValueError: if ``dtype`` is not int8 or uint8.
        TypeError: if ``reduce_range`` is not a bool.

    Example:
        >>> qrange(jnp.uint8), qrange(jnp.uint8, reduce_range=True), qrange(jnp.int8, True)
        ((0, 255), (0, 127), (-64, 63))
    """
    name = _dtype_name(dtype)
    check_bool("reduce_range", reduce_range)
    if name == "uint8":
        return (0, 127) if reduce_range else (0, 255)
    return (-64, 63) if reduce_range else (-128, 127)


def _dtype_name(dtype: Any) -> str:
    try:
        name = jnp.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    check_choice("dtype", name, _QDTYPES)
    return name


@dataclass(frozen=True)
class QTensor:
    """JAX's stand-in for a torch quantized tensor.

    Built by :func:`quantize` / :func:`quantize_per_channel`, or directly from torch's ``int_repr()``
    and qparams. Construction checks the fields (JAX's own rebuilding of the pytree, under ``jit``,
    ``vmap`` or ``jax.tree.map``, does not): ``scale`` becomes float32 and ``zero_point`` int32.

    Attributes:
        values: the integer array (``int_repr()`` in torch), ``int8`` or ``uint8``.
        scale: float32, a scalar (per tensor) or ``(values.shape[axis],)`` (per channel).
        zero_point: an integer of the same shape as ``scale`` (stored as int32).
        axis: None per tensor, else the channel axis (static, not a pytree leaf).

    Raises:
        TypeError: if ``values`` is not an int8/uint8 array, ``scale`` not a real number or
            ``zero_point`` not an integer.
        ValueError: if ``axis`` is not a dim of ``values`` or the qparams do not have the shape it
            implies.

    Example:
        >>> qt = quantize(jnp.array([0.0, 0.5, 1.0]), 0.5, 1, jnp.uint8)
        >>> qt.values, qt.values.dtype
        (Array([1, 2, 3], dtype=uint8), dtype('uint8'))
        >>> dequantize(qt)
        Array([0. , 0.5, 1. ], dtype=float32)
        >>> QTensor(jnp.ones(3, jnp.int8), jnp.ones(2), jnp.zeros(2, int), axis=None)
        Traceback (most recent call last):
        ...
        ValueError: `scale` and `zero_point` must be scalars for a per-tensor QTensor (axis=None), got shapes (2,) and (2,).
    """

    values: Array
    scale: Array
    zero_point: Array
    axis: int | None = None

    def __post_init__(self) -> None:
        values, axis = self.values, self.axis
        dtype = getattr(values, "dtype", None)
        if dtype is None or np.dtype(dtype).name not in _QDTYPES:
            raise TypeError(
                f"`values` must be an int8 or uint8 array, got {dtype or type(values).__name__}."
            )
        check_integer_zero_point("zero_point", self.zero_point)
        scale_dtype = jnp.result_type(self.scale)
        if not jnp.issubdtype(scale_dtype, jnp.floating) and not jnp.issubdtype(
            scale_dtype, jnp.integer
        ):
            raise TypeError(f"`scale` must be a real number or array, got {scale_dtype}.")
        scale, zero_point = _as(self.scale, jnp.float32), _as(self.zero_point, jnp.int32)
        if axis is None:
            if scale.ndim or zero_point.ndim:
                raise ValueError(
                    "`scale` and `zero_point` must be scalars for a per-tensor QTensor (axis=None), "
                    f"got shapes {scale.shape} and {zero_point.shape}."
                )
        else:
            ndim = values.ndim
            if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
                raise TypeError(f"`axis` must be None or an int, got {type(axis).__name__}.")
            if not 0 <= axis < ndim:
                raise ValueError(f"`axis` must be in [0, {ndim}) (a dim of `values`), got {axis}.")
            n = values.shape[axis]
            if scale.shape != (n,) or zero_point.shape != (n,):
                raise ValueError(
                    f"`scale` and `zero_point` must have shape ({n},) (values.shape[{axis}]) for "
                    f"a per-channel QTensor, got {scale.shape} and {zero_point.shape}."
                )
            object.__setattr__(self, "axis", int(axis))
        qmin, qmax = qrange(dtype)
        check_zero_point_range("zero_point", zero_point, qmin, qmax, f"the range of {dtype}")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zero_point)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``values``."""
        return self.values.shape

    @property
    def dtype(self) -> jnp.dtype:
        """The integer dtype of ``values``, int8 or uint8."""
        return self.values.dtype

    @property
    def per_channel(self) -> bool:
        """Whether the qparams are per channel (``axis`` is not None)."""
        return self.axis is not None


def _as(x: Any, dtype: Any) -> Any:
    """``x`` as an array of ``dtype``; a ``jax.ShapeDtypeStruct`` (ahead-of-time lowering) stays one."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return jax.ShapeDtypeStruct(x.shape, dtype)
    return jnp.asarray(x, dtype)


_FIELDS = ("values", "scale", "zero_point")


def _flatten_with_keys(qt: QTensor):
    return [(jax.tree_util.GetAttrKey(f), getattr(qt, f)) for f in _FIELDS], qt.axis


def _unflatten(axis: int | None, leaves) -> QTensor:
    """JAX rebuilds QTensors from any leaves (tracers, shapes, None): no checks, no conversion."""
    qt = object.__new__(QTensor)
    for name, leaf in zip(_FIELDS, leaves, strict=True):
        object.__setattr__(qt, name, leaf)
    object.__setattr__(qt, "axis", axis)
    return qt


jax.tree_util.register_pytree_with_keys(
    QTensor, _flatten_with_keys, _unflatten, lambda qt: ([getattr(qt, f) for f in _FIELDS], qt.axis)
)


def _quantize_values(
    x: Array, inv_scale: Array, zero_point: Array, qmin: int, qmax: int, nan_value: int
) -> Array:
    """``clamp(rne(x * inv_scale) + zero_point, qmin, qmax)`` as float32 (NaN -> ``nan_value``)."""
    q = jnp.round(x * inv_scale) + zero_point.astype(jnp.float32)
    q = jnp.clip(q, qmin, qmax)
    return jnp.where(jnp.isnan(q), jnp.float32(nan_value), q)


def _reciprocal(scale: Array) -> Array:
    return divide(jnp.float32(1.0), jnp.asarray(scale, jnp.float32))


def quantize(x: Array, scale: Any, zero_point: Any, dtype: Dtype = jnp.uint8) -> QTensor:
    """Per-tensor quantization, bit-exact with ``torch.quantize_per_tensor``.

    Args:
        x: a float array (computed in float32, as torch's kernels do).
        scale: a positive scalar; used as float32 (torch's kernels round its double to float32 first).
        zero_point: an integer scalar inside the range of ``dtype``.
        dtype: ``jnp.uint8`` (torch.quint8) or ``jnp.int8`` (torch.qint8).

    Returns:
        A ``QTensor`` with ``axis=None``.

    Raises:
        TypeError: if ``x`` is not a float array or ``zero_point`` is not an integer (a fractional
            zero point is rejected, never truncated).
        ValueError: if a concrete ``zero_point`` is outside the range of ``dtype`` (torch raises too) or
            a concrete ``scale`` is not finite and > 0; if the qparams are not scalars.

    Example:
        >>> quantize(jnp.array([-1.0, 0.25, 0.75, 100.0, jnp.nan]), 0.5, 0, jnp.int8).values
        Array([ -2,   0,   2, 127, 127], dtype=int8)
    """
    name = _dtype_name(dtype)
    x = jnp.asarray(x)
    check_floating_array("x", x)
    check_integer_zero_point("zero_point", zero_point)
    scale = jnp.asarray(scale, jnp.float32)
    zero_point = jnp.asarray(zero_point, jnp.int32)
    if scale.ndim or zero_point.ndim:
        raise ValueError(
            f"`scale` and `zero_point` must be scalars (use quantize_per_channel for per-channel "
            f"qparams), got shapes {scale.shape} and {zero_point.shape}."
        )
    check_scale("scale", scale)
    qmin, qmax = qrange(name)
    check_zero_point_range("zero_point", zero_point, qmin, qmax, f"the range of {name}")
    q = _quantize_values(x.astype(jnp.float32), _reciprocal(scale), zero_point, qmin, qmax, qmax)
    return QTensor(q.astype(name), scale, zero_point, None)


def quantize_per_channel(
    x: Array, scales: Any, zero_points: Any, axis: int, dtype: Dtype = jnp.int8
) -> QTensor:
    """Per-channel quantization along ``axis``, bit-exact with ``torch.quantize_per_channel``.

    Args:
        x: a float array.
        scales: ``(x.shape[axis],)`` positive scales (torch stores float64; its kernels use float32).
        zero_points: ``(x.shape[axis],)`` integers.
        axis: the channel axis (negative counts from the end).
        dtype: ``jnp.int8`` or ``jnp.uint8``.

    Raises:
        TypeError: if ``zero_points`` are not integers.
        ValueError: if the qparams do not have shape ``(x.shape[axis],)``, a concrete zero point is
            outside the range of ``dtype`` or a concrete scale is not finite and > 0.

    Example:
        >>> w = jnp.array([[1.0, -1.0], [0.3, 0.2]])
        >>> qt = quantize_per_channel(w, jnp.array([1 / 127, 0.3 / 127]), jnp.zeros(2, int), 0)
        >>> qt.values, qt.axis
        (Array([[ 127, -127],
               [ 127,   85]], dtype=int8), 0)
    """
    name = _dtype_name(dtype)
    x = jnp.asarray(x)
    check_floating_array("x", x)
    axis, scales, zero_points, shape = channel_qparams(x, scales, zero_points, axis)
    qmin, qmax = qrange(name)
    check_zero_point_range("zero_points", zero_points, qmin, qmax, f"the range of {name}")
    q = _quantize_values(
        x.astype(jnp.float32),
        _reciprocal(scales).reshape(shape),
        zero_points.reshape(shape),
        qmin,
        qmax,
        0,
    )
    return QTensor(q.astype(name), scales, zero_points, axis)


def channel_qparams(
    x: Array, scales: Any, zero_points: Any, axis: Any
) -> tuple[int, Array, Array, list[int]]:
    """Checked per-channel qparams of ``x`` along ``axis``: ``(axis, scales, zero_points, shape)``.

    ``axis`` is made non-negative, ``scales`` float32 and ``zero_points`` int32 of shape ``(n,)``;
    ``shape`` reshapes them to broadcast against ``x``.
    """
    if (
        isinstance(axis, bool)
        or not isinstance(axis, int | np.integer)
        or not -x.ndim <= axis < x.ndim
    ):
        raise ValueError(f"`axis` must be an int in [-{x.ndim}, {x.ndim}), got {axis!r}.")
    axis = int(axis) % x.ndim
    n = x.shape[axis]
    check_integer_zero_point("zero_points", zero_points)
    scales = jnp.asarray(scales, jnp.float32)
    zero_points = jnp.asarray(zero_points, jnp.int32)
    if scales.shape != (n,) or zero_points.shape != (n,):
        raise ValueError(
            f"`scales` and `zero_points` must have shape ({n},) (x.shape[{axis}]), got "
            f"{scales.shape} and {zero_points.shape}."
        )
    check_scale("scales", scales)
    shape = [1] * x.ndim
    shape[axis] = n
    return axis, scales, zero_points, shape


def dequantize(qt: QTensor) -> Array:
    """``(values - zero_point) * scale`` in float32, as torch's ``dequantize``.

    Args:
        qt: a :class:`QTensor`, per tensor or per channel.

    Returns:
        A float32 array of ``qt.values``' shape.

    Raises:
        TypeError: if ``qt`` is not a :class:`QTensor`.

    Example:
        >>> dequantize(quantize(jnp.array([0.1, 0.2]), 0.1, 3)).round(3)
        Array([0.1, 0.2], dtype=float32)
    """
    if not isinstance(qt, QTensor):
        raise TypeError(f"`qt` must be a QTensor, got {type(qt).__name__}.")
    scale, zero_point = qt.scale, qt.zero_point
    if qt.axis is not None:
        shape = [1] * qt.values.ndim
        shape[qt.axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    diff = qt.values.astype(jnp.int32) - zero_point.astype(jnp.int32)
    return diff.astype(jnp.float32) * scale.astype(jnp.float32)
