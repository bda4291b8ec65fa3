"""Whole-model quantization of native NNX models: :func:`quantize_nnx` returns a quantized NNX module.

The linen workflow (:func:`jaxlinear.quantization._model.quantize_model`) does all the work, on a linen
*proxy* of the NNX model: a linen module that runs a copy of the NNX model with each quantizable NNX
layer (``jl.nnx.Linear`` / ``NLinear``, Flax's ``nnx.Linear``) replaced by its linen twin
(:func:`jaxlinear.walker.linen_twin`), so the observers, weights and numerics are the linen ones. The
result is the NNX model with each of those layers swapped for a :class:`QuantizedNnxLayer` holding its
int8 params, and each bridged linen module (``nnx.bridge.ToNNX``) with quantizable layers for a
:class:`QuantizedNnxBridge` (the proxy holds the bridged module as a linen submodule, so its layers are
quantized as in any linen model): ``qmodel(x)`` runs it, under ``nnx.jit`` too, with the numbers of the
linen path.
"""

import dataclasses
from collections.abc import Iterable
from typing import Any

import flax.linen as nn
from flax import nnx

from jaxlinear._typing import Array
from jaxlinear.quantization._model import QUANTIZABLE, REFUSED, QuantizedModel, quantize_model
from jaxlinear.walker import find_bridged, substitute_nnx_layers, walk_nnx

__all__ = ["QuantizedNnxBridge", "QuantizedNnxLayer", "quantize_nnx"]


@dataclasses.dataclass(frozen=True)
class _Held:
    """Modules a proxy holds without Flax adopting them as its children (it clones them by name)."""

    modules: tuple


class _Proxy(nn.Module):
    """A linen module running a copy of an NNX model with the layers at ``paths`` as linen twins
    (submodules ``layer_0``, ``layer_1``, ...) and the bridged linen modules at ``bridge_paths`` as
    submodules ``bridge_0``, ``bridge_1``, ...: every quantizable layer is a linen layer of the proxy."""

    graphdef: Any
    state: Any
    paths: tuple
    twins: _Held
    bridge_paths: tuple = ()
    bridges: _Held = _Held(())

    @nn.compact
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        layers = [t.clone(parent=self, name=f"layer_{i}") for i, t in enumerate(self.twins.modules)]
        bridges = [
            b.clone(parent=self, name=f"bridge_{j}") for j, b in enumerate(self.bridges.modules)
        ]
        copy = nnx.merge(self.graphdef, self.state)
        replacements = {
            p: (lambda m, x, layer=layer: layer(x))
            for p, layer in zip(self.paths, layers, strict=True)
        }
        for p, bridge in zip(self.bridge_paths, bridges, strict=True):
            replacements[p] = lambda m, *a, bridge=bridge, **k: bridge(*a, **k)
        with substitute_nnx_layers(copy, replacements):
            return copy(*args, **kwargs)


class QuantizedNnxLayer(nnx.Module):
    """One int8 layer of a model :func:`jaxlinear.quantization.quantize` returned for an NNX model.

    It replaces a ``jl.nnx.Linear`` / ``jl.nnx.NLinear`` / ``nnx.Linear`` of the float model and
    computes what the linen workflow computes for that layer (the mode, scheme, engine and qparams of
    :func:`~jaxlinear.quantization.quantize`).

    Attributes:
        quantized: the linen :class:`~jaxlinear.quantization.QuantizedModel` of the layer's linen twin
            (its mode, scheme, engine, per_channel).
        kernel: ``nnx.Param``, the int8 kernel in the float kernel's layout; the other params
            (``kernel_scale``, ``kernel_zero_point``, ``bias``, and for ``"static"`` ``in_scale``,
            ``in_zero_point``, ``out_scale``, ``out_zero_point``) are ``nnx.Param`` attributes too.

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> q = jl.quantization.quantize(jl.nnx.Linear(3, 4, rngs=nnx.Rngs(0)), mode="dynamic")
        >>> type(q).__name__, q.kernel.dtype, q(jnp.ones((2, 3))).shape
        ('QuantizedNnxLayer', dtype('int8'), (2, 4))
    """

    def __init__(self, quantized: QuantizedModel, params: dict[str, Array]) -> None:
        self.quantized = quantized
        self._names = tuple(params)
        for name, value in params.items():
            setattr(self, name, nnx.Param(value))

    def __call__(self, x: Array) -> Array:
        """The layer's int8 forward.

        Args:
            x: the float input the float layer took.

        Returns:
            The output, in the float layer's dtype.
        """
        params = {name: getattr(self, name)[...] for name in self._names}
        return self.quantized.apply({"params": params}, x)


def _to_nnx(tree: Any) -> Any:
    if isinstance(tree, dict):
        return nnx.Dict({k: _to_nnx(v) for k, v in tree.items()})
    return nnx.Param(tree)


