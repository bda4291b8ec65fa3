"""gromo ``GrowingMLP`` (TINY growth) vs ``jl.growing``: statistics, δ, new neurons, FO, grown model.

Each case runs gromo's own loop (``init_computation``; per batch forward, summed-MSE backward,
``update_computation``; ``compute_optimal_updates``; ``select_best_update``; a line search over γ with
``set_scaling_factor`` + ``extended_forward``; ``apply_change``) on a model built under a fixed seed,
moves its weights through a safetensors file into ``jl.growing.GrowingMLP`` and runs jaxlinear's
loop on the same batches.

α and ω are compared through ω·α (their per-neuron signs are arbitrary), λ and the FO directly.
Before ``apply_change`` jaxlinear's α/ω get gromo's per-neuron sign (a convention fixed on both
sides; for ReLU the sign changes the grown function), so the grown model's weights and outputs are
compared directly too.

Further cases compare the pure functions with ``gromo.utils.tools`` (``optimal_delta`` on a singular
S, forced pinv, an indefinite S whose decrease stays negative; ``compute_optimal_added_parameters``
with a rank-deficient S, the neuron cap, the statistical threshold, GradMax) and the statistic
updates with ``LinearGrowingModule``'s methods (2-D and 3-D inputs: counts are sequences).

Tolerances: the statistics are fp32 sums of at most a few hundred rows (FP32). δ, N, λ, ω·α, the FO
and everything after growth go through an LU solve, an eigh and an SVD in fp32, which amplify the
1e-7 differences of the statistics by the condition numbers (cond(S) reaches ~600 for a tanh layer,
and N = −M₋₂ + Pδᵀ cancels). So every case fed by statistics derives its growth tolerance from its
own conditioning: gromo runs again with the rows of each batch summed in ``ORDERINGS`` other orders
(the same numbers in exact arithmetic), and each compared quantity gets ``rtol 1e-4`` with
``atol = max(1e-5, SAFETY x the largest change those orders make to it)``, rounded up to one digit
(the report prints the range of these atols). A case whose discrete outcome (selected layer, best γ,
number of new neurons) changes with the order, or where an atol passes ``MAX_REL`` of the quantity's
largest magnitude (at least 1), is ill-posed and fails as such on every host. The pure
solver cases take the same fp32 arrays on both sides (no summation order to differ); against a
float64 run of gromo their fp32 errors are below 3% of GROWTH (rtol 1e-4, atol 1e-5), which they keep.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxlinear as jl
from parity.exchange import export_state_dict
from parity.harness import FP32, Case, Check, Tolerance, register

REFERENCE = "gromo.GrowingMLP"
GROUP = "gromo"
GROWTH = Tolerance(rtol=1e-4, atol=1e-5)
EXACT = Tolerance(0.0, 0.0)
ORDERINGS = 4  # other summation orders of the statistics tried per case
SAFETY = 10.0  # the derived atol: SAFETY x the largest change those orders make
MAX_REL = 1e-3  # an atol above MAX_REL x max(1, max |quantity|): too ill-conditioned, it fails
GAMMAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
ACTS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "identity": torch.nn.Identity}


def _data(n: int, d_in: int, d_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in), dtype=np.float32)
    a = rng.standard_normal((d_in, d_out), dtype=np.float32)
    y = np.sin(x @ a) + 0.1 * rng.standard_normal((n, d_out), dtype=np.float32)
    return x, y.astype(np.float32)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _reorder(n: int, batch_size: int, order: int | None) -> np.ndarray:
    """Row indices that permute the rows inside each batch (``order`` None: unchanged)."""
    if order is None:
        return np.arange(n)
    rng = np.random.default_rng(1000 + order)
    return np.concatenate(
        [s + rng.permutation(min(batch_size, n - s)) for s in range(0, n, batch_size)]
    )


def _round_up(value: float) -> float:
    """``value`` rounded up to one significant digit (what the report prints)."""
    exponent = np.floor(np.log10(value))
    return float(np.ceil(value / 10**exponent) * 10**exponent)


def order_tolerance(reference, quantities, discrete=lambda want: {}):
    """gromo's results and, per compared quantity, the growth tolerance derived from its sensitivity
    to the summation order of the statistics.

    ``reference(order)`` runs gromo with the statistics summed in another order (None: the original);
    ``quantities(want)`` flattens the compared float arrays by name, ``discrete(want)`` the outcomes
    that must not change. Returns ``(want, {name: Tolerance})``. Raises ``ValueError`` when the case
    is ill-posed (see the module docstring).
    """
    want = reference(None)
    base, outcome = quantities(want), discrete(want)
    spread = dict.fromkeys(base, 0.0)
    for order in range(ORDERINGS):
        other = reference(order)
        for key, value in discrete(other).items():
            if np.shape(value) != np.shape(outcome[key]) or np.any(value != outcome[key]):
                raise ValueError(f"ill-posed case: {key} changes with the summation order")
        for key, value in quantities(other).items():
            if np.shape(value) != np.shape(base[key]):
                raise ValueError(f"ill-posed case: the shape of {key} changes with the order")
            if np.size(value):
                diff = np.abs(np.asarray(value, np.float64) - np.asarray(base[key], np.float64))
                spread[key] = max(spread[key], float(diff.max()))
    tolerances = {}
    for key, value in base.items():
        atol = _round_up(max(GROWTH.atol, SAFETY * spread[key]))
        scale = max(1.0, float(np.abs(value).max())) if np.size(value) else 1.0
        if atol > MAX_REL * scale:
            raise ValueError(
                f"ill-posed case: the summation order changes gromo's {key} by {spread[key]:.1e} "
                f"(derived atol {atol:.0e} > {MAX_REL:.0e} x {scale:.2g})"
            )
        tolerances[key] = Tolerance(GROWTH.rtol, atol)
    return want, tolerances


def _gromo_side(model, x, y, batch_size, num_hidden, options=None, order=None):
    """Run gromo's loop (statistics rows in ``order`` inside each batch); return numpy arrays."""
    options = options or {}
    from gromo.containers.growing_mlp import GrowingMLP  # noqa: F401 - documents the reference

    out = {}
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rows = _reorder(len(x), batch_size, order)
    xs, ys = xt[rows], yt[rows]
    crit = torch.nn.MSELoss(reduction="sum")
    model.init_computation()
    for start in range(0, len(x), batch_size):
        model.zero_grad()
        crit(model(xs[start : start + batch_size]), ys[start : start + batch_size]).backward()
        model.update_computation()
    layers = model.layers
    out["S"] = [_np(layers[i].tensor_s()) for i in range(num_hidden + 1)]
    out["M"] = [_np(layers[i].tensor_m()) for i in range(1, num_hidden + 1)]
    out["M_prev"] = [_np(layers[i].tensor_m_prev()) for i in range(1, num_hidden + 1)]
    out["P"] = [_np(layers[i].cross_covariance()) for i in range(1, num_hidden + 1)]
    out["E"] = [_np(layers[i].covariance_loss_gradient()) for i in range(1, num_hidden + 1)]
    out["count"] = [layers[i].tensor_s.samples for i in range(num_hidden + 1)]
    model.compute_optimal_updates(**options)
    upd = []
    for i in range(1, num_hidden + 1):
        lay, prev = layers[i], layers[i - 1]
        alpha = _np(prev.extended_output_layer.weight)
        if prev.extended_output_layer.bias is not None:
            alpha = np.concatenate([alpha, _np(prev.extended_output_layer.bias)[:, None]], axis=1)
        upd.append(
            {
                "delta": None if lay.delta_raw is None else _np(lay.delta_raw),
                "decrease": _np(lay.parameter_update_decrease),
                "N": _np(lay.tensor_n) if options.get("use_projection", True) else None,
                "alpha": alpha,
                "omega": _np(lay.extended_input_layer.weight),
                "sv": _np(lay.eigenvalues_extension),
                "fo": _np(lay.first_order_improvement),
            }
        )
    out["updates"] = upd
    model.reset_computation()
    out["best"] = model.select_best_update()
    losses = []
    with torch.no_grad():
        for g in GAMMAS:
            model.set_scaling_factor(g)
            losses.append(torch.nn.functional.mse_loss(model.extended_forward(xt), yt).item())
        g_best = GAMMAS[int(np.argmin(losses))]
        model.set_scaling_factor(g_best)
        out["ext_out"] = _np(model.extended_forward(xt))
        model.apply_change()
        out["new_out"] = _np(model(xt))
    out["losses"] = np.array(losses)
    out["gamma"] = g_best
    out["state_after"] = {k: _np(v) for k, v in model.state_dict().items()}
    return out


