"""The per-layer converters, one per Flax layer class, looked up along the class's MRO, and the
model layouts: how a model whose torch reference names (or sizes) its layers its own way maps to
it."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import numpy as np

from jaxlinear._typing import PyTree

__all__ = [
    "Converter",
    "ModelLayout",
    "converter_for",
    "layout_for",
    "register",
    "register_layout",
    "registered_types",
]

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
_LAYOUTS: dict[type, "ModelLayout"] = {}


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


def _same_model(module: Any) -> Any:
    return module


def _same_variables(module: Any, variables: PyTree) -> PyTree:
    return variables


def _same_pair(module: Any, variables: PyTree) -> tuple[Any, PyTree]:
    return module, variables


@dataclass(frozen=True)
class ModelLayout:
    """How a linen model class maps to its torch reference beyond its layers' own converters.

    :func:`~jaxlinear.interop.from_torch` and :func:`~jaxlinear.interop.to_torch` walk such a model
    like any other (its layers in call order, each converted by its registered converter, paired
    with torch key prefixes); the layout only supplies what the walk cannot guess: the torch prefix
    of each layer (the default ``mapping``; a caller's ``mapping=`` entries win) and, for a model
    that stores its params larger than its torch reference holds them (a bucketed ``GrowingMLP``),
    the model at the reference's shapes and the way between the two.

    Attributes:
        torch_name: the torch reference, for messages
            (``"gromo.containers.growing_mlp.GrowingMLP"``).
        mapping: ``module -> {flax_path: torch_prefix}`` (paths as ``"block/fc"``).
        plain: ``module -> module`` at the torch reference's shapes (None: the module itself).
        to_stored: ``(module, variables of plain(module)) -> variables of module`` (None: as is).
        from_stored: ``(module, variables) -> (module at the reference's shapes, its variables)``
            (None: as they are).

    Example:
        >>> import jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 2, 1)
        >>> layout_for(model).mapping(model)
        {'layers_0': 'layers.0.layer', 'layers_1': 'layers.1.layer'}
    """

    torch_name: str
    mapping: Callable[[Any], Mapping[str, str]]
    plain: Callable[[Any], Any] = None  # type: ignore[assignment]  # None: _same_model
    to_stored: Callable[[Any, PyTree], PyTree] = None  # type: ignore[assignment]
    from_stored: Callable[[Any, PyTree], tuple[Any, PyTree]] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not isinstance(self.torch_name, str):
            raise TypeError(f"`torch_name` must be a str, got {type(self.torch_name).__name__}.")
        defaults = {"plain": _same_model, "to_stored": _same_variables, "from_stored": _same_pair}
        for name, default in defaults.items():
            if getattr(self, name) is None:  # the model as it is
                object.__setattr__(self, name, default)
        for name in ("mapping", "plain", "to_stored", "from_stored"):
            if not callable(getattr(self, name)):
                raise TypeError(f"`{name}` must be callable, got {getattr(self, name)!r}.")


def register_layout(module_cls: type, layout: ModelLayout) -> None:
    """Register ``layout`` for the linen model class ``module_cls`` (and its subclasses).

    :func:`~jaxlinear.interop.from_torch` and :func:`~jaxlinear.interop.to_torch` then apply it to
    every such model they are given (not to one nested in a larger model: name those layers with
    ``mapping``).

    Args:
        module_cls: a ``flax.linen.Module`` subclass without a converter (a model of registered
            layers, not a layer).
        layout: its :class:`ModelLayout`.

    Raises:
        TypeError: if ``module_cls`` is not a linen Module class or ``layout`` not a ModelLayout.
        ValueError: if ``module_cls`` already has a layout or a converter.

    Example:
        >>> import jaxlinear as jl
        >>> register_layout(jl.growing.GrowingMLP, layout_for(jl.growing.GrowingMLP(5, 3, 2, 1)))
        Traceback (most recent call last):
        ...
        ValueError: `module_cls` must not have a layout yet, got GrowingMLP (already maps to gromo.containers.growing_mlp.GrowingMLP).
    """
    if not isinstance(module_cls, type) or not issubclass(module_cls, nn.Module):
        raise TypeError(f"`module_cls` must be a flax.linen Module class, got {module_cls!r}.")
    if not isinstance(layout, ModelLayout):
        raise TypeError(f"`layout` must be a ModelLayout, got {type(layout).__name__}.")
    if module_cls in _LAYOUTS:
        raise ValueError(
            f"`module_cls` must not have a layout yet, got {module_cls.__name__} (already maps to "
            f"{_LAYOUTS[module_cls].torch_name})."
        )
    if module_cls in _CONVERTERS:
        raise ValueError(
            "`module_cls` must be a model, not a layer with a converter, got "
            f"{module_cls.__name__}."
        )
    _LAYOUTS[module_cls] = layout


def layout_for(module: Any) -> ModelLayout | None:
    """The layout of ``module``'s class or its nearest base class with one, else None."""
    for cls in type(module).__mro__:
        if cls in _LAYOUTS:
            return _LAYOUTS[cls]
    return None
