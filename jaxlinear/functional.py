"""Pure linear maps: ``linear`` (torch.nn.Linear) and ``nlinear`` (delu.nn.NLinear).

Kernels use the JAX layout ``(in, out)`` (``(*n, in, out)`` for ``nlinear``). Half-precision inputs
(bfloat16, float16) accumulate in float32. ``linear`` adds the bias in float32 and rounds once, as
torch's ``addmm`` does; ``nlinear`` rounds the product, then adds the bias (in float32, rounding
again), as delu's ``x @ W + b`` does.
"""

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxlinear._checks import (
    check_choice,
    check_dim,
    check_floating_array,
    check_min_ndim,
    check_shape,
    check_trailing_shape,
)
from jaxlinear._typing import Array, DotGeneralT, PrecisionLike

__all__ = [
    "NLINEAR_LAYOUTS",
    "linear",
    "linear_dot_general",
    "matmul_tn",
    "nlinear",
    "nlinear_dot_general",
]


def _check_operands(
    x: Array, kernel: Array, bias: Array | None
) -> tuple[Array, Array, Array | None]:
    """Arrays (array-likes converted); x and the kernel of one floating dtype, a floating bias."""
    x, kernel = jnp.asarray(x), jnp.asarray(kernel)
    check_floating_array("x", x)
    check_floating_array("kernel", kernel)
    if kernel.dtype != x.dtype:
        raise TypeError(
            f"`kernel` must have the dtype of `x` ({x.dtype}), got {kernel.dtype} (promote the "
            "operands first, as the layers do)."
        )
    for d in kernel.shape:
        check_dim("kernel.shape", d)
    if bias is not None:
        bias = jnp.asarray(bias)
        check_floating_array("bias", bias)
    return x, kernel, bias


def _accumulation_dtype(dtype: jnp.dtype) -> jnp.dtype | None:
    """float32 for half-precision operands (one rounding at the end), else the operands' dtype."""
    return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else None


def _dims(ndim: int, lhs_contract: int) -> tuple:
    """dot_general dimension numbers of ``(*n, ., .) x (*n, in, out)`` with ``n`` as batch dims."""
    batch = tuple(range(ndim - 2))
    return (((lhs_contract,), (ndim - 2,)), (batch, batch))


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _matmul(
    x: Array, kernel: Array, precision: PrecisionLike, out_dtype: jnp.dtype | None
) -> Array:
    """``(*n, B, in) @ (*n, in, out)``, differentiated so that every fwd+bwd matmul takes the fast path.

    Plain autodiff gives the kernel gradient as ``dot(x, g)`` contracting the batch dim ``B`` of both
    operands, which XLA CPU runs on its generic (Eigen) dot: YNNPACK takes only a left operand that
    contracts its last dim. The tangent below contracts an explicitly transposed copy of ``x``
    (``(*n, in, B)``, kept by an optimization barrier so that XLA does not fold the transpose back
    into the dot), so the transpose of the tangent -- the kernel gradient ``x.T @ g`` -- is a plain
    ``(*n, in, B) @ (*n, B, out)`` matmul. A tall float32 ``x`` (no ``n``, ``B >= 32 * max(in, out)``,
    :func:`_kernel_grad_in_place`) contracts ``B`` in place instead: there the copy costs more than it
    saves. Forward mode (``jax.jvp``, ``jacfwd``) keeps working: the rule is an ordinary linear
    tangent, and the values are those of ``x @ kernel``.
    """
    dims = _dims(x.ndim, x.ndim - 1)
    return lax.dot_general(x, kernel, dims, precision=precision, preferred_element_type=out_dtype)


def _transposed(x: Array) -> Array:
    """``x`` with its last two dims swapped; on CPU a materialized copy, elsewhere a plain transpose.

    XLA CPU runs a dot that contracts the left operand's leading dim on its generic (Eigen) path, so on
    CPU the transpose is kept as a copy (an optimization barrier stops XLA from folding it back into the
    dot) and the product becomes a plain matmul that YNNPACK takes. GPU and TPU dots take any layout,
    and a barrier there could only block fusion, so other platforms get the plain transpose (selected
    when the program is lowered: ``lax.platform_dependent``).
    """
    return lax.platform_dependent(
        x,
        cpu=lambda x: lax.optimization_barrier(jnp.swapaxes(x, -1, -2)),
        default=lambda x: jnp.swapaxes(x, -1, -2),
    )


