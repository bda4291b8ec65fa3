"""The pure core: ``linear`` and ``nlinear`` against numpy, and their errors."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlinear.functional import linear, nlinear

RNG = np.random.default_rng(0)


def test_linear_matches_numpy(strict_dtypes):
    x, k, b = (RNG.standard_normal(s).astype(np.float32) for s in [(2, 3, 5), (5, 7), (7,)])
    np.testing.assert_allclose(linear(jnp.asarray(x), k, b), x @ k + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(linear(jnp.asarray(x), k), x @ k, rtol=1e-5, atol=1e-6)


def test_nlinear_matches_einsum(strict_dtypes):
    x, k, b = (
        RNG.standard_normal(s).astype(np.float32) for s in [(4, 2, 3, 5), (2, 3, 5, 7), (2, 3, 7)]
    )
    want = np.einsum("bnmi,nmio->bnmo", x, k) + b
    np.testing.assert_allclose(nlinear(jnp.asarray(x), k, b), want, rtol=1e-5, atol=1e-6)


def test_linear_errors():
    with pytest.raises(ValueError, match=r"`kernel` must have shape \(in_features, out_features\)"):
        linear(jnp.ones((2, 3)), jnp.ones((3,)))
    with pytest.raises(ValueError, match=r"`x` must have trailing shape \(3,\)"):
        linear(jnp.ones((2, 4)), jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"`bias` must have shape \(5,\)"):
        linear(jnp.ones((2, 3)), jnp.ones((3, 5)), jnp.ones((2, 5)))


def test_nlinear_errors():
    with pytest.raises(ValueError, match="`kernel` must have shape"):
        nlinear(jnp.ones((2, 3)), jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"`x` must have trailing shape \(2, 3\)"):
        nlinear(jnp.ones((4, 3, 3)), jnp.ones((2, 3, 5)))
    with pytest.raises(ValueError, match=r"`bias` must have shape \(2, 5\)"):
        nlinear(jnp.ones((4, 2, 3)), jnp.ones((2, 3, 5)), jnp.ones((5,)))


def _plain_linear(x, k, b):
    return x @ k + b.reshape((1,) * (x.ndim - 1) + (-1,))


@pytest.mark.parametrize("batch_shape", [(), (0,), (3,), (2, 3)])
def test_linear_derivatives_match_plain_autodiff(batch_shape):
    """The custom tangent rule (fast kernel-gradient layout) gives the true derivatives in every mode."""
    import jax

    x, k, b = (
        jnp.asarray(RNG.standard_normal(s).astype(np.float32))
        for s in [(*batch_shape, 5), (5, 4), (4,)]
    )
    g = jnp.asarray(RNG.standard_normal((*batch_shape, 4)).astype(np.float32))
    tol = dict(rtol=1e-5, atol=1e-6)
    (y1, vjp1), (y2, vjp2) = jax.vjp(linear, x, k, b), jax.vjp(_plain_linear, x, k, b)
    np.testing.assert_allclose(y1, y2, **tol)
    for a, c in zip(vjp1(g), vjp2(g), strict=True):
        np.testing.assert_allclose(a, c, **tol)
    tangents = (x + 1.0, k - 0.5, b * 2.0)
    np.testing.assert_allclose(
        jax.jvp(linear, (x, k, b), tangents)[1],
        jax.jvp(_plain_linear, (x, k, b), tangents)[1],
        **tol,
    )
    jac1 = jax.jacfwd(linear, argnums=(0, 1))(x, k, b)
    jac2 = jax.jacrev(_plain_linear, argnums=(0, 1))(x, k, b)
    for a, c in zip(jac1, jac2, strict=True):
        np.testing.assert_allclose(a, c, **tol)
    # second order: the Hessian-vector product of a scalar loss through the layer
    loss1 = lambda k: jnp.sum(jnp.tanh(linear(x, k, b)))
    loss2 = lambda k: jnp.sum(jnp.tanh(_plain_linear(x, k, b)))
    hvp = lambda f: jax.jvp(jax.grad(f), (k,), (jnp.ones_like(k),))[1]
    np.testing.assert_allclose(hvp(loss1), hvp(loss2), **tol)
    # vmapped over a stack of kernels
    ks = jnp.stack([k, 2 * k])
    np.testing.assert_allclose(
        jax.vmap(lambda k: linear(x, k, b))(ks),
        jax.vmap(lambda k: _plain_linear(x, k, b))(ks),
        **tol,
    )


@pytest.mark.parametrize("platform", ["cpu", "cuda", "tpu"])
def test_cpu_only_transpose_copy_stays_on_cpu(platform):
    """The materialized transpose of the kernel gradient is a CPU formulation: GPU/TPU get a plain dot."""
    import jax

    from jaxlinear.functional import matmul_tn

    x, k = jnp.ones((8, 3)), jnp.ones((3, 2))

    def grads(k, x):
        g_linear = jax.grad(lambda k: linear(x, k).sum())(k)
        g_nlinear = jax.grad(lambda k: nlinear(x[:, None], k[None]).sum())(k)
        return g_linear, g_nlinear, matmul_tn(x, x)

    text = jax.export.export(jax.jit(grads), platforms=[platform])(k, x).mlir_module()
    assert text.count("stablehlo.dot_general") == 3
    assert ("optimization_barrier" in text) == (platform == "cpu")


def _plain_nlinear(x, k, b, layout):
    spec = "bni,nio->bno" if layout == "batch_major" else "nbi,nio->nbo"
    return jnp.einsum(spec, x, k) + (b[None] if layout == "batch_major" else b[:, None])


@pytest.mark.parametrize("layout", ["batch_major", "member_major"])
@pytest.mark.parametrize("form", ["rule", "batched", "dot_general", "unrolled"])
@pytest.mark.parametrize("n_in,n_out", [(3, 5), (6, 1)])
def test_nlinear_forms_match_plain_autodiff(form, layout, n_in, n_out):
    """Every product formulation the per-shape rule may pick: the values and derivatives of einsum."""
    import jax

    from jaxlinear import functional

    shapes = [
        (4, 2, n_in) if layout == "batch_major" else (2, 4, n_in),
        (2, n_in, n_out),
        (2, n_out),
    ]
    x, k, b = (jnp.asarray(RNG.standard_normal(s).astype(np.float32)) for s in shapes)
    f = lambda x, k, b: functional._nlinear(x, k, b, None, layout, None if form == "rule" else form)
    ref = lambda x, k, b: _plain_nlinear(x, k, b, layout)
    tol = dict(rtol=1e-5, atol=1e-6)
    (y1, vjp1), (y2, vjp2) = jax.vjp(f, x, k, b), jax.vjp(ref, x, k, b)
    np.testing.assert_allclose(y1, y2, **tol)
    g = jnp.asarray(RNG.standard_normal(y1.shape).astype(np.float32))
    for a, c in zip(vjp1(g), vjp2(g), strict=True):
        np.testing.assert_allclose(a, c, **tol)
    tangents = (x + 1.0, k - 0.5, b * 2.0)
    np.testing.assert_allclose(
        jax.jvp(f, (x, k, b), tangents)[1], jax.jvp(ref, (x, k, b), tangents)[1], **tol
    )
    # second order (a Hessian-vector product) and vmap over a stack of kernels
    loss = lambda f: lambda k: jnp.sum(jnp.tanh(f(x, k, b)))
    hvp = lambda f: jax.jvp(jax.grad(loss(f)), (k,), (jnp.ones_like(k),))[1]
    np.testing.assert_allclose(hvp(f), hvp(ref), **tol)
    ks = jnp.stack([k, 2 * k])
    np.testing.assert_allclose(
        jax.vmap(lambda k: f(x, k, b))(ks), jax.vmap(lambda k: ref(x, k, b))(ks), **tol
    )


@pytest.mark.parametrize("platform", ["cpu", "cuda"])
def test_nlinear_unrolled_forward_stays_on_cpu(platform):
    """The per-member matmuls of the "unrolled" form are a CPU formulation: GPU gets one batched dot."""
    import jax

    from jaxlinear import functional

    x, k = jnp.ones((8, 3, 4)), jnp.ones((3, 4, 16))
    f = jax.jit(lambda x, k: functional._nlinear(x, k, None, None, "batch_major", "unrolled"))
    text = jax.export.export(f, platforms=[platform])(x, k).mlir_module()
    assert text.count("stablehlo.dot_general") == (3 if platform == "cpu" else 1)


def test_nlinear_form_rule_is_a_function_of_the_shape():
    """The rule picks a known form from the static sizes alone (no host ISA), the same on every call."""
    from jaxlinear import functional

    for shape in [(1024, 8, 64, 64), (256, 32, 256, 256), (256, 32, 256, 1), (64, 100, 48, 16)]:
        for layout in ("batch_major", "member_major"):
            form = functional._nlinear_form(*shape, layout)
            assert form in functional._NLINEAR_FORMS
            assert functional._nlinear_form(*shape, layout) == form


def test_tall_kernel_gradient_contracts_the_batch_in_place():
    """A tall product (batch >= 32 x its feature dims) skips the transposed copy and stays exact."""
    import jax

    from jaxlinear.functional import _kernel_grad_in_place, matmul_tn

    assert _kernel_grad_in_place(4096, 128, 128)
    assert not _kernel_grad_in_place(4095, 128, 128)  # batch below 32 x the larger feature dim
    assert not _kernel_grad_in_place(8192, 64, 256)  # a feature dim below 128
    x, k, g = (
        RNG.standard_normal(s).astype(np.float32) for s in [(4096, 128), (128, 128), (4096, 128)]
    )

    def grads(x, k, g):
        _, vjp = jax.vjp(linear, x, k)
        return (*vjp(g), matmul_tn(x, g))

    hlo = jax.jit(grads).lower(x, k, g).as_text()  # dx, the kernel gradient, matmul_tn: 3 dots
    assert "optimization_barrier" not in hlo
    assert hlo.count("stablehlo.dot_general") == 3
    dx, dk, tn = jax.jit(grads)(x, k, g)
    # the forward error bound of a length-K fp32 dot product: K * eps * sum |x_i * g_i|
    for got, a, b, contract in ((dk, x.T, g, 4096), (tn, x.T, g, 4096), (dx, g, k.T, 128)):
        want = a.astype(np.float64) @ b.astype(np.float64)
        bound = contract * np.finfo(np.float32).eps * (np.abs(a) @ np.abs(b))
        assert np.all(np.abs(np.asarray(got, np.float64) - want) <= bound)
