"""``Linear``: torch.nn.Linear (and, with a parametrization, inferno.bnn.Linear) as a Flax linen module."""

from collections.abc import Mapping

import flax.linen as nn
import jax.numpy as jnp

from jaxlinear._checks import check_layer_params
from jaxlinear._typing import Array, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import (
    Axes,
    LrRule,
    check_dense_config,
    check_linear_input,
    dense_inits,
    dense_lr_rule,
    layer_axes,
    linear_forward,
    parametrization_lr_rule,
)
from jaxlinear.nn._params import declare, existing
from jaxlinear.parametrizations import Parametrization

__all__ = ["Linear", "parametrization_lr_rule"]


class Linear(nn.Module):
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

    def __post_init__(self) -> None:
        check_dense_config(
            self.features,
            self.use_bias,
            self.parametrization,
            self.layer_type,
            self.dtype,
            self.param_dtype,
            self.kernel_init,
            self.bias_init,
        )
        layer_axes(self.kernel_axes, self.bias_axes, 2, use_bias=self.use_bias)
        super().__post_init__()

    def param_axes(self) -> dict[str, Axes]:
        """The logical axis names of each param (from ``kernel_axes`` / ``bias_axes``), None if unnamed.

        What ``init`` boxes the params with (``nn.LogicallyPartitioned``); workflows that
        build this layer's params another way (:func:`jaxlinear.interop.from_torch`) box them alike.

        Returns:
            ``{param name: names or None}`` for the kernel and the bias.

        Example:
            >>> import jaxlinear as jl
            >>> jl.Linear(8, kernel_axes=("embed", "mlp")).param_axes()
            {'kernel': ('embed', 'mlp'), 'bias': ('mlp',)}
        """
        kernel, bias = layer_axes(self.kernel_axes, self.bias_axes, 2, use_bias=self.use_bias)
        return {"kernel": kernel, "bias": bias}

    @nn.compact
    def __call__(self, x: Array) -> Array:
        stored = existing(self, "kernel")
        x = check_linear_input(x, None if stored is None else stored.shape)
        check_layer_params(self, self.use_bias, (None, self.features))
        n_in = x.shape[-1]
        kernel_init, bias_init = dense_inits(
            self.parametrization,
            n_in,
            self.features,
            self.layer_type,
            self.kernel_init,
            self.bias_init,
        )
        axes = self.param_axes()
        kernel = declare(
            self, "kernel", kernel_init, axes["kernel"], (n_in, self.features), self.param_dtype
        )
        bias = (
            declare(self, "bias", bias_init, axes["bias"], (self.features,), self.param_dtype)
            if self.use_bias
            else None
        )
        return linear_forward(x, kernel, bias, dtype=self.dtype, precision=self.precision)

    def lr_rule(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        optimizer: str,
        *,
        depth: int | None = None,
        readout_constraint: str | None = None,
    ) -> LrRule:
        """This layer's learning-rate rule: ``{param name: (lr factor, weight-decay factor)}``.

        inferno's ``parameters_and_lrs`` factors for the kernel ``shapes["kernel"] = (in, out)`` with
        this layer's ``parametrization`` and ``layer_type`` (factor 1 without a parametrization).
        ``readout_constraint`` is ignored (a u-μP notion); a ``depth`` is an error.

        Args:
            shapes: the shape of each param by name (``"kernel"``, ``"bias"``).
            optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"`` (inferno's spellings too).
            depth: must be None: only unit-scaled layers have a depth rule.
            readout_constraint: ignored (a u-μP notion; accepted so every layer's rule has one
                signature).

        Returns:
            ``{param name: (lr factor, weight-decay factor)}`` for the kernel and, if ``shapes`` has
            one, the bias, as Python floats; the weight-decay factor is always 1 (inferno's groups
            carry no weight decay).

        Raises:
            ValueError: for a ``depth``, an unknown optimizer, or a zero fan the rule divides by
                (:class:`~jaxlinear.parametrizations.ZeroFanError`).
            NotImplementedError: where inferno raises (``NeuralTangent`` with Adam).

        Example:
            >>> import jaxlinear as jl
            >>> jl.Linear(8, parametrization="mup").lr_rule({"kernel": (64, 8), "bias": (8,)}, "adam")
            {'kernel': (0.015625, 1.0), 'bias': (1.0, 1.0)}
        """
        del readout_constraint
        return dense_lr_rule(
            self.parametrization,
            self.layer_type,
            shapes,
            optimizer,
            depth=depth,
            layer=f"the Linear {self.name!r}",
        )
