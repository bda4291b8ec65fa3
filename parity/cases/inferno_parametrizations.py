"""inferno-torch parametrizations vs ``jl.parametrizations`` / ``jl.Linear`` / ``jl.optim``.

(a) the four scale functions on a grid of fans, layer types and optimizers (exact floats; where
inferno raises, jaxlinear raises the same exception type); (b) per-parameter learning rates of small
MLPs and a nested model (``jl.optim.lr_factors``) equal to inferno's ``parameters_and_lrs`` groups
(exact); (c) 20-step SGD and Adam trajectories (``jl.optim.sgd/adam/adamw``) from inferno's init
weights, parameters compared after every step; (e) ``jl.NLinear`` with a parametrization as N inferno
layers: init scales (inferno's, per member), lr factors, forward on N layers' weights.
"""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch
from inferno import bnn
from inferno.models import MLP as InfernoMLP

import jaxlinear as jl
from parity.autodiff import torch_mse_step
from parity.exchange import export_state_dict, to_tensor
from parity.harness import EXACT, FP32, Case, Check, Tolerance, register
from parity.layer_case import layer_checks

REFERENCE = "inferno-torch"
GROUP = "inferno_parametrizations"

PARAMETRIZATIONS = {
    "SP": (bnn.params.Standard, jl.parametrizations.Standard),
    "NTP": (bnn.params.NeuralTangent, jl.parametrizations.NeuralTangent),
    "MUP": (bnn.params.MaximalUpdate, jl.parametrizations.MaximalUpdate),
}
FANS_IN = [0, 1, 3, 8, 64, 100, 257]
FANS_OUT = [1, 4, 64, 300]
LAYER_TYPES = ["input", "hidden", "output"]
# jaxlinear's name -> inferno's: inferno knows only its own spellings
OPTIMIZERS = {"SGD": "SGD", "Adam": "Adam", "sgd": "SGD", "adam": "Adam", "adamw": "Adam"}


def _value(fn: Callable[[], float], exc_types: tuple[type, ...]) -> float:
    """The float, or a code for the exception raised: -1 for ``exc_types[0]``, -2 for ``[1]``, ...

    Scales are never negative, so a negative value can only be an exception code.
    """
    try:
        return float(fn())
    except exc_types as err:
        for code, t in enumerate(exc_types, start=1):
            if isinstance(err, t):
                return -float(code)
        raise


_RAISES = (NotImplementedError, ZeroDivisionError)


def _grid_case(name: str) -> list[Check]:
    ref_cls, jl_cls = PARAMETRIZATIONS[name]
    ref, ours = ref_cls(), jl_cls()
    checks = []
    for method in ("weight_init_scale", "bias_init_scale"):
        got, want = [], []
        for fi in FANS_IN:
            for fo in FANS_OUT:
                for lt in LAYER_TYPES:
                    want.append(_value(lambda: getattr(ref, method)(fi, fo, lt), _RAISES))  # noqa: B023
                    got.append(_value(lambda: getattr(ours, method)(fi, fo, lt), _RAISES))  # noqa: B023
        checks.append(Check(method, np.array(got), np.array(want)))
    for method in ("weight_lr_scale", "bias_lr_scale"):
        for jl_opt, ref_opt in OPTIMIZERS.items():
            got, want = [], []
            for fi in FANS_IN:
                for fo in FANS_OUT:
                    for lt in LAYER_TYPES:
                        want.append(
                            _value(lambda: getattr(ref, method)(fi, fo, ref_opt, lt), _RAISES)  # noqa: B023
                        )
                        got.append(
                            _value(lambda: getattr(ours, method)(fi, fo, jl_opt, lt), _RAISES)  # noqa: B023
                        )
            checks.append(Check(f"{method} {jl_opt!r}", np.array(got), np.array(want)))
    # Deliberate difference: an unknown name. inferno's Standard returns 1.0 for any string and its
    # other classes raise NotImplementedError; jaxlinear always raises UnknownOptimizerError, which is
    # both a ValueError (listing the accepted names) and a NotImplementedError.
    for method in ("weight_lr_scale", "bias_lr_scale"):
        try:
            getattr(ours, method)(8, 4, "RMSprop")
            raised = 0.0
        except jl.parametrizations.UnknownOptimizerError as err:
            raised = float(isinstance(err, ValueError) and isinstance(err, NotImplementedError))
        checks.append(
            Check(f"{method} 'RMSprop' raises (deliberate)", np.array(raised), np.array(1.0))
        )
    return checks


