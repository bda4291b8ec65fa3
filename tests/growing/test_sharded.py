"""Batch-sharded statistics (8 simulated CPU devices) equal the single-device ones to fp32 tolerance.

``--xla_force_host_platform_device_count`` must be set before jax is imported, so the body runs in a
fresh interpreter.
"""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_sharded_statistics_equal_single_device():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.growing._sharded_statistics"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result) > 20  # every statistic leaf plus δ, λ, FO, ω·α of both layers
    bad = {k: v for k, v in result.items() if not v.get("ok")}
    assert not bad, bad
