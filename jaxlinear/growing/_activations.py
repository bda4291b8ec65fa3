"""The one activation table of ``jl.growing``: names, functions and σ'(0⁺) (gromo's table).

An activation is a name of :data:`ACTIVATIONS` or any JAX callable ``f(array) -> array`` applied
elementwise. TINY's first-order improvement needs σ'(0⁺), the right derivative at 0 of the activation
*before* the grown layer: for the names (and the JAX functions they stand for) it is gromo's table
``gromo.utils.utils.known_activations_zero_plus_gradient``; for any other callable it is
``jax.grad(f)(1e-5)`` in float32 (gromo differentiates unknown modules numerically at the same point
``GRADIENT_COMPUTATION_EPSILON = 1e-5``, with a warning; here autodiff, without one).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import Array

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_GRADIENT_AT_ZERO",
    "activation_function",
    "activation_gradient_at_zero",
    "check_activation",
]

# gromo's GRADIENT_COMPUTATION_EPSILON: the point where unknown activations are differentiated.
ZERO_PLUS = 1e-5


def _identity(x: Array) -> Array:
    return x


def _gelu(x: Array) -> Array:
    return jax.nn.gelu(x, approximate=False)  # torch.nn.GELU() is the exact erf form


#: The activation names and their JAX functions (torch's GELU is the exact erf form).
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "gelu": _gelu,
    "selu": jax.nn.selu,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "identity": _identity,
}

#: σ'(0⁺) by name, gromo's ``known_activations_zero_plus_gradient`` (SELU rounded as gromo does).
ACTIVATION_GRADIENT_AT_ZERO: dict[str, float] = {
    "relu": 1.0,
    "gelu": 0.5,
    "selu": 1.0507,
    "silu": 0.5,
    "tanh": 1.0,
    "sigmoid": 0.25,
    "identity": 1.0,
}

# The JAX functions the names stand for (so ``jnp.tanh`` gets gromo's exact table value 1.0).
_NAME_OF: dict[Any, str] = {fn: name for name, fn in ACTIVATIONS.items()}
_NAME_OF.update({jax.nn.swish: "silu", jax.numpy.tanh: "tanh", jax.lax.tanh: "tanh"})


def check_activation(name: str, activation: Any) -> None:
    """Raise unless ``activation`` is a known name or a callable (the message lists the names)."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"`{name}` must be one of {tuple(ACTIVATIONS)} or a JAX callable, "
                f"got {activation!r}."
            )
    elif not callable(activation):
        raise TypeError(
            f"`{name}` must be one of {tuple(ACTIVATIONS)} or a JAX callable, "
            f"got {type(activation).__name__} {activation!r}."
        )


def activation_function(activation: str | Callable[[Array], Array]) -> Callable[[Array], Array]:
    """The function of an activation name, or the callable itself.

    Example:
        >>> activation_function("relu")(jnp.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    check_activation("activation", activation)
    return ACTIVATIONS[activation] if isinstance(activation, str) else activation


def activation_gradient_at_zero(activation: str | Callable[[Array], Array]) -> float:
    """σ'(0⁺): gromo's table for the names and their JAX functions, else autodiff at ``1e-5``.

    Args:
        activation: a name of :data:`ACTIVATIONS` or a JAX callable.

    Example:
        >>> activation_gradient_at_zero("sigmoid"), activation_gradient_at_zero(jnp.tanh)
        (0.25, 1.0)
        >>> round(activation_gradient_at_zero(jax.nn.softplus), 4)
        0.5
    """
    check_activation("activation", activation)
    name = activation if isinstance(activation, str) else _NAME_OF.get(activation)
    if name is not None:
        return ACTIVATION_GRADIENT_AT_ZERO[name]
    assert not isinstance(activation, str)  # check_activation accepts only the names above
    with jax.ensure_compile_time_eval():
        value = jax.grad(lambda z: jnp.sum(activation(z)))(jnp.float32(ZERO_PLUS))
    value = float(np.asarray(value))
    if not np.isfinite(value):
        raise ValueError(
            f"`activation` must be differentiable at 0⁺ (its gradient at {ZERO_PLUS} is {value})."
        )
    return value
