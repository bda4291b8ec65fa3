"""``ElementwiseAffine``: tabm's elementwise ``x * scale (+ bias)`` over the trailing dims."""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jaxlinear._checks import (
    check_bool,
    check_floating_array,
    check_floating_dtype,
    check_trailing_shape,
)
from jaxlinear._typing import Array, Dtype
from jaxlinear.tabm._lr_rule import TabmLrRule
from jaxlinear.tabm._scaling import check_chunks, scaling_init

__all__ = ["ElementwiseAffine"]


class ElementwiseAffine(TabmLrRule):
    """``tabm.ElementwiseAffine``: ``x * scale + bias`` with params of shape ``shape``, ``(..., *shape)``.

    Params: ``scale`` (tabm's ``weight``), drawn from ``scaling_init`` (with ``scaling_init_chunks``,
    one value per chunk of the last axis, see :func:`jaxlinear.tabm.scaling_init`), and ``bias``
    (zeros) when ``use_bias``. tabm's ``MLPBackboneMiniEnsemble`` uses it with ``shape=(k, d_in)``:
    the only per-member params of TabM-mini.

    Attributes:
        shape: the trailing shape of the input (and of the params), a tuple of ints.
        use_bias: add a bias (tabm's ``bias``).
        scaling_init: ``"random-signs"``, ``"normal"`` or ``"ones"``.
        scaling_init_chunks: chunk sizes of the last axis, or None.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> m = jl.tabm.ElementwiseAffine((3, 4), use_bias=True, scaling_init="normal")
        >>> variables = m.init(jax.random.key(0), jnp.ones((2, 3, 4)))
        >>> jax.tree.map(jnp.shape, variables["params"])
        {'bias': (3, 4), 'scale': (3, 4)}
    """

    shape: Sequence[int]
    use_bias: bool
    scaling_init: str
    scaling_init_chunks: Sequence[int] | None = None
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32

    def __post_init__(self) -> None:
        if isinstance(self.shape, int) or not all(isinstance(d, int) and d > 0 for d in self.shape):
            raise TypeError(f"`shape` must be a tuple of positive ints, got {self.shape!r}.")
        check_bool("use_bias", self.use_bias)
        scaling_init(
            self.scaling_init,
            check_chunks("scaling_init_chunks", self.scaling_init_chunks),
        )  # ValueError for a bad distribution
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        check_floating_array("x", x)
        shape = tuple(self.shape)
        check_trailing_shape("x", x, shape, "(the affine's `shape`)")
        init = scaling_init(self.scaling_init, self.scaling_init_chunks)
        scale = self.param("scale", init, shape, self.param_dtype)
        bias = (
            self.param("bias", nn.initializers.zeros_init(), shape, self.param_dtype)
            if self.use_bias
            else None
        )
        x, scale, bias = promote_dtype(x, scale, bias, dtype=self.dtype)
        lead = (1,) * (x.ndim - len(shape))
        y = x * scale.reshape(lead + shape)
        if bias is not None:
            y = bias.reshape(lead + shape) + y
        return y
