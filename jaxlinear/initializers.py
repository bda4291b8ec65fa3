"""Initializers with torch's distributions: factories returning ``(key, shape, dtype) -> Array``.

JAX cannot reproduce torch's random stream, so these match the *distribution* (the same bounds);
exact weights travel through :mod:`jaxlinear.interop`.
"""

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_choice, check_positive_int, check_real
from jaxlinear._typing import Array, Dtype, Initializer, PRNGKey, Shape
from jaxlinear.parametrizations import LAYER_TYPES, get_parametrization

__all__ = ["layer_inits", "normal", "torch_uniform", "torch_uniform_bound"]


def torch_uniform_bound(fan_in: int) -> float:
    """The bound ``1/√fan_in`` of ``torch.nn.Linear``'s init, 0.0 when ``fan_in == 0``.

    Args:
        fan_in: the layer's number of input features, a Python int >= 0.

    Returns:
        The bound as a Python float (0.0 for ``fan_in == 0``).

    Raises:
        TypeError: if ``fan_in`` is not an int.
        ValueError: if ``fan_in`` is negative (torch cannot create such a layer).

    Example:
        >>> torch_uniform_bound(4)
        0.5
    """
    check_positive_int("fan_in", fan_in, allow_zero=True)
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def torch_uniform(fan_in: int) -> Initializer:
    """U(±1/√fan_in): ``torch.nn.Linear``'s kernel and bias init and ``delu.nn.NLinear``'s.

    ``torch.nn.Linear`` reaches this bound through ``kaiming_uniform_(a=√5)`` (kernel) and
    ``1/√fan_in`` (bias); both round to the same float32. With ``fan_in == 0`` the values are zeros
    (torch's bias; its empty kernel has no values).

    Args:
        fan_in: the layer's number of input features, a Python int >= 0.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` drawing uniformly from
        ``[-1/√fan_in, 1/√fan_in)``; ``shape`` may be anything (kernel ``(in, out)`` or bias ``(out,)``).

    Raises:
        TypeError: if ``fan_in`` is not an int (a bool, a float).
        ValueError: if ``fan_in`` is negative.

    Example:
        >>> init = torch_uniform(16)
        >>> w = init(jax.random.key(0), (16, 3))
        >>> w.shape, bool((jnp.abs(w) <= 0.25).all())
        ((16, 3), True)
    """
    bound = torch_uniform_bound(fan_in)

    def init(key: PRNGKey, shape: Shape, dtype: Dtype = jnp.float32) -> Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def normal(std: float) -> Initializer:
    """N(0, std²), untruncated: inferno-torch's ``nn.init.normal_(p, 0, std)`` (parametrized layers).

    Unlike ``jax.nn.initializers.lecun_normal`` (a *truncated* normal), values beyond 2 std occur, as
    they do in torch's ``normal_``.

    Args:
        std: the standard deviation, a finite real number >= 0 (0 gives zeros).

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` drawing ``std * N(0, 1)``
        in ``dtype``.

    Raises:
        TypeError: if ``std`` is not a real number (a string, a bool).
        ValueError: if ``std`` is negative, inf or NaN.

    Example:
        >>> w = normal(0.5)(jax.random.key(0), (256, 64))
        >>> w.shape, round(float(w.std()), 1)  # 16384 draws: within 0.5 ± 0.05 for any key
        ((256, 64), 0.5)
    """
    std = check_real("std", std, min_value=0.0)

    def init(key: PRNGKey, shape: Shape, dtype: Dtype = jnp.float32) -> Array:
        return jax.random.normal(key, shape, dtype) * std  # a Python float keeps `dtype`

    return init


def layer_inits(
    parametrization: Any, fan_in: int, fan_out: int, layer_type: str = "hidden"
) -> tuple[Initializer, Initializer]:
    """The kernel and bias initializers of a dense layer (or of one ``NLinear`` member).

    Without a parametrization both are torch's U(±1/√fan_in) (:func:`torch_uniform`); with one they
    are N(0, s²) with inferno's ``weight_init_scale`` / ``bias_init_scale`` for the fans and
    ``layer_type``. The scales are computed only when the initializer runs (``apply`` never does).

    Args:
        parametrization: None, or a :class:`~jaxlinear.parametrizations.Parametrization` or its name
            (``"sp"``, ``"ntp"``, ``"mup"``).
        fan_in: the layer's input size (per member for ``NLinear``).
        fan_out: its output size.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``.

    Returns:
        ``(kernel_init, bias_init)``, each ``init(key, shape, dtype) -> Array``.

    Raises:
        TypeError, ValueError: for a bad parametrization (as
            :func:`~jaxlinear.parametrizations.get_parametrization`) or ``layer_type``.

    Example:
        >>> k_init, _ = layer_inits("mup", 256, 8, "output")
        >>> round(float(k_init(jax.random.key(0), (256, 8)).std()) * 256, 1)  # std 1 / fan_in
        1.0
    """
    check_choice("layer_type", layer_type, LAYER_TYPES)
    if parametrization is None:
        init = torch_uniform(fan_in)
        return init, init
    p = get_parametrization(parametrization)

    def kernel_init(key: PRNGKey, shape: Shape, dtype: Dtype = jnp.float32) -> Array:
        return normal(p.weight_init_scale(fan_in, fan_out, layer_type))(key, shape, dtype)

    def bias_init(key: PRNGKey, shape: Shape, dtype: Dtype = jnp.float32) -> Array:
        return normal(p.bias_init_scale(fan_in, fan_out, layer_type))(key, shape, dtype)

    return kernel_init, bias_init
