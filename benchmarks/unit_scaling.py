"""``jl.UnitScaledLinear`` / ``jl.LinearReadout`` vs ``unit_scaling`` and vs plain ``jl.Linear``.

Rows named ``... vs torch`` time the torch reference (column "torch ms") against jaxlinear. Rows named
``overhead ...`` put plain ``jl.Linear`` (no bias) in the "torch ms" column and
``jl.UnitScaledLinear`` in the "jax ms" column, both jitted on the same weights: the ratio is the
cost of the scaling (target: under 1.05).
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch
import unit_scaling as uu

import jaxlinear as jl
from benchmarks.linear import layer_pair
from benchmarks.timing import Bench

SIZES = [(1024, 1024, 1024), (8192, 256, 256)]  # (batch, in, out)
GROUP = "unit_scaling"


def _overhead(batch: int, n_in: int, n_out: int) -> Bench:
    rng = np.random.default_rng(0)
    kernel = jnp.asarray(rng.standard_normal((n_in, n_out), dtype=np.float32))
    x = jnp.asarray(rng.standard_normal((batch, n_in), dtype=np.float32))
    g = jnp.asarray(rng.standard_normal((batch, n_out), dtype=np.float32))
    plain, scaled = jl.Linear(n_out, use_bias=False), jl.UnitScaledLinear(n_out)
    variables = {"params": {"kernel": kernel}}

    def fwd_bwd(module):
        @jax.jit
        def f(variables, x, g):
            y, vjp = jax.vjp(module.apply, variables, x)
            return y, vjp(g)

        return lambda: jax.block_until_ready(f(variables, x, g))

    flops = 3 * 2 * batch * n_in * n_out
    name = f"overhead fwd+bwd b{batch} {n_in}->{n_out}"
    return Bench(GROUP, name, flops, fwd_bwd(plain), fwd_bwd(scaled))


def benchmarks() -> list[Bench]:
    torch.manual_seed(0)
    rows = []
    for batch, n_in, n_out in SIZES:
        rows.append(_overhead(batch, n_in, n_out))
        for torch_cls, jax_cls, tag in [
            (uu.Linear, jl.UnitScaledLinear, "Linear"),
            (uu.LinearReadout, jl.LinearReadout, "Readout"),
        ]:
            t_fwd, j_fwd, t_fb, j_fb = layer_pair(
                batch, n_in, n_out, torch_cls(n_in, n_out), jax_cls(n_out), (batch, n_in)
            )
            flops = 2 * batch * n_in * n_out
            size = f"b{batch} {n_in}->{n_out}"
            rows.append(Bench(GROUP, f"{tag} fwd {size} vs torch", flops, t_fwd, j_fwd))
            rows.append(Bench(GROUP, f"{tag} fwd+bwd {size} vs torch", 3 * flops, t_fb, j_fb))
    rows.append(_overhead(64, 4096, 4096))
    return rows
