"""Per-parameter learning rates of a parametrized Flax model (inferno's ``parameters_and_lrs``).

:func:`lr_scales` reads every :class:`jaxlinear.Linear` of a model (its ``parametrization``,
``layer_type`` and kernel shape) and returns one Python float per parameter: the factor inferno's
``parameters_and_lrs(lr, optimizer)`` puts on the base learning rate of the same parameter.
:func:`parametrized_sgd`, :func:`parametrized_adam` and :func:`parametrized_adamw` build the whole
optimizer in one line, with torch's weight-decay conventions.
"""

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxlinear._typing import PyTree
from jaxlinear.nn import Linear
from jaxlinear.optim._lr_factors import scale_by_lr_factors
from jaxlinear.parametrizations import canonical_optimizer, get_parametrization

__all__ = [
    "lr_scales",
    "parametrized_adam",
    "parametrized_adamw",
    "parametrized_sgd",
    "scale_by_learning_rates",
]

ScalarOrSchedule = float | Callable[[jax.Array], jax.Array]


def _params_of(variables: Any) -> Mapping[str, Any]:
    if not isinstance(variables, Mapping) or "params" not in variables:
        kind = sorted(variables) if isinstance(variables, Mapping) else type(variables).__name__
        raise ValueError(
            "`variables` must be the model's variables, a mapping with a 'params' collection (what "
            f"`module.init` returns), got {kind}."
        )
    return variables["params"]


def _subtree(params: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any] | None:
    node: Any = params
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            return None
        node = node[name]
    return node if isinstance(node, Mapping) else None


def _first_kernels(params: Mapping[str, Any]) -> list[int]:
    """Input sizes of the 2-D kernels in creation order (dicts keep it): candidate input widths."""
    sizes: list[int] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            kernel = node.get("kernel")
            if kernel is not None and len(getattr(kernel, "shape", ())) == 2:
                if kernel.shape[0] not in sizes:
                    sizes.append(int(kernel.shape[0]))
            for value in node.values():
                walk(value)

    walk(params)
    return sizes


def _linear_layers(
    module: nn.Module, variables: Mapping[str, Any], args: tuple, kwargs: dict
) -> dict[tuple[str, ...], Linear]:
    """Every :class:`jaxlinear.Linear` the model calls, by its path in ``params``."""
    if isinstance(module, Linear):
        return {(): module}
    found: dict[tuple[str, ...], Linear] = {}

    def interceptor(next_fun, call_args, call_kwargs, context):
        if isinstance(context.module, Linear) and context.method_name == "__call__":
            found[tuple(context.module.path)] = context.module
        return next_fun(*call_args, **call_kwargs)

    def trace(*inputs: Any, **kw: Any) -> None:
        # array-like positional inputs are traced abstractly; everything else stays static
        is_array = [hasattr(a, "shape") and hasattr(a, "dtype") for a in inputs]
        arrays = [a for a, flag in zip(inputs, is_array, strict=True) if flag]

        def run(v, *traced):
            it = iter(traced)
            call = [next(it) if flag else a for a, flag in zip(inputs, is_array, strict=True)]
            with nn.intercept_methods(interceptor):
                return module.apply(v, *call, **kw, mutable=True, rngs={"dropout": _KEY})

        jax.eval_shape(run, variables, *arrays)

    if args or kwargs:
        trace(*args, **kwargs)
        return found
    # No example inputs: probe with a batch of one row of each candidate input width (the first
    # kernel's input size works for MLP-like models, the common case).
    errors = []
    for n_in in _first_kernels(_params_of(variables)):
        found.clear()
        try:
            trace(jax.ShapeDtypeStruct((1, n_in), jnp.float32))
            return found
        except Exception as err:  # noqa: BLE001 - reported below if no probe works
            errors.append(f"(1, {n_in}): {type(err).__name__}: {err}")
    raise ValueError(
        f"lr_scales could not call {type(module).__name__} to find its jaxlinear.Linear layers; pass "
        "example inputs after the optimizer: `lr_scales(module, variables, optimizer, x)`. Probes "
        f"tried: {errors or 'none (no 2-D kernel in params)'}."
    )


_KEY = jax.random.key(0)


