"""jl.optim.sgd / adam / adamw: torch's semantics, validation, and composition with optax and Flax."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training import train_state

import jaxlinear as jl

PARAMS = {"a": {"kernel": jnp.linspace(-1, 1, 12).reshape(3, 4), "bias": jnp.full(4, 0.5)},
          "b": {"kernel": jnp.linspace(1, 2, 8).reshape(4, 2)}}  # fmt: skip
FACTORS = jl.optim.Factors(
    {"a": {"kernel": 0.25, "bias": 2.0}, "b": {"kernel": 1.5}},
    {"a": {"kernel": 4.0, "bias": 0.5}, "b": {"kernel": 0.0}},
)
KWARGS = {"sgd": {"momentum": 0.9, "weight_decay": 0.1}, "adam": {"weight_decay": 0.1},
          "adamw": {"weight_decay": 0.1}}  # fmt: skip
BUILDERS = {
    name: (
        lambda learning_rate, f=FACTORS, _n=name: getattr(jl.optim, _n)(
            learning_rate, f, **KWARGS[_n]
        )
    )
    for name in KWARGS
}


def _grads(i):
    return jax.tree.map(lambda p: jnp.sin(p * (i + 1.3)) + 0.1 * i, PARAMS)


def _run(tx, steps=4, params=PARAMS, grads=_grads):
    state = tx.init(params)
    for i in range(steps):
        u, state = tx.update(grads(i), state, params)
        params = optax.apply_updates(params, u)
    return params


def _equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def _close(a, b):
    """Equal up to float32 rounding: a combinator that runs the update compiled (inside ``lax.cond``)
    against the eager run may round an op differently (1 ulp seen)."""
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)


# --- torch semantics ---------------------------------------------------------------------------


def _torch_sgd_ref(lr, f, wd_f, momentum, dampening, nesterov, wd, steps=4):
    """torch.optim.SGD's update, written out for one leaf (kernel of "a")."""
    p, buf = PARAMS["a"]["kernel"], None
    for i in range(steps):
        g = _grads(i)["a"]["kernel"] + wd * wd_f * p
        buf = g if buf is None else momentum * buf + (1 - dampening) * g
        d = g + momentum * buf if nesterov else buf
        p = p - lr * f * d
    return p


@pytest.mark.parametrize("dampening,nesterov", [(0.0, False), (0.5, False), (0.0, True)])
def test_sgd_is_torch_sgd_per_leaf(dampening, nesterov):
    tx = jl.optim.sgd(0.1, FACTORS, momentum=0.9, dampening=dampening, nesterov=nesterov,
                      weight_decay=0.1)  # fmt: skip
    got = _run(tx)["a"]["kernel"]
    want = _torch_sgd_ref(0.1, 0.25, 4.0, 0.9, dampening, nesterov, 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_adam_is_coupled_adamw_decoupled():
    """Adam: the decay enters the moments; AdamW: p <- p - lr_p (adam + wd_p p), torch's order."""
    lr, f, wd_f, wd = 0.01, 0.25, 4.0, 0.1
    p = PARAMS["a"]["kernel"]
    ps = {"adam": p, "adamw": p}
    m = {k: jnp.zeros_like(p) for k in ps}
    v = dict(m)
    for i in range(4):
        t = i + 1
        for k in ps:
            g = _grads(i)["a"]["kernel"] + (wd * wd_f * ps[k] if k == "adam" else 0)
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            adam = m[k] / (1 - 0.9**t) / (jnp.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
            decay = wd * wd_f * ps[k] if k == "adamw" else 0
            ps[k] = ps[k] - lr * f * (adam + decay)
    for k in ps:
        got = _run(BUILDERS[k](lr))["a"]["kernel"]
        np.testing.assert_allclose(got, ps[k], rtol=1e-5, atol=1e-7)
    assert float(jnp.max(jnp.abs(ps["adam"] - ps["adamw"]))) > 1e-4  # the two differ


def test_no_factors_is_plain_torch_and_zero_wd_factor_leaves_untouched():
    for name in ("adam", "adamw", "sgd"):
        ones = jl.optim.Factors(*(jax.tree.map(lambda _: 1.0, PARAMS),) * 2)
        _equal(_run(BUILDERS[name](0.01, None)), _run(BUILDERS[name](0.01, ones)))
    # "b" has weight-decay factor 0: decay off for it
    no_wd = jl.optim.adamw(0.01, FACTORS, weight_decay=0.0)
    _equal(_run(BUILDERS["adamw"](0.01))["b"], _run(no_wd)["b"])


@pytest.mark.parametrize("name", BUILDERS)
def test_bf16_updates_stay_bf16(name):
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), PARAMS)
    for lr in (0.01, jnp.float32(0.01), optax.constant_schedule(0.01)):
        tx = BUILDERS[name](lr)
        u, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
        assert {x.dtype for x in jax.tree.leaves(u)} == {jnp.dtype(jnp.bfloat16)}


