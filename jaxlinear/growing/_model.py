"""``GrowingMLP``: gromo's ``containers.growing_mlp.GrowingMLP`` as a Flax linen module.

Each layer is :func:`jaxlinear.functional.linear` on params ``layers_i = {"kernel": (in, out),
"bias": (out,)}``. With ``capacity`` the hidden layers are stored at a fixed size (a *bucket*) and
only the first ``widths[j]`` neurons of hidden layer ``j`` are active: the active widths live in the
``"growth"`` variable collection, so a growth step that fits in the bucket changes values, not
shapes, and nothing is compiled again (see :mod:`jaxlinear.growing`).
"""

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from jaxlinear._checks import (
    check_bool,
    check_floating_array,
    check_floating_dtype,
    check_min_ndim,
    check_positive_int,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike, PyTree
from jaxlinear.growing._activations import activation_function, check_activation
from jaxlinear.growing._layer import GrowableLinear
from jaxlinear.layers import Axes, layer_axes

__all__ = ["GrowingMLP", "bucket_capacity"]

GROWTH = "growth"  # the variable collection holding the active widths of a model with capacity


def bucket_capacity(width: int, minimum: int = 8) -> int:
    """The bucket of a hidden width: the next power of two ``>= max(width, minimum)``.

    Args:
        width: a hidden width.
        minimum: the smallest bucket.

    Example:
        >>> bucket_capacity(0), bucket_capacity(9), bucket_capacity(64)
        (8, 16, 64)
    """
    check_positive_int("width", width, allow_zero=True)
    check_positive_int("minimum", minimum)
    return 1 << (max(width, minimum) - 1).bit_length()


def _widths_tuple(name: str, value: Any, count: int) -> tuple[int, ...]:
    if isinstance(value, list | tuple):
        if len(value) != count:
            raise ValueError(
                f"`{name}` must have {count} widths (num_hidden_layers), got {value!r}."
            )
        for v in value:
            check_positive_int(name, v, allow_zero=True)
        return tuple(int(v) for v in value)
    check_positive_int(name, value, allow_zero=True)
    return (int(value),) * count


class GrowingMLP(nn.Module):
    """gromo's ``GrowingMLP``: ``Linear(in→h₁), σ, …, Linear(h_L→out)`` whose hidden layers can grow.

    ``hidden_features`` is one width for all ``num_hidden_layers`` hidden layers (gromo's
    ``hidden_size``) or a tuple of per-layer widths (what growth produces); 0 is allowed (an empty
    hidden layer outputs nothing and the next layer outputs zeros: gromo ignores the bias of a layer
    with no input). Params: ``layers_i = {"kernel": (in, out), "bias": (out,)}``, torch's init
    U(±1/√fan_in), computed by :func:`jaxlinear.functional.linear`. The input is flattened from axis
    1, as gromo's ``flatten=True``; an empty batch ``(0, in)`` gives ``(0, out)``.

    With ``capacity`` (one int for every hidden layer or one per layer, each ``>=`` the width) the
    hidden layers are stored at that size, the inactive neurons have zero weights, their activations
    are masked to exactly 0 (so they get zero gradients and an optimizer leaves them at zero), and
    the active widths are the variable ``variables["growth"]["widths"]`` (int32 ``(L,)``,
    initialised to ``hidden_features``). :func:`jaxlinear.growing.grow` fills the bucket and moves
    to a larger one (:func:`bucket_capacity`) only when it is full, so growth recompiles rarely.
    Apply such a model with all its variables: ``model.apply({"params": p, "growth": g}, x)``.

    ``init`` returns ``params`` (and ``growth`` with ``capacity``) only: the zero probes on the
    growable layers' pre-activations (``perturb``, a ``"perturbations"`` collection shaped like a
    batch) are made by :func:`jaxlinear.growing.update_statistics` for each batch, never by init,
    so init's whole variables apply to any batch size.

    Attributes:
        in_features: input size (after flattening).
        out_features: output size.
        hidden_features: hidden width(s); with ``capacity`` the initial active widths.
        num_hidden_layers: number of hidden layers ``L >= 1``.
        activation: a name of :data:`jaxlinear.growing.ACTIVATIONS` (``"selu"``, gromo's default,
            ``"relu"``, ``"tanh"``, ...) or any JAX callable; σ'(0⁺) comes from gromo's table for
            the names and by autodiff otherwise.
        use_bias: add biases (gromo's ``use_bias``).
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        capacity: None, or the stored size of the hidden layers (see above).
        kernel_axes: None, or the logical axis names of each layer's kernel ``(in, out)``: one pair
            (or None) per layer, ``num_hidden_layers + 1`` in all, e.g. ``(("embed", "mlp"),
            ("mlp", "embed"))``; the params are then ``nn.LogicallyPartitioned`` boxes (each bias
            named as its kernel's output) for ``nn.get_partition_spec``. Growth changes the shapes,
            so a grown model is re-sharded from its new abstract init.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 0, 1, "tanh")
        >>> params = model.init(jax.random.key(0), jnp.ones((2, 5)))["params"]
        >>> jax.tree.map(jnp.shape, params)["layers_1"]
        {'bias': (3,), 'kernel': (0, 3)}
        >>> model.apply({"params": params}, jnp.ones((2, 5))).shape
        (2, 3)
        >>> bucketed = jl.growing.GrowingMLP(5, 3, 2, 1, jnp.tanh, capacity=8)
        >>> variables = bucketed.init(jax.random.key(0), jnp.ones((2, 5)))
        >>> variables["params"]["layers_0"]["kernel"].shape, variables["growth"]["widths"].tolist()
        ((5, 8), [2])
    """

    in_features: int
    out_features: int
    hidden_features: int | tuple[int, ...]
    num_hidden_layers: int
    activation: str | Callable[[Array], Array] = "selu"
    use_bias: bool = True
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None
    capacity: int | tuple[int, ...] | None = None
    kernel_axes: tuple[Axes, ...] | None = None

    def __post_init__(self) -> None:
        check_positive_int("in_features", self.in_features)
        check_positive_int("out_features", self.out_features)
        check_positive_int("num_hidden_layers", self.num_hidden_layers)
        check_activation("activation", self.activation)
        check_bool("use_bias", self.use_bias)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        hidden = _widths_tuple("hidden_features", self.hidden_features, self.num_hidden_layers)
        if isinstance(self.hidden_features, list | tuple):
            object.__setattr__(self, "hidden_features", hidden)
        if self.capacity is not None:
            cap = _widths_tuple("capacity", self.capacity, self.num_hidden_layers)
            if any(c < h for c, h in zip(cap, hidden, strict=True)):
                raise ValueError(
                    f"`capacity` must be >= the hidden widths {hidden} in every layer, "
                    f"got {self.capacity!r}."
                )
            object.__setattr__(self, "capacity", cap)
        if self.kernel_axes is not None:
            if isinstance(self.kernel_axes, str) or not isinstance(self.kernel_axes, list | tuple):
                raise TypeError(
                    "`kernel_axes` must be None or one pair of names (or None) per layer, got "
                    f"{self.kernel_axes!r}."
                )
            if len(self.kernel_axes) != self.num_hidden_layers + 1:
                raise ValueError(
                    f"`kernel_axes` must have one entry per layer ({self.num_hidden_layers + 1}: "
                    f"num_hidden_layers + 1), got {len(self.kernel_axes)}."
                )
            axes = tuple(layer_axes(a, None, 2)[0] for a in self.kernel_axes)
            object.__setattr__(self, "kernel_axes", axes)
        super().__post_init__()

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """The hidden widths ``(h₁, …, h_L)`` (with ``capacity``: the initial active widths)."""
        return _widths_tuple("hidden_features", self.hidden_features, self.num_hidden_layers)

    @property
    def capacity_widths(self) -> tuple[int, ...]:
        """``capacity`` as the tuple ``__post_init__`` made of it (``()`` without a capacity)."""
        return cast(tuple[int, ...], self.capacity or ())

    @property
    def widths(self) -> tuple[int, ...]:
        """``(in, h₁, …, h_L, out)`` at the params' shapes (the capacity when set)."""
        hidden = self.capacity_widths if self.capacity is not None else self.hidden_widths
        return (self.in_features, *hidden, self.out_features)

    @property
    def num_layers(self) -> int:
        return self.num_hidden_layers + 1

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        check_floating_array("x", x)
        check_min_ndim("x", x, 2, "(batch, features...)")
        x = jnp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))  # no -1: empty batches
        widths = self.widths
        if x.shape[-1] != widths[0]:
            raise ValueError(f"`x` must have {widths[0]} features (flattened), got {x.shape}.")
        act = activation_function(self.activation)
        active = None
        initial = (self.in_features, *self.hidden_widths, self.out_features)
        if self.capacity is not None:
            active = self.variable(
                GROWTH, "widths", lambda: jnp.asarray(self.hidden_widths, jnp.int32)
            ).value
        masks = active_masks(self, active)
        for i in range(self.num_layers):
            layer = GrowableLinear(
                widths[i + 1],
                use_bias=self.use_bias,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                precision=self.precision,
                kernel_axes=None if self.kernel_axes is None else self.kernel_axes[i],
                active_in=initial[i] if active is not None else None,
                active_out=initial[i + 1] if active is not None else None,
                name=f"layers_{i}",
            )
            self.sow("intermediates", f"input_{i}", x)
            pre = layer(x)
            if active is not None and i > 0:  # no active input: zeros, the bias ignored (gromo)
                pre = mask_empty_input(pre, active, i)
            if i > 0 and not self.is_initializing():
                # a zero probe on each growable layer's pre-activation (its gradient is g); not at
                # init: a probe shaped like the init batch would be added to every later batch
                pre = self.perturb(f"pre_activity_{i}", pre)
            if i < self.num_layers - 1:
                # inactive neurons are exactly 0 (and get no gradient)
                x = mask_inactive(act(pre), masks[i + 1])
            else:
                x = pre
        return x


