"""Audit table (tests/_audit.py): ``jl.interop`` (weight files, torch state_dicts, quantized converters)."""

import contextlib
import functools
import os
import stat
import tempfile
from unittest import mock

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors import SafetensorError

import jaxlinear as jl
from tests._audit import bad, check, good

I = jl.interop
W = {"w": np.ones((2, 3), np.float32)}


@functools.cache
def _dir() -> str:
    return tempfile.mkdtemp(prefix="jl-audit-")


def _path(name: str) -> str:
    path = os.path.join(_dir(), name)
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    return path


def _save_through_symlink():
    target = _path("target.safetensors")
    I.save_safetensors(target, {"old": np.zeros(1, np.float32)})
    link = _path("link.safetensors")
    os.symlink(target, link)
    I.save_safetensors(link, W)
    return os.path.islink(link), sorted(I.load_safetensors(target))


def _save_to_fifo():
    path = _path("fifo")
    os.mkfifo(path)
    try:
        I.save_safetensors(path, W)
    finally:
        is_fifo = stat.S_ISFIFO(os.lstat(path).st_mode)
        os.remove(path)
    return is_fifo


def _save_to_char_device():
    """A /dev/full twin in a temporary directory (never the real /dev/full): needs root."""
    path = _path("full")
    if os.geteuid() != 0:
        raise ValueError("`path` (skipped: creating a device needs root)")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    try:
        I.save_safetensors(path, W)
    finally:
        is_device = stat.S_ISCHR(os.lstat(path).st_mode)
        os.remove(path)
    return is_device


def _mode_after_save(mode: int) -> str:
    path = _path("mode.safetensors")
    I.save_safetensors(path, W)
    os.chmod(path, mode)
    I.save_safetensors(path, W)
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def _disk_full():
    path = _path("full.safetensors")
    error = SafetensorError(
        "Error while serializing: IoError(No space left on device (os error 28))"
    )
    with mock.patch("jaxlinear.interop._safetensors.save_file", side_effect=error):
        I.save_safetensors(path, W)


def _load_garbage():
    path = _path("garbage.safetensors")
    with open(path, "wb") as f:
        f.write(b"not a safetensors file")
    return I.load_safetensors(path)


class _QWeight:
    """A duck-typed torch qint8 per-tensor weight (``int_repr``, ``qscheme``, ``q_scale`` ...)."""

    def __init__(self, values):
        self.values = np.asarray(values, np.int8)

    def int_repr(self):
        return self.values

    def qscheme(self):
        return "torch.per_tensor_affine"

    def q_scale(self):
        return 0.1

    def q_zero_point(self):
        return 0


def _qsd(bias=None, scale=None, zero_point=None):
    bias = np.zeros(4, np.float32) if bias is None else bias
    scale = np.float32(0.5) if scale is None else scale
    zero_point = np.int64(3) if zero_point is None else zero_point
    return {
        "_packed_params._packed_params": (_QWeight(np.ones((4, 3))), bias),
        "_packed_params.dtype": "torch.qint8",
        "scale": scale,
        "zero_point": zero_point,
    }


LIN_SD = {"weight": np.ones((4, 3), np.float32), "bias": np.zeros(4, np.float32)}

