"""``Linear``: torch.nn.Linear (and, with a parametrization, inferno.bnn.Linear) as a Flax linen module."""

from collections.abc import Mapping

import flax.linen as nn
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jaxlinear import functional
from jaxlinear._checks import (
    check_bool,
    check_choice,
    check_dim,
    check_floating_array,
    check_floating_dtype,
    check_in_features,
    check_layer_params,
    check_min_ndim,
    check_positive_int,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike
from jaxlinear.initializers import layer_inits
from jaxlinear.parametrizations import (
    LAYER_TYPES,
    Parametrization,
    canonical_optimizer,
    get_parametrization,
)

__all__ = ["Linear", "parametrization_lr_rule"]

LrRule = dict[str, tuple[float, float]]


def parametrization_lr_rule(
    parametrization: Parametrization | str | None,
    fans: tuple[int, int],
    names: tuple[str, ...],
    optimizer: str,
    layer_type: str,
    depth: int | None,
    layer: str,
) -> LrRule:
    """inferno's ``parameters_and_lrs`` rule for one dense layer: ``{name: (lr factor, wd factor)}``.

    With ``parametrization=None`` every factor is 1 (torch's plain optimizer). Otherwise the kernel gets
    ``weight_lr_scale(fan_in, fan_out, optimizer, layer_type)`` and the bias ``bias_lr_scale(...)``
    (weight first, as inferno: NeuralTangent + Adam raises before any bias rule runs). inferno's groups
    carry no weight decay, so the optimizer's applies to every parameter: weight-decay factor 1.

    Raises:
        ValueError: for a ``depth`` (only unit-scaled layers have a depth rule) or an unknown optimizer.
        NotImplementedError: where inferno raises (``NeuralTangent`` with Adam).
    """
    if depth is not None:
        raise ValueError(
            f"`depth` must name only stacks of unit-scaled layers (u-μP's depth rule); {layer} follows "
            f"inferno's rules, which have no depth, got depth={depth!r}."
        )
    canonical_optimizer(optimizer)
    if parametrization is None:
        return {name: (1.0, 1.0) for name in names}
    p = get_parametrization(parametrization)
    rule = {"kernel": (float(p.weight_lr_scale(*fans, optimizer, layer_type)), 1.0)}
    if "bias" in names:
        rule["bias"] = (float(p.bias_lr_scale(*fans, optimizer, layer_type)), 1.0)
    return rule


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
    """

    features: int
    use_bias: bool = True
    parametrization: Parametrization | str | None = None
    layer_type: str = "hidden"
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None

    def __post_init__(self) -> None:
        check_positive_int("features", self.features)
        check_dim("features", self.features)
        check_bool("use_bias", self.use_bias)
        if self.parametrization is not None:
            get_parametrization(self.parametrization)  # TypeError/ValueError for a bad one
        check_choice("layer_type", self.layer_type, LAYER_TYPES)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        check_floating_array("x", x)
        check_min_ndim("x", x, 1, "(..., in_features)")
        n_in = x.shape[-1]
        check_dim("x.shape[-1]", n_in)
        check_layer_params(self, self.use_bias, (None, self.features))
        if self.has_variable("params", "kernel"):
            check_in_features("x", x, self.get_variable("params", "kernel").shape)
        kernel_init, bias_init = layer_inits(
            self.parametrization, n_in, self.features, self.layer_type
        )
        kernel = self.param("kernel", kernel_init, (n_in, self.features), self.param_dtype)
        bias = (
            self.param("bias", bias_init, (self.features,), self.param_dtype)
            if self.use_bias
            else None
        )
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        return functional.linear(x, kernel, bias, precision=self.precision)

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
        return parametrization_lr_rule(
            self.parametrization,
            tuple(shapes["kernel"][-2:]),
            tuple(shapes),
            optimizer,
            self.layer_type,
            depth,
            f"the Linear {self.name!r}",
        )
