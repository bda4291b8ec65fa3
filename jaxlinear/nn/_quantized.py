"""``QuantizedLinear`` and ``DynamicQuantizedLinear``: torch.ao's quantized linear modules in Flax."""

import flax.linen as nn
import jax.numpy as jnp

from jaxlinear._checks import (
    check_bool,
    check_floating_array,
    check_min_ndim,
    check_param_shapes,
    check_positive_int,
)
from jaxlinear._typing import Array
from jaxlinear.int8 import QTensor, dynamic_quantized_linear, quantized_linear
from jaxlinear.int8._linear import (
    check_engine,  # the engine/saturation argument check the layer runs at setup
)
from jaxlinear.layers import Axes, quantized_axes
from jaxlinear.nn._params import declare, existing

__all__ = ["DynamicQuantizedLinear", "QuantizedLinear"]


def _zeros(dtype):
    return lambda key, shape: jnp.zeros(shape, dtype)


def _ones(dtype):
    return lambda key, shape: jnp.ones(shape, dtype)


def _kernel(module: nn.Module, n_in: int, static: bool = False) -> QTensor:
    """The int8 kernel ``(in, features)`` and its qparams (per tensor or per output channel)."""
    f = module.features
    q = (f,) if module.per_channel else ()
    shapes = {"kernel": (None, f), "kernel_scale": q, "kernel_zero_point": q}
    if module.use_bias:
        shapes["bias"] = (f,)
    if static:
        shapes |= {"out_scale": (), "out_zero_point": ()}
    check_param_shapes(module, shapes)
    stored = existing(module, "kernel")
    if stored is not None:
        if stored.dtype != jnp.int8:
            raise TypeError(f"`variables['params']['kernel']` must be int8, got {stored.dtype}.")
        shape = stored.shape
        if shape[0] != n_in:
            raise ValueError(
                f"`x` must have {shape[0]} input features (its last dim), as the layer's kernel "
                f"{shape}, got {n_in}."
            )
    axes = module.param_axes()
    values = declare(module, "kernel", _zeros(jnp.int8), axes["kernel"], (n_in, module.features))
    qshape = (module.features,) if module.per_channel else ()
    scale = declare(module, "kernel_scale", _ones(jnp.float32), axes["kernel_scale"], qshape)
    zero_point = declare(
        module, "kernel_zero_point", _zeros(jnp.int32), axes["kernel_zero_point"], qshape
    )
    return QTensor(values, scale, zero_point, 1 if module.per_channel else None)


def _bias(module: nn.Module) -> Array | None:
    if not module.use_bias:
        return None
    return declare(
        module, "bias", _zeros(jnp.float32), module.param_axes()["bias"], (module.features,)
    )


class QuantizedLinear(nn.Module):
    """Static int8 linear, ``torch.ao.nn.quantized.Linear``: uint8 ``QTensor`` in, uint8 ``QTensor`` out.

    Params: ``kernel`` int8 ``(in, features)``; ``kernel_scale``/``kernel_zero_point`` (scalars, or
    ``(features,)`` with ``per_channel``); ``bias`` float32 ``(features,)``; ``out_scale``/
    ``out_zero_point``, the output's qparams. Load torch's with :func:`jaxlinear.interop.from_torch`; init
    gives a zero kernel (torch's is uninitialised), unit scales and zero zero points.

    Attributes:
        features: output size.
        use_bias: hold a float bias (torch's ``bias_``).
        per_channel: per-output-channel weight qparams (``torch.per_channel_affine``/``_symmetric``).
        engine: the numerics to reproduce, ``"x86"`` (default; = ``"fbgemm"``) or ``"qnnpack"``: set it to
            the engine that was active when torch packed the weight.
        relu: clamp below at the output zero point (``torch.ao.nn.intrinsic.quantized.LinearReLU``).
        int16_saturation: FBGEMM's pairwise int16 saturation, torch's numbers on CPUs without AVX-512
            VNNI; False (default): the exact sum, torch's numbers on VNNI CPUs. They differ only for
            input values above 127 (see :func:`jaxlinear.int8.quantized_linear`); never read
            from the host.
        kernel_axes: None, or logical axis names of the int8 kernel ``(in, features)`` (a float
            kernel's, kept by :func:`jaxlinear.quantization.quantize`); per-channel scales and zero
            points take its output name.
        bias_axes: None (the kernel's output name) or one name for the bias.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.QuantizedLinear(4, per_channel=True)
        >>> x = jl.quantization.quantize(jnp.ones((2, 3)), 0.1, 0)
        >>> variables = layer.init(jax.random.key(0), x)
        >>> jax.tree.map(jnp.shape, variables["params"])["kernel_scale"]
        (4,)
        >>> layer.apply(variables, x).values.dtype
        dtype('uint8')
    """

    features: int
    use_bias: bool = True
    per_channel: bool = False
    engine: str = "x86"
    relu: bool = False
    int16_saturation: bool = False
    kernel_axes: tuple[str | None, ...] | None = None
    bias_axes: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        check_positive_int("features", self.features)
        for name in ("use_bias", "per_channel", "relu"):
            check_bool(name, getattr(self, name))
        check_engine(self.engine, self.int16_saturation)
        quantized_axes(self.kernel_axes, self.bias_axes, per_channel=self.per_channel)
        super().__post_init__()

    def param_axes(self) -> dict[str, Axes]:
        """The logical axis names of each param (from ``kernel_axes`` / ``bias_axes``), None if unnamed.

        What ``init`` boxes the params with (``nn.LogicallyPartitioned``); per-channel weight qparams take the kernel's output name; workflows that
        build this layer's params another way (:func:`jaxlinear.interop.from_torch`) box them alike.

        Returns:
            ``{param name: names or None}`` for the kernel and the bias.

        Example:
            >>> import jaxlinear as jl
            >>> jl.QuantizedLinear(8, per_channel=True, kernel_axes=("embed", "mlp")).param_axes()
            {'kernel': ('embed', 'mlp'), 'bias': ('mlp',), 'kernel_scale': ('mlp',), 'kernel_zero_point': ('mlp',)}
        """
        return dict(quantized_axes(self.kernel_axes, self.bias_axes, per_channel=self.per_channel))

    @nn.compact
    def __call__(self, x: QTensor) -> QTensor:
        if not isinstance(x, QTensor):
            raise TypeError(
                f"`x` must be a uint8 QTensor (quantize the input first), got {type(x).__name__}."
            )
        check_min_ndim("x", x.values, 2, "(batch, ..., in_features) (torch rejects 1-D input)")
        kernel = _kernel(self, x.values.shape[-1], static=True)
        bias = _bias(self)
        out_scale = self.param("out_scale", _ones(jnp.float32), ())
        out_zero_point = self.param("out_zero_point", _zeros(jnp.int32), ())
        return quantized_linear(
            x,
            kernel,
            bias,
            out_scale,
            out_zero_point,
            engine=self.engine,
            relu=self.relu,
            int16_saturation=self.int16_saturation,
        )


