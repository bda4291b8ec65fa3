"""``benchmarks/host_isa.py``: the AVX2 emulation really caps YNNPACK, and numbers stay right."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, os
import jax, jax.numpy as jnp, numpy as np
from benchmarks import host_isa
before = host_isa.ynnpack_flags()
if os.environ.get(host_isa.MARKER):
    host_isa.cap_ynnpack()
x = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
y = np.asarray(jax.jit(jnp.matmul)(x, x))
err = float(np.abs(y - x.astype(np.float64) @ x.astype(np.float64)).max())
print(json.dumps({"before": before, "after": host_isa.ynnpack_flags(), "err": err,
                  "isa": host_isa.isa()}))
"""


def _run(capped: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JAXLINEAR_BENCH_EMULATE_AVX2"}
    if capped:
        env["JAXLINEAR_BENCH_EMULATE_AVX2"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ynnpack_symbols_found() -> bool:
    """Whether this jaxlib exports the YNNPACK symbols cap_ynnpack writes (a capability, not a version)."""
    if not sys.platform.startswith("linux"):
        return False
    probe = "import jax\nfrom benchmarks import host_isa\nhost_isa.ynnpack_flags()\n"
    return (
        subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True).returncode == 0
    )


pytestmark = pytest.mark.skipif(
    not _ynnpack_symbols_found(),
    reason="cap_ynnpack reads YNNPACK's ISA flags from the symbol table of jaxlib's libjax_common.so "
    "(Linux); this jaxlib does not export them",
)


def test_uncapped_process_dispatches_on_the_cpu():
    got = _run(capped=False)
    assert got["before"] == 0  # YNNPACK has not read the CPU before its first dot
    assert got["after"] & 0x7F == 0x7F  # every supported host has AVX2 + FMA3
    assert got["err"] < 1e-3
    assert "YNNPACK" not in got["isa"]


def test_capped_process_sees_an_avx2_cpu():
    got = _run(capped=True)
    assert got["after"] == 0x7F  # sse2 ... avx2, fma3: no AVX-512 bit
    assert got["err"] < 1e-3  # the AVX2 kernels compute the same product
    assert "YNNPACK=0x7f" in got["isa"]
