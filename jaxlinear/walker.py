"""The model walker: every layer a Flax linen model calls, with its params path, in call order.

One walker serves every workflow that works on whole models (learning-rate rules in
:mod:`jaxlinear.optim`, whole-model :mod:`jaxlinear.interop`, model quantization): it traces
``module.apply`` abstractly (``jax.eval_shape``: shapes only, nothing is computed) and records each call
of a layer of the requested types with ``flax.linen.intercept_methods``. It sees layers declared in
``setup`` or ``@nn.compact``, nested blocks, and layers lifted by ``nn.vmap`` / ``nn.scan`` (then the
recorded shapes are those of one slice, as the layer sees them, and the ``stacked`` field of
:class:`LayerCall` gives the extra leading dims of the stored params).

:func:`substitute_layers` is the other half: it runs a model with some of its layers replaced by
functions (a quantized forward), found by the same paths; :func:`observe_layers` runs it unchanged
and shows each call of those layers (inputs and output) to a function (an activation observer).
:func:`walk` also lists every module that holds params itself (jaxlinear or not), for workflows that must account for every parameter.

NNX models reach jaxlinear through ``flax.nnx.bridge.ToNNX``: :func:`find_bridged` finds those bridged
linen modules inside an ``nnx.Module``, with their variables (and, given example inputs of the NNX model,
the inputs each one receives), so the linen walker runs on each of them. Native NNX models are read by
:func:`walk_nnx` / :func:`find_nnx_layers`: each NNX layer answers as its linen twin
(:func:`linen_twin`: ``jl.nnx.Linear`` as ``jl.Linear``, Flax's ``nnx.Linear`` as ``nn.Dense``,
``nnx.Embed`` / ``nnx.LayerNorm`` / ``nnx.RMSNorm`` as theirs), so every workflow asks the same
questions (rules, converters, quantized forms) of linen, native NNX and bridged layers alike.
"""

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlinear import nn as jnn
from jaxlinear._typing import PyTree

__all__ = [
    "BridgedModule",
    "LayerCall",
    "ModelWalk",
    "find_bridged",
    "find_layers",
    "find_nnx_layers",
    "layer_types",
    "linen_twin",
    "observe_layers",
    "params_at",
    "replace_at",
    "substitute_layers",
    "substitute_nnx_layers",
    "walk",
    "walk_nnx",
]

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
        return "/".join(map(str, self.path))


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

    Args:
        variables: a model's variables, a mapping with a ``"params"`` collection (what
            ``module.init`` returns; boxed ``nn.Partitioned`` params are unboxed).
        path: the layer's path in ``variables["params"]``, a sequence of names (the
            ``path`` of a :class:`LayerCall`); ``()`` for the model itself.

    Returns:
        The layer's params: the mapping at ``path`` (param name to array, or to nested mappings for
        a layer with sub-layers).

    Raises:
        ValueError: if ``variables`` has no ``"params"`` collection, or ``variables["params"]`` has
            no layer at ``path`` (a missing name, or an array where a layer was expected).

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


def replace_at(tree: Mapping[str, Any], path: Sequence[str], value: Any) -> Any:
    """``tree`` with ``value`` at ``path``: new dicts along the path (missing ones created), the
    rest shared; ``value`` itself for ``path == ()``. The one way the workflows write a layer's
    params back.

    Args:
        tree: a nested mapping (a model's params).
        path: a layer's path, a sequence of names; ``()`` for the whole tree.
        value: what to put there (the layer's new params).

    Returns:
        The new tree (``tree`` is not modified).

    Example:
        >>> tree = {"block": {"fc": {"kernel": 1}}, "head": {"kernel": 2}}
        >>> new = replace_at(tree, ("block", "fc"), {"kernel": 3})
        >>> new["block"]["fc"], tree["block"]["fc"], new["head"] is tree["head"]
        ({'kernel': 3}, {'kernel': 1}, True)
        >>> replace_at({}, ("a", "b"), 1)
        {'a': {'b': 1}}
    """
    if not path:
        return value
    out = dict(tree)
    out[path[0]] = replace_at(out.get(path[0], {}), path[1:], value)
    return out


