"""``Linear``: torch.nn.Linear (and, with a parametrization, inferno.bnn.Linear) as a Flax linen module."""

from typing import Any

import jax.numpy as jnp

from jaxlinear._typing import DotGeneralT, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import DenseCore, parametrization_lr_rule
from jaxlinear.nn._params import LinenLayer
from jaxlinear.parametrizations import Parametrization

__all__ = ["Linear", "parametrization_lr_rule"]


class Linear(DenseCore, LinenLayer):
    """A dense layer with ``torch.nn.Linear``'s init: ``(..., in) -> (..., features)``.

    Kernel ``(in, features)`` and bias ``(features,)`` are drawn from U(±1/√in), the distribution of
    ``torch.nn.Linear`` (zeros when ``in == 0``, so the output is zeros too). Exact torch weights are
    loaded with :func:`jaxlinear.interop.from_torch`.

    With a ``parametrization`` (:mod:`jaxlinear.parametrizations`) the layer is ``inferno.bnn.Linear``:
    kernel ~ N(0, s_w²) and bias ~ N(0, s_b²) (untruncated) with
    ``s_w = parametrization.weight_init_scale(in, features, layer_type)`` and ``s_b`` from
    ``bias_init_scale``; the forward is the same ``x @ kernel + bias`` (inferno applies no forward
    multiplier in any parametrization). ``layer_type`` also picks the layer's learning-rate rule in
    :func:`jaxlinear.optim.lr_factors`. inferno's output-layer temperature (1 unless a temperature
    scaler changed it; it divides the output in eval mode only) is not a parameter here:
    :func:`jaxlinear.interop.from_torch` accepts it only when it is 1.

    Attributes:
        features: output size (``out_features``), an int in ``[1, 2**31 - 1]`` (larger array
            dimensions make XLA abort the process, so they are rejected first).
        use_bias: add a bias (torch's ``bias=True``); a bool.
        parametrization: None (torch.nn.Linear's init) or a
            :class:`~jaxlinear.parametrizations.Parametrization` instance (``MaximalUpdate()``, ...);
            the names ``"sp"``, ``"ntp"``, ``"mup"`` are accepted too.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``: the layer's place in the network.
        dtype: computation dtype; None promotes from the input and the params. Half-precision compute
            accumulates in float32 and rounds once.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        kernel_axes: None, or logical axis names of the kernel ``(in, features)``, one per dim (a
            name or None): the params are then created as ``nn.LogicallyPartitioned`` boxes, so
            ``nn.get_partition_spec`` / ``nn.logical_to_mesh_sharding`` shard them as Flax's own
            layers (see the sharding guide).
        bias_axes: None (the kernel's output name, if the kernel is named) or one name for the bias.
        kernel_init: None (torch's or the parametrization's init) or an initializer
            ``(key, shape, dtype) -> Array``, as ``nn.Dense``'s; an error with a parametrization.
        bias_init: None or an initializer for the bias, likewise.
        dot_general: None (jaxlinear's product: torch's rounding, a fast kernel gradient) or a
            function with ``jax.lax.dot_general``'s signature, called as ``nn.Dense`` calls it
            (:class:`~jaxlinear.layers.LayerCore` says what each workflow does with it).
        dot_general_cls: None or a class (any callable) whose ``dot_general_cls()`` is such a
            function, built at every call, as ``nn.Dense``'s; an error together with ``dot_general``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.Linear(4)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> jax.tree.map(jnp.shape, variables)
        {'params': {'bias': (4,), 'kernel': (3, 4)}}
        >>> layer.apply(variables, jnp.ones((5, 2, 3))).shape
        (5, 2, 4)
        >>> from jaxlinear.parametrizations import MaximalUpdate
        >>> out = jl.Linear(256, parametrization=MaximalUpdate(), layer_type="output")
        >>> k = out.init(jax.random.key(0), jnp.ones((1, 256)))["params"]["kernel"]
        >>> round(float(k.std()) * 256, 1)  # std 1/fan_in (65536 draws: within 1.0 ± 0.05 for any key)
        1.0
        >>> import flax.linen as nn
        >>> named = jl.Linear(4, kernel_axes=("embed", "mlp")).init(jax.random.key(0), jnp.ones((1, 3)))
        >>> nn.get_partition_spec(named)["params"]
        {'bias': P('mlp',), 'kernel': P('embed', 'mlp')}
    """

    features: int
    use_bias: bool = True
    parametrization: Parametrization | str | None = None
    layer_type: str = "hidden"
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None
    kernel_axes: tuple[str | None, ...] | None = None
    bias_axes: tuple[str | None, ...] | None = None
    kernel_init: Initializer | None = None
    bias_init: Initializer | None = None
    dot_general: DotGeneralT | None = None
    dot_general_cls: Any = None
