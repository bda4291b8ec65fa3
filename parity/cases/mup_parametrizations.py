"""Microsoft ``mup`` (``MuReadout``, ``set_base_shapes``, ``MuSGD``/``MuAdam``/``MuAdamW``) vs jaxlinear.

Model: ``nn.Linear(8, w) -> tanh -> nn.Linear(w, w) -> tanh -> MuReadout(w, 3)`` with base width 4;
the jaxlinear twin is plain ``jl.Linear`` layers with ``jl.parametrizations.mup_readout_input`` before
the readout. Checked: the readout output (the ``output_mult / width_mult`` multiplier), each parameter's
group lr and weight decay in mup's optimizers vs ``jl.optim.mup_factors`` (exact), and 20-step
trajectories of MuSGD/MuAdam/MuAdamW vs ``jl.optim.sgd``/``adam``/``adamw`` given ``mup_factors``
(params after every step).

mup 1.0.0 quirks worked around here: every optimizer gets ``lr=`` (else ``KeyError: 'lr'``), and the
model is never deep-copied after ``set_base_shapes`` (a copy loses ``infshape``).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import mup
import numpy as np
import torch

import jaxlinear as jl
from parity.autodiff import torch_mse_step
from parity.exchange import export_state_dict
from parity.harness import FP32, Case, Check, Tolerance, register

REFERENCE = "mup"
GROUP = "mup_parametrizations"
N_IN, N_OUT, BASE_WIDTH = 8, 3, 4
LAYERS = [("0.", "Linear_0"), ("2.", "Linear_1"), ("4.", "Linear_2")]


def _torch_model(width: int, output_mult: float) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(N_IN, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, width),
        torch.nn.Tanh(),
        mup.MuReadout(width, N_OUT, output_mult=output_mult),
    )


def _reference(width: int, output_mult: float, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = _torch_model(width, output_mult)
    mup.set_base_shapes(model, _torch_model(BASE_WIDTH, output_mult))
    return model


class MupMLP(nn.Module):
    """The jaxlinear twin: plain Linears, mup's readout multiplier before the last one."""

    width: int
    width_mult: float
    output_mult: float = 1.0

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(jl.Linear(self.width)(x))
        x = jnp.tanh(jl.Linear(self.width)(x))
        x = jl.parametrizations.mup_readout_input(x, self.width_mult, self.output_mult)
        return jl.Linear(N_OUT)(x)


def _twin(width: int, output_mult: float, ref: torch.nn.Module):
    model = MupMLP(width, jl.parametrizations.mup_width_mult(width, BASE_WIDTH), output_mult)
    state = export_state_dict(ref)
    params = {}
    for prefix, name in LAYERS:
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        params[name] = jl.interop.from_torch(jl.Linear(sub["weight"].shape[0]), sub)["params"]
    base = MupMLP(BASE_WIDTH, 1.0, output_mult)
    base_params = jax.eval_shape(base.init, jax.random.key(0), jnp.ones((1, N_IN)))["params"]
    return model, {"params": params}, base_params


def _group_factors(optimizer, lr: float, wd: float) -> dict[int, tuple[float, float]]:
    return {
        id(p): (g["lr"] / lr, g["weight_decay"] / wd)
        for g in optimizer.param_groups
        for p in g["params"]
    }


