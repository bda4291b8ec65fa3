"""Whole torch models ported in one ``jl.interop.from_torch`` call, and exported back with ``to_torch``.

Each case builds the torch model with the real library under a fixed seed, loads it into its
jaxlinear twin with one call (automatic matching: names, then call order), compares the outputs
(fp32), and checks the round trip: ``to_torch`` gives torch's own ``state_dict`` back bit for bit
(``EXACT``) and torch loads it.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch
from delu.nn import NLinear as DeluNLinear
from inferno import bnn
from inferno.models import MLP as InfernoMLP

import jaxlinear as jl
from parity.exchange import export_state_dict, to_array, to_tensor
from parity.harness import EXACT, FP32, Case, Check, register

GROUP = "models"


# ---------------------------------------------------------------- torch models and their jax twins
def _torch_sequential(sizes: tuple[int, ...]) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(a, b, bias=i != 1))
        layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers[:-1])


def _jax_sequential(sizes: tuple[int, ...]) -> nn.Module:
    layers: list = []
    for i, b in enumerate(sizes[1:]):
        # a Flax Dense among jaxlinear layers: both take torch.nn.Linear weights
        layer = nn.Dense(b) if i == len(sizes) - 2 else jl.Linear(b, use_bias=i != 1)
        layers += [layer, nn.relu]
    return nn.Sequential(layers[:-1])


class _TorchBlock(torch.nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.norm_free_fc1 = torch.nn.Linear(width, hidden)
        self.norm_free_fc2 = torch.nn.Linear(hidden, width)

    def forward(self, x):
        return x + self.norm_free_fc2(torch.nn.functional.gelu(self.norm_free_fc1(x)))


class _TorchNested(torch.nn.Module):
    """stem -> ModuleList of residual blocks -> head (declared in call order)."""

    def __init__(self, n_in: int, width: int, hidden: int, n_out: int, depth: int):
        super().__init__()
        self.stem = torch.nn.Linear(n_in, width)
        self.blocks = torch.nn.ModuleList(_TorchBlock(width, hidden) for _ in range(depth))
        self.head = torch.nn.Linear(width, n_out)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class _Block(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x):
        h = nn.gelu(jl.Linear(self.hidden)(x), approximate=False)
        return x + jl.Linear(x.shape[-1])(h)


class _Nested(nn.Module):
    """The same model with Flax's default names (``Linear_0``, ``_Block_0/Linear_1``, ``Dense_0``)."""

    width: int
    hidden: int
    n_out: int
    depth: int

    @nn.compact
    def __call__(self, x):
        x = jl.Linear(self.width)(x)
        for _ in range(self.depth):
            x = _Block(self.hidden)(x)
        return nn.Dense(self.n_out)(x)


class _TorchEnsemble(torch.nn.Module):
    """A shared stem, then ``n`` members as delu NLinear layers (tabular-DL ensembles, as TabM)."""

    def __init__(self, n: int, n_in: int, width: int, n_out: int):
        super().__init__()
        self.n = n
        self.stem = torch.nn.Linear(n_in, width)
        self.members = torch.nn.Sequential(
            DeluNLinear(n, width, width), torch.nn.ReLU(), DeluNLinear(n, width, n_out)
        )

    def forward(self, x):
        h = torch.relu(self.stem(x))
        return self.members(h.unsqueeze(-2).expand(-1, self.n, -1))


class _Ensemble(nn.Module):
    n: int
    width: int
    n_out: int

    @nn.compact
    def __call__(self, x):
        h = nn.relu(jl.Linear(self.width, name="stem")(x))
        h = jnp.broadcast_to(h[..., None, :], (*h.shape[:-1], self.n, h.shape[-1]))
        h = nn.relu(jl.NLinear(self.n, self.width)(h))
        return jl.NLinear(self.n, self.n_out)(h)


class _InfernoMLP(nn.Module):
    """``inferno.models.MLP`` with jl.Linear layers (Flax ``nn.Sequential`` names ``layers_{i}``)."""

    hidden: tuple[int, ...]
    n_out: int
    parametrization: jl.parametrizations.Parametrization

    @nn.compact
    def __call__(self, x):
        p, layers = self.parametrization, []
        for i, width in enumerate(self.hidden):
            layers += [
                jl.Linear(width, parametrization=p, layer_type="input" if i == 0 else "hidden")
            ]
            layers += [nn.relu]
        layers.append(jl.Linear(self.n_out, parametrization=p, layer_type="output"))
        return nn.Sequential(layers)(x)


# ---------------------------------------------------------------- the case
def _refused(fn) -> np.ndarray:
    """True when ``fn()`` raises the ValueError that names equal-shaped layers (never a guess)."""
    try:
        fn()
    except ValueError as err:
        return np.array("equal-shaped layers whose names do not decide" in str(err))
    return np.array(False)


def _model_case(
    make_torch, model: nn.Module, x_shape: tuple[int, ...], seed: int, names_decide: bool = True
) -> list[Check]:
    torch.manual_seed(seed)
    ref = make_torch().eval()
    x = np.random.default_rng(seed).standard_normal(x_shape, dtype=np.float32)
    variables = jl.interop.from_torch(model, ref, example_inputs=x)  # one call, output checked
    with torch.no_grad():
        want = to_array(ref(torch.from_numpy(x)))
    got = np.asarray(jax.jit(model.apply)(variables, x))
    back = jl.interop.to_torch(model, variables, like=ref)
    theirs = {k: to_array(v) for k, v in ref.state_dict().items()}
    ref.load_state_dict({k: to_tensor(v) for k, v in back.items()})  # loadable (strict)
    checks = [
        Check("output", got, want),
        Check(
            "to_torch keys == state_dict keys",
            np.array(list(back) == list(theirs)),
            np.array(True),
            EXACT,
        ),  # fmt: skip
    ]
    if names_decide:  # through a weights file (sorted keys): the same variables
        from_file = jl.interop.from_torch(model, export_state_dict(ref))
        same_file = jax.tree.leaves(jax.tree.map(np.array_equal, variables, from_file))
        checks.append(
            Check("safetensors file == module", np.array(all(same_file)), np.array(True), EXACT)
        )
    else:  # equal-shaped layers only the torch module's call order tells apart
        refused = _refused(lambda: jl.interop.from_torch(model, export_state_dict(ref)))
        checks.append(
            Check("safetensors file refused (names do not decide)", refused, np.array(True), EXACT)
        )
    checks += [Check(f"round trip {k}", back[k], theirs[k], EXACT) for k in theirs if k in back]
    return checks


