"""Interleaved A/B of NLinear formulations against delu, one process: ``python -m benchmarks.nlinear_ab``.

Not a ``benchmarks()`` group (``python -m benchmarks`` skips it): the tool that chose the per-shape
rule of :func:`jaxlinear.functional.nlinear` (``benchmarks/RESULTS.md``, "NLinear per shape").
``--isa avx2`` re-runs it with every kernel library capped to AVX2 (emulated, see ``host_isa.py``).
Each round times every candidate (and delu) once, as the median of ``--repeats`` calls; the
reported time is the median over ``--rounds`` rounds, with the min-max of the per-round ratios to delu.
"""

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from delu.nn import NLinear as DeluNLinear
from jax import lax

from benchmarks.host_isa import AVX2_ENV, MARKER, XLA_AVX2_FLAG, cap_ynnpack, isa
from jaxlinear import functional

SINGLE = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
STAT = ["median"]
#: wall time, or (``--clock cpu``, meant with ``--threads 1``) the process's CPU time: under load
#: from other processes it counts only this process's own work.
CLOCK = [time.perf_counter]
GRID = [
    (1024, 8, 64, 64),
    (256, 32, 256, 256),
    (4096, 4, 32, 32),
    (256, 32, 64, 64),
    (1024, 32, 16, 16),
    (64, 16, 512, 512),
]


# Formulations measured and rejected (benchmarks/RESULTS.md, "NLinear: the product formulation per
# shape"), kept here so that the table can be re-measured: same signature as functional's forms.


def _form_conv(x3, k3, precision, out_dtype, layout):
    """A grouped 1x1 convolution (``feature_group_count=n``) on ``(B, 1, n*in)``: no transposes."""
    n, n_in, n_out = k3.shape
    if layout == "member_major":
        x3 = jnp.swapaxes(x3, 0, 1)
    batch = x3.shape[0]
    rhs = jnp.swapaxes(k3, 0, 1).reshape(1, n_in, n * n_out)  # [0, a, g*out + o] = k[g, a, o]
    y = lax.conv_general_dilated(
        x3.reshape(batch, 1, n * n_in),
        rhs,
        (1,),
        "VALID",
        dimension_numbers=("NWC", "WIO", "NWC"),
        feature_group_count=n,
        precision=precision,
        preferred_element_type=out_dtype,
    ).reshape(batch, n, n_out)
    return jnp.swapaxes(y, 0, 1) if layout == "member_major" else y


def _form_blockdiag(x3, k3, precision, out_dtype, layout):
    """One dense ``(B, n*in) @ (n*in, n*out)`` matmul with a block-diagonal kernel."""
    n, n_in, n_out = k3.shape
    if layout == "member_major":
        x3 = jnp.swapaxes(x3, 0, 1)
    batch = x3.shape[0]
    eye = jnp.eye(n, dtype=k3.dtype)
    bd = (eye[:, None, :, None] * k3[:, :, None, :]).reshape(n * n_in, n * n_out)
    y = functional._matmul(x3.reshape(batch, n * n_in), bd, precision, out_dtype).reshape(
        batch, n, n_out
    )
    return jnp.swapaxes(y, 0, 1) if layout == "member_major" else y


def _form_reduce(x3, k3, precision, out_dtype, layout):
    """A multiply and a sum over ``in``, no dot: one pass over ``x`` for a few output features."""
    del precision  # elementwise: exact products in the accumulation dtype
    dtype = out_dtype or x3.dtype
    k4 = k3[:, None] if layout == "member_major" else k3  # (n, 1, in, out) | (n, in, out)
    return jnp.sum(x3.astype(dtype)[..., None] * k4.astype(dtype), axis=-2)


REJECTED = {"conv": _form_conv, "blockdiag": _form_blockdiag, "reduce": _form_reduce}


def candidates(layout: str) -> dict:
    """name -> f(x, kernel, bias) for x in ``layout``: the library's forms, then the rejected ones."""
    out = {}
    for form in functional._NLINEAR_FORMS:
        out[form] = lambda x, k, b, form=form: functional._nlinear(x, k, b, None, layout, form)
    for name, product in REJECTED.items():
        out[name] = lambda x, k, b, product=product: _with_bias(product, x, k, b, layout)
    return out


def _with_bias(product, x, k, b, layout):
    y = product(x, k, None, None, layout)
    return y + (b[:, None] if layout == "member_major" else b[None])


