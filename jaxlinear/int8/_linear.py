"""Integer linear maps with the numerics of a named torch engine: static and dynamic.

The kernel is a ``QTensor`` of int8 values in the JAX layout ``(in, out)`` (the transpose of torch's
packed weight), per tensor or per output channel (``axis=1``). Engines (``quantized::linear``):

- ``"x86"`` (= ``"fbgemm"``; the default): FBGEMM. The accumulator is ``Σ xq·wq`` minus the zero-point
  corrections. The float bias is folded into the float accumulator, ``acc + b / (x_s·w_s)`` (an FMA with
  the reciprocal for per-tensor weights, a division per channel), then
  ``rne(fl32(acc_f · fl32(x_s·w_s / out_s))) + out_zp``, saturated.
- ``"qnnpack"``: exact int32 accumulation, bias quantized to int32 (``rne(b · fl32(1 / fl32(x_s·w_s)))``),
  requantization by the multiplier ``fl32(fl32(w_s·x_s) · fl32(1 / out_s))``.

**FBGEMM's int16 saturation is an argument, never the host.** FBGEMM's kernels for CPUs without AVX-512
VNNI (AVX2, AVX-512) sum the products in pairs ``(2i, 2i+1)`` saturated to int16 (``vpmaddubsw``); its
VNNI kernels (``vpdpbusd``) are exact. So torch gives different integers on different CPUs when
activations exceed 127. jaxlinear computes one of the two, chosen by ``int16_saturation``, whatever the
machine (or accelerator) runs it:

- ``int16_saturation=False`` (the default): the exact sum, torch's numbers on AVX-512 VNNI CPUs and the
  true integer product. With ``reduce_range`` activations (uint8 in ``[0, 127]``, torch's x86 default
  qconfig and the dynamic module's default) nothing can saturate, so it is torch's numbers on every CPU.
- ``int16_saturation=True``: FBGEMM's AVX2 numbers, bit-exact, for full-range activations on CPUs
  without VNNI. It costs a ``max`` of the input when nothing can saturate (inputs <= 127), else an
  emulation over only the pairs whose bound allows saturation, in memory O(batch × out).

QNNPACK never saturates (``int16_saturation=True`` with it is an error).

The integer product is one 8-bit GEMM with an int32 result (:func:`int8_dot`, YNNPACK on XLA CPU:
``uint8 × int8`` with AVX-512 VNNI, ``int8 × int8`` of the shifted activations on other x86 CPUs, the
same integers) of the raw uint8 activations, with one extra row of ones giving ``Σ_k wq``; the
corrections are
``acc = Σ xq·wq - x_zp·Σ_k wq - w_zp·(Σ_k xq - K·x_zp)``. The steps where torch uses an FMA run in
float64 (``jax.enable_x64`` locally), and divisions are kept true divisions (see ``_numerics``).
"""

import jax.numpy as jnp

from jaxlinear._checks import check_bool, check_choice, check_floating_array, check_min_ndim
from jaxlinear._typing import Array
from jaxlinear.int8._checks import (
    check_integer_zero_point,
    check_scale,
    check_zero_point_range,
)
from jaxlinear.int8._int8_dot import dot_with_colsum
from jaxlinear.int8._numerics import divide, fma, mul_then_add, to_int32
from jaxlinear.int8._qparams import choose_qparams_dynamic, min_and_max, with_fbgemm_min_max
from jaxlinear.int8._qtensor import QTensor
from jaxlinear.int8._saturation import with_int16_saturation

__all__ = ["ENGINES", "dynamic_quantized_linear", "quantized_linear"]

#: The quantized engines (torch's ``torch.backends.quantized.engine``) whose int8 linear numerics
#: are reproduced: ``"x86"`` and ``"fbgemm"`` (FBGEMM's, the same numbers) and ``"qnnpack"``.
ENGINES = ("x86", "fbgemm", "qnnpack")


def check_engine(engine: str, int16_saturation: bool) -> bool:
    """Check ``engine`` and ``int16_saturation`` together; return whether the accumulation saturates."""
    check_choice("engine", engine, ENGINES)
    check_bool("int16_saturation", int16_saturation)
    if int16_saturation and engine == "qnnpack":
        raise ValueError(
            "`int16_saturation` must be False with engine 'qnnpack' (QNNPACK accumulates exactly; "
            "the saturation is FBGEMM's, engines 'x86'/'fbgemm'), got True."
        )
    return bool(int16_saturation)