# ----------------------------------------------------------------------------------------------
# single layers: init distribution (seed replay), forward/backward, round trip

LAYER_PARAM_MAP = {
    "params.weight": ("kernel", np.transpose),
    "params.bias": ("bias", lambda g: g),
}


def _layer_case(p_name: str, layer_type: str, n_in: int, n_out: int, use_bias: bool) -> list[Check]:
    """inferno.bnn.Linear vs jl.Linear: VJP on inferno's weights, and inferno's init replayed.

    Replay: inferno draws ``normal_(W, 0, s_w)`` then ``normal_(b, 0, s_b)``; drawing
    ``randn`` under the same seed and multiplying by jaxlinear's scales must give the exported weights
    exactly, which pins down the distribution (an untruncated normal) and both stds.
    """
    ref_cls, jl_cls = PARAMETRIZATIONS[p_name]
    seed = 7 * n_in + n_out
    make = lambda: bnn.Linear(
        n_in, n_out, bias=use_bias, layer_type=layer_type, parametrization=ref_cls()
    )
    layer = jl.Linear(n_out, use_bias=use_bias, parametrization=jl_cls(), layer_type=layer_type)
    param_map = LAYER_PARAM_MAP if use_bias else {"params.weight": LAYER_PARAM_MAP["params.weight"]}
    checks = layer_checks(make, layer, (3, 2, n_in), "fp32", seed, param_map)
    torch.manual_seed(seed)
    ref_vars = jl.interop.from_torch(layer, export_state_dict(make()))["params"]
    torch.manual_seed(seed)
    p = jl_cls()
    w = torch.randn(n_out, n_in) * p.weight_init_scale(n_in, n_out, layer_type)
    checks.append(
        Check(
            "init kernel = s_w * randn (replay)", np.asarray(ref_vars["kernel"]), w.numpy().T, EXACT
        )
    )
    if use_bias:
        b = torch.randn(n_out) * p.bias_init_scale(n_in, n_out, layer_type)
        checks.append(
            Check(
                "init bias = s_b * randn (replay)", np.asarray(ref_vars["bias"]), b.numpy(), EXACT
            )
        )
    # jaxlinear's own init, moved to inferno with to_torch: same outputs (eval mode: temperature 1)
    x = np.random.default_rng(seed).standard_normal((4, n_in), dtype=np.float32)
    variables = layer.init(jax.random.key(seed), x)
    ref = make().eval()
    ref.load_state_dict({k: to_tensor(v) for k, v in jl.interop.to_torch(layer, variables).items()})
    want = ref(torch.from_numpy(x)).detach().numpy()
    checks.append(Check("to_torch -> inferno output", np.asarray(layer.apply(variables, x)), want))
    return checks


# ----------------------------------------------------------------------------------------------
# Models: inferno.models.MLP and a nested bnn.Sequential, and their jaxlinear twins.


class MLP(nn.Module):
    """``inferno.models.MLP(in, hidden, out, activation_layer=nn.Tanh)`` with jl.Linear layers."""

    hidden: tuple[int, ...]
    out: int
    parametrization: str | jl.parametrizations.Parametrization | None

    @nn.compact
    def __call__(self, x):
        for i, width in enumerate(self.hidden):
            layer_type = "input" if i == 0 else "hidden"
            x = jnp.tanh(
                jl.Linear(width, parametrization=self.parametrization, layer_type=layer_type)(x)
            )
        return jl.Linear(self.out, parametrization=self.parametrization, layer_type="output")(x)