# --- validation (torch's checks) ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("lr", [-0.1, math.nan, math.inf])
def test_bad_learning_rate(name, lr):
    with pytest.raises(ValueError, match="`learning_rate` must be a finite number >= 0"):
        getattr(jl.optim, name)(lr)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_learning_rate_types(name):
    with pytest.raises(TypeError, match="`learning_rate` must be"):
        getattr(jl.optim, name)("0.1")
    with pytest.raises(TypeError, match="`learning_rate` must be"):
        getattr(jl.optim, name)(True)
    with pytest.raises(ValueError, match="`learning_rate` must be a scalar"):
        getattr(jl.optim, name)(jnp.ones(2))
    with pytest.raises(TypeError, match="`factors` must be a jaxlinear.optim.Factors"):
        getattr(jl.optim, name)(0.1, {"w": 1.0})


@pytest.mark.parametrize("name", ["adam", "adamw"])
@pytest.mark.parametrize("arg,value", [("b1", 1.0), ("b1", -0.1), ("b2", 1.5), ("b2", math.nan),
                                       ("eps", -1e-8), ("weight_decay", -0.01)])  # fmt: skip
def test_bad_adam_hyperparameters(name, arg, value):
    with pytest.raises(ValueError, match=f"`{arg}` must be"):
        getattr(jl.optim, name)(0.1, **{arg: value})


@pytest.mark.parametrize("arg,value", [("momentum", -0.9), ("momentum", math.nan),
                                       ("dampening", -0.1), ("dampening", 1.5),
                                       ("weight_decay", -1.0)])  # fmt: skip
def test_bad_sgd_hyperparameters(arg, value):
    with pytest.raises(ValueError, match=f"`{arg}` must be"):
        jl.optim.sgd(0.1, **{arg: value})


