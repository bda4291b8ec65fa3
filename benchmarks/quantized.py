"""``jl.QuantizedLinear`` / ``jl.DynamicQuantizedLinear`` vs torch's quantized linear (x86 engine), and vs
jaxlinear's own fp32 ``jl.Linear`` on the same shape.

Static: a pre-quantized uint8 input (``reduce_range`` activations, the x86 default qconfig), per-channel
symmetric int8 weights, output uint8. Dynamic: float32 in and out (activation qparams per call). Rows
"vs jl.Linear" put jitted fp32 ``jl.Linear`` in the torch column: a ratio below 1 means int8 is faster
than float in jaxlinear. The row "static full-range" uses full 8-bit activations with the
``int16_saturation`` torch uses on this host (True on AVX2 hosts: the emulation's cost shows there).
Each row name ends with the ISA the run saw (``isa()``), so tables from different hosts can be told apart.
"""

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.ao.nn import quantized as nnq
from torch.ao.nn.quantized import dynamic as nnqd

import jaxlinear as jl
from benchmarks.host_isa import MARKER, cpu_flags
from benchmarks.timing import Bench
from jaxlinear import quantization as Q

SIZES = [(64, 1024, 1024), (1024, 1024, 1024), (64, 4096, 4096), (1024, 4096, 4096)]


def isa() -> str:
    """``vnni`` / ``avx512`` / ``avx2`` from the CPU flags, ``avx2*`` when the AVX2 environment
    (``--isa avx2``, or ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2`` / ``XLA_FLAGS=--xla_cpu_max_isa=AVX2``)
    restricts a bigger CPU."""
    flags = cpu_flags()
    name = "vnni" if "avx512_vnni" in flags else "avx512" if "avx512f" in flags else "avx2"
    forced = (
        bool(os.environ.get(MARKER))
        or os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").upper() == "AVX2"
        or "xla_cpu_max_isa=AVX2" in os.environ.get("XLA_FLAGS", "")
    )
    return "avx2*" if forced and name != "avx2" else name


def _qweight(rng, n_out, n_in):
    w = torch.from_numpy(rng.standard_normal((n_out, n_in)).astype(np.float32) * 0.05)
    scales = w.abs().amax(1).double() / 127.5
    return torch.quantize_per_channel(
        w, scales, torch.zeros(n_out, dtype=torch.long), 0, torch.qint8
    )


def _input(rng, batch, n_in, qmax):
    """A float input and its uint8 qparams with values in ``[0, qmax]``."""
    x = rng.standard_normal((batch, n_in)).astype(np.float32)
    x_s = float(np.float32((x.max() - min(x.min(), 0)) / qmax))
    return x, x_s, int(round(-min(x.min(), 0) / x_s))


def _layers(batch, n_in, n_out, seed=0, qmax=127, saturation=False):
    """torch's static and dynamic modules and their jitted jaxlinear twins on the same weights."""
    rng = np.random.default_rng(seed)
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qw = _qweight(rng, n_out, n_in)
        bias = torch.from_numpy(rng.standard_normal(n_out).astype(np.float32))
        x, x_s, x_zp = _input(rng, batch, n_in, qmax)
        xq = torch.quantize_per_tensor(torch.from_numpy(x), x_s, x_zp, torch.quint8)
        static = nnq.Linear(n_in, n_out)
        static.set_weight_bias(qw, bias)
        static.scale, static.zero_point = 0.05, 128
        dynamic = nnqd.Linear(n_in, n_out)
        dynamic.set_weight_bias(qw, bias)
        s_layer = jl.QuantizedLinear(n_out, per_channel=True, int16_saturation=saturation)
        s_vars = jl.interop.from_torch(s_layer, static.state_dict())
        d_layer = jl.DynamicQuantizedLinear(n_out, per_channel=True)
        d_vars = jl.interop.from_torch(d_layer, dynamic.state_dict())
    x_q = Q.QTensor(jnp.asarray(xq.int_repr().numpy()), x_s, x_zp)
    x_t, x_j = torch.from_numpy(x), jnp.asarray(x)
    s_fn = jax.jit(lambda v, x: s_layer.apply(v, x).values)
    d_fn = jax.jit(d_layer.apply)
    return (
        lambda: static(xq),
        lambda: s_fn(s_vars, x_q),
        lambda: dynamic(x_t),
        lambda: d_fn(d_vars, x_j),
        x_j,
    )


def _fp32(x, n_out):
    """jaxlinear's fp32 ``jl.Linear`` on ``x``, blocking (it stands in the reference column)."""
    layer = jl.Linear(n_out)
    variables = layer.init(jax.random.key(0), x)
    fn = jax.jit(layer.apply)
    return lambda: jax.block_until_ready(fn(variables, x))


def benchmarks() -> list[Bench]:
    tag = isa()
    rows = []
    for batch, n_in, n_out in SIZES:
        t_s, j_s, t_d, j_d, x = _layers(batch, n_in, n_out)
        fp32 = _fp32(x, n_out)
        flops = 2 * batch * n_in * n_out
        size = f"b{batch} {n_in}->{n_out}"
        rows.append(Bench("quantized", f"static {size} {tag}", flops, t_s, j_s))
        rows.append(Bench("quantized", f"dynamic {size} {tag}", flops, t_d, j_d))
        rows.append(Bench("quantized", f"static vs jl.Linear {size} {tag}", flops, fp32, j_s))
        rows.append(Bench("quantized", f"dynamic vs jl.Linear {size} {tag}", flops, fp32, j_d))
    from parity.cases.torch_quantized import torch_fbgemm_saturates

    saturation = torch_fbgemm_saturates()
    t_s, j_s, *_ = _layers(64, 1024, 1024, qmax=255, saturation=saturation)
    name = f"static full-range sat={int(saturation)} b64 1024->1024 {tag}"
    rows.append(Bench("quantized", name, 2 * 64 * 1024 * 1024, t_s, j_s))
    return rows
