"""``TabM`` (tabm 0.0.3): one-hot categorical features and optional numerical embeddings, an ensemble
view, a backbone of k MLPs (BatchEnsemble, mini or packed) and a :class:`LinearEnsemble` head."""

import math
import warnings
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlinear._checks import check_choice, check_floating_dtype, check_positive_int, concrete
from jaxlinear._typing import Array, Dtype, PrecisionLike
from jaxlinear.tabm._backbones import (
    MLPBackboneBatchEnsemble,
    MLPBackboneEnsemble,
    MLPBackboneMiniEnsemble,
)
from jaxlinear.tabm._ensemble_view import ensemble_view
from jaxlinear.tabm._linear_embeddings import LinearReLUEmbeddings
from jaxlinear.tabm._linear_ensemble import LinearEnsemble
from jaxlinear.tabm._periodic_embeddings import PeriodicEmbeddings
from jaxlinear.tabm._piecewise_linear import PiecewiseLinearEmbeddings

__all__ = ["ARCH_TYPES", "TabM", "make_tabm_backbone"]

#: TabM's architectures, ``"tabm"`` (BatchEnsemble backbone), ``"tabm-mini"`` (one shared MLP after
#: a per-member affine) and ``"tabm-packed"`` (k independent MLPs).
ARCH_TYPES = ("tabm", "tabm-mini", "tabm-packed")

_EMBEDDINGS = (LinearReLUEmbeddings, PeriodicEmbeddings, PiecewiseLinearEmbeddings)
_REQUIRED = ("n_blocks", "d_block", "dropout", "k")


def make_tabm_backbone(
    *,
    n_blocks: int,
    d_block: int,
    dropout: float,
    activation: str = "ReLU",
    k: int,
    arch_type: str = "tabm",
    start_scaling_init: str | None,
    start_scaling_init_chunks: Sequence[int] | None,
    dtype: Dtype | None = None,
    param_dtype: Dtype = jnp.float32,
    precision: PrecisionLike = None,
    name: str | None = None,
) -> nn.Module:
    """tabm's ``make_tabm_backbone``: the backbone module of an ``arch_type`` (``d_in`` is inferred).

    Args:
        n_blocks: depth.
        d_block: width.
        dropout: dropout rate.
        activation: a ``torch.nn`` activation name.
        k: the ensemble size.
        arch_type: ``"tabm"``, ``"tabm-mini"`` or ``"tabm-packed"``.
        start_scaling_init: the first scaling's init (``"random-signs"`` / ``"normal"``); must be
            None for ``"tabm-packed"`` and not None otherwise.
        start_scaling_init_chunks: its chunk sizes (one per feature), or None.
        dtype: computation dtype.
        param_dtype: params dtype.
        precision: passed to ``lax.dot_general``.
        name: the module name (``"backbone"`` inside :class:`TabM`).

    Returns:
        An :class:`MLPBackboneBatchEnsemble` (TabM init), :class:`MLPBackboneMiniEnsemble` (affine
        without bias) or :class:`MLPBackboneEnsemble`.

    Raises:
        ValueError: for an unknown ``arch_type`` or a ``start_scaling_init`` that does not fit it.

    Example:
        >>> b = make_tabm_backbone(n_blocks=2, d_block=8, dropout=0.0, k=4, arch_type="tabm-packed",
        ...                        start_scaling_init=None, start_scaling_init_chunks=None)
        >>> type(b).__name__
        'MLPBackboneEnsemble'
    """
    check_choice("arch_type", arch_type, ARCH_TYPES)
    if arch_type == "tabm-packed":
        if start_scaling_init is not None:
            raise ValueError(
                f"`start_scaling_init` must be None when `arch_type` is 'tabm-packed', got "
                f"{start_scaling_init!r}."
            )
    elif start_scaling_init is None:
        raise ValueError(
            f"`start_scaling_init` must not be None when `arch_type` is {arch_type!r}."
        )
    if start_scaling_init is None and start_scaling_init_chunks is not None:
        raise ValueError("`start_scaling_init_chunks` must be None when `start_scaling_init` is.")
    common: dict[str, Any] = {
        "n_blocks": n_blocks,
        "d_block": d_block,
        "dropout": dropout,
        "activation": activation,
        "k": k,
        "dtype": dtype,
        "param_dtype": param_dtype,
        "precision": precision,
        "name": name,
    }
    if arch_type == "tabm-packed":
        return MLPBackboneEnsemble(**common)
    assert start_scaling_init is not None
    if start_scaling_init_chunks is None:
        warnings.warn(
            "start_scaling_init_chunks is not provided, which may lead to suboptimal performance "
            "in some cases (tabm's warning)",
            stacklevel=2,
        )
    if arch_type == "tabm":
        return MLPBackboneBatchEnsemble(
            tabm_init=True,
            scaling_init=start_scaling_init,
            start_scaling_init_chunks=start_scaling_init_chunks,
            **common,
        )
    return MLPBackboneMiniEnsemble(
        affine_scaling_init=start_scaling_init,
        affine_scaling_init_chunks=start_scaling_init_chunks,
        affine_bias=False,
        **common,
    )


