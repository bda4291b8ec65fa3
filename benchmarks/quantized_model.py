"""Whole-model int8 (``jl.quantization.quantize``) vs the same model quantized by torch.ao / torchao.

One MLP (``SIZES``, ReLU), float32, weights from torch. Rows (group ``qmodel``), each jaxlinear's
quantized model against the torch reference that defines its numbers, plus the fp32 pair, so one run
gives int8-vs-fp32 inside each framework and each framework against the other:

- ``fp32``: ``torch.nn.Sequential`` vs the ported Flax model;
- ``dynamic torch.ao``: ``quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)`` (its default, per-tensor
  weights, x86) vs ``mode="dynamic"`` (the same default);
- ``static torch.ao``: eager PTQ (QuantStub/DeQuantStub per Linear, min/max observers, x86) vs
  ``mode="static"``;
- ``weight_only torchao``: ``Int8WeightOnlyConfig`` vs ``mode="weight_only"``;
- ``dynamic torchao``: ``Int8DynamicActivationInt8WeightConfig`` vs ``mode="dynamic", scheme="torchao"``
  (torchao in eager mode, not ``torch.compile``d).

The host ISA (AVX2 / AVX-512 / VNNI / AMX) is printed by ``python -m benchmarks``.
"""

import copy
import warnings

import flax.linen as nn
import jax
import numpy as np
import torch

import jaxlinear as jl
from benchmarks.timing import Bench
from jaxlinear import quantization as Q

SIZES = (1024, 1024, 1024, 256)
BATCHES = (64, 1024)


class _Stubbed(torch.nn.Module):
    """Every Linear between a QuantStub and a DeQuantStub: eager static quantization."""

    def __init__(self, mlp: torch.nn.Sequential):
        super().__init__()
        self.mlp = copy.deepcopy(mlp)
        n = sum(isinstance(m, torch.nn.Linear) for m in mlp)
        self.quants = torch.nn.ModuleList(torch.ao.quantization.QuantStub() for _ in range(n))
        self.dequants = torch.nn.ModuleList(torch.ao.quantization.DeQuantStub() for _ in range(n))

    def forward(self, x):
        i = 0
        for m in self.mlp:
            if isinstance(m, torch.nn.Linear) or hasattr(m, "_packed_params"):
                x = self.dequants[i](m(self.quants[i](x)))
                i += 1
            else:
                x = m(x)
        return x


def _models(seed: int = 0):
    from torch.ao.quantization import (
        QConfig,
        convert,
        observer,
        prepare,
        quantize_dynamic,
    )
    from torchao.quantization import (
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for a, b in zip(SIZES[:-1], SIZES[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    mlp = torch.nn.Sequential(*layers[:-1]).eval()
    model = nn.Sequential([jl.Linear(b) if i % 2 == 0 else nn.relu
                           for i, b in enumerate(np.repeat(SIZES[1:], 2)[:-1])])  # fmt: skip
    variables = jl.interop.from_torch(model, mlp)
    calibration = [np.random.default_rng(seed + i).standard_normal((256, SIZES[0]), np.float32)
                   for i in range(2)]  # fmt: skip
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refs = {"fp32": mlp}
        refs["dynamic torch.ao"] = quantize_dynamic(
            copy.deepcopy(mlp), {torch.nn.Linear}, dtype=torch.qint8
        )
        stubbed = _Stubbed(mlp).eval()
        stubbed.qconfig = QConfig(
            activation=observer.MinMaxObserver.with_args(reduce_range=True),
            weight=observer.default_per_channel_weight_observer,
        )
        prepared = prepare(stubbed)
        for batch in calibration:
            prepared(torch.from_numpy(batch))
        refs["static torch.ao"] = convert(prepared)
        for name, config in (("weight_only torchao", Int8WeightOnlyConfig()),
                             ("dynamic torchao", Int8DynamicActivationInt8WeightConfig())):  # fmt: skip
            refs[name] = copy.deepcopy(mlp)
            quantize_(refs[name], config)
    ours = {
        "fp32": (model, variables),
        "dynamic torch.ao": Q.quantize(model, variables, mode="dynamic"),
        "static torch.ao": Q.quantize(
            model, variables, mode="static", calibration=calibration, activation_observer="minmax"
        ),  # the reference's QConfig: MinMaxObserver activations
        "weight_only torchao": Q.quantize(model, variables, mode="weight_only"),
        "dynamic torchao": Q.quantize(model, variables, mode="dynamic", scheme="torchao"),
    }
    return refs, ours


def benchmarks() -> list[Bench]:
    refs, ours = _models()
    flops_per_row = 2 * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:], strict=True))
    rows = []
    for batch in BATCHES:
        x = np.random.default_rng(batch).standard_normal((batch, SIZES[0]), np.float32)
        x_t = torch.from_numpy(x)
        for name, ref in refs.items():
            module, variables = ours[name]
            apply = jax.jit(module.apply)

            def reference(ref=ref, x_t=x_t):
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return ref(x_t)

            size = "-".join(map(str, SIZES))
            rows.append(
                Bench("qmodel", f"{name} b{batch} {size}", flops_per_row * batch, reference,
                      lambda apply=apply, v=variables, x=x: apply(v, x))
            )  # fmt: skip
    return rows