#: A tall product's kernel gradient (``batch >= 32 * max(in, out)``, both feature dims >= 128)
#: contracts the batch dim in place: see :func:`_kernel_grad_in_place`.
_IN_PLACE_BATCH_RATIO = 32
_IN_PLACE_MIN_FEATURES = 128


def _kernel_grad_in_place(batch: int, n_in: int, n_out: int) -> bool:
    """Whether the kernel gradient ``x.T @ g`` of ``(batch, in) @ (in, out)`` skips the transposed copy.

    The copy of ``x`` moves ``batch * in`` elements through XLA's transpose emitter (about twice the
    CPU time of a plain copy of the same bytes) for ``batch * in * out`` multiply-adds: for a tall
    ``x`` with few features it is a large share of the kernel gradient, and XLA's in-place dot, which
    needs no copy, makes the whole fwd+bwd faster. ``jl.Linear`` fwd+bwd in place / copied, measured
    interleaved in one process on a loaded AVX-512 host: 0.78-0.94 (emulated AVX2) and 0.89-0.90
    (AVX-512) at ``b16384 128->128`` and ``b8192 256->256``; the plain products gave 0.94-1.07 at
    ``batch <= 16 * max(in, out)`` and 1.12-1.22 at ``b4096 64->64``, which keep the copy; on a quiet
    Zen 4 the tall cases measured 0.98-1.06 (neutral), so the gain is the loaded or smaller-cache
    host's (``benchmarks/RESULTS.md``, issue 27). Chosen from the
    static shapes alone, so a shape compiles to the same program (and rounds alike) on every host.
    Only float32 products take it (the half-precision paths were not measured).
    """
    return (
        batch >= _IN_PLACE_BATCH_RATIO * max(n_in, n_out)
        and min(n_in, n_out) >= _IN_PLACE_MIN_FEATURES
    )


@functools.partial(_matmul.defjvp, symbolic_zeros=True)
def _matmul_jvp(precision, out_dtype, primals, tangents):
    x, kernel = primals
    dx, dkernel = tangents
    y = _matmul(x, kernel, precision, out_dtype)
    dy = jnp.zeros_like(y)
    if not isinstance(dx, SymbolicZero):
        dims = _dims(x.ndim, x.ndim - 1)
        dy = dy + lax.dot_general(
            dx, kernel, dims, precision=precision, preferred_element_type=out_dtype
        )
    if not isinstance(dkernel, SymbolicZero):
        if (
            x.ndim == 2
            and x.dtype == jnp.float32
            and _kernel_grad_in_place(x.shape[0], x.shape[1], kernel.shape[-1])
        ):
            lhs, dims = x, _dims(2, 1)  # the kernel gradient contracts x's batch dim in place
        else:
            lhs, dims = _transposed(x), _dims(x.ndim, x.ndim - 2)  # (*n, in, B), copied on CPU
        dy = dy + lax.dot_general(
            lhs, dkernel, dims, precision=precision, preferred_element_type=out_dtype
        )
    return y, dy


def matmul_tn(a: Array, b: Array, *, precision: PrecisionLike = None) -> Array:
    """``a.T @ b`` for ``a`` ``(B, m)`` and ``b`` ``(B, n)``: a weight gradient, in XLA's fast layout.

    ``dot_general`` contracting both operands' first dim runs on XLA CPU's generic dot; on CPU this makes
    one transposed copy of ``a`` (kept by an optimization barrier, which XLA would otherwise fold back
    into the dot) so that the product is a plain ``(m, B) @ (B, n)`` matmul, which YNNPACK takes; on
    GPU and TPU it is XLA's plain dot of the transpose. A tall float32 ``a`` (``B >= 32 * max(m, n)``,
    ``m, n >= 128``) is contracted in place (no copy) on every platform. It is what
    the backward passes of :func:`linear` and :func:`nlinear` compute; custom backward passes (unit
    scaling) use it too.

    Args:
        a: ``(B, m)``.
        b: ``(B, n)``.
        precision: passed to ``lax.dot_general``.

    Returns:
        ``(m, n)``.

    Example:
        >>> a, b = jnp.ones((4, 2)), jnp.ones((4, 3))
        >>> matmul_tn(a, b).tolist()
        [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]

    Raises:
        ValueError: unless ``a`` and ``b`` are 2-D with the same first dim.
    """
    for name, v in (("a", a), ("b", b)):
        if jnp.ndim(v) != 2:
            raise ValueError(f"`{name}` must be 2-D (B, m), got shape {jnp.shape(v)}.")
    if jnp.shape(a)[0] != jnp.shape(b)[0]:
        raise ValueError(
            f"`b` must have the first dim of `a` (B), got shapes {jnp.shape(a)} and {jnp.shape(b)}."
        )
    (batch, m), n = jnp.shape(a), jnp.shape(b)[1]
    if jnp.result_type(a, b) == jnp.float32 and _kernel_grad_in_place(batch, m, n):
        return lax.dot_general(a, b, (((0,), (0,)), ((), ())), precision=precision)
    at = _transposed(a)
    return lax.dot_general(at, b, (((1,), (0,)), ((), ())), precision=precision)


