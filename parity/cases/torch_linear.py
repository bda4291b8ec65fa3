"""``torch.nn.Linear`` vs ``jl.Linear``: outputs and gradients, weights exported by torch."""

import functools
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxlinear as jl
from parity.exchange import load_torch_file, to_tensor
from parity.harness import FP32, Case, Check, Tolerance, register
from parity.layer_case import layer_checks, shape_str

REFERENCE = "torch.nn.Linear"
GROUP = "linear"
# bf16 has an 8-bit significand (eps 2^-8 = 3.9e-3; rtol 1e-2 is 2.5 ulp): both sides accumulate in fp32
# and round the output once, so outputs differ by an ulp where the fp32 sums straddle a rounding
# boundary (measured: at most 1 ulp, 4.9e-4 abs).
BF16 = Tolerance(rtol=1e-2, atol=1e-3)

# (in_features, out_features, batch shape): odd sizes, 1-D to 4-D inputs, batch 1 and 0, in == 0.
SHAPES = [
    (5, 7, (3,)),
    (13, 11, (2, 3)),
    (17, 9, (2, 3, 4)),
    (1, 1, (1,)),
    (6, 4, (0,)),
    (7, 5, ()),
    (0, 3, (4,)),
    (129, 67, (32,)),
]
BF16_SHAPES = [(5, 7, (3,)), (13, 11, (2, 3)), (129, 67, (32,))]

PARAM_MAP = {"weight": ("kernel", np.transpose), "bias": ("bias", lambda g: g)}


def _vjp_case(n_in: int, n_out: int, batch: tuple[int, ...], bias: bool, dtype: str) -> list[Check]:
    jax_dtype = jnp.bfloat16 if dtype == "bf16" else None
    param_map = PARAM_MAP if bias else {"weight": PARAM_MAP["weight"]}
    return layer_checks(
        lambda: torch.nn.Linear(n_in, n_out, bias=bias),
        jl.Linear(n_out, use_bias=bias, dtype=jax_dtype),
        (*batch, n_in),
        dtype,
        seed=n_in * 100 + n_out,
        param_map=param_map,
    )


def _roundtrip_case() -> list[Check]:
    """jaxlinear init -> ``to_torch`` -> torch ``load_state_dict`` -> same outputs; and back exactly."""
    layer = jl.Linear(7)
    x = np.random.default_rng(1).standard_normal((4, 5), dtype=np.float32)
    variables = layer.init(jax.random.key(1), x)
    ref = torch.nn.Linear(5, 7)
    ref.load_state_dict({k: to_tensor(v) for k, v in jl.interop.to_torch(layer, variables).items()})
    back = jl.interop.from_torch(layer, ref.state_dict())
    want = ref(torch.from_numpy(x)).detach().numpy()
    return [
        Check("output", np.asarray(layer.apply(variables, x)), want),
        Check(
            "kernel round trip",
            np.asarray(back["params"]["kernel"]),
            np.asarray(variables["params"]["kernel"]),
            Tolerance(0.0, 0.0),
        ),
        Check(
            "bias round trip",
            np.asarray(back["params"]["bias"]),
            np.asarray(variables["params"]["bias"]),
            Tolerance(0.0, 0.0),
        ),
    ]


def _torch_save_case() -> list[Check]:
    """Weights from a ``torch.save``d file, read with ``weights_only=True``."""
    torch.manual_seed(3)
    ref = torch.nn.Linear(11, 6)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "linear.pt")
        torch.save(ref.state_dict(), path)
        state_dict = load_torch_file(path)
    layer = jl.Linear(6)
    x = np.random.default_rng(3).standard_normal((5, 11), dtype=np.float32)
    got = layer.apply(jl.interop.from_torch(layer, state_dict), x)
    return [Check("output", np.asarray(got), ref(torch.from_numpy(x)).detach().numpy())]


def _register_all() -> None:
    for n_in, n_out, batch in SHAPES:
        for bias in (True, False):
            name = f"fp32 x{shape_str((*batch, n_in))} {n_in}->{n_out} bias={bias}"
            register(
                Case(
                    GROUP,
                    REFERENCE,
                    name,
                    FP32,
                    functools.partial(_vjp_case, n_in, n_out, batch, bias, "fp32"),
                )
            )
    for n_in, n_out, batch in BF16_SHAPES:
        for bias in (True, False):
            name = f"bf16 x{shape_str((*batch, n_in))} {n_in}->{n_out} bias={bias}"
            register(
                Case(
                    GROUP,
                    REFERENCE,
                    name,
                    BF16,
                    functools.partial(_vjp_case, n_in, n_out, batch, bias, "bf16"),
                )
            )
    register(Case(GROUP, REFERENCE, "to_torch/from_torch round trip", FP32, _roundtrip_case))
    register(Case(GROUP, REFERENCE, "torch.save file (weights_only)", FP32, _torch_save_case))


_register_all()
