"""``unit_scaling`` (0.3.5) vs ``jl.scaling`` / ``jl.UnitScaledLinear`` / ``jl.LinearReadout`` / ``jl.optim``.

Layers: output and gradients w.r.t. input, kernel and bias for every constraint, with and without
bias, 1-D to 4-D inputs, odd sizes; fp32 within rtol 1e-5, bfloat16 (and small float16) bit-exact
(torch applies the forward scale in float32 and rounds once, and rounds the backward scale to the
tensor's dtype first; so does jaxlinear).

Optimizers: the per-parameter learning rates and weight decays of ``unit_scaling.optim`` for a small
u-μP MLP, and 20-step trajectories (AdamW, Adam, SGD) from the same weights and data.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import unit_scaling as uu
import unit_scaling.constraints as uc
import unit_scaling.functional as U
import unit_scaling.optim as uo
import unit_scaling.scale as us
from flax import traverse_util

import jaxlinear as jl
from parity.autodiff import jax_vjp, torch_vjp
from parity.exchange import export_state_dict, to_array, to_tensor
from parity.harness import EXACT, FP32, Case, Check, Tolerance, register
from parity.layer_case import shape_str

GROUP = "unit_scaling"
CONSTRAINTS = [None, "gmean", "hmean", "amean", "to_output_scale", "to_grad_input_scale"]
MODULES = {
    "Linear": (uu.Linear, jl.UnitScaledLinear, "unit_scaling.Linear"),
    "LinearReadout": (uu.LinearReadout, jl.LinearReadout, "unit_scaling.LinearReadout"),
}
OPTIMIZER_NAMES = {
    "adam": "unit_scaling.optim.Adam",
    "adamw": "unit_scaling.optim.AdamW",
    "sgd": "unit_scaling.optim.SGD",
}
DTYPES = {
    "fp32": (torch.float32, jnp.float32),
    "bf16": (torch.bfloat16, jnp.bfloat16),
    "fp16": (torch.float16, jnp.float16),
}
# 20 optimizer steps stay within fp32 tolerance: jl.optim's Adam follows torch's operations.
TRAJECTORY = FP32


def _cname(constraint: str | None) -> str:
    return "None" if constraint is None else constraint


def _layer_case(
    kind: str,
    constraint: str | None,
    bias: bool,
    n_in: int,
    n_out: int,
    batch: tuple[int, ...],
    dtype: str,
    default: bool = False,
) -> list[Check]:
    """The torch module built under a seed (bias made non-zero), exported, loaded, VJP compared."""
    torch_cls, jax_cls, _ = MODULES[kind]
    torch_dtype, jax_dtype = DTYPES[dtype]
    seed = n_in * 100 + n_out
    torch.manual_seed(seed)
    if default:  # the reference's own defaults on both sides
        ref, layer = torch_cls(n_in, n_out), jax_cls(n_out, param_dtype=jax_dtype)
    else:
        ref = torch_cls(n_in, n_out, bias=bias, constraint=constraint)
        layer = jax_cls(n_out, use_bias=bias, constraint=constraint, param_dtype=jax_dtype)
    ref = ref.to(torch_dtype)
    if bias:
        with torch.no_grad():  # zeros at init: give the bias values so that the output sees it
            ref.bias.normal_()
    variables = jl.interop.from_torch(layer, export_state_dict(ref))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*batch, n_in), dtype=np.float32).astype(jax_dtype)
    g = rng.standard_normal((*batch, n_out), dtype=np.float32).astype(jax_dtype)
    y_want, grads_want, gx_want = torch_vjp(ref, x, g)
    y_got, grads_got, gx_got = jax_vjp(layer.apply, variables, x, g)
    checks = [
        Check("output", y_got, y_want),
        Check("grad x", gx_got, gx_want),
        Check("grad weight", grads_got["kernel"].T, grads_want["weight"]),
    ]
    if bias:
        checks.append(Check("grad bias", grads_got["bias"], grads_want["bias"]))
    return checks


def _jit_case(dtype: str) -> list[Check]:
    """The same VJP under ``jax.jit`` (XLA fusion must not skip any of torch's roundings)."""
    torch_dtype, jax_dtype = DTYPES[dtype]
    torch.manual_seed(7)
    ref = uu.Linear(37, 19, bias=True, constraint="gmean").to(torch_dtype)
    with torch.no_grad():
        ref.bias.normal_()
    layer = jl.UnitScaledLinear(19, use_bias=True, constraint="gmean", param_dtype=jax_dtype)
    variables = jl.interop.from_torch(layer, export_state_dict(ref))
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5, 37), dtype=np.float32).astype(jax_dtype)
    g = rng.standard_normal((3, 5, 19), dtype=np.float32).astype(jax_dtype)
    y_want, grads_want, gx_want = torch_vjp(ref, x, g)

    @jax.jit
    def vjp(variables, x, g):
        y, f = jax.vjp(layer.apply, variables, x)
        return y, *f(g)

    y, gv, gx = vjp(variables, jnp.asarray(x), jnp.asarray(g))
    p = gv["params"]
    return [
        Check("output", np.asarray(y), y_want),
        Check("grad x", np.asarray(gx), gx_want),
        Check("grad weight", np.asarray(p["kernel"]).T, grads_want["weight"]),
        Check("grad bias", np.asarray(p["bias"]), grads_want["bias"]),
    ]


