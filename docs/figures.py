"""Regenerate the README's figures from jaxlinear's own code: ``python docs/figures.py [--only NAME]``.

Each function below draws one figure into ``docs/figures/<name>.png`` (small PNGs, checked in). CI runs
the whole script (``tests/test_figures.py``), so every figure stays reproducible from the library.
"""

import argparse
import pathlib
import sys
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import jaxlinear as jl  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / "figures"
DPI = 80


class MLP(nn.Module):
    """A 3-layer tanh MLP, SP (torch init, plain Adam) or μP (inferno's rules)."""

    width: int
    mup: bool

    @nn.compact
    def __call__(self, x):
        p = "mup" if self.mup else None
        x = jnp.tanh(
            jl.Linear(self.width, parametrization=p, layer_type="input" if p else "hidden")(x)
        )
        x = jnp.tanh(jl.Linear(self.width, parametrization=p)(x))
        return jl.Linear(1, parametrization=p, layer_type="output" if p else "hidden")(x)


def _task(n: int = 64, d: int = 8, seed: int = 0):
    x = jax.random.normal(jax.random.key(seed), (n, d))
    y = jnp.sin(2 * x[:, :1]) * jnp.cos(x[:, 1:2])
    return x, y


def coord_check(out: pathlib.Path) -> None:
    """Activation size per layer across width after a few Adam steps: μP flat, SP growing."""
    x, y = _task()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    for ax, mup in zip(axes, (False, True), strict=True):
        make_opt = lambda m, v: jl.optim.adam(  # noqa: E731
            0.05, jl.optim.lr_factors(m, v, x, optimizer="adam")
        )
        records = jl.optim.coord_check(
            lambda w, mup=mup: MLP(w, mup), [64, 256, 1024], x, y, make_opt, steps=3
        )
        for layer in sorted({r.layer for r in records}):
            pts = [(r.width, r.l1) for r in records if r.layer == layer and r.step == 3]
            ax.loglog(*zip(*pts, strict=True), marker="o", label=layer)
        ax.set_title(f"{'μP' if mup else 'SP'}: mean |h| after 3 Adam steps")
        ax.set_xlabel("width")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "coord_check.png", dpi=DPI)


def lr_transfer(out: pathlib.Path) -> None:
    """Loss after training vs learning rate, per width: the μP optimum stays put, SP's drifts."""
    x, y = _task(n=256)
    lrs = jnp.logspace(-3, 1, 9)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    for ax, mup in zip(axes, (False, True), strict=True):
        for width in (64, 256, 1024):
            model = MLP(width, mup)
            params = model.init(jax.random.key(1), x)["params"]
            factors = jl.optim.lr_factors(model, {"params": params}, x, optimizer="adam")

            @jax.jit
            @jax.vmap
            def final_loss(lr, model=model, params=params, factors=factors):
                tx = jl.optim.adam(lr, factors)  # a traced learning rate: one compile per width
                loss = lambda p: jnp.mean((model.apply({"params": p}, x) - y) ** 2)  # noqa: E731

                def step(carry, _):
                    p, s = carry
                    g = jax.grad(loss)(p)
                    u, s = tx.update(g, s, p)
                    return (jax.tree.map(jnp.add, p, u), s), None

                (p, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=40)
                return loss(p)

            losses = np.asarray(final_loss(lrs))
            ax.semilogx(lrs, np.minimum(losses, 1.0), marker="o", label=f"width {width}")
            ax.plot(lrs[np.argmin(losses)], losses.min(), "k*")
        ax.set_title(f"{'μP' if mup else 'SP'}: loss after 40 Adam steps")
        ax.set_xlabel("learning rate")
    axes[0].set_ylabel("train loss (clipped at 1)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "lr_transfer.png", dpi=DPI)


def unit_scale_depth(out: pathlib.Path) -> None:
    """Std of each layer's output and gradient at init, depth 8: unit-scaled vs a standard MLP."""

    class Standard(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(8):
                x = jax.nn.gelu(jl.Linear(128, use_bias=False)(x))
            return jl.Linear(16)(x)

    class UnitScaled(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i in range(8):
                block = lambda h, i=i: jl.scaling.gelu(  # noqa: E731
                    jl.UnitScaledLinear(128, name=f"fc{i}")(h)
                )
                x = jl.scaling.residual_apply(block, x, tau=0.5)
            return jl.LinearReadout(16)(x)

    x = jax.random.normal(jax.random.key(0), (256, 128))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    for ax, side in zip(axes, ("fwd", "bwd"), strict=True):
        for model, label in ((Standard(), "standard"), (UnitScaled(), "unit-scaled")):
            variables = model.init(jax.random.key(1), x)
            report = jl.scaling.track_scales(model.apply, variables, x)
            stds = [
                getattr(r, side).std
                for r in report.records
                if r.primitive != "input" and getattr(r, side) is not None and len(r.shape) == 2
            ]
            ax.semilogy(stds, marker=".", label=label)
        ax.axhspan(0.5, 2, color="green", alpha=0.1)
        ax.set_title(f"{'forward' if side == 'fwd' else 'backward'} std of each intermediate")
        ax.set_xlabel("intermediate (in call order)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "unit_scale_depth.png", dpi=DPI)


def quantization_error(out: pathlib.Path) -> None:
    """Relative output error of each int8 mode on an MLP, per layer width."""
    Q = jl.quantization
    x = jax.random.normal(jax.random.key(0), (256, 64))
    modes = {
        "dynamic\n(torch.ao)": dict(mode="dynamic"),
        "static\n(torch.ao)": dict(mode="static", calibration=[x]),
        "weight_only\n(torchao)": dict(mode="weight_only"),
        "dynamic\n(torchao)": dict(mode="dynamic", scheme="torchao"),
    }
    fig, ax = plt.subplots(figsize=(6, 3))
    for k, width in enumerate((64, 512)):
        model = nn.Sequential([jl.Linear(width), nn.relu, jl.Linear(width), nn.relu, nn.Dense(10)])
        variables = model.init(jax.random.key(1), x)
        y = model.apply(variables, x)
        errs = []
        for kwargs in modes.values():
            qmodel, qv = Q.quantize(model, variables, **kwargs)
            errs.append(float(jnp.linalg.norm(qmodel.apply(qv, x) - y) / jnp.linalg.norm(y)))
        ax.bar(np.arange(len(modes)) + 0.4 * k, errs, width=0.4, label=f"width {width}")
    ax.set_xticks(np.arange(len(modes)) + 0.2, list(modes), fontsize=7)
    ax.set_ylabel("relative L2 error vs fp32")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "quantization_error.png", dpi=DPI)


FIGURES: dict[str, Callable[[pathlib.Path], None]] = {
    "coord_check": coord_check,
    "lr_transfer": lr_transfer,
    "unit_scale_depth": unit_scale_depth,
    "quantization_error": quantization_error,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="figures to draw")
    parser.add_argument("--out", type=pathlib.Path, default=OUT, help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or FIGURES:
        FIGURES[name](args.out)
        plt.close("all")
        print(f"wrote {args.out / name}.png", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