def linear(
    x: Array, kernel: Array, bias: Array | None = None, *, precision: PrecisionLike = None
) -> Array:
    """``x @ kernel + bias`` over any leading dims: ``(..., in) -> (..., out)``.

    Args:
        x: input of shape ``(..., in)``; 1-D input gives 1-D output.
        kernel: ``(in, out)``, the transpose of ``torch.nn.Linear.weight``.
        bias: ``(out,)`` or None.
        precision: passed to ``lax.dot_general``.

    Returns:
        ``(..., out)`` in the dtype of ``x`` (``kernel`` must share it; modules promote first; the
        bias may be any floating dtype: it is added in the accumulation dtype).

    Raises:
        TypeError: for non-floating operands or a kernel of another dtype than ``x``.
        ValueError: for shapes that do not fit (no broadcasting) or a dimension above ``2**31 - 1``.

    Example:
        >>> x = jnp.ones((2, 3)); k = jnp.ones((3, 4)); b = jnp.ones((4,))
        >>> linear(x, k, b)
        Array([[4., 4., 4., 4.],
               [4., 4., 4., 4.]], dtype=float32)
    """
    x, kernel, bias = _check_operands(x, kernel, bias)
    check_min_ndim("x", x, 1, "(..., in_features)")
    if kernel.ndim != 2:
        raise ValueError(
            f"`kernel` must have shape (in_features, out_features), got {kernel.shape}."
        )
    check_trailing_shape("x", x, kernel.shape[:1], "(..., in_features) matching `kernel`")
    if bias is not None:
        check_shape("bias", bias, kernel.shape[1:])
    batch_shape, n_in = x.shape[:-1], x.shape[-1]
    y = _matmul(
        x.reshape(math.prod(batch_shape), n_in),
        kernel,
        precision,
        _accumulation_dtype(x.dtype),
    ).reshape(*batch_shape, kernel.shape[1])
    if bias is not None:
        # inside the accumulation dtype: one rounding, as addmm; explicit rank (no rank promotion)
        y = y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))
    return y.astype(x.dtype)


#: The ``layout`` values of :func:`nlinear`, ``"batch_major"`` (delu's ``(..., *n, in)``) and
#: ``"member_major"`` (``(*n, ..., in)``).
NLINEAR_LAYOUTS = ("batch_major", "member_major")


def nlinear(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    *,
    precision: PrecisionLike = None,
    layout: str = "batch_major",
) -> Array:
    """N independent linear maps in one batched op: ``(..., *n, in) -> (..., *n, out)``.

    ``y[..., i, :] = x[..., i, :] @ kernel[i] + bias[i]`` for every index ``i`` of ``n``. With
    ``layout="member_major"`` the member dims come first instead: ``(*n, ..., in) -> (*n, ..., out)``,
    the layout a model that keeps its ensemble member-major uses; it needs no transposed copies of
    the input, the output or their gradients (the batch-major layout makes up to four), so it is the
    faster one. Both give the same values. How the ``n`` products are computed (one batched dot, ``n``
    2-D matmuls, or a plain ``dot_general`` for few output features) is chosen from the static shape
    alone, the same on every host; every choice has the same derivatives (forward and reverse mode).

    Args:
        x: ``(..., *n, in)`` (``(*n, ..., in)`` member-major): the dims next to the batch dims must
            equal ``kernel.shape[:-1]`` exactly.
        kernel: ``(*n, in, out)``, the layout of ``delu.nn.NLinear.weight`` (no transpose).
        bias: ``(*n, out)`` or None.
        precision: passed to ``lax.dot_general``.
        layout: ``"batch_major"`` (delu's) or ``"member_major"``.

    Returns:
        ``(..., *n, out)`` (``(*n, ..., out)`` member-major) in the dtype of ``x``.

    Raises:
        TypeError: for non-floating operands or a kernel of another dtype than ``x``.
        ValueError: for a kernel of fewer than 3 dims, shapes that do not match it (no
            broadcasting), a dimension above ``2**31 - 1``, or an unknown ``layout``.

    Example:
        >>> x = jnp.ones((5, 2, 3)); k = jnp.ones((2, 3, 4)); b = jnp.zeros((2, 4))
        >>> nlinear(x, k, b).shape
        (5, 2, 4)
        >>> nlinear(jnp.ones((2, 5, 3)), k, b, layout="member_major").shape
        (2, 5, 4)
    """
    check_choice("layout", layout, NLINEAR_LAYOUTS)
    x, kernel, bias = _check_operands(x, kernel, bias)
    if kernel.ndim < 3:
        raise ValueError(
            f"`kernel` must have shape (*n, in_features, out_features), got {kernel.shape}."
        )
    n_shape, (n_in, n_out) = kernel.shape[:-2], kernel.shape[-2:]
    if bias is not None:
        check_shape("bias", bias, (*n_shape, n_out))
    if layout == "member_major":
        check_min_ndim("x", x, len(n_shape) + 1, f"(*n, ..., in_features) with n={n_shape}")
        if tuple(x.shape[: len(n_shape)]) != tuple(n_shape) or x.shape[-1] != n_in:
            raise ValueError(
                f"`x` must have shape (*n, ..., in_features) = ({', '.join(map(str, n_shape))}, ..., "
                f"{n_in}) matching `kernel`, got shape {x.shape}."
            )
    else:
        check_trailing_shape("x", x, kernel.shape[:-1], "(..., *n, in_features) matching `kernel`")
    return _nlinear(x, kernel, bias, precision, layout, None)