def _autocast_case() -> list[Check]:
    """float32 params, bfloat16 compute: ``torch.autocast("cpu", bfloat16)`` vs ``dtype=bfloat16``.

    The backward scales act on the float32 params and input (grads come back float32), the forward
    scale on the bfloat16 matmul output.
    """
    torch.manual_seed(11)
    ref = uu.Linear(23, 13, bias=True, constraint=None)
    with torch.no_grad():
        ref.bias.normal_()
    layer = jl.UnitScaledLinear(13, use_bias=True, constraint=None, dtype=jnp.bfloat16)
    variables = jl.interop.from_torch(layer, export_state_dict(ref))
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 23), dtype=np.float32)
    g = rng.standard_normal((6, 13), dtype=np.float32).astype(jnp.bfloat16)
    xt = torch.from_numpy(x).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yt = ref(xt)
    yt.backward(to_tensor(g))
    y, vjp = jax.vjp(layer.apply, variables, jnp.asarray(x))
    gv, gx = vjp(jnp.asarray(g))
    checks = [
        Check("output (bf16)", np.asarray(y, np.float32), to_array(yt)),
        Check("grad x (fp32)", np.asarray(gx), to_array(xt.grad)),
        Check(
            "grad weight (fp32)", np.asarray(gv["params"]["kernel"]).T, to_array(ref.weight.grad)
        ),
        Check("grad bias (fp32)", np.asarray(gv["params"]["bias"]), to_array(ref.bias.grad)),
    ]
    if y.dtype != jnp.bfloat16 or gx.dtype != jnp.float32:
        raise AssertionError(f"dtypes: output {y.dtype} (want bfloat16), grad x {gx.dtype}")
    return checks


def _functional_case(dtype: str) -> list[Check]:
    """``scale_fwd``/``scale_bwd`` and ``linear`` with a custom ``scale_power`` vs the reference."""
    torch_dtype, jax_dtype = DTYPES[dtype]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 9, 31), dtype=np.float32).astype(jax_dtype)
    w = rng.standard_normal((17, 31), dtype=np.float32).astype(jax_dtype)
    b = rng.standard_normal((17,), dtype=np.float32).astype(jax_dtype)
    g = rng.standard_normal((4, 9, 17), dtype=np.float32).astype(jax_dtype)
    checks = []
    for name, t_fn, j_fn in [
        ("scale_fwd", us.scale_fwd, jl.scaling.scale_fwd),
        ("scale_bwd", us.scale_bwd, jl.scaling.scale_bwd),
    ]:
        for s in (1 / 1000**0.5, 3.7, 1 / 3):
            xt = to_tensor(x).requires_grad_(True)
            yt = t_fn(xt, s)
            yt.backward(to_tensor(x))
            y, f = jax.vjp(lambda v, s=s, j_fn=j_fn: j_fn(v, s), jnp.asarray(x))
            checks.append(Check(f"{name}({s:.4g}) output", np.asarray(y, np.float32), to_array(yt)))
            (gx,) = f(jnp.asarray(x))
            checks.append(
                Check(f"{name}({s:.4g}) grad", np.asarray(gx, np.float32), to_array(xt.grad))
            )
    power = (0.75, 0.25, 1.0)
    for constraint in ("gmean", None):
        xt, wt, bt = (to_tensor(a).requires_grad_(True) for a in (x, w, b))
        yt = U.linear(xt, wt, bt, constraint=constraint, scale_power=power)
        yt.backward(to_tensor(g))
        fn = functools.partial(jl.scaling.linear, constraint=constraint, scale_power=power)
        y, f = jax.vjp(fn, jnp.asarray(x), jnp.asarray(w).T, jnp.asarray(b))
        gx, gw, gb = f(jnp.asarray(g))
        tag = f"linear(scale_power={power}, {_cname(constraint)})"
        checks += [
            Check(f"{tag} output", np.asarray(y, np.float32), to_array(yt)),
            Check(f"{tag} grad x", np.asarray(gx, np.float32), to_array(xt.grad)),
            Check(f"{tag} grad w", np.asarray(gw, np.float32).T, to_array(wt.grad)),
            Check(f"{tag} grad b", np.asarray(gb, np.float32), to_array(bt.grad)),
        ]
    xt, wt = (to_tensor(a).requires_grad_(True) for a in (x, w))
    yt = U.linear_readout(xt, wt, None)
    yt.backward(to_tensor(g))
    y, f = jax.vjp(jl.scaling.linear_readout, jnp.asarray(x), jnp.asarray(w).T)
    gx, gw = f(jnp.asarray(g))
    checks += [
        Check("linear_readout output", np.asarray(y, np.float32), to_array(yt)),
        Check("linear_readout grad x", np.asarray(gx, np.float32), to_array(xt.grad)),
        Check("linear_readout grad w", np.asarray(gw, np.float32).T, to_array(wt.grad)),
    ]
    return checks