class Block(nn.Module):
    width: int
    parametrization: jl.parametrizations.Parametrization

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(jl.Linear(self.width, parametrization=self.parametrization, name="inner")(x))
        return jnp.tanh(
            jl.Linear(self.width, parametrization=self.parametrization, name="outer")(x)
        )


class Nested(nn.Module):
    """input Linear -> Block(two hidden Linears) -> output Linear."""

    width: int
    out: int
    parametrization: jl.parametrizations.Parametrization

    @nn.compact
    def __call__(self, x):
        p = self.parametrization
        x = jnp.tanh(jl.Linear(self.width, parametrization=p, layer_type="input", name="stem")(x))
        x = Block(self.width, p, name="block")(x)
        return jl.Linear(self.out, parametrization=p, layer_type="output", name="head")(x)


def _torch_nested(n_in: int, width: int, n_out: int, parametrization) -> torch.nn.Module:
    return bnn.Sequential(
        bnn.Linear(n_in, width, layer_type="input"),
        torch.nn.Tanh(),
        bnn.Sequential(
            bnn.Linear(width, width), torch.nn.Tanh(), bnn.Linear(width, width), torch.nn.Tanh()
        ),
        bnn.Linear(width, n_out, layer_type="output"),
        parametrization=parametrization,
    )


# torch module prefix -> jax path, in layer order
def _mlp_layers(n_layers: int) -> list[tuple[str, tuple[str, ...]]]:
    return [(f"{2 * i}.", (f"Linear_{i}",)) for i in range(n_layers)]


NESTED_LAYERS = [("0.", ("stem",)), ("2.0.", ("block", "inner")), ("2.2.", ("block", "outer")),
                 ("3.", ("head",))]  # fmt: skip


def load_variables(state_dict, layers) -> dict:
    """jax variables from the torch model's state_dict, layer by layer through ``from_torch``."""
    params: dict = {}
    for prefix, path in layers:
        sub = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        sub = {k: v for k, v in sub.items() if k.count(".") == 1}  # this layer's own keys
        layer_type = "output" if "params.temperature" in sub else "hidden"
        layer = jl.Linear(sub["params.weight"].shape[0], layer_type=layer_type)
        node = params
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = jl.interop.from_torch(layer, sub)["params"]
    return {"params": params}


def _mlp_pair(p_name: str, n_in: int, hidden: tuple[int, ...], n_out: int):
    """inferno's tanh MLP (seed 0) under ``p_name``, the jaxlinear MLP, its variables and layers."""
    ref_cls, jl_cls = PARAMETRIZATIONS[p_name]
    torch.manual_seed(0)
    ref = InfernoMLP(
        n_in, list(hidden), n_out, activation_layer=torch.nn.Tanh, parametrization=ref_cls()
    )
    model = MLP(hidden, n_out, jl_cls())
    layers = _mlp_layers(len(hidden) + 1)
    return ref, model, load_variables(export_state_dict(ref), layers), layers


def _torch_lrs(model: torch.nn.Module, optimizer: str) -> dict[int, float]:
    """id(parameter) -> lr of inferno's groups at base lr 1.0."""
    return {id(g["params"][0]): g["lr"] for g in model.parameters_and_lrs(1.0, optimizer)}


