"""The layer cores: the methods a layer's linen and NNX front ends inherit, written once.

A core reads the layer's settings as attributes: a linen layer's dataclass fields, or the arguments an
NNX layer's ``__init__`` stores under the same names. So the checks of the settings, the sharding
names, the initializers, the input checks, the forward and the learning-rate rule exist once for both
front ends; a front end only declares its settings (its signature) and its params (linen
``self.param``, NNX ``nnx.Param``).

- :class:`LayerCore`: what every float layer shares (the sharding names, the member dims, the dot
  product function: ``dot_general`` / ``dot_general_cls`` as Flax's ``nn.Dense``).
- :class:`DenseCore`: ``Linear`` (torch.nn.Linear, inferno.bnn.Linear).
- :class:`NLinearCore`: ``NLinear`` (delu.nn.NLinear): the member dims ``n``, the layout.
- :class:`UnitScaledCore`: ``UnitScaledLinear`` / ``LinearReadout`` (unit_scaling).
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from jaxlinear import scaling
from jaxlinear._checks import check_choice, check_dot_general
from jaxlinear._typing import Array, DotGeneralT, Dtype, Initializer, PrecisionLike
from jaxlinear.functional import NLINEAR_LAYOUTS
from jaxlinear.initializers import layer_inits
from jaxlinear.layers._axes import Axes, layer_axes
from jaxlinear.layers._dense import (
    LrRule,
    check_dense_config,
    check_layer_config,
    check_linear_input,
    check_nlinear_input,
    linear_forward,
    nlinear_forward,
    normalize_n,
    parametrization_lr_rule,
)
from jaxlinear.layers._unit_scaled import (
    MUP_TYPES,
    UNIT_SCALED_SCALE_POWER,
    unit_scaled_forward,
    unit_scaled_inits,
    unit_scaled_lr_rule,
)

__all__ = ["DenseCore", "LayerCore", "NLinearCore", "UnitScaledCore"]

Shapes = Mapping[str, tuple[int, ...]]  # the (global) shape of each param by name


class LayerCore:
    """What every float layer shares, for both front ends: settings, sharding names, dot product.

    The settings read here: ``use_bias``, ``dtype``, ``param_dtype``, ``precision``,
    ``kernel_axes``, ``bias_axes``, ``dot_general`` and ``dot_general_cls`` (None on the NNX layers,
    which take ``dot_general`` only, as Flax's ``nnx.Linear``).

    ``dot_general``: None runs jaxlinear's own product (:func:`jaxlinear.functional.linear`, its fast
    kernel gradient, torch's rounding); a function with ``jax.lax.dot_general``'s signature replaces the
    product, called as Flax's ``nn.Dense`` calls it (same dimension numbers, ``precision=``; the
    member dims of ``NLinear`` as batch dims) and differentiated by autodiff through it;
    ``dot_general_cls`` is called with no arguments at every call to make one. The whole-model
    workflows treat such a layer as any other: :func:`jaxlinear.optim.lr_factors` and
    :mod:`jaxlinear.interop` read the params only; :func:`jaxlinear.quantization.quantize` replaces
    the layer, its float product included, by the int8 one of the chosen mode.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> calls = []
        >>> def dot(lhs, rhs, dims, precision=None):
        ...     calls.append(dims)
        ...     return jax.lax.dot_general(lhs, rhs, dims, precision=precision)
        >>> layer = jl.Linear(4, dot_general=dot)
        >>> y = layer.apply(layer.init(jax.random.key(0), jnp.ones((2, 3))), jnp.ones((2, 3)))
        >>> calls[-1]
        (((1,), (0,)), ((), ()))
    """

    if TYPE_CHECKING:
        use_bias: bool
        dtype: Dtype | None
        param_dtype: Dtype
        precision: PrecisionLike
        kernel_axes: Any
        bias_axes: Any
        dot_general: DotGeneralT | None
        dot_general_cls: Any

    @property
    def member_shape(self) -> tuple[int, ...]:
        """The member dims ``n`` of the kernel ``(*n, in, out)``: ``()`` for a single layer."""
        return ()

    def param_axes(self) -> dict[str, Axes]:
        """The logical axis names of each param (from ``kernel_axes`` / ``bias_axes``), None if unnamed.

        What ``init`` boxes the params with (``nn.LogicallyPartitioned``; ``nnx.Param`` sharding
        metadata on the NNX layers); workflows that build this layer's params another way
        (:func:`jaxlinear.interop.from_torch`) box them alike.

        Returns:
            ``{param name: names or None}`` for the kernel and the bias.

        Example:
            >>> import jaxlinear as jl
            >>> jl.Linear(8, kernel_axes=("embed", "mlp")).param_axes()
            {'kernel': ('embed', 'mlp'), 'bias': ('mlp',)}
            >>> jl.NLinear(4, 8, kernel_axes=("ensemble", None, "mlp")).param_axes()
            {'kernel': ('ensemble', None, 'mlp'), 'bias': ('ensemble', 'mlp')}
        """
        ndim = len(self.member_shape) + 2
        kernel, bias = layer_axes(self.kernel_axes, self.bias_axes, ndim, use_bias=self.use_bias)
        return {"kernel": kernel, "bias": bias}

    def check_settings(self, features: Any, kernel_init: Any = None, bias_init: Any = None) -> None:
        """Check the layer's settings (a linen layer's fields, an NNX layer's arguments).

        Args:
            features: the output size (linen ``features``, NNX ``out_features``).
            kernel_init: None or the kernel initializer.
            bias_init: None or the bias initializer.

        Raises:
            TypeError, ValueError: for a bad setting, naming it; a ``ValueError`` for both
                ``dot_general`` and ``dot_general_cls``.
        """
        self._check_config(features, kernel_init, bias_init)
        self.param_axes()
        check_dot_general(self.dot_general, self.dot_general_cls)

    def _check_config(self, features: Any, kernel_init: Any, bias_init: Any) -> None:
        raise NotImplementedError

    def dot_general_fn(self) -> DotGeneralT | None:
        """The dot product function of this call: ``dot_general_cls()``, ``dot_general``, or None.

        Returns:
            A function with ``jax.lax.dot_general``'s signature, or None for jaxlinear's own product.

        Raises:
            TypeError: if ``dot_general_cls()`` returns something that is not callable.
        """
        if self.dot_general_cls is None:
            return self.dot_general
        made: Any = self.dot_general_cls()
        if not callable(made):
            raise TypeError(
                "`dot_general_cls` must build a dot product function (`dot_general_cls()` called with "
                f"no arguments), got {type(made).__name__} {made!r}."
            )
        return cast(DotGeneralT, made)

    def check_input(self, x: Any, kernel_shape: tuple[int, ...] | None = None) -> Array:
        """``x`` as a floating array that fits the layer: :func:`jaxlinear.layers.check_linear_input`
        (``NLinear``: :func:`~jaxlinear.layers.check_nlinear_input` with its ``n`` and layout).

        Args:
            x: the layer's input.
            kernel_shape: the shape of the kernel the layer holds, or None (at init).

        Returns:
            ``x`` as a JAX array.

        Raises:
            TypeError, ValueError: as those checks.
        """
        return self._check_input(x, kernel_shape)

    def _check_input(self, x: Any, kernel_shape: tuple[int, ...] | None) -> Array:
        return check_linear_input(x, kernel_shape)

    def param_inits(
        self,
        fan_in: int,
        fan_out: int,
        kernel_init: Initializer | None = None,
        bias_init: Initializer | None = None,
    ) -> tuple[Initializer, Initializer]:
        """The kernel and bias initializers: the user's where given, else the layer's own.

        The layer's own: torch's U(±1/√fan_in) or the parametrization's normal (``Linear``,
        ``NLinear``: :func:`jaxlinear.initializers.layer_inits`), N(0, 1) and zeros (unit-scaled).

        Args:
            fan_in: the input size (of one member for ``NLinear``).
            fan_out: the output size.
            kernel_init: None or the user's kernel initializer (checked by :meth:`check_settings`).
            bias_init: None or the user's bias initializer.

        Returns:
            ``(kernel_init, bias_init)``, each ``init(key, shape, dtype) -> Array``.
        """
        own_kernel, own_bias = self._own_inits(fan_in, fan_out)
        return kernel_init or own_kernel, bias_init or own_bias

    def _own_inits(self, fan_in: int, fan_out: int) -> tuple[Initializer, Initializer]:
        raise NotImplementedError

    def forward(self, x: Array, kernel: Array, bias: Array | None) -> Array:
        """The layer's output for a checked input and params (promoted to one dtype first).

        ``Linear``: :func:`jaxlinear.layers.linear_forward`; ``NLinear``:
        :func:`~jaxlinear.layers.nlinear_forward`; unit-scaled: :func:`~jaxlinear.layers.unit_scaled_forward`;
        each with this layer's ``dtype``, ``precision`` and dot product (:meth:`dot_general_fn`).

        Args:
            x: the checked input.
            kernel: the kernel ``(*n, in, out)``.
            bias: the bias ``(*n, out)``, or None.

        Returns:
            The output.
        """
        return self._forward(x, kernel, bias, self.dot_general_fn())

    def _forward(self, *args: Any) -> Array:  # the family's forward: (x, kernel, bias, dot_general)
        raise NotImplementedError

    def lr_rule(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        optimizer: str,
        *,
        depth: int | None = None,
        readout_constraint: str | None = None,
    ) -> LrRule:
        """This layer's learning-rate rule: ``{param name: (lr factor, weight-decay factor)}``.

        ``Linear`` / ``NLinear``: inferno's ``parameters_and_lrs`` factors for the fans
        ``shapes["kernel"][-2:] = (in, out)`` (of one member for ``NLinear``: each member is an
        ``inferno.bnn.Linear``) with the layer's ``parametrization`` and ``layer_type``; factor 1
        without a parametrization; the weight-decay factor is always 1 (inferno's groups carry no
        weight decay); ``readout_constraint`` is ignored and a ``depth`` is an error.

        Unit-scaled layers: u-μP's rule. The kernel is labelled ``weight_mup_type``, the bias
        ``"bias"``, as the reference's ``uu.Parameter`` tags; the lr factor is
        :func:`jaxlinear.layers.umup_lr_factor`; ``unit_scaling.optim`` makes weight decay
        independent of each parameter's lr (``wd_p = wd / lr_p``): the weight-decay factor is
        ``1 / lr factor``.

        Args:
            shapes: the (global) shape of each param by name (``"kernel"``, ``"bias"``; one slice
                for lifted layers).
            optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"`` (inferno's spellings too).
            depth: unit-scaled layers: the number of layers of the depth-scaled stack the layer is
                in (the reference's ``DepthSequential``), or None; others: must be None.
            readout_constraint: unit-scaled layers, for SGD: the ``constraint`` of the model's
                ``LinearReadout``; others: ignored (accepted so every layer's rule has one
                signature).

        Returns:
            ``{param name: (lr factor, weight-decay factor)}`` for every name in ``shapes``, as
            Python floats.

        Raises:
            ValueError: for an unknown optimizer; ``Linear`` / ``NLinear``: a ``depth``, or a zero
                fan the rule divides by (:class:`~jaxlinear.parametrizations.ZeroFanError`);
                unit-scaled: an unknown readout constraint (SGD) or depth, or a parameter shape
                with no dims or more than 3.
            NotImplementedError: where inferno raises (``NeuralTangent`` with Adam).

        Example:
            >>> import jaxlinear as jl
            >>> jl.Linear(8, parametrization="mup").lr_rule({"kernel": (64, 8), "bias": (8,)}, "adam")
            {'kernel': (0.015625, 1.0), 'bias': (1.0, 1.0)}
            >>> layer = jl.NLinear(4, 8, parametrization="mup", layer_type="input")
            >>> layer.lr_rule({"kernel": (4, 16, 8), "bias": (4, 8)}, "sgd")
            {'kernel': (8.0, 1.0), 'bias': (8.0, 1.0)}
            >>> jl.UnitScaledLinear(8, use_bias=True).lr_rule({"kernel": (16, 8), "bias": (8,)}, "adam")
            {'kernel': (0.25, 4.0), 'bias': (1.0, 1.0)}
        """
        return self._lr_rule(shapes, optimizer, depth, readout_constraint)

    def _lr_rule(self, *args: Any) -> LrRule:  # the family's rule (see the subclasses)
        raise NotImplementedError


class DenseCore(LayerCore):
    """The core of ``Linear`` (:class:`jaxlinear.Linear`, :class:`jaxlinear.nnx.Linear`).

    Reads, beyond :class:`LayerCore`'s settings, ``parametrization`` and ``layer_type``.

    Example:
        >>> import jaxlinear as jl
        >>> issubclass(jl.Linear, DenseCore) and issubclass(jl.nnx.Linear, DenseCore)
        True
    """

    if TYPE_CHECKING:
        parametrization: Any
        layer_type: str

    def _check_config(self, features: Any, kernel_init: Any, bias_init: Any) -> None:
        check_dense_config(
            features, self.use_bias, self.parametrization, self.layer_type, self.dtype,
            self.param_dtype, kernel_init, bias_init,
        )  # fmt: skip

    def _own_inits(self, fan_in: int, fan_out: int) -> tuple[Initializer, Initializer]:
        return layer_inits(self.parametrization, fan_in, fan_out, self.layer_type)

    def _forward(
        self, x: Array, kernel: Array, bias: Array | None, dot_general: DotGeneralT | None
    ) -> Array:
        return linear_forward(
            x, kernel, bias, dtype=self.dtype, precision=self.precision, dot_general=dot_general
        )

    def _lr_rule(self, shapes: Shapes, optimizer: str, depth: int | None, rc: str | None) -> LrRule:
        del rc  # a u-μP notion
        name = getattr(self, "name", None)
        fan_in, fan_out = shapes["kernel"][-2:]
        return parametrization_lr_rule(
            self.parametrization, (int(fan_in), int(fan_out)), tuple(shapes), optimizer,
            self.layer_type, depth,
            f"the {type(self).__name__}" + ("" if name is None else f" {name!r}"),
        )  # fmt: skip


class NLinearCore(DenseCore):
    """The core of ``NLinear`` (:class:`jaxlinear.NLinear`, :class:`jaxlinear.nnx.NLinear`).

    Reads, beyond :class:`DenseCore`'s settings, ``n`` (the member dims) and ``layout``.

    Example:
        >>> import jaxlinear as jl
        >>> jl.NLinear(3, 4).member_shape
        (3,)
    """

    if TYPE_CHECKING:
        n: Any
        layout: str

    @property
    def n_shape(self) -> tuple[int, ...]:
        """``n`` as a tuple."""
        return normalize_n(self.n)

    @property
    def member_shape(self) -> tuple[int, ...]:
        """The member dims ``n`` of the kernel ``(*n, in, out)``."""
        return self.n_shape

    def _check_config(self, features: Any, kernel_init: Any, bias_init: Any) -> None:
        normalize_n(self.n)
        check_choice("layout", self.layout, NLINEAR_LAYOUTS)
        super()._check_config(features, kernel_init, bias_init)

    def _check_input(self, x: Any, kernel_shape: tuple[int, ...] | None) -> Array:
        return check_nlinear_input(x, self.n_shape, self.layout, kernel_shape)

    def _forward(
        self, x: Array, kernel: Array, bias: Array | None, dot_general: DotGeneralT | None
    ) -> Array:
        return nlinear_forward(
            x, kernel, bias, dtype=self.dtype, precision=self.precision, layout=self.layout,
            dot_general=dot_general,
        )  # fmt: skip


class UnitScaledCore(LayerCore):
    """The core of ``UnitScaledLinear`` / ``LinearReadout`` (both front ends).

    Reads, beyond :class:`LayerCore`'s settings, ``constraint`` and ``weight_mup_type``; the class
    attribute ``scale_power`` is :data:`~jaxlinear.layers.UNIT_SCALED_SCALE_POWER` (a readout's:
    :data:`~jaxlinear.layers.READOUT_SCALE_POWER`).

    Example:
        >>> import jaxlinear as jl
        >>> jl.LinearReadout.scale_power
        (1.0, 0.5, 0.5)
    """

    scale_power: tuple[float, float, float] = UNIT_SCALED_SCALE_POWER

    if TYPE_CHECKING:
        constraint: str | None
        weight_mup_type: str

    def _check_config(self, features: Any, kernel_init: Any, bias_init: Any) -> None:
        check_layer_config(
            features, self.use_bias, self.dtype, self.param_dtype, kernel_init, bias_init
        )
        scaling.check_constraint(self.constraint)
        check_choice("weight_mup_type", self.weight_mup_type, MUP_TYPES)

    def _own_inits(self, fan_in: int, fan_out: int) -> tuple[Initializer, Initializer]:
        return unit_scaled_inits()

    def _forward(
        self, x: Array, kernel: Array, bias: Array | None, dot_general: DotGeneralT | None
    ) -> Array:
        return unit_scaled_forward(
            x, kernel, bias, self.constraint, self.scale_power, dtype=self.dtype,
            precision=self.precision, dot_general=dot_general,
        )  # fmt: skip

    def _lr_rule(self, shapes: Shapes, optimizer: str, depth: int | None, rc: str | None) -> LrRule:
        return unit_scaled_lr_rule(
            self.weight_mup_type, shapes, optimizer, depth=depth,
            readout_constraint=rc,
        )  # fmt: skip
