"""``LinearEnsemble``: tabm's k independent linear layers (``delu.nn.NLinear`` math, k members)."""

import flax.linen as nn
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jaxlinear import functional
from jaxlinear._checks import (
    check_bool,
    check_choice,
    check_dim,
    check_floating_dtype,
    check_positive_int,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike
from jaxlinear.initializers import layer_inits
from jaxlinear.parametrizations import LAYER_TYPES, Parametrization, get_parametrization
from jaxlinear.tabm._checks import check_members
from jaxlinear.tabm._lr_rule import TabmLrRule

__all__ = ["LinearEnsemble"]


class LinearEnsemble(TabmLrRule):
    """``tabm.LinearEnsemble``: k linear layers applied in parallel, ``(..., k, in) -> (..., k, features)``.

    Member i maps ``x[..., i, :]`` with ``kernel[i]`` ``(in, features)`` and ``bias[i]``; the math is
    :func:`jaxlinear.functional.nlinear` (tabm's ``x.transpose(0, 1) @ weight``). Params: kernel ``(k,
    in, features)`` and bias ``(k, features)``, tabm's layout (no transpose), both drawn from
    U(±1/√in) as tabm does. With a ``parametrization`` each member is an ``inferno.bnn.Linear(in,
    features)`` (fans per member, never ``k·in``), as in :class:`jaxlinear.NLinear`.

    Attributes:
        features: output size of each member.
        k: the ensemble size.
        use_bias: add a per-member bias.
        parametrization: None (tabm's init) or a parametrization, as in :class:`jaxlinear.NLinear`.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"`` (used with a parametrization).
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.tabm.LinearEnsemble(3, k=4)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((5, 4, 2)))
        >>> jax.tree.map(jnp.shape, variables)
        {'params': {'bias': (4, 3), 'kernel': (4, 2, 3)}}
        >>> layer.apply(variables, jnp.ones((5, 4, 2))).shape
        (5, 4, 3)
    """

    features: int
    k: int
    use_bias: bool = True
    parametrization: Parametrization | str | None = None
    layer_type: str = "hidden"
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None

    def __post_init__(self) -> None:
        check_positive_int("features", self.features)
        check_dim("features", self.features)
        check_positive_int("k", self.k)
        check_bool("use_bias", self.use_bias)
        if self.parametrization is not None:
            get_parametrization(self.parametrization)
        check_choice("layer_type", self.layer_type, LAYER_TYPES)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = check_members(x, self.k)
        n_in = x.shape[-1]
        kernel_init, bias_init = layer_inits(
            self.parametrization, n_in, self.features, self.layer_type
        )
        kernel = self.param("kernel", kernel_init, (self.k, n_in, self.features), self.param_dtype)
        bias = (
            self.param("bias", bias_init, (self.k, self.features), self.param_dtype)
            if self.use_bias
            else None
        )
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        return functional.nlinear(x, kernel, bias, precision=self.precision)
