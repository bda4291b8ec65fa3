"""Flax's own layers against their torch twins, ported with ``jl.interop.from_torch``: ``nn.Dense``,
``nn.DenseGeneral``, ``nn.Embed``, ``nn.LayerNorm``, ``nn.RMSNorm``, ``nn.MultiHeadDotProductAttention``,
alone and inside models (``Sequential(Linear, LayerNorm, GELU, Linear)``, one with ``RMSNorm``, a small
attention block).

Each case builds the torch module under a fixed seed, ports it in one call from the module with example
inputs (so the port is traced in torch's call order and output-checked), runs one forward and one
backward with the same random cotangent on both sides, and compares the output, the gradient of every
float input and of every parameter (the port's gradients written in torch's layout by ``to_torch``).
The port from the module's weights file must give the same variables (or be refused, where names and
shapes cannot decide).
"""

import functools
import warnings
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxlinear as jl
from parity.exchange import export_state_dict, to_array
from parity.harness import EXACT, FP32, Case, Check, register

GROUP = "flax_layers"


def _inputs(specs: list[tuple[tuple[int, ...], int | None]], seed: int) -> list[np.ndarray]:
    """Standard-normal float32 arrays, or token ids below ``vocab`` for ``(shape, vocab)``."""
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal(shape, dtype=np.float32)
        if vocab is None
        else rng.integers(0, vocab, shape).astype(np.int64)
        for shape, vocab in specs
    ]


def _vjp_case(
    make_torch: Callable[[], torch.nn.Module],
    model: nn.Module,
    specs: list[tuple[tuple[int, ...], int | None]],
    seed: int,
    call: Callable[..., torch.Tensor] | None = None,
    file_ports: bool = True,
) -> list[Check]:
    torch.manual_seed(seed)
    ref = make_torch().eval()
    xs = _inputs(specs, seed)
    variables = jl.interop.from_torch(model, ref, example_inputs=tuple(xs))  # traced and checked
    with warnings.catch_warnings():  # a norm with Flax's default epsilon warns from a bare file
        warnings.simplefilter("ignore", UserWarning)
        try:
            from_file = jl.interop.from_torch(model, export_state_dict(ref))
            same = all(jax.tree.leaves(jax.tree.map(np.array_equal, variables, from_file)))
        except ValueError as err:
            same = "equal-shaped layers whose names do not decide" in str(err)
    floats = [i for i, x in enumerate(xs) if x.dtype == np.float32]

    # torch: forward and backward with a random cotangent
    ts = [torch.from_numpy(x).requires_grad_(i in floats) for i, x in enumerate(xs)]
    ref.zero_grad(set_to_none=True)
    y_t = call(ref, *ts) if call is not None else ref(*ts)
    g = np.random.default_rng(seed + 1).standard_normal(tuple(y_t.shape), dtype=np.float32)
    y_t.backward(torch.from_numpy(g))

    # jax: the same, gradients of the variables and of the float inputs
    def apply(v, *float_xs):
        args = list(xs)
        for i, x in zip(floats, float_xs, strict=True):
            args[i] = x
        return model.apply(v, *args)

    y, vjp = jax.vjp(apply, variables, *(jnp.asarray(xs[i]) for i in floats))
    grads, *grad_xs = vjp(jnp.asarray(g))
    port_grads = jl.interop.to_torch(model, grads, like=ref)  # torch's layout and keys
    checks = [
        Check("output", np.asarray(y), to_array(y_t)),
        Check(
            "file == module" if file_ports else "file refused (names do not decide)",
            np.array(same),
            np.array(True),
            EXACT,
        ),
    ]
    checks += [
        Check(f"grad input {i}", np.asarray(gx), _grad(ts[i]))
        for i, gx in zip(floats, grad_xs, strict=True)
    ]
    checks += [
        Check(f"grad {name}", port_grads[name], _grad(p)) for name, p in ref.named_parameters()
    ]
    return checks


def _grad(tensor: torch.Tensor) -> np.ndarray:
    if tensor.grad is None:
        raise AssertionError("torch computed no gradient for a tensor that needs one")
    return to_array(tensor.grad)


def _attention_call(m: torch.nn.Module, q: Any, k: Any, v: Any) -> torch.Tensor:
    return m(q, k, v, need_weights=False)[0]


