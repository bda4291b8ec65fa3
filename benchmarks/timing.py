"""Fair timing of jaxlinear against a torch reference on the same machine, in one run.

Protocol (see ``RESULTS.md``): both sides are warmed up (JAX: compile + first run), then timed
interleaved (torch block, jax block, ...) so that the machine's noise falls on both; each block is the
median of ``repeats`` calls, and the reported time is the minimum over ``blocks`` block medians. JAX
calls end with ``jax.block_until_ready`` on the whole output tree.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax


@dataclass(frozen=True)
class Bench:
    """One row: a reference function and a jaxlinear function doing the same work."""

    group: str  # what --only selects, e.g. "linear"
    name: str  # e.g. "fwd+bwd b1024 1024->1024"
    flops: float  # per call, for GFLOP/s (2*b*in*out per matmul)
    reference: Callable[[], object]  # a torch closure: runs once per call
    jax: Callable[[], object]  # a jitted closure: returns the outputs to block on


@dataclass(frozen=True)
class Timing:
    group: str
    name: str
    torch_ms: float
    jax_ms: float
    flops: float

    @property
    def ratio(self) -> float:
        return self.jax_ms / self.torch_ms

    def gflops(self, ms: float) -> float:
        return self.flops / (ms * 1e-3) / 1e9


def _block(fn: Callable[[], object], repeats: int, sync: bool) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if sync:
            jax.block_until_ready(out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(bench: Bench, repeats: int = 9, blocks: int = 3, warmup: int = 2) -> Timing:
    """Minimum over ``blocks`` of the median of ``repeats`` calls, each side, interleaved."""
    for _ in range(warmup):
        bench.reference()
        jax.block_until_ready(bench.jax())
    torch_t, jax_t = [], []
    for _ in range(blocks):
        torch_t.append(_block(bench.reference, repeats, sync=False))
        jax_t.append(_block(bench.jax, repeats, sync=True))
    return Timing(bench.group, bench.name, min(torch_t) * 1e3, min(jax_t) * 1e3, bench.flops)


def header() -> str:
    return (
        f"{'group':<10} {'case':<40} {'torch ms':>9} {'jax ms':>9} {'ratio':>6} "
        f"{'torch GF/s':>10} {'jax GF/s':>9}"
    )


def row(t: Timing) -> str:
    return (
        f"{t.group:<10} {t.name:<40} {t.torch_ms:>9.3f} {t.jax_ms:>9.3f} {t.ratio:>6.2f} "
        f"{t.gflops(t.torch_ms):>10.1f} {t.gflops(t.jax_ms):>9.1f}"
    )


def markdown_row(t: Timing) -> str:
    return (
        f"| {t.group} | {t.name} | {t.torch_ms:.3f} | {t.jax_ms:.3f} | {t.ratio:.2f} | "
        f"{t.gflops(t.torch_ms):.1f} | {t.gflops(t.jax_ms):.1f} |"
    )
