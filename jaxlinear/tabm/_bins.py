"""``compute_bins`` (rtdl_num_embeddings): bin edges for the piecewise-linear encoding, from quantiles
or from decision trees, computed in numpy the way torch does."""

from typing import Any

import numpy as np

from jaxlinear._checks import check_finite, check_positive_int
from jaxlinear.tabm._piecewise_linear import check_bins

__all__ = ["compute_bins"]


def _as_numpy(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor (duck-typed)
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"`{name}` must be a floating array, got dtype {array.dtype}.")
    return array


def _linspace(n: int, dtype: np.dtype) -> np.ndarray:
    """``torch.linspace(0, 1, n)`` in float32: ``start + step*i`` below halfway, ``end - step*(n-1-i)``
    above (torch's formula; both halves are exact at their ends)."""
    f = np.float32
    step = f(1.0) / f(n - 1)
    i = np.arange(n)
    low = (f(0.0) + step * i.astype(f)).astype(f)
    high = (f(1.0) - step * (n - 1 - i).astype(f)).astype(f)
    return np.where(i < n // 2, low, high).astype(dtype)


def _quantiles(X: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``torch.quantile(X, q, dim=0)`` (linear interpolation) in X's dtype: ``(len(q), n_features)``."""
    sorted_x = np.sort(X, axis=0)
    ranks = (q * X.dtype.type(len(X) - 1)).astype(X.dtype)
    below = np.floor(ranks).astype(np.int64)
    above = np.ceil(ranks).astype(np.int64)
    weights = (ranks - below.astype(X.dtype)).astype(X.dtype)[:, None]
    lo, hi = sorted_x[below], sorted_x[above]
    one = X.dtype.type(1.0)
    # torch's lerp: from the nearer end
    return np.where(weights < 0.5, lo + weights * (hi - lo), hi - (hi - lo) * (one - weights))


def compute_bins(
    X: Any,
    n_bins: int = 48,
    *,
    tree_kwargs: dict[str, Any] | None = None,
    y: Any = None,
    regression: bool | None = None,
) -> list[np.ndarray]:
    """rtdl's ``compute_bins``: per-feature bin edges for :class:`PiecewiseLinearEmbeddings`.

    Quantile bins (default): the ``n_bins + 1`` quantiles ``0, 1/n_bins, ..., 1`` of each column (linear
    interpolation, computed as ``torch.quantile`` does, in X's dtype), duplicates removed. Tree bins
    (``tree_kwargs`` given, needs scikit-learn): the column's min and max plus the split thresholds of
    a ``DecisionTreeRegressor`` (``regression=True``) or ``DecisionTreeClassifier`` with
    ``max_leaf_nodes=n_bins`` fitted on that column alone against ``y``.

    Args:
        X: the training features ``(n_objects, n_features)``, a floating numpy / jax array or torch
            tensor, finite, every column with two distinct values or more.
        n_bins: the number of bins, ``1 < n_bins < len(X)``.
        tree_kwargs: keyword arguments of the decision trees (not ``max_leaf_nodes``), or None.
        y: the training labels ``(n_objects,)`` (tree bins only).
        regression: whether ``y`` is a regression target (tree bins only).

    Returns:
        A list of 1-D numpy arrays of increasing edges in X's dtype, at most ``n_bins + 1`` each.

    Raises:
        ValueError: for inputs rtdl rejects (shape, non-finite values, constant columns, ``n_bins``
            out of range, ``y``/``regression`` given without ``tree_kwargs`` or missing with it).
        TypeError: for a non-floating ``X``.
        ImportError: for tree bins without scikit-learn.

    Example:
        >>> X = np.random.default_rng(0).standard_normal((1000, 2)).astype(np.float32)
        >>> bins = compute_bins(X, n_bins=4)
        >>> [len(b) for b in bins], bins[0].dtype
        ([5, 5], dtype('float32'))
    """
    X = _as_numpy(X, "X")
    if X.ndim != 2:
        raise ValueError(f"`X` must have shape (n_objects, n_features), got shape {X.shape}.")
    if X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"`X` must have at least two rows and one column, got shape {X.shape}.")
    check_finite("X", X)
    if (X == X[0]).all(axis=0).any():
        raise ValueError("`X` must have at least two distinct values in every column.")
    check_positive_int("n_bins", n_bins)
    if n_bins <= 1 or n_bins >= len(X):
        raise ValueError(f"`n_bins` must be in (1, len(X)={len(X)}), got {n_bins}.")
    if tree_kwargs is None:
        if y is not None or regression is not None:
            raise ValueError("`y` and `regression` must be None when `tree_kwargs` is None.")
        q = _linspace(n_bins + 1, X.dtype)
        bins = [np.unique(column) for column in _quantiles(X, q).T]
    else:
        if y is None or regression is None:
            raise ValueError("`y` and `regression` are required when `tree_kwargs` is given.")
        if "max_leaf_nodes" in tree_kwargs:
            raise ValueError("`tree_kwargs` must not set 'max_leaf_nodes' (it is `n_bins`).")
        y = np.asarray(getattr(y, "detach", lambda: y)())
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"`y` must have shape ({len(X)},), got shape {y.shape}.")
        try:
            import sklearn.tree as sklearn_tree
        except ImportError as err:  # pragma: no cover - scikit-learn is in the notebooks extra
            raise ImportError(
                "tree-based bins need scikit-learn (`pip install scikit-learn`)."
            ) from err
        Tree = (
            sklearn_tree.DecisionTreeRegressor
            if regression
            else sklearn_tree.DecisionTreeClassifier
        )
        bins = []
        for column in X.T:
            edges = [float(column.min()), float(column.max())]
            tree = Tree(max_leaf_nodes=n_bins, **tree_kwargs).fit(column.reshape(-1, 1), y).tree_
            for node in range(tree.node_count):
                if tree.children_left[node] != tree.children_right[node]:  # a split node
                    edges.append(float(tree.threshold[node]))
            # rtdl: torch.as_tensor(edges) is float32, then unique, then X's dtype
            bins.append(np.unique(np.asarray(edges, np.float32)).astype(X.dtype))
    check_bins(bins)
    return bins
