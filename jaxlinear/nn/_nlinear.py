"""``NLinear``: delu.nn.NLinear (N separate linear layers in one batched op) as a Flax module."""

from collections.abc import Mapping

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
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
    check_trailing_shape,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike
from jaxlinear.functional import NLINEAR_LAYOUTS
from jaxlinear.initializers import layer_inits
from jaxlinear.nn._linear import LrRule, parametrization_lr_rule
from jaxlinear.parametrizations import LAYER_TYPES, Parametrization, get_parametrization

__all__ = ["NLinear"]


def _normalize_n(n: int | tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(n, bool | np.bool_) or not isinstance(n, int | np.integer | tuple | list):
        raise TypeError(f"`n` must be an int or a non-empty tuple of ints, got {n!r}.")
    n_tuple = (n,) if isinstance(n, int | np.integer) else tuple(n)
    if not n_tuple:
        raise ValueError("`n` must be an int or a non-empty tuple of ints, got ().")
    for d in n_tuple:
        check_positive_int("n", d)
        check_dim("n", d)
    return tuple(int(d) for d in n_tuple)


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

    def __post_init__(self) -> None:
        _normalize_n(self.n)
        check_positive_int("features", self.features)
        check_dim("features", self.features)
        check_bool("use_bias", self.use_bias)
        check_choice("layout", self.layout, NLINEAR_LAYOUTS)
        if self.parametrization is not None:
            get_parametrization(self.parametrization)  # TypeError/ValueError for a bad one
        check_choice("layer_type", self.layer_type, LAYER_TYPES)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @property
    def n_shape(self) -> tuple[int, ...]:
        """``n`` as a tuple."""
        return _normalize_n(self.n)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        n = self.n_shape
        check_floating_array("x", x)
        layout = (
            "(*n, ..., in_features)" if self.layout == "member_major" else "(..., *n, in_features)"
        )
        check_min_ndim("x", x, len(n) + 1, f"{layout} with n={n}")
        n_in = x.shape[-1]
        if self.layout == "member_major":
            if tuple(x.shape[: len(n)]) != n:
                raise ValueError(
                    f"`x` must have shape (*n, ..., in_features) with n={n}, got shape {x.shape}."
                )
        else:
            check_trailing_shape("x", x, (*n, n_in), f"(..., *n, in_features) with n={n}")
        check_dim("x.shape[-1]", n_in)
        check_layer_params(self, self.use_bias, (*n, None, self.features))
        if self.has_variable("params", "kernel"):
            kernel_shape = self.get_variable("params", "kernel").shape
            if self.layout == "member_major":
                check_in_features("x", x, kernel_shape[-2:])
            else:
                what = "(..., *n, in_features) matching the kernel"
                check_trailing_shape("x", x, kernel_shape[:-1], what)
        kernel_init, bias_init = layer_inits(
            self.parametrization, n_in, self.features, self.layer_type
        )
        kernel = self.param("kernel", kernel_init, (*n, n_in, self.features), self.param_dtype)
        bias = (
            self.param("bias", bias_init, (*n, self.features), self.param_dtype)
            if self.use_bias
            else None
        )
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        return functional.nlinear(x, kernel, bias, precision=self.precision, layout=self.layout)

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
        return parametrization_lr_rule(
            self.parametrization,
            tuple(shapes["kernel"][-2:]),
            tuple(shapes),
            optimizer,
            self.layer_type,
            depth,
            f"the NLinear {self.name!r}",
        )
