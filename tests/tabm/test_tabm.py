"""jl.tabm: inits follow tabm's distributions (bounds from the sample size, total false-failure
probability <= 1e-6), shapes, errors, dropout, TabM.make's defaults and the converters' round trip.
Parity against tabm itself is the ``tabm`` parity group."""

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jaxlinear as jl
from tests._tail_bounds import (
    bernstein_mean_bound,
    chi2_std_bounds,
    gaussian_mean_bound,
    uniform_abs_max_lower,
    uniform_std_bounds,
)

FAIL = 1e-8  # per assertion; far fewer than 100 assertions below


def _params(module, *inputs, key=0):
    return module.init(jax.random.key(key), *inputs)["params"]


# ---- inits ----------------------------------------------------------------------------------------


def test_scaling_init_random_signs_are_fair_signs():
    w = np.asarray(jl.tabm.scaling_init("random-signs")(jax.random.key(1), (64, 512), jnp.float32))
    assert set(np.unique(w)) == {-1.0, 1.0}
    assert abs(w.mean()) <= bernstein_mean_bound(w.size, 1.0, 1.0, FAIL)


def test_scaling_init_normal_is_standard_normal():
    w = np.asarray(
        jl.tabm.scaling_init("normal")(jax.random.key(2), (64, 512), jnp.float32), np.float64
    )
    assert abs(w.mean()) <= gaussian_mean_bound(w.size, FAIL)
    lo, hi = chi2_std_bounds(w.size - 1, FAIL)
    assert lo <= w.std(ddof=1) <= hi


def test_scaling_init_chunks_share_one_value_per_chunk_and_row():
    chunks = [3, 1, 4, 0, 2]
    w = np.asarray(jl.tabm.scaling_init("normal", chunks)(jax.random.key(3), (7, 10), jnp.float32))
    starts = np.cumsum([0, *chunks[:-1]])
    for s, c in zip(starts, chunks, strict=True):
        if c:
            assert (w[:, s : s + c] == w[:, s : s + 1]).all()
    assert len(np.unique(w[:, [0, 3, 4, 8]])) == 28  # independent draws across chunks and rows
    with pytest.raises(ValueError, match="`chunks` must sum"):
        jl.tabm.scaling_init("normal", [3, 3])(jax.random.key(0), (2, 7), jnp.float32)
    with pytest.raises(ValueError, match="`chunks` must be None"):
        jl.tabm.scaling_init("ones", [1])
    with pytest.raises(ValueError, match="`distribution` must be one of"):
        jl.tabm.scaling_init("uniform")
    assert (jl.tabm.scaling_init("ones")(jax.random.key(0), (2, 3), jnp.float32) == 1).all()


def _check_uniform(w: Any, bound: float) -> None:
    w = np.asarray(w, np.float64).ravel()
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() >= bound * uniform_abs_max_lower(w.size, FAIL)
    lo, hi = uniform_std_bounds(w.size, FAIL)
    assert lo <= w.std() / (bound / math.sqrt(3)) <= hi


def test_linear_batch_ensemble_init_follows_tabm():
    layer = jl.tabm.LinearBatchEnsemble(
        300, k=8, scaling_init=("random-signs", "normal"), first_scaling_init_chunks=[100, 156]
    )
    p = _params(layer, jnp.ones((1, 8, 256)))
    _check_uniform(p["kernel"], 1 / 16)
    r, s, bias = map(np.asarray, (p["r"], p["s"], p["bias"]))
    assert set(np.unique(r)) == {-1.0, 1.0}
    assert (r[:, :100] == r[:, :1]).all() and (r[:, 100:] == r[:, 100:101]).all()
    lo, hi = chi2_std_bounds(s.size - 1, FAIL)
    assert lo <= s.std(ddof=1) <= hi
    assert (bias == bias[:1]).all()  # one draw copied to every member, as tabm
    _check_uniform(bias[0], 1 / 16)


def test_linear_ensemble_init_is_uniform_per_member_fan_in():
    p = _params(jl.tabm.LinearEnsemble(64, k=16), jnp.ones((1, 16, 100)))
    _check_uniform(p["kernel"], 0.1)  # 1/sqrt(in), never 1/sqrt(k * in)
    _check_uniform(p["bias"], 0.1)


def test_tabm_backbone_init_only_first_scaling_is_random():
    model = jl.tabm.TabM.make(n_num_features=3, cat_cardinalities=[4, 2], d_out=2, k=8, d_block=16)
    p = _params(model, jnp.ones((1, 3)), jnp.zeros((1, 2), jnp.int32))["backbone"]
    r0 = np.asarray(p["blocks_0"]["r"])
    assert set(np.unique(r0)) == {-1.0, 1.0}
    # one sign per feature and member: chunks (1, 1, 1, 4, 2)
    assert (r0[:, 3:7] == r0[:, 3:4]).all() and (r0[:, 7:9] == r0[:, 7:8]).all()
    assert (np.asarray(p["blocks_0"]["s"]) == 1).all()
    for i in (1, 2):
        assert (np.asarray(p[f"blocks_{i}"]["r"]) == 1).all()
        assert (np.asarray(p[f"blocks_{i}"]["s"]) == 1).all()


