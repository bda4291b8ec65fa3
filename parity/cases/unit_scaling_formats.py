"""``unit_scaling.formats`` / ``transforms.simulate_format`` (0.3.5) vs ``jl.scaling``.

Casts: ``FPFormat.quantise`` on ~180k float32 values (every scale from 1e-6 to 1e5, random bit
patterns including subnormals, NaN and ±inf, ties, the saturation boundary) for several formats,
bit-exact. Stochastic rounding is compared given the same random bits: torch's ``randint`` draw is
replayed under the same seed and passed to jaxlinear's rounding core (JAX keys cannot reproduce
torch's generator).

Simulation: the reference's ``simulate_format`` passes each format through
``tuple_to_format((e, m))``, which drops the rounding mode, so it always rounds stochastically
(a reference defect: ``simulate_format(m, FPFormat(4, 3, "nearest"), ...)`` gives a different
output on every call). The case therefore builds the reference's transformed graph by hand from
the reference's own pieces (``FPFormat.quantise_fwd`` on the inputs and weights of ``U.linear`` /
``F.linear``, ``quantise_bwd`` on their outputs, exactly what ``_quantised_u_linear`` and
``_quantised_linear`` do) with round-to-nearest, and compares it with ``jl.scaling.simulate_format``
on the same model: output and every gradient within float32 tolerance.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
import unit_scaling.functional as U
from unit_scaling.formats import FPFormat as TorchFPFormat

import jaxlinear as jl
from jaxlinear.scaling._formats import _quantise
from parity.exchange import to_array, to_tensor
from parity.harness import EXACT, FP32, Case, Check, register

GROUP = "unit_scaling_formats"
FORMATS = [(4, 3), (5, 2), (2, 1), (3, 2), (5, 10), (6, 5), (4, 0), (7, 0)]


def _values() -> np.ndarray:
    rng = np.random.default_rng(0)
    v = [rng.standard_normal(10000).astype(np.float32) * s for s in (1e-6, 1e-4, 1e-3, 1e-2, 1, 1e2, 1e4, 1e5)]  # fmt: skip
    bits = rng.integers(0, 2**32, 100000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0625, 1.1875, -1.0625, 240, 248, 239.9, 256,
               57344, 61440, 2**-10, 2**-11, 3 * 2**-11, 2**-16, 2**-17, 1e-30, -1e-38, 2**-149]  # fmt: skip
    return np.concatenate([*v, bits, np.array(special, np.float32)])


def _cast_case(e: int, m: int, rounding: str) -> list[Check]:
    x = _values()
    ref = TorchFPFormat(e, m, rounding)
    rand = None
    if rounding == "stochastic":
        torch.manual_seed(1)
        rand = jnp.asarray(torch.randint(0, 2**ref.srbits, x.shape, dtype=torch.int32).numpy())
    torch.manual_seed(1)  # the same draw inside quantise
    want = ref.quantise(torch.from_numpy(x)).numpy()
    fmt = jl.scaling.FPFormat(e, m, rounding)
    got = np.asarray(jax.jit(_quantise, static_argnums=1)(jnp.asarray(x), fmt, rand))
    # the reference's int32 add wraps NaNs with a large payload (0x7fffffff) to -0; jaxlinear
    # keeps every NaN a NaN (a deliberate difference, checked apart)
    nan = np.isnan(x)
    checks = [
        Check("values (non-NaN inputs)", got[~nan], want[~nan]),
        Check("NaN inputs stay NaN", np.isnan(got[nan]), np.ones(nan.sum(), bool)),
    ]
    if rounding == "nearest":  # the public cast, too
        cast = np.asarray(jl.scaling.cast(x, fmt))
        checks.append(Check("cast() (non-NaN inputs)", cast[~nan], want[~nan]))
    same_bits = got[~nan].view(np.uint32) == want[~nan].view(np.uint32)
    checks.append(Check("bit patterns (incl. signed zeros)", same_bits, np.ones_like(same_bits)))
    props = [fmt.max_absolute_value, fmt.min_absolute_normal, fmt.min_absolute_subnormal, fmt.bits]
    want_props = [ref.max_absolute_value, ref.min_absolute_normal, ref.min_absolute_subnormal,
                  ref.bits]  # fmt: skip
    checks.append(Check("format properties", np.array(props), np.array(want_props)))
    return checks


def _bf16_cast_case() -> list[Check]:
    """bfloat16 input: jaxlinear rounds in float32 and casts back; the reference's quantise breaks
    on non-float32 input (it discards its upcast), so its float32 result is the reference."""
    x = _values()
    x = x[np.isfinite(x)]
    xb = x.astype(jnp.bfloat16)
    ref = TorchFPFormat(4, 3, "nearest")
    want = ref.quantise(torch.from_numpy(xb.astype(np.float32))).to(torch.bfloat16).float().numpy()
    got = np.asarray(jl.scaling.cast(jnp.asarray(xb), jl.scaling.FPFormat(4, 3, "nearest")))
    return [Check("values", got.astype(np.float32), want)]


class _TorchMLP(torch.nn.Module):
    """``U.linear -> U.gelu -> F.linear``, rounded as the reference's transform rounds them."""

    def __init__(self, fwd: TorchFPFormat, bwd: TorchFPFormat) -> None:
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.randn(32, 16))
        self.b1 = torch.nn.Parameter(torch.randn(32))
        self.w2 = torch.nn.Parameter(torch.randn(8, 32) * 0.2)
        self.b2 = torch.nn.Parameter(torch.randn(8))
        self.fwd, self.bwd = fwd, bwd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, qb = self.fwd.quantise_fwd, self.bwd.quantise_bwd
        h = qb(U.linear(q(x), q(self.w1), self.b1, constraint=None))  # _quantised_u_linear
        return qb(F.linear(q(U.gelu(h)), q(self.w2), self.b2))  # _quantised_linear


