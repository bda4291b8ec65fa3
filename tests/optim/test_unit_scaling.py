"""jl.optim u-μP rules: labels, per-parameter factors and weight decays, the optax optimizers.

The factors are compared with ``unit_scaling.optim`` itself in parity/cases/unit_scaling.py; these
tests carry the reference's own test_optim.py expectations and the contract details.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlinear as jl
from jaxlinear.optim import (
    mup_types,
    unit_scaling_adam,
    unit_scaling_adamw,
    unit_scaling_lr_scales,
    unit_scaling_sgd,
    unit_scaling_weight_decays,
)


class Net(nn.Module):
    readout_constraint: str | None = None

    @nn.compact
    def __call__(self, x):
        x = jl.UnitScaledLinear(16, use_bias=True, name="inp")(x)
        for i in range(3):
            x = jl.UnitScaledLinear(16, use_bias=True, name=f"stack_{i}")(jax.nn.relu(x))
        x = nn.LayerNorm(use_bias=False, name="norm")(x)  # not unit-scaled
        return jl.LinearReadout(1024, constraint=self.readout_constraint, name="out")(x)


def _net(readout_constraint=None):
    model = Net(readout_constraint)
    x = jnp.ones((2, 16))
    return model, model.init(jax.random.key(0), x), x


def test_mup_types_labels_unit_scaled_params():
    model, variables, x = _net()
    types = mup_types(model, variables, x)
    assert types["inp"] == {"kernel": "weight", "bias": "bias"}
    assert types["stack_2"] == {"kernel": "weight", "bias": "bias"}
    assert types["out"] == {"kernel": "output"}
    assert types["norm"] == {"scale": None}
    layer = jl.LinearReadout(3, use_bias=True)
    v = layer.init(jax.random.key(0), x)
    assert mup_types(layer, v) == mup_types(layer, v, x) == {"kernel": "output", "bias": "bias"}


@pytest.mark.parametrize("opt", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("readout_constraint", [None, "to_output_scale"])
def test_scaled_parameters_table(opt, readout_constraint):
    """The reference's test_scaled_parameters (its embedding aside): depth 3, fan_in 16."""
    model, variables, x = _net(readout_constraint)
    types = mup_types(model, variables, x)
    types["norm"]["scale"] = "norm"
    depths = {f"stack_{i}": 3 for i in range(3)}
    base_lr, base_wd = 0.1, 0.001
    f = unit_scaling_lr_scales(
        variables["params"], types, opt, readout_constraint=readout_constraint, depths=depths
    )
    sgd = opt == "sgd" and readout_constraint == "to_output_scale"
    sqrt_d = 3**0.5
    want = {
        ("inp", "kernel"): 1 / 4 * (16 if sgd else 1),
        ("stack_1", "kernel"): 1 / 4 / sqrt_d * (16 if sgd else 1),
        ("stack_1", "bias"): 1 / sqrt_d * (16 if sgd else 1),
        ("inp", "bias"): 16.0 if sgd else 1.0,
        ("norm", "scale"): 16.0 if sgd else 1.0,
        ("out", "kernel"): 1.0,
    }
    wd = unit_scaling_weight_decays(f, base_lr, base_wd)
    for (mod, leaf), factor in want.items():
        assert f[mod][leaf] == pytest.approx(factor, rel=1e-12)
        assert wd[mod][leaf] == pytest.approx(base_wd / (base_lr * factor), rel=1e-12)


def test_existing_group_values():
    """The reference's test_scaled_parameters_with_existing_groups, in the (in, out) layout."""
    params = {"a": jnp.zeros((16, 1)), "b": jnp.zeros((64, 2)), "c": jnp.zeros((64, 3))}
    types = {"a": "weight", "b": "output", "c": "weight"}
    f = unit_scaling_lr_scales(params, types, depths={"c": 5})
    assert f["a"] * 0.3 == pytest.approx(0.3 / 4)
    assert f["b"] == 1.0
    assert 0.02 * f["c"] == pytest.approx(0.02 / 8 / 5**0.5)
    wd = unit_scaling_weight_decays({"a": f["a"]}, 0.3, 0.05)
    assert wd["a"] == pytest.approx(0.05 * 4 / 0.3)
    assert unit_scaling_weight_decays(f, 0.3, 0.05, independent_weight_decay=False)["a"] == 0.05


