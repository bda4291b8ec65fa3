"""How the linen layers declare their params: ``self.param``, boxed with logical axis names if given."""

from collections.abc import Callable
from typing import Any

import flax.linen as nn

from jaxlinear.layers import Axes

__all__ = ["declare", "existing"]


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
