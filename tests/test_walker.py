"""The model walker: layers in call order, paths, lifted layers, substitution, errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxlinear as jl
from jaxlinear.walker import find_layers, observe_layers, params_at, substitute_layers


class Block(nn.Module):
    @nn.compact
    def __call__(self, x, _=None):
        return jl.Linear(5, name="inner")(x), None


class Model(nn.Module):
    """An NLinear from setup (called twice), an nn.vmap'd Linear, an nn.scan'd block, a Dense."""

    def setup(self):
        self.first = jl.NLinear(3, 5)

    @nn.compact
    def __call__(self, x):
        x = self.first(x)
        stack = nn.vmap(
            jl.Linear,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=1,
            out_axes=1,
        )
        x = stack(5, name="stack")(x)
        scan = nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=4)
        x, _ = scan(name="scanned")(x, None)
        x = self.first(x)
        return nn.Dense(2)(x)


@pytest.fixture(scope="module")
def model_and_variables():
    x = jnp.ones((2, 3, 5))
    model = Model()
    return model, model.init(jax.random.key(0), x), x


def test_finds_every_layer_once_in_call_order(model_and_variables):
    model, variables, x = model_and_variables
    calls = find_layers(model, variables, x)
    assert [c.path for c in calls] == [("first",), ("stack",), ("scanned", "inner"), ("Dense_0",)]
    assert [type(c.module) for c in calls] == [jl.NLinear, jl.Linear, jl.Linear, nn.Dense]
    assert [c.name for c in calls][2] == "scanned/inner"


def test_lifted_layers_report_slice_shapes_and_stacked_dims(model_and_variables):
    model, variables, x = model_and_variables
    by_name = {c.name: c for c in find_layers(model, variables, x)}
    assert by_name["first"].shapes == {"kernel": (3, 5, 5), "bias": (3, 5)}
    assert by_name["first"].stacked == {"kernel": (), "bias": ()}
    assert by_name["stack"].shapes == {"kernel": (5, 5), "bias": (5,)}
    assert by_name["stack"].stacked == {"kernel": (3,), "bias": (3,)}
    assert by_name["scanned/inner"].stacked == {"kernel": (4,), "bias": (4,)}


def test_types_filter_and_nested_layers_are_not_listed():
    class Outer(nn.Module):
        @nn.compact
        def __call__(self, x):
            return jl.Linear(2)(nn.Dense(3)(x))

    model = Outer()
    variables = model.init(jax.random.key(0), jnp.ones((1, 4)))
    assert [c.name for c in find_layers(model, variables, types=(nn.Dense,))] == ["Dense_0"]
    # the model itself as the only type: its sub-layers are inside it, so only it is listed
    assert [c.path for c in find_layers(model, variables, types=(Outer,))] == [()]


def test_single_layer_without_example_inputs():
    layer = jl.Linear(3)
    variables = layer.init(jax.random.key(0), jnp.ones((2, 4)))
    (call,) = find_layers(layer, variables)
    assert call.path == () and call.shapes == {"kernel": (4, 3), "bias": (3,)}


def test_probes_each_kernel_then_asks_for_example_inputs():
    class Images(nn.Module):  # takes (batch, h, w) images only
        @nn.compact
        def __call__(self, x):
            if x.ndim != 3:
                raise ValueError(f"Images needs (batch, h, w) inputs, got {x.shape}")
            return jl.Linear(2)(x.reshape(x.shape[0], -1))

    class TwoStage(nn.Module):  # its first kernel (created first) is not its input layer's
        def setup(self):
            self.head = jl.Linear(3)
            self.body = jl.NLinear(2, 4)

        def __call__(self, x):
            return self.head(self.body(x).reshape(x.shape[0], -1))

    two = TwoStage()
    variables = two.init(jax.random.key(0), jnp.ones((1, 2, 5)))
    assert [c.name for c in find_layers(two, variables)] == ["body", "head"]  # 2nd probe works

    model = Images()
    variables = model.init(jax.random.key(0), jnp.ones((1, 2, 2)))
    with pytest.raises(
        ValueError,
        match=r"\(1, 4\): ValueError, \(1, 1\): ValueError\) to find its layers; pass ex",
    ) as info:
        find_layers(model, variables)
    assert "needs (batch, h, w)" in str(info.value.__cause__)  # the model's own error is chained
    assert [c.name for c in find_layers(model, variables, jnp.ones((1, 2, 2)))] == ["Linear_0"]


def test_variables_without_params_are_rejected():
    with pytest.raises(ValueError, match="`variables` must be"):
        find_layers(jl.Linear(2), {"kernel": jnp.ones((2, 2))})
    with pytest.raises(ValueError, match="no layer at 'a/b'"):
        params_at({"params": {"a": {}}}, ("a", "b"))


def test_substitute_layers_replaces_by_path(model_and_variables):
    model, variables, x = model_and_variables
    seen = []

    def zeros(module, h):
        seen.append(type(module).__name__)
        return jnp.zeros(h.shape[:-1] + (2,), h.dtype)

    with substitute_layers({("Dense_0",): zeros}):
        y = model.apply(variables, x)
    assert seen == ["Dense"] and not jnp.any(y)
    assert jnp.any(model.apply(variables, x))  # outside the block the model is unchanged


def test_observe_layers_sees_every_call_and_changes_nothing(model_and_variables):
    model, variables, x = model_and_variables
    seen = []

    def record(module, args, kwargs, y):
        seen.append((module.name, args[0].shape, y.shape, kwargs))

    with observe_layers({("first",): record, ("Dense_0",): record}):
        y = model.apply(variables, x)
    # `first` (an NLinear from setup) is called twice: both calls are seen, in call order
    assert [s[0] for s in seen] == ["first", "first", "Dense_0"]
    assert all(kwargs == {} for *_, kwargs in seen)
    assert (y == model.apply(variables, x)).all()
