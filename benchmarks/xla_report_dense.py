"""XLA CPU report: what a dense layer's backward pass pays around its matmuls (pure JAX, no jaxlinear).

``python -m benchmarks.xla_report_dense [--isa avx2] [--rounds N] [--thunks]``

A dense layer ``y = x @ w + b`` (``x`` ``(B, in)``, ``w`` ``(in, out)``) needs three matmuls for
fwd+bwd: ``y = x @ w``, ``dx = g @ w.T`` and ``dw = x.T @ g``. torch runs all three on one GEMM
(MKL), which takes either operand transposed at no cost: the transposition happens while it packs
the operand panels. XLA CPU (jaxlib 0.10.2) sends a dot to YNNPACK only when its left operand
contracts its last (minor) dim; ``dw`` contracts the batch dim ``B``, the major dim of both ``x`` and
``g``, so XLA runs it either

- in place on its generic dot (Eigen's tensor contraction, built for AVX: ``vmulps`` + ``vaddps`` on
  ``ymm``, whatever the host), which plain ``jax.vjp`` gives, or
- on YNNPACK after a materialized transpose of ``x`` (``optimization_barrier(x.T) @ g``; without the
  barrier XLA folds the transpose back into the dot), which is what ``jaxlinear`` does on CPU,

and XLA's loop emitter makes that transposed copy at a fraction of the speed of a plain copy of the
same bytes. This script shows the optimized HLO of both formulations and times, interleaved in one
process (median over rounds of the median of 5 calls; wall time and process CPU time):

1. the transposed copy of ``x`` against an elementwise copy of the same bytes;
2. ``dw`` three ways: ``x.T`` already materialized (what YNNPACK would cost if it took a transposed
   left operand, as MKL and oneDNN do), transposed copy + YNNPACK, in place (Eigen);
3. the whole fwd+bwd, both formulations.

``--isa avx2`` caps every kernel library to AVX2 (``benchmarks/host_isa.py``): an *emulated* AVX2
host, the same code paths on a faster core; say so wherever you quote its numbers. ``--thunks`` also
prints per-thunk times from the profiler (``--xla_cpu_enable_xprof_traceme``); Eigen's dot thunk
finishes asynchronously, so its event covers only the launch.
"""

import argparse
import os
import statistics
import sys
import time

SHAPES = [(8192, 256, 256), (1024, 1024, 1024), (64, 4096, 4096)]  # (B, in, out)
TRACEME = "--xla_cpu_enable_xprof_traceme=true"


