"""tabm 0.0.3 / rtdl_num_embeddings 0.0.12 vs ``jl.tabm``: every layer, backbone, embedding and TabM
architecture, outputs and gradients (input and every parameter) on the reference's own weights, plus
``compute_bins`` and the ``to_torch`` round trip.

Each case builds the torch module under a fixed seed, exports its ``state_dict`` through a safetensors
file, loads it with ``jl.interop.from_torch``, runs both sides on the same inputs with one random
cotangent, and maps jaxlinear's parameter gradients back to torch's keys with ``jl.interop.to_torch``
(the converter under test both ways). Inputs are well-posed: feature values are fresh draws, never a
bin edge (where the piecewise-linear encoding's clamps have a kink).
"""

import functools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import rtdl_num_embeddings as rtdl
import tabm
import torch

import jaxlinear as jl
from parity.exchange import export_state_dict, to_array, to_tensor
from parity.harness import EXACT, FP32, Case, Check, register

GROUP = "tabm"


def _quiet(fn: Callable, *args, **kwargs):
    """Call a reference without its advisory warnings (tabm/rtdl warn from their own modules)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _vjp_checks(
    make_torch: Callable[[], torch.nn.Module],
    module,
    inputs: tuple,
    seed: int,
    diff: tuple[bool, ...],
) -> list[Check]:
    """Output, the grads of the float inputs (``diff``) and of every torch parameter, and the
    ``to_torch`` round trip of the imported weights (bit-exact)."""
    torch.manual_seed(seed)
    ref = _quiet(make_torch).eval()  # eval: no dropout (jaxlinear's deterministic=True)
    state = export_state_dict(ref)
    variables = _quiet(jl.interop.from_torch, module, state)
    rng = np.random.default_rng(seed)

    t_inputs = [
        None
        if x is None
        else (to_tensor(x).requires_grad_(True) if d else torch.from_numpy(np.asarray(x)))
        for x, d in zip(inputs, diff, strict=True)
    ]
    ref.zero_grad(set_to_none=True)
    y_ref = _quiet(ref, *t_inputs)
    g = rng.standard_normal(tuple(y_ref.shape)).astype(np.float32)
    y_ref.backward(torch.from_numpy(g))

    positions = [i for i, d in enumerate(diff) if d]

    def f(v, *xs):
        args = list(inputs)
        for i, x in zip(positions, xs, strict=True):
            args[i] = x
        return module.apply(v, *args)

    y, vjp = jax.vjp(f, variables, *[jnp.asarray(inputs[i]) for i in positions])
    grads = vjp(jnp.asarray(g))
    checks = [Check("output", np.asarray(y), to_array(y_ref))]
    for n, i in enumerate(positions):
        checks.append(Check(f"grad input {i}", np.asarray(grads[1 + n]), _grad(t_inputs[i])))
    grads_torch = jl.interop.to_torch(module, grads[0])
    for name, p in ref.named_parameters():
        want = to_array(p.grad) if p.grad is not None else np.zeros(p.shape, np.float32)
        checks.append(Check(f"grad {name}", grads_torch[name], want))
    exported = jl.interop.to_torch(module, variables)
    for key, value in state.items():  # every param and buffer, back where it came from
        checks.append(Check(f"to_torch {key}", exported[key].astype(value.dtype), value, EXACT))
    if sorted(exported) != sorted(state):
        checks.append(Check("to_torch keys", np.array([0.0]), np.array([1.0]), EXACT))
    return checks


def _grad(t: torch.Tensor | None) -> np.ndarray:
    assert t is not None and t.grad is not None
    return to_array(t.grad)


def _x(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed + 1000).standard_normal(shape).astype(np.float32)


def _reg(name: str, reference: str, run: Callable[[], list[Check]]) -> None:
    register(Case(GROUP, reference, name, FP32, run))


# ---- layers ---------------------------------------------------------------------------------------


def _layer_cases() -> None:
    for bias in (True, False):
        _reg(
            f"LinearEnsemble k=4 x(6x4x5) 5->7 bias={bias}",
            "tabm.LinearEnsemble",
            functools.partial(
                _vjp_checks,
                lambda b=bias: tabm.LinearEnsemble(5, 7, b, k=4),
                jl.tabm.LinearEnsemble(7, k=4, use_bias=bias),
                (_x(1, (6, 4, 5)),),
                1,
                (True,),
            ),
        )
    inits: tuple[tuple[Any, list[int] | None], ...] = (
        ("random-signs", None),
        ("normal", None),
        ("ones", None),
        (("normal", "ones"), [2, 3]),
        (("random-signs", "normal"), [1, 1, 3]),
    )
    for init, chunks in inits:
        for bias in (True, False):
            _reg(
                f"LinearBatchEnsemble k=4 x(6x4x5) 5->7 init={init} chunks={chunks} bias={bias}",
                "tabm.LinearBatchEnsemble",
                functools.partial(
                    _vjp_checks,
                    lambda b=bias, i=init, c=chunks: tabm.LinearBatchEnsemble(
                        5, 7, b, k=4, scaling_init=i, first_scaling_init_chunks=c
                    ),
                    jl.tabm.LinearBatchEnsemble(
                        7, k=4, scaling_init=init, first_scaling_init_chunks=chunks, use_bias=bias
                    ),
                    (_x(2, (6, 4, 5)),),
                    2,
                    (True,),
                ),
            )
    for bias in (True, False):
        _reg(
            f"ElementwiseAffine shape=(4x5) x(6x4x5) bias={bias}",
            "tabm.ElementwiseAffine",
            functools.partial(
                _vjp_checks,
                lambda b=bias: tabm.ElementwiseAffine(
                    (4, 5), bias=b, scaling_init="normal", scaling_init_chunks=[2, 3]
                ),
                jl.tabm.ElementwiseAffine(
                    (4, 5), use_bias=bias, scaling_init="normal", scaling_init_chunks=[2, 3]
                ),
                (_x(3, (6, 4, 5)),),
                3,
                (True,),
            ),
        )

    def ensemble_view() -> list[Check]:
        x = _x(4, (6, 5))
        xt = to_tensor(x).requires_grad_(True)
        y = tabm.EnsembleView(k=3)(xt)
        g = _x(5, (6, 3, 5))
        y.backward(torch.from_numpy(g))
        got, vjp = jax.vjp(jl.tabm.EnsembleView(k=3).apply, {}, jnp.asarray(x))
        return [
            Check("output", np.asarray(got), to_array(y)),
            Check("grad input 0", np.asarray(vjp(jnp.asarray(g))[1]), _grad(xt)),
        ]

    _reg("EnsembleView k=3 x(6x5)", "tabm.EnsembleView", ensemble_view)


# ---- backbones ------------------------------------------------------------------------------------


def _backbone_cases() -> None:
    d_in, k = 6, 4
    common = {"n_blocks": 2, "d_block": 16, "dropout": 0.1}
    for act in ("ReLU", "GELU", "SiLU"):
        _reg(
            f"MLPBackbone x(8x6) blocks=2 d=16 activation={act}",
            "tabm.MLPBackbone",
            functools.partial(
                _vjp_checks,
                lambda a=act: tabm.MLPBackbone(d_in=d_in, activation=a, **common),
                jl.tabm.MLPBackbone(activation=act, **common),
                (_x(10, (8, d_in)),),
                10,
                (True,),
            ),
        )
    _reg(
        "MLPBackboneEnsemble k=4 x(8x4x6) blocks=2 d=16",
        "tabm.MLPBackboneEnsemble",
        functools.partial(
            _vjp_checks,
            lambda: tabm.MLPBackboneEnsemble(d_in=d_in, k=k, **common),
            jl.tabm.MLPBackboneEnsemble(k=k, **common),
            (_x(11, (8, k, d_in)),),
            11,
            (True,),
        ),
    )
    for bias in (True, False):
        _reg(
            f"MLPBackboneMiniEnsemble k=4 x(8x4x6) blocks=2 d=16 affine_bias={bias}",
            "tabm.MLPBackboneMiniEnsemble",
            functools.partial(
                _vjp_checks,
                lambda b=bias: tabm.MLPBackboneMiniEnsemble(
                    d_in=d_in, k=k, affine_bias=b, affine_scaling_init="normal", **common
                ),
                jl.tabm.MLPBackboneMiniEnsemble(
                    k=k, affine_bias=bias, affine_scaling_init="normal", **common
                ),
                (_x(12, (8, k, d_in)),),
                12,
                (True,),
            ),
        )
    for tabm_init in (True, False):
        _reg(
            f"MLPBackboneBatchEnsemble k=4 x(8x4x6) blocks=2 d=16 tabm_init={tabm_init}",
            "tabm.MLPBackboneBatchEnsemble",
            functools.partial(
                _vjp_checks,
                lambda t=tabm_init: tabm.MLPBackboneBatchEnsemble(
                    d_in=d_in,
                    k=k,
                    tabm_init=t,
                    scaling_init="random-signs",
                    start_scaling_init_chunks=[1, 2, 3],
                    **common,
                ),
                jl.tabm.MLPBackboneBatchEnsemble(
                    k=k,
                    tabm_init=tabm_init,
                    scaling_init="random-signs",
                    start_scaling_init_chunks=[1, 2, 3],
                    **common,
                ),
                (_x(13, (8, k, d_in)),),
                13,
                (True,),
            ),
        )


# ---- embeddings and bins --------------------------------------------------------------------------


def _train_x(seed: int, n: int = 200) -> np.ndarray:
    """Training features with every bin layout: continuous, few values (fewer edges: the padding
    mask), two values (one bin: the single-bin path)."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.standard_normal(n),
            rng.integers(0, 4, n).astype(np.float64),
            rng.integers(0, 2, n).astype(np.float64),
            rng.exponential(size=n),
        ],
        axis=1,
    ).astype(np.float32)