def test_periodic_frequencies_are_truncated_normal():
    sigma = 0.5
    m = jl.tabm.PeriodicEmbeddings(64, 4, n_frequencies=256, frequency_init_scale=sigma, lite=True)
    w = np.asarray(_params(m, jnp.ones((1, 64)))["periodic"]["kernel"], np.float64).ravel()
    assert np.abs(w).max() <= 3 * sigma * (1 + 1e-6)
    # std of N(0, 1) truncated at ±3, from the distribution itself
    std = np.asarray(stats.truncnorm.std(-3, 3)).item()
    bound = bernstein_mean_bound(
        w.size, np.asarray(stats.truncnorm.var(-3, 3)).item() * 3, 9.0, FAIL
    )  # on w²/σ²
    assert abs((w**2).mean() / sigma**2 - std**2) <= bound
    assert abs(w.mean()) / sigma <= gaussian_mean_bound(w.size, FAIL)  # truncation narrows it


def test_embeddings_inits_follow_rtdl():
    p = _params(jl.tabm.LinearReLUEmbeddings(50, 64), jnp.ones((1, 50)))["linear"]
    _check_uniform(p["kernel"], 1 / 8)  # rtdl's bound uses d_embedding
    _check_uniform(p["bias"], 1 / 8)
    X = np.random.default_rng(0).standard_normal((500, 40)).astype(np.float32)
    bins = jl.tabm.compute_bins(X, n_bins=16)
    pb = _params(jl.tabm.PiecewiseLinearEmbeddings(bins, 8, activation=True, version="B"), X[:1])
    assert (np.asarray(pb["linear"]["kernel"]) == 0).all() and "bias" not in pb["linear"]
    pa = _params(jl.tabm.PiecewiseLinearEmbeddings(bins, 8, activation=True, version="A"), X[:1])
    _check_uniform(pa["linear"]["kernel"], 1 / 4)


# ---- shapes, dropout, make, errors ----------------------------------------------------------------


@pytest.mark.parametrize("arch", jl.tabm.ARCH_TYPES)
def test_tabm_shapes_jit_and_dropout(arch):
    model = jl.tabm.TabM.make(
        n_num_features=3,
        cat_cardinalities=[3],
        d_out=2,
        k=4,
        d_block=8,
        arch_type=arch,
        dropout=0.5,
    )
    x_num, x_cat = jnp.ones((6, 3)), jnp.array([[0], [1], [2], [0], [1], [2]])
    v = model.init(jax.random.key(0), x_num, x_cat)
    apply = jax.jit(model.apply, static_argnames="deterministic")
    y = apply(v, x_num, x_cat)
    assert y.shape == (6, 4, 2) and y.dtype == jnp.float32
    np.testing.assert_array_equal(y, apply(v, x_num, x_cat, deterministic=True))
    rngs = {"dropout": jax.random.key(1)}
    y1 = np.asarray(model.apply(v, x_num, x_cat, deterministic=False, rngs=rngs))
    y2 = np.asarray(
        model.apply(v, x_num, x_cat, deterministic=False, rngs={"dropout": jax.random.key(2)})
    )
    assert not np.allclose(y1, y) and not np.allclose(y1, y2)
    with pytest.raises(Exception, match="dropout"):
        model.apply(v, x_num, x_cat, deterministic=False)
    # per-member inputs (batch, k, n)
    y3 = np.asarray(model.apply(v, jnp.ones((5, 4, 3)), jnp.zeros((5, 4, 1), jnp.int32)))
    assert y3.shape == (5, 4, 2)