def _setup(isa: str, thunks: bool) -> None:
    """Before jax is imported: the emulated AVX2 host (re-exec) and the profiler's thunk events."""
    if thunks and TRACEME not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TRACEME}".strip()
    if isa == "avx2":
        from benchmarks.host_isa import AVX2_ENV, MARKER, XLA_AVX2_FLAG

        if not os.environ.get(MARKER):
            env = dict(os.environ, **AVX2_ENV)
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_AVX2_FLAG}".strip()
            env[MARKER] = "1"
            argv = [sys.executable, "-m", "benchmarks.xla_report_dense", *sys.argv[1:]]
            os.execve(sys.executable, argv, env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.xla_report_dense", description=__doc__
    )
    parser.add_argument("--isa", choices=("host", "avx2"), default="host")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--thunks", action="store_true", help="per-thunk times from the profiler")
    parser.add_argument(
        "--shapes", nargs="+", help="B,in,out (default: the three of benchmarks.linear)"
    )
    args = parser.parse_args(argv)
    _setup(args.isa, args.thunks)

    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    from benchmarks.host_isa import MARKER, cap_ynnpack, isa

    if os.environ.get(MARKER):
        cap_ynnpack()
    tag = "AVX2 EMULATED" if os.environ.get(MARKER) else isa()
    print(f"# jax {jax.__version__}, {os.cpu_count()} cores, {isa()}")

    nt = (((1,), (1,)), ((), ()))  # g @ w.T: YNNPACK takes it (rhs may contract either dim)
    tn = (((0,), (0,)), ((), ()))  # x.T @ g in place: XLA's generic (Eigen) dot
    barrier = lax.optimization_barrier

    def fwd_bwd_plain(w, b, x, g):
        y, vjp = jax.vjp(lambda w, b, x: x @ w + b, w, b, x)
        return y, vjp(g)

    def fwd_bwd_ynn(w, b, x, g):
        return x @ w + b, lax.dot_general(g, w, nt), barrier(x.T) @ g, g.sum(0)

    programs = {
        "x.T materialized": lambda x: barrier(x.T),
        "copy of the same bytes": lambda x: barrier(x * 2.0),
        "dw: x.T given (ideal)": lambda xt, g: xt @ g,
        "dw: x.T copy + YNNPACK": lambda x, g: barrier(x.T) @ g,
        "dw: in place (Eigen)": lambda x, g: lax.dot_general(x, g, tn),
        "fwd+bwd: jax.vjp (dw in place)": fwd_bwd_plain,
        "fwd+bwd: x.T copy + YNNPACK": fwd_bwd_ynn,
    }

    def entry(fn, *a) -> list[str]:
        """The ENTRY computation's thunks of the optimized HLO, metadata dropped."""
        text = str(jax.jit(fn).lower(*a).compile().as_text()).split("\nENTRY", 1)[1]
        lines = [
            ln.split(", metadata=")[0]
            for ln in text.splitlines()
            if "fusion(" in ln or " dot(" in ln
        ]
        return [ln.strip()[:160] for ln in lines]

    def timed(calls: dict, rounds: int) -> dict:
        wall = {k: [] for k in calls}
        cpu = {k: [] for k in calls}
        for f in calls.values():
            for _ in range(2):
                jax.block_until_ready(f())
        for _ in range(rounds):
            for name, f in calls.items():
                w, c = [], []
                for _ in range(5):
                    c0, t0 = time.process_time(), time.perf_counter()
                    jax.block_until_ready(f())
                    w.append(time.perf_counter() - t0)
                    c.append(time.process_time() - c0)
                wall[name].append(statistics.median(w) * 1e3)
                cpu[name].append(statistics.median(c) * 1e3)
        return {
            k: (statistics.median(wall[k]), min(wall[k]), max(wall[k]), statistics.median(cpu[k]))
            for k in calls
        }

    shapes = [tuple(map(int, s.split(","))) for s in args.shapes] if args.shapes else SHAPES
    for B, n_in, n_out in shapes:
        rng = np.random.default_rng(0)
        x, g = (jnp.asarray(rng.standard_normal(s, np.float32)) for s in ((B, n_in), (B, n_out)))
        w = jnp.asarray(rng.standard_normal((n_in, n_out), np.float32))
        b = jnp.asarray(rng.standard_normal((n_out,), np.float32))
        xt = jnp.asarray(np.asarray(x).T.copy())
        operands = {
            "x.T materialized": (x,),
            "copy of the same bytes": (x,),
            "dw: x.T given (ideal)": (xt, g),
            "dw: x.T copy + YNNPACK": (x, g),
            "dw: in place (Eigen)": (x, g),
            "fwd+bwd: jax.vjp (dw in place)": (w, b, x, g),
            "fwd+bwd: x.T copy + YNNPACK": (w, b, x, g),
        }
        print(f"\n## B={B} in={n_in} out={n_out} [{tag}]")
        for name in ("fwd+bwd: jax.vjp (dw in place)", "fwd+bwd: x.T copy + YNNPACK"):
            print(f"optimized HLO, {name}:")
            print("\n".join("    " + ln for ln in entry(programs[name], *operands[name])))
        jitted = {k: jax.jit(programs[k]) for k in programs}
        calls = {k: (lambda f=jitted[k], a=operands[k]: f(*a)) for k in programs}
        flops = {k: 2 * B * n_in * n_out * (3 if k.startswith("fwd+bwd") else 1) for k in programs}
        print(f"{'':<34} {'wall ms (median, min-max)':>28} {'cpu ms':>8} {'GFLOP/s':>8}")
        for name, (med, lo, hi, c) in timed(calls, args.rounds).items():
            gf = f"{flops[name] / med / 1e6:8.1f}" if name.startswith(("dw", "fwd")) else f"{'':>8}"
            print(f"{name:<34} {med:10.3f} ({lo:7.3f}-{hi:7.3f}) {c:8.3f} {gf}")
        if args.thunks:
            _thunk_times(
                jax, jitted["fwd+bwd: x.T copy + YNNPACK"], operands["fwd+bwd: x.T copy + YNNPACK"]
            )
    return 0


def _thunk_times(jax, fn, operands, calls: int = 10) -> None:
    """Median per-thunk wall time of ``fn`` from a profiler trace (needs the traceme XLA flag)."""
    import collections
    import glob
    import gzip
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            for _ in range(calls):
                jax.block_until_ready(fn(*operands))
        (path,) = glob.glob(f"{d}/**/*.trace.json.gz", recursive=True)
        with gzip.open(path) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    times = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and ("fusion" in e["name"] or e["name"].startswith("dot")):
            times[e["name"]].append(e["dur"] / 1e3)
    print(f"per-thunk wall ms (median of {calls} calls), fwd+bwd: x.T copy + YNNPACK:")
    for name, ts in sorted(times.items(), key=lambda kv: -statistics.median(kv[1])):
        if not name.startswith("end"):
            print(f"    {name:<28} {statistics.median(ts):8.3f}")


if __name__ == "__main__":
    sys.exit(main())
