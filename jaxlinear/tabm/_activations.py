"""The ``activation`` names of tabm's backbones (attributes of ``torch.nn``) as JAX functions."""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_choice
from jaxlinear._typing import Array

__all__ = ["ACTIVATIONS", "get_activation"]


def _identity(x: Array) -> Array:
    return x


def _mish(x: Array) -> Array:
    return x * jnp.tanh(jax.nn.softplus(x))


#: ``torch.nn`` activation class name -> the JAX function with torch's default arguments
#: (``GELU`` exact, ``LeakyReLU`` slope 0.01, ``ELU`` alpha 1).
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "ReLU": jax.nn.relu,
    "GELU": functools.partial(jax.nn.gelu, approximate=False),
    "SiLU": jax.nn.silu,
    "Mish": _mish,
    "ELU": jax.nn.elu,
    "SELU": jax.nn.selu,
    "LeakyReLU": functools.partial(jax.nn.leaky_relu, negative_slope=0.01),
    "Tanh": jnp.tanh,
    "Sigmoid": jax.nn.sigmoid,
    "Softplus": jax.nn.softplus,
    "Identity": _identity,
}


def get_activation(name: str) -> Callable[[Array], Array]:
    """The activation function for a ``torch.nn`` class name (``"ReLU"``, ``"GELU"``, ...).

    Args:
        name: a key of :data:`ACTIVATIONS`.

    Returns:
        The elementwise function.

    Raises:
        ValueError: for a name not in :data:`ACTIVATIONS` (the message lists them).

    Example:
        >>> get_activation("ReLU")(jnp.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    check_choice("activation", name, tuple(ACTIVATIONS))
    return ACTIVATIONS[name]