def _bins(X: np.ndarray, n_bins: int = 8) -> list[np.ndarray]:
    return [b.numpy() for b in _quiet(rtdl.compute_bins, torch.from_numpy(X), n_bins=n_bins)]


def _fresh(X: np.ndarray, seed: int, n: int = 16) -> np.ndarray:
    """Inputs drawn from the columns' ranges (and a little beyond), never equal to an edge."""
    rng = np.random.default_rng(seed)
    lo, hi = X.min(0), X.max(0)
    return (lo + (hi - lo) * rng.uniform(-0.1, 1.1, (n, X.shape[1])) + 1e-3).astype(np.float32)


def _embedding_cases() -> None:
    n = 4
    _reg(
        "LinearEmbeddings n=4 d=8 x(16x4)",
        "rtdl_num_embeddings.LinearEmbeddings",
        functools.partial(
            _vjp_checks,
            lambda: rtdl.LinearEmbeddings(n, 8),
            jl.tabm.LinearEmbeddings(n, 8),
            (_x(20, (16, n)),),
            20,
            (True,),
        ),
    )
    _reg(
        "LinearReLUEmbeddings n=4 d=8 x(16x4)",
        "rtdl_num_embeddings.LinearReLUEmbeddings",
        functools.partial(
            _vjp_checks,
            lambda: rtdl.LinearReLUEmbeddings(n, 8),
            jl.tabm.LinearReLUEmbeddings(n, 8),
            (_x(21, (16, n)),),
            21,
            (True,),
        ),
    )
    for lite, act in ((False, True), (True, True), (False, False)):
        kw = {"n_frequencies": 6, "frequency_init_scale": 0.1, "activation": act, "lite": lite}
        _reg(
            f"PeriodicEmbeddings n=4 d=8 freq=6 sigma=0.1 lite={lite} activation={act} x(16x4)",
            "rtdl_num_embeddings.PeriodicEmbeddings",
            functools.partial(
                _vjp_checks,
                lambda kw=kw: rtdl.PeriodicEmbeddings(n, 8, **kw),
                jl.tabm.PeriodicEmbeddings(n, 8, **kw),
                (_x(22, (16, n)),),
                22,
                (True,),
            ),
        )
    X = _train_x(23)
    bins = _bins(X)
    for version in ("A", "B"):
        for act in (True, False):
            _reg(
                f"PiecewiseLinearEmbeddings version={version} activation={act} n=4 d=8 "
                f"edges={[len(b) for b in bins]} x(16x4)",
                "rtdl_num_embeddings.PiecewiseLinearEmbeddings",
                functools.partial(
                    _vjp_checks,
                    lambda v=version, a=act: rtdl.PiecewiseLinearEmbeddings(
                        [torch.from_numpy(b) for b in bins], 8, activation=a, version=v
                    ),
                    _quiet(
                        jl.tabm.PiecewiseLinearEmbeddings, bins, 8, activation=act, version=version
                    ),
                    (_fresh(X, 24),),
                    24,
                    (True,),
                ),
            )

    def encoding() -> list[Check]:
        x = _fresh(X, 25)
        ref = _quiet(rtdl.PiecewiseLinearEncoding, [torch.from_numpy(b) for b in bins])
        xt = to_tensor(x).requires_grad_(True)
        y = ref(xt)
        g = _x(26, tuple(y.shape))
        y.backward(torch.from_numpy(g))
        m = _quiet(jl.tabm.PiecewiseLinearEncoding, bins)
        got, vjp = jax.vjp(lambda x: m.apply({}, x), jnp.asarray(x))
        return [
            Check("output", np.asarray(got), to_array(y)),
            Check("grad input 0", np.asarray(vjp(jnp.asarray(g))[0]), _grad(xt)),
        ]

    _reg(
        f"PiecewiseLinearEncoding n=4 edges={[len(b) for b in bins]} x(16x4)",
        "rtdl_num_embeddings.PiecewiseLinearEncoding",
        encoding,
    )

    def bins_case(n_bins: int, tree: bool, regression: bool) -> list[Check]:
        Xb = _train_x(27, 300)
        if tree:
            rng = np.random.default_rng(28)
            y = Xb[:, 0] + Xb[:, 3] + 0.1 * rng.standard_normal(len(Xb)).astype(np.float32)
            y = y if regression else (y > np.median(y)).astype(np.int64)
            tree_kw = {"min_samples_leaf": 8}
            want = rtdl.compute_bins(
                torch.from_numpy(Xb),
                n_bins,
                tree_kwargs=tree_kw,
                y=torch.from_numpy(y),
                regression=regression,
            )
            got = jl.tabm.compute_bins(Xb, n_bins, tree_kwargs=tree_kw, y=y, regression=regression)
        else:
            want = rtdl.compute_bins(torch.from_numpy(Xb), n_bins)
            got = jl.tabm.compute_bins(Xb, n_bins)
        checks = [
            Check(
                "number of edges",
                np.array([len(b) for b in got]),
                np.array([len(b) for b in want]),
                EXACT,
            )
        ]
        if [len(b) for b in got] == [len(b) for b in want]:
            checks += [
                Check(f"edges of feature {i}", g, w.numpy())
                for i, (g, w) in enumerate(zip(got, want, strict=True))
            ]
        return checks

    for n_bins in (4, 16, 48):
        _reg(
            f"compute_bins quantiles n_bins={n_bins} X(300x4)",
            "rtdl_num_embeddings.compute_bins",
            functools.partial(bins_case, n_bins, False, False),
        )
    for regression in (True, False):
        _reg(
            f"compute_bins trees n_bins=8 regression={regression} X(300x4)",
            "rtdl_num_embeddings.compute_bins",
            functools.partial(bins_case, 8, True, regression),
        )