def _constraints_case() -> list[Check]:
    """Every constraint and ``linear_scales`` equal the reference's float64 values exactly."""
    groups = [(8.0, 2.0), (12.75, 55.0, 0.001), (1 / 37**0.5, 1 / 11**0.5), (1 / 3, 1 / 3**0.5)]
    got, want = [], []
    for name in ("gmean", "hmean", "amean", "to_output_scale"):
        for group in groups:
            got.append(getattr(jl.scaling, name)(*group))
            want.append(getattr(uc, name)(*group))
    for group in groups:
        if len(group) == 2:
            got.append(jl.scaling.to_grad_input_scale(*group))
            want.append(uc.to_grad_input_scale(*group))
        for constraint in CONSTRAINTS:
            if constraint == "to_grad_input_scale" and len(group) != 2:
                continue
            got.extend(jl.scaling.apply_constraint(constraint, *group))
            want.extend(uc.apply_constraint(constraint, *group))
    return [Check("constraint values", np.array(got), np.array(want), EXACT)]


def _roundtrip_case(kind: str) -> list[Check]:
    """jaxlinear init -> ``to_torch`` -> reference ``load_state_dict`` -> same outputs; and back."""
    torch_cls, jax_cls, _ = MODULES[kind]
    layer = jax_cls(7, use_bias=True)
    x = np.random.default_rng(1).standard_normal((4, 5), dtype=np.float32)
    variables = layer.init(jax.random.key(1), x)
    ref = torch_cls(5, 7, bias=True)
    ref.load_state_dict({k: to_tensor(v) for k, v in jl.interop.to_torch(layer, variables).items()})
    back = jl.interop.from_torch(layer, ref.state_dict())
    return [
        Check(
            "output",
            np.asarray(layer.apply(variables, x)),
            ref(torch.from_numpy(x)).detach().numpy(),
        ),
        Check(
            "params round trip",
            np.concatenate([np.ravel(v) for v in jax.tree.leaves(back)]),
            np.concatenate([np.ravel(v) for v in jax.tree.leaves(variables)]),
            EXACT,
        ),
    ]


# ---------------------------------------------------------------------------------------------------
# optimizers: a small u-μP MLP, the same on both sides


N_IN, HIDDEN, N_OUT, DEPTH, BATCH = 12, 24, 5, 3, 16


class _JaxMLP(nn.Module):
    """``Linear(bias) -> relu -> DepthSequential(DEPTH x Linear(bias) -> relu) -> LinearReadout``."""

    readout_constraint: str | None = None

    @nn.compact
    def __call__(self, x):
        x = jax.nn.relu(jl.UnitScaledLinear(HIDDEN, use_bias=True, name="inp")(x))
        for i in range(DEPTH):
            x = jax.nn.relu(jl.UnitScaledLinear(HIDDEN, use_bias=True, name=f"stack_{i}")(x))
        return jl.LinearReadout(
            N_OUT, use_bias=True, constraint=self.readout_constraint, name="out"
        )(x)


class _TorchMLP(torch.nn.Module):
    def __init__(self, readout_constraint: str | None = None) -> None:
        super().__init__()
        self.inp = uu.Linear(N_IN, HIDDEN, bias=True)
        self.stack = uu.DepthSequential(
            *(uu.Linear(HIDDEN, HIDDEN, bias=True) for _ in range(DEPTH))
        )
        self.out = uu.LinearReadout(HIDDEN, N_OUT, bias=True, constraint=readout_constraint)

    def forward(self, x):
        x = torch.relu(self.inp(x))
        for layer in self.stack:
            x = torch.relu(layer(x))
        return self.out(x)


