"""Integer linear maps with the numerics of a named torch engine: static and dynamic.

The kernel is a ``QTensor`` of int8 values in the JAX layout ``(in, out)`` (the transpose of torch's
packed weight), per tensor or per output channel (``axis=1``). Engines (``quantized::linear``):

- ``"x86"`` (= ``"fbgemm"``; the default): the accumulator is ``Σ xq·wq`` minus the zero-point
  corrections. On CPUs without AVX-512 VNNI, FBGEMM sums the products in pairs ``(2i, 2i+1)`` saturated to
  int16 (``vpmaddubsw``, AVX2 and AVX-512 kernels alike); with VNNI (``vpdpbusd``) it is exact.
  ``int16_saturation`` picks one; None follows FBGEMM on the host (:func:`fbgemm_int16_saturation`).
  Saturation needs activations above 127: ``reduce_range`` activations (the x86 default) never saturate,
  and full-range ones, when saturation is on, take an exact but slower emulation path. The float bias is
  folded into the float accumulator, ``acc + b / (x_s·w_s)`` (an FMA with the reciprocal for per-tensor
  weights, a division per channel), then ``rne(fl32(acc_f · fl32(x_s·w_s / out_s))) + out_zp``, saturated.
- ``"qnnpack"``: exact int32 accumulation, bias quantized to int32 (``rne(b · fl32(1 / fl32(x_s·w_s)))``),
  requantization by the multiplier ``fl32(fl32(w_s·x_s) · fl32(1 / out_s))``.

The integer product is one ``int8 × int8 → int32`` dot (``preferred_element_type=jnp.int32``, never
uint8 × int8, which XLA CPU runs 6× slower): ``xq - x_zp`` is the int8 operand when it fits (always with
``reduce_range`` activations), else ``xq - 128`` with the shift corrected by the kernel's column sums.
The steps where torch uses an FMA run in float64 (``jax.enable_x64`` locally), and divisions are kept
true divisions (see ``_numerics``).
"""

import functools
import os

import jax.numpy as jnp
from jax import lax

from jaxlinear._checks import check_choice, check_floating_array, check_min_ndim
from jaxlinear._typing import Array
from jaxlinear.quantization._numerics import divide, fma, mul_then_add
from jaxlinear.quantization._qparams import choose_qparams_dynamic, min_max
from jaxlinear.quantization._qtensor import QTensor, quantize

__all__ = [
    "ENGINES",
    "dynamic_quantized_linear",
    "fbgemm_int16_saturation",
    "quantized_linear",
]

ENGINES = ("x86", "fbgemm", "qnnpack")