def _check_kernel(kernel: QTensor, n_in: int) -> int:
    if not isinstance(kernel, QTensor):
        raise TypeError(f"`kernel` must be a QTensor, got {type(kernel).__name__}.")
    if kernel.values.dtype != jnp.int8 or kernel.values.ndim != 2:
        raise ValueError(
            "`kernel` must hold int8 values of shape (in_features, out_features), got "
            f"{kernel.values.dtype} {kernel.values.shape}."
        )
    if kernel.axis not in (None, 1):
        raise ValueError(
            f"`kernel` must be quantized per tensor or per output channel (axis=1), got axis "
            f"{kernel.axis}."
        )
    if kernel.values.shape[0] != n_in:
        raise ValueError(
            f"`x` must have {kernel.values.shape[0]} input features (its last dim), as `kernel` "
            f"{kernel.values.shape}, got {n_in}."
        )
    return kernel.values.shape[1]


#: The longest row whose uint8 sum every float32 partial sum holds exactly (``k·255 <= 2**24``).
_EXACT_F32_ROW = 2**24 // 255


def _row_sums(xq: Array) -> Array:
    """``Σ_k xq`` per row, ``(m, 1)`` int32, exactly: summed in float32 (XLA CPU runs a float32 row
    reduction in one pass; its int32 one as a tree of reduce-windows over an int32 copy of ``xq``,
    2-3x the time), exact while every partial sum is an integer below ``2**24``."""
    if xq.shape[1] > _EXACT_F32_ROW:
        return jnp.sum(xq, axis=1, dtype=jnp.int32, keepdims=True)
    return jnp.sum(xq.astype(jnp.float32), axis=1, keepdims=True).astype(jnp.int32)


def _accumulator(xq: Array, x_zp: Array, kernel: QTensor, saturate: bool) -> Array:
    """``Σ_k (xq - x_zp)(wq - w_zp)`` in int32, with FBGEMM's pairwise saturation if ``saturate``.

    One uint8 × int8 GEMM of the raw activations (its extra row of ones gives ``Σ_k wq``), then the
    zero-point corrections; the saturation, if asked, acts on the raw product as FBGEMM's does.
    """
    wq = kernel.values
    (m, k), n = xq.shape, wq.shape[1]
    if m == 0 or n == 0:
        return jnp.zeros((m, n), jnp.int32)
    x_zp = jnp.asarray(x_zp, jnp.int32)
    prod, colsum = dot_with_colsum(xq, wq)
    if saturate:
        prod = with_int16_saturation(prod, xq, wq)
    w_zp = jnp.broadcast_to(kernel.zero_point.astype(jnp.int32), (n,)).reshape(1, -1)
    rowsum = _row_sums(xq) - k * x_zp
    return prod - x_zp * colsum - rowsum * w_zp


def _fbgemm_quantize(x: Array, scale: Array, zero_point: Array) -> Array:
    """The dynamic linear's input quantization, FBGEMM's ``Quantize<uint8_t>``: ``t = min(x·fl32(1/s),
    2**31 - 128)`` (NaN gives the bound), rounded to int32 (below the range: ``INT_MIN``), plus the zero
    point in wrapping int32, clamped to [0, 255]. Equal to :func:`quantize` unless ``x/s`` leaves the
    int32 range (inf, NaN, or the inf scale an inf input makes)."""
    bound = jnp.float32(2**31 - 128)
    t = x * divide(jnp.float32(1.0), scale)
    t = jnp.where(jnp.isnan(t), bound, jnp.minimum(t, bound))
    return jnp.clip(to_int32(jnp.round(t)) + zero_point, 0, 255).astype(jnp.uint8)


def _flatten(x: Array) -> tuple[Array, tuple[int, ...]]:
    return x.reshape(-1, x.shape[-1]), x.shape[:-1]


