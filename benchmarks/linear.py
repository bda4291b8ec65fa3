"""``jl.Linear`` vs ``torch.nn.Linear``: fwd and fwd+bwd (random cotangent, output returned)."""

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxlinear as jl
from benchmarks.timing import Bench

SIZES = [(1024, 1024, 1024), (64, 4096, 4096), (8192, 256, 256)]  # (batch, in, out)


def layer_pair(batch: int, n_in: int, n_out: int, torch_module, jax_module, x_shape, seed=0):
    """The two fwd and fwd+bwd closures for a torch module and a jaxlinear module on the same weights."""
    variables = jl.interop.from_torch(jax_module, torch_module.state_dict())
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(x_shape, dtype=np.float32)
    y_shape = jax.eval_shape(jax_module.apply, variables, jnp.asarray(x_np)).shape
    g_np = rng.standard_normal(y_shape, dtype=np.float32)
    x_t, g_t = torch.from_numpy(x_np), torch.from_numpy(g_np)
    x_j, g_j = jnp.asarray(x_np), jnp.asarray(g_np)

    def torch_fwd():
        with torch.no_grad():
            return torch_module(x_t)

    def torch_fwd_bwd():
        torch_module.zero_grad(set_to_none=True)
        x = x_t.detach().requires_grad_(True)
        y = torch_module(x)
        y.backward(g_t)
        return y

    fwd = jax.jit(jax_module.apply)

    @jax.jit
    def fwd_bwd(variables, x, g):
        y, vjp = jax.vjp(jax_module.apply, variables, x)
        return y, vjp(g)  # returning y keeps the forward matmul alive

    return (
        torch_fwd,
        lambda: fwd(variables, x_j),
        torch_fwd_bwd,
        lambda: fwd_bwd(variables, x_j, g_j),
    )


def benchmarks() -> list[Bench]:
    torch.manual_seed(0)
    rows = []
    for batch, n_in, n_out in SIZES:
        t_fwd, j_fwd, t_fb, j_fb = layer_pair(
            batch, n_in, n_out, torch.nn.Linear(n_in, n_out), jl.Linear(n_out), (batch, n_in)
        )
        flops = 2 * batch * n_in * n_out
        size = f"b{batch} {n_in}->{n_out}"
        rows.append(Bench("linear", f"fwd {size}", flops, t_fwd, j_fwd))
        rows.append(Bench("linear", f"fwd+bwd {size}", 3 * flops, t_fb, j_fb))
    return rows