def _check_input(x: Any, name: str, n: int, what: str, integer: bool) -> Array | None:
    if n == 0:
        if x is not None:
            raise ValueError(f"`{name}` must be None: the model has no {what}.")
        return None
    if x is None:
        raise ValueError(f"`{name}` is required: the model has {n} {what}.")
    x = jnp.asarray(x)
    if integer and not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"`{name}` must be an integer array (category codes), got {x.dtype}.")
    if not integer and not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"`{name}` must be a floating array, got {x.dtype}.")
    if x.ndim not in (2, 3) or x.shape[-1] != n:
        raise ValueError(
            f"`{name}` must have shape (batch, {n}) or (batch, k, {n}), got shape {x.shape}."
        )
    return x


def _check_codes(codes: Array, cards: Sequence[int]) -> None:
    """Concrete category codes must lie in ``range(cardinality)`` (torch's ``one_hot`` raises too)."""
    values = concrete(codes)
    if values is None:
        return  # traced under jit: out-of-range codes give all-zero one-hot codes (documented)
    for i, c in enumerate(cards):
        col = values[:, i]
        bad = col[(col < 0) | (col >= c)]
        if bad.size:
            raise ValueError(
                f"`x_cat` feature {i} must hold category codes in [0, {c}) (its cardinality), "
                f"got {bad[0]}."
            )