CASES = [
    good(
        "save through a symlink writes its target, keeps the link",
        _save_through_symlink,
        (True, ["w"]),
    ),
    bad("save to a fifo", _save_to_fifo, ValueError, "path"),
    bad("save to a character device", _save_to_char_device, ValueError, "path"),
    good("save keeps mode 0644", lambda: _mode_after_save(0o644), "0o644"),
    good("save keeps mode 0640", lambda: _mode_after_save(0o640), "0o640"),
    bad("save disk full", _disk_full, OSError, "full.safetensors"),
    bad(
        "save to a missing directory",
        lambda: I.save_safetensors(os.path.join(_dir(), "no", "w.st"), W),
        FileNotFoundError,
        "path",
    ),
    bad("save to a directory", lambda: I.save_safetensors(_dir(), W), IsADirectoryError, "path"),
    bad("save path int", lambda: I.save_safetensors(3, W), TypeError, "path"),
    bad(
        "save state_dict list",
        lambda: I.save_safetensors(_path("x.st"), [1]),
        TypeError,
        "state_dict",
    ),
    bad(
        "save key int",
        lambda: I.save_safetensors(_path("x.st"), {1: np.ones(2)}),
        TypeError,
        "state_dict",
    ),
    bad(
        "save value list",
        lambda: I.save_safetensors(_path("x.st"), {"w": [1.0]}),
        TypeError,
        "state_dict['w']",
    ),
    bad(
        "save __metadata__",
        lambda: I.save_safetensors(_path("x.st"), {"__metadata__": np.ones(2)}),
        ValueError,
        "__metadata__",
    ),
    bad(
        "save float8",
        lambda: I.save_safetensors(_path("x.st"), {"w": np.zeros(2, jnp.float8_e4m3fn)}),
        TypeError,
        "state_dict['w']",
    ),
    good(
        "save empty dict",
        lambda: (I.save_safetensors(_path("e.st"), {}), I.load_safetensors(_path_keep("e.st")))[1],
        {},
    ),
    bad(
        "load missing",
        lambda: I.load_safetensors(os.path.join(_dir(), "missing.st")),
        FileNotFoundError,
        "path",
    ),
    bad("load garbage", _load_garbage, ValueError, "path"),
    bad("load path None", lambda: I.load_safetensors(None), TypeError, "path"),
    good("to_numpy bf16", lambda: I.to_numpy(jnp.ones(2, jnp.bfloat16)).dtype.name, "bfloat16"),
    bad("to_numpy object", lambda: I.to_numpy(object()), TypeError, "value"),
    # state_dicts
    good(
        "from_torch Linear",
        lambda: I.from_torch(jl.Linear(4), LIN_SD)["params"]["kernel"].shape,
        (3, 4),
    ),
    bad(
        "from_torch state_dict list",
        lambda: I.from_torch(jl.Linear(4), [1, 2]),
        TypeError,
        "state_dict",
    ),
    bad(
        "from_torch missing bias",
        lambda: I.from_torch(jl.Linear(4), {"weight": LIN_SD["weight"]}),
        KeyError,
        "bias",
    ),
    bad(
        "from_torch extra key",
        lambda: I.from_torch(jl.Linear(4), {**LIN_SD, "extra": np.ones(1)}),
        KeyError,
        "extra",
    ),
    bad(
        "from_torch weight shape", lambda: I.from_torch(jl.Linear(5), LIN_SD), ValueError, "weight"
    ),
    bad(
        "from_torch weight 1-d",
        lambda: I.from_torch(jl.Linear(4), {**LIN_SD, "weight": np.ones(4, np.float32)}),
        ValueError,
        "weight",
    ),
    bad(
        "from_torch bias shape",
        lambda: I.from_torch(jl.Linear(4), {**LIN_SD, "bias": np.ones(5, np.float32)}),
        ValueError,
        "bias",
    ),
    bad(
        "from_torch weight str",
        lambda: I.from_torch(jl.Linear(4), {**LIN_SD, "weight": "w"}),
        ValueError,
        "weight",
    ),
    bad("from_torch module not a module", lambda: I.from_torch(3, LIN_SD), TypeError, "module"),
    bad(
        "from_torch mapping not a dict",
        lambda: I.from_torch(nn.Sequential([jl.Linear(4)]), LIN_SD, mapping=[1]),
        TypeError,
        "mapping",
    ),
    bad(
        "to_torch variables missing params",
        lambda: I.to_torch(jl.Linear(4), {}),
        TypeError,
        "params",
    ),
    bad(
        "to_torch kernel shape",
        lambda: I.to_torch(
            jl.Linear(4), {"params": {"kernel": jnp.ones((3, 5)), "bias": jnp.ones(4)}}
        ),
        ValueError,
        "kernel",
    ),
    good(
        "to_torch Linear",
        lambda: I.to_torch(jl.Linear(4), I.from_torch(jl.Linear(4), LIN_SD))["weight"].shape,
        (4, 3),
    ),
    # quantized converters
    good(
        "from_torch QuantizedLinear",
        lambda: float(I.from_torch(jl.QuantizedLinear(4), _qsd())["params"]["out_scale"]),
        0.5,
    ),
    bad(
        "from_torch QuantizedLinear bias shape",
        lambda: I.from_torch(jl.QuantizedLinear(4), _qsd(bias=np.zeros(5, np.float32))),
        ValueError,
        "bias",
    ),
    bad(
        "from_torch QuantizedLinear bias 2-d",
        lambda: I.from_torch(jl.QuantizedLinear(4), _qsd(bias=np.zeros((1, 4), np.float32))),
        ValueError,
        "bias",
    ),
    bad(
        "from_torch QuantizedLinear 2-element scale",
        lambda: I.from_torch(jl.QuantizedLinear(4), _qsd(scale=np.ones(2, np.float32))),
        ValueError,
        "scale",
    ),
    bad(
        "from_torch QuantizedLinear 2-element zero_point",
        lambda: I.from_torch(jl.QuantizedLinear(4), _qsd(zero_point=np.ones(2, np.int64))),
        ValueError,
        "zero_point",
    ),
    bad(
        "from_torch QuantizedLinear scale 0",
        lambda: I.from_torch(jl.QuantizedLinear(4), _qsd(scale=np.float32(0))),
        ValueError,
        "scale",
    ),
    bad(
        "from_torch QuantizedLinear zero_point 300",
        lambda: I.from_torch(jl.QuantizedLinear(4), _qsd(zero_point=np.int64(300))),
        ValueError,
        "zero_point",
    ),
    bad(
        "from_torch QuantizedLinear zero_point float",
        lambda: I.from_torch(jl.QuantizedLinear(4), _qsd(zero_point=np.float32(1.5))),
        TypeError,
        "zero_point",
    ),
    bad(
        "from_torch QuantizedLinear float weight",
        lambda: I.from_torch(
            jl.QuantizedLinear(4),
            {**_qsd(), "_packed_params._packed_params": (np.ones((4, 3)), None)},
        ),
        TypeError,
        "weight",
    ),
    bad(
        "from_torch QuantizedLinear packed not a pair",
        lambda: I.from_torch(jl.QuantizedLinear(4), {**_qsd(), "_packed_params._packed_params": 3}),
        ValueError,
        "_packed_params",
    ),
    bad(
        "from_torch DynamicQuantizedLinear bias shape",
        lambda: I.from_torch(jl.DynamicQuantizedLinear(4), _qsd(bias=np.zeros(3, np.float32))),
        ValueError,
        "bias",
    ),
    bad(
        "from_torch QuantizedLinear features",
        lambda: I.from_torch(jl.QuantizedLinear(5), _qsd()),
        ValueError,
        "weight",
    ),
]


def _path_keep(name: str) -> str:
    return os.path.join(_dir(), name)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_audit(case):
    check(case)