def _jax_path(torch_name: str) -> tuple[str, str]:
    """``"stack.1.weight"`` -> ``("stack_1", "kernel")``."""
    *mod, leaf = torch_name.split(".")
    return "_".join(mod), {"weight": "kernel", "bias": "bias"}[leaf]


def _mlp(seed: int, readout_constraint: str | None):
    torch.manual_seed(seed)
    ref = _TorchMLP(readout_constraint)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.1)
    sd = export_state_dict(ref)
    params = {}
    for name, value in sd.items():
        mod, leaf = _jax_path(name)
        params.setdefault(mod, {})[leaf] = jnp.asarray(value.T if value.ndim == 2 else value)
    model = _JaxMLP(readout_constraint)
    return ref, model, {"params": params}


def _depths() -> dict[str, int]:
    return {f"stack_{i}": DEPTH for i in range(DEPTH)}


def _lr_case(optimizer: str, readout_constraint: str | None) -> list[Check]:
    """Per-parameter lr and weight decay of ``unit_scaling.optim`` vs ``jl.optim``'s factors."""
    lr, wd = 0.1, 1e-3
    ref, model, variables = _mlp(0, readout_constraint)
    cls = {"adam": uo.Adam, "adamw": uo.AdamW, "sgd": uo.SGD}[optimizer]
    kwargs = {"readout_constraint": readout_constraint} if optimizer == "sgd" else {}
    opt = cls(ref.parameters(), lr=lr, weight_decay=wd, **kwargs)
    by_id = {id(p): name for name, p in ref.named_parameters()}
    x = jnp.zeros((1, N_IN))
    # DepthSequential's layers are separate jax modules here: their prefixes all get the depth; the
    # SGD rule reads the readout's constraint from the model
    factors, wd_factors = jl.optim.lr_factors(
        model, variables, x, optimizer=optimizer, depth=_depths()
    )
    # unit_scaling.optim's wd_p = wd / lr_p: jaxlinear's decay is weight_decay * wd factor with
    # weight_decay = wd / lr (the reference's "independent" decay) and wd factor 1 / lr factor
    decays = jax.tree.map(lambda f: (wd / lr) * f, wd_factors)
    got_lr, want_lr, got_wd, want_wd = [], [], [], []
    for group in opt.param_groups:
        (p,) = group["params"]
        mod, leaf = _jax_path(by_id[id(p)])
        got_lr.append(lr * factors[mod][leaf])
        want_lr.append(float(group["lr"]))
        got_wd.append(decays[mod][leaf])
        want_wd.append(float(group["weight_decay"]))
    if len(want_lr) != len(jax.tree.leaves(variables)):
        raise AssertionError("one torch param group per parameter expected")
    return [
        Check("per-parameter lr", np.array(got_lr), np.array(want_lr), Tolerance(1e-12, 0)),
        Check(
            "per-parameter weight decay", np.array(got_wd), np.array(want_wd), Tolerance(1e-12, 0)
        ),
    ]


