"""The model walker: every layer a Flax linen model calls, with its params path, in call order.

One walker serves every workflow that works on whole models (learning-rate rules in
:mod:`jaxlinear.optim`, whole-model :mod:`jaxlinear.interop`, model quantization): it traces
``module.apply`` abstractly (``jax.eval_shape``: shapes only, nothing is computed) and records each call
of a layer of the requested types with ``flax.linen.intercept_methods``. It sees layers declared in
``setup`` or ``@nn.compact``, nested blocks, and layers lifted by ``nn.vmap`` / ``nn.scan`` (then the
recorded shapes are those of one slice, as the layer sees them, and :attr:`LayerCall.stacked` gives
the extra leading dims of the stored params).

:func:`substitute_layers` is the other half: it runs a model with some of its layers replaced by
functions (a quantized forward, an observer), found by the same paths.
"""

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlinear import nn as jnn
from jaxlinear._typing import PyTree

__all__ = ["LayerCall", "find_layers", "layer_types", "params_at", "substitute_layers"]

Path = tuple[str, ...]


def layer_types() -> tuple[type[nn.Module], ...]:
    """The layer classes the walker finds by default: every jaxlinear layer and ``flax.linen.Dense``.

    Example:
        >>> [t.__name__ for t in layer_types()][:2]
        ['Linear', 'NLinear']
    """
    return (
        jnn.Linear,
        jnn.NLinear,
        jnn.UnitScaledLinear,
        jnn.LinearReadout,
        jnn.QuantizedLinear,
        jnn.DynamicQuantizedLinear,
        nn.Dense,
    )


@dataclasses.dataclass(frozen=True)
class LayerCall:
    """One layer of a model, as the walker found it.

    Attributes:
        path: the layer's path in ``variables["params"]`` (``("block", "Linear_1")``); ``()`` when the
            model is the layer itself.
        module: the layer instance (read its fields: ``features``, ``parametrization``, ...).
        shapes: the shape of each of its params as the layer sees them in a call (one slice for layers
            lifted by ``nn.vmap`` / ``nn.scan``), by param name.
        stacked: for each param, the leading dims the stored array has beyond ``shapes`` (``()``
            unless the layer is lifted).
    """

    path: Path
    module: nn.Module
    shapes: Mapping[str, tuple[int, ...]]
    stacked: Mapping[str, tuple[int, ...]]

    @property
    def name(self) -> str:
        """The path as one string, ``"block/Linear_1"`` (``""`` for the model itself)."""
        return "/".join(self.path)


def _params(variables: Any) -> Mapping[str, Any]:
    if not isinstance(variables, Mapping) or "params" not in variables:
        kind = sorted(variables) if isinstance(variables, Mapping) else type(variables).__name__
        raise ValueError(
            "`variables` must be the model's variables, a mapping with a 'params' collection (what "
            f"`module.init` returns), got {kind}."
        )
    return nn.unbox(variables["params"])


def params_at(variables: Any, path: Sequence[str]) -> Mapping[str, Any]:
    """The params of the layer at ``path`` (a mapping of param name to array).

    Raises:
        ValueError: if ``variables["params"]`` has no layer at ``path``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> v = jl.Linear(3).init(jax.random.key(0), jnp.ones((1, 2)))
        >>> sorted(params_at(v, ()))
        ['bias', 'kernel']
    """
    node: Any = _params(variables)
    for i, name in enumerate(path):
        if not isinstance(node, Mapping) or name not in node:
            raise ValueError(
                f"`variables['params']` has no layer at {'/'.join(path)!r} (missing "
                f"{'/'.join(path[: i + 1])!r})."
            )
        node = node[name]
    if not isinstance(node, Mapping):
        raise ValueError(f"`variables['params']` has an array, not a layer, at {'/'.join(path)!r}.")
    return node


def _probe_input(params: Mapping[str, Any]) -> jax.ShapeDtypeStruct | None:
    """A one-row input for models whose first layer is dense: ``kernel.shape[:-1]`` of the first kernel."""
    stack: list[Any] = [params]
    while stack:
        node = stack.pop(0)
        if isinstance(node, Mapping):
            kernel = node.get("kernel")
            if kernel is not None and getattr(kernel, "ndim", 0) >= 2:
                return jax.ShapeDtypeStruct(tuple(kernel.shape[:-1]), jnp.float32)
            stack.extend(node.values())
    return None


