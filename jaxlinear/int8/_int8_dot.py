"""``int8_dot``: the exact ``uint8/int8 × int8 → int32`` matrix product, on XLA CPU's fast int8 GEMM.

XLA CPU runs a ``dot`` whose operands are ``u8 × s8`` or ``s8 × s8`` (result ``s32``, lhs contracting
dim 1, rhs contracting dim 0, dims >= 8) through YNNPACK; with AVX-512 VNNI its ``u8 × s8`` kernel is
2.5-3× faster than its ``s8 × s8`` one (measured, ``benchmarks/RESULTS.md``), and ``u8 × s8`` is also
the product FBGEMM computes. JAX's own ``lax.dot_general`` cannot emit that HLO: it converts operands of
different dtypes to the result type first (an int32 GEMM, ~6× slower). So ``u8 × s8`` is a small
primitive here, whose CPU lowering is exactly that ``stablehlo.dot_general`` of ``ui8`` and ``i8``; on
other platforms it lowers to the ``s8 × s8`` dot of ``x - 128`` plus ``128·Σ_k w`` (the same integers).

An ``int8`` lhs goes through the same kernel as ``a ^ 0x80`` (= ``a + 128`` as uint8), corrected by
``128·Σ_k w``, which one extra row of ones in the same GEMM gives.

**The CPU lowering picks the kernel for the CPU it compiles for**, as XLA does for everything else:
YNNPACK's ``u8 × s8`` kernel is fast only with AVX-512 VNNI; on CPUs without it (AVX2, AVX-512 without
VNNI) it runs 4.8-6.5× slower than the ``s8 × s8`` one (measured: 47 vs 7.3 ms at 1024³ under
``python -m benchmarks --isa avx2``). So on an x86 Linux host whose ``/proc/cpuinfo`` lacks
``avx512_vnni`` the lowering is the ``s8 × s8`` form (``x ^ 0x80`` as int8, plus ``128·Σ_k w``). Both
forms are exact, so the integers never depend on the host; only the speed does.
``JAXLINEAR_INT8_DOT=u8s8`` / ``s8s8`` overrides the choice (read at lowering time; call
``jax.clear_caches()`` after changing it in a running process).
"""

import functools
import os
import platform

import jax
import jax.numpy as jnp
from jax import lax
from jax.core import ShapedArray
from jax.extend.core import Primitive
from jax.extend.mlir.dialects import stablehlo
from jax.interpreters import batching, mlir

from jaxlinear._typing import Array

__all__ = ["dot_with_colsum", "int8_dot"]

_DIMS = (((1,), (0,)), ((), ()))


def _s8_dot(a: Array, w: Array) -> Array:
    return lax.dot_general(a, w, _DIMS, preferred_element_type=jnp.int32)


def _reference(x: Array, w: Array) -> Array:
    """``x @ w`` for uint8 ``x`` with one int8 dot: ``(x - 128) @ w + 128·Σ_k w``.

    ``Σ_k w`` is the product of an extra row of ones in the same GEMM (a reduction of ``w`` over its
    rows, or a GEMM of one row, runs on XLA CPU's slow paths: 10x the cost at 4096 x 4096).
    """
    xs = lax.bitcast_convert_type(x ^ jnp.uint8(128), jnp.int8)
    out = _s8_dot(jnp.concatenate([xs, jnp.ones((1, x.shape[1]), jnp.int8)]), w)
    return out[:-1] + 128 * out[-1:]


#: The two exact CPU lowerings of the ``uint8 × int8`` product (see the module docstring).
INT8_DOT_FORMS = ("u8s8", "s8s8")
_FORM_ENV = "JAXLINEAR_INT8_DOT"