def _readout_and_lr_case(width: int, output_mult: float) -> list[Check]:
    ref = _reference(width, output_mult)
    model, variables, base_params = _twin(width, output_mult, ref)
    x = np.random.default_rng(width).standard_normal((5, N_IN), dtype=np.float32)
    want = ref(torch.from_numpy(x)).detach().numpy()
    checks = [Check("output (readout multiplier)", np.asarray(model.apply(variables, x)), want)]
    readout_in = torch.tanh(ref[2](torch.tanh(ref[0](torch.from_numpy(x)))))
    checks.append(
        Check(
            "readout input output_mult*x/width_mult",
            np.asarray(
                jl.parametrizations.mup_readout_input(
                    jnp.asarray(readout_in.detach().numpy()),
                    jl.parametrizations.mup_width_mult(width, BASE_WIDTH),
                    output_mult,
                )
            ),
            (ref[4].output_mult * readout_in / ref[4].width_mult()).detach().numpy(),
            Tolerance(0.0, 0.0),
        )
    )
    named = dict(ref.named_parameters())
    for jl_opt, make in [
        ("sgd", mup.MuSGD),
        ("adam", mup.MuAdam),
        ("adamw", mup.MuAdamW),
    ]:
        groups = _group_factors(make(ref.parameters(), lr=0.1, weight_decay=0.5), 0.1, 0.5)
        lrs, wds = jl.optim.mup_factors(variables, base_params, jl_opt)
        for prefix, name in LAYERS:
            for torch_name, jax_name in (("weight", "kernel"), ("bias", "bias")):
                lr_want, wd_want = groups[id(named[prefix + torch_name])]
                checks.append(
                    Check(
                        f"{jl_opt} lr {name}/{jax_name}",
                        np.array(lrs[name][jax_name]),
                        np.array(lr_want),
                        Tolerance(0.0, 0.0),
                    )
                )
                checks.append(
                    Check(
                        f"{jl_opt} wd {name}/{jax_name}",
                        np.array(wds[name][jax_name]),
                        np.array(wd_want),
                        Tolerance(1e-15, 0.0),  # wd*m/wd and lr/m/lr: one double rounding each
                    )
                )
    return checks


def _trajectory_case(width: int, opt: str, lr: float, kwargs: dict, steps: int = 20) -> list[Check]:
    ref = _reference(width, 1.0)
    model, variables, base_params = _twin(width, 1.0, ref)
    torch_opt = {"sgd": mup.MuSGD, "adam": mup.MuAdam, "adamw": mup.MuAdamW}[opt](
        ref.parameters(), lr=lr, **kwargs
    )
    factors = jl.optim.mup_factors(variables["params"], base_params, opt)
    tx = {"sgd": jl.optim.sgd, "adam": jl.optim.adam, "adamw": jl.optim.adamw}[opt](
        lr, factors, **kwargs
    )
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, N_IN), dtype=np.float32)
    y = rng.standard_normal((16, N_OUT), dtype=np.float32)

    def loss_fn(params):
        return jnp.mean((model.apply({"params": params}, x) - y) ** 2)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss_fn)(params), state, params)
        return jax.tree.map(lambda p, u: p + u, params, updates), state

    params, state = variables["params"], tx.init(variables["params"])
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    checks = []
    for i in range(steps):
        torch_mse_step(ref, torch_opt, x_t, y_t)
        params, state = step(params, state)
        want = {k: v.detach().numpy().copy() for k, v in ref.state_dict().items()}
        for prefix, name in LAYERS:
            checks.append(
                Check(
                    f"step {i + 1} {prefix}weight",
                    np.asarray(params[name]["kernel"]).T,
                    want[prefix + "weight"],
                )
            )
            checks.append(
                Check(
                    f"step {i + 1} {prefix}bias",
                    np.asarray(params[name]["bias"]),
                    want[prefix + "bias"],
                )
            )
    return checks


# jl.optim's Adam follows torch's operations, so the Adam trajectories meet the fp32 tolerance here
# (measured worst |diff| over 20 steps: 4.2e-7; optax's scale_by_adam, with other roundings, gave 1.8e-6).
ADAM_TOL = FP32

TRAJECTORIES = [
    (16, "sgd", 0.05, {}),
    (32, "sgd", 0.05, {"momentum": 0.9, "weight_decay": 0.01}),
    (16, "adam", 1e-2, {}),
    (32, "adam", 1e-2, {"weight_decay": 0.1}),
    (32, "adamw", 1e-2, {"weight_decay": 0.1}),
]


def _register_all() -> None:
    for width, output_mult in [(16, 1.0), (32, 2.0), (4, 1.0)]:
        register(
            Case(
                GROUP,
                REFERENCE,
                f"(d) readout + lrs width {width} (base {BASE_WIDTH}) output_mult={output_mult}",
                FP32,
                functools.partial(_readout_and_lr_case, width, output_mult),
            )
        )
    for width, opt, lr, kwargs in TRAJECTORIES:
        extra = " ".join(f"{k}={v}" for k, v in kwargs.items())
        register(
            Case(
                GROUP,
                REFERENCE,
                f"(d) 20 steps Mu{ {'sgd': 'SGD', 'adam': 'Adam', 'adamw': 'AdamW'}[opt] } width {width} lr={lr} {extra}".strip(),
                FP32 if opt == "sgd" else ADAM_TOL,
                functools.partial(_trajectory_case, width, opt, lr, kwargs),
            )
        )