def split_variables(model: GrowingMLP, variables: PyTree) -> tuple[PyTree, Array | None, bool]:
    """``(params, active widths or None, given as variables)`` from params or a variables dict."""
    if not isinstance(variables, Mapping):
        raise TypeError(
            f"`params` must be a dict of the model's params or variables, got "
            f"{type(variables).__name__}."
        )
    wrapped = "params" in variables
    params = nn.unbox(variables["params"] if wrapped else variables)  # partitioned boxes: arrays
    widths = None
    if model.capacity is not None:
        if not wrapped or GROWTH not in variables or "widths" not in variables[GROWTH]:
            raise ValueError(
                "`params` of a GrowingMLP with `capacity` must be its variables "
                '{"params": ..., "growth": {"widths": ...}}, got keys '
                f"{sorted(variables)}."
            )
        widths = jnp.asarray(variables[GROWTH]["widths"])
        if widths.shape != (model.num_hidden_layers,):
            raise ValueError(
                f"`variables['growth']['widths']` must have shape ({model.num_hidden_layers},), "
                f"got {widths.shape}."
            )
        _check_active_widths(model, widths)
    return params, widths, wrapped


def _check_active_widths(model: GrowingMLP, widths: Array) -> None:
    """Raise unless the active widths are integers in ``[0, capacity]`` (when they are concrete)."""
    if not jnp.issubdtype(widths.dtype, jnp.integer):
        raise TypeError(
            f"`variables['growth']['widths']` must be integers, got dtype {widths.dtype}."
        )
    if isinstance(widths, Tracer):  # inside a jitted function: checked where it was made
        return
    values = np.asarray(jax.device_get(widths))
    cap = np.asarray(model.capacity)
    if (values < 0).any() or (values > cap).any():
        raise ValueError(
            f"`variables['growth']['widths']` must be in [0, capacity] = [0, {model.capacity}] per "
            f"layer, got {values.tolist()}."
        )


