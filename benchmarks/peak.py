"""The host's fp32 matmul peak, in the same run as the other tables: a 2048³ product in jax, torch, numpy.

The large dense rows of ``linear`` are judged against the best of the three (issue: at least 75 %).
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks.timing import Bench

N = 2048


def benchmarks() -> list[Bench]:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((N, N), dtype=np.float32) for _ in range(2))
    a_t, b_t = torch.from_numpy(a), torch.from_numpy(b)
    a_j, b_j = jnp.asarray(a), jnp.asarray(b)
    matmul = jax.jit(jnp.matmul)
    flops = 2 * N**3
    return [
        Bench("peak", f"matmul {N}^3 vs torch", flops, lambda: a_t @ b_t, lambda: matmul(a_j, b_j)),
        Bench("peak", f"matmul {N}^3 vs numpy", flops, lambda: a @ b, lambda: matmul(a_j, b_j)),
    ]
