"""Microsoft ``mup``'s rules from base shapes: ``MuSGD``/``MuAdam``/``MuAdamW`` as optax chains.

mup compares each parameter's shape with its shape in a *base* model (``set_base_shapes``): a dim that
differs from the base is a "width" (infinite) dim with width multiplier ``dim / base_dim``. A parameter
with one width dim is vector-like, with two matrix-like. Then (torch group lr and weight decay):

============  =============================  ====================================
optimizer     vector-like (one width dim)    matrix-like (two width dims)
============  =============================  ====================================
MuSGD         lr × m, wd ÷ m                 lr ÷ (m_in / m_out), wd × (m_in / m_out)
MuAdam(W)     unchanged                      lr ÷ m_in, wd × m_in
============  =============================  ====================================

where ``m`` is the width multiplier of the parameter's (last, in torch layout) width dim and
``m_in``/``m_out`` those of a kernel's input/output dims. 2-D leaves are kernels in the JAX layout
``(in, out)``. The readout layer (``MuReadout``) also multiplies its input by
``output_mult / width_mult``: see :func:`jaxlinear.parametrizations.mup_readout_input`.
"""

from collections.abc import Mapping
from typing import Any

import jax
import optax

from jaxlinear._typing import PyTree
from jaxlinear.optim._parametrization import ScalarOrSchedule, scale_by_learning_rates
from jaxlinear.optim._weight_decay import add_decayed_weights_per_leaf
from jaxlinear.parametrizations import canonical_optimizer

__all__ = [
    "mup_adam",
    "mup_adamw",
    "mup_lr_scales",
    "mup_sgd",
    "mup_weight_decay_scales",
]


def _params(tree: Any) -> Any:
    return tree["params"] if isinstance(tree, Mapping) and "params" in tree else tree


def _infshape(path: str, shape: tuple[int, ...], base: tuple[int, ...]) -> list[float | None]:
    """Width multiplier of each dim in torch's layout (None: a finite dim)."""
    if len(shape) != len(base):
        raise ValueError(
            f"`base_params` must have the shapes' ranks: {path} has shape {shape}, base {base}."
        )
    if len(shape) > 2:
        raise ValueError(
            f"mup rules support 1-D and 2-D params (kernels (in, out)), got {path} of shape {shape}."
        )
    torch_shape, torch_base = shape[::-1], base[::-1]  # (in, out) -> torch's (out, in)
    return [None if b == d else d / b for d, b in zip(torch_shape, torch_base, strict=True)]


def _rule(params: PyTree, base_params: PyTree, optimizer: str, what: str) -> PyTree:
    rule = canonical_optimizer(optimizer)
    params, base_params = _params(params), _params(base_params)
    base_leaves = {
        jax.tree_util.keystr(k): tuple(getattr(v, "shape", v))
        for k, v in jax.tree_util.tree_flatten_with_path(
            base_params, is_leaf=lambda x: hasattr(x, "shape")
        )[0]
    }
    leaves = {
        jax.tree_util.keystr(k): tuple(v.shape)
        for k, v in jax.tree_util.tree_flatten_with_path(params)[0]
    }
    if set(base_leaves) != set(leaves):
        raise ValueError(
            "`base_params` must have the same parameters as `params`; missing "
            f"{sorted(set(leaves) - set(base_leaves))}, extra {sorted(set(base_leaves) - set(leaves))}."
        )

    def factor(key_path, leaf) -> float:
        name = jax.tree_util.keystr(key_path)
        mults = _infshape(name, tuple(leaf.shape), base_leaves[name])
        inf = [m for m in mults if m is not None]
        if not inf:
            return 1.0
        if rule == "SGD":
            if len(inf) == 1:
                return inf[0] if what == "lr" else 1.0 / inf[0]
            ratio = mults[1] / mults[0]  # fan-in mult / fan-out mult (torch layout (out, in))
            return 1.0 / ratio if what == "lr" else ratio
        if len(inf) == 2:
            m = inf[-1]  # the last width dim in torch layout: fan-in
            return 1.0 / m if what == "lr" else m
        return 1.0

    return jax.tree_util.tree_map_with_path(factor, params)