def _loop_quantities(want: dict) -> dict[str, np.ndarray]:
    """The float results of ``_gromo_side`` compared at the growth tolerance."""
    flat = {"losses": want["losses"], "ext_out": want["ext_out"], "new_out": want["new_out"]}
    for j, u in enumerate(want["updates"]):
        for key in ("delta", "N", "decrease", "sv", "fo"):
            if u[key] is not None:
                flat[f"{key} {j}"] = u[key]
        flat[f"omega alpha^T {j}"] = u["omega"] @ u["alpha"]
    flat.update({f"{k} after": v for k, v in want["state_after"].items()})
    return flat


def _loop_outcome(want: dict) -> dict[str, object]:
    outcome: dict[str, object] = {"selected layer": want["best"], "best gamma": want["gamma"]}
    for i, u in enumerate(want["updates"]):
        outcome[f"new neurons {i}"] = len(u["sv"])
    return outcome


def _align_signs(update, alpha_ref: np.ndarray, omega_ref: np.ndarray):
    """jaxlinear's α/ω with gromo's per-neuron sign (same ω·α)."""
    if update.extended_input.shape != omega_ref.shape:
        return update
    signs = np.sign(np.sum(np.asarray(update.extended_input) * omega_ref, axis=0))
    if update.extended_output.shape == alpha_ref.shape:  # ω = 0 (omega_zero): the sign of α
        by_alpha = np.sign(np.sum(np.asarray(update.extended_output) * alpha_ref, axis=1))
        signs = np.where(signs == 0, by_alpha, signs)
    signs = np.where(signs == 0, 1.0, signs).astype(np.float32)
    return update._replace(
        extended_input=update.extended_input * signs[None, :],
        extended_output=update.extended_output * signs[:, None],
    )


