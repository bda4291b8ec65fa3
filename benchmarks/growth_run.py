"""A 12-step TINY growth run: wall time and XLA compilations, with and without capacity buckets.

``python -m benchmarks.growth_run [--capacity N] [--steps 12]`` (``--capacity 8``: power-of-two
buckets from 8; ``--capacity 32``: one bucket that holds the whole run). The toy regression: 8 inputs, 2
outputs, ``GrowingMLP(8, 2, (2, 2), 2, "tanh")``, 512 samples in 4 batches of 128, at most 4 new
neurons per step. Compilations are XLA backend compiles, counted with ``jax.monitoring`` (every
jitted program and every eager op on a new shape counts). Not collected by ``python -m benchmarks``
(no ``benchmarks()``): it measures compile time, which the timing protocol warms away.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxlinear as jl

COMPILES = [0]


def _count(event: str, *_args, **_kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        COMPILES[0] += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--capacity", type=int, default=0, help="bucket capacity of the hidden layers (0: none)"
    )
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args(argv)
    jax.config.update("jax_default_matmul_precision", "highest")
    jax.monitoring.register_event_duration_secs_listener(_count)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 8), dtype=np.float32)
    a = rng.standard_normal((8, 2), dtype=np.float32)
    y = np.sin(x @ a).astype(np.float32)
    batches = [
        (jnp.asarray(x[i : i + 128]), jnp.asarray(y[i : i + 128])) for i in range(0, 512, 128)
    ]

    def mse(pred, t):
        return jnp.mean((pred - t) ** 2)

    kwargs = {"capacity": args.capacity} if args.capacity else {}
    model = jl.growing.GrowingMLP(8, 2, (2, 2), 2, "tanh", **kwargs)
    variables = model.init(jax.random.key(0), batches[0][0])
    params = variables if args.capacity else variables["params"]
    start = time.perf_counter()
    before = COMPILES[0]
    for step in range(args.steps):
        t0, c0 = time.perf_counter(), COMPILES[0]
        model, params, info = jl.growing.grow(
            model,
            params,
            batches,
            mse,
            loss_reduction="mean",
            maximum_added_neurons=4,
            progress=False,
        )
        jax.block_until_ready(params)
        widths = jl.growing.active_widths(model, params) if args.capacity else model.widths
        print(
            f"step {step + 1:2d}: layer {info.layer_index} +{info.added_neurons} -> widths "
            f"{widths[1:-1]}, {time.perf_counter() - t0:6.2f} s, {COMPILES[0] - c0} compiles"
        )
    total = time.perf_counter() - start
    print(
        f"total: {total:.1f} s, {COMPILES[0] - before} compiles "
        f"({f'capacity {args.capacity}' if args.capacity else 'no capacity'}), jax {jax.__version__}"
    )


if __name__ == "__main__":
    main()
