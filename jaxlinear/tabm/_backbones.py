"""tabm's MLP backbones: plain, packed (k MLPs), mini (one shared MLP after a per-member affine) and
BatchEnsemble (TabM's own), each ``n_blocks`` of ``linear -> activation -> dropout``."""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxlinear._checks import (
    check_bool,
    check_choice,
    check_dim,
    check_floating_dtype,
    check_positive_int,
    check_real,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike
from jaxlinear.nn import Linear
from jaxlinear.tabm._activations import get_activation
from jaxlinear.tabm._checks import check_members
from jaxlinear.tabm._elementwise_affine import ElementwiseAffine
from jaxlinear.tabm._linear_batch_ensemble import LinearBatchEnsemble
from jaxlinear.tabm._linear_ensemble import LinearEnsemble
from jaxlinear.tabm._scaling import SCALING_INITS, check_chunks

__all__ = [
    "MLPBackbone",
    "MLPBackboneBatchEnsemble",
    "MLPBackboneEnsemble",
    "MLPBackboneMiniEnsemble",
]


class _Blocks(nn.Module):
    """The fields and block loop shared by the backbones (subclasses make the linear layers)."""

    n_blocks: int
    d_block: int
    dropout: float = 0.0
    activation: str = "ReLU"
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None

    def __post_init__(self) -> None:
        check_positive_int("n_blocks", self.n_blocks)
        check_positive_int("d_block", self.d_block)
        check_dim("d_block", self.d_block)
        rate = check_real("dropout", self.dropout, min_value=0.0)
        if rate >= 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {self.dropout!r}.")
        get_activation(self.activation)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    def _linear(self, index: int) -> nn.Module:
        raise NotImplementedError

    def _blocks(self, x: Array, deterministic: bool) -> Array:
        act = get_activation(self.activation)
        for i in range(self.n_blocks):
            x = act(self._linear(i)(x))
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, name=f"dropout_{i}")(x, deterministic=deterministic)
        return x

    def _common(self) -> dict:
        return {"dtype": self.dtype, "param_dtype": self.param_dtype, "precision": self.precision}


class MLPBackbone(_Blocks):
    """``tabm.MLPBackbone``: ``n_blocks`` of ``Linear(d_block) -> activation -> dropout``.

    ``(..., d_in) -> (..., d_block)``. Params ``blocks_{i}`` are :class:`jaxlinear.Linear` (torch
    ``blocks.{i}.0``).

    Attributes:
        n_blocks: the number of blocks (depth).
        d_block: the width.
        dropout: the dropout rate (``deterministic=False`` and a ``"dropout"`` rng to apply it).
        activation: a ``torch.nn`` activation name (see :data:`jaxlinear.tabm.ACTIVATIONS`).
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> mlp = jl.tabm.MLPBackbone(n_blocks=2, d_block=8)
        >>> variables = mlp.init(jax.random.key(0), jnp.ones((4, 3)))
        >>> mlp.apply(variables, jnp.ones((4, 3))).shape
        (4, 8)
    """

    def _linear(self, index: int) -> nn.Module:
        return Linear(self.d_block, name=f"blocks_{index}", **self._common())

    @nn.compact
    def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
        return self._blocks(x, deterministic)


class _EnsembleBlocks(_Blocks):
    k: int = 0  # required; validated below

    def __post_init__(self) -> None:
        check_positive_int("k", self.k)
        super().__post_init__()

    def _check_input(self, x: Array) -> Array:
        return check_members(x, self.k, "d_in")


class MLPBackboneEnsemble(_EnsembleBlocks):
    """``tabm.MLPBackboneEnsemble`` (TabM-packed): k independent MLPs, ``(..., k, d_in) -> (..., k, d_block)``.

    Every block is a :class:`LinearEnsemble` ``blocks_{i}`` (torch ``blocks.{i}.0``).

    Attributes:
        n_blocks: the number of blocks (depth).
        d_block: the width.
        dropout: the dropout rate.
        activation: a ``torch.nn`` activation name.
        k: the ensemble size.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> mlp = jl.tabm.MLPBackboneEnsemble(n_blocks=2, d_block=8, k=4)
        >>> variables = mlp.init(jax.random.key(0), jnp.ones((5, 4, 3)))
        >>> variables["params"]["blocks_1"]["kernel"].shape
        (4, 8, 8)
    """

    def _linear(self, index: int) -> nn.Module:
        return LinearEnsemble(self.d_block, k=self.k, name=f"blocks_{index}", **self._common())

    @nn.compact
    def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
        return self._blocks(self._check_input(x), deterministic)