def _lr_checks(
    ref: torch.nn.Module, model: nn.Module, variables, layers, jl_opt: str, default=None
) -> list[Check]:
    ref_opt = OPTIMIZERS[jl_opt]
    try:
        want_lrs = _torch_lrs(ref, ref_opt)
    except NotImplementedError:
        want_lrs = None
    try:
        got = jl.optim.lr_factors(model, variables, optimizer=jl_opt, default=default).lr
    except NotImplementedError:
        got = None
    if want_lrs is None or got is None:  # both must raise
        return [
            Check(
                "raises NotImplementedError",
                np.array(float(got is None)),
                np.array(float(want_lrs is None)),
            )
        ]
    named = dict(ref.named_parameters())
    checks = []
    for prefix, path in layers:
        node = got
        for name in path:
            node = node[name]
        for torch_name, jax_name in (("params.weight", "kernel"), ("params.bias", "bias")):
            want = want_lrs[id(named[prefix + torch_name])]
            checks.append(
                Check(f"{'/'.join(path)}/{jax_name}", np.array(node[jax_name]), np.array(want))
            )
    return checks


def _mlp_lr_case(
    p_name: str, n_in: int, hidden: tuple[int, ...], n_out: int, jl_opt: str
) -> list[Check]:
    ref, model, variables, layers = _mlp_pair(p_name, n_in, hidden, n_out)
    return _lr_checks(ref, model, variables, layers, jl_opt)


def _nested_lr_case(p_name: str, jl_opt: str) -> list[Check]:
    ref_cls, jl_cls = PARAMETRIZATIONS[p_name]
    torch.manual_seed(0)
    ref = _torch_nested(5, 24, 3, ref_cls())
    model = Nested(24, 3, jl_cls())
    variables = model.init(jax.random.key(0), jnp.ones((1, 5)))
    return _lr_checks(ref, model, variables, NESTED_LAYERS, jl_opt)


class NormMLP(nn.Module):
    """input Linear -> LayerNorm -> tanh -> output Linear."""

    @nn.compact
    def __call__(self, x):
        p = jl.parametrizations.MaximalUpdate()
        x = jl.Linear(16, parametrization=p, layer_type="input")(x)
        x = jnp.tanh(nn.LayerNorm(epsilon=1e-5)(x))
        return jl.Linear(4, parametrization=p, layer_type="output")(x)


def _layernorm_case(jl_opt: str) -> list[Check]:
    """inferno drops norm-layer params from its groups (a bug); jaxlinear trains them by μP's
    vector-like rule (mup's MuSGD/MuAdam: the rule of an input layer's weight, fan_out = the norm's
    width), with no ``default`` needed.

    The Linear layers' factors equal inferno's; the LayerNorm's are checked against inferno's own input
    weight rule for fans (1, 16), and the case asserts that inferno still drops them (so a fixed inferno
    is noticed).
    """
    torch.manual_seed(0)
    ref = bnn.Sequential(
        bnn.Linear(8, 16, layer_type="input"),
        torch.nn.LayerNorm(16),
        torch.nn.Tanh(),
        bnn.Linear(16, 4, layer_type="output"),
        parametrization=bnn.params.MaximalUpdate(),
    )
    grouped = {id(g["params"][0]) for g in ref.parameters_and_lrs(1.0, OPTIMIZERS[jl_opt])}
    if id(ref[1].weight) in grouped or id(ref[1].bias) in grouped:
        raise AssertionError("inferno now puts LayerNorm params in its groups: revisit this case.")
    model = NormMLP()
    variables = model.init(jax.random.key(0), jnp.ones((1, 8)))
    checks = _lr_checks(
        ref, model, variables, [("0.", ("Linear_0",)), ("3.", ("Linear_1",))], jl_opt, 1.0
    )
    got = jl.optim.lr_factors(model, variables, optimizer=jl_opt).lr["LayerNorm_0"]
    want = bnn.params.MaximalUpdate().weight_lr_scale(1, 16, OPTIMIZERS[jl_opt], "input")
    checks.append(Check("LayerNorm factors (jaxlinear: vector-like rule; inferno: dropped)",
                        np.array([got["scale"], got["bias"]]), np.full(2, want)))  # fmt: skip
    return checks


# ----------------------------------------------------------------------------------------------
# (e) jl.NLinear with a parametrization = N separate inferno layers


