"""The per-layer converters, one per Flax layer class, looked up along the class's MRO."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import numpy as np

from jaxlinear._typing import PyTree

__all__ = ["Converter", "converter_for", "register", "registered_types"]

FromTorch = Callable[[Any, Mapping[str, Any]], PyTree]
ToTorch = Callable[[Any, PyTree], dict[str, np.ndarray]]
CheckTorch = Callable[[Any, Any], str | None]


@dataclass(frozen=True)
class Converter:
    """How one Flax layer class maps to its torch reference's ``state_dict`` and back.

    Attributes:
        torch_name: the torch reference, for messages (``"torch.nn.Linear"``).
        from_torch: ``(module, state_dict) -> variables``, keys relative to the layer.
        to_torch: ``(module, variables) -> state_dict`` of numpy arrays; checks the variables.
        check_torch: ``(module, torch_module) -> None | why``: compares the settings a
            ``state_dict`` does not hold (a LayerNorm's ``eps``, attention heads) with the torch
            layer's, when the torch module is at hand; ``None`` if the layer has none.

    Example:
        >>> import flax.linen as nn
        >>> converter_for(nn.LayerNorm()).torch_name
        'torch.nn.LayerNorm'
    """

    torch_name: str
    from_torch: FromTorch
    to_torch: ToTorch
    check_torch: CheckTorch | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.torch_name, str):
            raise TypeError(f"`torch_name` must be a str, got {type(self.torch_name).__name__}.")
        for name in ("from_torch", "to_torch"):
            if not callable(getattr(self, name)):
                raise TypeError(f"`{name}` must be callable, got {getattr(self, name)!r}.")
        if self.check_torch is not None and not callable(self.check_torch):
            raise TypeError(f"`check_torch` must be callable or None, got {self.check_torch!r}.")


_CONVERTERS: dict[type, Converter] = {}


def register(module_cls: type, converter: Converter) -> None:
    """Register ``converter`` for ``module_cls`` (and its subclasses without their own).

    :func:`~jaxlinear.interop.from_torch` and :func:`~jaxlinear.interop.to_torch` then convert every
    submodule of that class (or of a subclass, looked up along its MRO) with ``converter``.

    Args:
        module_cls: the Flax layer class (a ``flax.linen.Module`` or ``flax.nnx.Module`` subclass, or
            a model class with ``apply`` such as ``QuantizedModel``) the converter handles.
        converter: the :class:`Converter` mapping that class's variables to its torch reference's
            ``state_dict`` and back.

    Raises:
        TypeError: if ``module_cls`` is not a Flax Module class or ``converter`` not a
            :class:`Converter`.
        ValueError: if ``module_cls`` already has a converter (one converter per class: a layer that
            reads several torch key styles does so inside its one converter).

    Example:
        >>> import flax.linen as nn
        >>> register(nn.Dense, converter_for(nn.Dense(1)))
        Traceback (most recent call last):
        ...
        ValueError: `module_cls` must not have a converter yet, got Dense (already converts torch.nn.Linear).
    """
    from flax import nnx

    if not isinstance(module_cls, type) or not (
        issubclass(module_cls, nn.Module | nnx.Module)
        or callable(getattr(module_cls, "apply", None))
    ):
        raise TypeError(
            "`module_cls` must be a Flax Module class (a flax.linen.Module or flax.nnx.Module "
            f"subclass, or a model class with `apply`), got {module_cls!r}."
        )
    if not isinstance(converter, Converter):
        raise TypeError(
            "`converter` must be a jaxlinear.interop.Converter(torch_name, from_torch, to_torch), "
            f"got {type(converter).__name__}."
        )
    if module_cls in _CONVERTERS:
        raise ValueError(
            f"`module_cls` must not have a converter yet, got {module_cls.__name__} (already "
            f"converts {_CONVERTERS[module_cls].torch_name})."
        )
    _CONVERTERS[module_cls] = converter


def registered_types() -> tuple[type, ...]:
    """Every layer class with a converter, in registration order."""
    return tuple(_CONVERTERS)


def converter_for(module: Any) -> Converter | None:
    """The converter of ``module``'s class or its nearest registered base class, else None."""
    for cls in type(module).__mro__:
        if cls in _CONVERTERS:
            return _CONVERTERS[cls]
    return None