def _median_ms(fn, repeats: int, sync: bool) -> float:
    """Of ``repeats`` calls: the median (``--stat``: or the lower quartile, or the minimum)."""
    times = []
    for _ in range(repeats):
        t = CLOCK[0]()
        out = fn()
        if sync:
            jax.block_until_ready(out)
        times.append(CLOCK[0]() - t)
    times.sort()
    pick = {"min": times[0], "q1": times[len(times) // 4], "median": statistics.median(times)}
    return pick[STAT[0]] * 1e3


def _agg(v):
    return min(v) if STAT[0] == "min" else statistics.median(v)


def run_shape(batch, n, n_in, n_out, layout, rounds, repeats, only=None):
    torch.manual_seed(0)
    mod = DeluNLinear(n, n_in, n_out)
    rng = np.random.default_rng(0)
    x_shape = (batch, n, n_in) if layout == "batch_major" else (n, batch, n_in)
    x_np = rng.standard_normal(x_shape, dtype=np.float32)
    y_shape = (batch, n, n_out) if layout == "batch_major" else (n, batch, n_out)
    g_np = rng.standard_normal(y_shape, dtype=np.float32)
    k = jnp.asarray(mod.weight.detach().numpy())
    assert mod.bias is not None
    b = jnp.asarray(mod.bias.detach().numpy())
    x, g = jnp.asarray(x_np), jnp.asarray(g_np)
    xt, gt = torch.from_numpy(x_np), torch.from_numpy(g_np)
    if layout == "member_major":
        xt_in = xt.transpose(0, 1)
    else:
        xt_in = xt

    def t_fwd():
        with torch.no_grad():
            return mod(xt_in)

    def t_fb():
        mod.zero_grad(set_to_none=True)
        xx = xt_in.detach().requires_grad_(True)
        y = mod(xx)
        y.backward(gt if layout == "batch_major" else gt.transpose(0, 1))
        return y

    fns = {"delu fwd": (t_fwd, False), "delu fwd+bwd": (t_fb, False)}
    ref = None
    for name, f in candidates(layout).items():
        if only and name not in only:
            continue
        fwd = jax.jit(f)

        def fb(k, b, x, g, f=f):
            y, vjp = jax.vjp(f, x, k, b)
            return y, vjp(g)

        fb = jax.jit(fb)
        y = np.asarray(fwd(x, k, b))
        if ref is None:
            ref = y
        err = float(np.max(np.abs(y - ref)))
        fns[f"{name} fwd"] = ((lambda fwd=fwd: fwd(x, k, b)), True)
        fns[f"{name} fwd+bwd"] = ((lambda fb=fb: fb(k, b, x, g)), True)
        if err > 1e-4:
            print(f"  {name}: max |y - y_first| = {err:.2e}", flush=True)
    for fn, sync in fns.values():  # warm-up: compile + first run
        for _ in range(2):
            out = fn()
            if sync:
                jax.block_until_ready(out)
    per = {name: [] for name in fns}
    for _ in range(rounds):
        for name, (fn, sync) in fns.items():
            per[name].append(_median_ms(fn, repeats, sync))
    rows = []
    for name in fns:
        if name.startswith("delu"):
            continue
        mode = name.rsplit(" ", 1)[1]
        ratios = [a / d for a, d in zip(per[name], per[f"delu {mode}"], strict=True)]
        agg = _agg
        rows.append((name, agg(per[name]), agg(per[name]) / agg(per[f"delu {mode}"]), min(ratios),
                     max(ratios)))  # fmt: skip
    return per, rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.nlinear_ab")
    p.add_argument("--isa", choices=("host", "avx2"), default="host")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--layout", default="batch_major")
    p.add_argument("--shapes", nargs="*", help="b,n,in,out ...")
    p.add_argument("--only", nargs="*", help="forms")
    p.add_argument("--stat", choices=("median", "q1", "min"), default="median")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--threads", type=int, default=0, help="1: torch and XLA single-threaded")
    args = p.parse_args(argv)
    if args.threads == 1 and SINGLE not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SINGLE}".strip()
        argv = sys.argv[1:] if argv is None else argv
        os.execv(sys.executable, [sys.executable, "-m", "benchmarks.nlinear_ab", *argv])
    STAT[0] = args.stat
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.isa == "avx2" and not os.environ.get(MARKER):
        env = dict(os.environ, **AVX2_ENV)
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_AVX2_FLAG}".strip()
        env[MARKER] = "1"
        argv = sys.argv[1:] if argv is None else argv
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.nlinear_ab", *argv], env)
    if os.environ.get(MARKER):
        cap_ynnpack()
    shapes = [tuple(map(int, s.split(","))) for s in args.shapes] if args.shapes else GRID
    print(f"# {isa()}; torch {torch.get_num_threads()} threads; layout {args.layout}; "
          f"clock {args.clock}; {args.stat} of {args.repeats} calls per round", flush=True)  # fmt: skip
    for shape in shapes:
        b, n, i, o = shape
        per, rows = run_shape(b, n, i, o, args.layout, args.rounds, args.repeats, args.only)
        print(f"b{b} n{n} {i}->{o}: delu fwd {_agg(per['delu fwd']):.3f} ms, "
              f"fwd+bwd {_agg(per['delu fwd+bwd']):.3f} ms", flush=True)  # fmt: skip
        for name, ms, r, lo, hi in rows:
            print(f"  {name:<28} {ms:8.3f} ms  ratio {r:5.2f} ({lo:.2f}-{hi:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
