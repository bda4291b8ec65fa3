"""``PiecewiseLinearEncoding`` / ``PiecewiseLinearEmbeddings`` (rtdl_num_embeddings): each feature
encoded by its position among bin edges, then (embeddings) a linear map per feature."""

import warnings
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from flax.linen.dtypes import promote_dtype

from jaxlinear import functional
from jaxlinear._checks import (
    check_bool,
    check_choice,
    check_finite,
    check_floating_dtype,
    check_positive_int,
)
from jaxlinear._typing import Array, Dtype, PrecisionLike
from jaxlinear.initializers import torch_uniform
from jaxlinear.tabm._checks import check_features
from jaxlinear.tabm._linear_embeddings import LinearEmbeddings
from jaxlinear.tabm._lr_rule import TabmLrRule

__all__ = [
    "PLE_VERSIONS",
    "PiecewiseLinearEmbeddings",
    "PiecewiseLinearEncoding",
    "check_bins",
    "ple_constants",
]

#: The ``version`` values of :class:`PiecewiseLinearEmbeddings`: ``"A"`` (the original) and ``"B"``
#: (TabM's: a linear embedding plus a zero-initialized piecewise-linear part).
PLE_VERSIONS = ("A", "B")


def check_bins(bins: Sequence) -> list[np.ndarray]:
    """The bins as 1-D numpy arrays (dtype kept), checked as rtdl's ``_check_bins`` does.

    Raises ``ValueError`` for an empty list, a non-1-D item, fewer than two edges, non-finite or
    unsorted edges. A feature with a single bin (two edges) is accepted without rtdl's warning: its
    encoding is min-max scaling, unclamped.
    """
    if isinstance(bins, np.ndarray | str) or not isinstance(bins, Sequence) or not bins:
        raise ValueError(
            f"`bins` must be a non-empty list of 1-D arrays of bin edges (compute_bins), got {bins!r}."
        )
    out = []
    for i, b in enumerate(bins):
        b = np.asarray(getattr(b, "detach", lambda b=b: b)())  # torch tensors too
        if not np.issubdtype(b.dtype, np.floating):
            b = b.astype(np.float32)
        if b.ndim != 1:
            raise ValueError(f"`bins[{i}]` must be 1-D, got shape {b.shape}.")
        if len(b) < 2:
            raise ValueError(f"`bins[{i}]` must have at least two edges, got {len(b)}.")
        check_finite(f"bins[{i}]", b)
        if (b[:-1] >= b[1:]).any():
            raise ValueError(f"`bins[{i}]` must be strictly increasing, got {b}.")
        out.append(b)
    return out


