"""Native NNX layers (``jl.nnx``) vs the torch references they mirror, and a native NNX μP MLP.

Layers: ``torch.nn.Linear``, ``delu.nn.NLinear``, ``unit_scaling.Linear`` / ``LinearReadout`` and
``inferno.bnn.Linear`` (μP, each layer type) against ``jl.nnx.Linear`` / ``NLinear`` /
``UnitScaledLinear`` / ``LinearReadout`` on the same weights (``from_torch`` on the NNX layer, then
``nnx.update``): output and gradients w.r.t. input and every param. The μP MLP: an inferno MLP's
weights loaded into an NNX model with ``from_torch`` (call order), its ``lr_factors`` against inferno's
``parameters_and_lrs`` groups (exact), and 5 ``nnx.Optimizer(model, jl.optim.adam(lr, factors),
wrt=nnx.Param)`` steps inside ``nnx.jit`` against inferno + ``torch.optim.Adam``.
"""

import functools
from collections.abc import Callable

import jax
import numpy as np
import torch
import unit_scaling as uu
from delu.nn import NLinear as DeluNLinear
from flax import nnx
from inferno import bnn
from inferno.models import MLP as InfernoMLP

import jaxlinear as jl
from parity.autodiff import jax_vjp, torch_mse_step, torch_vjp
from parity.cases.inferno_parametrizations import ADAM_TOL
from parity.exchange import export_state_dict
from parity.harness import EXACT, FP32, Case, Check, register
from parity.layer_case import shape_str

GROUP = "nnx_layers"
T = lambda g: g.T  # noqa: E731 - torch's (out, in) weight layout
IDENTITY = lambda g: g  # noqa: E731 - delu's layout is jaxlinear's


def nnx_vjp(layer: nnx.Module, x: np.ndarray, g: np.ndarray):
    """``(y, {param name: grad}, grad_x)`` of an NNX layer, through its pure params."""
    graphdef, params, rest = nnx.split(layer, nnx.Param, ...)

    def apply(variables, x):
        state = nnx.clone(params)
        nnx.replace_by_pure_dict(state, variables["params"])
        return nnx.merge(graphdef, state, rest)(x)

    return jax_vjp(apply, {"params": nnx.to_pure_dict(params)}, x, g)


def _layer_case(
    make_torch: Callable[[], torch.nn.Module],
    make_nnx: Callable[[], nnx.Module],
    x_shape: tuple[int, ...],
    seed: int,
    param_map: dict[str, tuple[str, Callable]],
    nonzero_bias: bool = False,
) -> list[Check]:
    torch.manual_seed(seed)
    ref = make_torch()
    if nonzero_bias and getattr(ref, "bias", None) is not None:
        with torch.no_grad():  # unit-scaled biases start at zeros: give them values
            ref.bias.normal_()
    layer = make_nnx()
    nnx.update(layer, jl.interop.from_torch(layer, export_state_dict(ref)))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    g = rng.standard_normal(jax.eval_shape(layer, x).shape, dtype=np.float32)
    y_want, grads_want, gx_want = torch_vjp(ref, x, g)
    y_got, grads_got, gx_got = nnx_vjp(layer, x, g)
    checks = [Check("output", y_got, y_want), Check("grad x", gx_got, gx_want)]
    for torch_name, (jax_name, layout) in param_map.items():
        checks.append(
            Check(f"grad {torch_name}", layout(grads_got[jax_name]), grads_want[torch_name])
        )
    return checks


def _linear(n_in: int, n_out: int, batch: tuple[int, ...], bias: bool) -> list[Check]:
    pm = {"weight": ("kernel", T), **({"bias": ("bias", IDENTITY)} if bias else {})}
    return _layer_case(
        lambda: torch.nn.Linear(n_in, n_out, bias=bias),
        lambda: jl.nnx.Linear(n_in, n_out, use_bias=bias, rngs=nnx.Rngs(0)),
        (*batch, n_in), n_in * 100 + n_out, pm,
    )  # fmt: skip


def _nlinear(n, n_in: int, n_out: int, batch: tuple[int, ...], bias: bool) -> list[Check]:
    n_shape = (n,) if isinstance(n, int) else n
    pm = {"weight": ("kernel", IDENTITY), **({"bias": ("bias", IDENTITY)} if bias else {})}
    return _layer_case(
        lambda: DeluNLinear(n, n_in, n_out, bias=bias),
        lambda: jl.nnx.NLinear(n, n_in, n_out, use_bias=bias, rngs=nnx.Rngs(0)),
        (*batch, *n_shape, n_in), n_in * 100 + n_out, pm,
    )  # fmt: skip


def _unit_scaled(kind: str, constraint, bias: bool, n_in: int, n_out: int) -> list[Check]:
    torch_cls = {"Linear": uu.Linear, "LinearReadout": uu.LinearReadout}[kind]
    nnx_cls = {"Linear": jl.nnx.UnitScaledLinear, "LinearReadout": jl.nnx.LinearReadout}[kind]
    pm = {"weight": ("kernel", T), **({"bias": ("bias", IDENTITY)} if bias else {})}
    return _layer_case(
        lambda: torch_cls(n_in, n_out, bias=bias, constraint=constraint),
        lambda: nnx_cls(n_in, n_out, use_bias=bias, constraint=constraint, rngs=nnx.Rngs(0)),
        (2, 3, n_in), n_in * 100 + n_out, pm, nonzero_bias=True,
    )  # fmt: skip


