"""``jl.QuantizedLinear`` / ``jl.DynamicQuantizedLinear`` vs torch's quantized linear (x86 engine).

Static: a pre-quantized uint8 input (``reduce_range`` activations, the x86 default qconfig), per-channel
symmetric int8 weights, output uint8. Dynamic: float32 in and out (activation qparams per call).
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.ao.nn import quantized as nnq
from torch.ao.nn.quantized import dynamic as nnqd

import jaxlinear as jl
from benchmarks.timing import Bench
from jaxlinear import quantization as Q

SIZES = [(64, 1024, 1024), (1024, 1024, 1024), (64, 4096, 4096), (1024, 4096, 4096)]


def _qweight(rng, n_out, n_in):
    w = torch.from_numpy(rng.standard_normal((n_out, n_in)).astype(np.float32) * 0.05)
    scales = w.abs().amax(1).double() / 127.5
    return torch.quantize_per_channel(
        w, scales, torch.zeros(n_out, dtype=torch.long), 0, torch.qint8
    )


def _pair(batch, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qw = _qweight(rng, n_out, n_in)
        bias = torch.from_numpy(rng.standard_normal(n_out).astype(np.float32))
        x = rng.standard_normal((batch, n_in)).astype(np.float32)
        x_s, x_zp = float(np.float32((x.max() - min(x.min(), 0)) / 127)), 0
        x_zp = int(round(-min(x.min(), 0) / x_s))
        xq = torch.quantize_per_tensor(torch.from_numpy(x), x_s, x_zp, torch.quint8)
        static = nnq.Linear(n_in, n_out)
        static.set_weight_bias(qw, bias)
        static.scale, static.zero_point = 0.05, 128
        dynamic = nnqd.Linear(n_in, n_out)
        dynamic.set_weight_bias(qw, bias)
        s_layer = jl.QuantizedLinear(n_out, per_channel=True)
        s_vars = jl.interop.from_torch(s_layer, static.state_dict())
        d_layer = jl.DynamicQuantizedLinear(n_out, per_channel=True)
        d_vars = jl.interop.from_torch(d_layer, dynamic.state_dict())
    x_q = Q.QTensor(jnp.asarray(xq.int_repr().numpy()), jnp.float32(x_s), jnp.int32(x_zp))
    x_t, x_j = torch.from_numpy(x), jnp.asarray(x)
    s_fn = jax.jit(lambda v, x: s_layer.apply(v, x).values)
    d_fn = jax.jit(d_layer.apply)
    return (
        lambda: static(xq),
        lambda: s_fn(s_vars, x_q),
        lambda: dynamic(x_t),
        lambda: d_fn(d_vars, x_j),
    )


def benchmarks() -> list[Bench]:
    rows = []
    for batch, n_in, n_out in SIZES:
        t_s, j_s, t_d, j_d = _pair(batch, n_in, n_out)
        flops = 2 * batch * n_in * n_out
        size = f"b{batch} {n_in}->{n_out}"
        rows.append(Bench("quantized", f"static {size}", flops, t_s, j_s))
        rows.append(Bench("quantized", f"dynamic {size}", flops, t_d, j_d))
    return rows