def test_nesterov_needs_momentum_and_no_dampening():
    with pytest.raises(ValueError, match="`nesterov` needs a momentum > 0"):
        jl.optim.sgd(0.1, nesterov=True)
    with pytest.raises(ValueError, match="`nesterov` needs a momentum > 0"):
        jl.optim.sgd(0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(TypeError, match="`nesterov` must be a bool"):
        jl.optim.sgd(0.1, momentum=0.9, nesterov="True")


def test_weight_decay_needs_params_and_factors_must_match():
    tx = jl.optim.adam(0.1, FACTORS, weight_decay=0.1)
    with pytest.raises(ValueError, match="`params` must be passed"):
        tx.update(PARAMS, tx.init(PARAMS))
    tx = jl.optim.adam(0.1, jl.optim.Factors({"a": 1.0}, {"a": 1.0}))
    with pytest.raises(ValueError, match="`factors` must have the same tree structure"):
        tx.update(PARAMS, tx.init(PARAMS), PARAMS)


# --- composition: each combinator against the same run without it (exact) ----------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_chain_and_jit(name):
    clip = optax.clip_by_global_norm(0.5)
    chained = optax.chain(clip, BUILDERS[name](0.01))

    def manual(i):
        return clip.update(_grads(i), clip.init(PARAMS))[0]

    _equal(_run(chained), _run(BUILDERS[name](0.01), grads=manual))
    tx = BUILDERS[name](0.01)

    @jax.jit
    def step(params, state, g):
        u, state = tx.update(g, state, params)
        return optax.apply_updates(params, u), state

    params, state = PARAMS, tx.init(PARAMS)
    for i in range(4):
        params, state = step(params, state, _grads(i))
    _close(params, _run(tx))


def _sub(tree, key):
    return {key: tree[key]}


@pytest.mark.parametrize("name", BUILDERS)
def test_masked_and_multi_transform(name):
    mask = {"a": {"kernel": True, "bias": True}, "b": {"kernel": False}}
    sub_factors = jl.optim.Factors(_sub(FACTORS.lr, "a"), _sub(FACTORS.weight_decay, "a"))
    want = _run(BUILDERS[name](0.01, sub_factors), params=_sub(PARAMS, "a"),
                grads=lambda i: _sub(_grads(i), "a"))  # fmt: skip
    masked = optax.chain(optax.masked(BUILDERS[name](0.01), mask),
                         optax.masked(optax.set_to_zero(), jax.tree.map(lambda m: not m, mask)))  # fmt: skip
    got = _run(masked)
    _equal(got["a"], want["a"])
    _equal(got["b"], PARAMS["b"])
    labels = {"a": {"kernel": "train", "bias": "train"}, "b": {"kernel": "freeze"}}
    multi = optax.multi_transform({"train": BUILDERS[name](0.01), "freeze": optax.set_to_zero()},
                                  labels)  # fmt: skip
    got = _run(multi)
    _equal(got["a"], want["a"])
    _equal(got["b"], PARAMS["b"])


@pytest.mark.parametrize("name", BUILDERS)
def test_multi_steps_and_apply_if_finite(name):
    # MultiSteps(k=2) on a gradient repeated twice = one step on it (its mean is exact)
    multi = optax.MultiSteps(BUILDERS[name](0.01), every_k_schedule=2)
    _close(_run(multi, steps=8, grads=lambda i: _grads(i // 2)), _run(BUILDERS[name](0.01)))
    # apply_if_finite skips a NaN step: the same run without that step
    nan = jax.tree.map(lambda g: g * jnp.nan, _grads(0))
    safe = optax.apply_if_finite(BUILDERS[name](0.01), max_consecutive_errors=3)
    got = _run(safe, steps=5, grads=lambda i: nan if i == 2 else _grads(i - (i > 2)))
    _close(got, _run(BUILDERS[name](0.01)))


@pytest.mark.parametrize("name", BUILDERS)
def test_inject_hyperparams_schedules_and_train_state(name):
    plain = _run(BUILDERS[name](0.01))
    injected = optax.inject_hyperparams(getattr(jl.optim, name))(
        learning_rate=0.01, factors=FACTORS, **KWARGS[name]
    )
    # inject_hyperparams hands the builder float32 arrays: the same run with those hyperparameters is
    # exactly equal; with the Python floats, equal up to their float32 rounding (1 - b1, log b1, ...)
    f32 = {k: jnp.float32(v) for k, v in KWARGS[name].items()}
    defaults = {"adam": ("b1", "b2", "eps"), "adamw": ("b1", "b2", "eps"), "sgd": ("dampening",)}
    f32.update({k: jnp.float32(injected.init(PARAMS).hyperparams[k]) for k in defaults[name]})
    _equal(_run(injected), _run(getattr(jl.optim, name)(jnp.float32(0.01), FACTORS, **f32)))
    _close(_run(injected), plain)
    _equal(_run(BUILDERS[name](optax.constant_schedule(0.01))), plain)
    # a decaying schedule = changing the injected learning rate by hand
    sched = optax.exponential_decay(0.01, 1, 0.5)
    state = injected.init(PARAMS)
    params = PARAMS
    for i in range(4):
        state.hyperparams["learning_rate"] = jnp.asarray(sched(i))
        u, state = injected.update(_grads(i), state, params)
        params = optax.apply_updates(params, u)
    _equal(_run(BUILDERS[name](sched)), params)
    # flax TrainState
    ts = train_state.TrainState.create(apply_fn=None, params=PARAMS, tx=BUILDERS[name](0.01))
    for i in range(4):
        ts = ts.apply_gradients(grads=_grads(i))
    _equal(ts.params, plain)


@pytest.mark.parametrize("name", BUILDERS)
def test_vmap_over_learning_rates(name):
    lrs = jnp.array([1e-3, 1e-2, 1e-1])

    def run(lr):
        return _run(BUILDERS[name](lr))

    batched = jax.vmap(run)(lrs)
    for i, lr in enumerate(lrs):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-7),  # noqa: B023
                     batched, run(lr))  # fmt: skip


def test_scale_by_lr_factors_composes_as_a_building_block():
    tx = optax.chain(optax.scale_by_adam(), jl.optim.scale_by_lr_factors(FACTORS.lr),
                     optax.scale_by_learning_rate(0.01))  # fmt: skip
    ref = optax.adam(0.01)
    u, _ = tx.update(_grads(0), tx.init(PARAMS))
    r, _ = ref.update(_grads(0), ref.init(PARAMS))
    np.testing.assert_array_equal(u["a"]["kernel"], r["a"]["kernel"] * 0.25)
    callable_tx = jl.optim.scale_by_lr_factors(lambda u: jax.tree.map(lambda _: 2.0, u))
    u, _ = callable_tx.update(_grads(0), callable_tx.init(PARAMS))
    np.testing.assert_array_equal(u["b"]["kernel"], _grads(0)["b"]["kernel"] * 2.0)
