"""``op_scope``: each unit-scaled op runs in a ``jax.named_scope`` of its name.

The scope names the op's equations in a jaxpr, so :func:`track_scales` reports one record per op
(``"MLP/fc1/linear"``) instead of one per primitive inside it.
"""

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax

__all__ = ["OPS", "op_scope"]

F = TypeVar("F", bound=Callable[..., Any])
OPS: set[str] = set()


def op_scope(fn: F) -> F:
    """Run ``fn`` inside ``jax.named_scope(fn.__name__)``."""
    OPS.add(fn.__name__)

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with jax.named_scope(fn.__name__):
            return fn(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
