"""Dispatch of ``from_torch``/``to_torch`` on the Flax module's class."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxlinear._typing import PyTree

__all__ = ["Converter", "from_torch", "register", "to_torch"]

FromTorch = Callable[[Any, Mapping[str, Any]], PyTree]
ToTorch = Callable[[Any, PyTree], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Converter:
    """How one Flax module class maps to its torch reference's ``state_dict`` and back."""

    torch_name: str
    from_torch: FromTorch
    to_torch: ToTorch


_CONVERTERS: dict[type, Converter] = {}


def register(module_cls: type, converter: Converter) -> None:
    """Register ``converter`` for ``module_cls`` (and its subclasses)."""
    _CONVERTERS[module_cls] = converter


def _lookup(module: Any) -> Converter:
    for cls in type(module).__mro__:
        if cls in _CONVERTERS:
            return _CONVERTERS[cls]
    supported = sorted(f"{c.__name__} ({v.torch_name})" for c, v in _CONVERTERS.items())
    raise TypeError(f"`module` must be one of {supported}, got {type(module).__name__}.")


def from_torch(module: Any, state_dict: Mapping[str, Any]) -> PyTree:
    """Flax variables for ``module`` from its torch reference's ``state_dict()`` (keys unchanged).

    Values may be torch tensors, numpy or jax arrays. Keys are checked: missing or unknown keys raise
    ``KeyError``, shapes that do not fit ``module`` raise ``ValueError``. Params are cast to the
    module's ``param_dtype``.

    Example:
        >>> import numpy as np, jaxlinear as jl
        >>> sd = {"weight": np.ones((4, 3), np.float32), "bias": np.zeros(4, np.float32)}
        >>> v = jl.interop.from_torch(jl.Linear(4), sd)
        >>> v["params"]["kernel"].shape
        (3, 4)
    """
    return _lookup(module).from_torch(module, state_dict)


def to_torch(module: Any, variables: PyTree) -> dict[str, np.ndarray]:
    """The torch reference's ``state_dict`` (numpy arrays) for Flax ``variables`` of ``module``.

    Load it with ``ref.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> layer = jl.Linear(4)
        >>> sd = jl.interop.to_torch(layer, layer.init(jax.random.key(0), np.ones((1, 3))))
        >>> {k: v.shape for k, v in sd.items()}
        {'weight': (4, 3), 'bias': (4,)}
    """
    return _lookup(module).to_torch(module, variables)