_register_all()


# ------------------------------------------------------------------------------------------ transformer
# A small μP transformer block (token embedding, LayerNorms, attention q/k/v/o, MLP 4x, MuReadout head):
# the lr factors of every parameter, jaxlinear's lr_factors (inferno's μP, i.e. mup at base width 1,
# embeddings and norms by the vector-like rule) and mup_factors (any base) vs mup's param groups.
VOCAB, D_MODEL, D_BASE = 11, 16, 4


class _TorchMuTransformer(torch.nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, d)
        self.ln1, self.ln2, self.lnf = (torch.nn.LayerNorm(d) for _ in range(3))
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d) for _ in range(4))
        self.up, self.down = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)
        self.head = mup.MuReadout(d, VOCAB)


class MuTransformer(nn.Module):
    """The jaxlinear twin: μP ``jl.Linear`` layers, ``nn.Embed``, ``nn.LayerNorm``, attention scaled by
    1/head_dim (zero-init the query and readout with ``jl.parametrizations.mup_zero_init`` after init);
    no ``default=`` needed for ``lr_factors``."""

    d: int
    heads: int = 2

    @nn.compact
    def __call__(self, ids):
        h = nn.Embed(VOCAB, self.d, name="emb")(ids)
        x = nn.LayerNorm(name="ln1")(h)
        split = lambda t: t.reshape(*t.shape[:-1], self.heads, -1)  # noqa: E731
        q = jl.Linear(self.d, parametrization="mup", name="q")(x)
        k = jl.Linear(self.d, parametrization="mup", name="k")(x)
        v = jl.Linear(self.d, parametrization="mup", name="v")(x)
        a = jl.parametrizations.mup_dot_product_attention(split(q), split(k), split(v))
        h = h + jl.Linear(self.d, parametrization="mup", name="o")(a.reshape(h.shape))
        x = nn.gelu(
            jl.Linear(4 * self.d, parametrization="mup", name="up")(nn.LayerNorm(name="ln2")(h))
        )
        h = h + jl.Linear(self.d, parametrization="mup", name="down")(x)
        head = jl.Linear(VOCAB, parametrization="mup", layer_type="output", name="head")
        return head(nn.LayerNorm(name="lnf")(h))


_JAX_NAMES = {"weight": "kernel", "bias": "bias"}


def _jax_leaf(torch_name: str) -> tuple[str, str]:
    layer, leaf = torch_name.split(".")
    if layer == "emb":
        return layer, "embedding"
    if layer.startswith("ln"):
        return layer, {"weight": "scale", "bias": "bias"}[leaf]
    return layer, _JAX_NAMES[leaf]


def _transformer_groups(ref: torch.nn.Module, make, lr: float, wd: float) -> dict[str, tuple]:
    named = {id(p): n for n, p in ref.named_parameters()}
    groups = _group_factors(make(ref.parameters(), lr=lr, weight_decay=wd), lr, wd)
    return {named[i]: f for i, f in groups.items()}