def _probe_inputs(params: Mapping[str, Any], limit: int = 8) -> list[jax.ShapeDtypeStruct]:
    """One-row inputs ``(1, *kernel.shape[:-1])``, one per distinct kernel, first kernel first (the
    model's input is one of them when its first layer is dense), then token ids ``(1, 1)``."""
    probes: list[jax.ShapeDtypeStruct] = []
    stack: list[Any] = [params]
    while stack and len(probes) < limit:
        node = stack.pop(0)
        if isinstance(node, Mapping):
            kernel = node.get("kernel")
            kernel = nn.unbox(kernel) if kernel is not None else None
            if kernel is not None and getattr(kernel, "ndim", 0) >= 2:
                shape = (1, *kernel.shape[:-1])
                if all(p.shape != shape for p in probes):
                    probes.append(jax.ShapeDtypeStruct(shape, jnp.float32))
            stack.extend(v for k, v in node.items() if k != "kernel")
    if probes:  # token ids, for a model that starts with an embedding (nn.Embed)
        probes = [*probes[: limit - 1], jax.ShapeDtypeStruct((1, 1), jnp.int32)]
    return probes


def _global(tree: Any) -> Any:
    """Arrays as ``jax.ShapeDtypeStruct`` of their global shape, with no sharding."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if isinstance(x, jax.Array) else x, tree
    )


class ModelWalk(NamedTuple):
    """What one trace of a model found (:func:`walk`).

    Attributes:
        layers: the layers of the requested types, as :func:`find_layers` returns them.
        param_owners: the path of every module that holds params itself (any class: ``nn.Dense``,
            ``nn.LayerNorm``, jaxlinear layers...), in the order the modules are first called.
    """

    layers: list[LayerCall]
    param_owners: list[Path]


def _own_params(m: nn.Module) -> dict[str, Any]:
    if m.scope is None:
        return {}
    inner = nn.unbox(m.variables.get("params", {}))
    return {k: v for k, v in inner.items() if hasattr(v, "shape")}


def walk(
    module: nn.Module,
    variables: PyTree,
    *args: Any,
    types: Sequence[type[nn.Module]] | None = None,
    method: str | Callable[..., Any] | None = None,
    **kwargs: Any,
) -> ModelWalk:
    """One abstract call of ``module``: its layers of ``types`` and every module that holds params.

    Without ``args``/``kwargs`` the model is called on a probe input, as in :func:`find_layers`.

    Args:
        module: a Flax linen module (a layer, an MLP, nested blocks, lifted layers).
        variables: its variables (``module.init(...)``, ``jl.interop.from_torch(...)``).
        *args: example inputs for ``module.apply`` (only shapes and dtypes are used).
        types: the layer classes to find (subclasses included); default :func:`layer_types`.
        method: passed to ``module.apply``.
        **kwargs: keyword inputs for ``module.apply``.

    Returns:
        A :class:`ModelWalk`: the layers of ``types`` and the paths of every module with params.

    Raises:
        TypeError: if ``module`` is not a linen Module.
        ValueError: if ``variables`` has no ``params``, or the model cannot be called without example
            inputs (the message says to pass them; the model's own error is chained).

    Example:
        >>> import flax.linen as nn, jax, jax.numpy as jnp, jaxlinear as jl
        >>> model = nn.Sequential([jl.Linear(8), nn.LayerNorm(), nn.Dense(2)])
        >>> variables = model.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> w = walk(model, variables, types=[jl.Linear])
        >>> [c.name for c in w.layers], w.param_owners
        (['layers_0'], [('layers_0',), ('layers_1',), ('layers_2',)])
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be a flax.linen Module, got {type(module).__name__}.")
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be a flax.linen Module, got {type(module).__name__}.")
    types = tuple(layer_types() if types is None else types)
    params = _params(variables)
    found: dict[Path, LayerCall] = {}
    owners: dict[Path, None] = {}
    active: list[Path] = []  # found layers now running: their sub-layers are not listed

    def interceptor(next_fun, call_args, call_kwargs, context):
        m = context.module
        own = _own_params(m)
        if own:
            owners.setdefault(tuple(m.path))
        if context.method_name != "__call__" or not isinstance(m, types) or active:
            return next_fun(*call_args, **call_kwargs)
        path = tuple(m.path)
        if path not in found:
            shapes = {k: tuple(v.shape) for k, v in own.items()}
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
        # global shapes only: a sharded array's sharding (an explicit mesh) plays no part
        jax.eval_shape(run, _global({**variables, "params": params}), *_global(arrays))

    if args or kwargs:
        trace(args)
        return ModelWalk(list(found.values()), list(owners))
    probes = _probe_inputs(variables["params"])  # creation order (dicts keep it)
    if not probes:
        raise ValueError(
            f"`{type(module).__name__}` has no dense kernel to build a probe input from; pass example "
            "inputs after `variables`."
        )
    errors: list[Exception] = []
    for probe in probes:
        found.clear()
        owners.clear()
        try:
            trace((probe,))
            return ModelWalk(list(found.values()), list(owners))
        except Exception as err:  # noqa: BLE001 - every probe's error is reported below
            errors.append(err)
    tried = ", ".join(f"{p.shape}: {type(e).__name__}" for p, e in zip(probes, errors, strict=True))
    raise ValueError(
        f"could not call `{type(module).__name__}` on a one-row probe input of any kernel's input dims "
        f"({tried}) to find its layers; pass example inputs after `variables`. The first probe's "
        "error is chained."
    ) from errors[0]


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
    listed. Without ``args``/``kwargs`` the model is called on a one-row probe ``(1,
    *kernel.shape[:-1])`` of each distinct kernel in turn, first kernel first, which finds the input of
    a model whose first layer is a ``Linear``/``NLinear``/``Dense``; pass example inputs otherwise.

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
    return walk(module, variables, *args, types=types, method=method, **kwargs).layers


class BridgedModule(NamedTuple):
    """A linen module inside an NNX model (``flax.nnx.bridge.ToNNX``), as :func:`find_bridged` found it.

    Attributes:
        path: the ``ToNNX``'s path in the NNX model (``nnx.state(model)``'s keys, e.g. ``("blocks", 0)``).
        module: the wrapped linen module.
        variables: its linen variables, ``{"params": ...}`` (from the NNX model's state).
        args: the example inputs it received (``jax.ShapeDtypeStruct`` objects for arrays);
            ``None`` when :func:`find_bridged` was not given example inputs or the model did not
            call it.
        kwargs: the keyword arguments it received (``None`` likewise).
    """

    path: tuple[Any, ...]
    module: nn.Module
    variables: dict[str, Any]
    args: tuple[Any, ...] | None
    kwargs: dict[str, Any] | None


def _abstract(x: Any) -> Any:
    return (
        jax.ShapeDtypeStruct(x.shape, x.dtype) if hasattr(x, "shape") and hasattr(x, "dtype") else x
    )


def find_bridged(model: Any, *args: Any, **kwargs: Any) -> list[BridgedModule]:
    """Every ``nnx.bridge.ToNNX``-wrapped linen module of an ``nnx.Module``, with its variables.

    With example inputs, ``model(*args, **kwargs)`` is traced abstractly (``jax.eval_shape`` on a copy:
    nothing is computed and the model's state, RNG counters included, is untouched) and each bridged
    module's own inputs are recorded, for :func:`walk`. Bridged modules must be initialised
    (``nnx.bridge.lazy_init``).

    Args:
        model: an ``nnx.Module``.
        *args: example inputs of ``model`` (optional).
        **kwargs: keyword inputs of ``model``.

    Returns:
        A list of :class:`BridgedModule`, in the model's graph order.

    Raises:
        ValueError: if a bridged module has no params yet (not initialised).

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> model = nnx.bridge.ToNNX(jl.Linear(3), rngs=nnx.Rngs(0))
        >>> _ = nnx.bridge.lazy_init(model, jnp.ones((1, 2)))
        >>> [(b.path, type(b.module).__name__, b.args[0].shape) for b in find_bridged(model, jnp.ones((4, 2)))]
        [((), 'Linear', (4, 2))]
    """
    from flax import nnx

    bridged: dict[tuple[Any, ...], BridgedModule] = {}
    for path, sub in nnx.iter_graph(model):
        if isinstance(sub, nnx.bridge.ToNNX):
            params = nnx.to_pure_dict(nnx.state(sub, nnx.Param))
            if not params:
                raise ValueError(
                    f"the bridged module at {'/'.join(map(str, path)) or '(root)'} has no params; "
                    "initialise the model first (`nnx.bridge.lazy_init(model, x)`)."
                )
            bridged[tuple(path)] = BridgedModule(
                tuple(path), sub.to_nnx__module, {"params": params}, None, None
            )
    if not (args or kwargs) or not bridged:
        return list(bridged.values())
    graphdef, state = nnx.split(model)
    seen: dict[tuple[Any, ...], tuple[tuple, dict]] = {}

    is_array = [hasattr(a, "shape") and hasattr(a, "dtype") for a in args]

    def run(state, *arrays):
        it = iter(arrays)
        call = [next(it) if flag else a for a, flag in zip(args, is_array, strict=True)]
        copy = nnx.merge(graphdef, state)
        owner = {}
        for path, sub in nnx.iter_graph(copy):
            if isinstance(sub, nnx.bridge.ToNNX):
                for leaf in jax.tree.leaves(nnx.state(sub, nnx.Param)):
                    owner[id(leaf)] = tuple(path)

        def interceptor(next_fun, call_args, call_kwargs, context):
            m = context.module
            if context.method_name == "__call__" and m.path == ():
                leaves = jax.tree.leaves(m.variables.get("params", {}))
                paths = {owner.get(id(leaf)) for leaf in leaves} - {None}
                path = paths.pop() if len(paths) == 1 else None
                if path is not None:
                    seen.setdefault(
                        path,
                        (tuple(map(_abstract, call_args)), jax.tree.map(_abstract, call_kwargs)),
                    )
            return next_fun(*call_args, **call_kwargs)

        with nn.intercept_methods(interceptor):
            return copy(*call, **kwargs)

    jax.eval_shape(run, state, *[a for a, flag in zip(args, is_array, strict=True) if flag])
    return [
        b._replace(args=seen[b.path][0], kwargs=seen[b.path][1]) if b.path in seen else b
        for b in bridged.values()
    ]


@contextlib.contextmanager
def substitute_layers(
    replacements: Mapping[Path, Callable[..., Any]],
    types: Sequence[type[nn.Module]] | None = None,
) -> Iterator[None]:
    """Within the block, a call of the layer at ``path`` runs ``replacements[path](module, *args)``.

    Only layers of ``types`` (default :func:`layer_types`) are replaced; the replacement gets the bound
    layer (so it can read ``module.variables`` or ``module.get_variable(...)``) and the call's
    arguments, and returns the layer's output.

    Args:
        replacements: a mapping from a layer's path in the params (``("block", "Linear_1")``, ``()``
            for the model itself; the ``path`` of a :class:`LayerCall`) to a function
            ``(module, *args, **kwargs) -> output`` run instead of that layer's ``__call__``.
        types: the layer classes that may be replaced (subclasses included); default
            :func:`layer_types`. A layer of another class at a listed path runs unchanged.

    Returns:
        A context manager; ``module.apply`` calls made inside its ``with`` block use the
        replacements.

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


@contextlib.contextmanager
def observe_layers(
    observers: Mapping[Path, Callable[[nn.Module, tuple, dict, Any], None]],
    types: Sequence[type[nn.Module]] | None = None,
) -> Iterator[None]:
    """Within the block, each call of the layer at ``path`` runs as usual, then
    ``observers[path](module, args, kwargs, output)`` sees it (an activation observer, a statistic).

    The observing twin of :func:`substitute_layers`: found by the same paths, it changes nothing the
    model computes. A layer called more than once is observed at every call, in call order.

    Args:
        observers: a mapping from a layer's path in the params (the ``path`` of a
            :class:`LayerCall`) to a function ``(module, args, kwargs, output) -> None`` called after
            each call of that layer with the bound layer, the call's positional arguments (a tuple)
            and keyword arguments (a dict), and its output.
        types: the layer classes that may be observed (subclasses included); default
            :func:`layer_types`. A layer of another class at a listed path is not observed.

    Returns:
        A context manager; ``module.apply`` calls made inside its ``with`` block call the observers.

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> layer = jl.Linear(2)
        >>> v = layer.init(jax.random.key(0), jnp.ones((1, 3)))
        >>> shapes = []
        >>> with observe_layers({(): lambda m, args, kwargs, y: shapes.append(y.shape)}):
        ...     _ = layer.apply(v, jnp.ones((4, 3)))
        >>> shapes
        [(4, 2)]
    """
    types = tuple(layer_types() if types is None else types)

    def interceptor(next_fun, call_args, call_kwargs, context):
        y = next_fun(*call_args, **call_kwargs)
        m = context.module
        if context.method_name == "__call__" and isinstance(m, types):
            fn = observers.get(tuple(m.path))
            if fn is not None:
                fn(m, tuple(call_args), dict(call_kwargs), y)
        return y

    with nn.intercept_methods(interceptor):
        yield


# ------------------------------------------------------------------------------------------ native NNX
def linen_twin(module: Any) -> nn.Module | None:
    """The linen layer that computes what the NNX layer ``module`` computes, on the same params.

    jaxlinear's NNX layers give their own (``module.linen_twin()``); Flax's ``nnx.Linear`` is an
    ``nn.Dense``, ``nnx.Embed`` an ``nn.Embed``, ``nnx.LayerNorm`` an ``nn.LayerNorm`` and
    ``nnx.RMSNorm`` an ``nn.RMSNorm`` (same param names and layouts). Anything else: None.

    Args:
        module: an ``nnx.Module``.

    Returns:
        An unbound linen module, or None when ``module`` has no linen twin.

    Example:
        >>> from flax import nnx
        >>> type(linen_twin(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))).__name__
        'Dense'
    """
    from flax import nnx

    twin = getattr(module, "linen_twin", None)
    if callable(twin) and isinstance(module, nnx.Module):
        made = twin()
        return made if isinstance(made, nn.Module) else None
    common: dict[str, Any] = {"dtype": getattr(module, "dtype", None)}
    if hasattr(module, "param_dtype"):
        common["param_dtype"] = module.param_dtype
    if type(module) is nnx.Linear:
        return nn.Dense(
            module.out_features, use_bias=module.use_bias, precision=module.precision, **common
        )
    if type(module) is nnx.Embed:
        return nn.Embed(module.num_embeddings, module.features, **common)
    if type(module) is nnx.LayerNorm:
        return nn.LayerNorm(
            epsilon=module.epsilon,
            use_bias=module.use_bias,
            use_scale=module.use_scale,
            reduction_axes=module.reduction_axes,
            feature_axes=module.feature_axes,
            **common,
        )
    if type(module) is nnx.RMSNorm:
        return nn.RMSNorm(
            epsilon=module.epsilon,
            use_scale=module.use_scale,
            reduction_axes=module.reduction_axes,
            feature_axes=module.feature_axes,
            **common,
        )
    return None


def _own_nnx_params(module: Any) -> dict[str, Any]:
    """The ``nnx.Param`` arrays a module holds itself (not those of its sub-modules)."""
    from flax import nnx

    return {
        k: v[...]
        for k, v in vars(module).items()
        if isinstance(v, nnx.Param) and hasattr(v[...], "shape")
    }


@contextlib.contextmanager
def _nnx_calls(model: Any, hook: Callable[..., Any]) -> Iterator[dict[int, tuple]]:
    """While active, a call of any sub-module ``m`` of ``model`` (the model included) runs
    ``hook(path, m, call, args, kwargs)``, where ``call(*args, **kwargs)`` runs ``m`` itself.

    NNX has no method interceptor, so the classes' ``__call__`` are wrapped for the block (restored on
    exit; instances of other models pass through untouched). A module calling itself (``super()``)
    or a hook calling ``m`` runs unhooked.
    """
    from flax import nnx

    paths = {id(m): tuple(p) for p, m in nnx.iter_modules(model)}
    classes = {type(m) for _, m in nnx.iter_modules(model)}
    classes = {c for c in classes if any("__call__" in k.__dict__ for k in c.__mro__[:-1])}
    originals = {c: c.__dict__.get("__call__") for c in classes}
    resolved = {c: c.__call__ for c in classes}
    active: list[int] = []

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(orig)
        def call(self, *args, **kwargs):
            path = paths.get(id(self))
            if path is None or (active and active[-1] == id(self)):
                return orig(self, *args, **kwargs)

            def run(*a, **k):
                return orig(self, *a, **k)

            active.append(id(self))  # calls of `self` inside the hook run unhooked
            try:
                return hook(path, self, run, args, kwargs)
            finally:
                active.pop()

        return call

    try:
        for c in classes:
            c.__call__ = wrap(resolved[c])  # type: ignore[method-assign]
        yield paths
    finally:
        for c, orig in originals.items():
            if orig is None:
                with contextlib.suppress(AttributeError):
                    delattr(c, "__call__")
            else:
                c.__call__ = orig  # type: ignore[method-assign]


def _nnx_probes(model: Any, limit: int = 8) -> list[jax.ShapeDtypeStruct]:
    """One-row inputs for each distinct kernel of an NNX model (``(1, *kernel.shape[:-1])``)."""
    from flax import nnx

    probes: list[jax.ShapeDtypeStruct] = []
    for _, m in nnx.iter_modules(model):
        kernel = _own_nnx_params(m).get("kernel")
        if kernel is not None and kernel.ndim >= 2:
            shape = (1, *kernel.shape[:-1])
            if all(p.shape != shape for p in probes):
                probes.append(jax.ShapeDtypeStruct(shape, jnp.float32))
    return probes[:limit]


def _trace_nnx(model: Any, args: tuple, kwargs: dict, hook: Callable[..., Any]) -> None:
    """``model(*args, **kwargs)`` on a copy, abstractly (nothing computed, ``model`` untouched)."""
    from flax import nnx

    graphdef, state = nnx.split(model)
    is_array = [hasattr(a, "shape") and hasattr(a, "dtype") for a in args]

    def run(state, *arrays):
        it = iter(arrays)
        call = [next(it) if flag else a for a, flag in zip(args, is_array, strict=True)]
        copy = nnx.merge(graphdef, state)
        with _nnx_calls(copy, hook):
            copy(*call, **kwargs)

    jax.eval_shape(run, state, *[a for a, flag in zip(args, is_array, strict=True) if flag])


def walk_nnx(
    model: Any,
    *args: Any,
    types: Sequence[type[nn.Module]] | None = None,
    **kwargs: Any,
) -> ModelWalk:
    """:func:`walk` for a native ``nnx.Module``: its layers and param owners, in call order.

    ``model(*args, **kwargs)`` is traced abstractly on a copy (``jax.eval_shape``: nothing is computed
    and the model, RNG counters included, is untouched). Each called NNX layer with a linen twin
    (:func:`linen_twin`) whose class is one of ``types`` is listed as a :class:`LayerCall` whose
    ``module`` is the twin, ``path`` the layer's path in ``nnx.state(model)`` (strings and list
    indices) and ``shapes`` its params' global shapes; bridged linen modules (``nnx.bridge.ToNNX``)
    are walked with :func:`walk` on the inputs they receive, their paths prefixed with the bridge's.
    Without example inputs the model is called on a one-row probe of each kernel's input dims.

    Args:
        model: an ``nnx.Module`` (native layers, Flax's ``nnx.Linear`` / ``Embed`` / ``LayerNorm``,
            bridged linen modules, any mix).
        *args: example inputs of ``model`` (only shapes and dtypes are used).
        types: the linen classes whose twins to list (subclasses included); default
            :func:`layer_types`.
        **kwargs: keyword inputs of ``model``.

    Returns:
        A :class:`ModelWalk` (layers of ``types``; every module with params, in call order).

    Raises:
        TypeError: if ``model`` is not an ``nnx.Module``.
        ValueError: if the model cannot be called without example inputs (pass them; the model's
            error is chained), or a bridged module has no params yet.

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> class MLP(nnx.Module):
        ...     def __init__(self, rngs):
        ...         self.fc = jl.nnx.Linear(4, 8, rngs=rngs)
        ...         self.head = nnx.Linear(8, 2, rngs=rngs)
        ...     def __call__(self, x):
        ...         return self.head(jnp.tanh(self.fc(x)))
        >>> w = walk_nnx(MLP(nnx.Rngs(0)))
        >>> [(c.name, type(c.module).__name__, c.shapes["kernel"]) for c in w.layers]
        [('fc', 'Linear', (4, 8)), ('head', 'Dense', (8, 2))]
    """
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise TypeError(f"`model` must be an nnx.Module, got {type(model).__name__}.")
    types = tuple(layer_types() if types is None else types)
    bridged = {b.path: b for b in find_bridged(model)}  # ValueError when not initialised
    found: dict[tuple, LayerCall] = {}
    owners: dict[tuple, None] = {}
    bridge_inputs: dict[tuple, tuple[tuple, dict]] = {}
    active: list[tuple] = []

    def hook(path, m, call, call_args, call_kwargs):
        if path in bridged:
            bridge_inputs.setdefault(
                path, (tuple(map(_abstract, call_args)), jax.tree.map(_abstract, call_kwargs))
            )
            owners.setdefault(path)  # replaced by the bridged module's own owners below
            return call(*call_args, **call_kwargs)
        own = _own_nnx_params(m)
        if own:
            owners.setdefault(path)
        twin = linen_twin(m)
        if twin is None or not isinstance(twin, types) or active:
            return call(*call_args, **call_kwargs)
        if path not in found:
            shapes = {k: tuple(v.shape) for k, v in own.items()}
            found[path] = LayerCall(path, twin, shapes, dict.fromkeys(shapes, ()))
        active.append(path)
        try:
            return call(*call_args, **call_kwargs)
        finally:
            active.pop()

    def result() -> ModelWalk:
        layers: list[LayerCall] = []
        paths: list[Path] = []
        for path in owners:
            if path not in bridged:
                paths.append(path)
                if path in found:
                    layers.append(found[path])
                continue
            b = bridged[path]
            b_args, b_kwargs = bridge_inputs[path]
            sub = walk(b.module, b.variables, *b_args, types=types, **b_kwargs)
            layers += [dataclasses.replace(c, path=(*path, *c.path)) for c in sub.layers]
            paths += [(*path, *p) for p in sub.param_owners]
        # found layers without own params (none today) keep their call position among owners
        layers += [c for p, c in found.items() if p not in owners]
        return ModelWalk(layers, paths)

    if args or kwargs:
        _trace_nnx(model, args, kwargs, hook)
        return result()
    probes = _nnx_probes(model)
    errors: list[Exception] = []
    for probe in probes:
        found.clear()
        owners.clear()
        bridge_inputs.clear()
        try:
            _trace_nnx(model, (probe,), {}, hook)
            return result()
        except Exception as err:  # noqa: BLE001 - every probe's error is reported below
            errors.append(err)
    if not probes:
        raise ValueError(
            f"`{type(model).__name__}` has no dense kernel to build a probe input from; pass "
            "example inputs after the model."
        )
    tried = ", ".join(f"{p.shape}: {type(e).__name__}" for p, e in zip(probes, errors, strict=True))
    raise ValueError(
        f"could not call `{type(model).__name__}` on a one-row probe input of any kernel's input "
        f"dims ({tried}) to find its layers; pass example inputs after the model. The first probe's "
        "error is chained."
    ) from errors[0]


def find_nnx_layers(
    model: Any, *args: Any, types: Sequence[type[nn.Module]] | None = None, **kwargs: Any
) -> list[LayerCall]:
    """The layers of a native NNX model, in call order: :func:`walk_nnx`'s ``layers``.

    Args:
        model: an ``nnx.Module``.
        *args: example inputs of ``model`` (optional: a probe is built from the first kernel).
        types: the linen classes whose twins to list; default :func:`layer_types`.
        **kwargs: keyword inputs of ``model``.

    Returns:
        A list of :class:`LayerCall` (``module`` is each layer's linen twin).

    Raises:
        TypeError, ValueError: as :func:`walk_nnx`.

    Example:
        >>> import jaxlinear as jl
        >>> from flax import nnx
        >>> [c.name for c in find_nnx_layers(jl.nnx.Linear(3, 2, rngs=nnx.Rngs(0)))]
        ['']
    """
    return walk_nnx(model, *args, types=types, **kwargs).layers


@contextlib.contextmanager
def substitute_nnx_layers(
    model: Any, replacements: Mapping[tuple, Callable[..., Any]]
) -> Iterator[None]:
    """Within the block, calling the sub-module of ``model`` at ``path`` runs
    ``replacements[path](module, *args, **kwargs)`` instead (:func:`substitute_layers` for NNX).

    The replacement gets the NNX layer; calling that layer inside the replacement runs its own
    ``__call__`` (an observer can wrap it). Paths are the ``path`` of a :class:`LayerCall` of
    :func:`walk_nnx`.

    Args:
        model: an ``nnx.Module``.
        replacements: ``{path: fn}``, ``fn(module, *args, **kwargs) -> output``.

    Returns:
        A context manager.

    Example:
        >>> import jax.numpy as jnp, jaxlinear as jl
        >>> from flax import nnx
        >>> layer = jl.nnx.Linear(3, 2, rngs=nnx.Rngs(0))
        >>> with substitute_nnx_layers(layer, {(): lambda m, x: jnp.zeros((1, 2))}):
        ...     layer(jnp.ones((1, 3))).tolist()
        [[0.0, 0.0]]
    """

    def hook(path, m, call, call_args, call_kwargs):
        fn = replacements.get(path)
        if fn is None:
            return call(*call_args, **call_kwargs)
        return fn(m, *call_args, **call_kwargs)

    with _nnx_calls(model, hook):
        yield