def lr_scales(
    module: nn.Module, variables: PyTree, optimizer: str, *example_args: Any, **example_kwargs: Any
) -> PyTree:
    """The learning-rate factor of every parameter of ``module``, as inferno's ``parameters_and_lrs``.

    For each :class:`jaxlinear.Linear` with a parametrization ``p`` and kernel ``(fan_in, fan_out)``,
    the kernel gets ``p.weight_lr_scale(fan_in, fan_out, optimizer, layer_type)`` and the bias
    ``p.bias_lr_scale(...)``: the same floats as inferno's ``parameters_and_lrs(1.0, optimizer)``
    groups for the same layers. Every other parameter gets 1.0: layers without a parametrization,
    and norm layers. (inferno drops LayerNorm/GroupNorm/BatchNorm parameters from its groups, so a
    torch optimizer built from them never updates them; jaxlinear deliberately trains them at the base
    learning rate.)

    The layers are found by tracing ``module.apply`` (shapes only, nothing is computed) with the
    example inputs, or, without them, with a ``(1, in)`` probe built from the first kernel's input
    size, which suffices for models whose first layer is a Linear.

    Args:
        module: a Flax linen module (a :class:`jaxlinear.Linear`, an MLP, nested submodules...).
        variables: its variables (``module.init(...)`` or ``jl.interop.from_torch(...)``).
        optimizer: ``"SGD"``/``"sgd"`` or ``"Adam"``/``"adam"``/``"AdamW"``/``"adamw"`` (see
            :mod:`jaxlinear.parametrizations`).
        *example_args: inputs for ``module.apply`` (optional; see above).
        **example_kwargs: keyword inputs for ``module.apply``.

    Returns:
        A pytree with the structure of ``variables["params"]`` and a Python float per leaf.

    Raises:
        UnknownOptimizerError: for an unknown optimizer name (a ``ValueError``).
        NotImplementedError: where inferno raises (``NeuralTangent`` with Adam).

    Example:
        >>> import flax.linen as nn, jax, jax.numpy as jnp, jaxlinear as jl
        >>> class MLP(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x):
        ...         x = nn.tanh(jl.Linear(64, parametrization="mup", layer_type="input")(x))
        ...         x = nn.tanh(jl.Linear(64, parametrization="mup")(x))
        ...         return jl.Linear(4, parametrization="mup", layer_type="output")(x)
        >>> model = MLP()
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 8)))
        >>> jl.optim.lr_scales(model, variables, "adam")
        {'Linear_0': {'bias': 1.0, 'kernel': 1.0}, 'Linear_1': {'bias': 1.0, 'kernel': 0.015625}, 'Linear_2': {'bias': 1.0, 'kernel': 0.015625}}
    """
    canonical_optimizer(optimizer)  # one error for a bad name, whatever the model holds
    params = _params_of(variables)
    layers = _linear_layers(module, variables, example_args, example_kwargs)
    factors: dict[tuple[str, ...], float] = {}
    for path, layer in layers.items():
        if layer.parametrization is None:
            continue
        p = get_parametrization(layer.parametrization)
        leaves = _subtree(params, path)
        if leaves is None or "kernel" not in leaves:
            raise ValueError(f"`variables['params']` has no kernel for the Linear at {path}.")
        fan_in, fan_out = (int(d) for d in leaves["kernel"].shape)
        # weight first, as inferno: NeuralTangent + Adam raises before any bias rule runs
        factors[(*path, "kernel")] = p.weight_lr_scale(fan_in, fan_out, optimizer, layer.layer_type)
        if "bias" in leaves:
            factors[(*path, "bias")] = p.bias_lr_scale(fan_in, fan_out, optimizer, layer.layer_type)

    def factor(key_path, leaf) -> float:
        del leaf
        names = tuple(getattr(k, "key", getattr(k, "name", k)) for k in key_path)
        return factors.get(names, 1.0)

    return jax.tree_util.tree_map_with_path(factor, params)


def scale_by_learning_rates(
    factors: PyTree, learning_rate: ScalarOrSchedule
) -> optax.GradientTransformation:
    """``u -> -learning_rate * factor * u`` per leaf: the per-parameter learning rates of torch groups.

    With a constant ``learning_rate`` each leaf is multiplied once by the Python float
    ``-learning_rate * factor`` (torch's group lr, rounded once as torch does); with a schedule, by the
    factor and then by ``-learning_rate(step)`` (torch's schedulers scale every group's lr alike).

    Example:
        >>> import jax.numpy as jnp
        >>> tx = scale_by_learning_rates({"w": 4.0}, 0.5)
        >>> u, _ = tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))
        >>> u["w"].tolist()
        [-2.0, -2.0]
    """
    if callable(learning_rate):
        return optax.chain(
            scale_by_lr_factors(factors), optax.scale_by_learning_rate(learning_rate)
        )
    lr = float(learning_rate)
    return scale_by_lr_factors(jax.tree.map(lambda s: -lr * s, factors))