class DynamicQuantizedLinear(nn.Module):
    """Dynamic int8 linear, ``torch.ao.nn.quantized.dynamic.Linear``: float32 in, float32 out.

    The input's qparams are chosen on every call from its global min and max (see
    :func:`jaxlinear.int8.dynamic_quantized_linear`). Params: ``kernel`` int8 ``(in, features)``,
    ``kernel_scale``, ``kernel_zero_point``, ``bias``.

    Attributes:
        features: output size.
        use_bias: hold a float bias.
        per_channel: per-output-channel weight qparams.
        engine: ``"x86"`` (default; = ``"fbgemm"``) or ``"qnnpack"``.
        reduce_range: 7-bit activations, True as in torch's module (QNNPACK ignores it, as torch).
        int16_saturation: as in :class:`QuantizedLinear`; it changes results only with
            ``reduce_range=False``.
        kernel_axes: None, or logical axis names of the int8 kernel ``(in, features)`` (a float
            kernel's, kept by :func:`jaxlinear.quantization.quantize`); per-channel scales and zero
            points take its output name.
        bias_axes: None (the kernel's output name) or one name for the bias.

    A NaN in the input changes the qparams of the whole batch, as in torch (dynamic quantization is per
    tensor): see :func:`jaxlinear.int8.dynamic_quantized_linear`.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.DynamicQuantizedLinear(4)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((2, 3)))
        >>> layer.apply(variables, jnp.ones((5, 2, 3))).shape
        (5, 2, 4)
    """

    features: int
    use_bias: bool = True
    per_channel: bool = False
    engine: str = "x86"
    reduce_range: bool = True
    int16_saturation: bool = False
    kernel_axes: tuple[str | None, ...] | None = None
    bias_axes: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        check_positive_int("features", self.features)
        for name in ("use_bias", "per_channel", "reduce_range"):
            check_bool(name, getattr(self, name))
        check_engine(self.engine, self.int16_saturation)
        quantized_axes(self.kernel_axes, self.bias_axes, per_channel=self.per_channel)
        super().__post_init__()

    def param_axes(self) -> dict[str, Axes]:
        """The logical axis names of each param (from ``kernel_axes`` / ``bias_axes``), None if unnamed.

        What ``init`` boxes the params with (``nn.LogicallyPartitioned``); per-channel weight qparams take the kernel's output name; workflows that
        build this layer's params another way (:func:`jaxlinear.interop.from_torch`) box them alike.

        Returns:
            ``{param name: names or None}`` for the kernel and the bias.

        Example:
            >>> import jaxlinear as jl
            >>> jl.DynamicQuantizedLinear(8, kernel_axes=("embed", "mlp")).param_axes()["kernel_scale"] is None
            True
        """
        return dict(quantized_axes(self.kernel_axes, self.bias_axes, per_channel=self.per_channel))

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        check_floating_array("x", x)
        check_min_ndim("x", x, 1, "(..., in_features)")
        kernel = _kernel(self, x.shape[-1])
        bias = _bias(self)
        return dynamic_quantized_linear(
            x,
            kernel,
            bias,
            engine=self.engine,
            reduce_range=self.reduce_range,
            int16_saturation=self.int16_saturation,
        )
