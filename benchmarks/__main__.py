"""``python -m benchmarks [--only GROUP ...] [--cases SUBSTRING ...] [--markdown]``: jaxlinear vs the torch reference.

Each module of this package with a ``benchmarks()`` function contributes rows (a list of ``Bench``).
"""

import argparse
import importlib
import os
import pkgutil
import platform
import sys

import jax

from benchmarks.host_isa import MARKER, cap_ynnpack, isa, reexec_as_avx2
from benchmarks.timing import header, markdown_row, measure, row

SKIP = {"timing"}


def _collect(only: set[str] | None):
    import benchmarks as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name in SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        if not hasattr(module, "benchmarks"):
            continue
        for bench in module.benchmarks():
            if only is None or bench.group in only:
                yield bench


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {isa()}; jax {jax.__version__} ({jax.default_backend()}), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", nargs="+", help="groups (comma-separated allowed)")
    parser.add_argument(
        "--cases",
        nargs="+",
        help="keep only the rows whose case name contains one of these strings",
    )
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument(
        "--isa",
        choices=("host", "avx2"),
        default="host",
        help="avx2: cap XLA, YNNPACK, MKL, ATen, oneDNN, FBGEMM and OpenBLAS to AVX2 (benchmarks/host_isa.py)",
    )
    args = parser.parse_args(argv)
    if args.isa == "avx2" and not os.environ.get(MARKER):
        reexec_as_avx2(sys.argv[1:] if argv is None else argv)
    if os.environ.get(MARKER):
        cap_ynnpack()
    only = {g.strip() for item in args.only for g in item.split(",")} if args.only else None
    print(f"# {machine()}", flush=True)
    print(header(), flush=True)
    rows = []
    for bench in _collect(only):
        if args.cases and not any(c in bench.name for c in args.cases):
            continue
        timing = measure(bench, args.repeats, args.blocks)
        rows.append(timing)
        print(row(timing), flush=True)
    if args.markdown:
        print("\n| group | case | torch ms | jax ms | ratio | torch GFLOP/s | jax GFLOP/s |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(markdown_row(t) for t in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
