"""``delu.nn.NLinear`` vs ``jl.NLinear``: outputs and gradients, weights exported by delu."""

import functools

import jax.numpy as jnp
import torch
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


class MemberMajorNLinear(DeluNLinear):
    """delu's NLinear on member-major input ``(*n, ..., in) -> (*n, ..., out)``: the member dims are
    moved behind the batch dims (views), delu runs, and they are moved back (same weights and keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.weight.ndim - 2
        members, behind = tuple(range(k)), tuple(range(x.ndim - k - 1, x.ndim - 1))
        return super().forward(x.movedim(members, behind)).movedim(behind, members)


def _vjp_case(
    n, n_in: int, n_out: int, batch: tuple[int, ...], bias: bool, dtype: str, layout: str
) -> list[Check]:
    n_shape = (n,) if isinstance(n, int) else n
    param_map = {"weight": ("kernel", IDENTITY)}
    if bias:
        param_map["bias"] = ("bias", IDENTITY)
    member_major = layout == "member_major"
    return layer_checks(
        lambda: (MemberMajorNLinear if member_major else DeluNLinear)(n, n_in, n_out, bias=bias),
        jl.NLinear(
            n,
            n_out,
            use_bias=bias,
            layout=layout,
            dtype=jnp.bfloat16 if dtype == "bf16" else None,
        ),
        (*n_shape, *batch, n_in) if member_major else (*batch, *n_shape, n_in),
        dtype,
        seed=n_in * 100 + n_out,
        param_map=param_map,
    )


def _register_all() -> None:
    for dtype, shapes, tol in (("fp32", SHAPES, FP32), ("bf16", BF16_SHAPES, BF16)):
        for n, n_in, n_out, batch in shapes:
            n_shape = (n,) if isinstance(n, int) else n
            n_str = n if isinstance(n, int) else shape_str(n)
            for bias in (True, False):
                name = f"{dtype} n={n_str} x{shape_str((*batch, *n_shape, n_in))} {n_in}->{n_out} bias={bias}"
                case = functools.partial(
                    _vjp_case, n, n_in, n_out, batch, bias, dtype, "batch_major"
                )
                register(Case(GROUP, REFERENCE, name, tol, case))
            # member-major input (*n, ..., in), against delu on the same data moved batch-major
            x_shape = shape_str((*n_shape, *batch, n_in))
            name = f"{dtype} member_major n={n_str} x{x_shape} {n_in}->{n_out}"
            case = functools.partial(_vjp_case, n, n_in, n_out, batch, True, dtype, "member_major")
            register(Case(GROUP, REFERENCE, name, tol, case))


_register_all()