def quantized_linear(
    x: QTensor,
    kernel: QTensor,
    bias: Array | None,
    out_scale: Array | float,
    out_zero_point: Array | int,
    *,
    engine: str = "x86",
    relu: bool = False,
    int16_saturation: bool = False,
) -> QTensor:
    """``torch.ops.quantized.linear`` (static): uint8 in, uint8 out, bit-exact per engine.

    Args:
        x: a per-tensor uint8 ``QTensor`` ``(..., in)`` (at least 2-D, as torch).
        kernel: int8 ``QTensor`` ``(in, out)``, per tensor or per channel along axis 1.
        bias: float32 ``(out,)`` or None.
        out_scale: the output's scale, a float32 scalar (finite, > 0).
        out_zero_point: the output's zero point, an integer scalar in ``[0, 255]``.
        engine: ``"x86"`` (FBGEMM numerics), ``"fbgemm"`` (the same) or ``"qnnpack"``.
        relu: clamp the output below at ``out_zero_point`` (``quantized::linear_relu``).
        int16_saturation: FBGEMM's pairwise int16 saturation, as torch computes on CPUs without
            AVX-512 VNNI (AVX2-only hosts); False (default): the exact sum, as torch on VNNI CPUs.
            The two differ only when activations exceed 127 (never with ``reduce_range``
            activations). Never read from the host: pick the CPU whose numbers you want.

    Returns:
        uint8 ``QTensor`` ``(..., out)`` with the given output qparams.

    Raises:
        TypeError: if ``x`` is not a per-tensor uint8 ``QTensor``, ``kernel`` not a ``QTensor``, a
            flag not a bool or ``out_zero_point`` not an integer.
        ValueError: for an unknown ``engine``, ``int16_saturation=True`` with ``"qnnpack"``, a 1-D
            ``x``, mismatched shapes, a concrete ``out_zero_point`` outside ``[0, 255]`` or a concrete
            ``out_scale`` not finite and > 0.

    Example:
        >>> from jaxlinear.quantization import quantize, quantize_per_channel
        >>> x = quantize(jnp.linspace(-1, 1, 8).reshape(2, 4), 1 / 64, 64)
        >>> w = quantize(jnp.ones((4, 3)) * 0.5, 1 / 127, 0, jnp.int8)
        >>> y = quantized_linear(x, w, jnp.zeros(3), 0.05, 10)
        >>> y.values
        Array([[ 0,  0,  0],
               [33, 33, 33]], dtype=uint8)
    """
    saturate = check_engine(engine, int16_saturation)
    check_bool("relu", relu)
    if not isinstance(x, QTensor) or x.values.dtype != jnp.uint8 or x.axis is not None:
        raise TypeError(
            "`x` must be a per-tensor uint8 QTensor (torch: quint8), got "
            + (f"{x.values.dtype} axis={x.axis}" if isinstance(x, QTensor) else type(x).__name__)
            + "."
        )
    check_min_ndim("x", x.values, 2, "(batch, ..., in_features) (torch rejects 1-D input)")
    n_out = _check_kernel(kernel, x.values.shape[-1])
    if bias is not None and tuple(bias.shape) != (n_out,):
        raise ValueError(f"`bias` must have shape ({n_out},), got {tuple(bias.shape)}.")
    check_integer_zero_point("out_zero_point", out_zero_point)
    out_scale = jnp.asarray(out_scale, jnp.float32)
    out_zp = jnp.asarray(out_zero_point, jnp.int32)
    if out_scale.ndim or out_zp.ndim:
        raise ValueError(
            f"`out_scale` and `out_zero_point` must be scalars, got shapes {out_scale.shape} and "
            f"{out_zp.shape}."
        )
    check_scale("out_scale", out_scale)
    check_zero_point_range("out_zero_point", out_zp, 0, 255, "the range of uint8")
    xq, batch = _flatten(x.values)
    x_s = jnp.asarray(x.scale, jnp.float32)
    w_s = jnp.broadcast_to(kernel.scale.astype(jnp.float32), (n_out,)).reshape(1, -1)
    acc = _accumulator(xq, x.zero_point, kernel, saturate)
    b = None if bias is None else jnp.asarray(bias, jnp.float32).reshape(1, -1)
    if engine == "qnnpack":
        prod = w_s * x_s
        if b is not None:
            bq = jnp.round(b * divide(jnp.float32(1.0), prod))
            bq = jnp.clip(bq, -(2.0**31), 2.0**31 - 128).astype(jnp.int32)
            acc = acc + bq
        y = jnp.round(acc.astype(jnp.float32) * (prod * divide(jnp.float32(1.0), out_scale)))
    else:
        atw = x_s * w_s
        mult = divide(atw, out_scale)
        acc_f = acc.astype(jnp.float32)
        if b is None:
            xf = acc_f
        elif kernel.axis is None:
            xf = fma(b, divide(jnp.float32(1.0), atw), acc_f)
        else:
            xf = acc_f + divide(b, atw)
        y = jnp.round(xf * mult)
    lo = out_zp.astype(jnp.float32) if relu else jnp.float32(0)
    y = jnp.clip(y + out_zp.astype(jnp.float32), lo, 255.0)
    y = jnp.where(jnp.isnan(y), 255.0, y).astype(jnp.uint8)
    return QTensor(y.reshape(*batch, n_out), out_scale, out_zp, None)