def _simulate_case(formats: str) -> list[Check]:
    if formats == "fp8":
        fwd, bwd = (4, 3), (5, 2)
    else:
        fwd, bwd = (2, 1), (3, 2)
    torch.manual_seed(3)
    ref = _TorchMLP(TorchFPFormat(*fwd, "nearest"), TorchFPFormat(*bwd, "nearest"))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 16), dtype=np.float32) * 3
    g = rng.standard_normal((6, 8), dtype=np.float32) * 1e-3  # small: E5M2 subnormals matter
    xt = to_tensor(x).requires_grad_(True)
    yt = ref(xt)
    yt.backward(to_tensor(g))
    p = {k: jnp.asarray(to_array(v)) for k, v in ref.named_parameters()}

    def model(p, x):
        h = jl.scaling.linear(x, p["w1"].T, p["b1"], constraint=None)
        return jl.functional.linear(jl.scaling.gelu(h), p["w2"].T, p["b2"])

    sim = jl.scaling.simulate_format(
        model, jl.scaling.FPFormat(*fwd, "nearest"), jl.scaling.FPFormat(*bwd, "nearest")
    )
    y, vjp = jax.vjp(sim, p, jnp.asarray(x))
    gp, gx = vjp(jnp.asarray(g))
    checks = [
        Check("output", np.asarray(y), to_array(yt)),
        Check("grad x", np.asarray(gx), to_array(xt.grad)),
    ]
    for k, v in ref.named_parameters():
        checks.append(Check(f"grad {k}", np.asarray(gp[k]), to_array(v.grad)))
    return checks


def _register_all() -> None:
    for e, m in FORMATS:
        for rounding in ("nearest", "stochastic"):
            register(
                Case(
                    GROUP,
                    "unit_scaling.formats.FPFormat",
                    f"quantise E{e}M{m} {rounding}",
                    EXACT,
                    functools.partial(_cast_case, e, m, rounding),
                )
            )
    register(Case(GROUP, "unit_scaling.formats.FPFormat", "cast bf16 input E4M3", EXACT,
                  _bf16_cast_case))  # fmt: skip
    for formats in ("fp8", "E2M1/E3M2"):
        register(
            Case(
                GROUP,
                "unit_scaling.transforms.simulate_format",
                f"U.linear-gelu-F.linear {formats} nearest",
                FP32,
                functools.partial(_simulate_case, formats),
            )
        )


_register_all()
