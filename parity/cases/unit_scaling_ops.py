"""``unit_scaling.functional`` (0.3.5) ops vs ``jl.scaling``: values and gradients.

Every case draws random inputs and a random cotangent, runs the real library's function with torch
autograd and the jaxlinear function with ``jax.vjp``, and compares the output and the gradient of
every floating input.

Tolerances: float32 within rtol 1e-5 / atol 1e-6 (exceptions are stated at their case); bfloat16
within :data:`BF16`: both sides round each op to bfloat16 at the same places (torch's float32
"opmath" then one rounding), but the float32 values before the rounding differ by float32 ulps
(erf/exp/tanh implementations, summation order), which can move a result across a bfloat16
rounding boundary: one bfloat16 ulp (2^-8 relative) per rounding, at most two roundings in a row.
Gradients that torch sums in bfloat16 (a broadcast operand's gradient, a weight used twice) round
partial sums in a different order than XLA, so their errors are ulps of the *largest* entry: each
bfloat16 check's atol is 2^-7 · max(1, max |reference|) (shown as the case's atol, 2^-7).
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import torch
import unit_scaling.functional as U

import jaxlinear as jl
from parity.exchange import to_array, to_tensor
from parity.harness import FP32, Case, Check, Tolerance, register

GROUP = "unit_scaling_ops"
REFERENCE = "unit_scaling.functional"
DTYPES = {"fp32": (torch.float32, jnp.float32), "bf16": (torch.bfloat16, jnp.bfloat16)}
# two bfloat16 roundings that may each land one ulp (2^-8 relative) apart; atol for values near 0
BF16 = Tolerance(rtol=2**-7, atol=2**-7)
TOLERANCES = {"fp32": FP32, "bf16": BF16}


def _vjp_checks(
    t_fn: Callable[..., torch.Tensor],
    j_fn: Callable[..., jax.Array],
    inputs: Sequence[np.ndarray],
    seed: int,
    names: Sequence[str] | None = None,
) -> list[Check]:
    """Output and the gradient of every floating input, for one random cotangent."""
    names = names or [f"arg{i}" for i in range(len(inputs))]
    diff = [np.issubdtype(np.asarray(a).dtype, np.floating) or a.dtype.name == "bfloat16"
            for a in inputs]  # fmt: skip
    ts = [to_tensor(a).requires_grad_(d) for a, d in zip(inputs, diff, strict=True)]
    yt = t_fn(*ts)
    g = np.random.default_rng(seed + 1).standard_normal(yt.shape, dtype=np.float32)
    g_t = to_tensor(g).to(yt.dtype)
    yt.backward(g_t)

    diff_idx = [i for i, d in enumerate(diff) if d]

    def f(*float_args):
        args = list(inputs)
        for i, a in zip(diff_idx, float_args, strict=True):
            args[i] = a
        return j_fn(*[jnp.asarray(a) for a in args])

    y, vjp = jax.vjp(f, *[jnp.asarray(inputs[i]) for i in diff_idx])
    if y.dtype != jnp.dtype(str(yt.dtype).replace("torch.", "")):
        raise AssertionError(f"output dtype {y.dtype}, reference {yt.dtype}")
    grads = vjp(jnp.asarray(g).astype(y.dtype))
    pairs = [("output", np.asarray(y, np.float32), to_array(yt))]
    for i, gi in zip(diff_idx, grads, strict=True):
        pairs.append((f"grad {names[i]}", np.asarray(gi, np.float32), to_array(ts[i].grad)))
    if y.dtype != jnp.bfloat16:
        return [Check(*p) for p in pairs]
    return [Check(n, got, want, _bf16_tolerance(want)) for n, got, want in pairs]


def _bf16_tolerance(want: np.ndarray) -> Tolerance:
    """:data:`BF16`, with atol in ulps of the array's largest entry (see the module docstring)."""
    top = float(np.max(np.abs(want), initial=0.0))
    return Tolerance(BF16.rtol, BF16.atol * max(1.0, top))