def _trajectory_case(
    optimizer: str, readout_constraint: str | None, steps: int = 20
) -> list[Check]:
    """``steps`` optimizer steps on the same data from the same weights; params and losses compared."""
    lr, wd = 3e-2, 1e-2
    ref, model, variables = _mlp(1, readout_constraint)
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((steps, BATCH, N_IN), dtype=np.float32)
    ts = rng.standard_normal((steps, BATCH, N_OUT), dtype=np.float32)
    kwargs = {"readout_constraint": readout_constraint} if optimizer == "sgd" else {}
    if optimizer == "sgd":
        kwargs["momentum"] = 0.9
    cls = {"adam": uo.Adam, "adamw": uo.AdamW, "sgd": uo.SGD}[optimizer]
    opt = cls(ref.parameters(), lr=lr, weight_decay=wd, **kwargs)
    want_loss = []
    for x, t in zip(xs, ts, strict=True):
        opt.zero_grad()
        loss = 0.5 * ((ref(torch.from_numpy(x)) - torch.from_numpy(t)) ** 2).mean()
        loss.backward()
        opt.step()
        want_loss.append(loss.item())

    factors = jl.optim.lr_factors(
        model, variables, jnp.asarray(xs[0]), optimizer=optimizer, depth=_depths()
    )
    make = {
        "adam": jl.optim.adam,
        "adamw": jl.optim.adamw,
        "sgd": functools.partial(jl.optim.sgd, momentum=0.9),
    }[optimizer]
    # the reference's independent weight decay: wd_p = wd / lr_p (see lr_factors)
    tx = make(lr, factors, weight_decay=wd / lr)
    params = variables["params"]
    state = tx.init(params)

    @jax.jit
    def step(params, state, x, t):
        def loss_fn(p):
            return 0.5 * jnp.mean((model.apply({"params": p}, x) - t) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    got_loss = []
    for x, t in zip(xs, ts, strict=True):
        params, state, loss = step(params, state, jnp.asarray(x), jnp.asarray(t))
        got_loss.append(float(loss))
    flat = traverse_util.flatten_dict(params)
    checks = [Check(f"loss over {steps} steps", np.array(got_loss), np.array(want_loss))]
    for name, p in ref.named_parameters():
        value = np.asarray(flat[_jax_path(name)])
        checks.append(
            Check(f"{name} after {steps} steps", value.T if value.ndim == 2 else value, to_array(p))
        )
    return checks


# ---------------------------------------------------------------------------------------------------


def _register(name: str, reference: str, tolerance: Tolerance, fn) -> None:
    register(Case(GROUP, reference, name, tolerance, fn))


def _register_all() -> None:
    # every constraint x bias x module, one odd 3-D shape, fp32 and bit-exact bf16
    for kind, (_, _, reference) in MODULES.items():
        for constraint in CONSTRAINTS:
            for bias in (False, True):
                for dtype, tol in (("fp32", FP32), ("bf16", EXACT)):
                    name = f"{kind} {dtype} {_cname(constraint)} bias={bias} x(2x3x13) 13->7"
                    fn = functools.partial(
                        _layer_case, kind, constraint, bias, 13, 7, (2, 3), dtype
                    )
                    _register(name, reference, tol, fn)
        # shapes: 1-D to 4-D inputs, odd sizes, a wide fan-in; the reference's defaults
        for n_in, n_out, batch in [(5, 3, ()), (9, 11, (4,)), (17, 9, (2, 3, 4)), (129, 67, (32,))]:
            for dtype, tol in (("fp32", FP32), ("bf16", EXACT)):
                name = f"{kind} {dtype} defaults x{shape_str((*batch, n_in))} {n_in}->{n_out}"
                fn = functools.partial(
                    _layer_case, kind, None, False, n_in, n_out, batch, dtype, default=True
                )
                _register(name, reference, tol, fn)
            if n_in < 100:  # float16 (10-bit significand): the scaling is bit-exact; at fan_in
                # >= 129 the fp32-accumulated matmul itself (MKL vs XLA order) can differ by 1 ulp
                name = f"{kind} fp16 defaults x{shape_str((*batch, n_in))} {n_in}->{n_out}"
                fn = functools.partial(
                    _layer_case, kind, None, False, n_in, n_out, batch, "fp16", default=True
                )
                _register(name, reference, EXACT, fn)
    for dtype, tol in (("fp32", FP32), ("bf16", EXACT)):
        _register(
            f"jit Linear {dtype} gmean bias",
            "unit_scaling.Linear",
            tol,
            functools.partial(_jit_case, dtype),
        )
        _register(
            f"functional {dtype} scale_fwd/scale_bwd/linear(scale_power)/linear_readout",
            "unit_scaling.functional",
            tol,
            functools.partial(_functional_case, dtype),
        )
    _register("autocast bf16 compute fp32 params", "unit_scaling.Linear", EXACT, _autocast_case)
    _register("constraints (float64)", "unit_scaling.constraints", EXACT, _constraints_case)
    for kind, (_, _, reference) in MODULES.items():
        _register(
            f"{kind} to_torch/from_torch round trip",
            reference,
            FP32,
            functools.partial(_roundtrip_case, kind),
        )
    for optimizer, rc in [
        ("adam", None),
        ("adamw", None),
        ("sgd", None),
        ("sgd", "to_output_scale"),
    ]:
        _register(
            f"lr/wd per parameter {optimizer} readout={_cname(rc)} depth={DEPTH}",
            OPTIMIZER_NAMES[optimizer],
            Tolerance(1e-12, 0),
            functools.partial(_lr_case, optimizer, rc),
        )
    for optimizer, rc in [("adamw", None), ("adam", None), ("sgd", "to_output_scale")]:
        _register(
            f"20-step {optimizer} readout={_cname(rc)} trajectory",
            OPTIMIZER_NAMES[optimizer],
            TRAJECTORY,
            functools.partial(_trajectory_case, optimizer, rc),
        )


_register_all()