class TabM(nn.Module):
    """``tabm.TabM``: k MLPs in one model, ``(x_num, x_cat) -> (batch, k, d_out)``.

    The numerical features (through ``num_embeddings`` if given, flattened) and the one-hot codes of
    the categorical features are concatenated, viewed k times (:func:`ensemble_view`), passed through
    the backbone of ``arch_type`` (:func:`make_tabm_backbone`, the first scaling chunked per feature)
    and a :class:`LinearEnsemble` head (none if ``d_out`` is None: the output is then the backbone's
    ``(batch, k, d_block)``). Inputs ``(batch, n)`` give every member the same object; ``(batch, k,
    n)`` gives each member its own (tabm's option (B)). Evaluate the mean of the k predictions
    (after softmax for classification); train on the mean of the k per-member losses.

    Use :meth:`make` for tabm's defaults; the direct constructor, like tabm's ``__init__``, needs
    ``n_blocks``, ``d_block``, ``dropout``, ``k`` and (except for ``"tabm-packed"``)
    ``start_scaling_init``. Params: ``num_embeddings`` (if any), ``backbone`` and ``output`` (torch
    ``num_module``, ``backbone``, ``output``: :func:`jaxlinear.interop.from_torch` ports a torch TabM
    in one call).

    Warning:
        Category codes outside ``range(cardinality)`` raise a ``ValueError`` as torch's ``one_hot``
        does when the codes are concrete; under ``jax.jit`` (traced codes, which cannot be checked)
        they give an all-zero one-hot code.

    Attributes:
        n_num_features: the number of numerical features (>= 0).
        cat_cardinalities: the number of categories of each categorical feature (may be empty).
        d_out: the output size per member, or None (no head).
        num_embeddings: :class:`LinearReLUEmbeddings`, :class:`PeriodicEmbeddings` or
            :class:`PiecewiseLinearEmbeddings` (version ``"B"``) for the numerical features, or None.
        n_blocks: backbone depth.
        d_block: backbone width.
        dropout: dropout rate (``deterministic=False`` and a ``"dropout"`` rng apply it).
        activation: a ``torch.nn`` activation name.
        k: the ensemble size.
        arch_type: ``"tabm"``, ``"tabm-mini"`` or ``"tabm-packed"``.
        start_scaling_init: ``"random-signs"`` or ``"normal"``; None for ``"tabm-packed"``.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> model = jl.tabm.TabM.make(n_num_features=3, cat_cardinalities=[2, 4], d_out=1, k=8,
        ...                           d_block=16)
        >>> x_num, x_cat = jnp.ones((5, 3)), jnp.zeros((5, 2), jnp.int32)
        >>> variables = model.init(jax.random.key(0), x_num, x_cat)
        >>> model.apply(variables, x_num, x_cat).shape  # (batch, k, d_out)
        (5, 8, 1)
    """

    n_num_features: int = 0
    cat_cardinalities: Sequence[int] | None = None
    d_out: int | None = None
    num_embeddings: nn.Module | None = None
    n_blocks: int | None = None
    d_block: int | None = None
    dropout: float | None = None
    activation: str = "ReLU"
    k: int | None = None
    arch_type: str = "tabm"
    start_scaling_init: str | None = None
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None

    def __post_init__(self) -> None:
        check_positive_int("n_num_features", self.n_num_features, allow_zero=True)
        cards = self.cardinalities
        if self.n_num_features == 0 and not cards:
            raise ValueError("`n_num_features` and `cat_cardinalities` must not both be empty.")
        if self.d_out is not None:
            check_positive_int("d_out", self.d_out)
        missing = [f for f in _REQUIRED if getattr(self, f) is None]
        if missing:
            raise TypeError(
                f"TabM needs {missing} (tabm's __init__ requires them); TabM.make(...) fills in "
                "tabm's defaults."
            )
        check_choice("arch_type", self.arch_type, ARCH_TYPES)
        emb = self.num_embeddings
        if emb is not None:
            if self.n_num_features == 0:
                raise ValueError("`num_embeddings` must be None when `n_num_features` is 0.")
            if not isinstance(emb, _EMBEDDINGS):
                raise TypeError(
                    f"`num_embeddings` must be one of {[c.__name__ for c in _EMBEDDINGS]}, got "
                    f"{type(emb).__name__}."
                )
            if isinstance(emb, PiecewiseLinearEmbeddings) and emb.resolved_version != "B":
                raise ValueError(
                    "`num_embeddings` must be PiecewiseLinearEmbeddings(..., version='B') in TabM "
                    "(as in tabm)."
                )
            if emb.output_shape[0] != self.n_num_features:
                raise ValueError(
                    f"`num_embeddings` was made for {emb.output_shape[0]} features, but "
                    f"`n_num_features` is {self.n_num_features}."
                )
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """``cat_cardinalities`` as a tuple (empty for None), each checked to be an int > 0."""
        cards = tuple(self.cat_cardinalities or ())
        for c in cards:
            check_positive_int("cat_cardinalities", c)
        return tuple(int(c) for c in cards)

    @property
    def d_features(self) -> tuple[int, ...]:
        """The representation size of every feature, numerical first (tabm's scaling chunks)."""
        d_num = 1 if self.num_embeddings is None else self.num_embeddings.output_shape[1]
        return (d_num,) * self.n_num_features + self.cardinalities

    @classmethod
    def make(cls, **kwargs: Any) -> "TabM":
        """tabm's ``TabM.make``: ``TabM(**kwargs)`` with tabm's defaults for what is not given.

        Defaults: ``n_blocks`` 2 with ``num_embeddings`` else 3, ``d_block`` 512, ``dropout`` 0.1,
        ``activation`` ``"ReLU"``, ``k`` 32, ``arch_type`` ``"tabm"``, ``start_scaling_init`` None for
        ``"tabm-packed"``, ``"normal"`` with ``num_embeddings``, else ``"random-signs"``.

        Args:
            kwargs: :class:`TabM`'s fields (``d_out`` is required, as in tabm).

        Returns:
            The module.

        Raises:
            TypeError: without ``d_out``, or for an unknown argument.

        Example:
            >>> m = TabM.make(n_num_features=4, d_out=1)
            >>> m.k, m.n_blocks, m.d_block, m.start_scaling_init
            (32, 3, 512, 'random-signs')
        """
        if "d_out" not in kwargs:
            raise TypeError("The required argument `d_out` is missing (None for no output head).")
        has_emb = kwargs.get("num_embeddings") is not None
        arch_type = kwargs.get("arch_type", "tabm")
        defaults = {
            "n_blocks": 2 if has_emb else 3,
            "d_block": 512,
            "dropout": 0.1,
            "activation": "ReLU",
            "k": 32,
            "arch_type": "tabm",
            "start_scaling_init": (
                None if arch_type == "tabm-packed" else "normal" if has_emb else "random-signs"
            ),
        }
        return cls(**(defaults | kwargs))

    @nn.compact
    def __call__(
        self, x_num: Array | None = None, x_cat: Array | None = None, *, deterministic: bool = True
    ) -> Array:
        """The k members' outputs ``(batch, k, d_out)``.

        Args:
            x_num: ``(batch, n_num_features)`` or ``(batch, k, n_num_features)`` floats, or None
                when the model has no numerical features.
            x_cat: ``(batch, n_cat)`` or ``(batch, k, n_cat)`` integer codes, or None.
            deterministic: no dropout (inference); False needs a ``"dropout"`` rng.

        Returns:
            ``(batch, k, d_out)`` (``d_block`` without a head).
        """
        cards = self.cardinalities
        x_num = _check_input(x_num, "x_num", self.n_num_features, "numerical features", False)
        x_cat = _check_input(x_cat, "x_cat", len(cards), "categorical features", True)
        present = [x for x in (x_num, x_cat) if x is not None]
        if len({(x.ndim, x.shape[0]) for x in present}) > 1:
            raise ValueError(
                f"`x_num` and `x_cat` must have the same batch size and rank, got shapes "
                f"{x_num.shape if x_num is not None else None} and "
                f"{x_cat.shape if x_cat is not None else None}."
            )
        batch, ndim = present[0].shape[0], present[0].ndim
        parts = []
        if x_num is not None:
            x = x_num.reshape(math.prod(x_num.shape[:-1]), x_num.shape[-1])
            if self.num_embeddings is not None:
                x = self.num_embeddings(x)
            parts.append(x.reshape(x.shape[0], math.prod(x.shape[1:])))
        if x_cat is not None:
            dtype = self.dtype or (parts[0].dtype if parts else self.param_dtype)
            codes = x_cat.reshape(math.prod(x_cat.shape[:-1]), x_cat.shape[-1])
            _check_codes(codes, cards)
            parts += [jax.nn.one_hot(codes[:, i], c, dtype=dtype) for i, c in enumerate(cards)]
        x = jnp.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        if ndim == 3:
            x = x.reshape(batch, present[0].shape[1], x.shape[-1])
        x = ensemble_view(x, self.k)  # type: ignore[arg-type]
        x = tabm_backbone(self, name="backbone")(x, deterministic=deterministic)
        if self.d_out is not None:
            x = tabm_output(self, name="output")(x)
        return x


