"""``sgd``, ``adam``, ``adamw``: torch's optimizers as optax chains that consume :class:`Factors`.

After optax's ``alias.py``: each optimizer is a ``chain`` of small transforms, in torch's order:

- ``sgd``:   ``g + wd·f_wd·p`` → torch momentum → ``× f_lr`` → ``× -lr``
- ``adam``:  ``g + wd·f_wd·p`` → torch Adam → ``× f_lr`` → ``× -lr``          (coupled L2)
- ``adamw``: torch Adam → ``+ wd·f_wd·p`` → ``× f_lr`` → ``× -lr``             (decoupled)

so a parameter's decay follows its own learning rate ``lr · f_lr``, as in torch's param groups, and
with the references' factors the trajectories are the references' (inferno, mup, unit_scaling).
"""

from typing import Any

import optax

from jaxlinear._checks import check_bool
from jaxlinear.optim._factors import Factors
from jaxlinear.optim._hyperparams import check_hyperparam
from jaxlinear.optim._transforms import (
    add_decayed_weights_per_leaf,
    check_factor_tree,
    scale_by_learning_rate,
    scale_by_lr_factors,
    scale_by_torch_adam,
    torch_momentum,
)

__all__ = ["adam", "adamw", "sgd"]

ScalarOrSchedule = float | optax.Schedule | Any


def _check_factors(factors: Any) -> Factors | None:
    """None, or :class:`Factors` whose trees hold a finite number >= 0 per leaf."""
    if isinstance(factors, Factors):
        check_factor_tree("factors.lr", factors.lr)
        check_factor_tree("factors.weight_decay", factors.weight_decay)
        return factors
    if factors is None:
        return factors
    raise TypeError(
        "`factors` must be a jaxlinear.optim.Factors (from `lr_factors` or `mup_factors`; build one by "
        f"hand with Factors(lr_tree, weight_decay_tree)) or None, got {type(factors).__name__}."
    )