class _TorchBlock(torch.nn.Module):
    """Embedding -> self-attention + residual -> LayerNorm -> two same-shape Linear layers declared
    in another order than they are called -> head."""

    def __init__(self, vocab: int, width: int, heads: int, n_out: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.attn = torch.nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm = torch.nn.LayerNorm(width)
        self.proj_out = torch.nn.Linear(width, width)
        self.proj_in = torch.nn.Linear(width, width)
        self.head = torch.nn.Linear(width, n_out)

    def forward(self, ids):
        h = self.embed(ids)
        h = self.norm(h + self.attn(h, h, h, need_weights=False)[0])
        h = self.proj_out(torch.nn.functional.gelu(self.proj_in(h)))
        return self.head(h.mean(dim=1))


class _Block(nn.Module):
    """The Flax twin, with Flax's automatic names (nothing for the names to decide)."""

    vocab: int
    width: int
    heads: int
    n_out: int

    @nn.compact
    def __call__(self, ids):
        h = nn.Embed(self.vocab, self.width)(ids)
        h = nn.LayerNorm(epsilon=1e-5, use_fast_variance=False)(
            h + nn.MultiHeadDotProductAttention(num_heads=self.heads)(h)
        )
        h = nn.Dense(self.width)(nn.gelu(nn.Dense(self.width)(h), approximate=False))
        return nn.Dense(self.n_out)(jnp.mean(h, axis=1))


def _register_all() -> None:
    def add(reference: str, name: str, fn: Callable[[], list[Check]]) -> None:
        register(Case(GROUP, reference, name, FP32, fn))

    eps32 = float(np.finfo(np.float32).eps)  # torch RMSNorm's eps=None for float32 inputs
    gelu = functools.partial(nn.gelu, approximate=False)
    layers = [
        ("torch.nn.Linear", "nn.Dense 5->7 x(3x4x5)", lambda: torch.nn.Linear(5, 7), nn.Dense(7),
         [((3, 4, 5), None)]),
        ("torch.nn.Linear", "nn.DenseGeneral 5->7 no bias x(6x5)",
         lambda: torch.nn.Linear(5, 7, bias=False), nn.DenseGeneral(7, use_bias=False),
         [((6, 5), None)]),
        ("torch.nn.Embedding", "nn.Embed 50x16 ids(3x7)", lambda: torch.nn.Embedding(50, 16),
         nn.Embed(50, 16), [((3, 7), 50)]),
        ("torch.nn.LayerNorm", "nn.LayerNorm(16) eps 1e-5 x(4x16)",
         lambda: torch.nn.LayerNorm(16), nn.LayerNorm(epsilon=1e-5, use_fast_variance=False),
         [((4, 16), None)]),
        ("torch.nn.LayerNorm", "nn.LayerNorm over (4x8) no bias x(3x4x8)",
         lambda: torch.nn.LayerNorm([4, 8], bias=False),
         nn.LayerNorm(epsilon=1e-5, use_bias=False, reduction_axes=(-2, -1),
                      feature_axes=(-2, -1), use_fast_variance=False),
         [((3, 4, 8), None)]),
        ("torch.nn.RMSNorm", "nn.RMSNorm(16) eps 1e-6 x(4x16)",
         lambda: torch.nn.RMSNorm(16, eps=1e-6), nn.RMSNorm(), [((4, 16), None)]),
        ("torch.nn.RMSNorm", "nn.RMSNorm(16) eps None x(4x16)", lambda: torch.nn.RMSNorm(16),
         nn.RMSNorm(epsilon=eps32), [((4, 16), None)]),
    ]  # fmt: skip
    for reference, name, make, model, specs in layers:
        add(reference, name, functools.partial(_vjp_case, make, model, specs, len(name)))
    add(
        "torch.nn.MultiheadAttention",
        "nn.MultiHeadDotProductAttention 16/4 heads packed q(2x5x16) kv(2x7x16)",
        functools.partial(
            _vjp_case,
            lambda: torch.nn.MultiheadAttention(16, 4, batch_first=True),
            nn.MultiHeadDotProductAttention(num_heads=4),
            [((2, 5, 16), None), ((2, 7, 16), None), ((2, 7, 16), None)],
            5,
            _attention_call,
        ),
    )
    add(
        "torch.nn.MultiheadAttention",
        "nn.MultiHeadDotProductAttention 16/2 heads kdim=vdim=12 (q/k/v_proj_weight)",
        functools.partial(
            _vjp_case,
            lambda: torch.nn.MultiheadAttention(16, 2, batch_first=True, kdim=12, vdim=12),
            nn.MultiHeadDotProductAttention(num_heads=2),
            [((2, 5, 16), None), ((2, 7, 12), None), ((2, 7, 12), None)],
            6,
            _attention_call,
        ),
    )
    models = [
        ("Sequential(Linear, LayerNorm, GELU, Linear) 12-32-5",
         lambda: torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.LayerNorm(32),
                                     torch.nn.GELU(), torch.nn.Linear(32, 5)),
         nn.Sequential([nn.Dense(32), nn.LayerNorm(epsilon=1e-5, use_fast_variance=False), gelu,
                        jl.Linear(5)]),
         True),
        ("Sequential(Linear, RMSNorm, SiLU, Linear) 12-32-5",
         lambda: torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.RMSNorm(32),
                                     torch.nn.SiLU(), torch.nn.Linear(32, 5)),
         nn.Sequential([jl.Linear(32), nn.RMSNorm(epsilon=eps32), nn.silu, nn.Dense(5)]),
         True),
    ]  # fmt: skip
    for name, make, model, file_ports in models:
        add(
            "torch.nn.Sequential",
            name,
            functools.partial(_vjp_case, make, model, [((6, 12), None)], 7, None, file_ports),
        )
    add(
        "torch.nn.Module",
        "Embedding+MultiheadAttention+LayerNorm+Linear block, layers declared out of call order",
        functools.partial(
            _vjp_case,
            lambda: _TorchBlock(40, 16, 4, 3),
            _Block(40, 16, 4, 3),
            [((2, 6), 40)],
            8,
            None,
            False,
        ),
    )


_register_all()
