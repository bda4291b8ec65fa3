"""``GrowableLinear``: a :class:`jaxlinear.Linear` stored at a capacity, the layer of a ``GrowingMLP``.

It *is* a ``jl.Linear`` (a subclass), so every whole-model workflow treats it as one: the walker
finds it, :func:`jaxlinear.optim.lr_factors` asks its ``lr_rule`` (torch's factor 1 without a
parametrization, inferno's with one), :func:`jaxlinear.quantization.quantize` quantizes it and
:mod:`jaxlinear.interop` converts it with ``torch.nn.Linear``'s converter. What it adds: the params
may be stored larger than the active block (``active_in`` / ``active_out``), the init draws the
active block (torch's or the parametrization's) and zero-pads the rest, and a layer with no input
(``in == 0``) outputs zeros whatever its bias (gromo's rule).
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxlinear._checks import check_layer_params, check_positive_int
from jaxlinear._typing import Array, Initializer
from jaxlinear.layers import (
    check_linear_input,
    dense_inits,
)
from jaxlinear.nn import Linear
from jaxlinear.nn._params import declare, existing

__all__ = ["GrowableLinear", "no_input_zeros"]


def no_input_zeros(x: Array, features: int) -> Array:
    """gromo's output of a layer with no input: zeros ``(..., features)`` in ``x``'s dtype.

    gromo's ``GrowingModule`` returns zeros, not its bias, when its input has no features; every
    growing forward (the model's, the extended one) uses this one rule.

    Args:
        x: the layer's input ``(..., 0)``.
        features: the layer's output size.

    Returns:
        Zeros ``(..., features)``.

    Example:
        >>> no_input_zeros(jnp.ones((2, 0)), 3).shape
        (2, 3)
    """
    return jnp.zeros((*x.shape[:-1], features), x.dtype)


def _padded(init: Initializer, active: tuple[int, ...]) -> Callable[..., Any]:
    """``init`` drawn at the ``active`` shape, zero-padded at the end of every axis to the stored one."""

    def padded(key: Any, shape: Any, dtype: Any = jnp.float32) -> Array:
        values = init(key, active, dtype)
        return jnp.pad(values, [(0, s - a) for s, a in zip(shape, active, strict=True)])

    return padded


class GrowableLinear(Linear):
    """A :class:`jaxlinear.Linear` whose params are stored at a capacity, the active block first.

    The kernel ``(in, features)`` and bias ``(features,)`` are stored at the input's width ``in``
    and ``features``; ``init`` draws the block ``(active_in, active_out)`` from the layer's init
    (torch's U(±1/√active_in), the parametrization's, or ``kernel_init`` / ``bias_init``) and pads
    the rest with zeros, so the inactive neurons start at zero. The forward is ``jl.Linear``'s on
    the stored params, except that a layer with no input (``in == 0``) outputs zeros whatever its
    bias (gromo). Masking inactive neurons is the model's job (:class:`~jaxlinear.growing.GrowingMLP`
    keeps the active widths); this layer is a plain ``jl.Linear`` for every workflow
    (``lr_factors``, ``quantize``, ``from_torch``).

    Unlike ``jl.Linear``, ``features`` may be 0 (an empty hidden layer of a growth net).

    Attributes:
        active_in: the input width the init draws at; None: the input's width.
        active_out: the output width the init draws at (``<= features``); None: ``features``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.growing.GrowableLinear(4, active_in=2, active_out=3)
        >>> v = layer.init(jax.random.key(0), jnp.ones((1, 5)))
        >>> v["params"]["kernel"].shape, bool((v["params"]["kernel"][2:] == 0).all())
        ((5, 4), True)
        >>> layer.apply(v, jnp.ones((1, 5))).shape
        (1, 4)
    """

    active_in: int | None = None
    active_out: int | None = None

    def __post_init__(self) -> None:
        if self.active_in is not None:
            check_positive_int("active_in", self.active_in, allow_zero=True)
        if self.active_out is not None:
            check_positive_int("active_out", self.active_out, allow_zero=True)
            if self.active_out > self.features:
                raise ValueError(
                    f"`active_out` must be <= features={self.features}, got {self.active_out}."
                )
        check_positive_int("features", self.features, allow_zero=True)  # an empty hidden layer
        # the other checks of jl.Linear's fields (dot_general included), 0 features allowed
        self.check_settings(max(self.features, 1), self.kernel_init, self.bias_init)
        nn.Module.__post_init__(self)  # jl.Linear's own check refuses 0 features

    @nn.compact
    def __call__(self, x: Array) -> Array:
        stored = existing(self, "kernel")
        x = check_linear_input(x, None if stored is None else stored.shape)
        check_layer_params(self, self.use_bias)
        n_in = x.shape[-1]
        a_in = n_in if self.active_in is None else self.active_in
        a_out = self.features if self.active_out is None else self.active_out
        if a_in > n_in:
            raise ValueError(f"`active_in` must be <= the input's width {n_in}, got {a_in}.")
        kernel_init, bias_init = dense_inits(
            self.parametrization, a_in, a_out, self.layer_type, self.kernel_init, self.bias_init
        )
        axes = self.param_axes()
        kernel = declare(
            self,
            "kernel",
            _padded(kernel_init, (a_in, a_out)),
            axes["kernel"],
            (n_in, self.features),
            self.param_dtype,
        )
        bias = (
            declare(
                self,
                "bias",
                _padded(bias_init, (a_out,)),
                axes["bias"],
                (self.features,),
                self.param_dtype,
            )
            if self.use_bias
            else None
        )
        y = self.forward(x, kernel, bias)  # jl.Linear's (its dot_general, if any)
        return jnp.zeros_like(y) if n_in == 0 else y  # gromo: no input -> zeros, whatever the bias
