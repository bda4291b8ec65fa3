"""``delu.nn.NLinear`` vs ``jl.NLinear``: outputs and gradients, weights exported by delu."""

import functools

import jax.numpy as jnp
from delu.nn import NLinear as DeluNLinear

import jaxlinear as jl
from parity.cases.torch_linear import BF16
from parity.harness import FP32, Case, Check, register
from parity.layer_case import layer_checks, shape_str

REFERENCE = "delu.nn.NLinear"
GROUP = "nlinear"
IDENTITY = lambda g: g  # delu's layout is jaxlinear's: no transpose

# (n, in_features, out_features, batch shape): int and tuple n, 2-D/3-D/4-D inputs, batch 1 and 0,
# unbatched input (batch ()).
SHAPES = [
    (3, 5, 7, (4,)),
    (4, 13, 11, (2, 3)),
    ((2, 3), 6, 5, (4,)),
    ((2, 3), 6, 5, (2, 2)),
    (1, 1, 1, (1,)),
    (5, 3, 2, (0,)),
    (3, 7, 4, ()),
    (8, 33, 17, (16,)),
]
BF16_SHAPES = [(3, 5, 7, (4,)), (8, 33, 17, (16,))]


def _vjp_case(
    n, n_in: int, n_out: int, batch: tuple[int, ...], bias: bool, dtype: str
) -> list[Check]:
    n_shape = (n,) if isinstance(n, int) else n
    param_map = {"weight": ("kernel", IDENTITY)}
    if bias:
        param_map["bias"] = ("bias", IDENTITY)
    return layer_checks(
        lambda: DeluNLinear(n, n_in, n_out, bias=bias),
        jl.NLinear(n, n_out, use_bias=bias, dtype=jnp.bfloat16 if dtype == "bf16" else None),
        (*batch, *n_shape, n_in),
        dtype,
        seed=n_in * 100 + n_out,
        param_map=param_map,
    )


def _register_all() -> None:
    for dtype, shapes, tol in (("fp32", SHAPES, FP32), ("bf16", BF16_SHAPES, BF16)):
        for n, n_in, n_out, batch in shapes:
            n_shape = (n,) if isinstance(n, int) else n
            for bias in (True, False):
                name = f"{dtype} n={n if isinstance(n, int) else shape_str(n)} x{shape_str((*batch, *n_shape, n_in))} {n_in}->{n_out} bias={bias}"
                register(
                    Case(
                        GROUP,
                        REFERENCE,
                        name,
                        tol,
                        functools.partial(_vjp_case, n, n_in, n_out, batch, bias, dtype),
                    )
                )


_register_all()