def _nlinear(
    x: Array,
    kernel: Array,
    bias: Array | None,
    precision: PrecisionLike,
    layout: str,
    form: str | None,
) -> Array:
    """:func:`nlinear` on checked operands, with the product formulation ``form`` (None: the rule)."""
    n_shape, (n_in, n_out) = kernel.shape[:-2], kernel.shape[-2:]
    n = math.prod(n_shape)
    if layout == "member_major":
        batch_shape = x.shape[len(n_shape) : -1]
        x3 = x.reshape(n, math.prod(batch_shape), n_in)  # free: already (n, B, in)
    else:
        batch_shape = x.shape[: x.ndim - len(n_shape) - 1]
        x3 = x.reshape(math.prod(batch_shape), n, n_in)
    k3 = kernel.reshape(n, n_in, n_out)
    if form is None:
        batch = x3.shape[1] if layout == "member_major" else x3.shape[0]
        form = _nlinear_form(batch, n, n_in, n_out, layout)
    y = _NLINEAR_FORMS[form](x3, k3, precision, _accumulation_dtype(x.dtype), layout)
    # y: (n, B, out) member-major, (B, n, out) batch-major
    if bias is not None:
        # delu's `x @ W + b`: round the product to the input dtype, then add in float32 and round
        # again (torch's half-precision add); the bias gradient is then also summed in float32.
        b3 = bias.reshape(n, 1, n_out) if layout == "member_major" else bias.reshape(1, n, n_out)
        y = y.astype(x.dtype).astype(y.dtype) + b3.astype(y.dtype)
    y = y.astype(x.dtype)
    if layout == "member_major":
        return y.reshape(*n_shape, *batch_shape, n_out)
    return y.reshape(*batch_shape, *n_shape, n_out)


#: Above this many members the "unrolled" form is not used (program size and compile time).
_UNROLL_MAX_MEMBERS = 32
#: Up to this many output features the kernel gradient is a matrix-vector-like product: plain
#: autodiff ("dot_general") contracts x where it is, instead of a transposed copy of x.
_GEMV_MAX_OUT = 8


def _nlinear_form(batch: int, n: int, n_in: int, n_out: int, layout: str) -> str:
    """The product formulation of :func:`nlinear` for these static sizes.

    A function of the shape only (never of the host's ISA), so a shape compiles to the same program
    on every host. Chosen from interleaved A/B timings of the forms against delu on AVX-512 and on
    emulated AVX2 (``python -m benchmarks.nlinear_ab``; the table is in ``benchmarks/RESULTS.md``,
    "NLinear: the product formulation per shape"):

    - ``n_out <= 8``: "dot_general" -- the kernel gradient is matrix-vector-like and memory-bound;
      the batched form's transposed copy of ``x`` for it costs more than the product.
    - ``n <= 32``: "unrolled" -- the forward as ``n`` 2-D matmuls (CPU), derivatives batched.
    - otherwise: "batched" -- one batched dot.
    """
    del batch, n_in, layout  # measured: the choice did not depend on them on the grid
    if n_out <= _GEMV_MAX_OUT:
        return "dot_general"
    if 0 < n <= _UNROLL_MAX_MEMBERS:
        return "unrolled"
    return "batched"


