"""The linen front end's shared part: :class:`LinenLayer` (the settings check and ``__call__`` of every
float layer) and how the layers declare their params (``self.param``, boxed with logical axis names if
given)."""

from collections.abc import Callable
from typing import Any

import flax.linen as nn

from jaxlinear._checks import check_layer_params
from jaxlinear._typing import Array
from jaxlinear.layers import Axes

__all__ = ["LinenLayer", "declare", "declare_params", "existing", "stored_shape"]


def _named(init: Callable[..., Any], axes: Axes, name: str) -> Callable[..., Any]:
    """``init`` whose value is an ``nn.LogicallyPartitioned`` box with ``axes`` (``init`` if None)."""
    if axes is None:
        return init

    def boxed(*args: Any) -> Any:
        value = init(*args)
        if isinstance(value, nn.meta.AxisMetadata):
            raise ValueError(
                f"`{name}_init` returns partitioned values (`nn.with_logical_partitioning`, ...) and "
                f"`{name}_axes` names the axes too: name them once (`{name}_axes={axes!r}` and a plain "
                "initializer, or the wrapped initializer alone)."
            )
        return nn.LogicallyPartitioned(value, axes)

    return boxed


def declare(module: nn.Module, name: str, init: Callable[..., Any], axes: Axes, *args: Any) -> Any:
    """``module.param(name, init, *args)``, created as a ``LogicallyPartitioned`` box with ``axes``.

    The value returned is the plain array (Flax unboxes it), as ``nn.Dense`` with a partitioned
    initializer; the stored variable keeps the names for ``nn.get_partition_spec``.
    """
    kind = "kernel" if name == "kernel" else "bias" if name == "bias" else name
    return module.param(name, _named(init, axes, kind), *args)


def existing(module: nn.Module, name: str) -> Any:
    """The stored param ``name`` of a bound layer, unboxed, or None when it has none yet."""
    if not module.has_variable("params", name):
        return None
    return nn.unbox(module.get_variable("params", name))


def stored_shape(module: nn.Module, name: str = "kernel") -> tuple[int, ...] | None:
    """The shape of the stored param ``name`` of a bound layer, or None when it has none yet."""
    value = existing(module, name)
    return None if value is None else tuple(value.shape)


def declare_params(layer: Any, n_in: int) -> tuple[Any, Any]:  # layer: a LayerCore nn.Module
    """A linen layer's ``kernel`` ``(*n, in, features)`` and ``bias`` ``(*n, features)`` (or None).

    Inside the layer's compact ``__call__``: checks the params given to ``apply``
    (:func:`jaxlinear._checks.check_layer_params`), then declares them with the initializers
    (:meth:`jaxlinear.layers.DenseCore.param_inits` or the unit-scaled ones) and the sharding names
    (:meth:`~jaxlinear.layers.LayerCore.param_axes`) of the layer core ``layer`` inherits.
    """
    n, out = layer.member_shape, layer.features
    check_layer_params(layer, layer.use_bias, (*n, None, out))
    kernel_init, bias_init = layer.param_inits(n_in, out, layer.kernel_init, layer.bias_init)
    axes = layer.param_axes()
    kernel = declare(
        layer, "kernel", kernel_init, axes["kernel"], (*n, n_in, out), layer.param_dtype
    )
    if not layer.use_bias:
        return kernel, None
    return kernel, declare(layer, "bias", bias_init, axes["bias"], (*n, out), layer.param_dtype)


class LinenLayer(nn.Module):
    """The linen front end of a float layer whose core (:mod:`jaxlinear.layers`) comes first in its bases.

    ``class Linear(DenseCore, LinenLayer)`` with the fields ``features``, ``use_bias``, ... : the fields
    are checked at construction by the core's ``check_settings``; ``__call__`` checks the input,
    declares the params (:func:`declare_params`) and runs the core's ``forward``.
    """

    def __post_init__(self) -> None:
        core: Any = self
        core.check_settings(core.features, core.kernel_init, core.bias_init)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """The layer's output; the params are created at ``init``.

        Args:
            x: a floating array (``(..., in)``; ``(..., *n, in)`` for ``NLinear``).

        Returns:
            The layer's output.
        """
        core: Any = self
        x = core.check_input(x, stored_shape(self))
        kernel, bias = declare_params(self, x.shape[-1])
        return core.forward(x, kernel, bias)
