"""The host's vector ISA, and an AVX2 host emulated on a bigger CPU: ``python -m benchmarks --isa avx2``.

Capping a process to AVX2 takes one setting per kernel library, because each one picks its kernels
from the CPU on its own:

=============  ==========================================  ==========================================
library        used by                                     cap
=============  ==========================================  ==========================================
XLA codegen    fusions, small dots                         ``XLA_FLAGS=--xla_cpu_max_isa=AVX2``
YNNPACK        XLA's dots in the layouts it takes          no setting: :func:`cap_ynnpack` (below)
oneDNN         XLA's other dots and convolutions, torch    ``ONEDNN_MAX_CPU_ISA=AVX2``
MKL            torch fp32 matmul, bmm                      ``MKL_ENABLE_INSTRUCTIONS=AVX2``
ATen           torch elementwise kernels                   ``ATEN_CPU_CAPABILITY=avx2``
FBGEMM         torch.ao int8 linear                        ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2``
OpenBLAS       numpy (the peak reference)                  ``OPENBLAS_CORETYPE=Haswell``
jaxlinear      ``int8_dot``'s CPU lowering (cpuinfo)       ``JAXLINEAR_INT8_DOT=s8s8``
=============  ==========================================  ==========================================

Leave one out and the run is no AVX2 timing: without the oneDNN cap, for instance, a kernel gradient
that XLA does not send to YNNPACK runs 1.6-2x faster than it would on an AVX2 host (measured).

YNNPACK reads the CPU once, into the static ``flags`` of ``ynn::get_supported_arch_flags()``, and has
no setting. :func:`cap_ynnpack` writes that variable (and its initialisation guard) in the loaded
``libjax_common.so`` before XLA first calls YNNPACK, found through the library's symbol table. It is a
measurement tool for this benchmark process only; ``jaxlinear`` never does this.
"""

import ctypes
import os
import platform
import struct
import sys

import numpy as np

#: ``ynn::arch_flag`` bits (ynnpack/base/arch.cc order): sse2, ssse3, sse41, avx, f16c, avx2, fma3.
YNN_AVX2_FLAGS = 0x7F

AVX2_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "JAXLINEAR_INT8_DOT": "s8s8",  # what int8_dot picks on a CPU without AVX-512 VNNI
}
XLA_AVX2_FLAG = "--xla_cpu_max_isa=AVX2"
#: Set by :func:`reexec_as_avx2` so that the new process knows to cap YNNPACK once jax is loaded.
MARKER = "JAXLINEAR_BENCH_EMULATE_AVX2"

_FLAGS = "_ZZN3ynn24get_supported_arch_flagsEvE5flags"
_GUARD = "_ZGVZN3ynn24get_supported_arch_flagsEvE5flags"


def cpu_flags() -> list[str]:
    """The ``flags`` line of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(
                (line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []
            )
    except OSError:
        return []


def isa() -> str:
    """The host's vector ISA (AVX2 / AVX-512 / AVX-512 VNNI) and any cap in effect in this process."""
    flags = cpu_flags()
    kind = (
        "AVX-512 VNNI + AMX"
        if "amx_int8" in flags
        else "AVX-512 VNNI"
        if "avx512_vnni" in flags
        else "AVX-512"
        if "avx512f" in flags
        else "AVX2"
        if "avx2" in flags
        else platform.machine()
    )
    caps = [
        f"{name}={os.environ[name]}" for name in ("XLA_FLAGS", *AVX2_ENV) if os.environ.get(name)
    ]
    if os.environ.get(MARKER):
        caps.append(f"YNNPACK={ynnpack_flags():#x}")
    return f"host ISA {kind}" + (f" (capped: {', '.join(caps)})" if caps else "")


def reexec_as_avx2(argv: list[str]) -> None:
    """Re-run ``python -m benchmarks argv`` with every library capped to AVX2 (does not return)."""
    env = dict(os.environ, **AVX2_ENV)
    xla = env.get("XLA_FLAGS", "")
    if XLA_AVX2_FLAG not in xla:
        env["XLA_FLAGS"] = f"{xla} {XLA_AVX2_FLAG}".strip()
    env[MARKER] = "1"
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *argv], env)


def _jax_common() -> tuple[str, int]:
    """Path and load address of jaxlib's ``libjax_common.so`` in this process."""
    import jaxlib

    path = os.path.realpath(os.path.join(os.path.dirname(jaxlib.__file__), "libjax_common.so"))
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and int(parts[2], 16) == 0 and os.path.realpath(parts[5]) == path:
                return path, int(parts[0].split("-")[0], 16)
    raise RuntimeError(f"{path} is not loaded: import jax first")


def _symbol_values(path: str, names: list[str]) -> dict[str, int]:
    """``st_value`` of each named symbol in the ELF ``.symtab`` of ``path``."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    header = bytes(data[:64])
    (shoff,) = struct.unpack_from("<Q", header, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
    section = np.dtype(
        [("name", "<u4"), ("type", "<u4"), ("flags", "<u8"), ("addr", "<u8"), ("offset", "<u8"),
         ("size", "<u8"), ("link", "<u4"), ("info", "<u4"), ("align", "<u8"), ("entsize", "<u8")]
    )  # fmt: skip
    sections = np.frombuffer(data[shoff : shoff + shnum * shentsize], dtype=section)
    symtabs = [s for s in sections if s["type"] == 2]  # SHT_SYMTAB
    if not symtabs:
        raise RuntimeError(f"{path} has no symbol table: cannot cap YNNPACK")
    symtab = symtabs[0]
    strtab = sections[symtab["link"]]
    strings = bytes(data[strtab["offset"] : strtab["offset"] + strtab["size"]])
    symbol = np.dtype(
        [("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"), ("value", "<u8"),
         ("size", "<u8")]
    )  # fmt: skip
    symbols = np.frombuffer(
        data[symtab["offset"] : symtab["offset"] + symtab["size"]], dtype=symbol
    )
    values = {}
    for name in names:
        at = strings.find(b"\0" + name.encode() + b"\0")
        hits = symbols[symbols["name"] == at + 1] if at >= 0 else symbols[:0]
        if len(hits) != 1:
            raise RuntimeError(f"{path}: symbol {name} not found once: cannot cap YNNPACK")
        values[name] = int(hits["value"][0])
    return values


def _ynnpack_vars() -> tuple[ctypes.c_uint64, ctypes.c_uint8]:
    path, base = _jax_common()
    where = _symbol_values(path, [_FLAGS, _GUARD])
    return (
        ctypes.c_uint64.from_address(base + where[_FLAGS]),
        ctypes.c_uint8.from_address(base + where[_GUARD]),
    )


def cap_ynnpack(flags: int = YNN_AVX2_FLAGS) -> None:
    """Make YNNPACK see only ``flags`` (default: an AVX2 + FMA3 CPU). Call after ``import jax``.

    The bit layout is that of the YNNPACK in jaxlib 0.10.2 (read off its ``get_supported_arch_flags``);
    ``tests/test_benchmarks_host_isa.py`` checks it on that version.
    """
    value, guard = _ynnpack_vars()
    value.value = flags
    guard.value = 1  # initialised: the CPU is never read


def ynnpack_flags() -> int:
    """The ISA flags YNNPACK dispatches on in this process (0 before its first use)."""
    value, guard = _ynnpack_vars()
    return value.value if guard.value else 0
