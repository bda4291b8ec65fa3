"""``jl.tabm.TabM`` vs ``tabm.TabM`` (torch) on the same weights: a training step (forward with
dropout, the mean of the k members' MSE, backward, AdamW update; the loss and the new parameters
returned on both sides) and fwd+bwd (eval mode, a random cotangent, the output returned).

The JAX step is one jitted function with the params and optimizer state donated (torch updates in
place); torch runs ``zero_grad``, forward, ``backward`` and ``AdamW.step``. FLOPs count the matmuls of
forward and backward (3 · 2·batch·k·in·out per layer), not the optimizer.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tabm
import torch

import jaxlinear as jl
from benchmarks.timing import Bench

# (arch_type, batch, k, d_block, n_blocks, n_num, cat cardinalities): tabm's k=32 and arch, width 256
CONFIGS = [
    ("tabm", 256, 32, 256, 3, 16, [4, 8]),
    ("tabm-mini", 256, 32, 256, 3, 16, [4, 8]),
    ("tabm-packed", 256, 32, 256, 3, 16, [4, 8]),
]
LR, WD = 2e-3, 3e-4


def _flops(batch: int, k: int, d_in: int, d_block: int, n_blocks: int, d_out: int) -> float:
    fwd = 2 * batch * k * (d_in * d_block + (n_blocks - 1) * d_block * d_block + d_block * d_out)
    return 3.0 * fwd


def _pair(arch, batch, k, d_block, n_blocks, n_num, cards, seed=0):
    kw = {
        "n_num_features": n_num,
        "cat_cardinalities": cards,
        "d_out": 1,
        "k": k,
        "d_block": d_block,
        "n_blocks": n_blocks,
        "arch_type": arch,
    }
    torch.manual_seed(seed)
    ref = tabm.TabM.make(**kw)
    model = jl.tabm.TabM.make(**kw)
    params = jl.interop.from_torch(model, ref)["params"]
    rng = np.random.default_rng(seed)
    x_num = rng.standard_normal((batch, n_num), dtype=np.float32)
    x_cat = np.stack([rng.integers(0, c, batch) for c in cards], axis=1)
    y = rng.standard_normal(batch, dtype=np.float32)
    g = rng.standard_normal((batch, k, 1), dtype=np.float32)
    t_num, t_cat, t_y, t_g = map(torch.from_numpy, (x_num, x_cat, y, g))
    j_num, j_cat, j_y, j_g = map(jnp.asarray, (x_num, x_cat, y, g))

    opt_t = torch.optim.AdamW(ref.parameters(), lr=LR, weight_decay=WD)

    def torch_step():
        ref.train()
        opt_t.zero_grad(set_to_none=True)
        out: torch.Tensor = ref(t_num, t_cat)
        loss = ((out[:, :, 0] - t_y[:, None]) ** 2).mean()
        loss.backward()
        opt_t.step()
        return loss

    def torch_fwd_bwd():
        ref.eval()
        ref.zero_grad(set_to_none=True)
        x = t_num.detach().requires_grad_(True)
        out = ref(x, t_cat)
        out.backward(t_g)
        return out

    opt = optax.adamw(LR, weight_decay=WD)  # torch's AdamW: decoupled decay scaled by lr

    def loss_fn(p, key):
        out = jnp.asarray(
            model.apply({"params": p}, j_num, j_cat, deterministic=False, rngs={"dropout": key})
        )
        return jnp.mean((out[..., 0] - j_y[:, None]) ** 2)

    def _step(p, state, step):
        loss, grads = jax.value_and_grad(loss_fn)(p, jax.random.fold_in(jax.random.key(1), step))
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss

    step_fn = jax.jit(_step, donate_argnums=(0, 1))
    holder = {"p": params, "state": opt.init(params), "step": 0}

    def jax_step():
        holder["p"], holder["state"], loss = step_fn(holder["p"], holder["state"], holder["step"])
        holder["step"] += 1
        return holder["p"], loss

    eval_params = jax.tree.map(jnp.array, params)  # a copy: the step donates `params`

    @jax.jit
    def fwd_bwd(p, x, c, g):
        out, vjp = jax.vjp(lambda p, x: model.apply({"params": p}, x, c), p, x)
        return out, vjp(g)

    flops = _flops(batch, k, n_num + sum(cards), d_block, n_blocks, 1)
    size = f"{arch} b{batch} k{k} d{d_block}x{n_blocks}"
    return [
        Bench("tabm", f"train step {size}", flops, torch_step, jax_step),
        Bench(
            "tabm",
            f"fwd+bwd {size}",
            flops,
            torch_fwd_bwd,
            lambda: fwd_bwd(eval_params, j_num, j_cat, j_g),
        ),
    ]


def benchmarks() -> list[Bench]:
    rows = []
    for config in CONFIGS:
        rows += _pair(*config)
    return rows