def test_make_follows_tabm_defaults():
    m = jl.tabm.TabM.make(n_num_features=2, d_out=1)
    assert (m.n_blocks, m.d_block, m.dropout, m.k, m.arch_type, m.start_scaling_init) == (
        3,
        512,
        0.1,
        32,
        "tabm",
        "random-signs",
    )
    emb = jl.tabm.LinearReLUEmbeddings(2)
    m = jl.tabm.TabM.make(n_num_features=2, d_out=1, num_embeddings=emb)
    assert (m.n_blocks, m.start_scaling_init) == (2, "normal")
    m = jl.tabm.TabM.make(n_num_features=2, d_out=1, arch_type="tabm-packed")
    assert m.start_scaling_init is None
    assert jl.tabm.TabM.make(n_num_features=2, d_out=1, k=5).k == 5


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="d_out"):
        jl.tabm.TabM.make(n_num_features=2)
    with pytest.raises(TypeError, match="TabM.make"):
        jl.tabm.TabM(n_num_features=2, d_out=1)
    with pytest.raises(ValueError, match="`arch_type` must be one of"):
        jl.tabm.TabM.make(n_num_features=2, d_out=1, arch_type="mlp")
    with pytest.raises(ValueError, match="must not both be empty"):
        jl.tabm.TabM.make(d_out=1)
    with pytest.raises(ValueError, match="version='B'"):
        bins = [np.array([0.0, 1.0, 2.0], np.float32)]
        jl.tabm.TabM.make(
            n_num_features=1,
            d_out=1,
            num_embeddings=jl.tabm.PiecewiseLinearEmbeddings(bins, 4, activation=True, version="A"),
        )
    with pytest.raises(ValueError, match="was made for 3 features"):
        jl.tabm.TabM.make(n_num_features=2, d_out=1, num_embeddings=jl.tabm.LinearReLUEmbeddings(3))
    with pytest.raises(ValueError, match="`activation` must be one of"):
        jl.tabm.MLPBackbone(n_blocks=1, d_block=4, activation="relu")
    with pytest.raises(ValueError, match="`dropout` must be in"):
        jl.tabm.MLPBackbone(n_blocks=1, d_block=4, dropout=1.0)
    with pytest.raises(TypeError, match="`lite` is required"):
        jl.tabm.PeriodicEmbeddings(3)
    with pytest.raises(ValueError, match="`activation` must be True"):
        jl.tabm.PeriodicEmbeddings(3, activation=False, lite=True)
    model = jl.tabm.TabM.make(n_num_features=2, cat_cardinalities=[3], d_out=1, k=2, d_block=4)
    v = model.init(jax.random.key(0), jnp.ones((1, 2)), jnp.zeros((1, 1), jnp.int32))
    with pytest.raises(ValueError, match="`x_cat` is required"):
        model.apply(v, jnp.ones((1, 2)))
    with pytest.raises(TypeError, match="`x_cat` must be an integer array"):
        model.apply(v, jnp.ones((1, 2)), jnp.zeros((1, 1)))
    with pytest.raises(ValueError, match=r"`x_num` must have shape \(batch, 2\)"):
        model.apply(v, jnp.ones((1, 3)), jnp.zeros((1, 1), jnp.int32))
    with pytest.raises(ValueError, match="k=3"):
        jl.tabm.LinearEnsemble(2, k=3).init(jax.random.key(0), jnp.ones((1, 2, 4)))
    with pytest.raises(ValueError, match="at least two distinct values"):
        jl.tabm.compute_bins(np.ones((10, 2), np.float32))
    with pytest.raises(ValueError, match="`n_bins` must be in"):
        jl.tabm.compute_bins(np.random.default_rng(0).standard_normal((10, 2)), n_bins=10)


def test_converters_round_trip_without_torch():
    # every architecture and embedding round-trips in the parity group; this one runs without torch
    emb = jl.tabm.PeriodicEmbeddings(3, 4, n_frequencies=5, lite=False)
    model = jl.tabm.TabM.make(
        n_num_features=3,
        cat_cardinalities=[2],
        d_out=2,
        k=3,
        d_block=8,
        arch_type="tabm-mini",
        num_embeddings=emb,
    )
    v = model.init(jax.random.key(0), jnp.ones((1, 3)), jnp.zeros((1, 1), jnp.int32))
    sd = jl.interop.to_torch(model, v)
    assert sd["backbone.affine.weight"].shape == (3, 14) and sd["output.weight"].shape == (3, 8, 2)
    assert sd["backbone.blocks.0.0.weight"].shape == (8, 14)  # torch's (out, in)
    jax.tree.map(np.testing.assert_array_equal, jl.interop.from_torch(model, sd), v)
    with pytest.raises(KeyError, match="unexpected keys"):
        jl.interop.from_torch(model, sd | {"extra.weight": np.zeros(2)})


def test_layers_agree_bit_for_bit_with_the_layers_they_reuse():
    x = jax.random.normal(jax.random.key(0), (6, 4, 5))
    ens = jl.tabm.LinearEnsemble(7, k=4)
    v = ens.init(jax.random.key(1), x)
    np.testing.assert_array_equal(ens.apply(v, x), jl.NLinear(4, 7).apply(v, x))
    be = jl.tabm.LinearBatchEnsemble(7, k=4, scaling_init="ones")
    vb = be.init(jax.random.key(2), x)
    dense = jl.Linear(7, use_bias=False).apply({"params": {"kernel": vb["params"]["kernel"]}}, x)
    want = dense * 1.0 + vb["params"]["bias"][None]  # r = s = 1: the shared dense layer + bias
    np.testing.assert_array_equal(be.apply(vb, x), want)


def test_zero_size_batches_and_out_of_range_categories():
    model = jl.tabm.TabM.make(n_num_features=2, cat_cardinalities=[3], d_out=1, k=2, d_block=4)
    v = model.init(jax.random.key(0), jnp.ones((1, 2)), jnp.zeros((1, 1), jnp.int32))
    y0 = np.asarray(model.apply(v, jnp.ones((0, 2)), jnp.zeros((0, 1), jnp.int32)))
    assert y0.shape == (0, 2, 1)
    # a concrete code outside range(3) raises, as torch's one_hot does; traced: all-zero (documented)
    for code in (7, 3, -1):
        with pytest.raises(
            ValueError, match=r"`x_cat` feature 0 must hold category codes in \[0, 3\)"
        ):
            model.apply(v, jnp.ones((1, 2)), jnp.array([[code]]))
    zero_code = jax.jit(model.apply)(v, jnp.ones((1, 2)), jnp.array([[7]]))
    assert np.isfinite(np.asarray(zero_code)).all()