def _case(
    hidden: int,
    num_hidden: int,
    act: str,
    bias: bool,
    n: int,
    batch_size: int,
    seed: int,
    dead_unit: bool = False,
    options: dict | None = None,
) -> list[Check]:
    options = options or {}
    d_in, d_out = 5, 3
    x, y = _data(n, d_in, d_out, seed)
    from gromo.containers.growing_mlp import GrowingMLP

    def reference(order):
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gromo warns on zero-size init, add_parameters, ...
            ref = GrowingMLP(d_in, d_out, hidden, num_hidden, activation=ACTS[act](), use_bias=bias)
            if dead_unit:  # hidden unit 0 never fires: S is exactly singular, gromo uses pinv
                with torch.no_grad():
                    ref.layers[0].layer.bias[0] = -100.0
            state = export_state_dict(ref)
            return state, _gromo_side(ref, x, y, batch_size, num_hidden, options, order)

    (state, want), tol = order_tolerance(
        reference, lambda r: _loop_quantities(r[1]), lambda r: _loop_outcome(r[1])
    )

    model = jl.growing.GrowingMLP(d_in, d_out, hidden, num_hidden, act, use_bias=bias)
    params = jl.interop.from_torch(model, state)["params"]
    sse = lambda pred, t: jnp.sum((pred - t) ** 2)  # noqa: E731
    mse = lambda pred, t: jnp.mean((pred - t) ** 2)  # noqa: E731
    stats = jl.growing.init_statistics(model, covariance_loss_gradient=True)
    for start in range(0, n, batch_size):
        xb, yb = (
            jnp.asarray(x[start : start + batch_size]),
            jnp.asarray(y[start : start + batch_size]),
        )
        stats = jl.growing.update_statistics(model, params, stats, xb, yb, sse)
    checks = []
    for i in range(num_hidden + 1):
        checks.append(Check(f"S layer {i}", np.asarray(stats.tensor_s[i].mean()), want["S"][i]))
        checks.append(
            Check(
                f"count layer {i}",
                np.asarray(stats.tensor_s[i].count),
                np.array(want["count"][i]),
                EXACT,
            )
        )
    for j in range(num_hidden):
        checks.append(Check(f"M layer {j + 1}", np.asarray(stats.tensor_m[j].mean()), want["M"][j]))
        checks.append(
            Check(
                f"M_prev layer {j + 1}",
                np.asarray(stats.tensor_m_prev[j].mean()),
                want["M_prev"][j],
            )
        )
        checks.append(
            Check(f"P layer {j + 1}", np.asarray(stats.cross_covariance[j].mean()), want["P"][j])
        )
        checks.append(
            Check(
                f"E layer {j + 1}",
                np.asarray(stats.covariance_loss_gradient[j].mean()),
                want["E"][j],
            )
        )
    updates = jl.growing.compute_optimal_updates(model, stats, **options)
    for j, (u, w) in enumerate(zip(updates, want["updates"], strict=True)):
        i = u.layer_index
        if options.get("compute_delta", True):
            checks.append(
                Check(
                    f"delta layer {i}", np.asarray(u.optimal_delta), w["delta"], tol[f"delta {j}"]
                )
            )
        if w["N"] is not None:
            checks.append(Check(f"N layer {i}", np.asarray(u.tensor_n), w["N"], tol[f"N {j}"]))
        checks += [
            Check(
                f"decrease layer {i}",
                np.asarray(u.parameter_update_decrease),
                w["decrease"],
                tol[f"decrease {j}"],
            ),
            Check(
                f"singular values layer {i}",
                np.asarray(u.singular_values),
                w["sv"],
                tol[f"sv {j}"],
            ),
            Check(
                f"omega alpha^T layer {i}",
                np.asarray(u.extended_input @ u.extended_output),
                w["omega"] @ w["alpha"],
                tol[f"omega alpha^T {j}"],
            ),
            Check(f"FO layer {i}", np.asarray(u.first_order_improvement), w["fo"], tol[f"fo {j}"]),
        ]
    best = jl.growing.select_best_update(updates)
    checks.append(Check("selected layer", np.array(best), np.array(want["best"]), EXACT))
    update = updates[best]
    w = want["updates"][want["best"]]
    update = _align_signs(update, w["alpha"], w["omega"])
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    gamma, losses = jl.growing.line_search(model, params, update, [(xj, yj)], mse, GAMMAS)
    checks.append(Check("line-search losses", np.array(losses), want["losses"], tol["losses"]))
    checks.append(Check("best gamma", np.array(gamma), np.array(want["gamma"]), EXACT))
    ext = jl.growing.extended_forward(model, params, xj, update, gamma)
    checks.append(
        Check("extended_forward at best gamma", np.asarray(ext), want["ext_out"], tol["ext_out"])
    )
    new_model, new_params = jl.growing.apply_change(model, params, update, gamma)
    new_out = new_model.apply({"params": new_params}, xj)
    checks.append(
        Check("output after apply_change", np.asarray(new_out), want["new_out"], tol["new_out"])
    )
    state_after = jl.interop.to_torch(new_model, {"params": new_params})
    for k, v in want["state_after"].items():
        checks.append(Check(f"{k} after apply_change", state_after[k], v, tol[f"{k} after"]))
    return checks


