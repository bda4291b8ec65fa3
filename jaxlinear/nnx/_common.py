"""What every NNX layer shares: logical axis names (:func:`jaxlinear.layers.layer_axes`) as ``nnx.Param``
sharding metadata, and the check that a layer's params are still floating arrays (NNX params can be
reassigned)."""

from typing import Any

import numpy as np
from flax import nnx
from flax.core import meta

from jaxlinear._checks import check_floating_array
from jaxlinear.layers import Axes


def param(value: Any, axes: Axes) -> nnx.Param:
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