def _form_batched(
    x3: Array, k3: Array, precision: PrecisionLike, out_dtype: jnp.dtype | None, layout: str
) -> Array:
    """One batched dot with ``n`` as batch dim; batch-major input is moved to ``(n, B, in)`` first.

    The explicit move (rather than letting dot_general take ``n`` as x's second dim) makes XLA CPU
    transpose the cotangent once for both dx and dW instead of twice.
    """
    if layout == "member_major":
        return _matmul(x3, k3, precision, out_dtype)
    y = _matmul(jnp.swapaxes(x3, 0, 1), k3, precision, out_dtype)
    return jnp.swapaxes(y, 0, 1)


def _form_dot_general(
    x3: Array, k3: Array, precision: PrecisionLike, out_dtype: jnp.dtype | None, layout: str
) -> Array:
    """``lax.dot_general`` taking ``n`` where it is, plain autodiff."""
    bdim = 0 if layout == "member_major" else 1
    y = lax.dot_general(
        x3,
        k3,
        (((2,), (1,)), ((bdim,), (0,))),
        precision=precision,
        preferred_element_type=out_dtype,
    )  # (n, B, out)
    return y if layout == "member_major" else jnp.swapaxes(y, 0, 1)


def _stacked_dots(
    x3: Array, k3: Array, precision: PrecisionLike, out_dtype: jnp.dtype | None, layout: str
) -> Array:
    """``n`` plain 2-D matmuls ``x_i @ k_i``, one per member, stacked in ``layout``."""
    axis = 0 if layout == "member_major" else 1
    dims = (((1,), (0,)), ((), ()))
    parts = [
        lax.dot_general(
            lax.index_in_dim(x3, i, axis, keepdims=False),
            k3[i],
            dims,
            precision=precision,
            preferred_element_type=out_dtype,
        )
        for i in range(k3.shape[0])
    ]
    return jnp.stack(parts, axis=axis)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _form_unrolled(
    x3: Array, k3: Array, precision: PrecisionLike, out_dtype: jnp.dtype | None, layout: str
) -> Array:
    """The forward as ``n`` 2-D matmuls (on CPU), the derivatives as :func:`_form_batched`'s.

    XLA CPU runs a 2-D matmul faster than the same member as one slice of a batched dot for the
    shapes of the rule in :func:`_nlinear_form` (``benchmarks/RESULTS.md``), and the batch-major
    input needs no transposed copy (each member's slice is one copy, as the transposed copy was).
    The tangent (and so the backward pass) is the batched one: differentiating the unrolled dots
    would give ``n`` zero-padded slice gradients. Other platforms run the batched dot.
    """
    return lax.platform_dependent(
        x3,
        k3,
        cpu=lambda x3, k3: _stacked_dots(x3, k3, precision, out_dtype, layout),
        default=lambda x3, k3: _form_batched(x3, k3, precision, out_dtype, layout),
    )


@functools.partial(_form_unrolled.defjvp, symbolic_zeros=True)
def _form_unrolled_jvp(
    precision: PrecisionLike,
    out_dtype: jnp.dtype | None,
    layout: str,
    primals: tuple[Array, Array],
    tangents: tuple,
) -> tuple[Array, Array]:
    x3, k3 = primals
    dx, dk = tangents
    y = _form_unrolled(x3, k3, precision, out_dtype, layout)
    dy = jnp.zeros_like(y)

    def swap(a: Array) -> Array:  # (B, n, .) <-> (n, B, .) for batch-major operands
        return a if layout == "member_major" else jnp.swapaxes(a, 0, 1)

    if not isinstance(dx, SymbolicZero):
        dims = _dims(3, 2)
        dy = dy + swap(
            lax.dot_general(
                swap(dx), k3, dims, precision=precision, preferred_element_type=out_dtype
            )
        )
    if not isinstance(dk, SymbolicZero):
        xt = _transposed(swap(x3))  # (n, in, B), as in _matmul_jvp
        dims = _dims(3, 1)
        dy = dy + swap(
            lax.dot_general(xt, dk, dims, precision=precision, preferred_element_type=out_dtype)
        )
    return y, dy