def test_lr_scale_errors():
    model, variables, x = _net()
    types = mup_types(model, variables, x)
    params = variables["params"]
    with pytest.raises(ValueError, match="must have a u-μP label"):
        unit_scaling_lr_scales(params, types)
    f = unit_scaling_lr_scales(params, types, allow_non_unit_scaling_params=True)
    assert f["norm"]["scale"] == 1.0
    types["norm"]["scale"] = "norm"
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        unit_scaling_lr_scales(params, types, "lamb")
    with pytest.raises(ValueError, match="`readout_constraint` must be one of"):
        unit_scaling_lr_scales(params, types, "sgd", readout_constraint="gmean")
    with pytest.raises(ValueError, match="must not nest"):
        unit_scaling_lr_scales(params, types, depths={"stack_1": 3, "stack_1/kernel": 2})
    with pytest.raises(ValueError, match="`depths` prefixes must name parameters"):
        unit_scaling_lr_scales(params, types, depths={"stack": 3})
    with pytest.raises(ValueError, match="must be an int > 0"):
        unit_scaling_lr_scales(params, types, depths={"stack_1": 0})
    types["out"]["kernel"] = "foo"
    with pytest.raises(ValueError, match="must be one of \\('weight', 'bias', 'norm', 'output'\\)"):
        unit_scaling_lr_scales(params, types)
    del types["out"]
    with pytest.raises(ValueError, match="`types` must label every parameter"):
        unit_scaling_lr_scales(params, types)


@pytest.mark.parametrize("make", [unit_scaling_adam, unit_scaling_adamw, unit_scaling_sgd])
def test_optimizers_reduce_the_loss(make):
    """The reference's test_optim_optimizers: one step on Linear(16, 25) + mse lowers the loss."""
    layer = jl.UnitScaledLinear(25)
    kx, ky = jax.random.split(jax.random.key(100))
    x, t = jax.random.normal(kx, (10, 16)), jax.random.normal(ky, (10, 25))
    variables = layer.init(jax.random.key(0), x)
    params = variables["params"]
    f = unit_scaling_lr_scales(params, mup_types(layer, variables, x))
    tx = make(0.01, f, weight_decay=1e-6)
    loss = lambda p: jnp.mean((layer.apply({"params": p}, x) - t) ** 2)
    before, grads = jax.value_and_grad(loss)(params)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert loss(optax.apply_updates(params, updates)) < before


def test_adamw_decays_by_wd_per_step_and_keeps_dtype():
    p = {"w": jnp.ones((4, 2), jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    f = unit_scaling_lr_scales(p, {"w": "weight", "b": "bias"})
    tx = unit_scaling_adamw(0.1, f, weight_decay=0.25)
    zeros = jax.tree.map(jnp.zeros_like, p)
    u, _ = tx.update(zeros, tx.init(p), p)
    assert u["w"].dtype == jnp.bfloat16 and u["b"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(u["b"]), -0.25, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(u["w"], np.float32), -0.25, rtol=1e-2)


def test_schedules():
    p = {"w": jnp.ones((4, 2))}
    f = {"w": 0.5}
    sched = optax.linear_schedule(0.0, 0.1, 10)
    with pytest.raises(ValueError, match="`base_learning_rate` must be given"):
        unit_scaling_adamw(sched, f, weight_decay=0.01)
    tx = unit_scaling_sgd(sched, f, weight_decay=0.01, base_learning_rate=0.1)
    state = tx.init(p)
    u, state = tx.update({"w": jnp.ones((4, 2))}, state, p)
    assert float(u["w"][0, 0]) == 0.0  # the schedule starts at 0
    u, state = tx.update({"w": jnp.ones((4, 2))}, state, p)
    assert float(u["w"][0, 0]) == pytest.approx(-0.01 * 0.5 * (1 + 0.01 / 0.05))