def mup_lr_scales(params: PyTree, base_params: PyTree, optimizer: str) -> PyTree:
    """The factor mup's ``MuSGD``/``MuAdam`` put on each parameter's learning rate.

    Args:
        params: the model's params (or variables).
        base_params: the base model's params (arrays or ``jax.ShapeDtypeStruct``s, e.g.
            ``jax.eval_shape(base_model.init, key, x)``), the same tree; only shapes are read.
        optimizer: ``"sgd"`` (MuSGD) or ``"adam"``/``"adamw"`` (MuAdam/MuAdamW).

    Example:
        >>> import jax.numpy as jnp
        >>> params = {"hidden": {"kernel": jnp.zeros((64, 64))}, "out": {"kernel": jnp.zeros((64, 3))}}
        >>> base = {"hidden": {"kernel": jnp.zeros((8, 8))}, "out": {"kernel": jnp.zeros((8, 3))}}
        >>> mup_lr_scales(params, base, "adam"), mup_lr_scales(params, base, "sgd")
        ({'hidden': {'kernel': 0.125}, 'out': {'kernel': 1.0}}, {'hidden': {'kernel': 1.0}, 'out': {'kernel': 8.0}})
    """
    return _rule(params, base_params, optimizer, "lr")


def mup_weight_decay_scales(params: PyTree, base_params: PyTree, optimizer: str) -> PyTree:
    """The factor mup's optimizers put on each parameter's weight decay (see :func:`mup_lr_scales`).

    Example:
        >>> import jax.numpy as jnp
        >>> p, b = {"w": jnp.zeros((64, 64))}, {"w": jnp.zeros((8, 8))}
        >>> mup_weight_decay_scales(p, b, "adamw")
        {'w': 8.0}
    """
    return _rule(params, base_params, optimizer, "weight_decay")


def _decay(params, base_params, optimizer, weight_decay: float) -> optax.GradientTransformation:
    if not weight_decay:
        return optax.identity()
    scales = mup_weight_decay_scales(params, base_params, optimizer)
    return add_decayed_weights_per_leaf(jax.tree.map(lambda s: weight_decay * s, scales))


def mup_sgd(
    params: PyTree,
    base_params: PyTree,
    learning_rate: ScalarOrSchedule,
    *,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> optax.GradientTransformation:
    """``mup.MuSGD(model.parameters(), lr, momentum, weight_decay=...)`` in optax (coupled L2).

    Example:
        >>> import jax.numpy as jnp
        >>> p, b = {"w": jnp.ones((8, 64))}, {"w": jnp.ones((8, 8))}  # input layer: lr x 8
        >>> tx = mup_sgd(p, b, 0.1)
        >>> round(float(tx.update(p, tx.init(p), p)[0]["w"][0, 0]), 4)
        -0.8
    """
    return optax.chain(
        _decay(params, base_params, "SGD", weight_decay),
        optax.trace(decay=momentum, nesterov=nesterov) if momentum else optax.identity(),
        scale_by_learning_rates(mup_lr_scales(params, base_params, "SGD"), learning_rate),
    )


def mup_adam(
    params: PyTree,
    base_params: PyTree,
    learning_rate: ScalarOrSchedule,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> optax.GradientTransformation:
    """``mup.MuAdam(model.parameters(), lr, weight_decay=...)`` in optax (torch Adam's coupled L2).

    Example:
        >>> import jax.numpy as jnp
        >>> p, b = {"w": jnp.ones((64, 64))}, {"w": jnp.ones((8, 8))}
        >>> tx = mup_adam(p, b, 0.1)
        >>> round(float(tx.update(p, tx.init(p), p)[0]["w"][0, 0]), 4)  # lr / 8
        -0.0125
    """
    return optax.chain(
        _decay(params, base_params, "Adam", weight_decay),
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        scale_by_learning_rates(mup_lr_scales(params, base_params, "Adam"), learning_rate),
    )


def mup_adamw(
    params: PyTree,
    base_params: PyTree,
    learning_rate: ScalarOrSchedule,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> optax.GradientTransformation:
    """``mup.MuAdamW(model.parameters(), lr, weight_decay=...)`` in optax (decoupled, torch's 0.01).

    A matrix-like parameter gets lr ÷ m and wd × m, so its decay per step is ``lr * wd``, the same at
    every width.

    Example:
        >>> import jax.numpy as jnp
        >>> p, b = {"w": jnp.ones((64, 64))}, {"w": jnp.ones((8, 8))}
        >>> tx = mup_adamw(p, b, 0.1, weight_decay=0.0)
        >>> round(float(tx.update(p, tx.init(p), p)[0]["w"][0, 0]), 4)
        -0.0125
    """
    return optax.chain(
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        _decay(params, base_params, "Adam", weight_decay),
        scale_by_learning_rates(mup_lr_scales(params, base_params, "Adam"), learning_rate),
    )
