"""torchao 0.18 int8 (``quantize_`` with ``Int8WeightOnlyConfig`` / ``Int8DynamicActivationInt8WeightConfig``)
vs ``jl.quantization``: torchao quantizes torch linear layers and MLPs, jaxlinear quantizes the same
float weights (``quantize(mode=..., scheme="torchao")``) and loads torchao's quantized ``state_dict``
(``from_torch(qmodel, ...)``).

Tolerances: integer tensors (int8 weights, activations) and float32 scales are bit-exact. Dynamic
outputs are bit-exact: an exact int32 product, then torchao's float steps in torchao's order.
Weight-only outputs are a float matmul of the input with the int8 weight: torch's and XLA's GEMMs sum
in different orders, so fp32 is compared at the fp32 tolerance (rtol 1e-5, atol 1e-6) and bf16 at the
bf16 one (rtol 1e-2, atol 1e-3).

Host dependence: on x86 CPUs without AVX-512 VNNI or AMX, ``torch._int_mm`` (oneDNN s8s8 through
``vpmaddubsw``) saturates pairwise int16 sums, which is why torchao offers ``reduce_range``; jaxlinear
computes the exact product. There, torchao's dynamic forward is run with ``torch._int_mm`` replaced by
an exact int32 product (the check's name says so and counts the outputs the host kernel changes).
"""

import contextlib
import functools
import io
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch
from torchao.quantization import (
    Int8DynamicActivationInt8WeightConfig,
    Int8Tensor,
    Int8WeightOnlyConfig,
    PerRow,
    quantize_,
)

import jaxlinear as jl
from jaxlinear import quantization as Q
from parity.cases.torch_linear import BF16
from parity.exchange import to_array
from parity.harness import EXACT, FP32, Case, Check, register

GROUP = "torchao"
CONFIGS = {
    "weight_only": (Int8WeightOnlyConfig, "torchao.Int8WeightOnlyConfig"),
    "dynamic": (
        Int8DynamicActivationInt8WeightConfig,
        "torchao.Int8DynamicActivationInt8WeightConfig",
    ),
}
DTYPES = {"fp32": (torch.float32, jnp.float32), "bf16": (torch.bfloat16, jnp.bfloat16)}


def exact_check(name: str, got, want) -> Check:
    got, want = np.asarray(got), np.asarray(want)
    bad = int(np.sum(got != want)) if got.shape == want.shape else -1
    return Check(f"{name} {bad}/{want.size} mismatches", got, want, EXACT)


@functools.cache
def int_mm_saturates() -> bool:
    """Whether this host's ``torch._int_mm`` saturates (no VNNI/AMX): 127·127 summed over K = 64."""
    a = torch.full((1, 64), 127, dtype=torch.int8)
    b = torch.full((64, 8), 127, dtype=torch.int8)
    return int(torch._int_mm(a, b)[0, 0]) != 64 * 127 * 127


def _exact_int_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.long() @ b.long()).to(torch.int32)


@contextlib.contextmanager
def _exact_product():
    """torchao's forward with an exact int8 product where the host kernel saturates."""
    if not int_mm_saturates():
        yield
        return
    original = torch._int_mm
    torch._int_mm = _exact_int_mm
    try:
        yield
    finally:
        torch._int_mm = original


def _quiet():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore")
    return ctx


def _torchao(module: torch.nn.Module, mode: str) -> torch.nn.Module:
    ctx = _quiet()
    try:
        quantize_(module, CONFIGS[mode][0]())
    finally:
        ctx.__exit__(None, None, None)
    return module


def _forward(ref: torch.nn.Module, x: np.ndarray, torch_dtype) -> tuple[np.ndarray, str]:
    """torchao's output (exact product substituted where the host saturates) and a note."""
    xt = torch.from_numpy(x).to(torch_dtype)
    with torch.no_grad():
        host = to_array(ref(xt))
        with _exact_product():
            want = to_array(ref(xt))
    if not int_mm_saturates():
        return want, ""
    return want, f" (host _int_mm saturates on {int(np.sum(host != want))}: exact product)"


def _output_check(mode: str, dtype: str, got, want, note: str) -> Check:
    if mode == "dynamic":
        return exact_check("output" + note, got, want)
    return Check("output", np.asarray(got, np.float32), want, FP32 if dtype == "fp32" else BF16)


