"""Per-step cost of the per-parameter lr factors (group "optim").

Rows whose name starts with ``overhead`` compare two JAX closures: the "torch" column is the baseline,
the "jax" column the same step with ``jl.optim.adam(lr, lr_factors(...))`` (or ``sgd``). Baselines:
plain ``optax.adam``/``optax.sgd`` ("vs optax" rows: jaxlinear's whole optimizer, torch-ordered Adam
included), and jaxlinear's own optimizer without factors ("factors" rows: the lr-scaling transform
alone). Target ratio < 1.05. The last rows compare a whole training step with inferno's
``torch.optim.Adam`` on ``parameters_and_lrs`` groups.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from inferno import bnn
from inferno.models import MLP as InfernoMLP

import jaxlinear as jl
from benchmarks.timing import Bench

GROUP = "optim"


class MLP(nn.Module):
    hidden: tuple[int, ...]
    out: int

    @nn.compact
    def __call__(self, x):
        p = jl.parametrizations.MaximalUpdate()
        for i, width in enumerate(self.hidden):
            x = jnp.tanh(
                jl.Linear(width, parametrization=p, layer_type="input" if i == 0 else "hidden")(x)
            )
        return jl.Linear(self.out, parametrization=p, layer_type="output")(x)


def _blocking(fn):
    return lambda: jax.block_until_ready(fn())


def _rows(batch: int, n_in: int, hidden: tuple[int, ...], n_out: int) -> list[Bench]:
    model = MLP(hidden, n_out)
    variables = model.init(jax.random.key(0), jnp.ones((1, n_in)))
    params = variables["params"]
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, n_in), dtype=np.float32))
    y = jnp.asarray(rng.standard_normal((batch, n_out), dtype=np.float32))
    grads = jax.tree.map(
        lambda p: jnp.asarray(rng.standard_normal(p.shape, dtype=np.float32)), params
    )
    sizes = (n_in, *hidden, n_out)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    mm_flops = 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    tag = f"mlp {'-'.join(map(str, sizes))}"
    rows = []

    def update_closure(tx):
        state = tx.init(params)

        @jax.jit
        def update(params, state, grads):
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        return lambda: update(params, state, grads)

    def train_closure(tx):
        state = tx.init(params)

        @jax.jit
        def step(params, state):
            loss, g = jax.value_and_grad(
                lambda p: jnp.mean((model.apply({"params": p}, x) - y) ** 2)
            )(params)
            updates, state = tx.update(g, state, params)
            return optax.apply_updates(params, updates), state, loss

        return lambda: step(params, state)

    adam_f = jl.optim.lr_factors(model, variables, optimizer="adam")
    sgd_f = jl.optim.lr_factors(model, variables, optimizer="sgd")
    for name, plain, scaled in [
        ("adam vs optax", optax.adam(1e-3), jl.optim.adam(1e-3, adam_f)),
        ("adam factors", jl.optim.adam(1e-3), jl.optim.adam(1e-3, adam_f)),
        ("sgd vs optax", optax.sgd(1e-3), jl.optim.sgd(1e-3, sgd_f)),
        ("sgd factors", jl.optim.sgd(1e-3), jl.optim.sgd(1e-3, sgd_f)),
    ]:
        rows.append(
            Bench(
                GROUP,
                f"overhead {name} update {tag}",
                10 * n_params,
                _blocking(update_closure(plain)),
                update_closure(scaled),
            )
        )
    rows.append(
        Bench(
            GROUP,
            f"overhead adam train step b{batch} {tag}",
            3 * mm_flops,
            _blocking(train_closure(optax.adam(1e-3))),
            train_closure(jl.optim.adam(1e-3, adam_f)),
        )
    )

    # the torch reference: inferno MLP + torch.optim.Adam on parameters_and_lrs groups
    torch.manual_seed(0)
    ref = InfernoMLP(n_in, list(hidden), n_out, activation_layer=torch.nn.Tanh,
                     parametrization=bnn.params.MaximalUpdate())  # fmt: skip
    t_opt = torch.optim.Adam(ref.parameters_and_lrs(1e-3, "Adam"), lr=1e-3)
    x_t, y_t = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y))

    def torch_step():
        t_opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(ref(x_t), y_t)
        loss.backward()
        t_opt.step()
        return loss

    rows.append(
        Bench(
            GROUP,
            f"inferno Adam train step b{batch} {tag}",
            3 * mm_flops,
            torch_step,
            train_closure(jl.optim.adam(1e-3, adam_f)),
        )
    )
    return rows


def benchmarks() -> list[Bench]:
    return _rows(256, 64, (1024, 1024), 10) + _rows(64, 32, (256, 256, 256), 10)
