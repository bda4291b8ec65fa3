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
1e-7 differences of the statistics by the condition numbers: GROWTH (rtol 1e-4, atol 1e-5).
"""

import functools
import warnings

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


def _gromo_side(model, x, y, batch_size, num_hidden):
    """Run gromo's loop; return every quantity as numpy."""
    from gromo.containers.growing_mlp import GrowingMLP  # noqa: F401 - documents the reference

    out = {}
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    crit = torch.nn.MSELoss(reduction="sum")
    model.init_computation()
    for start in range(0, len(x), batch_size):
        model.zero_grad()
        crit(model(xt[start : start + batch_size]), yt[start : start + batch_size]).backward()
        model.update_computation()
    layers = model.layers
    out["S"] = [_np(layers[i].tensor_s()) for i in range(num_hidden + 1)]
    out["M"] = [_np(layers[i].tensor_m()) for i in range(1, num_hidden + 1)]
    out["M_prev"] = [_np(layers[i].tensor_m_prev()) for i in range(1, num_hidden + 1)]
    out["P"] = [_np(layers[i].cross_covariance()) for i in range(1, num_hidden + 1)]
    out["E"] = [_np(layers[i].covariance_loss_gradient()) for i in range(1, num_hidden + 1)]
    out["count"] = [layers[i].tensor_s.samples for i in range(num_hidden + 1)]
    model.compute_optimal_updates()
    upd = []
    for i in range(1, num_hidden + 1):
        lay, prev = layers[i], layers[i - 1]
        alpha = _np(prev.extended_output_layer.weight)
        if prev.extended_output_layer.bias is not None:
            alpha = np.concatenate([alpha, _np(prev.extended_output_layer.bias)[:, None]], axis=1)
        upd.append(
            {
                "delta": _np(lay.delta_raw),
                "decrease": _np(lay.parameter_update_decrease),
                "N": _np(lay.tensor_n),
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


def _align_signs(update, alpha_ref: np.ndarray, omega_ref: np.ndarray):
    """jaxlinear's α/ω with gromo's per-neuron sign (same ω·α)."""
    if update.extended_input.shape != omega_ref.shape:
        return update
    signs = np.sign(np.sum(np.asarray(update.extended_input) * omega_ref, axis=0))
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
) -> list[Check]:
    d_in, d_out = 5, 3
    x, y = _data(n, d_in, d_out, seed)
    from gromo.containers.growing_mlp import GrowingMLP

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gromo warns on zero-size init, add_parameters, ...
        ref = GrowingMLP(d_in, d_out, hidden, num_hidden, activation=ACTS[act](), use_bias=bias)
        if dead_unit:  # hidden unit 0 never fires: S is exactly singular, gromo falls back to pinv
            with torch.no_grad():
                ref.layers[0].layer.bias[0] = -100.0
        state = export_state_dict(ref)
        want = _gromo_side(ref, x, y, batch_size, num_hidden)

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
    updates = jl.growing.compute_optimal_updates(model, stats)
    for u, w in zip(updates, want["updates"], strict=True):
        i = u.layer_index
        checks += [
            Check(f"delta layer {i}", np.asarray(u.optimal_delta), w["delta"], GROWTH),
            Check(
                f"decrease layer {i}",
                np.asarray(u.parameter_update_decrease),
                w["decrease"],
                GROWTH,
            ),
            Check(f"N layer {i}", np.asarray(u.tensor_n), w["N"], GROWTH),
            Check(f"singular values layer {i}", np.asarray(u.singular_values), w["sv"], GROWTH),
            Check(
                f"omega alpha^T layer {i}",
                np.asarray(u.extended_input @ u.extended_output),
                w["omega"] @ w["alpha"],
                GROWTH,
            ),
            Check(f"FO layer {i}", np.asarray(u.first_order_improvement), w["fo"], GROWTH),
        ]
    best = jl.growing.select_best_update(updates)
    checks.append(Check("selected layer", np.array(best), np.array(want["best"]), EXACT))
    update = updates[best]
    w = want["updates"][want["best"]]
    update = _align_signs(update, w["alpha"], w["omega"])
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    gamma, losses = jl.growing.line_search(model, params, update, [(xj, yj)], mse, GAMMAS)
    checks.append(Check("line-search losses", np.array(losses), want["losses"], GROWTH))
    checks.append(Check("best gamma", np.array(gamma), np.array(want["gamma"]), EXACT))
    ext = jl.growing.extended_forward(model, params, xj, update, gamma)
    checks.append(Check("extended_forward at best gamma", np.asarray(ext), want["ext_out"], GROWTH))
    new_model, new_params = jl.growing.apply_change(model, params, update, gamma)
    new_out = new_model.apply({"params": new_params}, xj)
    checks.append(Check("output after apply_change", np.asarray(new_out), want["new_out"], GROWTH))
    state_after = jl.interop.to_torch(new_model, {"params": new_params})
    for k, v in want["state_after"].items():
        checks.append(Check(f"{k} after apply_change", state_after[k], v, GROWTH))
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