def _normal(seed: int, shape: tuple[int, ...], dtype: str, scale: float = 1.0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * scale
    return x.astype(DTYPES[dtype][1])


def _register(name: str, dtype: str, fn: Callable[[], list[Check]], tol: Tolerance | None = None):
    register(Case(GROUP, REFERENCE, f"{name} {dtype}", tol or TOLERANCES[dtype], fn))


# ---------------------------------------------------------------------------------------------------
# elementwise


def _elementwise_case(op: str, mult: float, constraint: str | None, dtype: str, **kw):
    x = _normal(1, (8, 33), dtype, 2.0)
    t_fn = functools.partial(getattr(U, op), mult=mult, constraint=constraint, **kw)
    j_fn = functools.partial(getattr(jl.scaling, op), mult=mult, constraint=constraint, **kw)
    return _vjp_checks(t_fn, j_fn, [x], 1, ["x"])


def _silu_glu_case(mult: float, dtype: str):
    x, gate = _normal(2, (6, 17), dtype), _normal(3, (6, 17), dtype, 2.0)
    return _vjp_checks(
        functools.partial(U.silu_glu, mult=mult),
        functools.partial(jl.scaling.silu_glu, mult=mult),
        [x, gate],
        2,
        ["x", "gate"],
    )


def _softmax_case(mult: float, constraint: str | None, axis: int, dtype: str):
    x = _normal(4, (3, 5, 11), dtype, 2.0)
    return _vjp_checks(
        lambda t: U.softmax(t, dim=axis, constraint=constraint, mult=mult),
        lambda v: jl.scaling.softmax(v, axis=axis, constraint=constraint, mult=mult),
        [x],
        4,
        ["x"],
    )


def _dropout_case(p: float, training: bool, dtype: str):
    """p = 0, eval mode, and p > 0 given torch's own mask (read from its output)."""
    x = _normal(5, (64, 32), dtype)
    torch.manual_seed(5)
    xt = to_tensor(x)
    keep = None
    if training and p > 0:  # the entries torch kept (x has no zeros)
        keep = jnp.asarray(to_array(U.dropout(xt, p, training)) != 0)
        torch.manual_seed(5)  # the same mask again inside _vjp_checks
    from jaxlinear.scaling._elementwise import _dropout

    return _vjp_checks(
        lambda t: U.dropout(t, p, training),
        lambda v: (
            _dropout(v, p, keep) if training and p > 0 else jl.scaling.dropout(v, p, training)
        ),
        [x],
        5,
        ["x"],
    )


# ---------------------------------------------------------------------------------------------------
# residual, add, matmul


def _residual_case(tau: float, dtype: str):
    """split -> (linear-like branch) -> add, and residual_apply, with the reference's tau."""
    x = _normal(6, (4, 16), dtype)
    w = _normal(7, (16, 16), dtype, 0.25)

    def t_fn(xt, wt):
        r, s = U.residual_split(xt, tau)
        a = U.residual_add(torch.tanh(r @ wt), s, tau)
        b = U.residual_apply(lambda v: torch.tanh(v @ wt), xt, tau)
        return torch.stack([a, b])

    def j_fn(xv, wv):
        from jaxlinear.scaling._opmath import in_opmath

        branch = lambda v: in_opmath(
            jnp.tanh, jnp.matmul(v, wv, preferred_element_type=jnp.float32).astype(v.dtype)
        )  # noqa: E501
        r, s = jl.scaling.residual_split(xv, tau)
        a = jl.scaling.residual_add(branch(r), s, tau)
        b = jl.scaling.residual_apply(branch, xv, tau)
        return jnp.stack([a, b])

    return _vjp_checks(t_fn, j_fn, [x, w], 6, ["x", "w"])


def _add_case(shapes, constraint: str | None, dtype: str):
    a, b = _normal(8, shapes[0], dtype), _normal(9, shapes[1], dtype)
    return _vjp_checks(
        lambda l, r: U.add(l, r, constraint=constraint),
        lambda l, r: jl.scaling.add(l, r, constraint=constraint),
        [a, b],
        8,
        ["left", "right"],
    )


def _add_scalar_case(dtype: str):
    a = _normal(10, (3, 4), dtype)
    return _vjp_checks(lambda t: U.add(t, 2.5), lambda v: jl.scaling.add(v, 2.5), [a], 10, ["x"])


def _matmul_case(shapes, constraint: str | None, dtype: str):
    a, b = _normal(11, shapes[0], dtype), _normal(12, shapes[1], dtype)
    return _vjp_checks(
        lambda l, r: U.matmul(l, r, constraint=constraint),
        lambda l, r: jl.scaling.matmul(l, r, constraint=constraint),
        [a, b],
        11,
        ["left", "right"],
    )


# ---------------------------------------------------------------------------------------------------
# norms, embedding, attention


def _layer_norm_case(affine: bool, dtype: str):
    x = _normal(13, (3, 4, 24), dtype, 3.0) + np.asarray(1.5, DTYPES[dtype][1])
    w, b = _normal(14, (24,), dtype), _normal(15, (24,), dtype)
    if affine:
        return _vjp_checks(
            lambda t, wt, bt: U.layer_norm(t, (24,), wt, bt),
            lambda v, wv, bv: jl.scaling.layer_norm(v, (24,), wv, bv),
            [x, w, b],
            13,
            ["x", "weight", "bias"],
        )
    return _vjp_checks(
        lambda t: U.layer_norm(t, [4, 24]), lambda v: jl.scaling.layer_norm(v, [4, 24]), [x], 13
    )


def _rms_norm_case(affine: bool, dtype: str):
    x = _normal(16, (5, 2, 12), dtype, 3.0)
    w = _normal(17, (2, 12), dtype)
    if affine:
        return _vjp_checks(
            lambda t, wt: U.rms_norm(t, (2, 12), wt),
            lambda v, wv: jl.scaling.rms_norm(v, (2, 12), wv),
            [x, w],
            16,
            ["x", "weight"],
        )
    return _vjp_checks(
        lambda t: U.rms_norm(t, (12,)), lambda v: jl.scaling.rms_norm(v, (12,)), [x], 16, ["x"]
    )


def _embedding_case(padding_idx: int | None, dtype: str):
    idx = np.random.default_rng(18).integers(0, 20, (4, 7))
    w = _normal(19, (20, 8), dtype)
    return _vjp_checks(
        lambda i, wt: U.embedding(i, wt, padding_idx=padding_idx),
        lambda i, wv: jl.scaling.embedding(i, wv, padding_idx=padding_idx),
        [idx, w],
        18,
        ["indices", "weight"],
    )


def _sdpa_case(causal: bool, mult: float, mask: str | None, dtype: str):
    q, k = _normal(20, (2, 3, 6, 8), dtype), _normal(21, (2, 3, 9, 8), dtype)
    v = _normal(22, (2, 3, 9, 5), dtype)
    m = None
    if mask == "bool":
        m = np.random.default_rng(23).random((6, 9)) > 0.3
        m[:, 0] = True  # every row attends somewhere
    elif mask == "float":
        m = _normal(23, (3, 6, 9), "fp32")
    mt = None if m is None else torch.from_numpy(m)
    return _vjp_checks(
        lambda a, b, c: U.scaled_dot_product_attention(a, b, c, mt, is_causal=causal, mult=mult),
        lambda a, b, c: jl.scaling.scaled_dot_product_attention(
            a, b, c, None if m is None else jnp.asarray(m), is_causal=causal, mult=mult
        ),
        [q, k, v],
        20,
        ["query", "key", "value"],
    )


# ---------------------------------------------------------------------------------------------------
# losses


def _mse_case(reduction: str, dtype: str):
    x, t = _normal(24, (6, 10), dtype), _normal(25, (6, 10), dtype)
    return _vjp_checks(
        lambda a, b: U.mse_loss(a, b, reduction=reduction),
        lambda a, b: jl.scaling.mse_loss(a, b, reduction=reduction),
        [x, t],
        24,
        ["x", "target"],
    )


def _cross_entropy_case(variant: str, dtype: str):
    rng = np.random.default_rng(26)
    x = _normal(26, (12, 10), dtype, 2.0)
    target = rng.integers(0, 10, (12,))
    kw: dict = {}
    if variant == "ignore":
        target[[1, 5]] = -100
    elif variant == "mult":
        kw["mult"] = 2.5
    elif variant == "sum":
        kw["reduction"] = "sum"
    elif variant == "1d":
        x, target = x[0], target[0]
    elif variant == "probs":
        p = rng.random((12, 10)).astype(np.float32)
        target = (p / p.sum(-1, keepdims=True)).astype(DTYPES[dtype][1])
    t_fn = functools.partial(U.cross_entropy, **kw)
    j_fn = functools.partial(jl.scaling.cross_entropy, **kw)
    checks = _vjp_checks(t_fn, j_fn, [x, np.asarray(target)], 26, ["logits", "target"])
    return [c for c in checks if c.name != "grad target"]  # torch gives no grad to a target


# ---------------------------------------------------------------------------------------------------


def _register_all() -> None:
    for dtype in DTYPES:
        for op in ("gelu", "silu"):
            for mult in (1.0, 0.25, 4.0):
                for constraint in ("to_output_scale", None, "gmean", "to_grad_input_scale"):
                    if mult != 1.0 and constraint not in ("to_output_scale", None):
                        continue
                    name = f"{op} mult={mult} constraint={constraint}"
                    fn = functools.partial(_elementwise_case, op, mult, constraint, dtype)
                    _register(name, dtype, fn)
        for mult in (1.0, 0.5):
            # fp32 tanh-gelu gradients: torch's fp32 formula differs from JAX autodiff of the same
            # expression by up to ~1e-5 absolute on inputs of std 2 (torch fp32 vs fp64 differ by
            # ~3e-5 relative; measured), so this case has atol 2e-5
            tol = Tolerance(1e-5, 2e-5) if dtype == "fp32" else None
            fn = functools.partial(_elementwise_case, "gelu", mult, None, dtype, approximate="tanh")
            _register(f"gelu tanh mult={mult}", dtype, fn, tol)
        for mult in (1.0, 0.5, 3.0):
            _register(
                f"silu_glu mult={mult}", dtype, functools.partial(_silu_glu_case, mult, dtype)
            )
        for mult, constraint, axis in [
            (1.0, "to_output_scale", -1),
            (0.25, None, -1),
            (4.0, "gmean", 1),
            (1.0, "to_grad_input_scale", 0),
        ]:
            name = f"softmax mult={mult} constraint={constraint} axis={axis}"
            _register(name, dtype, functools.partial(_softmax_case, mult, constraint, axis, dtype))
        for p, training in [(0.0, True), (0.3, False), (0.5, True), (0.1, True), (1.0, True)]:
            name = f"dropout p={p} training={training}"
            _register(name, dtype, functools.partial(_dropout_case, p, training, dtype))
        for tau in (1.0, 0.2, 3.0, 0.0):
            _register(f"residual split/add/apply tau={tau}", dtype,
                      functools.partial(_residual_case, tau, dtype))  # fmt: skip
        for shapes in [((4, 6), (4, 6)), ((3, 4, 6), (6,)), ((5, 1), (1, 7)), ((1,), (3, 4))]:
            for constraint in ("to_output_scale", None, "gmean", "to_left_grad_scale",
                               "to_right_grad_scale"):  # fmt: skip
                name = f"add {shapes[0]}+{shapes[1]} constraint={constraint}".replace(", ", "x")
                fn = functools.partial(_add_case, shapes, constraint, dtype)
                _register(name.replace(",", ""), dtype, fn)
        _register("add python scalar", dtype, functools.partial(_add_scalar_case, dtype))
        for shapes in [((5, 12), (12, 7)), ((2, 3, 5, 12), (12, 7)), ((2, 1, 4, 6), (3, 6, 5))]:
            for constraint in ("to_output_scale", None, "hmean", "to_left_grad_scale",
                               "to_right_grad_scale"):  # fmt: skip
                name = f"matmul {shapes[0]}@{shapes[1]} constraint={constraint}"
                name = name.replace(", ", "x").replace(",", "")
                _register(name, dtype, functools.partial(_matmul_case, shapes, constraint, dtype))
        for affine in (True, False):
            _register(f"layer_norm affine={affine}", dtype,
                      functools.partial(_layer_norm_case, affine, dtype))  # fmt: skip
            _register(f"rms_norm affine={affine}", dtype,
                      functools.partial(_rms_norm_case, affine, dtype))  # fmt: skip
        for padding_idx in (None, 3, -2):
            _register(f"embedding padding_idx={padding_idx}", dtype,
                      functools.partial(_embedding_case, padding_idx, dtype))  # fmt: skip
        for causal, mult, mask in [(False, 1.0, None), (True, 1.0, None), (False, 4.0, "bool"),
                                   (False, 0.5, "float")]:  # fmt: skip
            name = f"scaled_dot_product_attention causal={causal} mult={mult} mask={mask}"
            _register(name, dtype, functools.partial(_sdpa_case, causal, mult, mask, dtype))
        for reduction in ("mean", "sum"):
            _register(
                f"mse_loss {reduction}", dtype, functools.partial(_mse_case, reduction, dtype)
            )
        for variant in ("mean", "sum", "ignore", "mult", "1d", "probs"):
            _register(f"cross_entropy {variant}", dtype,
                      functools.partial(_cross_entropy_case, variant, dtype))  # fmt: skip


_register_all()
