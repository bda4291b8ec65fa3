"""Audit table (tests/_audit.py): the layers ``jl.Linear``, ``jl.NLinear``, ``jl.UnitScaledLinear``,
``jl.LinearReadout``, ``jl.QuantizedLinear``, ``jl.DynamicQuantizedLinear`` and ``jl.functional``."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

import jaxlinear as jl
from jaxlinear import functional as F
from jaxlinear.quantization import QTensor
from tests._audit import bad, check, good

KEY = jax.random.key(0)
X = jnp.ones((2, 3))
XN = jnp.ones((2, 2, 3))  # NLinear(2, ...)'s batch-major input

BUILD = {
    "Linear": lambda f=4, **kw: jl.Linear(f, **kw),
    "NLinear": lambda f=4, **kw: jl.NLinear(2, f, **kw),
    "UnitScaledLinear": lambda f=4, **kw: jl.UnitScaledLinear(f, **{"use_bias": True, **kw}),
    "LinearReadout": lambda f=4, **kw: jl.LinearReadout(f, **{"use_bias": True, **kw}),
}
LAYERS = {name: (build, XN if name == "NLinear" else X) for name, build in BUILD.items()}


@functools.cache
def _init(name: str):
    make, x = LAYERS[name]
    layer = make()
    return layer, layer.init(KEY, x)["params"], x


def _apply(name: str, edit, x=None):
    layer, params, x0 = _init(name)
    return layer.apply({"params": edit(dict(params))}, x0 if x is None else x)


def _resize(a, axis, n):
    shape = list(a.shape)
    shape[axis] = n
    return jnp.ones(shape, a.dtype)


CASES = []
for name, (make, _x) in LAYERS.items():
    CASES += [
        bad(
            f"{name} dot_general str", lambda m=make: m(dot_general="dot"), TypeError, "dot_general"
        ),
        bad(
            f"{name} dot_general_cls int",
            lambda m=make: m(dot_general_cls=3),
            TypeError,
            "dot_general_cls",
        ),
        bad(
            f"{name} dot_general and dot_general_cls",
            lambda m=make: m(dot_general=lax.dot_general, dot_general_cls=lambda: lax.dot_general),
            ValueError,
            "dot_general_cls",
        ),
        bad(
            f"{name} dot_general_cls builds None",
            lambda n=name, m=make: m(dot_general_cls=lambda: None).apply(
                {"params": _init(n)[1]}, _init(n)[2]
            ),
            TypeError,
            "dot_general_cls",
        ),
        bad(f"{name} features 0", lambda m=make: m(0), ValueError, "features"),
        bad(f"{name} features float", lambda m=make: m(4.0), TypeError, "features"),
        bad(f"{name} use_bias str", lambda m=make: m(use_bias="False"), TypeError, "use_bias"),
        bad(
            f"{name} param_dtype int",
            lambda m=make: m(param_dtype=jnp.int32),
            TypeError,
            "param_dtype",
        ),
        bad(f"{name} dtype str", lambda m=make: m(dtype="int8"), TypeError, "dtype"),
        bad(
            f"{name} int input",
            lambda n=name: _apply(n, lambda p: p, jnp.ones(_init(n)[2].shape, jnp.int32)),
            TypeError,
            "x",
        ),
        bad(
            f"{name} 0-d input",
            lambda n=name: _apply(n, lambda p: p, jnp.float32(1.0)),
            ValueError,
            "x",
        ),
        bad(
            f"{name} wrong in features",
            lambda n=name: _apply(n, lambda p: p, jnp.ones((*_init(n)[2].shape[:-1], 5))),
            ValueError,
            "x",
        ),
        bad(
            f"{name} kernel wrong out dim",
            lambda n=name: _apply(n, lambda p: {**p, "kernel": _resize(p["kernel"], -1, 5)}),
            ValueError,
            "kernel",
        ),
        bad(
            f"{name} bias wrong shape",
            lambda n=name: _apply(n, lambda p: {**p, "bias": _resize(p["bias"], -1, 5)}),
            ValueError,
            "bias",
        ),
        bad(
            f"{name} bias 2-d",
            lambda n=name: _apply(n, lambda p: {**p, "bias": p["bias"][None]}),
            ValueError,
            "bias",
        ),
        bad(
            f"{name} kernel missing",
            lambda n=name: _apply(n, lambda p: {"bias": p["bias"]}),
            ValueError,
            "kernel",
        ),
        bad(
            f"{name} bias missing",
            lambda n=name: _apply(n, lambda p: {"kernel": p["kernel"]}),
            ValueError,
            "bias",
        ),
        bad(
            f"{name} unknown param",
            lambda n=name: _apply(n, lambda p: {**p, "scale": jnp.ones(4)}),
            ValueError,
            "scale",
        ),
        bad(
            f"{name} int kernel",
            lambda n=name: _apply(n, lambda p: {**p, "kernel": p["kernel"].astype(jnp.int32)}),
            TypeError,
            "kernel",
        ),
        bad(
            f"{name} bias without use_bias",
            lambda m=make, n=name: m(use_bias=False).apply({"params": _init(n)[1]}, _init(n)[2]),
            ValueError,
            "bias",
        ),
        good(
            f"{name} empty batch",
            lambda n=name: _apply(n, lambda p: p, jnp.ones((0, *_init(n)[2].shape[1:]))).shape,
            (0, *_init(name)[2].shape[1:-1], 4),
        )
        if "Unit" not in name and "Readout" not in name
        # a unit-scaled layer's gradient scale is 1/B**p: an empty batch is refused
        else bad(
            f"{name} empty batch",
            lambda n=name: _apply(n, lambda p: p, jnp.ones((0, 3))),
            ValueError,
            "batch_size",
        ),
        good(
            f"{name} bf16 input keeps fp32 params",
            lambda n=name: (
                _apply(n, lambda p: p, _init(n)[2].astype(jnp.bfloat16)).dtype
                in (jnp.float32, jnp.bfloat16)
            ),
            True,
        ),
    ]

CASES += [
    bad("Linear features bool", lambda: jl.Linear(True), TypeError, "features"),
    bad("Linear features negative", lambda: jl.Linear(-3), ValueError, "features"),
    bad("Linear features str", lambda: jl.Linear("4"), TypeError, "features"),
    bad(
        "Linear parametrization unknown",
        lambda: jl.Linear(4, parametrization="xyz"),
        ValueError,
        "parametrization",
    ),
    bad(
        "Linear parametrization int",
        lambda: jl.Linear(4, parametrization=3),
        TypeError,
        "parametrization",
    ),
    bad(
        "Linear layer_type unknown",
        lambda: jl.Linear(4, layer_type="middle"),
        ValueError,
        "layer_type",
    ),
    good(
        "Linear use_bias numpy bool",
        lambda: sorted(jl.Linear(4, use_bias=np.bool_(False)).init(KEY, X)["params"]),
        ["kernel"],
    ),
    good(
        "Linear features numpy int",
        lambda: jl.Linear(np.int64(4)).init(KEY, X)["params"]["kernel"].shape,
        (3, 4),
    ),
    bad("Linear features too big", lambda: jl.Linear(2**31), ValueError, "features"),
    bad("NLinear n 0", lambda: jl.NLinear(0, 4), ValueError, "n"),
    bad("NLinear n str", lambda: jl.NLinear("2", 4), TypeError, "n"),
    bad("NLinear n empty tuple", lambda: jl.NLinear((), 4), ValueError, "n"),
    bad("NLinear layout unknown", lambda: jl.NLinear(2, 4, layout="rows"), ValueError, "layout"),
    bad(
        "NLinear wrong member count",
        lambda: _apply("NLinear", lambda p: p, jnp.ones((2, 3, 3))),
        ValueError,
        "x",
    ),
    bad(
        "NLinear member_major wrong n",
        lambda: jl.NLinear(2, 4, layout="member_major").init(KEY, jnp.ones((3, 2, 3))),
        ValueError,
        "x",
    ),
    bad(
        "UnitScaledLinear constraint unknown",
        lambda: jl.UnitScaledLinear(4, constraint="pow"),
        ValueError,
        "constraint",
    ),
    bad(
        "UnitScaledLinear weight_mup_type unknown",
        lambda: jl.UnitScaledLinear(4, weight_mup_type="xyz"),
        ValueError,
        "weight_mup_type",
    ),
    # functional
    bad(
        "functional.linear int x",
        lambda: F.linear(jnp.ones((2, 3), jnp.int32), jnp.ones((3, 4))),
        TypeError,
        "x",
    ),
    bad("functional.linear kernel 1-d", lambda: F.linear(X, jnp.ones(3)), ValueError, "kernel"),
    bad("functional.linear wrong in", lambda: F.linear(X, jnp.ones((5, 4))), ValueError, "x"),
    bad(
        "functional.linear bias shape",
        lambda: F.linear(X, jnp.ones((3, 4)), jnp.ones(5)),
        ValueError,
        "bias",
    ),
    bad(
        "functional.linear bias 2-d",
        lambda: F.linear(X, jnp.ones((3, 4)), jnp.ones((2, 4))),
        ValueError,
        "bias",
    ),
    bad(
        "functional.linear 0-d x",
        lambda: F.linear(jnp.float32(1), jnp.ones((1, 4))),
        ValueError,
        "x",
    ),
    bad(
        "functional.linear precision str",
        lambda: F.linear(X, jnp.ones((3, 4)), precision="max"),
        ValueError,
        "Precision argument",
    ),
    good(
        "functional.linear empty batch",
        lambda: F.linear(jnp.ones((0, 3)), jnp.ones((3, 4))).shape,
        (0, 4),
    ),
    good(
        "functional.linear zero in features",
        lambda: F.linear(jnp.ones((2, 0)), jnp.ones((0, 4)), jnp.ones(4)),
        np.ones((2, 4), np.float32),
    ),
    bad(
        "functional.nlinear kernel 2-d",
        lambda: F.nlinear(XN, jnp.ones((3, 4))),
        ValueError,
        "kernel",
    ),
    bad(
        "functional.nlinear layout",
        lambda: F.nlinear(XN, jnp.ones((2, 3, 4)), layout="x"),
        ValueError,
        "layout",
    ),
    bad(
        "functional.nlinear bias shape",
        lambda: F.nlinear(XN, jnp.ones((2, 3, 4)), jnp.ones(4)),
        ValueError,
        "bias",
    ),
    bad(
        "functional.linear_dot_general None",
        lambda: F.linear_dot_general(X, jnp.ones((3, 4)), dot_general=None),  # type: ignore[arg-type]
        TypeError,
        "dot_general",
    ),
    bad(
        "functional.nlinear_dot_general layout",
        lambda: F.nlinear_dot_general(
            XN, jnp.ones((2, 3, 4)), dot_general=lax.dot_general, layout="x"
        ),
        ValueError,
        "layout",
    ),
    bad(
        "nnx.Linear dot_general str",
        lambda: jl.nnx.Linear(3, 4, dot_general="dot", rngs=nnx.Rngs(0)),
        TypeError,
        "dot_general",
    ),
    bad(
        "nnx.NLinear dot_general int",
        lambda: jl.nnx.NLinear(2, 3, 4, dot_general=1, rngs=nnx.Rngs(0)),
        TypeError,
        "dot_general",
    ),
    bad("functional.matmul_tn 1-d", lambda: F.matmul_tn(jnp.ones(3), jnp.ones(3)), ValueError, "a"),
]

# --- quantized layers -------------------------------------------------------------------------


@functools.cache
def _qlayer():
    layer = jl.QuantizedLinear(4)
    qx = jl.quantization.quantize(X, 0.1, 0, jnp.uint8)
    return layer, layer.init(KEY, qx)["params"], qx


@functools.cache
def _dqlayer():
    layer = jl.DynamicQuantizedLinear(4)
    return layer, layer.init(KEY, X)["params"]


def _qapply(edit=lambda p: p, qx=None):
    layer, params, qx0 = _qlayer()
    return layer.apply({"params": edit(dict(params))}, qx0 if qx is None else qx)


def _dqapply(edit=lambda p: p, x=X):
    layer, params = _dqlayer()
    return layer.apply({"params": edit(dict(params))}, x)


CASES += [
    bad(
        "QuantizedLinear 0-d QTensor",
        lambda: _qapply(qx=QTensor(jnp.uint8(3), 0.1, 0)),
        ValueError,
        "x",
    ),
    bad(
        "QuantizedLinear 1-d QTensor",
        lambda: _qapply(qx=QTensor(jnp.ones(3, jnp.uint8), 0.1, 0)),
        ValueError,
        "x",
    ),
    bad("QuantizedLinear float input", lambda: _qapply(qx=X), TypeError, "x"),
    bad(
        "QuantizedLinear int8 QTensor",
        lambda: _qapply(qx=QTensor(jnp.ones((2, 3), jnp.int8), 0.1, 0)),
        TypeError,
        "x",
    ),
    bad(
        "QuantizedLinear wrong in",
        lambda: _qapply(qx=QTensor(jnp.ones((2, 5), jnp.uint8), 0.1, 0)),
        ValueError,
        "x",
    ),
    bad(
        "QuantizedLinear kernel out dim",
        lambda: _qapply(lambda p: {**p, "kernel": jnp.ones((3, 5), jnp.int8)}),
        ValueError,
        "kernel",
    ),
    bad(
        "QuantizedLinear bias shape",
        lambda: _qapply(lambda p: {**p, "bias": jnp.ones(5)}),
        ValueError,
        "bias",
    ),
    bad(
        "QuantizedLinear out_scale 2 elements",
        lambda: _qapply(lambda p: {**p, "out_scale": jnp.ones(2)}),
        ValueError,
        "out_scale",
    ),
    bad(
        "QuantizedLinear out_scale 0",
        lambda: _qapply(lambda p: {**p, "out_scale": jnp.float32(0)}),
        ValueError,
        "out_scale",
    ),
    bad(
        "QuantizedLinear out_zero_point float",
        lambda: _qapply(lambda p: {**p, "out_zero_point": jnp.float32(1)}),
        TypeError,
        "out_zero_point",
    ),
    bad(
        "QuantizedLinear out_zero_point 300",
        lambda: _qapply(lambda p: {**p, "out_zero_point": jnp.int32(300)}),
        ValueError,
        "out_zero_point",
    ),
    bad(
        "QuantizedLinear kernel float",
        lambda: _qapply(lambda p: {**p, "kernel": jnp.ones((3, 4))}),
        TypeError,
        "kernel",
    ),
    bad(
        "QuantizedLinear engine", lambda: jl.QuantizedLinear(4, engine="arm"), ValueError, "engine"
    ),
    bad("QuantizedLinear relu str", lambda: jl.QuantizedLinear(4, relu="no"), TypeError, "relu"),
    bad("QuantizedLinear features 0", lambda: jl.QuantizedLinear(0), ValueError, "features"),
    bad("DynamicQuantizedLinear 0-d input", lambda: _dqapply(x=jnp.float32(1.0)), ValueError, "x"),
    bad(
        "DynamicQuantizedLinear int input",
        lambda: _dqapply(x=jnp.ones((2, 3), jnp.int32)),
        TypeError,
        "x",
    ),
    bad(
        "DynamicQuantizedLinear bf16 input",
        lambda: _dqapply(x=X.astype(jnp.bfloat16)),
        TypeError,
        "x",
    ),
    bad("DynamicQuantizedLinear wrong in", lambda: _dqapply(x=jnp.ones((2, 5))), ValueError, "x"),
    bad(
        "DynamicQuantizedLinear kernel out dim",
        lambda: _dqapply(lambda p: {**p, "kernel": jnp.ones((3, 5), jnp.int8)}),
        ValueError,
        "kernel",
    ),
    bad(
        "DynamicQuantizedLinear bias shape",
        lambda: _dqapply(lambda p: {**p, "bias": jnp.ones(5)}),
        ValueError,
        "bias",
    ),
    bad(
        "DynamicQuantizedLinear kernel_scale shape",
        lambda: _dqapply(lambda p: {**p, "kernel_scale": jnp.ones(3)}),
        ValueError,
        "kernel_scale",
    ),
    bad(
        "DynamicQuantizedLinear reduce_range str",
        lambda: jl.DynamicQuantizedLinear(4, reduce_range="yes"),
        TypeError,
        "reduce_range",
    ),
    good("DynamicQuantizedLinear empty batch", lambda: _dqapply(x=jnp.ones((0, 3))).shape, (0, 4)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_audit(case):
    check(case)
