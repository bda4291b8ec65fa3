"""Type aliases shared by the package (the same spellings as ``flax.typing``)."""

from collections.abc import Callable
from typing import Any

import jax
from jax.typing import DTypeLike

Array = jax.Array
PRNGKey = jax.Array
Shape = tuple[int, ...]
Dtype = DTypeLike
PrecisionLike = None | str | jax.lax.Precision | tuple[Any, Any] | jax.lax.DotAlgorithmPreset
Initializer = Callable[[PRNGKey, Shape, Dtype], Array]
# a dot product function with ``lax.dot_general``'s signature, ``(lhs, rhs, dims, precision=...)``
DotGeneralT = Callable[..., Array]
PyTree = Any

__all__ = [
    "Array",
    "DotGeneralT",
    "Dtype",
    "Initializer",
    "PRNGKey",
    "PrecisionLike",
    "PyTree",
    "Shape",
]