def _is_zero(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x == 0


def _decay(weight_decay: Any, factors: Factors | None) -> optax.GradientTransformation:
    if _is_zero(weight_decay):
        return optax.identity()
    return add_decayed_weights_per_leaf(
        weight_decay, None if factors is None else factors.weight_decay
    )


def _lr(learning_rate: Any, factors: Factors | None) -> optax.GradientTransformation:
    scaled = optax.identity() if factors is None else scale_by_lr_factors(factors.lr)
    return optax.chain(scaled, scale_by_learning_rate(learning_rate))


def _check_adam(learning_rate, b1, b2, eps, weight_decay) -> None:
    check_hyperparam("learning_rate", learning_rate, schedule=True)
    check_hyperparam("b1", b1, below=1.0)
    check_hyperparam("b2", b2, below=1.0)
    check_hyperparam("eps", eps)
    check_hyperparam("weight_decay", weight_decay)


def sgd(
    learning_rate: ScalarOrSchedule,
    factors: Factors | None = None,
    *,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> optax.GradientTransformation:
    """``torch.optim.SGD`` on per-parameter groups ``lr · factors.lr``, as an optax transformation.

    Weight decay is torch's coupled L2 (``g + weight_decay · factors.weight_decay · p`` before
    momentum); momentum is torch's (the first step's buffer is the gradient, undamped).

    Args:
        learning_rate: the base learning rate: a float, an optax schedule or a traced scalar
            (``optax.inject_hyperparams``, ``jax.vmap``).
        factors: per-parameter :class:`Factors` (:func:`lr_factors`, :func:`mup_factors`); None gives
            every parameter factor 1 (torch's plain SGD).
        momentum: torch's momentum, >= 0.
        dampening: torch's dampening, in [0, 1].
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``, as torch).
        weight_decay: coupled L2 coefficient, >= 0.

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params`` when ``weight_decay`` is set).

    Raises:
        ValueError: for a negative or NaN hyperparameter, ``dampening > 1``, or Nesterov without
            momentum or with dampening.
        TypeError: for a non-number, or ``factors`` that is not a :class:`Factors`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.Linear(3, parametrization="mup", layer_type="input")
        >>> v = layer.init(jax.random.key(0), jnp.ones((1, 5)))
        >>> tx = jl.optim.sgd(0.1, jl.optim.lr_factors(layer, v, optimizer="sgd"))
        >>> u, _ = tx.update(jax.tree.map(jnp.ones_like, v["params"]), tx.init(v["params"]))
        >>> round(float(u["kernel"][0, 0]), 4)  # -lr * fan_out
        -0.3
    """
    check_hyperparam("learning_rate", learning_rate, schedule=True)
    check_hyperparam("momentum", momentum)
    check_hyperparam("dampening", dampening, at_most=1.0)
    check_hyperparam("weight_decay", weight_decay)
    check_bool("nesterov", nesterov)
    if nesterov and (_is_zero(momentum) or not _is_zero(dampening)):
        raise ValueError(
            "`nesterov` needs a momentum > 0 and zero dampening (as torch), got "
            f"momentum={momentum!r}, dampening={dampening!r}."
        )
    factors = _check_factors(factors)
    return optax.chain(
        _decay(weight_decay, factors),
        optax.identity() if _is_zero(momentum) else torch_momentum(momentum, dampening, nesterov),
        _lr(learning_rate, factors),
    )


def adam(
    learning_rate: ScalarOrSchedule,
    factors: Factors | None = None,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> optax.GradientTransformation:
    """``torch.optim.Adam`` on per-parameter groups ``lr · factors.lr``, as an optax transformation.

    ``weight_decay`` is torch Adam's coupled L2: ``g + weight_decay · factors.weight_decay · p`` enters
    the moments (it is not ``optax.adamw``'s decoupled decay: use :func:`adamw` for that). The Adam
    step follows torch's operations (:func:`scale_by_torch_adam`).

    Args:
        learning_rate: the base learning rate: a float, an optax schedule or a traced scalar.
        factors: per-parameter :class:`Factors`; None gives every parameter factor 1 (torch's Adam).
        b1: first-moment decay, in [0, 1).
        b2: second-moment decay, in [0, 1).
        eps: added to the denominator, >= 0.
        weight_decay: coupled L2 coefficient, >= 0.

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params`` when ``weight_decay`` is set).

    Raises:
        ValueError: for a negative or NaN hyperparameter or a beta outside [0, 1).
        TypeError: for a non-number, or ``factors`` that is not a :class:`Factors`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.Linear(3, parametrization="mup")  # hidden: Adam lr / fan_in
        >>> v = layer.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> tx = jl.optim.adam(1e-2, jl.optim.lr_factors(layer, v, optimizer="adam"))
        >>> u, _ = tx.update(jax.tree.map(jnp.ones_like, v["params"]), tx.init(v["params"]))
        >>> round(float(u["kernel"][0, 0]), 6), round(float(u["bias"][0]), 6)
        (-0.0025, -0.01)
    """
    _check_adam(learning_rate, b1, b2, eps, weight_decay)
    factors = _check_factors(factors)
    return optax.chain(
        _decay(weight_decay, factors),
        scale_by_torch_adam(b1, b2, eps),
        _lr(learning_rate, factors),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    factors: Factors | None = None,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> optax.GradientTransformation:
    """``torch.optim.AdamW`` on per-parameter groups ``lr · factors.lr``, as an optax transformation.

    Decoupled decay as torch's AdamW: ``p <- p - lr_p · (adam + weight_decay · factors.weight_decay · p)``
    with each parameter's own ``lr_p = lr · factors.lr``, so its decay follows its learning rate. The
    default ``weight_decay`` is torch's 0.01 (``optax.adamw``'s is 1e-4).

    Args:
        learning_rate: the base learning rate: a float, an optax schedule or a traced scalar.
        factors: per-parameter :class:`Factors`; None gives every parameter factor 1 (torch's AdamW).
        b1: first-moment decay, in [0, 1).
        b2: second-moment decay, in [0, 1).
        eps: added to the denominator, >= 0.
        weight_decay: decoupled decay coefficient, >= 0.

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params`` when ``weight_decay`` is set).

    Raises:
        ValueError: for a negative or NaN hyperparameter or a beta outside [0, 1).
        TypeError: for a non-number, or ``factors`` that is not a :class:`Factors`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> p = {"w": jnp.ones((4, 2))}
        >>> tx = jl.optim.adamw(0.1, weight_decay=0.5)
        >>> u, _ = tx.update({"w": jnp.zeros((4, 2))}, tx.init(p), p)
        >>> round(float(u["w"][0, 0]), 6)  # only the decay: -lr * wd * p
        -0.05
    """
    _check_adam(learning_rate, b1, b2, eps, weight_decay)
    factors = _check_factors(factors)
    return optax.chain(
        scale_by_torch_adam(b1, b2, eps),
        _decay(weight_decay, factors),
        _lr(learning_rate, factors),
    )