# (hidden, num_hidden_layers, activation, bias, n samples, batch size)
CASES = [
    (2, 1, "tanh", True, 256, 64),
    (0, 1, "tanh", True, 256, 64),
    (2, 1, "relu", True, 256, 64),
    (3, 1, "identity", False, 200, 64),
    (3, 2, "relu", True, 250, 64),
    (2, 2, "tanh", False, 130, 32),
    (0, 1, "relu", False, 100, 48),
]


def _register_all() -> None:
    for k, (hidden, layers, act, bias, n, bs) in enumerate(CASES):
        name = f"5->{hidden}x{layers}->3 {act} bias={bias} n={n} bs={bs}"
        register(
            Case(
                GROUP,
                REFERENCE,
                name,
                FP32,
                functools.partial(_case, hidden, layers, act, bias, n, bs, k),
            )
        )
    register(
        Case(
            GROUP,
            REFERENCE,
            "5->4x1->3 relu bias=True dead unit (singular S: pinv)",
            FP32,
            functools.partial(_case, 4, 1, "relu", True, 96, 32, 20, True),
        )
    )


_register_all()

# gromo 0.1.0's options of compute_optimal_updates, through GrowingMLP on both sides
OPTION_CASES = [
    ("use_fisher", (2, 1, "tanh", True, 256, 64), {"use_fisher": True}),
    (
        "use_fisher fisher_shrinkage=0.3",
        (3, 2, "relu", True, 250, 64),
        {"use_fisher": True, "fisher_shrinkage": 0.3},
    ),
    ("use_fisher no bias", (3, 1, "tanh", False, 200, 64), {"use_fisher": True}),
    ("alpha_zero", (3, 1, "tanh", True, 200, 64), {"alpha_zero": True}),
    ("omega_zero", (3, 1, "tanh", True, 200, 64), {"omega_zero": True}),
    ("ignore_singular_values", (3, 2, "tanh", True, 200, 64), {"ignore_singular_values": True}),
    ("use_covariance=False", (3, 1, "relu", True, 200, 64), {"use_covariance": False}),
    (
        "compute_delta=False use_projection=False",
        (3, 1, "tanh", True, 200, 64),
        {"compute_delta": False, "use_projection": False},
    ),
    ("compute_delta=False (TINY)", (3, 1, "tanh", True, 200, 64), {"compute_delta": False}),
    (
        "GradMax preset",
        (3, 2, "tanh", True, 200, 64),
        {
            "compute_delta": False,
            "use_covariance": False,
            "alpha_zero": True,
            "use_projection": False,
            "ignore_singular_values": True,
        },
    ),
]