def _nlinear_init_case(p_name: str, layer_type: str, n: int, n_in: int, n_out: int) -> list[Check]:
    """Init of ``NLinear(n, out, parametrization=P, layer_type)`` against inferno's own scales.

    Replay: with the same key, the NeuralTangent layer (std 1 for kernel and bias) gives the raw normal
    draws ``z``; the parametrized layer must be exactly ``z * s`` with ``s`` computed by inferno's
    ``weight_init_scale(in, out, layer_type)`` (fans of one member, never ``n * in``). Statistics: each
    member's empirical std over ``in * out`` draws against inferno's scale; with a fixed key the check is
    deterministic, and its bound ``6 / sqrt(2 N)`` would hold with probability > 1 - 1e-8 for any key.
    """
    ref_cls, jl_cls = PARAMETRIZATIONS[p_name]
    ref_p = ref_cls()
    x = jnp.ones((1, n, n_in))
    key = jax.random.key(7 * n_in + n_out)
    layer = jl.NLinear(n, n_out, parametrization=jl_cls(), layer_type=layer_type)
    raw = jl.NLinear(n, n_out, parametrization=jl.parametrizations.NeuralTangent())
    got = layer.init(key, x)["params"]
    z = raw.init(key, x)["params"]
    s_w = float(ref_p.weight_init_scale(n_in, n_out, layer_type))
    s_b = float(ref_p.bias_init_scale(n_in, n_out, layer_type))
    checks = [
        Check("kernel = z * inferno s_w (replay)", np.asarray(got["kernel"]),
              np.asarray(z["kernel"] * s_w), EXACT),
        Check("bias = z * inferno s_b (replay)", np.asarray(got["bias"]),
              np.asarray(z["bias"] * s_b), EXACT),
    ]  # fmt: skip
    k = np.asarray(got["kernel"], np.float64).reshape(n, -1)
    bound = 6 / np.sqrt(2 * k.shape[1])
    checks.append(Check(
        f"per-member kernel std / inferno s_w (bound {bound:.3f})", k.std(axis=1, ddof=1) / s_w,
        np.ones(n), Tolerance(0.0, bound),
    ))  # fmt: skip
    return checks


def _nlinear_lr_case(p_name: str, jl_opt: str, layer_type: str) -> list[Check]:
    """``lr_factors`` of an NLinear vs the ``parameters_and_lrs`` groups of N inferno layers."""
    ref_cls, jl_cls = PARAMETRIZATIONS[p_name]
    n, n_in, n_out = 3, 11, 6
    torch.manual_seed(0)
    refs = [bnn.Linear(n_in, n_out, layer_type=layer_type, parametrization=ref_cls())
            for _ in range(n)]  # fmt: skip
    layer = jl.NLinear(n, n_out, parametrization=jl_cls(), layer_type=layer_type)
    variables = layer.init(jax.random.key(0), jnp.ones((1, n, n_in)))
    try:
        want = [
            [g["lr"] for g in r.parameters_and_lrs(1.0, OPTIMIZERS[jl_opt])] for r in refs
        ]  # [weight, bias] per member
    except NotImplementedError:
        want = None
    try:
        f = jl.optim.lr_factors(layer, variables, optimizer=jl_opt).lr
        got = [[f["kernel"], f["bias"]] for _ in range(n)]
    except NotImplementedError:
        got = None
    if want is None or got is None:
        return [Check("raises NotImplementedError", np.array(float(got is None)),
                      np.array(float(want is None)))]  # fmt: skip
    return [Check("(kernel, bias) factor of each member", np.array(got), np.array(want), EXACT)]


