"""jl.optim.coord_check on the v2 API: flat activations under μP, growing under SP."""

import flax.linen as nn
import jax.numpy as jnp
import pytest

import jaxlinear as jl
from jaxlinear.parametrizations import MaximalUpdate, Standard


def _adam(model, variables):
    return jl.optim.adam(3e-2, jl.optim.lr_factors(model, variables, optimizer="adam"))


def test_coord_check_mup_flat_sp_grows():
    x = jnp.linspace(-1, 1, 64).reshape(32, 2)
    y = jnp.sin(3 * x[:, :1])
    widths = [32, 512]

    def growth(p):
        class Model(nn.Module):
            width: int

            @nn.compact
            def __call__(self, x):
                x = jnp.tanh(jl.Linear(self.width, parametrization=p, layer_type="input")(x))
                x = jnp.tanh(jl.Linear(self.width, parametrization=p)(x))
                return jl.Linear(1, parametrization=p, layer_type="output")(x)

        recs = jl.optim.coord_check(Model, widths, x, y, _adam, steps=2)
        assert {(r.width, r.step) for r in recs} == {(w, t) for w in widths for t in range(3)}
        l1 = {r.width: r.l1 for r in recs if r.step == 2 and r.layer == "Linear_1"}
        return l1[512] / l1[32]

    assert growth(Standard()) > 3.0  # SP: hidden activations grow with width after updates
    assert 0.7 < growth(MaximalUpdate()) < 1.3  # muP: flat


def test_coord_check_validates_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    with pytest.raises(ValueError, match=r"`widths\[i\]` must be an int > 0"):
        jl.optim.coord_check(lambda w: jl.Linear(w), [0], jnp.ones((2, 5)), jnp.ones((2, 3)), _adam)
    recs = [jl.optim.CoordRecord(w, t, "Linear_0", 1.0 + t) for w in (8, 16) for t in range(3)]
    fig = jl.optim.plot_coord_check(recs, title="x")
    assert len(fig.axes) == 3
    matplotlib.pyplot.close(fig)