def _register_options() -> None:
    for k, (label, (hidden, layers, act, bias, n, bs), options) in enumerate(OPTION_CASES):
        name = f"5->{hidden}x{layers}->3 {act} bias={bias} {label}"
        register(
            Case(
                GROUP,
                "gromo.GrowingMLP.compute_optimal_updates",
                name,
                FP32,
                functools.partial(_case, hidden, layers, act, bias, n, bs, 40 + k, options=options),
            )
        )


_register_options()


# ---------------------------------------------------------------------------------------------
# Adjusting an update (sub-selection, normalisations), random extensions, the logspace search.
# ---------------------------------------------------------------------------------------------


def _reference_model(hidden: int, act: str, seed: int, n: int = 200, order: int | None = None):
    """gromo's GrowingMLP(5 -> hidden -> 3) after one statistics pass (rows summed in ``order``)
    and compute_optimal_updates; its initial state_dict and the data."""
    from gromo.containers.growing_mlp import GrowingMLP

    x, y = _data(n, 5, 3, seed)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GrowingMLP(5, 3, hidden, 1, activation=ACTS[act](), use_bias=True)
        state = export_state_dict(ref)
        rows = _reorder(n, n, order)
        xt, yt = torch.from_numpy(x[rows]), torch.from_numpy(y[rows])
        ref.init_computation()
        torch.nn.MSELoss(reduction="sum")(ref(xt), yt).backward()
        ref.update_computation()
        ref.compute_optimal_updates()
        ref.reset_computation()
    return ref, state, x, y


def _jax_model(hidden: int, act: str, state, x, y):
    """jaxlinear's model, params and update at gromo's initial weights, on the same data."""
    model = jl.growing.GrowingMLP(5, 3, hidden, 1, act)
    params = jl.interop.from_torch(model, state)["params"]
    sse = lambda pred, t: jnp.sum((pred - t) ** 2)  # noqa: E731
    stats = jl.growing.update_statistics(
        model, params, jl.growing.init_statistics(model), jnp.asarray(x), jnp.asarray(y), sse
    )
    (update,) = jl.growing.compute_optimal_updates(model, stats)
    return model, params, update


def _gromo_update(ref) -> dict[str, np.ndarray]:
    lay, prev = ref.layers[1], ref.layers[0]
    alpha = np.concatenate(
        [_np(prev.extended_output_layer.weight), _np(prev.extended_output_layer.bias)[:, None]],
        axis=1,
    )
    out = {
        "omega": _np(lay.extended_input_layer.weight),
        "alpha": alpha,
        "sv": _np(lay.eigenvalues_extension),
        "decrease": _np(lay.parameter_update_decrease),
        "fo": _np(lay.first_order_improvement),
    }
    if lay.optimal_delta_layer is not None:
        out["delta"] = np.concatenate(
            [_np(lay.optimal_delta_layer.weight), _np(lay.optimal_delta_layer.bias)[:, None]],
            axis=1,
        )
    return out


def _update_quantities(want: dict) -> dict[str, np.ndarray]:
    """The float parts of ``_gromo_update`` compared at the growth tolerance (ω·α, not α, ω)."""
    flat = {k: v for k, v in want.items() if k not in ("omega", "alpha", "out", "width")}
    flat["omega alpha^T"] = want["omega"] @ want["alpha"]
    if "out" in want:
        flat["out"] = want["out"]
    return flat


def _update_outcome(want: dict) -> dict[str, object]:
    return {"number of new neurons": want["omega"].shape[1], "alpha shape": want["alpha"].shape}


def _update_checks(update, want: dict, tol: dict[str, Tolerance]) -> list[Check]:
    checks = [
        Check("singular values", np.asarray(update.singular_values), want["sv"], tol["sv"]),
        Check(
            "omega alpha^T",
            np.asarray(update.extended_input @ update.extended_output),
            want["omega"] @ want["alpha"],
            tol["omega alpha^T"],
        ),
        Check(
            "omega shape",
            np.array(update.extended_input.shape),
            np.array(want["omega"].shape),
            EXACT,
        ),
        Check(
            "alpha shape",
            np.array(update.extended_output.shape),
            np.array(want["alpha"].shape),
            EXACT,
        ),
        Check(
            "decrease",
            np.asarray(update.parameter_update_decrease),
            want["decrease"],
            tol["decrease"],
        ),
        Check("FO", np.asarray(update.first_order_improvement), want["fo"], tol["fo"]),
    ]
    if "delta" in want:
        checks.append(Check("delta", np.asarray(update.optimal_delta), want["delta"], tol["delta"]))
    return checks


