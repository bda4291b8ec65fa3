"""``jl.nnx.NLinear``: :class:`jaxlinear.NLinear` (delu.nn.NLinear) as a native Flax NNX module."""

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxlinear import nn as jnn
from jaxlinear._typing import DotGeneralT, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import NLinearCore, normalize_n
from jaxlinear.nnx._common import NNXLayer
from jaxlinear.parametrizations import Parametrization

__all__ = ["NLinear"]


class NLinear(NLinearCore, NNXLayer):
    """N separate linear layers applied in parallel, as an NNX module: ``(..., *n, in) -> (..., *n, out)``.

    The NNX front end of :class:`jaxlinear.NLinear` (``delu.nn.NLinear``), over the same layer core
    (:mod:`jaxlinear.layers`): params ``kernel`` ``(*n, in, out)`` and ``bias`` ``(*n, out)``
    (``nnx.Param``), the same checks, forward (:func:`~jaxlinear.layers.nlinear_forward`: equal params
    give bit-identical outputs), init (U(±1/√in), or the parametrization's N(0, s²) with per-member
    fans) and learning-rate rule. Random streams:
    see :class:`jaxlinear.nnx.Linear`.

    Args:
        n: the number of layers, an int or a tuple of ints (a grid of layers).
        in_features: input size of each layer, an int in ``[0, 2**31 - 1]``.
        out_features: output size of each layer, an int in ``[1, 2**31 - 1]``.
        use_bias: add a bias; a bool.
        parametrization: None (delu's init) or a parametrization, as in :class:`jaxlinear.NLinear`.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``.
        layout: ``"batch_major"`` ``(..., *n, in)`` or ``"member_major"`` ``(*n, ..., in)``.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        kernel_axes: logical axis names of the kernel's dims (``len(n) + 2`` names: members, in,
            out), or None.
        bias_axes: the bias's names; default: the kernel's member names plus its last name.
        kernel_init: None (delu's or the parametrization's init) or an initializer of the whole
            kernel ``(*n, in, out)``; an error with a parametrization.
        bias_init: None or an initializer for the bias, likewise.
        dot_general: None or a dot product function, as in :class:`jaxlinear.nnx.Linear`; the
            member dims are its batch dims.
        rngs: an ``nnx.Rngs`` with a ``params`` stream.

    Attributes:
        kernel: ``nnx.Param`` ``(*n, in_features, out_features)``.
        bias: ``nnx.Param`` ``(*n, out_features)``, or None.

    Raises:
        TypeError, ValueError: for a bad argument (the messages of :class:`jaxlinear.NLinear`).

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> layer = jl.nnx.NLinear(3, 5, 4, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape, layer(jnp.ones((2, 3, 5))).shape
        ((3, 5, 4), (2, 3, 4))
    """

    _linen = jnn.NLinear

    def __init__(
        self,
        n: int | tuple[int, ...],
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = True,
        parametrization: Parametrization | str | None = None,
        layer_type: str = "hidden",
        layout: str = "batch_major",
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        precision: PrecisionLike = None,
        kernel_axes: Sequence[str | None] | None = None,
        bias_axes: Sequence[str | None] | None = None,
        kernel_init: Initializer | None = None,
        bias_init: Initializer | None = None,
        dot_general: DotGeneralT | None = None,
        rngs: nnx.Rngs,
    ) -> None:
        n = normalize_n(n)  # stored as a tuple
        self._build(locals())