@functools.cache
def _cpu_flags() -> frozenset[str] | None:
    """The ``flags`` of ``/proc/cpuinfo``, or None where there is no such file."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_form() -> str:
    """The lowering for this host's CPU: ``JAXLINEAR_INT8_DOT`` if set, else ``"s8s8"`` on an x86
    CPU without AVX-512 VNNI (known from ``/proc/cpuinfo``), else ``"u8s8"``."""
    forced = os.environ.get(_FORM_ENV)
    if forced:
        if forced not in INT8_DOT_FORMS:
            raise ValueError(f"`{_FORM_ENV}` must be one of {INT8_DOT_FORMS}, got {forced!r}.")
        return forced
    flags = _cpu_flags()
    is_x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
    if is_x86 and flags is not None and "avx512_vnni" not in flags:
        return "s8s8"
    return "u8s8"


_u8s8_dot_p = Primitive("jaxlinear_u8s8_dot")


@_u8s8_dot_p.def_abstract_eval
def _abstract_eval(x, w):
    return ShapedArray((x.shape[0], w.shape[1]), jnp.int32)


@functools.cache
def _jitted():
    return jax.jit(_u8s8_dot_p.bind)


_u8s8_dot_p.def_impl(lambda x, w: _jitted()(x, w))


_lower_s8s8 = mlir.lower_fun(_reference, multiple_results=False)


def _lower_cpu(ctx, x, w):
    if cpu_form() == "s8s8":
        return _lower_s8s8(ctx, x, w)
    out_type = mlir.aval_to_ir_type(ctx.module_context, ctx.avals_out[0])
    dims = stablehlo.DotDimensionNumbers.get(
        lhs_batching_dimensions=[],
        rhs_batching_dimensions=[],
        lhs_contracting_dimensions=[1],
        rhs_contracting_dimensions=[0],
    )
    return [stablehlo.dot_general(out_type, x, w, dims)]


mlir.register_lowering(_u8s8_dot_p, _lower_s8s8)
mlir.register_lowering(_u8s8_dot_p, _lower_cpu, platform="cpu")


def _batch(args, dims):
    """vmap: a batched lhs joins the GEMM's rows; a batched kernel maps the GEMM over its members."""
    (x, w), (dx, dw) = args, dims
    if dw is None:
        x = jnp.moveaxis(x, dx, 0)
        b, m, k = x.shape
        out = _u8s8_dot_p.bind(x.reshape(b * m, k), w)
        return out.reshape(b, m, w.shape[1]), 0
    w = jnp.moveaxis(w, dw, 0)
    if dx is None:
        return lax.map(lambda wi: _u8s8_dot_p.bind(x, wi), w), 0
    x = jnp.moveaxis(x, dx, 0)
    return lax.map(lambda xw: _u8s8_dot_p.bind(*xw), (x, w)), 0


batching.primitive_batchers[_u8s8_dot_p] = _batch


def _check(a: Array, w: Array) -> None:
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(
            f"`a` and `w` must be matrices (m, k) and (k, n), got shapes {a.shape} and {w.shape}."
        )
    if a.dtype not in (jnp.uint8, jnp.int8) or w.dtype != jnp.int8:
        raise TypeError(f"`a` must be uint8 or int8 and `w` int8, got {a.dtype} and {w.dtype}.")


def dot_with_colsum(x: Array, w: Array) -> tuple[Array, Array]:
    """``(x @ w, Σ_k w)`` exactly in int32 for uint8 ``x`` ``(m, k)`` and int8 ``w`` ``(k, n)``.

    One GEMM: the column sums are the product of an extra row of ones.
    """
    _check(x, w)
    ones = jnp.ones((1, x.shape[1]), jnp.uint8)
    out = _u8s8_dot_p.bind(jnp.concatenate([x, ones]), w)
    return out[:-1], out[-1:]


def int8_dot(a: Array, w: Array) -> Array:
    """``a @ w`` accumulated exactly in int32, for a uint8 or int8 ``a`` ``(m, k)`` and an int8 ``w``.

    The product FBGEMM computes (uint8 activations × int8 weights), as one ``u8 × s8 → s32`` GEMM,
    which XLA CPU runs on YNNPACK (an int8 ``a`` is shifted by 128 and corrected in the same GEMM).
    Unlike ``lax.dot_general`` on int8 operands, the result never wraps, and unlike a mixed
    ``uint8 × int8`` ``dot_general`` it never becomes an int32 GEMM. ``jit``, ``vmap`` and ``grad``
    (integer inputs: zero tangents) work as for any JAX function.

    Args:
        a: ``(m, k)`` uint8 or int8.
        w: ``(k, n)`` int8.

    Returns:
        ``(m, n)`` int32, equal to ``a.astype(int64) @ w.astype(int64)`` (while it fits int32:
        ``k <= 65793``).

    Raises:
        TypeError: if the dtypes are not uint8/int8 and int8.
        ValueError: if the shapes are not ``(m, k)`` and ``(k, n)``.

    Example:
        >>> a = jnp.array([[255, 1], [0, 2]], jnp.uint8)
        >>> w = jnp.array([[127, -128], [1, 1]], jnp.int8)
        >>> int8_dot(a, w)
        Array([[ 32386, -32639],
               [     2,      2]], dtype=int32)
        >>> int8_dot(jnp.array([[-128, 1]], jnp.int8), w)
        Array([[-16255,  16385]], dtype=int32)
    """
    a, w = jnp.asarray(a), jnp.asarray(w)
    _check(a, w)
    if a.dtype == jnp.uint8:
        return _u8s8_dot_p.bind(a, w)
    prod, colsum = dot_with_colsum(lax.bitcast_convert_type(a, jnp.uint8) ^ jnp.uint8(128), w)
    return prod - 128 * colsum