def _nlinear_forward_case(p_name: str, layer_type: str) -> list[Check]:
    """N inferno layers' weights stacked into one NLinear (``from_torch``): the same outputs."""
    ref_cls, jl_cls = PARAMETRIZATIONS[p_name]
    n, n_in, n_out = 4, 9, 5
    torch.manual_seed(1)
    refs = [bnn.Linear(n_in, n_out, layer_type=layer_type, parametrization=ref_cls()).eval()
            for _ in range(n)]  # fmt: skip
    states = [export_state_dict(r) for r in refs]
    state = {
        "weight": np.stack([sd["params.weight"].T for sd in states]),
        "bias": np.stack([sd["params.bias"] for sd in states]),
    }
    layer = jl.NLinear(n, n_out, parametrization=jl_cls(), layer_type=layer_type)
    variables = jl.interop.from_torch(layer, state)
    x = np.random.default_rng(2).standard_normal((7, n, n_in), dtype=np.float32)
    want = np.stack(
        [r(torch.from_numpy(x[:, i])).detach().numpy() for i, r in enumerate(refs)], axis=1
    )
    return [Check("outputs (7, n, out)", np.asarray(layer.apply(variables, x)), want)]


# ----------------------------------------------------------------------------------------------
# (c) trajectories


def _to_torch_layout(params: dict, layers) -> dict[str, np.ndarray]:
    out = {}
    for prefix, path in layers:
        node = params
        for name in path:
            node = node[name]
        out[prefix + "params.weight"] = np.asarray(node["kernel"]).T
        out[prefix + "params.bias"] = np.asarray(node["bias"])
    return out


def _trajectory_case(
    p_name: str, opt: str, lr: float, kwargs: dict, steps: int = 20
) -> list[Check]:
    n_in, hidden, n_out = 8, (16, 32), 4
    ref, model, variables, layers = _mlp_pair(p_name, n_in, hidden, n_out)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, n_in), dtype=np.float32)
    y = rng.standard_normal((16, n_out), dtype=np.float32)

    ref_opt_name = "SGD" if opt == "sgd" else "Adam"
    groups = ref.parameters_and_lrs(lr, ref_opt_name)
    torch_opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[opt]
    t_opt = torch_opt(groups, lr=lr, **kwargs)
    factors = jl.optim.lr_factors(model, variables, optimizer=opt)
    tx = {"sgd": jl.optim.sgd, "adam": jl.optim.adam, "adamw": jl.optim.adamw}[opt](
        lr, factors, **kwargs
    )

    def loss_fn(params):
        return jnp.mean((model.apply({"params": params}, x) - y) ** 2)

    @jax.jit
    def step(params, state):
        grads = jax.grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        return optax_apply(params, updates), state

    params, state = variables["params"], tx.init(variables["params"])
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    checks = []
    for i in range(steps):
        torch_mse_step(ref, t_opt, x_t, y_t)
        params, state = step(params, state)
        got = _to_torch_layout(params, layers)
        want = ref.state_dict()
        for key, value in got.items():
            checks.append(Check(f"step {i + 1} {key}", value, want[key].numpy().copy()))
    return checks


def optax_apply(params, updates):
    return jax.tree.map(lambda p, u: p + u, params, updates)


# Adam trajectories cannot meet atol 1e-6: Adam divides each gradient element by its own RMS, so the
# ~1e-7 relative gradient differences of CPU matmul accumulation order (the SGD rows show them: worst
# 2.4e-7) are not damped on small-gradient elements, and the two Adams round differently (torch: step
# lr/bc1 and denom sqrt(v)/sqrt(bc2)+eps; optax: (m/bc1)/(sqrt(v/bc2)+eps)). Measured worst |diff| over
# 20 steps: 2.4e-6 (AdamW, wd 0.1) on params of size O(1), 2e-4 of one lr 1e-2 step. atol 1e-5 keeps
# 4x margin while any wd or lr-factor error (>= 5e-3 at 20 steps, parametrizations.md §5) fails.
ADAM_TOL = Tolerance(rtol=1e-5, atol=1e-5)