#: The product formulations the rule (:func:`_nlinear_form`) picks from: ``f(x3, k3, precision,
#: out_dtype, layout)`` with ``x3`` ``(B, n, in)`` (``(n, B, in)`` member-major) and ``k3``
#: ``(n, in, out)``, returning ``(B, n, out)`` (``(n, B, out)``) without the bias.
_NLINEAR_FORMS = {
    "batched": _form_batched,
    "dot_general": _form_dot_general,
    "unrolled": _form_unrolled,
}


def _check_dot(dot_general: object) -> None:
    """Raise ``TypeError`` unless ``dot_general`` is callable (here it is required: None is not one)."""
    if not callable(dot_general):
        raise TypeError(
            "`dot_general` must be a function with `jax.lax.dot_general`'s signature, got "
            f"{type(dot_general).__name__} {dot_general!r}."
        )


def _add_bias(y: Array, bias: Array | None, shape: tuple[int, ...]) -> Array:
    """``y + bias`` with ``bias`` reshaped to ``shape`` (explicit rank: no rank promotion)."""
    return y if bias is None else y + jnp.reshape(bias, shape)


def linear_dot_general(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    *,
    dot_general: DotGeneralT,
    precision: PrecisionLike = None,
) -> Array:
    """``x @ kernel + bias`` with a given dot product function, as Flax's ``nn.Dense`` computes it.

    ``dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())), precision=precision)``, then the bias
    added in the product's dtype: the layers' path for an injected ``dot_general`` (quantized or
    instrumented products, ``lax.dot_general`` with ``preferred_element_type`` ...). Differentiated by
    autodiff through ``dot_general`` (no custom gradient, unlike :func:`linear`); the output dtype is
    the product's.

    Args:
        x: ``(..., in)``.
        kernel: ``(in, out)``.
        bias: ``(out,)`` or None.
        dot_general: a function with ``jax.lax.dot_general``'s signature.
        precision: passed to ``dot_general``.

    Returns:
        ``(..., out)``.

    Raises:
        TypeError: if ``dot_general`` is not callable.

    Example:
        >>> from jax import lax
        >>> linear_dot_general(jnp.ones((2, 3)), jnp.ones((3, 4)), dot_general=lax.dot_general).shape
        (2, 4)
    """
    _check_dot(dot_general)
    y = dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())), precision=precision)
    return _add_bias(y, bias, (1,) * (y.ndim - 1) + (-1,))


def nlinear_dot_general(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    *,
    dot_general: DotGeneralT,
    precision: PrecisionLike = None,
    layout: str = "batch_major",
) -> Array:
    """:func:`nlinear` with a given dot product function: the member dims ``n`` are its batch dims.

    ``dot_general(x, kernel, ((in of x, in of kernel), (n of x, n of kernel)), precision=precision)``
    gives ``(*n, ..., out)``, moved to ``(..., *n, out)`` for the batch-major layout; the bias is added
    in the product's dtype. Differentiated by autodiff through ``dot_general``.

    Args:
        x: ``(..., *n, in)`` (``(*n, ..., in)`` member-major).
        kernel: ``(*n, in, out)``.
        bias: ``(*n, out)`` or None.
        dot_general: a function with ``jax.lax.dot_general``'s signature.
        precision: passed to ``dot_general``.
        layout: ``"batch_major"`` or ``"member_major"``.

    Returns:
        ``(..., *n, out)`` (``(*n, ..., out)`` member-major).

    Raises:
        TypeError: if ``dot_general`` is not callable.
        ValueError: for an unknown ``layout``.

    Example:
        >>> from jax import lax
        >>> k = jnp.ones((2, 3, 4))
        >>> nlinear_dot_general(jnp.ones((5, 2, 3)), k, dot_general=lax.dot_general).shape
        (5, 2, 4)
    """
    _check_dot(dot_general)
    check_choice("layout", layout, NLINEAR_LAYOUTS)
    members = kernel.ndim - 2
    first = 0 if layout == "member_major" else x.ndim - 1 - members
    lhs_batch = tuple(range(first, first + members))
    dims = (((x.ndim - 1,), (members,)), (lhs_batch, tuple(range(members))))
    y = dot_general(x, kernel, dims, precision=precision)  # (*n, ..., out)
    if layout == "batch_major":
        y = jnp.moveaxis(y, tuple(range(members)), tuple(range(first, first + members)))
        return _add_bias(y, bias, (1,) * first + tuple(kernel.shape[:-2]) + (-1,))
    return _add_bias(y, bias, tuple(kernel.shape[:-2]) + (1,) * (y.ndim - members - 1) + (-1,))