def ple_constants(
    bins: Sequence,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """rtdl's ``_PiecewiseLinearEncodingImpl`` buffers: ``(weight, bias, single_bin_mask, mask)``.

    ``weight`` and ``bias`` are ``(n_features, max_n_bins)`` in the bins' dtype (``1/width`` and
    ``-left/width``, the last bin of every feature in the last column); ``single_bin_mask`` (features
    with one bin) and ``mask`` (the non-padding columns, when the features have different numbers of
    bins) are None where rtdl's are.

    Args:
        bins: per-feature bin edges (:func:`jaxlinear.tabm.compute_bins`).

    Returns:
        ``(weight, bias, single_bin_mask, mask)`` as numpy arrays (or None).

    Example:
        >>> w, b, single, mask = ple_constants([np.array([0.0, 1.0, 3.0], np.float32)])
        >>> w.tolist(), b.tolist(), single, mask
        ([[1.0, 0.5]], [[-0.0, -0.5]], None, None)
    """
    bins = check_bins(bins)
    dtype = np.result_type(*[b.dtype for b in bins])
    n_bins = [len(b) - 1 for b in bins]
    max_n_bins = max(n_bins)
    weight = np.zeros((len(bins), max_n_bins), dtype)
    bias = np.zeros((len(bins), max_n_bins), dtype)
    for i, edges in enumerate(bins):
        edges = edges.astype(dtype)
        width = np.diff(edges)
        w = (dtype.type(1.0) / width).astype(dtype)
        b = (-edges[:-1] / width).astype(dtype)
        weight[i, -1], bias[i, -1] = w[-1], b[-1]
        weight[i, : n_bins[i] - 1], bias[i, : n_bins[i] - 1] = w[:-1], b[:-1]
    single = np.array(n_bins) == 1
    mask = None
    if any(len(b) != len(bins[0]) for b in bins):
        mask = np.stack(
            [
                np.concatenate(
                    [np.ones(n - 1, bool), np.zeros(max_n_bins - n, bool), np.ones(1, bool)]
                )
                for n in n_bins
            ]
        )
    return weight, bias, (single if single.any() else None), mask


def _encode(x: Array, weight: np.ndarray, bias: np.ndarray, single: np.ndarray | None) -> Array:
    """``(..., n) -> (..., n, max_n_bins)``: rtdl's clamped ``bias + weight * x``.

    The clamps are written with ``where`` so that their gradient passes at the bounds (torch's
    ``clamp``), where ``jnp.clip`` would halve it.
    """
    lead = (1,) * (x.ndim - 1)
    w = jnp.asarray(weight, x.dtype).reshape(lead + weight.shape)
    b = jnp.asarray(bias, x.dtype).reshape(lead + bias.shape)
    z = b + w * x[..., None]
    if z.shape[-1] == 1:
        return z
    first = z[..., :1]
    first = jnp.where(first > 1.0, 1.0, first)
    mid = z[..., 1:-1]
    mid = jnp.where(mid < 0.0, 0.0, jnp.where(mid > 1.0, 1.0, mid))
    last = z[..., -1:]
    last_clamped = jnp.where(last < 0.0, 0.0, last)
    if single is not None:
        last_clamped = jnp.where(
            jnp.asarray(single).reshape(lead + (len(single), 1)), last, last_clamped
        )
    return jnp.concatenate([first, mid, last_clamped], axis=-1).astype(x.dtype)


class PiecewiseLinearEncoding(nn.Module):
    """``rtdl_num_embeddings.PiecewiseLinearEncoding``: ``(..., n_features) -> (..., total_n_bins)``.

    Feature values become ``[1, ..., 1, (x - left) / width, 0, ..., 0]`` over their bins (the first
    and last components unclamped on the outer side), concatenated over the features. No params.

    Attributes:
        bins: per-feature bin edges (:func:`jaxlinear.tabm.compute_bins`).

    Example:
        >>> import numpy as np, jax.numpy as jnp, jaxlinear as jl
        >>> m = jl.tabm.PiecewiseLinearEncoding([np.array([0.0, 1.0, 2.0, 4.0], np.float32)])
        >>> m.apply({}, jnp.array([[1.5]])).tolist()
        [[1.0, 0.5, 0.0]]
    """

    bins: Sequence

    def __post_init__(self) -> None:
        check_bins(self.bins)
        super().__post_init__()

    def __call__(self, x: Array) -> Array:
        weight, bias, single, mask = ple_constants(self.bins)
        x = check_features(x, len(weight))
        z = _encode(x, weight, bias, single)
        if mask is None:
            return z.reshape(*z.shape[:-2], z.shape[-2] * z.shape[-1])
        return z[..., np.asarray(mask)]


class _PLELinear(TabmLrRule):
    """rtdl's ``_NLinear`` of the embeddings: U(±1/√in) (version A) or zeros (version B)."""

    features: int
    use_bias: bool
    zeros: bool
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None

    @nn.compact
    def __call__(self, x: Array) -> Array:
        n, n_in = x.shape[-2:]
        init = nn.initializers.zeros_init() if self.zeros else torch_uniform(n_in)
        kernel = self.param("kernel", init, (n, n_in, self.features), self.param_dtype)
        bias = (
            self.param("bias", torch_uniform(n_in), (n, self.features), self.param_dtype)
            if self.use_bias
            else None
        )
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        return functional.nlinear(x, kernel, bias, precision=self.precision)


class PiecewiseLinearEmbeddings(nn.Module):
    """``rtdl_num_embeddings.PiecewiseLinearEmbeddings``: ``(..., n_features) -> (..., n_features, d_embedding)``.

    The piecewise-linear encoding of each feature (padded to ``max_n_bins``, rtdl's layout) goes
    through its own linear map (``linear``, kernel ``(n_features, max_n_bins, d_embedding)``, the
    math of :func:`jaxlinear.functional.nlinear`), then ReLU if ``activation``. Version ``"A"``: that
    map has a bias, U(±1/√max_n_bins). Version ``"B"`` (TabM's): no bias, a zero kernel, and a
    :class:`LinearEmbeddings` ``linear0`` added after the activation, so at init the whole is a
    linear embedding. The encoding's constants come from ``bins`` (not params).

    Warning:
        ``version=None`` means ``"A"`` with a warning, as in rtdl (which plans to make it an error).
        rtdl accepts only ``(batch, n_features)``; this takes any leading dims.

    Attributes:
        bins: per-feature bin edges (:func:`jaxlinear.tabm.compute_bins`).
        d_embedding: the embedding size.
        activation: apply ReLU to the piecewise-linear part (required, as in rtdl).
        version: ``"A"``, ``"B"`` or None.
        dtype: computation dtype; None promotes from the input and the params.
        param_dtype: dtype the params are created in.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> import jax, numpy as np, jax.numpy as jnp, jaxlinear as jl
        >>> X = np.random.default_rng(0).standard_normal((100, 3)).astype(np.float32)
        >>> m = jl.tabm.PiecewiseLinearEmbeddings(
        ...     jl.tabm.compute_bins(X, n_bins=8), 4, activation=False, version="B")
        >>> variables = m.init(jax.random.key(0), X)
        >>> jax.tree.map(jnp.shape, variables["params"])
        {'linear': {'kernel': (3, 8, 4)}, 'linear0': {'bias': (3, 4), 'kernel': (3, 4)}}
        >>> m.apply(variables, X).shape
        (100, 3, 4)
    """

    bins: Sequence
    d_embedding: int
    activation: bool | None = None
    version: str | None = None
    dtype: Dtype | None = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None

    def __post_init__(self) -> None:
        check_positive_int("d_embedding", self.d_embedding)
        if self.activation is None:
            raise TypeError("`activation` is required (True or False), as in rtdl_num_embeddings.")
        check_bool("activation", self.activation)
        if self.version is None:
            warnings.warn(
                "The `version` argument is not provided, so version='A' will be used (as in "
                "rtdl_num_embeddings); pass version='B' for TabM.",
                stacklevel=2,
            )
        else:
            check_choice("version", self.version, PLE_VERSIONS)
        check_bins(self.bins)
        check_floating_dtype("dtype", self.dtype, allow_none=True)
        check_floating_dtype("param_dtype", self.param_dtype)
        super().__post_init__()

    @property
    def resolved_version(self) -> str:
        """``version``, with None read as ``"A"``."""
        return self.version or "A"

    @property
    def output_shape(self) -> tuple[int, int]:
        """``(n_features, d_embedding)``, the output shape without the batch dims."""
        return (len(self.bins), self.d_embedding)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        weight, bias, single, _ = ple_constants(self.bins)
        x = check_features(x, len(weight))
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        is_b = self.resolved_version == "B"
        x_linear = (
            LinearEmbeddings(len(weight), self.d_embedding, **common, name="linear0")(x)
            if is_b
            else None
        )
        x_ple = _encode(x, weight, bias, single)
        x_ple = _PLELinear(
            self.d_embedding,
            use_bias=not is_b,
            zeros=is_b,
            precision=self.precision,
            **common,
            name="linear",
        )(x_ple)
        if self.activation:
            x_ple = nn.relu(x_ple)
        return x_ple if x_linear is None else x_linear + x_ple
