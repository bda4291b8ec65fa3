"""gromo ``GrowingMLP`` <-> :class:`jaxlinear.growing.GrowingMLP`: a model layout, no converter.

Each layer of a ``GrowingMLP`` is a :class:`~jaxlinear.growing.GrowableLinear`, a ``jl.Linear``,
so the generic whole-model path converts it with ``jl.Linear``'s registered converter
(``torch.nn.Linear``'s ``weight (out, in)`` / ``bias (out,)`` <-> ``kernel (in, out)`` / ``bias``),
as in any model. The layout adds gromo's key names, ``layers.{i}.layer.{weight,bias}`` for
``params["layers_{i}"]``, and the buckets: a model with ``capacity`` reads the state dict at its initial widths (``hidden_features``)
into its bucket (:func:`~jaxlinear.growing.pad`) and writes its active neurons only
(:func:`~jaxlinear.growing.unpad`, with the active widths of ``variables["growth"]``).
"""

from jaxlinear._typing import PyTree
from jaxlinear.growing import GrowingMLP, pad, unpad
from jaxlinear.interop._registry import ModelLayout, register_layout


def _mapping(module: GrowingMLP) -> dict[str, str]:
    return {f"layers_{i}": f"layers.{i}.layer" for i in range(module.num_layers)}


def _plain(module: GrowingMLP) -> GrowingMLP:
    """The model at gromo's shapes: without capacity, at its initial widths."""
    return module if module.capacity is None else module.clone(capacity=None)


def _to_stored(module: GrowingMLP, variables: PyTree) -> PyTree:
    if module.capacity is None:
        return variables
    return pad(_plain(module), variables, module.capacity)[1]


def _from_stored(module: GrowingMLP, variables: PyTree) -> tuple[GrowingMLP, PyTree]:
    if module.capacity is None:
        return module, variables
    plain, params = unpad(module, variables)
    return plain, {"params": params}


register_layout(
    GrowingMLP,
    ModelLayout(
        "gromo.containers.growing_mlp.GrowingMLP", _mapping, _plain, _to_stored, _from_stored
    ),
)