class _Swapped(torch.nn.Module):
    """Two same-shape layers, called ``first`` then ``second``, declared in the order given."""

    def __init__(self, first: str, second: str, declared: tuple[str, str]):
        super().__init__()
        self.names = (first, second)
        for name in declared:
            setattr(self, name, torch.nn.Linear(16, 16))

    def forward(self, x):
        first, second = (getattr(self, n) for n in self.names)
        return second(torch.tanh(first(x)))


class _TwoDense(nn.Module):
    """The Flax twin, with names that do not say which torch layer is which."""

    def setup(self):
        self.a, self.b = nn.Dense(16), nn.Dense(16)

    def __call__(self, x):
        return self.b(jnp.tanh(self.a(x)))


def _order_case(first: str, second: str, declared: tuple[str, str]) -> list[Check]:
    """From the torch module, call order pairs the equal-shaped layers right (checked on the inputs);
    from its state_dict or a weights file (sorted keys), the port is refused, never guessed; the
    same for ``to_torch(like=)``; ``mapping`` decides for a file."""
    torch.manual_seed(3)
    ref, model = _Swapped(first, second, declared).eval(), _TwoDense()
    x = np.random.default_rng(3).standard_normal((7, 16), dtype=np.float32)
    with torch.no_grad():
        want = to_array(ref(torch.from_numpy(x)))
    variables = jl.interop.from_torch(model, ref, example_inputs=x)  # traced, then checked
    probed = jl.interop.from_torch(model, ref)  # traced on a probe input (16 features)
    back = jl.interop.to_torch(model, variables, like=ref)
    state, file = ref.state_dict(), export_state_dict(ref)
    mapping = {"a": first, "b": second}
    mapped = jl.interop.from_torch(model, file, mapping=mapping)
    same = jax.tree.leaves(jax.tree.map(np.array_equal, variables, probed))
    refused = [
        _refused(lambda: jl.interop.from_torch(model, state)),
        _refused(lambda: jl.interop.from_torch(model, file)),
        _refused(lambda: jl.interop.to_torch(model, variables, like=state)),
    ]
    orders = ([k.split(".")[0] for k in keys][::2] for keys in (state, file))
    declared, stored = orders  # a file's keys are sorted
    checks = [
        Check(
            f"state_dict order {declared} or file order {stored} != call order",
            np.array(declared != [first, second] or stored != [first, second]),
            np.array(True),
            EXACT,
        ),
        Check("output, from the module", np.asarray(model.apply(variables, x)), want),
        Check("probe trace == example trace", np.array(all(same)), np.array(True), EXACT),
        Check("output, from the file with mapping", np.asarray(model.apply(mapped, x)), want),
        Check(
            "refused: state_dict, file, to_torch(like=state_dict)",
            np.array(refused),
            np.array([True] * 3),
            EXACT,
        ),
    ]
    theirs = {k: to_array(v) for k, v in state.items()}
    checks += [Check(f"to_torch(like=module) {k}", back[k], theirs[k], EXACT) for k in theirs]
    return checks


def _register_all() -> None:
    def add(reference: str, name: str, fn) -> None:
        register(Case(GROUP, reference, name, FP32, fn))

    sizes = (12, 32, 32, 10)
    add(
        "torch.nn.Sequential",
        "Sequential MLP 12-32-32-10 (Linear, Dense, no-bias layer)",
        functools.partial(
            _model_case, lambda: _torch_sequential(sizes), _jax_sequential(sizes), (9, 12), 0
        ),
    )
    add(
        "torch.nn.Module",
        "nested residual blocks, ModuleList, 3-D input",
        functools.partial(
            _model_case,
            lambda: _TorchNested(6, 16, 24, 4, depth=2),
            _Nested(16, 24, 4, depth=2),
            (3, 5, 6),
            1,
            names_decide=False,
        ),
    )
    add(
        "delu.nn.NLinear",
        "ensemble: Linear stem + 2 NLinear(n=4)",
        functools.partial(
            _model_case, lambda: _TorchEnsemble(4, 7, 16, 3), _Ensemble(4, 16, 3), (6, 7), 2
        ),
    )
    add(
        "inferno.models.MLP",
        "MLP muP 5-[16,16]-3 (params.* keys, temperature)",
        functools.partial(
            _model_case,
            lambda: InfernoMLP(5, [16, 16], 3, parametrization=bnn.params.MaximalUpdate()),
            _InfernoMLP((16, 16), 3, jl.parametrizations.MaximalUpdate()),
            (4, 5),
            4,
        ),
    )
    add(
        "torch.nn.Module",
        "proj_out declared before proj_in: call order",
        functools.partial(_order_case, "proj_in", "proj_out", ("proj_out", "proj_in")),
    )
    add(
        "torch.nn.Module",
        "encoder/decoder from a sorted file: call order",
        functools.partial(_order_case, "encoder", "decoder", ("encoder", "decoder")),
    )


_register_all()
