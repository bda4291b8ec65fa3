"""jaxlinear layers on a device mesh (8 simulated CPU devices) equal the single-device run.

Data parallel, tensor parallel on a (2 data x 4 model) mesh, an NLinear ensemble with one member per
device (init bit-exact, forward and ``jl.optim.adamw`` steps to fp32 tolerance), lr factors of boxed
and sharded variables, and a quantized model on the mesh (bit-exact). ``--xla_force_host_platform_
device_count`` must be set before jax is imported, so the body (``tests/_sharded_layers.py``) runs in a
fresh interpreter, once for all checks.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "tests._sharded_layers"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


CHECKS = [
    "lr_factors_boxed",
    "dp/forward",
    "dp/train_params",
    "dp/train_losses",
    "tp/kernel_split_4_ways",
    "tp/lr_factors_sharded",
    "tp/init",
    "tp/forward",
    "tp/trained_stays_sharded",
    "tp/train_params",
    "tp/train_losses",
    "quantized/names",
    "quantized/weights",
    "quantized/forward",
    "ensemble/one_member_per_device",
    "ensemble/init",
    "ensemble/forward",
    "ensemble/train_params",
    "ensemble/train_losses",
]


@pytest.mark.parametrize("check", CHECKS)
def test_sharded_equals_single_device(results, check):
    assert check in results, sorted(results)
    assert results[check]["ok"], results[check]


def test_every_check_is_listed(results):
    assert sorted(results) == sorted(CHECKS)
