"""``jl.NLinear`` vs ``delu.nn.NLinear``: fwd and fwd+bwd (random cotangent, output returned)."""

import torch
from delu.nn import NLinear as DeluNLinear

import jaxlinear as jl
from benchmarks.linear import layer_pair
from benchmarks.timing import Bench
from parity.cases.delu_nlinear import MemberMajorNLinear

# (batch, n, in, out); the last is a TabM-style head (one output per member: the "dot_general" form)
SIZES = [(256, 32, 256, 256), (1024, 8, 64, 64), (256, 32, 256, 1)]


def benchmarks() -> list[Bench]:
    torch.manual_seed(0)
    rows = []
    for batch, n, n_in, n_out in SIZES:
        t_fwd, j_fwd, t_fb, j_fb = layer_pair(
            batch, n_in, n_out, DeluNLinear(n, n_in, n_out), jl.NLinear(n, n_out), (batch, n, n_in)
        )
        flops = 2 * batch * n * n_in * n_out
        size = f"b{batch} n{n} {n_in}->{n_out}"
        rows.append(Bench("nlinear", f"fwd {size}", flops, t_fwd, j_fwd))
        rows.append(Bench("nlinear", f"fwd+bwd {size}", 3 * flops, t_fb, j_fb))
        # member-major (n, batch, in): delu on the same data (moved batch-major as views) vs
        # jl.NLinear(layout="member_major"), which needs no transposed copies
        t_fwd, j_fwd, t_fb, j_fb = layer_pair(
            batch,
            n_in,
            n_out,
            MemberMajorNLinear(n, n_in, n_out),
            jl.NLinear(n, n_out, layout="member_major"),
            (n, batch, n_in),
        )
        size = f"member_major b{batch} n{n} {n_in}->{n_out}"
        rows.append(Bench("nlinear", f"fwd {size}", flops, t_fwd, j_fwd))
        rows.append(Bench("nlinear", f"fwd+bwd {size}", 3 * flops, t_fb, j_fb))
    return rows
