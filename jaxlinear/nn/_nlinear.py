"""``NLinear``: delu.nn.NLinear (N separate linear layers in one batched op) as a Flax module."""

from typing import Any

import jax.numpy as jnp

from jaxlinear._typing import DotGeneralT, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import NLinearCore, normalize_n
from jaxlinear.nn._params import LinenLayer
from jaxlinear.parametrizations import Parametrization

__all__ = ["NLinear"]

_normalize_n = normalize_n  # the name jaxlinear.nnx imported before the layer core existed


class NLinear(NLinearCore, LinenLayer):
    """N separate linear layers applied in parallel: ``(..., *n, in) -> (..., *n, features)``.

    The i-th slice of the input along ``n`` goes through its own kernel ``kernel[i]`` ``(in, features)``
    and bias ``bias[i]``. Params: kernel ``(*n, in, features)``, bias ``(*n, features)``, both the
    layout of ``delu.nn.NLinear`` (no transpose in interop), drawn from U(±1/√in) as delu does.

    With a ``parametrization`` the layer is N separate ``inferno.bnn.Linear(in, features, layer_type)``
    layers: kernel ~ N(0, s_w²) and bias ~ N(0, s_b²) with the scales of one member, fans ``(in,
    features)`` (never ``n·in``), and each member's learning-rate rule is inferno's for those fans
    (:meth:`lr_rule`).

    Warning:
        delu raises ``ZeroDivisionError`` for ``in_features == 0``; jaxlinear gives zeros, as
        ``torch.nn.Linear`` and :class:`jaxlinear.Linear` do.

    Attributes:
        n: the number of layers, an int or a tuple of ints (a grid of layers).
        features: output size of each layer, an int in ``[1, 2**31 - 1]``.
        use_bias: add a bias; a bool.
        parametrization: None (delu's init) or a parametrization, as in :class:`jaxlinear.Linear`.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``, as in :class:`jaxlinear.Linear`.
        layout: ``"batch_major"``, delu's ``(..., *n, in)``, or ``"member_major"``, ``(*n, ..., in)``
            in and out: the faster layout for models that keep their ensemble member-major (see
            :func:`jaxlinear.functional.nlinear`). The params are the same in both.
        dtype: computation dtype, as in :class:`jaxlinear.Linear`.
        param_dtype: dtype the params are created in, as in :class:`jaxlinear.Linear`.
        precision: passed to ``lax.dot_general``, as in :class:`jaxlinear.Linear`.
        kernel_axes: None, or logical axis names of the kernel ``(*n, in, features)``, one per dim:
            member names first (``("ensemble", None, "mlp")`` puts members on the mesh axis the rules
            map ``"ensemble"`` to); the params are then ``nn.LogicallyPartitioned`` boxes.
        bias_axes: None (the kernel's member names plus its output name) or one name per bias dim.
        kernel_init: None (delu's or the parametrization's init) or an initializer, as in
            :class:`jaxlinear.Linear`.
        bias_init: None or an initializer for the bias, likewise.
        dot_general: None or a dot product function, as in :class:`jaxlinear.Linear`; the member
            dims are its batch dims.
        dot_general_cls: None or a class building one, as in :class:`jaxlinear.Linear`.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.NLinear(3, 4)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((2, 3, 5)))
        >>> jax.tree.map(jnp.shape, variables)
        {'params': {'bias': (3, 4), 'kernel': (3, 5, 4)}}
        >>> mup = jl.NLinear(3, 4, parametrization="mup", layer_type="output")
        >>> k = mup.init(jax.random.key(0), jnp.ones((1, 3, 256)))["params"]["kernel"]
        >>> round(float(k.std()) * 256, 1)  # std 1/fan_in per member (fan_in 256, not 3 * 256)
        1.0
    """

    n: int | tuple[int, ...]
    features: int
    use_bias: bool = True
    parametrization: Parametrization | str | None = None
    layer_type: str = "hidden"
    layout: str = "batch_major"
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None
    kernel_axes: tuple[str | None, ...] | None = None
    bias_axes: tuple[str | None, ...] | None = None
    kernel_init: Initializer | None = None
    bias_init: Initializer | None = None
    dot_general: DotGeneralT | None = None
    dot_general_cls: Any = None