def _inferno(layer_type: str, n_in: int, n_out: int, bias: bool) -> list[Check]:
    pm = {"params.weight": ("kernel", T), **({"params.bias": ("bias", IDENTITY)} if bias else {})}
    return _layer_case(
        lambda: bnn.Linear(n_in, n_out, bias=bias, layer_type=layer_type,
                           parametrization=bnn.params.MaximalUpdate()),
        lambda: jl.nnx.Linear(n_in, n_out, use_bias=bias, parametrization="mup",
                              layer_type=layer_type, rngs=nnx.Rngs(0)),
        (4, n_in), n_in * 100 + n_out, pm,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ μP MLP
N_IN, HIDDEN, N_OUT = 8, (16, 32), 4


def _nnx_mlp() -> nnx.Sequential:
    rngs = nnx.Rngs(0)
    sizes = (N_IN, *HIDDEN, N_OUT)
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        kind = "input" if i == 0 else "output" if i == len(sizes) - 2 else "hidden"
        layers.append(jl.nnx.Linear(a, b, parametrization="mup", layer_type=kind, rngs=rngs))
        if i < len(sizes) - 2:
            layers.append(jax.numpy.tanh)
    return nnx.Sequential(*layers)


def _inferno_mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return InfernoMLP(N_IN, list(HIDDEN), N_OUT, activation_layer=torch.nn.Tanh,
                      parametrization=bnn.params.MaximalUpdate())  # fmt: skip


def _mlp_lr_case(optimizer: str) -> list[Check]:
    ref = _inferno_mlp()
    model = _nnx_mlp()
    nnx.update(model, jl.interop.from_torch(model, ref))
    factors = jl.optim.lr_factors(model, optimizer=optimizer)
    groups = ref.parameters_and_lrs(1.0, {"sgd": "SGD", "adam": "Adam"}[optimizer])
    lrs = {id(g["params"][0]): g["lr"] for g in groups}
    checks = []
    for name, p in ref.named_parameters():
        index, _, leaf = name.split(".")
        if leaf == "temperature":  # a constant 1 (eval-mode output divisor), not trained
            continue
        got = factors.lr["layers"][int(index)][{"weight": "kernel", "bias": "bias"}[leaf]]
        checks.append(Check(f"lr {name}", np.array(got), np.array(lrs[id(p)])))
    return checks


def _mlp_trajectory_case(lr: float = 1e-2, steps: int = 5) -> list[Check]:
    ref = _inferno_mlp()
    model = _nnx_mlp()
    nnx.update(model, jl.interop.from_torch(model, ref))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, N_IN), dtype=np.float32)
    y = rng.standard_normal((16, N_OUT), dtype=np.float32)
    t_opt = torch.optim.Adam(ref.parameters_and_lrs(lr, "Adam"), lr=lr)
    factors = jl.optim.lr_factors(model, x, optimizer="adam")
    optimizer = nnx.Optimizer(model, jl.optim.adam(lr, factors), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        grads = nnx.grad(lambda m: jax.numpy.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)

    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    checks = []
    for i in range(steps):
        torch_mse_step(ref, t_opt, x_t, y_t)
        step(model, optimizer)
        want = ref.state_dict()
        for key, value in jl.interop.to_torch(model, like=ref).items():
            checks.append(Check(f"step {i + 1} {key}", value, want[key].numpy().copy()))
    return checks


def _register_all() -> None:
    for n_in, n_out, batch in [(5, 7, (3,)), (13, 11, (2, 3)), (0, 3, (4,)), (7, 5, ())]:
        for bias in (True, False):
            register(Case(GROUP, "torch.nn.Linear",
                          f"Linear x{shape_str((*batch, n_in))} {n_in}->{n_out} bias={bias}", FP32,
                          functools.partial(_linear, n_in, n_out, batch, bias)))  # fmt: skip
    for n, n_in, n_out, batch in [(3, 5, 7, (4,)), ((2, 3), 6, 5, (2, 2)), (5, 3, 2, (0,))]:
        n_str = n if isinstance(n, int) else shape_str(n)
        for bias in (True, False):
            register(Case(GROUP, "delu.nn.NLinear",
                          f"NLinear n={n_str} x{shape_str(batch)} {n_in}->{n_out} bias={bias}", FP32,
                          functools.partial(_nlinear, n, n_in, n_out, batch, bias)))  # fmt: skip
    for kind in ("Linear", "LinearReadout"):
        for constraint in (None, "gmean", "to_output_scale"):
            for bias in (True, False):
                register(Case(GROUP, f"unit_scaling.{kind}",
                              f"{kind} constraint={constraint} 37->19 bias={bias}", FP32,
                              functools.partial(_unit_scaled, kind, constraint, bias, 37, 19)))  # fmt: skip
    for layer_type in ("input", "hidden", "output"):
        for bias in (True, False):
            register(Case(GROUP, "inferno-torch MUP",
                          f"Linear mup {layer_type} 33->9 bias={bias}", FP32,
                          functools.partial(_inferno, layer_type, 33, 9, bias)))  # fmt: skip
    for optimizer in ("sgd", "adam"):
        register(Case(GROUP, "inferno-torch MUP", f"NNX μP MLP lr_factors {optimizer}", EXACT,
                      functools.partial(_mlp_lr_case, optimizer)))  # fmt: skip
    register(Case(GROUP, "inferno-torch MUP + torch.optim.Adam",
                  "NNX μP MLP 5 nnx.Optimizer steps in nnx.jit adam lr=0.01", ADAM_TOL,
                  _mlp_trajectory_case))  # fmt: skip


_register_all()