def dynamic_quantized_linear(
    x: Array,
    kernel: QTensor,
    bias: Array | None = None,
    *,
    engine: str = "x86",
    reduce_range: bool = True,
    int16_saturation: bool = False,
) -> Array:
    """``torch.ao.nn.quantized.dynamic.Linear``'s forward: float32 in, float32 out.

    The activation qparams come from the min and max of the **whole** input (so every row depends on the
    batch, as in torch), through :func:`choose_qparams_dynamic`; the input is quantized to uint8, the
    integer product accumulated as the engine does, and the output is ``acc · fl32(x_s·w_s) + b`` (one
    FMA for x86, a multiply then an add for qnnpack).

    NaN and inf in ``x`` behave as in torch, because the qparams are per tensor: x86 takes the min/max
    with FBGEMM's ``FindMinMax`` (:func:`fbgemm_min_max`), which skips most NaNs, so the other rows keep
    their values (a NaN element is quantized to 255, even with ``reduce_range``, so its pairs can
    saturate with ``int16_saturation=True``, as on AVX2 CPUs); an inf makes the scale inf and the outputs
    inf/NaN, as torch's (the int32 wrap-around of FBGEMM's quantization included). Where torch raises instead (x86: a NaN first element; qnnpack: any NaN or
    inf), which cannot happen under ``jit``, every output is NaN.

    Args:
        x: float32 ``(..., in)`` (torch's op accepts only float32).
        kernel: int8 ``QTensor`` ``(in, out)``, per tensor or per channel along axis 1.
        bias: float32 ``(out,)`` or None.
        engine: ``"x86"``/``"fbgemm"`` or ``"qnnpack"``.
        reduce_range: 7-bit activations (the module's default, True). QNNPACK ignores it, as torch does.
        int16_saturation: as in :func:`quantized_linear`; it changes results only with
            ``reduce_range=False`` (7-bit activations never saturate).

    Returns:
        float32 ``(..., out)``.

    Raises:
        TypeError: if ``x`` is not float32, ``kernel`` not a ``QTensor`` or a flag not a bool.
        ValueError: for an unknown ``engine``, ``int16_saturation=True`` with ``"qnnpack"`` or
            mismatched shapes.

    Example:
        >>> from jaxlinear.quantization import quantize_per_channel
        >>> w = quantize_per_channel(jnp.eye(3), jnp.full(3, 1 / 127), jnp.zeros(3, int), 1)
        >>> dynamic_quantized_linear(jnp.array([[0.5, -0.25, 1.0]]), w).round(2)
        Array([[ 0.5 , -0.25,  1.  ]], dtype=float32)
    """
    saturate = check_engine(engine, int16_saturation)
    check_bool("reduce_range", reduce_range)
    x = jnp.asarray(x)
    check_floating_array("x", x)
    if x.dtype != jnp.float32:
        raise TypeError(f"`x` must be float32 (as torch's linear_dynamic), got {x.dtype}.")
    check_min_ndim("x", x, 1, "(..., in_features)")
    n_out = _check_kernel(kernel, x.shape[-1])
    if bias is not None and tuple(bias.shape) != (n_out,):
        raise ValueError(f"`bias` must have shape ({n_out},), got {tuple(bias.shape)}.")
    x2, batch = _flatten(x)
    qnnpack = engine == "qnnpack"
    w_s = jnp.broadcast_to(kernel.scale.astype(jnp.float32), (n_out,)).reshape(1, -1)
    b = None if bias is None else bias.reshape(1, -1)

    def quantized(lo: Array, hi: Array, x2: Array) -> tuple[Array, Array, Array]:
        scale, zp = choose_qparams_dynamic(lo, hi, reduce_range=reduce_range and not qnnpack)
        return _fbgemm_quantize(x2, scale, zp), scale, zp

    if x2.size == 0:
        (xq, scale, zp), raises = quantized(jnp.float32(0), jnp.float32(0), x2), jnp.bool_(False)
    elif qnnpack:  # torch's aminmax propagates NaN; QNNPACK rejects NaN and infinite qparams
        lo, hi = min_and_max(x2)
        (xq, scale, zp), raises = quantized(lo, hi, x2), ~(jnp.isfinite(lo) & jnp.isfinite(hi))
    else:
        # The quantization runs inside fbgemm_min_max's conditional (its NaN path), on the input as
        # the conditional's operand: XLA materializes the input once and writes the uint8 operand
        # there, instead of recomputing the input's producer (the previous layer's epilogue) in each
        # fusion that reads it. Only the quantization: under vmap a conditional runs both branches.
        xq, scale, zp, raises = with_fbgemm_min_max(
            x2, lambda lo, hi, x2: (*quantized(lo, hi, x2), jnp.isnan(lo) | jnp.isnan(hi))
        )
    acc = _accumulator(xq, zp, kernel, saturate).astype(jnp.float32)
    mult = scale * w_s
    if b is None:
        y = acc * mult
    elif qnnpack:
        y = mul_then_add(acc, mult, b)
    else:
        y = fma(acc, mult, b)
    y = jnp.where(raises, jnp.float32(jnp.nan), y)
    return y.reshape(*batch, n_out)
