"""Audit table (tests/_audit.py): ``jl.optim`` (Factors, rules, optimizers, transforms, coord check)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlinear as jl
from jaxlinear.optim import Factors
from tests._audit import bad, check, good

O = jl.optim
P = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
G = {"w": jnp.full((2, 3), 0.5), "b": jnp.full(3, 0.5)}
F1 = Factors({"w": 1.0, "b": 1.0}, {"w": 1.0, "b": 1.0})
OTHER = Factors({"k": 1.0}, {"k": 1.0})  # another model's factors


def _f(lr: object = 1.0, wd: object = 1.0) -> Factors:
    return Factors({"w": lr, "b": 1.0}, {"w": wd, "b": 1.0})


def _step(tx: optax.GradientTransformation, grads=G, params=P):
    return tx.update(grads, tx.init(params), params)[0]


@functools.cache
def _linear():
    layer = jl.Linear(3, parametrization="mup", layer_type="input")
    return layer, layer.init(jax.random.key(0), jnp.ones((1, 4)))


def _other_state(make):
    """An optimizer state built for other params, then used on P."""
    tx = make()
    state = tx.init({"w": jnp.ones((5, 5)), "b": jnp.ones(5)})
    return tx.update(G, state, P)


OPTIMIZERS = {"sgd": O.sgd, "adam": O.adam, "adamw": O.adamw}

CASES = []
for opt, make in OPTIMIZERS.items():
    CASES += [
        bad(
            f"{opt} factors lr negative",
            lambda m=make: m(0.1, _f(lr=-1.0)),
            ValueError,
            "factors.lr",
        ),
        bad(
            f"{opt} factors lr nan",
            lambda m=make: m(0.1, _f(lr=math.nan)),
            ValueError,
            "factors.lr",
        ),
        bad(
            f"{opt} factors lr inf",
            lambda m=make: m(0.1, _f(lr=math.inf)),
            ValueError,
            "factors.lr",
        ),
        bad(f"{opt} factors lr str", lambda m=make: m(0.1, _f(lr="1")), TypeError, "factors.lr"),
        bad(
            f"{opt} factors lr array",
            lambda m=make: m(0.1, _f(lr=np.ones(3))),
            ValueError,
            "factors.lr",
        ),
        bad(
            f"{opt} factors wd negative",
            lambda m=make: m(0.1, _f(wd=-2.0)),
            ValueError,
            "factors.weight_decay",
        ),
        bad(
            f"{opt} factors wd nan",
            lambda m=make: m(0.1, _f(wd=math.nan)),
            ValueError,
            "factors.weight_decay",
        ),
        bad(
            f"{opt} Factors(None, None)",
            lambda m=make: m(0.1, Factors(None, None)),
            TypeError,
            "factors.lr",
        ),
        bad(f"{opt} factors a dict", lambda m=make: m(0.1, {"w": 1.0}), TypeError, "factors"),
        bad(
            f"{opt} factors of another model at init",
            lambda m=make: m(0.1, OTHER).init(P),
            ValueError,
            "factors",
        ),
        bad(
            f"{opt} factors of another model at update",
            lambda m=make: _step(m(0.1, OTHER)),
            ValueError,
            "factors",
        ),
        bad(f"{opt} lr negative", lambda m=make: m(-0.1), ValueError, "learning_rate"),
        bad(f"{opt} lr nan", lambda m=make: m(math.nan), ValueError, "learning_rate"),
        bad(f"{opt} lr str", lambda m=make: m("0.1"), TypeError, "learning_rate"),
        bad(f"{opt} lr None", lambda m=make: m(None), TypeError, "learning_rate"),
        bad(f"{opt} lr bool", lambda m=make: m(True), TypeError, "learning_rate"),
        bad(f"{opt} lr vector", lambda m=make: m(jnp.ones(2)), ValueError, "learning_rate"),
        bad(
            f"{opt} weight_decay negative",
            lambda m=make: m(0.1, weight_decay=-1.0),
            ValueError,
            "weight_decay",
        ),
        bad(
            f"{opt} int params",
            lambda m=make: m(0.1).init({"w": jnp.ones(3, jnp.int32)}),
            TypeError,
            "params",
        ),
        bad(
            f"{opt} int grads",
            lambda m=make: m(0.1).update(
                {"w": jnp.ones(3, jnp.int32)}, m(0.1).init({"w": jnp.ones(3)})
            ),
            TypeError,
            "updates",
        ),
        bad(
            f"{opt} wd without params",
            lambda m=make: m(0.1, weight_decay=0.1).update(G, m(0.1, weight_decay=0.1).init(P)),
            ValueError,
            "params",
        ),
        good(
            f"{opt} lr 0 leaves params",
            lambda m=make: _step(m(0.0))["w"],
            np.zeros((2, 3), np.float32),
        ),
        good(
            f"{opt} lr numpy float32",
            lambda m=make: _step(m(np.float32(0.5)))["b"].dtype,
            jnp.float32,
        ),
        good(
            f"{opt} factors numpy floats",
            lambda m=make: _step(m(0.1, _f(lr=np.float32(0.0))))["w"],
            np.zeros((2, 3), np.float32),
        ),
        good(
            f"{opt} factors of an empty model",
            lambda m=make: _step(m(0.1, Factors({}, {})), {}, {}),
            {},
        ),
    ]

CASES += [
    bad(
        "adam state of another model",
        lambda: _other_state(lambda: O.adam(0.1)),
        ValueError,
        "state",
    ),
    bad(
        "adamw state of another model",
        lambda: _other_state(lambda: O.adamw(0.1)),
        ValueError,
        "state",
    ),
    bad(
        "sgd momentum state of another model",
        lambda: _other_state(lambda: O.sgd(0.1, momentum=0.9)),
        ValueError,
        "state",
    ),
    bad(
        "adam fp32 grads on bf16 params",
        lambda: O.adam(0.1).update(
            G, O.adam(0.1).init(jax.tree.map(lambda p: p.astype(jnp.bfloat16), P))
        ),
        TypeError,
        "updates",
    ),
    bad(
        "sgd momentum fp32 grads on bf16 params",
        lambda: O.sgd(0.1, momentum=0.9).update(
            G, O.sgd(0.1, momentum=0.9).init(jax.tree.map(lambda p: p.astype(jnp.bfloat16), P))
        ),
        TypeError,
        "updates",
    ),
    good(
        "adam bf16 grads on bf16 params keep bf16 state",
        lambda: jax.tree.map(
            lambda x: x.dtype,
            O.adam(0.1)
            .update(
                jax.tree.map(lambda p: p.astype(jnp.bfloat16), G),
                O.adam(0.1).init(jax.tree.map(lambda p: p.astype(jnp.bfloat16), P)),
            )[1][1]
            .mu,
        ),
        {"w": jnp.bfloat16, "b": jnp.bfloat16},
    ),
    bad("sgd momentum negative", lambda: O.sgd(0.1, momentum=-0.5), ValueError, "momentum"),
    bad(
        "sgd dampening 2", lambda: O.sgd(0.1, momentum=0.9, dampening=2.0), ValueError, "dampening"
    ),
    bad(
        "sgd nesterov str", lambda: O.sgd(0.1, momentum=0.9, nesterov="yes"), TypeError, "nesterov"
    ),
    bad("sgd nesterov no momentum", lambda: O.sgd(0.1, nesterov=True), ValueError, "nesterov"),
    good(
        "sgd nesterov numpy bool",
        lambda: _step(O.sgd(1.0, momentum=0.5, nesterov=np.bool_(True)))["b"],
        np.full(3, -0.75, np.float32),
    ),
    bad("adam b1 = 1", lambda: O.adam(0.1, b1=1.0), ValueError, "b1"),
    bad("adam b2 negative", lambda: O.adam(0.1, b2=-0.1), ValueError, "b2"),
    bad("adam eps nan", lambda: O.adam(0.1, eps=math.nan), ValueError, "eps"),
    bad("adamw eps str", lambda: O.adamw(0.1, eps="1e-8"), TypeError, "eps"),
    good(
        "adam eps 0 zero grads -> nan like torch",
        lambda: bool(
            jnp.isnan(_step(O.adam(0.1, eps=0.0), jax.tree.map(jnp.zeros_like, G))["w"]).all()
        ),
        True,
    ),
    # the building blocks
    bad(
        "scale_by_lr_factors negative",
        lambda: O.scale_by_lr_factors({"w": -1.0, "b": 1.0}),
        ValueError,
        "factors",
    ),
    bad(
        "scale_by_lr_factors nan",
        lambda: O.scale_by_lr_factors({"w": math.nan, "b": 1.0}),
        ValueError,
        "factors",
    ),
    bad("scale_by_lr_factors None", lambda: O.scale_by_lr_factors(None), TypeError, "factors"),
    bad(
        "scale_by_lr_factors other tree at init",
        lambda: O.scale_by_lr_factors({"k": 1.0}).init(P),
        ValueError,
        "factors",
    ),
    bad(
        "scale_by_lr_factors other tree at update",
        lambda: _step(O.scale_by_lr_factors({"k": 1.0})),
        ValueError,
        "factors",
    ),
    bad(
        "scale_by_lr_factors callable returns nan",
        lambda: _step(O.scale_by_lr_factors(lambda u: jax.tree.map(lambda _: math.nan, u))),
        ValueError,
        "factors",
    ),
    good(
        "scale_by_lr_factors 0",
        lambda: _step(O.scale_by_lr_factors({"w": 0.0, "b": 2.0}))["b"],
        np.ones(3, np.float32),
    ),
    bad(
        "add_decayed_weights_per_leaf negative",
        lambda: O.add_decayed_weights_per_leaf(0.1, {"w": -1.0, "b": 1.0}),
        ValueError,
        "factors",
    ),
    bad(
        "add_decayed_weights_per_leaf no params",
        lambda: O.add_decayed_weights_per_leaf(0.1).update(G, ()),
        ValueError,
        "params",
    ),
    bad(
        "add_decayed_weights_per_leaf nan rate",
        lambda: O.add_decayed_weights_per_leaf(math.nan),
        ValueError,
        "weight_decay",
    ),
    bad(
        "scale_by_learning_rate str",
        lambda: O.scale_by_learning_rate("0.1"),
        TypeError,
        "learning_rate",
    ),
    bad("scale_by_torch_adam b1 2", lambda: O.scale_by_torch_adam(b1=2.0), ValueError, "b1"),
    bad("torch_momentum negative", lambda: O.torch_momentum(-1.0), ValueError, "momentum"),
    bad(
        "torch_momentum nesterov str",
        lambda: O.torch_momentum(0.9, nesterov="no"),
        TypeError,
        "nesterov",
    ),
    # the rules
    bad(
        "lr_factors default nan",
        lambda: O.lr_factors(*_linear(), optimizer="adam", default=math.nan),
        ValueError,
        "default",
    ),
    bad(
        "lr_factors default inf",
        lambda: O.lr_factors(*_linear(), optimizer="adam", default=math.inf),
        ValueError,
        "default",
    ),
    bad(
        "lr_factors default negative",
        lambda: O.lr_factors(*_linear(), optimizer="adam", default=-1.0),
        ValueError,
        "default",
    ),
    bad(
        "lr_factors default str",
        lambda: O.lr_factors(*_linear(), optimizer="adam", default="1"),
        TypeError,
        "default",
    ),
    good(
        "lr_factors default numpy float",
        lambda: O.lr_factors(*_linear(), optimizer="adam", default=np.float32(0.5)).lr,
        {"kernel": 1.0, "bias": 1.0},
    ),
    bad(
        "lr_factors optimizer rmsprop",
        lambda: O.lr_factors(*_linear(), optimizer="rmsprop"),
        ValueError,
        "optimizer",
    ),
    bad(
        "lr_factors optimizer None",
        lambda: O.lr_factors(*_linear(), optimizer=None),
        ValueError,
        "optimizer",
    ),
    bad(
        "lr_factors module not a module",
        lambda: O.lr_factors(lambda x: x, {}, optimizer="adam"),
        TypeError,
        "module",
    ),
    bad(
        "lr_factors depth list",
        lambda: O.lr_factors(*_linear(), optimizer="adam", depth=[2]),
        TypeError,
        "depth",
    ),
    bad(
        "lr_factors depth zero",
        lambda: O.lr_factors(*_linear(), optimizer="adam", depth={"": 0}),
        ValueError,
        "depth",
    ),
    bad(
        "lr_factors depth unused",
        lambda: O.lr_factors(*_linear(), optimizer="adam", depth={"nope": 2}),
        ValueError,
        "depth",
    ),
    bad(
        "mup_factors base dim 0",
        lambda: O.mup_factors({"w": jnp.ones((4, 4))}, {"w": jnp.ones((0, 4))}, "adam"),
        ValueError,
        "base_params",
    ),
    bad(
        "mup_factors params dim 0 sgd",
        lambda: O.mup_factors({"w": jnp.ones(0)}, {"w": jnp.ones(2)}, "sgd"),
        ValueError,
        "params",
    ),
    bad(
        "mup_factors other tree",
        lambda: O.mup_factors({"w": jnp.ones(4)}, {"v": jnp.ones(4)}, "adam"),
        ValueError,
        "base_params",
    ),
    bad(
        "mup_factors rank differs",
        lambda: O.mup_factors({"w": jnp.ones(4)}, {"w": jnp.ones((4, 1))}, "adam"),
        ValueError,
        "base_params",
    ),
    bad(
        "mup_factors 3-d",
        lambda: O.mup_factors({"w": jnp.ones((2, 2, 2))}, {"w": jnp.ones((2, 2, 2))}, "adam"),
        ValueError,
        "params",
    ),
    bad(
        "mup_factors optimizer",
        lambda: O.mup_factors({"w": jnp.ones(4)}, {"w": jnp.ones(4)}, "lion"),
        ValueError,
        "optimizer",
    ),
    bad(
        "mup_factors params not a tree of arrays",
        lambda: O.mup_factors({"w": "x"}, {"w": jnp.ones(4)}, "adam"),
        TypeError,
        "params",
    ),
    good(
        "mup_factors same shapes",
        lambda: O.mup_factors({"w": jnp.ones((4, 4))}, {"w": jnp.ones((4, 4))}, "sgd").lr,
        {"w": 1.0},
    ),
    good("mup_factors empty trees", lambda: O.mup_factors({}, {}, "adam"), Factors({}, {})),
    bad(
        "coord_check widths empty",
        lambda: O.coord_check(
            lambda w: jl.Linear(w), [], jnp.ones((2, 3)), jnp.ones((2, 3)), lambda m, v: O.sgd(0.1)
        ),
        ValueError,
        "widths",
    ),
    bad(
        "coord_check widths zero",
        lambda: O.coord_check(
            lambda w: jl.Linear(w), [0], jnp.ones((2, 3)), jnp.ones((2, 3)), lambda m, v: O.sgd(0.1)
        ),
        ValueError,
        "widths",
    ),
    bad(
        "coord_check steps negative",
        lambda: O.coord_check(
            lambda w: jl.Linear(w),
            [2],
            jnp.ones((2, 3)),
            jnp.ones((2, 2)),
            lambda m, v: O.sgd(0.1),
            steps=-1,
        ),
        ValueError,
        "steps",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_audit(case):
    check(case)