# ---------------------------------------------------------------- one linear layer
def _linear_case(mode: str, dtype: str, shape: tuple[int, int], batch: tuple[int, ...], bias: bool,
                 seed: int) -> list[Check]:  # fmt: skip
    torch_dtype, jax_dtype = DTYPES[dtype]
    n_in, n_out = shape
    torch.manual_seed(seed)
    ref = torch.nn.Linear(n_in, n_out, bias=bias).to(torch_dtype)
    layer = jl.Linear(n_out, use_bias=bias, param_dtype=jax_dtype)
    variables = jl.interop.from_torch(layer, ref)  # the float weights, before torchao
    _torchao(ref, mode)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((*batch, n_in)) * rng.uniform(0.1, 3.0, (*batch, 1))).astype(
        np.float32
    )
    x = to_array(torch.from_numpy(x).to(torch_dtype))  # the bf16 values, widened
    want, note = _forward(ref, x, torch_dtype)
    qmodel, qv = Q.quantize(layer, variables, mode=mode, scheme="torchao")
    got = jax.jit(qmodel.apply)(qv, jnp.asarray(x, jax_dtype))
    weight = ref.weight
    checks = [
        exact_check("int8 weight", np.asarray(qv["params"]["kernel"]).T, weight.qdata.numpy()),
        exact_check(
            "weight scale", qv["params"]["kernel_scale"], weight.scale.float().numpy().ravel()
        ),
        _output_check(mode, dtype, got, want, note),
    ]
    if mode == "dynamic" and x.size:  # the activation quantization itself, per row
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            act = Int8Tensor.from_hp(torch.from_numpy(x).to(torch_dtype), PerRow())
        xj = jnp.asarray(x, jax_dtype).reshape(-1, n_in)
        s = Q.torchao_quantize_weight(xj.T)[1]  # rows of x are the "channels" of x.T
        checks.append(exact_check("activation scales", s, act.scale.float().numpy().ravel()))
    return checks


# ---------------------------------------------------------------- models
def _mlp(sizes: tuple[int, ...]) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def _flax_mlp(sizes: tuple[int, ...], param_dtype) -> nn.Module:
    layers: list = []
    for i, b in enumerate(sizes[1:]):
        dense = (
            nn.Dense(b, param_dtype=param_dtype)
            if i == 1
            else jl.Linear(b, param_dtype=param_dtype)
        )
        layers += [dense, nn.relu]  # exact in both: the layers' errors alone
    return nn.Sequential(layers[:-1])


def _model_case(mode: str, dtype: str, via_file: bool, seed: int) -> list[Check]:
    torch_dtype, jax_dtype = DTYPES[dtype]
    sizes = (24, 64, 48, 10)
    torch.manual_seed(seed)
    ref = _mlp(sizes).to(torch_dtype).eval()
    model = _flax_mlp(sizes, jax_dtype)
    variables = jl.interop.from_torch(model, ref)
    _torchao(ref, mode)
    x = np.random.default_rng(seed).standard_normal((17, sizes[0])).astype(np.float32)
    x = to_array(torch.from_numpy(x).to(torch_dtype))
    want, note = _forward(ref, x, torch_dtype)
    qmodel, qv = Q.quantize(model, variables, mode=mode, scheme="torchao")
    state_dict = ref.state_dict()
    if via_file:  # torch.save, loaded back with weights_only=True (torchao allow-lists its tensors)
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        buffer.seek(0)
        state_dict = torch.load(buffer, weights_only=True)
    loaded = jl.interop.from_torch(qmodel, state_dict)  # torchao's int8 weights, read directly
    apply = jax.jit(qmodel.apply)
    xj = jnp.asarray(x, jax_dtype)
    same = jax.tree.leaves(jax.tree.map(np.array_equal, loaded["params"], qv["params"]))
    return [
        exact_check("loaded == quantized here", np.array(all(same)), np.array(True)),
        _output_check(mode, dtype, apply(qv, xj), want, note),
        _output_check(mode, dtype, apply(loaded, xj), want, note + " (loaded)"),
    ]


def _wrong_scheme_case() -> list[Check]:
    """A weight-only state_dict into a dynamic qmodel: refused, naming the config."""
    torch.manual_seed(0)
    ref = _torchao(_mlp((8, 6, 4)), "weight_only")
    model = _flax_mlp((8, 6, 4), jnp.float32)
    variables = model.init(jax.random.key(0), jnp.ones((1, 8)))
    qmodel, _ = Q.quantize(model, variables, mode="dynamic", scheme="torchao")
    try:
        jl.interop.from_torch(qmodel, ref)
        refused = False
    except ValueError as err:
        refused = "Int8WeightOnlyConfig" in str(err)
    return [exact_check("refused with the config's name", np.array(refused), np.array(True))]


def _register_all() -> None:
    seed = 0
    for mode, (_, reference) in CONFIGS.items():
        for dtype in ("fp32", "bf16"):
            for shape, batch, bias in (
                ((64, 40), (33,), True),
                ((37, 23), (2, 5), False),
                ((256, 128), (64,), True),
                ((16, 8), (0,), True),
            ):
                if mode == "dynamic" and batch == (0,):
                    continue  # torchao 0.18's dynamic forward raises on an empty batch (TypeError)
                seed += 1
                name = f"{mode} {dtype} Linear {shape[0]}->{shape[1]} x{batch} bias={bias}"
                register(
                    Case(GROUP, reference, name.replace(",", ""), EXACT,
                         functools.partial(_linear_case, mode, dtype, shape, batch, bias, seed))
                )  # fmt: skip
            for via_file in (False, True):
                seed += 1
                name = f"{mode} {dtype} MLP 24-64-48-10" + (" torch.save file" if via_file else "")
                register(
                    Case(GROUP, reference, name, EXACT,
                         functools.partial(_model_case, mode, dtype, via_file, seed))
                )  # fmt: skip
    register(
        Case(GROUP, "torchao.quantize_", "weight-only state_dict into a dynamic qmodel", EXACT,
             _wrong_scheme_case)
    )  # fmt: skip


_register_all()