def _sub_select_case(zeros: bool) -> list[Check]:
    def reference(order):
        ref, state, x, y = _reference_model(4, "tanh", 61, order=order)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref.layers[1].sub_select_optimal_added_parameters(
                keep_neurons=1, zeros_if_not_enough=zeros
            )
            want = _gromo_update(ref)
            ref.set_scaling_factor(0.5)
            ref.currently_updated_layer_index = 0
            ref.apply_change()
            want["out"] = _np(ref(torch.from_numpy(x)))
            want["width"] = ref.layers[1].in_features
        return state, x, y, want

    (state, x, y, want), tol = order_tolerance(
        reference,
        lambda r: _update_quantities(r[3]),
        lambda r: {**_update_outcome(r[3]), "width": r[3]["width"]},
    )
    model, params, update = _jax_model(4, "tanh", state, x, y)
    got = jl.growing.sub_select_update(model, update, keep_neurons=1, zeros_if_not_enough=zeros)
    checks = _update_checks(got, want, tol)
    got = _align_signs(got, want["alpha"], want["omega"])
    new_model, new_params = jl.growing.apply_change(model, params, got, 0.5)
    checks.append(
        Check(
            "hidden width after apply_change",
            np.array(new_model.widths[1]),
            np.array(want["width"]),
            EXACT,
        )
    )
    checks.append(
        Check(
            "output after apply_change",
            np.asarray(new_model.apply({"params": new_params}, jnp.asarray(x))),
            want["out"],
            tol["out"],
        )
    )
    return checks


def _normalize_case(kind: str) -> list[Check]:
    def reference(order):
        ref, state, x, y = _reference_model(3, "tanh", 62, order=order)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref.layers[1].normalize_optimal_updates(normalization_type=kind)
        return state, x, y, _gromo_update(ref)

    (state, x, y, want), tol = order_tolerance(
        reference, lambda r: _update_quantities(r[3]), lambda r: _update_outcome(r[3])
    )
    model, params, update = _jax_model(3, "tanh", state, x, y)
    got = jl.growing.normalize_optimal_updates(model, params, update, normalization_type=kind)
    return _update_checks(got, want, tol)


INITS = ("copy_uniform", "copy_normal", "kaiming", "kaiming_normal", "zeros")
RANDOM_NEURONS = 20000


def _random_extension_case(init: str) -> list[Check]:
    """Random inits are random on both sides: compare shapes (exactly) and standard deviations.

    20000 new neurons: α has 100000 weights and 20000 biases, ω 60000 weights. The relative
    standard error of a sample std is ≤ √(2/(4n)) (normal; uniform is smaller), ≤ 0.005 for
    n = 20000, so the difference of two independent estimates has std ≤ 0.0071: rtol 0.05 is > 7
    of those (false-failure probability < 1e-11).
    """
    from gromo.containers.growing_mlp import GrowingMLP

    torch.manual_seed(63)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GrowingMLP(5, 3, 4, 1, activation=torch.nn.ReLU(), use_bias=True)
        state = export_state_dict(ref)
        ref.layers[1].create_layer_extensions(
            RANDOM_NEURONS, output_extension_init=init, input_extension_init=init
        )
    prev = ref.layers[0].extended_output_layer
    want = {
        "alpha": _np(prev.weight),
        "alpha bias": _np(prev.bias),
        "omega": _np(ref.layers[1].extended_input_layer.weight),
    }
    model = jl.growing.GrowingMLP(5, 3, 4, 1, "relu")
    params = jl.interop.from_torch(model, state)["params"]
    update = jl.growing.create_layer_extensions(
        model,
        params,
        1,
        RANDOM_NEURONS,
        jax.random.key(63),
        output_extension_init=init,
        input_extension_init=init,
    )
    got = {
        "alpha": np.asarray(update.extended_output[:, :-1]),
        "alpha bias": np.asarray(update.extended_output[:, -1]),
        "omega": np.asarray(update.extended_input),
    }
    checks = []
    spread = Tolerance(rtol=0.05, atol=0.0)
    for k, w in want.items():
        g = got[k]
        checks.append(Check(f"{k} shape", np.array(g.shape), np.array(w.shape), EXACT))
        checks.append(Check(f"{k} std", np.array(g.std()), np.array(w.std()), spread))
        checks.append(
            Check(
                f"{k} mean / std",
                np.array(g.mean()),
                np.array(w.mean()),
                Tolerance(0.0, 0.05 * max(w.std(), 1e-30)),
            )
        )
    return checks