TRAJECTORIES = [
    ("SP", "sgd", 0.05, {}),
    ("SP", "sgd", 0.05, {"momentum": 0.9, "weight_decay": 0.01}),
    ("NTP", "sgd", 0.01, {}),
    ("MUP", "sgd", 0.05, {}),
    ("MUP", "sgd", 0.05, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SP", "adam", 1e-2, {}),
    ("MUP", "adam", 1e-2, {}),
    ("MUP", "adam", 1e-2, {"weight_decay": 0.1}),
    ("MUP", "adamw", 1e-2, {"weight_decay": 0.1}),
]


def _register_all() -> None:
    for name in PARAMETRIZATIONS:
        register(Case(GROUP, f"{REFERENCE} {name}", f"(a) scale grid {name}", EXACT,
                      functools.partial(_grid_case, name)))  # fmt: skip
    for p_name in PARAMETRIZATIONS:
        for layer_type in LAYER_TYPES:
            for n_in, n_out, use_bias in [(5, 7, True), (33, 9, False)]:
                register(Case(
                    GROUP, f"{REFERENCE} {p_name}",
                    f"layer {p_name} {layer_type} {n_in}->{n_out} bias={use_bias}", FP32,
                    functools.partial(_layer_case, p_name, layer_type, n_in, n_out, use_bias),
                ))  # fmt: skip
    for p_name in PARAMETRIZATIONS:
        for jl_opt in ("sgd", "adam"):
            for n_in, hidden, n_out in [(8, (16, 16), 4), (5, (32, 8), 3), (3, (64,), 2)]:
                register(Case(
                    GROUP, f"{REFERENCE} {p_name}",
                    f"(b) lrs MLP {n_in}-{'-'.join(map(str, hidden))}-{n_out} {p_name} {jl_opt}",
                    EXACT, functools.partial(_mlp_lr_case, p_name, n_in, hidden, n_out, jl_opt),
                ))  # fmt: skip
            register(Case(GROUP, f"{REFERENCE} {p_name}", f"(b) lrs nested {p_name} {jl_opt}", EXACT,
                          functools.partial(_nested_lr_case, p_name, jl_opt)))  # fmt: skip
    for jl_opt in ("sgd", "adam"):
        register(Case(GROUP, f"{REFERENCE} MUP", f"(b) lrs LayerNorm (inferno drops it) {jl_opt}",
                      EXACT, functools.partial(_layernorm_case, jl_opt)))  # fmt: skip
    for p_name in PARAMETRIZATIONS:
        for layer_type in LAYER_TYPES:
            for n, n_in, n_out in [(3, 64, 32), (2, 256, 4)]:
                register(Case(GROUP, f"{REFERENCE} {p_name}",
                              f"(e) NLinear init {p_name} {layer_type} n={n} {n_in}->{n_out}", EXACT,
                              functools.partial(_nlinear_init_case, p_name, layer_type, n, n_in, n_out)))  # fmt: skip
            register(Case(GROUP, f"{REFERENCE} {p_name}", f"(e) NLinear = N layers forward {p_name} "
                          f"{layer_type}", FP32, functools.partial(_nlinear_forward_case, p_name, layer_type)))  # fmt: skip
            for jl_opt in ("sgd", "adam"):
                register(Case(GROUP, f"{REFERENCE} {p_name}",
                              f"(e) NLinear lrs {p_name} {layer_type} {jl_opt}", EXACT,
                              functools.partial(_nlinear_lr_case, p_name, jl_opt, layer_type)))  # fmt: skip
    for p_name, opt, lr, kwargs in TRAJECTORIES:
        extra = " ".join(f"{k}={v}" for k, v in kwargs.items())
        tol = FP32 if opt == "sgd" else ADAM_TOL
        register(Case(GROUP, f"{REFERENCE} {p_name}", f"(c) 20 steps {p_name} {opt} lr={lr} {extra}".strip(),
                      tol, functools.partial(_trajectory_case, p_name, opt, lr, kwargs)))  # fmt: skip


_register_all()