def tabm_backbone(model: TabM, name: str | None = None) -> nn.Module:
    """The backbone of ``model``: :func:`make_tabm_backbone` of its fields (the first scaling chunked
    per feature), as ``TabM.__call__`` builds it (and the interop converter, for its param layout)."""
    return make_tabm_backbone(
        n_blocks=model.n_blocks,  # type: ignore[arg-type]
        d_block=model.d_block,  # type: ignore[arg-type]
        dropout=model.dropout,  # type: ignore[arg-type]
        activation=model.activation,
        k=model.k,  # type: ignore[arg-type]
        arch_type=model.arch_type,
        start_scaling_init=model.start_scaling_init,
        start_scaling_init_chunks=None if model.start_scaling_init is None else model.d_features,
        dtype=model.dtype,
        param_dtype=model.param_dtype,
        precision=model.precision,
        name=name,
    )


def tabm_output(model: TabM, name: str | None = None) -> LinearEnsemble:
    """The output layer of ``model`` (``d_out`` per member; ``model.d_out`` must not be None)."""
    return LinearEnsemble(
        model.d_out,  # type: ignore[arg-type]
        k=model.k,  # type: ignore[arg-type]
        dtype=model.dtype,
        param_dtype=model.param_dtype,
        precision=model.precision,
        name=name,
    )