def _logspace_case() -> list[Check]:
    from gromo.utils.utils import line_search

    def reference(order):
        ref, state, x, y = _reference_model(3, "tanh", 64, order=order)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def cost(factor):
            with torch.no_grad():
                ref.set_scaling_factor(float(factor))
                return torch.nn.functional.mse_loss(ref.extended_forward(xt), yt).item()

        factors, losses = line_search(cost, return_history=True)
        best = np.array(factors[int(np.argmin(losses))])
        return state, x, y, _gromo_update(ref), np.array(losses), best

    (state, x, y, w, losses, best), tol = order_tolerance(
        reference,
        lambda r: {"losses": r[4], "best factor": r[5]},
        lambda r: {"number of factors tried": len(r[4])},
    )
    model, params, update = _jax_model(3, "tanh", state, x, y)
    update = _align_signs(update, w["alpha"], w["omega"])
    mse = lambda pred, t: jnp.mean((pred - t) ** 2)  # noqa: E731
    gamma, got = jl.growing.line_search(
        model, params, update, [(jnp.asarray(x), jnp.asarray(y))], mse, "logspace"
    )
    return [
        Check("number of factors tried", np.array(len(got)), np.array(len(losses)), EXACT),
        Check("losses", np.array(got), losses, tol["losses"]),
        Check("best factor", np.array(gamma), best, tol["best factor"]),
    ]


def _register_adjustments() -> None:
    for zeros in (False, True):
        register(
            Case(
                GROUP,
                "gromo.GrowingModule.sub_select_optimal_added_parameters",
                f"keep_neurons=1 zeros_if_not_enough={zeros}",
                GROWTH,
                functools.partial(_sub_select_case, zeros),
            )
        )
    for kind in (
        "legacy_normalization",
        "equalize_second_layer",
        "equalize_extensions",
        "match_extending_layer",
        "gradmax_normalization",
    ):
        register(
            Case(
                GROUP,
                "gromo.GrowingModule.normalize_optimal_updates",
                kind,
                GROWTH,
                functools.partial(_normalize_case, kind),
            )
        )
    for init in INITS:
        register(
            Case(
                GROUP,
                "gromo.GrowingModule.create_layer_extensions",
                f"{init} ({RANDOM_NEURONS} neurons: shapes, std)",
                GROWTH,
                functools.partial(_random_extension_case, init),
            )
        )
    register(
        Case(GROUP, "gromo.utils.utils.line_search", "logspace line search", GROWTH, _logspace_case)
    )


_register_adjustments()


# ---------------------------------------------------------------------------------------------
# The pure solvers against gromo.utils.tools on designed matrices.
# ---------------------------------------------------------------------------------------------


