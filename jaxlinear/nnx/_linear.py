"""``jl.nnx.Linear``: :class:`jaxlinear.Linear` as a native Flax NNX module (same params, same numbers)."""

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxlinear import nn as jnn
from jaxlinear._typing import DotGeneralT, Dtype, Initializer, PrecisionLike
from jaxlinear.layers import DenseCore
from jaxlinear.nnx._common import NNXLayer
from jaxlinear.parametrizations import Parametrization

__all__ = ["Linear"]


class Linear(DenseCore, NNXLayer):
    """A dense layer with ``torch.nn.Linear``'s init, as an NNX module: ``(..., in) -> (..., out)``.

    The NNX front end of :class:`jaxlinear.Linear`, over the same layer core (:mod:`jaxlinear.layers`):
    the same params (``kernel`` ``(in, out)``, ``bias`` ``(out,)``, as ``nnx.Param``), the same checks,
    forward (:func:`~jaxlinear.layers.linear_forward`: equal params give bit-identical outputs), init
    distributions (U(±1/√in) without a parametrization, inferno's N(0, s²) with one) and
    learning-rate rule (:meth:`lr_rule`).

    Random streams differ from linen's: linen draws each param from the ``"params"`` key folded with
    the module's path and the param's name, so ``jl.Linear(...).init(jax.random.key(0), x)`` depends
    on names only. NNX draws from ``rngs.params()``, a counter: each draw takes the next key of the
    stream (kernel first, then bias), so the numbers depend on the order layers are built. The same
    seed therefore gives other numbers than linen (the same distribution); port exact weights with
    :func:`jaxlinear.interop.from_torch` and ``nnx.update``.

    Args:
        in_features: input size, an int in ``[0, 2**31 - 1]`` (0 gives zeros, as torch).
        out_features: output size, an int in ``[1, 2**31 - 1]``.
        use_bias: add a bias; a bool.
        parametrization: None (torch.nn.Linear's init) or a parametrization (``"mup"``,
            ``MaximalUpdate()``, ...): the layer is then ``inferno.bnn.Linear``.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.
        kernel_axes: logical axis names of the kernel's two dims (``("embed", "mlp")``), stored as
            the params' ``out_sharding`` metadata (read by ``nnx.get_partition_spec``), or None.
        bias_axes: the bias's axis name, a 1-tuple; default: the kernel's last name.
        kernel_init: None (torch's or the parametrization's init) or an initializer
            ``(key, shape, dtype) -> Array``; an error with a parametrization.
        bias_init: None or an initializer for the bias, likewise.
        dot_general: None (jaxlinear's product) or a function with ``jax.lax.dot_general``'s
            signature, called with ``precision=`` as Flax's ``nnx.Linear`` calls it (no
            ``dot_general_cls``: Flax's ``nnx.Linear`` has none).
        rngs: an ``nnx.Rngs`` with a ``params`` stream (or a default one).

    Attributes:
        kernel: ``nnx.Param`` ``(in_features, out_features)``.
        bias: ``nnx.Param`` ``(out_features,)``, or None without a bias.

    Raises:
        TypeError, ValueError: for a bad argument (the messages of :class:`jaxlinear.Linear`).

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> layer = jl.nnx.Linear(3, 4, rngs=nnx.Rngs(0))
        >>> layer.kernel.shape, layer.bias.shape
        ((3, 4), (4,))
        >>> layer(jnp.ones((5, 2, 3))).shape
        (5, 2, 4)
    """

    _linen = jnn.Linear

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = True,
        parametrization: Parametrization | str | None = None,
        layer_type: str = "hidden",
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
        self._build(locals())
