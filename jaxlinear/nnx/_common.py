"""What every NNX layer shares: logical axis names as ``nnx.Param`` sharding metadata, and the check that
a layer's params are still floating arrays of the right shapes (NNX params can be reassigned)."""

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.core import meta

from jaxlinear._checks import check_floating_array

Axes = tuple[str | None, ...]


def check_axes(name: str, axes: Any, ndim: int) -> Axes | None:
    """``axes`` as a tuple of ``ndim`` logical names (str or None), or None; else a clear error."""
    if axes is None:
        return None
    if isinstance(axes, str) or not isinstance(axes, Sequence):
        raise TypeError(
            f"`{name}` must be None or a tuple of logical axis names (str or None), one per "
            f"dimension, got {type(axes).__name__} {axes!r}."
        )
    axes = tuple(axes)
    if not all(a is None or isinstance(a, str) for a in axes):
        raise TypeError(f"`{name}` must hold str or None entries, got {axes!r}.")
    if len(axes) != ndim:
        raise ValueError(
            f"`{name}` must name each of the parameter's {ndim} dimensions, got {len(axes)}: "
            f"{axes!r}."
        )
    return axes


def default_bias_axes(kernel_axes: Axes | None, n_members: int = 0) -> Axes | None:
    """The kernel's leading member axes, if any, plus its last (output) axis."""
    if kernel_axes is None:
        return None
    return (*kernel_axes[:n_members], kernel_axes[-1])


def param(value: Any, axes: Axes | None) -> nnx.Param:
    """An ``nnx.Param`` carrying ``axes`` as its ``out_sharding`` metadata (what
    ``nnx.get_partition_spec`` reads), or a plain one.

    Under a mesh (``jax.set_mesh``) the value is sharded at creation as Flax's eager sharding does
    (logical names mapped by the active axis rules); without one the names are only recorded (Flax's
    own layers raise there), so a model is built the same way on one device and on a mesh.
    """
    if axes is None:
        return nnx.Param(value)
    eager = None if meta.global_mesh_defined() else False
    return nnx.Param(value, out_sharding=axes, eager_sharding=eager)


def param_value(p: Any) -> Any:
    """The array of an ``nnx.Param`` (or None for a missing bias)."""
    return None if p is None else p[...]


def check_params(kernel: Any, bias: Any, kernel_shape: tuple[int, ...] | None = None) -> None:
    """The layer's params are floating arrays (integer params would be promoted silently)."""
    check_floating_array("kernel", kernel)
    if bias is not None:
        check_floating_array("bias", bias)
        want = (*np.shape(kernel)[:-2], np.shape(kernel)[-1])
        if tuple(np.shape(bias)) != want:
            raise ValueError(
                f"`bias` must have shape {want} to match the kernel {tuple(np.shape(kernel))}, got "
                f"{tuple(np.shape(bias))}."
            )
    if kernel_shape is not None and tuple(np.shape(kernel)) != tuple(kernel_shape):
        raise ValueError(f"`kernel` must have shape {kernel_shape}, got {np.shape(kernel)}.")


def as_array(x: Any) -> Any:
    return jnp.asarray(x)
