"""Sharding names and Flax initializers on every linen layer (one device; the mesh runs are in
tests/test_sharded.py)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl

X = jnp.ones((2, 3))
XN = jnp.ones((2, 4, 3))
QX = jl.quantization.quantize(jnp.ones((2, 3)), 0.1, 0)

CASES = {
    "Linear": (lambda **kw: jl.Linear(5, **kw), X, 2),
    "Linear-mup": (lambda **kw: jl.Linear(5, parametrization="mup", **kw), X, 2),
    "NLinear": (lambda **kw: jl.NLinear(4, 5, **kw), XN, 3),
    "UnitScaledLinear": (lambda **kw: jl.UnitScaledLinear(5, use_bias=True, **kw), X, 2),
    "LinearReadout": (lambda **kw: jl.LinearReadout(5, use_bias=True, **kw), X, 2),
    "QuantizedLinear": (lambda **kw: jl.QuantizedLinear(5, per_channel=True, **kw), QX, 2),
    "DynamicQuantizedLinear": (lambda **kw: jl.DynamicQuantizedLinear(5, **kw), X, 2),
}


def _names(ndim):
    return ("ens", "embed", "mlp") if ndim == 3 else ("embed", "mlp")


@pytest.mark.parametrize("case", CASES)
def test_partition_spec_names_and_same_values(case):
    make, x, ndim = CASES[case]
    names = _names(ndim)
    plain = make().init(jax.random.key(0), x)
    boxed = make(kernel_axes=names).init(jax.random.key(0), x)
    specs = nn.get_partition_spec(boxed)["params"]
    assert specs["kernel"] == jax.sharding.PartitionSpec(*names)
    assert specs["bias"] == jax.sharding.PartitionSpec(*names[:-2], names[-1])
    if case == "QuantizedLinear":  # per-channel qparams take the output name; scalars none
        assert specs["kernel_scale"] == jax.sharding.PartitionSpec("mlp")
        assert specs["out_scale"] == jax.sharding.PartitionSpec()
    # the same values, and apply takes boxed and plain variables alike, bit for bit
    jax.tree.map(np.testing.assert_array_equal, nn.unbox(boxed), plain)
    layer = make(kernel_axes=names)
    y_boxed, y_plain = layer.apply(boxed, x), layer.apply(plain, x)
    jax.tree.map(np.testing.assert_array_equal, y_boxed, y_plain)


def test_bias_axes_override_and_no_kernel_axes():
    v = jl.Linear(5, kernel_axes=("embed", "mlp"), bias_axes=(None,)).init(jax.random.key(0), X)
    assert nn.get_partition_spec(v)["params"]["bias"] == jax.sharding.PartitionSpec(None)
    v = jl.Linear(5, bias_axes=("mlp",)).init(jax.random.key(0), X)
    specs = nn.get_partition_spec(v)["params"]
    assert specs["kernel"] == jax.sharding.PartitionSpec()  # a plain array: replicated
    assert specs["bias"] == jax.sharding.PartitionSpec("mlp")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: jl.Linear(5, kernel_axes=("mlp",)), "kernel_axes.*2 dims"),
        (lambda: jl.NLinear(4, 5, kernel_axes=("embed", "mlp")), "kernel_axes.*3 dims"),
        (lambda: jl.NLinear((2, 2), 5, bias_axes=("mlp",)), "bias_axes.*3 dims"),
        (lambda: jl.UnitScaledLinear(5, bias_axes=("a", "b")), "bias_axes.*1 dims"),
        (lambda: jl.QuantizedLinear(5, kernel_axes=("a", "b", "c")), "kernel_axes.*2 dims"),
    ],
)
def test_wrong_number_of_names_is_a_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_names_are_type_errors():
    with pytest.raises(TypeError, match="kernel_axes"):
        jl.Linear(5, kernel_axes="mlp")
    with pytest.raises(TypeError, match="kernel_axes"):
        jl.Linear(5, kernel_axes=("embed", 3))


def test_kernel_init_and_bias_init():
    layer = jl.Linear(5, kernel_init=nn.initializers.ones, bias_init=nn.initializers.zeros)
    p = layer.init(jax.random.key(0), X)["params"]
    assert (p["kernel"] == 1).all() and (p["bias"] == 0).all()
    p = jl.UnitScaledLinear(5, kernel_init=nn.initializers.zeros).init(jax.random.key(0), X)
    assert (p["params"]["kernel"] == 0).all()
    # Flax's own partitioned initializers work as with nn.Dense
    init = nn.with_logical_partitioning(nn.initializers.ones, ("embed", "mlp"))
    v = jl.Linear(5, kernel_init=init).init(jax.random.key(0), X)
    assert nn.get_partition_spec(v)["params"]["kernel"] == jax.sharding.PartitionSpec(
        "embed", "mlp"
    )


def test_conflicting_inits_are_clear_errors():
    with pytest.raises(ValueError, match="kernel_init.*parametrization"):
        jl.Linear(5, parametrization="mup", kernel_init=nn.initializers.ones)
    with pytest.raises(ValueError, match="bias_init.*parametrization"):
        jl.NLinear(2, 5, parametrization="sp", bias_init=nn.initializers.ones)
    with pytest.raises(TypeError, match="kernel_init"):
        jl.Linear(5, kernel_init=3)
    init = nn.with_logical_partitioning(nn.initializers.ones, ("embed", "mlp"))
    with pytest.raises(ValueError, match="name them once"):
        jl.Linear(5, kernel_init=init, kernel_axes=("embed", "mlp")).init(jax.random.key(0), X)
