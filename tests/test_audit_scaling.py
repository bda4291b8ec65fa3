"""Audit table (tests/_audit.py): ``jl.scaling`` (unit-scaled ops, formats, simulate_format, track_scales)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlinear as jl
from tests._audit import bad, check, good

S = jl.scaling
X = jnp.ones((2, 4))
E4M3 = S.FPFormat(4, 3, "nearest")
A, B = jnp.array([[1.0625]]), jnp.array([[1.0]])  # 1.0625 rounds to 1.0 in E4M3


def _mm(a, b):
    return a @ b


def _sim(fn, *args):
    return S.simulate_format(fn, E4M3, None)(*args)


def _custom_jvp_mm():
    @jax.custom_jvp
    def f(a, b):
        return a @ b

    f.defjvp(lambda p, t: (f(*p), t[0] @ p[1] + p[0] @ t[1]))
    return f


def _shard_mapped(fn):
    mesh = jax.make_mesh((1,), ("i",))
    spec = jax.sharding.PartitionSpec()
    return jax.shard_map(fn, mesh=mesh, in_specs=(spec, spec), out_specs=spec)


def _track_inner_names(fn, *args):
    return [r.primitive for r in S.track_scales(fn, *args, detail="ops").records]


CASES = [
    # simulate_format through every higher-order primitive: rounded (1.0) or refused, never fp32 (1.0625)
    good("simulate_format plain", lambda: _sim(_mm, A, B), [[1.0]]),
    good("simulate_format jax.checkpoint", lambda: _sim(jax.checkpoint(_mm), A, B), [[1.0]]),
    good(
        "simulate_format jax.remat policy",
        lambda: _sim(jax.checkpoint(_mm, policy=jax.checkpoint_policies.nothing_saveable), A, B),
        [[1.0]],
    ),
    good("simulate_format jit", lambda: _sim(jax.jit(_mm), A, B), [[1.0]]),
    good(
        "simulate_format nested jit checkpoint",
        lambda: _sim(jax.jit(jax.checkpoint(jax.jit(_mm))), A, B),
        [[1.0]],
    ),
    good("simulate_format custom_jvp", lambda: _sim(_custom_jvp_mm(), A, B), [[1.0]]),
    good(
        "simulate_format scan",
        lambda: _sim(
            lambda a, b: jax.lax.scan(lambda h, _: (h @ b, None), a, None, length=1)[0], A, B
        ),
        [[1.0]],
    ),
    good(
        "simulate_format cond",
        lambda: _sim(lambda a, b: jax.lax.cond(True, _mm, lambda a, b: a @ b * 2, a, b), A, B),
        [[1.0]],
    ),
    good(
        "simulate_format while",
        lambda: _sim(lambda a, b: jax.lax.fori_loop(0, 1, lambda i, h: h @ b, a), A, B),
        [[1.0]],
    ),
    good(
        "simulate_format checkpoint in scan",
        lambda: _sim(
            lambda a, b: jax.lax.scan(
                lambda h, _: (jax.checkpoint(_mm)(h, b), None), a, None, length=1
            )[0],
            A,
            B,
        ),
        [[1.0]],
    ),
    good(  # the output gradient 1.0625 rounds to 1.0 in E4M3, inside the checkpoint too
        "simulate_format grad through checkpoint",
        lambda: jax.grad(
            lambda a: 1.0625 * S.simulate_format(jax.checkpoint(_mm), None, E4M3)(a, B).sum()
        )(A),
        [[1.0]],
    ),
    good("simulate_format vmap", lambda: _sim(jax.vmap(_mm), A[None], B[None]), [[[1.0]]]),
    good(
        "simulate_format flax remat layer",
        lambda: _sim(lambda a, b: jax.checkpoint(lambda u: jl.functional.linear(u, b))(a), A, B),
        [[1.0]],
    ),
    bad(
        "simulate_format shard_map (not traversed)",
        lambda: _sim(_shard_mapped(_mm), A, B),
        NotImplementedError,
        "shard_map",
    ),
    bad(
        "track_scales shard_map (not traversed)",
        lambda: S.track_scales(_shard_mapped(lambda a, b: jnp.sum(a @ b)), A, B),
        NotImplementedError,
        "shard_map",
    ),
    bad(
        "simulate_format fwd_format str",
        lambda: S.simulate_format(_mm, "e4m3", None),
        TypeError,
        "fwd_format",
    ),
    bad(
        "simulate_format bwd_format int dtype",
        lambda: S.simulate_format(_mm, None, jnp.int8),
        TypeError,
        "bwd_format",
    ),
    bad(
        "simulate_format e8m0",
        lambda: S.simulate_format(_mm, jnp.float8_e8m0fnu, None),
        ValueError,
        "fwd_format",
    ),
    bad(
        "simulate_format fn not callable", lambda: S.simulate_format(3, E4M3, None), TypeError, "fn"
    ),
    bad(
        "simulate_fp8 rounding", lambda: S.simulate_fp8(_mm, rounding="up"), ValueError, "rounding"
    ),
    bad(
        "simulate_fp8 stochastic without key",
        lambda: S.simulate_fp8(_mm)(A, B),
        ValueError,
        "rounding_key",
    ),
    good(
        "simulate_fp8 nearest through checkpoint",
        lambda: S.simulate_fp8(jax.checkpoint(_mm), "nearest")(jnp.array([[300.0]]), B),
        [[240.0]],
    ),
    # track_scales through higher-order primitives: the inside is recorded (or refused)
    good(
        "track_scales checkpoint records inside",
        lambda: (
            "tanh"
            in _track_inner_names(jax.checkpoint(lambda x: jnp.sum(jnp.tanh(x))), jnp.ones(3))
        ),
        True,
    ),
    good(
        "track_scales jit records inside",
        lambda: "tanh" in _track_inner_names(jax.jit(lambda x: jnp.sum(jnp.tanh(x))), jnp.ones(3)),
        True,
    ),
    bad(
        "track_scales scan",
        lambda: S.track_scales(
            lambda x: jnp.sum(jax.lax.scan(lambda h, _: (jnp.tanh(h), None), x, None, length=2)[0]),
            jnp.ones(3),
        ),
        NotImplementedError,
        "scan",
    ),
    bad(
        "track_scales while",
        lambda: S.track_scales(
            lambda x: jnp.sum(jax.lax.fori_loop(0, 2, lambda i, h: jnp.tanh(h), x)), jnp.ones(3)
        ),
        NotImplementedError,
        "while",
    ),
    bad(
        "track_scales detail",
        lambda: S.track_scales(jnp.sum, jnp.ones(3), detail="all"),
        ValueError,
        "detail",
    ),
    bad("track_scales fn not callable", lambda: S.track_scales(3, jnp.ones(3)), TypeError, "fn"),
    # formats and casts
    bad(
        "cast e8m0 dtype",
        lambda: S.cast(jnp.array([0.0, -1.0]), jnp.float8_e8m0fnu),
        ValueError,
        "fmt",
    ),
    bad("cast int dtype", lambda: S.cast(X, jnp.int8), TypeError, "fmt"),
    bad("cast int input", lambda: S.cast(jnp.ones(2, jnp.int32), E4M3), TypeError, "x"),
    bad("cast stochastic no key", lambda: S.cast(X, S.FPFormat(4, 3)), ValueError, "key"),
    good(
        "cast e4m3fn dtype",
        lambda: S.cast(jnp.array([0.0, -1.0625, 1e6]), jnp.float8_e4m3fn),
        [0.0, -1.0, 448.0],
    ),
    good(
        "cast e5m2 zero and negatives",
        lambda: S.cast(jnp.array([0.0, -3.0]), jnp.float8_e5m2),
        [0.0, -3.0],
    ),
    good("cast nearest ties toward zero", lambda: S.cast(jnp.array([1.0625]), E4M3), [1.0]),
    good(
        "cast nan stays nan", lambda: bool(jnp.isnan(S.cast(jnp.array([jnp.nan]), E4M3))[0]), True
    ),
    bad("FPFormat exponent 1", lambda: S.FPFormat(1, 3), ValueError, "exponent_bits"),
    bad("FPFormat exponent 8", lambda: S.FPFormat(8, 3), ValueError, "exponent_bits"),
    bad("FPFormat mantissa -1", lambda: S.FPFormat(4, -1), ValueError, "mantissa_bits"),
    bad("FPFormat mantissa float", lambda: S.FPFormat(4, 3.0), TypeError, "mantissa_bits"),
    bad("FPFormat rounding", lambda: S.FPFormat(4, 3, "up"), ValueError, "rounding"),
    bad("FPFormat srbits nearest", lambda: S.FPFormat(4, 3, "nearest", 2), ValueError, "srbits"),
    bad(
        "FPFormat srbits too many", lambda: S.FPFormat(4, 3, "stochastic", 21), ValueError, "srbits"
    ),
    # index checks, as torch raises on concrete indices
    bad(
        "cross_entropy label -1",
        lambda: S.cross_entropy(jnp.zeros((2, 4)), jnp.array([0, -1])),
        ValueError,
        "target",
    ),
    bad(
        "cross_entropy label 7 of 4",
        lambda: S.cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 7])),
        ValueError,
        "target",
    ),
    bad(
        "cross_entropy label 4 of 4",
        lambda: S.cross_entropy(jnp.zeros((1, 4)), jnp.array([4])),
        ValueError,
        "target",
    ),
    good(
        "cross_entropy ignore_index -100",
        lambda: float(S.cross_entropy(jnp.zeros((2, 4)), jnp.array([0, -100]), reduction="sum")),
        pytest.approx(math.log(4), rel=1e-6),
    ),
    good(
        "cross_entropy custom ignore_index 3",
        lambda: float(
            S.cross_entropy(jnp.zeros((2, 4)), jnp.array([3, 3]), ignore_index=3, reduction="sum")
        ),
        0.0,
    ),
    bad(
        "cross_entropy ignore_index float",
        lambda: S.cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 1]), ignore_index=1.5),
        TypeError,
        "ignore_index",
    ),
    bad(
        "cross_entropy target bool",
        lambda: S.cross_entropy(jnp.zeros((2, 4)), jnp.array([True, False])),
        TypeError,
        "target",
    ),
    bad(
        "cross_entropy target shape",
        lambda: S.cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 1, 2])),
        ValueError,
        "target",
    ),
    bad(
        "cross_entropy 3-d logits",
        lambda: S.cross_entropy(jnp.zeros((2, 2, 4)), jnp.zeros((2, 2), int)),
        ValueError,
        "x",
    ),
    bad(
        "cross_entropy 1 class",
        lambda: S.cross_entropy(jnp.zeros((2, 1)), jnp.zeros(2, int)),
        ValueError,
        "x",
    ),
    bad(
        "cross_entropy mult 0",
        lambda: S.cross_entropy(jnp.zeros((2, 4)), jnp.zeros(2, int), mult=0.0),
        ValueError,
        "mult",
    ),
    good(
        "cross_entropy mult numpy float32",
        lambda: float(S.cross_entropy(jnp.zeros((1, 4)), jnp.zeros(1, int), mult=np.float32(2.0))),
        pytest.approx(math.log(4), rel=1e-6),
    ),
    bad(
        "cross_entropy reduction none",
        lambda: S.cross_entropy(jnp.zeros((2, 4)), jnp.zeros(2, int), reduction="none"),
        ValueError,
        "reduction",
    ),
    bad(
        "cross_entropy probs shape",
        lambda: S.cross_entropy(jnp.zeros((2, 4)), jnp.zeros((2, 3))),
        ValueError,
        "target",
    ),
    bad(
        "embedding index 9 of 5",
        lambda: S.embedding(jnp.array([0, 9]), jnp.ones((5, 2))),
        ValueError,
        "indices",
    ),
    bad(
        "embedding index -1",
        lambda: S.embedding(jnp.array([-1]), jnp.ones((5, 2))),
        ValueError,
        "indices",
    ),
    bad(
        "embedding float indices",
        lambda: S.embedding(jnp.array([0.0]), jnp.ones((5, 2))),
        TypeError,
        "indices",
    ),
    bad(
        "embedding weight 1-d",
        lambda: S.embedding(jnp.array([0]), jnp.ones(5)),
        ValueError,
        "weight",
    ),
    bad(
        "embedding empty indices",
        lambda: S.embedding(jnp.zeros(0, int), jnp.ones((5, 2))),
        ValueError,
        "indices",
    ),
    bad(
        "embedding padding_idx 5",
        lambda: S.embedding(jnp.array([0]), jnp.ones((5, 2)), padding_idx=5),
        ValueError,
        "padding_idx",
    ),
    bad(
        "embedding padding_idx float",
        lambda: S.embedding(jnp.array([0]), jnp.ones((5, 2)), padding_idx=1.0),
        TypeError,
        "padding_idx",
    ),
    good(
        "embedding padding_idx -1",
        lambda: S.embedding(jnp.array([4]), jnp.eye(5), padding_idx=-1),
        [[0.0, 0.0, 0.0, 0.0, 1.0]],
    ),
    good(
        "embedding traced index under jit clamps",
        lambda: jax.jit(S.embedding)(jnp.array([1]), jnp.eye(2)),
        [[0.0, 1.0]],
    ),
    # hyperparameters: one semantics (numpy scalars are numbers, bools are not)
    good("gelu mult numpy float32", lambda: S.gelu(jnp.zeros(1), mult=np.float32(1.0)), [0.0]),
    good("silu mult numpy float64", lambda: S.silu(jnp.zeros(1), mult=np.float64(1.0)), [0.0]),
    bad("gelu mult bool", lambda: S.gelu(X, mult=True), TypeError, "mult"),
    bad("gelu mult nan", lambda: S.gelu(X, mult=math.nan), ValueError, "mult"),
    bad("gelu mult negative", lambda: S.gelu(X, mult=-1.0), ValueError, "mult"),
    bad("gelu approximate", lambda: S.gelu(X, approximate="fast"), ValueError, "approximate"),
    bad("gelu constraint", lambda: S.gelu(X, constraint="pow"), ValueError, "constraint"),
    bad("softmax mult str", lambda: S.softmax(X, mult="1"), TypeError, "mult"),
    bad("softmax axis 5", lambda: S.softmax(X, axis=5), ValueError, "axis"),
    bad("dropout p 1.5", lambda: S.dropout(X, 1.5, key=jax.random.key(0)), ValueError, "p"),
    bad("dropout p nan", lambda: S.dropout(X, math.nan, key=jax.random.key(0)), ValueError, "p"),
    bad("dropout no key", lambda: S.dropout(X, 0.5), ValueError, "key"),
    bad(
        "dropout training str",
        lambda: S.dropout(X, 0.5, training="no", key=jax.random.key(0)),
        TypeError,
        "training",
    ),
    good(
        "dropout p numpy float",
        lambda: S.dropout(X, np.float32(0.0), key=jax.random.key(0)),
        np.ones((2, 4), np.float32),
    ),
    good(
        "dropout training numpy bool",
        lambda: S.dropout(X, 0.0, training=np.bool_(True), key=jax.random.key(0)),
        np.ones((2, 4), np.float32),
    ),
    bad("residual_split tau negative", lambda: S.residual_split(X, tau=-1.0), ValueError, "tau"),
    bad("residual_weights tau nan", lambda: S.residual_weights(math.nan), ValueError, "tau"),
    good(
        "residual_weights tau numpy",
        lambda: S.residual_weights(np.float32(1.0)),
        pytest.approx((2**-0.5, 2**-0.5)),
    ),
    bad("residual_add shapes", lambda: S.residual_add(X, jnp.ones((2, 3))), ValueError, "skip"),
    bad("scale_fwd scale str", lambda: S.scale_fwd(X, "2"), TypeError, "scale"),
    bad("scale_bwd scale array", lambda: S.scale_bwd(X, jnp.ones(2)), TypeError, "scale"),
    bad("scale_fwd int x", lambda: S.scale_fwd(jnp.ones(2, jnp.int32), 2.0), TypeError, "x"),
    bad("linear kernel 3-d", lambda: S.linear(X, jnp.ones((1, 4, 3))), ValueError, "kernel"),
    bad(
        "linear empty batch",
        lambda: S.linear(jnp.ones((0, 4)), jnp.ones((4, 3))),
        ValueError,
        "batch_size",
    ),
    bad(
        "linear scale_power 2 entries",
        lambda: S.linear(X, jnp.ones((4, 3)), scale_power=(0.5, 0.5)),
        ValueError,
        "scale_power",
    ),
    bad(
        "linear batch_size 0",
        lambda: S.linear(X, jnp.ones((4, 3)), batch_size=0),
        ValueError,
        "batch_size",
    ),
    bad("linear_scales fan_in 0", lambda: S.linear_scales(0, 3, 2), ValueError, "fan_in"),
    bad(
        "linear_readout constraint",
        lambda: S.linear_readout(X, jnp.ones((4, 3)), constraint="x"),
        ValueError,
        "constraint",
    ),
    bad("matmul 1-d", lambda: S.matmul(jnp.ones(4), jnp.ones(4)), ValueError, "left"),
    bad("matmul inner mismatch", lambda: S.matmul(X, jnp.ones((3, 2))), ValueError, "right"),
    bad(
        "add constraint to_grad_input_scale",
        lambda: S.add(X, X, constraint="to_grad_input_scale"),
        ValueError,
        "constraint",
    ),
    bad("layer_norm shape mismatch", lambda: S.layer_norm(X, 3), ValueError, "normalized_shape"),
    bad("layer_norm eps negative", lambda: S.layer_norm(X, 4, eps=-1.0), ValueError, "eps"),
    bad(
        "rms_norm weight shape", lambda: S.rms_norm(X, 4, weight=jnp.ones(3)), ValueError, "weight"
    ),
    bad("mse_loss shape", lambda: S.mse_loss(X, jnp.ones((2, 3))), ValueError, "target"),
    bad("mse_loss int", lambda: S.mse_loss(jnp.ones(2, int), jnp.ones(2, int)), TypeError, "x"),
    bad(
        "sdpa dropout without key",
        lambda: S.scaled_dot_product_attention(X[None], X[None], X[None], dropout_p=0.5),
        ValueError,
        "dropout_key",
    ),
    bad(
        "sdpa is_causal str",
        lambda: S.scaled_dot_product_attention(X[None], X[None], X[None], is_causal="yes"),
        TypeError,
        "is_causal",
    ),
    bad(
        "sdpa key shape",
        lambda: S.scaled_dot_product_attention(X[None], jnp.ones((1, 2, 3)), X[None]),
        ValueError,
        "key",
    ),
    good(
        "logarithmic_interpolation alpha 2 extrapolates",
        lambda: S.logarithmic_interpolation(2.0, 1.0, 2.0),
        4.0,
    ),
    bad(
        "logarithmic_interpolation lower 0",
        lambda: S.logarithmic_interpolation(0.5, 0.0, 2.0),
        ValueError,
        "lower",
    ),
    bad(
        "apply_constraint unknown",
        lambda: S.apply_constraint("pow", 1.0, 2.0),
        ValueError,
        "constraint",
    ),
    bad("silu_glu shapes", lambda: S.silu_glu(X, jnp.ones((2, 3))), ValueError, "gate"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_audit(case):
    check(case)