def _transformer_case(optimizer: str) -> list[Check]:
    """lr_factors of the μP transformer vs mup's groups with every width dim's base at 1 (inferno's
    μP is mup at base width 1): the readout weight in mup's coordinates carries the forward multiplier
    1/width_mult, so its multiplier-free lr is the group's / width_mult² (SGD) or / width_mult (Adam).
    The readout bias under SGD is inferno's fan_out (mup: 1, see known_reference_bugs.md), checked
    against inferno's own rule."""
    from inferno.bnn.params import MaximalUpdate

    torch.manual_seed(0)
    ref = _TorchMuTransformer(D_MODEL)
    widths = {D_MODEL, 4 * D_MODEL}
    base = {
        n: tuple(1 if s in widths else s for s in shape) for n, shape in mup.get_shapes(ref).items()
    }
    mup.set_base_shapes(ref, base)
    make = {"sgd": mup.MuSGD, "adam": mup.MuAdam}[optimizer]
    groups = _transformer_groups(ref, make, 0.1, 0.5)
    width_mult = ref.head.width_mult()
    model, ids = MuTransformer(D_MODEL), np.arange(12).reshape(2, 6) % VOCAB
    variables = model.init(jax.random.key(0), ids)
    lrs = jl.optim.lr_factors(model, variables, ids, optimizer=optimizer).lr
    checks = []
    for torch_name, (lr_want, _) in groups.items():
        layer, leaf = _jax_leaf(torch_name)
        label = f"{optimizer} lr {layer}/{leaf}"
        if torch_name == "head.weight":
            lr_want = lr_want / width_mult ** (2 if optimizer == "sgd" else 1)
            label += " (multiplier-free)"
        if torch_name == "head.bias" and optimizer == "sgd":
            lr_want = MaximalUpdate().bias_lr_scale(D_MODEL, VOCAB, "SGD", "output")
            label += " (inferno's fan_out; mup: 1)"
        shape = tuple(dict(ref.named_parameters())[torch_name].shape)
        if optimizer == "sgd" and layer in ("up", "down") and leaf == "kernel":
            # mup's SGD rule for a matrix is lr * fan_out_mult / fan_in_mult: at base 1 the aspect
            # ratio fan_out/fan_in, a width-independent constant inferno's hidden rule (1) omits
            fan_out, fan_in = shape
            checks.append(
                Check(
                    f"sgd mup group lr {layer}/{leaf} = fan_out/fan_in",
                    np.array(lr_want),
                    np.array(fan_out / fan_in),
                    Tolerance(1e-15, 0.0),
                )
            )
            lr_want = MaximalUpdate().weight_lr_scale(fan_in, fan_out, "SGD", "hidden")
            label += f" (inferno's hidden rule; mup: {fan_out / fan_in:g})"
        checks.append(
            Check(label, np.array(lrs[layer][leaf]), np.array(lr_want), Tolerance(1e-15, 0.0))
        )
    return checks


def _transformer_mup_factors_case(optimizer: str) -> list[Check]:
    """mup_factors of the μP transformer (base d_model 4) vs MuSGD/MuAdamW's groups: lr and weight decay
    of every parameter, embeddings and norms included."""
    torch.manual_seed(0)
    ref = _TorchMuTransformer(D_MODEL)
    mup.set_base_shapes(ref, _TorchMuTransformer(D_BASE))
    make = {"sgd": mup.MuSGD, "adam": mup.MuAdam, "adamw": mup.MuAdamW}[optimizer]
    groups = _transformer_groups(ref, make, 0.1, 0.5)
    ids = np.arange(12).reshape(2, 6) % VOCAB
    params = MuTransformer(D_MODEL).init(jax.random.key(0), ids)["params"]
    base = jax.eval_shape(MuTransformer(D_BASE).init, jax.random.key(0), ids)["params"]
    lrs, wds = jl.optim.mup_factors(params, base, optimizer)
    checks = []
    for torch_name, (lr_want, wd_want) in groups.items():
        layer, leaf = _jax_leaf(torch_name)
        tol = Tolerance(1e-15, 0.0)
        checks.append(
            Check(
                f"{optimizer} lr {layer}/{leaf}", np.array(lrs[layer][leaf]), np.array(lr_want), tol
            )
        )
        checks.append(
            Check(
                f"{optimizer} wd {layer}/{leaf}", np.array(wds[layer][leaf]), np.array(wd_want), tol
            )
        )
    return checks


def _register_transformer() -> None:
    for optimizer in ("sgd", "adam"):
        register(
            Case(
                GROUP,
                f"mup.Mu{ {'sgd': 'SGD', 'adam': 'Adam'}[optimizer] }",
                f"(d) μP transformer lr_factors {optimizer} (Embed, LayerNorm, attention, MuReadout; base 1)",
                Tolerance(1e-15, 0.0),
                functools.partial(_transformer_case, optimizer),
            )
        )
    for optimizer in ("sgd", "adam", "adamw"):
        register(
            Case(
                GROUP,
                f"mup.Mu{ {'sgd': 'SGD', 'adam': 'Adam', 'adamw': 'AdamW'}[optimizer] }",
                f"(d) μP transformer mup_factors {optimizer} (base d_model {D_BASE})",
                Tolerance(1e-15, 0.0),
                functools.partial(_transformer_mup_factors_case, optimizer),
            )
        )


_register_transformer()
