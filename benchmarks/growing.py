"""``jl.growing`` vs gromo: per-batch statistics and the growth computation (TINY), same weights.

Model: ``GrowingMLP(w, w, hidden=w, 1 hidden layer, ReLU)``, batch 1024, widths 256 and 1024.

- ``stats``: one batch of forward, backward of the summed MSE and every statistic update. gromo:
  ``zero_grad; MSELoss(sum)(model(x), y).backward(); model.update_computation(False)`` (E, the
  gradient covariance, skipped on both sides); ``stats+E`` is gromo's default
  ``update_computation()`` against jaxlinear with ``init_statistics(..., covariance_loss_gradient=True)``.
- ``growth``: ``compute_optimal_updates`` (δ by LU solve, N, eigh-based S^{-1/2}, SVD, selection, FO)
  on statistics of 2 batches (2048 samples, so S_growth has full rank: see gromo.md 6.2). jaxlinear
  whitens by a Cholesky factor when S_growth is clearly positive definite (same numbers).
- ``train step``: one Adam step on the mean MSE (gromo: ``zero_grad; loss.backward();
  optimizer.step()``; jaxlinear: one jitted ``value_and_grad`` + ``optax.adam``).
- ``train+stats``: a training step that also gathers the statistics. gromo: the training step, then
  its statistics pass; jaxlinear: one jitted ``value_and_grad_with_statistics`` + Adam (the
  statistics come from the training backward). The statistics' own cost is the difference with
  the ``train step`` row on each side.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

import jaxlinear as jl
from benchmarks.timing import Bench

BATCH = 1024
WIDTHS = (256, 1024)


def _pair(width: int) -> list[Bench]:
    from gromo.containers.growing_mlp import GrowingMLP

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GrowingMLP(width, width, width, 1, activation=torch.nn.ReLU())
    model = jl.growing.GrowingMLP(width, width, width, 1, "relu")
    params = jl.interop.from_torch(model, ref.state_dict())["params"]
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((2, BATCH, width), dtype=np.float32)
    ys = rng.standard_normal((2, BATCH, width), dtype=np.float32)
    xt, yt = torch.from_numpy(xs), torch.from_numpy(ys)
    xj, yj = jnp.asarray(xs), jnp.asarray(ys)
    crit = torch.nn.MSELoss(reduction="sum")

    def sse(pred, y):
        return jnp.sum((pred - y) ** 2)

    ref.init_computation()

    def torch_stats(fisher: bool):
        def run():
            ref.zero_grad()
            crit(ref(xt[0]), yt[0]).backward()
            ref.update_computation(update_covariance_loss_gradient=fisher)

        return run

    stats0 = jl.growing.init_statistics(model)
    stats0_e = jl.growing.init_statistics(model, covariance_loss_gradient=True)

    def jax_stats(with_e: bool):
        start = stats0_e if with_e else stats0
        return lambda: jl.growing.update_statistics(model, params, start, xj[0], yj[0], sse)

    # statistics of 2 batches on both sides for the growth computation
    ref.reset_computation()
    ref.init_computation()
    stats = stats0
    for b in range(2):
        ref.zero_grad()
        crit(ref(xt[b]), yt[b]).backward()
        ref.update_computation()
        stats = jl.growing.update_statistics(model, params, stats, xj[b], yj[b], sse)

    opt_t = torch.optim.Adam(ref.parameters(), lr=1e-4)
    mse_t = torch.nn.MSELoss()

    def torch_train():
        opt_t.zero_grad()
        mse_t(ref(xt[0]), yt[0]).backward()
        opt_t.step()

    def torch_train_stats():
        torch_train()
        torch_stats(False)()

    opt = optax.adam(1e-4)
    opt_state = opt.init(params)

    def mse(pred, y):
        return jnp.mean((pred - y) ** 2)

    @jax.jit
    def jax_train_step(p, state, x, y):
        grads = jax.grad(lambda q: mse(model.apply({"params": q}, x), y))(p)
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state

    @jax.jit
    def jax_train_stats_step(p, state, stats, x, y):
        _, grads, stats = jl.growing.value_and_grad_with_statistics(
            model, p, stats, x, y, mse, loss_reduction="mean"
        )
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state, stats

    def jax_train():
        return jax_train_step(params, opt_state, xj[0], yj[0])

    def jax_train_stats():
        return jax_train_stats_step(params, opt_state, stats0, xj[0], yj[0])

    def torch_growth():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref.compute_optimal_updates()

    def jax_growth():
        return jl.growing.compute_optimal_updates(model, stats)

    d = width + 1
    stat_flops = (
        2 * BATCH * (3 * width * width) * 3 + 2 * BATCH * 5 * d * d
    )  # fwd+bwd + 5 outer products
    growth_flops = 4 * d**3  # order of magnitude: LU + eigh + SVD
    size = f"w{width} b{BATCH}"
    train_flops = 2 * BATCH * (3 * width * width) * 2  # fwd (2 GEMMs) + bwd (3 GEMMs), roughly
    return [
        Bench("growing", f"stats {size}", stat_flops, torch_stats(False), jax_stats(False)),
        Bench("growing", f"stats+E {size}", stat_flops, torch_stats(True), jax_stats(True)),
        Bench("growing", f"train step {size}", train_flops, torch_train, jax_train),
        Bench("growing", f"train+stats {size}", train_flops, torch_train_stats, jax_train_stats),
        Bench("growing", f"growth w{width}", growth_flops, torch_growth, jax_growth),
    ]


def benchmarks() -> list[Bench]:
    jax.config.update("jax_default_matmul_precision", "highest")
    return [bench for width in WIDTHS for bench in _pair(width)]