def find_layers(
    module: nn.Module,
    variables: PyTree,
    *args: Any,
    types: Sequence[type[nn.Module]] | None = None,
    method: str | Callable[..., Any] | None = None,
    **kwargs: Any,
) -> list[LayerCall]:
    """Every layer of ``types`` that ``module.apply(variables, *args, **kwargs)`` calls, in call order.

    A layer called several times (shared weights) is listed once; layers inside a found layer are not
    listed. Without ``args``/``kwargs`` the model is called on one example of ``kernel.shape[:-1]`` of
    its first kernel, which suffices when its first layer is a ``Linear``/``NLinear``/``Dense``; pass
    example inputs otherwise.

    Args:
        module: a Flax linen module (a layer, an MLP, nested blocks, lifted layers).
        variables: its variables (``module.init(...)``, ``jl.interop.from_torch(...)``).
        *args: example inputs for ``module.apply`` (only shapes and dtypes are used).
        types: the layer classes to find (subclasses included); default :func:`layer_types`.
        method: passed to ``module.apply``.
        **kwargs: keyword inputs for ``module.apply``.

    Returns:
        A list of :class:`LayerCall`, in the order the layers are first called.

    Raises:
        ValueError: if ``variables`` has no ``params``, or the model cannot be called without example
            inputs (the message says to pass them; the model's own error is chained).

    Example:
        >>> import flax.linen as nn, jax, jax.numpy as jnp, jaxlinear as jl
        >>> model = nn.Sequential([jl.Linear(8), nn.relu, nn.Dense(2)])
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> [(c.name, type(c.module).__name__, c.shapes["kernel"]) for c in find_layers(model, variables)]
        [('layers_0', 'Linear', (4, 8)), ('layers_2', 'Dense', (8, 2))]
    """
    types = tuple(layer_types() if types is None else types)
    params = _params(variables)
    found: dict[Path, LayerCall] = {}
    active: list[Path] = []  # found layers now running: their sub-layers are not listed

    def interceptor(next_fun, call_args, call_kwargs, context):
        m = context.module
        if context.method_name != "__call__" or not isinstance(m, types) or active:
            return next_fun(*call_args, **call_kwargs)
        path = tuple(m.path)
        if path not in found:
            inner = nn.unbox(m.variables.get("params", {})) if m.scope is not None else {}
            shapes = {k: tuple(v.shape) for k, v in inner.items() if hasattr(v, "shape")}
            stored = params_at(variables, path) if shapes else {}
            stacked = {
                k: tuple(stored[k].shape[: stored[k].ndim - len(s)]) if k in stored else ()
                for k, s in shapes.items()
            }
            found[path] = LayerCall(path, m, shapes, stacked)
        active.append(path)
        try:
            return next_fun(*call_args, **call_kwargs)
        finally:
            active.pop()

    def trace(call_args: tuple) -> None:
        is_array = [hasattr(a, "shape") and hasattr(a, "dtype") for a in call_args]

        def run(v, *arrays):
            it = iter(arrays)
            call = [next(it) if flag else a for a, flag in zip(call_args, is_array, strict=True)]
            with nn.intercept_methods(interceptor):
                rngs = {"dropout": jax.random.key(0)}
                return module.apply(v, *call, method=method, mutable=True, rngs=rngs, **kwargs)

        arrays = [a for a, flag in zip(call_args, is_array, strict=True) if flag]
        jax.eval_shape(run, {**variables, "params": params}, *arrays)

    if args or kwargs:
        trace(args)
        return list(found.values())
    probe = _probe_input(params)
    if probe is None:
        raise ValueError(
            f"`{type(module).__name__}` has no dense kernel to build a probe input from; pass example "
            "inputs after `variables`."
        )
    try:
        trace((probe,))
    except Exception as err:
        raise ValueError(
            f"could not call `{type(module).__name__}` on a probe input of shape {probe.shape} (the "
            "first kernel's input dims) to find its layers; pass example inputs after `variables`."
        ) from err
    return list(found.values())


@contextlib.contextmanager
def substitute_layers(
    replacements: Mapping[Path, Callable[..., Any]],
    types: Sequence[type[nn.Module]] | None = None,
) -> Iterator[None]:
    """Within the block, a call of the layer at ``path`` runs ``replacements[path](module, *args)``.

    Only layers of ``types`` (default :func:`layer_types`) are replaced; the replacement gets the bound
    layer (so it can read ``module.variables`` or ``module.get_variable(...)``) and the call's
    arguments, and returns the layer's output.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.Linear(2)
        >>> v = layer.init(jax.random.key(0), jnp.ones((1, 3)))
        >>> with substitute_layers({(): lambda m, x: jnp.zeros(x.shape[:-1] + (2,))}):
        ...     layer.apply(v, jnp.ones((1, 3))).tolist()
        [[0.0, 0.0]]
    """
    types = tuple(layer_types() if types is None else types)

    def interceptor(next_fun, call_args, call_kwargs, context):
        m = context.module
        if context.method_name == "__call__" and isinstance(m, types):
            fn = replacements.get(tuple(m.path))
            if fn is not None:
                return fn(m, *call_args, **call_kwargs)
        return next_fun(*call_args, **call_kwargs)

    with nn.intercept_methods(interceptor):
        yield