@functools.cache
def fbgemm_int16_saturation() -> bool:
    """Whether torch's FBGEMM saturates pairwise int16 sums on this host (no AVX-512 VNNI).

    Read once: the CPU flags (``/proc/cpuinfo``) and ``FBGEMM_ENABLE_INSTRUCTIONS`` (``AVX2``/``AVX512``
    force the saturating kernels, ``AVX512_E1`` the VNNI ones). Without ``/proc/cpuinfo``: True.

    Example:
        >>> isinstance(fbgemm_int16_saturation(), bool)
        True
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    vnni = "avx512_vnni" in flags
    forced = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").upper()
    if forced in ("AVX2", "AVX512", "AVX512_256"):
        return True
    return not vnni


def _saturates(engine: str, int16_saturation: bool | None) -> bool:
    if engine == "qnnpack":
        return False
    return fbgemm_int16_saturation() if int16_saturation is None else bool(int16_saturation)


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


def _dot8(a: Array, wq: Array) -> Array:
    """``a @ wq`` for int8 operands, accumulated exactly in int32 (s8×s8→s32)."""
    return lax.dot_general(a, wq, (((1,), (0,)), ((), ())), preferred_element_type=jnp.int32)


def _colsum(wq: Array) -> Array:
    """``Σ_k wq[k, n]`` as ``(1, n)`` int32, through the int8 dot (XLA's int8 column reduce is slow)."""
    return _dot8(jnp.ones((1, wq.shape[0]), jnp.int8), wq)


def _centered_dot(xq: Array, x_zp: Array, wq: Array) -> Array:
    """``Σ_k (xq - x_zp)·wq`` exactly. When ``xq - x_zp`` fits int8 (always with ``reduce_range``
    activations) it is the int8 operand itself; otherwise ``xq - 128`` is, corrected by the column sums."""

    def direct(xq, x_zp, wq):
        return _dot8((xq.astype(jnp.int32) - x_zp).astype(jnp.int8), wq)

    def shifted(xq, x_zp, wq):
        xs = lax.bitcast_convert_type(xq ^ jnp.uint8(128), jnp.int8)
        return _dot8(xs, wq) + (128 - x_zp) * _colsum(wq)

    x_zp = x_zp.astype(jnp.int32)
    lo, hi = jnp.min(xq).astype(jnp.int32), jnp.max(xq).astype(jnp.int32)
    fits = (hi - x_zp <= 127) & (lo - x_zp >= -128)
    return lax.cond(fits, direct, shifted, xq, x_zp, wq)


def _sat16_dot(xq: Array, wq: Array) -> Array:
    """FBGEMM/AVX2's ``Σ_k xq·wq`` with the pairs ``(2i, 2i+1)`` summed and saturated to int16 first."""
    m, k = xq.shape
    if k % 2:
        xq = jnp.pad(xq, ((0, 0), (0, 1)))
        wq = jnp.pad(wq, ((0, 1), (0, 0)))
    x2 = xq.astype(jnp.int32).reshape(m, -1, 2)
    w2 = wq.astype(jnp.int32).reshape(-1, 2, wq.shape[1])
    pairs = x2[:, :, 0, None] * w2[None, :, 0, :] + x2[:, :, 1, None] * w2[None, :, 1, :]
    return jnp.sum(jnp.clip(pairs, -32768, 32767), axis=1)


def _sat16_centered(xq: Array, x_zp: Array, wq: Array) -> Array:
    """``Σ_sat16 xq·wq - x_zp·Σ_k wq``: FBGEMM's saturated product with its zero-point correction."""
    return _sat16_dot(xq, wq) - x_zp.astype(jnp.int32) * _colsum(wq)


def _accumulator(xq: Array, x_zp: Array, kernel: QTensor, saturate: bool) -> Array:
    """``Σ_k (xq - x_zp)(wq - w_zp)`` in int32, with FBGEMM's pairwise saturation if ``saturate``.

    Saturation needs activations above 127 (``|pair| <= 2·127·128 < 2**15`` otherwise), so the exact
    int8 dot runs whenever ``max(xq) <= 127`` and the emulation (O(M·N·K) elementwise) only otherwise.
    """
    wq = kernel.values
    m, n = xq.shape[0], wq.shape[1]
    if m == 0 or n == 0:
        return jnp.zeros((m, n), jnp.int32)
    x_zp = jnp.asarray(x_zp, jnp.int32)
    if saturate:
        acc = lax.cond(jnp.max(xq) <= 127, _centered_dot, _sat16_centered, xq, x_zp, wq)
    else:
        acc = _centered_dot(xq, x_zp, wq)
    w_zp = jnp.broadcast_to(kernel.zero_point.astype(jnp.int32), (n,)).reshape(1, -1)
    rowsum = jnp.sum(xq.astype(jnp.int32) - x_zp, axis=1).reshape(-1, 1)
    return acc - rowsum * w_zp


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
    int16_saturation: bool | None = None,
) -> QTensor:
    """``torch.ops.quantized.linear`` (static): uint8 in, uint8 out, bit-exact per engine.

    Args:
        x: a per-tensor uint8 ``QTensor`` ``(..., in)`` (at least 2-D, as torch).
        kernel: int8 ``QTensor`` ``(in, out)``, per tensor or per channel along axis 1.
        bias: float32 ``(out,)`` or None.
        out_scale, out_zero_point: the output's qparams.
        engine: ``"x86"`` (FBGEMM numerics, including its int16 saturation where FBGEMM saturates),
            ``"fbgemm"`` (the same) or ``"qnnpack"``.
        relu: clamp the output below at ``out_zero_point`` (``quantized::linear_relu``).
        int16_saturation: x86 only: emulate FBGEMM's pairwise int16 saturation (CPUs without AVX-512
            VNNI); None decides as FBGEMM does on this host (:func:`fbgemm_int16_saturation`).

    Returns:
        uint8 ``QTensor`` ``(..., out)`` with the given output qparams.

    Example:
        >>> from jaxlinear.quantization import quantize, quantize_per_channel
        >>> x = quantize(jnp.linspace(-1, 1, 8).reshape(2, 4), 1 / 64, 64)
        >>> w = quantize(jnp.ones((4, 3)) * 0.5, 1 / 127, 0, jnp.int8)
        >>> y = quantized_linear(x, w, jnp.zeros(3), 0.05, 10)
        >>> y.values
        Array([[ 0,  0,  0],
               [33, 33, 33]], dtype=uint8)
    """
    check_choice("engine", engine, ENGINES)
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
    xq, batch = _flatten(x.values)
    x_s = jnp.asarray(x.scale, jnp.float32)
    w_s = jnp.broadcast_to(kernel.scale.astype(jnp.float32), (n_out,)).reshape(1, -1)
    out_scale = jnp.asarray(out_scale, jnp.float32)
    out_zp = jnp.asarray(out_zero_point, jnp.int32)
    acc = _accumulator(xq, x.zero_point, kernel, _saturates(engine, int16_saturation))
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
    int16_saturation: bool | None = None,
) -> Array:
    """``torch.ao.nn.quantized.dynamic.Linear``'s forward: float32 in, float32 out.

    The activation qparams come from the min and max of the **whole** input (so every row depends on the
    batch, as in torch), through :func:`choose_qparams_dynamic`; the input is quantized to uint8, the
    integer product accumulated as the engine does, and the output is ``acc · fl32(x_s·w_s) + b`` (one
    FMA for x86, a multiply then an add for qnnpack).

    Args:
        x: float32 ``(..., in)`` (torch's op accepts only float32).
        kernel: int8 ``QTensor`` ``(in, out)``, per tensor or per channel along axis 1.
        bias: float32 ``(out,)`` or None.
        engine: ``"x86"``/``"fbgemm"`` or ``"qnnpack"``.
        reduce_range: 7-bit activations (the module's default, True). QNNPACK ignores it, as torch does.
        int16_saturation: as in :func:`quantized_linear` (only reachable with ``reduce_range=False``).

    Example:
        >>> from jaxlinear.quantization import quantize_per_channel
        >>> w = quantize_per_channel(jnp.eye(3), jnp.full(3, 1 / 127), jnp.zeros(3, int), 1)
        >>> dynamic_quantized_linear(jnp.array([[0.5, -0.25, 1.0]]), w).round(2)
        Array([[ 0.5 , -0.25,  1.  ]], dtype=float32)
    """
    check_choice("engine", engine, ENGINES)
    x = jnp.asarray(x)
    check_floating_array("x", x)
    if x.dtype != jnp.float32:
        raise TypeError(f"`x` must be float32 (as torch's linear_dynamic), got {x.dtype}.")
    check_min_ndim("x", x, 1, "(..., in_features)")
    n_out = _check_kernel(kernel, x.shape[-1])
    if bias is not None and tuple(bias.shape) != (n_out,):
        raise ValueError(f"`bias` must have shape ({n_out},), got {tuple(bias.shape)}.")
    x2, batch = _flatten(x)
    if x2.size == 0:
        lo = hi = jnp.float32(0)
    else:
        lo, hi = min_max(x2)
    qnnpack = engine == "qnnpack"
    scale, zp = choose_qparams_dynamic(lo, hi, reduce_range=reduce_range and not qnnpack)
    xq = quantize(x2, scale, zp, jnp.uint8)
    acc = _accumulator(xq.values, zp, kernel, _saturates(engine, int16_saturation))
    acc = acc.astype(jnp.float32)
    w_s = jnp.broadcast_to(kernel.scale.astype(jnp.float32), (n_out,)).reshape(1, -1)
    mult = scale * w_s
    b = jnp.zeros((1, n_out), jnp.float32) if bias is None else bias.reshape(1, -1)
    if qnnpack:
        y = mul_then_add(acc, mult, b) if bias is not None else acc * mult
    else:
        y = fma(acc, mult, b) if bias is not None else acc * mult
    return y.reshape(*batch, n_out)