# ---- TabM -----------------------------------------------------------------------------------------


def _tabm_case(
    arch: str,
    emb: str | None,
    n_num: int,
    cards: list[int],
    three_d: bool = False,
    d_out: int | None = 3,
    activation: str = "ReLU",
) -> list[Check]:
    k, seed = 4, 40
    X = _train_x(41)[:, :n_num] if n_num else None
    bins = _bins(X) if emb == "ple" and X is not None else []

    def embeddings(torch_side: bool):
        if emb is None:
            return None
        if emb == "linear_relu":
            return (rtdl if torch_side else jl.tabm).LinearReLUEmbeddings(n_num, 8)
        if emb in ("periodic", "periodic_lite"):
            return (rtdl if torch_side else jl.tabm).PeriodicEmbeddings(
                n_num, 8, n_frequencies=6, frequency_init_scale=0.1, lite=emb == "periodic_lite"
            )
        if torch_side:
            return rtdl.PiecewiseLinearEmbeddings(
                [torch.from_numpy(b) for b in bins], 8, activation=False, version="B"
            )
        return jl.tabm.PiecewiseLinearEmbeddings(bins, 8, activation=False, version="B")

    kw = {
        "n_num_features": n_num,
        "cat_cardinalities": cards,
        "d_out": d_out,
        "k": k,
        "d_block": 32,
        "arch_type": arch,
        "activation": activation,
    }
    model = _quiet(jl.tabm.TabM.make, **kw, num_embeddings=_quiet(embeddings, False))
    batch = (12, k) if three_d else (12,)
    x_num = None
    if X is not None:
        x_num = _fresh(X, 42, int(np.prod(batch))).reshape(*batch, n_num)
    x_cat = None
    if cards:
        rng = np.random.default_rng(43)
        x_cat = np.stack([rng.integers(0, c, batch) for c in cards], axis=-1).astype(np.int64)
    return _vjp_checks(
        lambda: tabm.TabM.make(**kw, num_embeddings=embeddings(True)),
        model,
        (x_num, x_cat),
        seed,
        (x_num is not None, False),
    )


def _tabm_cases() -> None:
    for arch in jl.tabm.ARCH_TYPES:
        for emb in (None, "linear_relu", "periodic", "periodic_lite", "ple"):
            _reg(
                f"TabM {arch} embeddings={emb} num=3 cat=[3x5] k=4 d_block=32 d_out=3",
                "tabm.TabM",
                functools.partial(_tabm_case, arch, emb, 3, [3, 5]),
            )
        _reg(
            f"TabM {arch} num=4 per-member input x(12x4x4) k=4",
            "tabm.TabM",
            functools.partial(_tabm_case, arch, None, 4, [], True),
        )
    _reg(
        "TabM tabm cat-only cat=[2x3x4] k=4",
        "tabm.TabM",
        functools.partial(_tabm_case, "tabm", None, 0, [2, 3, 4]),
    )
    _reg(
        "TabM tabm-mini num=4 no head (d_out=None) activation=GELU",
        "tabm.TabM",
        functools.partial(_tabm_case, "tabm-mini", None, 4, [], False, None, "GELU"),
    )


_layer_cases()
_backbone_cases()
_embedding_cases()
_tabm_cases()
