"""Coordinate check: the size of every layer's activations across widths over a few training steps.

The μP sanity check of Microsoft ``mup`` (``get_coord_data`` / ``plot_coord_data``) for Flax models:
train the same model at several widths with the same data and optimizer recipe, and record the mean
absolute coordinate ``mean(|h|)`` of each submodule's output at every step. Under μP the curves are
flat in width; under the standard parametrization with a width-independent learning rate they grow
after the first step.
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxlinear._checks import check_positive_int

__all__ = ["CoordRecord", "coord_check", "plot_coord_check"]


class CoordRecord(NamedTuple):
    """``mean(|output|)`` of submodule ``layer`` at ``width`` before update number ``step`` (0: init).

    Attributes:
        width: the width the model was built with (``make_model(width)``).
        step: the number of updates taken before the record (0: at init).
        layer: the submodule's path in the model, ``"/"``-joined (``"Linear_0"``, ``"Block_0/Dense_1"``).
        l1: the mean absolute coordinate ``mean(|h|)`` of that submodule's output, a Python float.
    """

    width: int
    step: int
    layer: str
    l1: float


def _mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    return jnp.mean((outputs - targets) ** 2)


def _flatten_intermediates(tree: Any, prefix: tuple[str, ...] = ()) -> dict[str, jax.Array]:
    out = {}
    for name, value in tree.items():
        if name == "__call__":
            if prefix:  # the root's output is also the last layer's: skip it
                out["/".join(prefix)] = value[0]
        elif isinstance(value, dict):
            out.update(_flatten_intermediates(value, (*prefix, name)))
    return out


def coord_check(
    make_model: Callable[[int], nn.Module],
    widths: Sequence[int],
    inputs: jax.Array,
    targets: jax.Array,
    make_optimizer: Callable[[nn.Module, Any], optax.GradientTransformation],
    *,
    steps: int = 3,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array] = _mse,
    seed: int = 0,
) -> list[CoordRecord]:
    """Activation sizes per layer, width and step, on a fixed batch (mup's ``get_coord_data``).

    For each width the model is initialised with ``seed``, the optimizer built by
    ``make_optimizer(model, variables)`` (e.g. ``lambda m, v: jl.optim.adam(1e-2,
    jl.optim.lr_factors(m, v, optimizer="adam"))``),
    and ``steps`` full-batch steps are taken on ``(inputs, targets)``; before each step and after the
    last one, ``mean(|h|)`` of every submodule's output is recorded.

    Args:
        make_model: width -> Flax module.
        widths: the widths to compare (ints > 0).
        inputs: a fixed batch.
        targets: its targets.
        make_optimizer: ``(model, variables) -> optax.GradientTransformation``.
        steps: number of updates (records are taken at steps 0..steps).
        loss_fn: ``(outputs, targets) -> scalar``; mean squared error by default.
        seed: init seed.

    Returns:
        A list of :class:`CoordRecord`, ordered by width, step, layer.

    Example:
        >>> import flax.linen as nn, jax.numpy as jnp, jaxlinear as jl
        >>> class MLP(nn.Module):
        ...     width: int
        ...     @nn.compact
        ...     def __call__(self, x):
        ...         x = jnp.tanh(jl.Linear(self.width, parametrization="mup", layer_type="input")(x))
        ...         return jl.Linear(1, parametrization="mup", layer_type="output")(x)
        >>> x, y = jnp.ones((4, 3)), jnp.zeros((4, 1))
        >>> opt = lambda m, v: jl.optim.adam(1e-2, jl.optim.lr_factors(m, v, optimizer="adam"))
        >>> recs = coord_check(MLP, [8, 16], x, y, opt, steps=2)
        >>> len(recs), recs[0].width, recs[0].step, recs[0].layer
        (12, 8, 0, 'Linear_0')
    """
    check_positive_int("steps", steps, allow_zero=True)
    if len(widths) == 0:
        raise ValueError("`widths` must hold at least one width, got none.")
    for w in widths:
        check_positive_int("widths[i]", w)
    inputs, targets = jnp.asarray(inputs), jnp.asarray(targets)
    records: list[CoordRecord] = []
    for width in widths:
        model = make_model(width)
        variables = model.init(jax.random.key(seed), inputs)
        tx = make_optimizer(model, variables)
        rest = {k: v for k, v in variables.items() if k != "params"}

        def forward(params, model=model, rest=rest):
            out, state = model.apply(
                {"params": params, **rest}, inputs, capture_intermediates=True, mutable=True
            )
            return loss_fn(out, targets), _flatten_intermediates(state["intermediates"])

        @jax.jit
        def step(params, opt_state, forward=forward, tx=tx):
            (_, acts), grads = jax.value_and_grad(forward, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            sizes = {k: jnp.mean(jnp.abs(v)) for k, v in acts.items()}
            return optax.apply_updates(params, updates), opt_state, sizes

        params, opt_state = variables["params"], tx.init(variables["params"])
        for t in range(steps + 1):
            new_params, new_state, sizes = step(params, opt_state)
            records.extend(CoordRecord(width, t, k, float(v)) for k, v in sizes.items())
            params, opt_state = new_params, new_state
    return records


def plot_coord_check(
    records: Sequence[CoordRecord], *, title: str = "", axes: Any = None, logy: bool = True
) -> Any:
    """One panel per step: ``mean(|h|)`` vs width (log-log), one line per layer (mup's plot).

    Needs matplotlib.

    Args:
        records: the records of :func:`coord_check` (any widths, steps and layers).
        title: a title over all panels; none when empty.
        axes: a matplotlib ``Axes`` or a sequence of them, one per recorded step, to draw into;
            None creates a new figure with one panel per step.
        logy: whether the y axis (``mean(|h|)``) is logarithmic; the width axis always is (base 2).

    Returns:
        The matplotlib ``Figure`` holding the panels.

    Raises:
        ImportError: if matplotlib is not installed.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> recs = [CoordRecord(w, t, "Linear_0", 1.0) for w in (8, 16) for t in (0, 1)]
        >>> len(plot_coord_check(recs).axes)
        2
    """
    import matplotlib.pyplot as plt

    steps = sorted({r.step for r in records})
    layers = list(dict.fromkeys(r.layer for r in records))
    if axes is None:
        fig, axes = plt.subplots(1, len(steps), figsize=(3.2 * len(steps), 3), sharey=True)
    axes = list(axes) if hasattr(axes, "__len__") else [axes]
    fig = axes[0].figure
    for ax, t in zip(axes, steps, strict=False):
        for layer in layers:
            pts = sorted((r.width, r.l1) for r in records if r.step == t and r.layer == layer)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=layer)
        ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.set_title(f"step {t}")
        ax.set_xlabel("width")
    axes[0].set_ylabel("mean |activation|")
    axes[-1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