def join_variables(params: PyTree, widths: Array | None, wrapped: bool) -> PyTree:
    """The inverse of :func:`split_variables`."""
    if widths is not None:
        return {"params": params, GROWTH: {"widths": widths}}
    return {"params": params} if wrapped else params


def check_params(model: GrowingMLP, params: PyTree) -> None:
    """Raise unless ``params`` has the model's layers at the model's shapes."""
    widths = model.widths
    b = model.use_bias
    for i in range(model.num_layers):
        name = f"layers_{i}"
        layer = params.get(name) if isinstance(params, Mapping) else None
        if not isinstance(layer, Mapping) or "kernel" not in layer:
            raise ValueError(f"`params` must hold `{name}` with a kernel, got {layer!r:.80}.")
        want: dict[str, tuple[int, ...]] = {"kernel": (widths[i], widths[i + 1])}
        if b:
            want["bias"] = (widths[i + 1],)
        got = {k: tuple(np.shape(v)) for k, v in layer.items()}
        if got != want:
            raise ValueError(
                f"`params['{name}']` must have shapes {want} for the model's widths {widths}, "
                f"got {got}."
            )


def check_layer_index(model: GrowingMLP, name: str, value: Any, note: str = "") -> None:
    """Raise unless ``value`` (the argument ``name``) is a growable layer ``1 .. num_hidden_layers``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not 1 <= value <= model.num_hidden_layers
    ):
        raise ValueError(
            f"`{name}` must be a growable layer in [1, {model.num_hidden_layers}]{note}, "
            f"got {value!r}."
        )


def check_model(model: Any) -> None:
    """Raise ``TypeError`` unless ``model`` is a :class:`GrowingMLP` (every growth function's check)."""
    if not isinstance(model, GrowingMLP):
        raise TypeError(
            f"`model` must be a jaxlinear.growing.GrowingMLP, got {type(model).__name__}."
        )


def active_masks(model: GrowingMLP, widths: Array | None) -> list[Array | None]:
    """Per width index of ``model.widths``: a bool mask of the active units, or None (all)."""
    out: list[Array | None] = [None] * (model.num_layers + 1)
    if widths is not None:
        for j, cap in enumerate(model.widths[1:-1]):
            out[j + 1] = jnp.arange(cap) < widths[j]
    return out


def widths_of(model: GrowingMLP, widths: Array | None) -> tuple[int, ...]:
    """``(in, h₁, …, h_L, out)`` from the active hidden widths (None: the stored widths)."""
    if widths is None:
        return model.widths
    hidden = tuple(int(w) for w in np.asarray(jax.device_get(widths)))
    return (model.in_features, *hidden, model.out_features)


def mask_empty_input(pre: Array, widths: Array, i: int) -> Array:
    """Layer ``i >= 1`` of a bucketed model: zeros when its active input width is 0 (gromo ignores
    the bias of a layer with no input), else ``pre``."""
    return jnp.where(widths[i - 1] > 0, pre, jnp.zeros_like(pre))


def mask_inactive(x: Array, mask: Array | None) -> Array:
    """``x`` with the inactive units (``mask`` False) exactly 0; ``x`` itself without a mask."""
    return x if mask is None else jnp.where(mask, x, jnp.zeros_like(x))


def active_widths(model: GrowingMLP, variables: PyTree) -> tuple[int, ...]:
    """The active widths ``(in, h₁, …, h_L, out)`` (the stored ones for a model without capacity).

    Args:
        model: a GrowingMLP.
        variables: its variables (or params, without capacity).

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 2, 2, capacity=8)
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 5)))
        >>> jl.growing.active_widths(model, variables)
        (5, 2, 2, 3)
    """
    _, widths, _ = split_variables(model, variables)
    return widths_of(model, widths)