def _dead_unit_stats(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """S, M of a layer whose 2nd input unit is dead (always 0): S is exactly singular."""
    rng = np.random.default_rng(seed)
    h = np.maximum(rng.standard_normal((40, 4), dtype=np.float32), 0)
    h[:, 1] = 0
    he = np.concatenate([h, np.ones((40, 1), np.float32)], axis=1)
    g = rng.standard_normal((40, 3), dtype=np.float32)
    return (he.T @ he / 40).astype(np.float32), (he.T @ g / 40).astype(np.float32)


def _delta_case(kind: str) -> list[Check]:
    from gromo.utils.tools import optimal_delta

    if kind == "singular":
        s, m = _dead_unit_stats(0)
        force = False
    elif kind == "forced pinv":
        s, m = _dead_unit_stats(1)
        s = s + np.eye(5, dtype=np.float32)
        force = True
    elif kind == "indefinite (negative decrease -> 0)":
        # not a covariance: tr(Mᵀ S⁻¹ M) < 0 also with the pseudo-inverse, so δ = 0, decrease = 0
        s = np.diag(np.array([1.0, -2.0, 3.0], np.float32))
        m = np.array([[0.1, 0.0], [1.0, 2.0], [0.0, 0.1]], np.float32)
        force = False
    else:
        s, m = _dead_unit_stats(2)
        s = s + 0.1 * np.eye(5, dtype=np.float32)
        force = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Using the pseudo-inverse ..."
        d_ref, dec_ref = optimal_delta(
            torch.from_numpy(s), torch.from_numpy(m), force_pseudo_inverse=force
        )
    d, dec = jl.growing.compute_optimal_delta(jnp.asarray(s), jnp.asarray(m), force)
    return [
        Check("delta", np.asarray(d), _np(d_ref), GROWTH),
        Check("decrease", np.asarray(dec), _np(dec_ref), GROWTH),
    ]


def _added_case(kind: str) -> list[Check]:
    from gromo.utils.tools import compute_optimal_added_parameters

    rng = np.random.default_rng(7)
    n_rows = (
        4 if kind == "rank-deficient S" else 64
    )  # fewer samples than d+1: eigen-directions dropped
    x = rng.standard_normal((n_rows, 6), dtype=np.float32)
    xe = np.concatenate([x, np.ones((n_rows, 1), np.float32)], axis=1)
    s = (xe.T @ xe / n_rows).astype(np.float32)
    n = (xe.T @ rng.standard_normal((n_rows, 4), dtype=np.float32) / n_rows).astype(np.float32)
    kwargs = {}
    if kind == "maximum_added_neurons=2":
        kwargs["maximum_added_neurons"] = 2
    if kind == "statistical_threshold=0.3":
        kwargs["statistical_threshold"] = 0.3
    if kind == "GradMax (S=None, ignore_singular_values)":
        s_ref = s_jax = None
        kwargs["ignore_singular_values"] = True
    else:
        s_ref, s_jax = torch.from_numpy(s), jnp.asarray(s)
    a_ref, o_ref, sv_ref = compute_optimal_added_parameters(s_ref, torch.from_numpy(n), **kwargs)
    a, o, sv = jl.growing.compute_optimal_added_parameters(s_jax, jnp.asarray(n), **kwargs)
    return [
        Check("singular values", np.asarray(sv), _np(sv_ref), GROWTH),
        Check("omega alpha^T", np.asarray(o @ a), _np(o_ref) @ _np(a_ref), GROWTH),
    ]


def _register_solvers() -> None:
    for kind in ("singular", "forced pinv", "regular", "indefinite (negative decrease -> 0)"):
        register(
            Case(
                GROUP,
                "gromo.utils.tools.optimal_delta",
                f"optimal_delta {kind} S",
                GROWTH,
                functools.partial(_delta_case, kind),
            )
        )
    for kind in (
        "full-rank S",
        "rank-deficient S",
        "maximum_added_neurons=2",
        "statistical_threshold=0.3",
        "GradMax (S=None, ignore_singular_values)",
    ):
        register(
            Case(
                GROUP,
                "gromo.utils.tools.compute_optimal_added_parameters",
                f"added parameters {kind}",
                GROWTH,
                functools.partial(_added_case, kind),
            )
        )


_register_solvers()


# ---------------------------------------------------------------------------------------------
# The pure statistic updates against LinearGrowingModule's methods (2-D and 3-D inputs).
# ---------------------------------------------------------------------------------------------


def _statistic_updates_case(shape: tuple[int, ...], bias: bool) -> list[Check]:
    """One batch through ``prev -> act -> layer``: every ``compute_*_update`` (sum and count)."""
    from gromo.modules.linear_growing_module import LinearGrowingModule

    torch.manual_seed(11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prev = LinearGrowingModule(4, 3, use_bias=bias, post_layer_function=torch.nn.Tanh())
        layer = LinearGrowingModule(3, 2, use_bias=bias, previous_module=prev)
        layer.init_computation()
        x = torch.from_numpy(
            np.random.default_rng(5).standard_normal((*shape, 4), dtype=np.float32)
        )
        target = torch.ones((*shape, 2))
        ((layer(prev(x)) - target) ** 2).sum().backward()
        want = {
            "S": layer.compute_s_update(),
            "S prev": prev.compute_s_update(),
            "M": layer.compute_m_update(),
            "M_prev": layer.compute_m_prev_update(),
            "P": layer.compute_cross_covariance_update(),
            "E": layer.compute_covariance_loss_gradient_update(),
        }
        h = layer.input.numpy()
        g = layer.pre_activity.grad.numpy()
    xj, hj, gj = jnp.asarray(x.numpy()), jnp.asarray(h), jnp.asarray(g)
    got = {
        "S": jl.growing.compute_s_update(hj, bias),
        "S prev": jl.growing.compute_s_update(xj, bias),
        "M": jl.growing.compute_m_update(hj, gj, bias),
        "M_prev": jl.growing.compute_m_prev_update(xj, gj, bias),
        "P": jl.growing.compute_cross_covariance_update(xj, hj, bias, bias),
        "E": jl.growing.compute_covariance_loss_gradient_update(gj),
    }
    checks = []
    for k, (w_sum, w_count) in want.items():
        g_sum, g_count = got[k]
        checks.append(Check(f"{k} sum", np.asarray(g_sum), _np(w_sum)))
        checks.append(Check(f"{k} count", np.array(g_count), np.array(w_count), EXACT))
    return checks


def _register_statistic_updates() -> None:
    for shape, bias in (((7,), True), ((7,), False), ((3, 5), True)):
        name = f"compute_*_update x{'x'.join(map(str, shape))}x4 bias={bias}"
        register(
            Case(
                GROUP,
                "gromo.LinearGrowingModule",
                name,
                FP32,
                functools.partial(_statistic_updates_case, shape, bias),
            )
        )


_register_statistic_updates()
