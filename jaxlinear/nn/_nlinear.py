"""``NLinear``: delu.nn.NLinear (N separate linear layers in one batched op) as a Flax module."""

from collections.abc import Mapping

import flax.linen as nn
import jax.numpy as jnp

from jaxlinear._checks import check_choice, check_layer_params
from jaxlinear._typing import Array, Dtype, Initializer, PrecisionLike
from jaxlinear.functional import NLINEAR_LAYOUTS
from jaxlinear.layers import (
    Axes,
    LrRule,
    check_dense_config,
    check_nlinear_input,
    dense_inits,
    dense_lr_rule,
    layer_axes,
    nlinear_forward,
    normalize_n,
)
from jaxlinear.nn._params import declare, existing
from jaxlinear.parametrizations import Parametrization

__all__ = ["NLinear"]

_normalize_n = normalize_n  # the name jaxlinear.nnx imported before the layer core existed


class NLinear(nn.Module):
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

    def __post_init__(self) -> None:
        n = normalize_n(self.n)
        check_choice("layout", self.layout, NLINEAR_LAYOUTS)
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
        layer_axes(self.kernel_axes, self.bias_axes, len(n) + 2, use_bias=self.use_bias)
        super().__post_init__()

    @property
    def n_shape(self) -> tuple[int, ...]:
        """``n`` as a tuple."""
        return normalize_n(self.n)

    def param_axes(self) -> dict[str, Axes]:
        """The logical axis names of each param (from ``kernel_axes`` / ``bias_axes``), None if unnamed.

        What ``init`` boxes the params with (``nn.LogicallyPartitioned``); workflows that
        build this layer's params another way (:func:`jaxlinear.interop.from_torch`) box them alike.

        Returns:
            ``{param name: names or None}`` for the kernel and the bias.

        Example:
            >>> import jaxlinear as jl
            >>> jl.NLinear(4, 8, kernel_axes=("ensemble", None, "mlp")).param_axes()
            {'kernel': ('ensemble', None, 'mlp'), 'bias': ('ensemble', 'mlp')}
        """
        kernel, bias = layer_axes(
            self.kernel_axes, self.bias_axes, len(self.n_shape) + 2, use_bias=self.use_bias
        )
        return {"kernel": kernel, "bias": bias}

    @nn.compact
    def __call__(self, x: Array) -> Array:
        n = self.n_shape
        stored = existing(self, "kernel")
        x = check_nlinear_input(x, n, self.layout, None if stored is None else stored.shape)
        check_layer_params(self, self.use_bias, (*n, None, self.features))
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
        shape = (*n, n_in, self.features)
        kernel = declare(self, "kernel", kernel_init, axes["kernel"], shape, self.param_dtype)
        bias = (
            declare(self, "bias", bias_init, axes["bias"], (*n, self.features), self.param_dtype)
            if self.use_bias
            else None
        )
        return nlinear_forward(
            x, kernel, bias, dtype=self.dtype, precision=self.precision, layout=self.layout
        )

    def lr_rule(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        optimizer: str,
        *,
        depth: int | None = None,
        readout_constraint: str | None = None,
    ) -> LrRule:
        """This layer's learning-rate rule: ``{param name: (lr factor, weight-decay factor)}``.

        Each member is an ``inferno.bnn.Linear(in, features)``: the factors of
        :meth:`jaxlinear.Linear.lr_rule` for fans ``shapes["kernel"][-2:]``, shared by the N members.

        Args:
            shapes: the shape of each param by name (``"kernel"``, ``"bias"``), the kernel ``(*n, in, out)``.
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
            >>> layer = jl.NLinear(4, 8, parametrization="mup", layer_type="input")
            >>> layer.lr_rule({"kernel": (4, 16, 8), "bias": (4, 8)}, "sgd")
            {'kernel': (8.0, 1.0), 'bias': (8.0, 1.0)}
        """
        del readout_constraint
        return dense_lr_rule(
            self.parametrization,
            self.layer_type,
            shapes,
            optimizer,
            depth=depth,
            layer=f"the NLinear {self.name!r}",
        )