class QuantizedNnxBridge(nnx.Module):
    """A bridged linen module (``nnx.bridge.ToNNX``) of a model :func:`jaxlinear.quantization.quantize`
    returned for an NNX model, with its quantizable layers in int8.

    Attributes:
        quantized: the linen :class:`~jaxlinear.quantization.QuantizedModel` of the bridged module.
        params: its quantized variables' params, as nested ``nnx.Dict`` of ``nnx.Param``.

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> bridged = nnx.bridge.ToNNX(jl.Linear(4), rngs=nnx.Rngs(0))
        >>> _ = nnx.bridge.lazy_init(bridged, jnp.ones((1, 3)))
        >>> q = jl.quantization.quantize(bridged, mode="dynamic", example_inputs=jnp.ones((1, 3)))
        >>> type(q).__name__, q(jnp.ones((2, 3))).shape
        ('QuantizedNnxBridge', (2, 4))
    """

    def __init__(self, quantized: QuantizedModel, params: dict[str, Any]) -> None:
        self.quantized = quantized
        self.params = _to_nnx(params)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The bridged module's forward with its quantized layers in int8.

        Args:
            *args: the bridged module's inputs.
            **kwargs: its keyword inputs.

        Returns:
            What the float module returns, computed in int8.
        """
        params = nnx.to_pure_dict(nnx.state(self.params, nnx.Param))
        return self.quantized.apply({"params": params}, *args, **kwargs)


def _set_at(model: Any, path: tuple, value: Any) -> None:
    parent = model
    for k in path[:-1]:
        parent = parent[k] if isinstance(k, int) else getattr(parent, k)
    if isinstance(path[-1], int):
        parent[path[-1]] = value
    else:
        setattr(parent, path[-1], value)


def quantize_nnx(
    model: nnx.Module,
    *,
    mode: str,
    calibration: Iterable[Any] | None = None,
    engine: str = "x86",
    per_channel: bool | None = None,
    scheme: str | None = None,
    example_inputs: Any = None,
    activation_observer: str | None = None,
) -> nnx.Module:
    """The NNX branch of :func:`jaxlinear.quantization.quantize` (see there): a quantized copy of
    ``model``."""
    if isinstance(calibration, Iterable) and not isinstance(calibration, str | bytes):
        calibration = list(calibration)
    if example_inputs is None and isinstance(calibration, list) and calibration:
        example_inputs = calibration[0]
    example = example_inputs
    example = () if example is None else example if isinstance(example, tuple) else (example,)
    layers = walk_nnx(model, *example, types=QUANTIZABLE + REFUSED).layers
    refused = [
        f"{c.name} ({type(c.module).__name__})" for c in layers if isinstance(c.module, REFUSED)
    ]
    if refused:
        raise ValueError(
            f"`model` must not contain unit-scaled layers, got {refused}: their output scale depends "
            "on the constraint and the batch, so an int8 twin would not compute the same function. "
            "Quantize a model of jl.nnx.Linear / jl.nnx.NLinear / nnx.Linear layers."
        )
    if not layers:
        raise ValueError(
            f"`model` must call at least one jl.nnx.Linear, jl.nnx.NLinear or nnx.Linear, got none "
            f"in `{type(model).__name__}`."
        )
    bridges = find_bridged(model)
    in_bridge = [any(c.path[: len(b.path)] == b.path for b in bridges) for c in layers]
    native = [c for c, inside in zip(layers, in_bridge, strict=True) if not inside]
    graphdef, state = nnx.split(model)
    proxy = _Proxy(
        graphdef,
        state,
        tuple(c.path for c in native),
        _Held(tuple(c.module for c in native)),
        tuple(b.path for b in bridges),
        _Held(tuple(b.module for b in bridges)),
    )
    pure = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    params = {}
    for i, c in enumerate(native):
        node = pure
        for k in c.path:
            node = node[k]
        params[f"layer_{i}"] = {k: v for k, v in node.items() if k in c.shapes}
    for j, b in enumerate(bridges):
        params[f"bridge_{j}"] = b.variables["params"]
    qproxy, qvariables = quantize_model(
        proxy, {"params": params}, mode=mode, calibration=calibration, engine=engine,
        per_channel=per_channel, scheme=scheme, example_inputs=example_inputs,
        activation_observer=activation_observer,
    )  # fmt: skip
    members = dict(zip(qproxy.paths, qproxy.members, strict=True))
    qparams = qvariables["params"]
    if native and not native[0].path:  # the model is the layer
        return _layer(qproxy, native[0].module, qparams["layer_0"], members[("layer_0",)])
    if bridges and not bridges[0].path:  # the model is a bridged linen module
        return _bridge(qproxy, bridges[0].module, qparams["bridge_0"], "bridge_0")
    qmodel = nnx.merge(graphdef, state)  # a copy: the float model is untouched
    for i, c in enumerate(native):
        name = f"layer_{i}"
        _set_at(qmodel, c.path, _layer(qproxy, c.module, qparams[name], members[(name,)]))
    for j, b in enumerate(bridges):
        if any(p[0] == f"bridge_{j}" for p in qproxy.paths):
            _set_at(
                qmodel, b.path, _bridge(qproxy, b.module, qparams[f"bridge_{j}"], f"bridge_{j}")
            )
    return qmodel


def _bridge(
    qproxy: QuantizedModel, module: nn.Module, params: dict, name: str
) -> QuantizedNnxBridge:
    inside = [(p[1:], m) for p, m in zip(qproxy.paths, qproxy.members, strict=True) if p[0] == name]
    quantized = QuantizedModel(
        module, qproxy.mode, qproxy.scheme, qproxy.engine, qproxy.per_channel,
        tuple(p for p, _ in inside), tuple(m for _, m in inside),
    )  # fmt: skip
    return QuantizedNnxBridge(quantized, params)


def _layer(
    qproxy: QuantizedModel, twin: nn.Module, params: dict, members: int
) -> QuantizedNnxLayer:
    quantized = QuantizedModel(
        twin, qproxy.mode, qproxy.scheme, qproxy.engine, qproxy.per_channel, ((),), (members,)
    )
    return QuantizedNnxLayer(quantized, dict(params))