class MLPBackboneMiniEnsemble(_EnsembleBlocks):
    """``tabm.MLPBackboneMiniEnsemble`` (TabM-mini): a per-member :class:`ElementwiseAffine`, then
    one MLP shared by the k members, ``(..., k, d_in) -> (..., k, d_block)``.

    Params: ``affine`` (``scale`` ``(k, d_in)``, ``bias`` when ``affine_bias``) and ``blocks_{i}``
    (:class:`jaxlinear.Linear`; torch ``affine`` and ``blocks.{i}.0``).

    Attributes:
        n_blocks: the number of blocks (depth).
        d_block: the width.
        dropout: the dropout rate.
        activation: a ``torch.nn`` activation name.
        k: the ensemble size.
        affine_scaling_init: ``"random-signs"`` or ``"normal"`` (the affine's scale).
        affine_scaling_init_chunks: its chunk sizes, or None.
        affine_bias: give the affine a bias (TabM: False).
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> mlp = jl.tabm.MLPBackboneMiniEnsemble(
        ...     n_blocks=1, d_block=8, k=4, affine_scaling_init="normal")
        >>> variables = mlp.init(jax.random.key(0), jnp.ones((5, 4, 3)))
        >>> jax.tree.map(jnp.shape, variables["params"]["affine"])
        {'scale': (4, 3)}
    """

    affine_scaling_init: str = "random-signs"
    affine_scaling_init_chunks: Sequence[int] | None = None
    affine_bias: bool = False

    def __post_init__(self) -> None:
        check_choice("affine_scaling_init", self.affine_scaling_init, SCALING_INITS[:2])
        check_chunks("affine_scaling_init_chunks", self.affine_scaling_init_chunks)
        check_bool("affine_bias", self.affine_bias)
        super().__post_init__()

    def _linear(self, index: int) -> nn.Module:
        return Linear(self.d_block, name=f"blocks_{index}", **self._common())

    @nn.compact
    def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
        x = self._check_input(x)
        x = ElementwiseAffine(
            (self.k, x.shape[-1]),
            use_bias=self.affine_bias,
            scaling_init=self.affine_scaling_init,
            scaling_init_chunks=self.affine_scaling_init_chunks,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="affine",
        )(x)
        return self._blocks(x, deterministic)


class MLPBackboneBatchEnsemble(_EnsembleBlocks):
    """``tabm.MLPBackboneBatchEnsemble`` (TabM): every block a :class:`LinearBatchEnsemble`,
    ``(..., k, d_in) -> (..., k, d_block)``.

    With ``tabm_init`` (TabM's init) only the first ``r`` is random (``scaling_init``, with
    ``start_scaling_init_chunks``); every other ``r`` and ``s`` starts at ones, so at init the k
    members differ only by their first scaling. Without it every ``r`` and ``s`` is drawn from
    ``scaling_init``. Params ``blocks_{i}`` (torch ``blocks.{i}.0``).

    Attributes:
        n_blocks: the number of blocks (depth).
        d_block: the width.
        dropout: the dropout rate.
        activation: a ``torch.nn`` activation name.
        k: the ensemble size.
        tabm_init: TabM's init (see above).
        scaling_init: ``"random-signs"`` or ``"normal"``.
        start_scaling_init_chunks: the chunk sizes of the first ``r``, or None.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> mlp = jl.tabm.MLPBackboneBatchEnsemble(
        ...     n_blocks=2, d_block=8, k=4, tabm_init=True, scaling_init="random-signs")
        >>> variables = mlp.init(jax.random.key(0), jnp.ones((5, 4, 3)))
        >>> jax.tree.map(jnp.shape, variables["params"]["blocks_0"])
        {'bias': (4, 8), 'kernel': (3, 8), 'r': (4, 3), 's': (4, 8)}
    """

    tabm_init: bool = True
    scaling_init: str = "random-signs"
    start_scaling_init_chunks: Sequence[int] | None = None

    def __post_init__(self) -> None:
        check_bool("tabm_init", self.tabm_init)
        check_choice("scaling_init", self.scaling_init, SCALING_INITS[:2])
        check_chunks("start_scaling_init_chunks", self.start_scaling_init_chunks)
        super().__post_init__()

    def _linear(self, index: int) -> nn.Module:
        if self.tabm_init:
            init = (self.scaling_init, "ones") if index == 0 else "ones"
        else:
            init = self.scaling_init
        return LinearBatchEnsemble(
            self.d_block,
            k=self.k,
            scaling_init=init,
            first_scaling_init_chunks=self.start_scaling_init_chunks if index == 0 else None,
            name=f"blocks_{index}",
            **self._common(),
        )

    @nn.compact
    def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
        return self._blocks(self._check_input(x), deterministic)