def _scales(module, variables, optimizer, example_inputs) -> PyTree:
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    return lr_scales(module, variables, optimizer, *args)


def parametrized_sgd(
    module: nn.Module,
    variables: PyTree,
    learning_rate: ScalarOrSchedule,
    *,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    example_inputs: Any = (),
) -> optax.GradientTransformation:
    """``torch.optim.SGD(model.parameters_and_lrs(lr, "SGD"), lr, momentum, weight_decay=...)`` in optax.

    Weight decay is torch's coupled L2 (``g += weight_decay * p`` before momentum), applied to every
    parameter with the same coefficient: inferno's groups carry no ``weight_decay``, so torch's
    constructor value applies to all of them, and each parameter's decay step is then scaled by its
    own learning rate, exactly as in torch.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.Linear(3, parametrization=jl.parametrizations.MaximalUpdate(), layer_type="input")
        >>> v = layer.init(jax.random.key(0), jnp.ones((1, 5)))
        >>> tx = jl.optim.parametrized_sgd(layer, v, 0.1)
        >>> u, _ = tx.update(jax.tree.map(jnp.ones_like, v["params"]), tx.init(v["params"]))
        >>> round(float(u["kernel"][0, 0]), 4)  # -lr * fan_out
        -0.3
    """
    scales = _scales(module, variables, "SGD", example_inputs)
    return optax.chain(
        optax.add_decayed_weights(weight_decay) if weight_decay else optax.identity(),
        optax.trace(decay=momentum, nesterov=nesterov) if momentum else optax.identity(),
        scale_by_learning_rates(scales, learning_rate),
    )


def parametrized_adam(
    module: nn.Module,
    variables: PyTree,
    learning_rate: ScalarOrSchedule,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    example_inputs: Any = (),
) -> optax.GradientTransformation:
    """``torch.optim.Adam(model.parameters_and_lrs(lr, "Adam"), ...)`` in optax.

    ``weight_decay`` is torch Adam's coupled L2: ``g += weight_decay * p`` *before* the Adam
    normalisation (so it is not ``optax.adamw``'s decoupled decay), for every parameter.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.Linear(3, parametrization="mup")  # hidden: Adam lr / fan_in
        >>> v = layer.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> tx = jl.optim.parametrized_adam(layer, v, 1e-2)
        >>> u, _ = tx.update(jax.tree.map(jnp.ones_like, v["params"]), tx.init(v["params"]))
        >>> round(float(u["kernel"][0, 0]), 6), round(float(u["bias"][0]), 6)
        (-0.0025, -0.01)
    """
    scales = _scales(module, variables, "Adam", example_inputs)
    return optax.chain(
        optax.add_decayed_weights(weight_decay) if weight_decay else optax.identity(),
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        scale_by_learning_rates(scales, learning_rate),
    )


def parametrized_adamw(
    module: nn.Module,
    variables: PyTree,
    learning_rate: ScalarOrSchedule,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    example_inputs: Any = (),
) -> optax.GradientTransformation:
    """``torch.optim.AdamW(model.parameters_and_lrs(lr, "Adam"), ...)`` in optax.

    Decoupled decay as torch's AdamW: ``p <- p - lr_p * (adam + weight_decay * p)`` with each
    parameter's own ``lr_p = lr * factor``, so the decay of a parameter follows its learning rate (the
    decay is added after Adam and before the per-parameter learning rate). The default
    ``weight_decay`` is torch's 0.01 (optax's ``adamw`` uses 1e-4).

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.Linear(3, parametrization="mup")
        >>> v = layer.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> tx = jl.optim.parametrized_adamw(layer, v, 1e-2, weight_decay=0.0)
        >>> u, _ = tx.update(jax.tree.map(jnp.ones_like, v["params"]), tx.init(v["params"]), v["params"])
        >>> round(float(u["kernel"][0, 0]), 6)
        -0.0025
    """
    scales = _scales(module, variables, "Adam", example_inputs)
    return optax.chain(
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        optax.add_decayed_weights(weight_decay) if weight_decay else optax.identity(),
        scale_by_learning_rates(scales, learning_rate),
    )
