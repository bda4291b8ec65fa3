"""What every NNX layer shares: :class:`NNXLayer` (storing and checking the settings, creating the
params, ``__call__`` and the linen twin), logical axis names (:func:`jaxlinear.layers.layer_axes`) as
``nnx.Param`` sharding metadata, and the check that a layer's params are still floating arrays (NNX
params can be reassigned)."""

import dataclasses
from typing import Any, ClassVar

import flax.linen as nn
import numpy as np
from flax import nnx
from flax.core import meta

from jaxlinear._checks import check_dim, check_floating_array, check_positive_int
from jaxlinear._typing import Array
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


class NNXLayer(nnx.Module):
    """The NNX front end of a float layer whose core (:mod:`jaxlinear.layers`) comes first in its bases.

    ``class Linear(DenseCore, NNXLayer)``: ``__init__`` declares the signature and hands its arguments
    to :meth:`_build`, which checks them with the core (the linen layer's checks and messages), stores
    them as attributes of the same names (what the core reads) and creates ``kernel`` and ``bias``.
    ``linen_twin`` builds the linen layer ``_linen`` from the same attributes.
    """

    _linen: ClassVar[type[nn.Module]]
    dot_general_cls = None  # Flax's nnx.Linear takes `dot_general` only

    def _build(self, arguments: dict[str, Any]) -> None:
        """Check and store the ``__init__`` arguments (``locals()``), then create the params."""
        settings = {k: v for k, v in arguments.items() if k not in ("self", "__class__")}
        rngs = settings.pop("rngs")
        kernel_init, bias_init = settings.pop("kernel_init"), settings.pop("bias_init")
        check_positive_int("in_features", settings["in_features"], allow_zero=True)
        check_dim("in_features", settings["in_features"])
        check_positive_int("out_features", settings["out_features"])  # not linen's `features`
        for name, value in settings.items():
            setattr(self, name, value)
        core: Any = self
        core.check_settings(self.out_features, kernel_init, bias_init)
        self.in_features, self.out_features = int(self.in_features), int(self.out_features)
        self.use_bias = bool(self.use_bias)
        axes = core.param_axes()
        self.kernel_axes, self.bias_axes = axes["kernel"], axes["bias"]
        n, fans, dtype = core.member_shape, (self.in_features, self.out_features), core.param_dtype
        kernel_init, bias_init = core.param_inits(*fans, kernel_init, bias_init)
        self.kernel = param(kernel_init(rngs.params(), (*n, *fans), dtype), axes["kernel"])
        self.bias = (
            param(bias_init(rngs.params(), (*n, fans[1]), dtype), axes["bias"])
            if self.use_bias
            else nnx.data(None)
        )

    def __call__(self, x: Array) -> Array:
        """The layer's output on its current params.

        Args:
            x: a floating array ``(..., in_features)`` (``NLinear``: ``(..., *n, in_features)``, or
                ``(*n, ..., in_features)`` member-major).

        Returns:
            The output, ``(..., out_features)`` (``NLinear``: its members' layout).

        Raises:
            TypeError, ValueError: for a non-floating ``x`` or params, or shapes that do not fit.
        """
        core: Any = self
        kernel, bias = param_value(self.kernel), param_value(self.bias)
        check_params(kernel, bias)
        x = core.check_input(x, kernel.shape)
        return core.forward(x, kernel, bias)

    def linen_twin(self) -> nn.Module:
        """The linen layer that computes the same function on the same params.

        Returns:
            The linen layer (``jl.Linear(out_features, ...)``, ...) with this layer's settings;
            ``{"params": {"kernel": ..., "bias": ...}}`` built from this layer's params runs it with
            bit-identical outputs.

        Example:
            >>> import jaxlinear as jl
            >>> from flax import nnx
            >>> jl.nnx.Linear(3, 4, rngs=nnx.Rngs(0)).linen_twin().features
            4
            >>> type(jl.nnx.LinearReadout(3, 4, rngs=nnx.Rngs(0)).linen_twin()).__name__
            'LinearReadout'
        """
        skip = ("parent", "name", "features", "kernel_init", "bias_init")
        names = [f.name for f in dataclasses.fields(self._linen) if f.init and f.name not in skip]
        return self._linen(features=self.out_features, **{k: getattr(self, k) for k in names})
