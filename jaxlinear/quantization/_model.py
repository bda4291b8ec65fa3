"""Whole-model post-training quantization: :func:`quantize` a Flax model in one call.

The workflow above the layers: it finds the model's layers with :mod:`jaxlinear.walker`, quantizes their
weights in one jitted call, observes activations for the static mode, and runs the model with each layer
replaced by its int8 forward (``substitute_layers``). The numerics are the package's pure functions;
nothing at a lower level imports this module.

Schemes (``mode`` / ``scheme``), each reproducing a torch reference on the same float weights:

Defaults are the references' defaults: ``per_channel=None`` is per tensor for ``"dynamic"`` (what
``quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)`` does) and, for ``"static"``, what
``get_default_qconfig(engine)`` does (per channel for x86/fbgemm, per tensor for qnnpack).

- ``"dynamic"`` / ``"torch.ao"`` (default): ``torch.ao.quantization.quantize_dynamic`` with
  ``default_dynamic_qconfig`` (``per_channel=False``, the default) or ``per_channel_dynamic_qconfig``
  (True): int8
  symmetric weights (MinMax observer), activations uint8 per call from the whole input's min/max with
  ``reduce_range`` (``torch.ao.nn.quantized.dynamic.Linear``), ``engine`` numerics.
- ``"dynamic"`` / ``"torchao"``: torchao ``Int8DynamicActivationInt8WeightConfig()``: int8 symmetric
  per output channel weights, int8 symmetric per-row activations (:mod:`._torchao`).
- ``"static"`` / ``"torch.ao"``: eager post-training static quantization with ``QuantStub`` /
  ``DeQuantStub`` around every quantized layer: activation qparams from min/max observers over
  ``calibration`` (``reduce_range`` for x86/fbgemm, as their default qconfigs), weights as the engine's
  default qconfig (per channel or per tensor symmetric as ``per_channel`` says), the input quantized to
  uint8, ``quantized::linear`` with the engine's numerics, the uint8 output dequantized. A layer called
  more than once is observed on every call (torch's one observer per module sees each forward), and
  shares its qparams between calls. torch's default qconfigs use a ``HistogramObserver`` for
  activations; jaxlinear uses ``MinMaxObserver`` (its
  ``QConfig(activation=MinMaxObserver.with_args(reduce_range=...), weight=...)``).
- ``"weight_only"`` / ``"torchao"``: torchao ``Int8WeightOnlyConfig()``: int8 symmetric per output
  channel weights, float matmul in the model's dtype.

Layers: every ``jl.Linear``, ``nn.Dense`` and ``jl.NLinear`` of the model. torch has no quantized
NLinear: jaxlinear quantizes each member as its own torch linear (member ``i`` is the linear with weight
``kernel[i].T``): weight qparams per member and per output channel (per member with
``per_channel=False``), activation qparams per member (static: observed per member; dynamic: each
member's slice of the input). ``UnitScaledLinear`` / ``LinearReadout`` are refused with a ``ValueError``
(their output scale depends on the constraint and the batch; quantize a model of plain layers).
``QuantizedLinear`` / ``DynamicQuantizedLinear`` are already int8 and run as they are; any other
module (norms, embeddings, ``DenseGeneral``, convolutions) runs in float, as torch's quantization leaves
modules it has no quantized counterpart for.

Dtypes: each quantized layer returns the dtype its float twin returns (``dtype``, else the promotion of
input and ``param_dtype``): a bfloat16 ``jl.Linear`` stays bfloat16. torch.ao's int8 kernels take float32
only, so those schemes compute in float32 and cast; torchao's run in the layer's dtype, as torchao does.
"""

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear import functional, int8
from jaxlinear._checks import check_choice, check_finite
from jaxlinear._typing import Array, PyTree
from jaxlinear.int8 import (
    ENGINES,
    QTensor,
    choose_qparams,
    dequantize,
    dynamic_quantized_linear,
    fake_quantize,
    fake_quantize_per_channel,
    min_max,
    quantize_per_channel,
    quantized_linear,
    torchao_dynamic_linear,
    torchao_quantize_weight,
    torchao_weight_only_linear,
)
from jaxlinear.layers import qparam_axes
from jaxlinear.nn._linear import Linear
from jaxlinear.nn._nlinear import NLinear
from jaxlinear.nn._unit_scaled import LinearReadout, UnitScaledLinear
from jaxlinear.walker import LayerCall, find_layers, params_at, substitute_layers

__all__ = ["MODES", "SCHEMES", "QuantizedModel", "fake_quantized_apply", "quantize"]

#: The ``mode`` values of :func:`quantize` for a model, dynamic (activations quantized per call),
#: static (activation qparams from calibration) and weight-only quantization.
MODES = ("dynamic", "static", "weight_only")
#: The ``scheme`` values each mode accepts, the first one its default. ``"torch.ao"`` reproduces
#: ``torch.ao.quantization``'s numerics, ``"torchao"`` torchao's int8 tensors.
SCHEMES = {"dynamic": ("torch.ao", "torchao"), "static": ("torch.ao",), "weight_only": ("torchao",)}
DENSE = (Linear, nn.Dense)
QUANTIZABLE = (Linear, nn.Dense, NLinear)
REFUSED = (UnitScaledLinear, LinearReadout)
Path = tuple[str, ...]


# ------------------------------------------------------------------------------------------ numerics
# The only calls into the int8 linear numerics: keep them here (their saturation argument is left at
# its default: reduce_range activations and qnnpack never saturate).
def _torch_ao_dynamic(x: Array, kernel: QTensor, bias: Array | None, engine: str) -> Array:
    return dynamic_quantized_linear(x, kernel, bias, engine=engine, reduce_range=True)


def _torch_ao_static(
    x: Array, kernel: QTensor, bias: Array | None, qp: Mapping, engine: str
) -> Array:
    xq = int8.quantize(x, qp["in_scale"], qp["in_zero_point"], jnp.uint8)
    y = quantized_linear(xq, kernel, bias, qp["out_scale"], qp["out_zero_point"], engine=engine)
    return dequantize(y)


def _activation_reduce_range(engine: str) -> bool:
    """torch's default qconfig: 7-bit activations for x86/fbgemm, 8-bit for qnnpack."""
    return engine != "qnnpack"


# ------------------------------------------------------------------------------------------ the model
@dataclasses.dataclass(frozen=True)
class QuantizedModel:
    """A float linen model run with its layers in int8: what :func:`quantize` returns.

    ``apply(qvariables, *args, **kwargs)`` is ``model.apply`` with every quantized layer replaced by its
    int8 forward; it traces and jits like any apply (``jax.jit(qmodel.apply)``).

    Attributes:
        model: the float model.
        mode: ``"dynamic"``, ``"static"`` or ``"weight_only"``.
        scheme: ``"torch.ao"`` or ``"torchao"`` (see :data:`SCHEMES`).
        engine: the torch.ao engine whose numerics the int8 kernels follow.
        per_channel: per output channel weight qparams (torch.ao schemes; torchao's are per channel).
        paths: the quantized layers' paths, in call order.
        members: for each path, the number of leading member axes (``NLinear``'s ``n``; 0 otherwise).
    """

    model: nn.Module
    mode: str
    scheme: str
    engine: str
    per_channel: bool
    paths: tuple[Path, ...]
    members: tuple[int, ...]

    def apply(self, variables: PyTree, *args: Any, **kwargs: Any) -> Any:
        """``model.apply(variables, *args, **kwargs)`` with the quantized layers in int8.

        Args:
            variables: the quantized variables :func:`quantize` returned with this model.
            *args: the model's inputs, as for ``model.apply``.
            **kwargs: keyword arguments of ``model.apply`` (``method=``, ``mutable=``, ...).

        Returns:
            What ``model.apply`` returns, computed with the int8 layers.

        Raises:
            TypeError: if a quantized layer is called with more than one input.

        Example:
            >>> import flax.linen as nn, jax, jax.numpy as jnp, jaxlinear as jl
            >>> model = nn.Sequential([jl.Linear(8), nn.relu, nn.Dense(2)])
            >>> v = model.init(jax.random.key(0), jnp.ones((1, 4)))
            >>> qmodel, qv = jl.quantization.quantize(model, v, mode="dynamic")
            >>> jax.jit(qmodel.apply)(qv, jnp.ones((3, 4))).shape
            (3, 2)
        """
        members = dict(zip(self.paths, self.members, strict=True))

        def run(module: nn.Module, x: Any, *rest: Any, **kw: Any) -> Any:
            if rest or kw:
                raise TypeError(
                    f"a quantized layer takes one input, got {1 + len(rest) + len(kw)}."
                )
            params = nn.unbox(module.variables["params"])
            return _layer_forward(self, module, params, jnp.asarray(x), members[tuple(module.path)])

        with substitute_layers(dict.fromkeys(self.paths, run), types=QUANTIZABLE):
            return self.model.apply(variables, *args, **kwargs)


def _out_dtype(module: nn.Module, x: Array) -> jnp.dtype:
    """The dtype the float layer returns: ``dtype``, else the promotion of ``x`` and ``param_dtype``."""
    if module.dtype is not None:
        return jnp.dtype(module.dtype)
    dtype = jnp.result_type(x.dtype, module.param_dtype)
    return dtype if jnp.issubdtype(dtype, jnp.inexact) else jnp.dtype(jnp.float32)


def _per_member(fn, x: Array, n_members: int, *per_member: Any) -> Array:
    """``fn(x_i, *args_i)`` for each member ``i`` of an NLinear input ``(..., *n, in)``."""
    if n_members == 0:
        return fn(x, *per_member)
    n_shape, n_in = x.shape[x.ndim - n_members - 1 : -1], x.shape[-1]
    batch = x.shape[: x.ndim - n_members - 1]
    n = int(np.prod(n_shape))
    xm = jnp.moveaxis(x.reshape(-1, n, n_in), 1, 0)  # (n, B, in)
    flat = jax.tree.map(lambda a: a.reshape(n, *a.shape[n_members:]), per_member)
    y = jax.vmap(fn)(xm, *flat)  # (n, B, out)
    return jnp.moveaxis(y, 0, 1).reshape(*batch, *n_shape, y.shape[-1])


def _layer_forward(
    qm: QuantizedModel, module: nn.Module, params: Mapping, x: Array, n_members: int
) -> Array:
    out_dtype = _out_dtype(module, x)
    bias = params.get("bias")
    axis = None if not qm.per_channel else 1
    if qm.scheme == "torchao":  # member axes handled by the functions themselves (no vmap)
        fn = torchao_weight_only_linear if qm.mode == "weight_only" else torchao_dynamic_linear
        y = fn(x.astype(out_dtype), params["kernel"], params["kernel_scale"], bias)
        return y.astype(out_dtype)

    def one_ao(xi, k, s, zp, *rest):
        kernel = QTensor(k, s, zp, axis)
        b = rest[0] if bias is not None else None
        if qm.mode == "dynamic":
            return _torch_ao_dynamic(xi, kernel, b, qm.engine)
        qp = dict(
            zip(
                ("in_scale", "in_zero_point", "out_scale", "out_zero_point"), rest[-4:], strict=True
            )
        )
        return _torch_ao_static(xi, kernel, b, qp, qm.engine)

    args = [params["kernel"], params["kernel_scale"], params["kernel_zero_point"]]
    if bias is not None:
        args.append(bias)
    if qm.mode == "static":
        args += [params[k] for k in ("in_scale", "in_zero_point", "out_scale", "out_zero_point")]
    x32 = x.astype(jnp.float32)
    flat = x32.reshape(-1, x.shape[-1]) if n_members == 0 else x32
    y = _per_member(lambda xi, *a: one_ao(xi.reshape(-1, xi.shape[-1]), *a), flat, n_members, *args)
    if n_members == 0:
        y = y.reshape(*x.shape[:-1], -1)
    return y.astype(out_dtype)


# ------------------------------------------------------------------------------------------ weights
def _weights(kernel: Array, scheme: str, per_channel: bool) -> dict[str, Array]:
    """int8 kernel and qparams of one float kernel ``(..., in, out)`` (leading axes: members)."""
    if scheme == "torchao":
        q, s = torchao_quantize_weight(kernel)
        return {"kernel": q, "kernel_scale": s}
    kernel = kernel.astype(jnp.float32)
    members, (n_in, n_out) = kernel.shape[:-2], kernel.shape[-2:]
    n = int(np.prod(members))
    if per_channel:  # channels = (member, output) pairs: one per-channel quantization, no vmap
        k = jnp.moveaxis(kernel.reshape(n, n_in, n_out), 0, 1).reshape(n_in, n * n_out)
        s, zp = choose_qparams(*min_max(k, axis=1), jnp.int8, symmetric=True)
        q = quantize_per_channel(k, s, zp, 1, jnp.int8).values
        q = jnp.moveaxis(q.reshape(n_in, n, n_out), 1, 0)
        shape = (*members, n_out)
    elif members:  # one scale per member: per-channel along the member axis
        k = kernel.reshape(n, n_in * n_out)
        s, zp = choose_qparams(*min_max(k, axis=0), jnp.int8, symmetric=True)
        q = quantize_per_channel(k, s, zp, 0, jnp.int8).values
        shape = members
    else:
        s, zp = choose_qparams(*min_max(kernel), jnp.int8, symmetric=True)
        q = int8.quantize(kernel, s, zp, jnp.int8).values
        shape = ()
    return {
        "kernel": q.reshape(kernel.shape),
        "kernel_scale": s.reshape(shape),
        "kernel_zero_point": zp.reshape(shape),
    }


@functools.partial(jax.jit, static_argnames=("scheme", "per_channel"))
def _all_weights(kernels: dict, scheme: str, per_channel: bool) -> dict:
    """Every layer's int8 weights in one compiled call (cached per model shape)."""
    return {path: _weights(k, scheme, per_channel) for path, k in kernels.items()}


def _activation_qparams(stats: Mapping[str, Array], engine: str) -> dict[str, Array]:
    rr = _activation_reduce_range(engine)
    in_s, in_zp = choose_qparams(stats["in_min"], stats["in_max"], reduce_range=rr)
    out_s, out_zp = choose_qparams(stats["out_min"], stats["out_max"], reduce_range=rr)
    return {"in_scale": in_s, "in_zero_point": in_zp, "out_scale": out_s, "out_zero_point": out_zp}


# ------------------------------------------------------------------------------------------ calibration
def _batch_args(item: Any) -> tuple:
    return tuple(item) if isinstance(item, tuple | list) else (item,)


def _check_batch(i: int, item: Any) -> None:
    """A calibration batch: an array or a tuple of the model's positional inputs, none empty."""
    if isinstance(item, Mapping):
        raise TypeError(
            f"`calibration[{i}]` must be an array or a tuple of the model's positional inputs, got a "
            f"{type(item).__name__} (keyword inputs are not supported: wrap the model)."
        )
    for leaf in jax.tree.leaves(_batch_args(item)):
        if np.size(leaf) == 0:
            raise ValueError(
                f"`calibration[{i}]` must not be empty (an empty batch observes no min/max), got "
                f"shape {np.shape(leaf)}."
            )


def _check_finite(i: int, args: tuple) -> None:
    for leaf in jax.tree.leaves(args):
        try:
            check_finite("calibration", leaf)
        except ValueError:
            raise ValueError(
                f"`calibration` must hold finite values, got NaN or inf in batch {i}: the observed "
                "min/max would poison every scale of the layers it reaches."
            ) from None


def _observe(model: nn.Module, layers: Sequence[LayerCall], members: Mapping[Path, int]):
    """A jitted ``(variables, *args) -> {path: (in_min, in_max, out_min, out_max)}`` of one batch."""
    paths = {c.path for c in layers}

    def reduce(a: Array, n: int) -> tuple[Array, Array]:
        a = a.astype(jnp.float32)
        if n == 0:
            return jnp.min(a), jnp.max(a)
        a = a.reshape(-1, *a.shape[a.ndim - n - 1 :])  # (B, *n, features)
        axes = (0, a.ndim - 1)
        return jnp.min(a, axis=axes), jnp.max(a, axis=axes)

    @jax.jit
    def observe(variables, *args):
        seen: dict[Path, Sequence[Array]] = {}

        def interceptor(next_fun, call_args, call_kwargs, context):
            y = next_fun(*call_args, **call_kwargs)
            path = tuple(context.module.path)
            if context.method_name == "__call__" and path in paths:
                n = members[path]
                new = (*reduce(jnp.asarray(call_args[0]), n), *reduce(y, n))
                # a layer called twice: its observers see every call, as torch's (one observer per
                # module, fed by each forward)
                seen[path] = new if path not in seen else _merge(seen[path], new)
            return y

        with nn.intercept_methods(interceptor):
            model.apply(variables, *args)
        return seen

    return observe


def _merge(old: Sequence[Array], new: Sequence[Array]) -> list[Array]:
    """Running (in_min, in_max, out_min, out_max): torch's MinMaxObserver over successive calls."""
    return [
        jnp.minimum(old[0], new[0]), jnp.maximum(old[1], new[1]),
        jnp.minimum(old[2], new[2]), jnp.maximum(old[3], new[3]),
    ]  # fmt: skip


def _calibrate(model, variables, layers, members, calibration) -> dict[Path, dict[str, Array]]:
    if (
        calibration is None
        or isinstance(calibration, str | bytes)
        or not isinstance(calibration, Iterable)
    ):
        raise TypeError(
            "`calibration` must be an iterable of example inputs (arrays, or tuples of the model's "
            f"positional inputs) for mode='static', got {type(calibration).__name__}."
        )
    observe = _observe(model, layers, members)
    stats: dict[Path, list] = {}
    count = 0
    for i, item in enumerate(calibration):
        _check_batch(i, item)
        args = _batch_args(item)
        _check_finite(i, args)
        for path, new in observe(variables, *args).items():
            old = stats.get(path)
            stats[path] = list(new) if old is None else _merge(old, new)
        count += 1
    if count == 0:
        raise ValueError("`calibration` must hold at least one batch, got an empty iterable.")
    missing = [c.name for c in layers if c.path not in stats]
    if missing:
        raise ValueError(f"the calibration batches never reached the layers {missing}.")
    out = {}
    for path, (a, b, c, d) in stats.items():
        if not all(np.isfinite(np.asarray(v)).all() for v in (a, b, c, d)):
            raise ValueError(
                f"the layer at {'/'.join(path)!r} sees NaN or inf on the calibration data (its input "
                "or output overflows)."
            )
        out[path] = {"in_min": a, "in_max": b, "out_min": c, "out_max": d}
    return out


# ------------------------------------------------------------------------------------------ entry point
def _find(
    model: nn.Module, variables: PyTree, example_inputs: Any, types: tuple
) -> list[LayerCall]:
    """The walker's layers of ``types`` (without example inputs, the walker probes the kernels' input
    dims)."""
    args = _batch_args(example_inputs) if example_inputs is not None else ()
    return find_layers(model, variables, *args, types=types)


def _set(tree: dict, path: Path, value: Any) -> dict:
    if not path:
        return value
    node = tree
    for name in path[:-1]:
        node[name] = dict(node[name])
        node = node[name]
    node[path[-1]] = value
    return tree


def quantize_model(
    model: "nn.Module | QuantizedModel",
    variables: PyTree,
    *,
    mode: str,
    calibration: Iterable[Any] | None = None,
    engine: str = "x86",
    per_channel: bool | None = None,
    scheme: str | None = None,
    example_inputs: Any = None,
) -> tuple[QuantizedModel, PyTree]:
    """The model branch of :func:`jaxlinear.quantization.quantize` (see there)."""
    if isinstance(model, QuantizedModel):
        raise ValueError(
            "`model` must be a float model, got a QuantizedModel (already quantized, "
            f"mode={model.mode!r}): quantize the float model `qmodel.model` with its float variables."
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a flax.linen Module, got {type(model).__name__}.")
    check_choice("mode", mode, MODES)
    check_choice("engine", engine, ENGINES)
    if per_channel is not None and not isinstance(per_channel, bool | np.bool_):
        raise TypeError(
            f"`per_channel` must be None or a bool, got {type(per_channel).__name__} {per_channel!r}."
        )
    scheme = SCHEMES[mode][0] if scheme is None else scheme
    check_choice("scheme", scheme, SCHEMES[mode])
    if scheme == "torchao" and per_channel is False:
        raise ValueError(
            "`per_channel` must be None or True with scheme='torchao' (torchao's int8 weights are per "
            "output channel), got False."
        )
    if per_channel is None:
        per_channel = scheme == "torchao" or _default_per_channel(mode, engine)
    if mode == "static":
        calibration = (
            list(calibration)
            if isinstance(calibration, Iterable) and not isinstance(calibration, str | bytes)
            else calibration
        )
        if isinstance(calibration, list):
            for i, item in enumerate(calibration):
                _check_batch(i, item)
        if example_inputs is None and isinstance(calibration, list) and calibration:
            example_inputs = calibration[0]
    elif calibration is not None:
        raise ValueError(
            f"`calibration` must be None for mode={mode!r} (only 'static' observes), got "
            f"{type(calibration).__name__}."
        )
    try:
        layers = _find(model, variables, example_inputs, QUANTIZABLE + REFUSED)
    except (TypeError, ValueError) as e:  # int8 kernels in a float layer fail the walker's call
        _check_float_kernels(_integer_kernels(variables))
        raise e
    refused = [
        f"{c.name} ({type(c.module).__name__})" for c in layers if isinstance(c.module, REFUSED)
    ]
    if refused:
        raise ValueError(
            f"`model` must not contain unit-scaled layers, got {refused}: their output scale depends "
            "on the constraint and the batch, so an int8 twin would not compute the same function. "
            "Quantize a model of jl.Linear / jl.NLinear / nn.Dense layers."
        )
    if not layers:
        raise ValueError(
            f"`model` must call at least one jl.Linear, jl.NLinear or nn.Dense, got none in "
            f"`{type(model).__name__}`."
        )
    lifted = [c.name for c in layers if any(c.stacked.values())]
    if lifted:
        raise ValueError(
            f"`model` has layers lifted by nn.vmap/nn.scan, which quantize does not "
            f"support: {lifted}."
        )
    members = {
        c.path: len(c.module.n_shape) if isinstance(c.module, NLinear) else 0 for c in layers
    }
    kernels = {c.path: params_at(variables, c.path)["kernel"] for c in layers}
    _check_float_kernels(kernels)
    weights = _all_weights(kernels, scheme, per_channel)
    stats = _calibrate(model, variables, layers, members, calibration) if mode == "static" else {}
    params = jax.tree.map(lambda a: a, dict(variables["params"]))  # partitioned boxes kept
    params = _unfreeze(params)
    for c in layers:
        layer = dict(weights[c.path])
        bias = params_at(variables, c.path).get("bias")
        if bias is not None:
            layer["bias"] = bias if scheme == "torchao" else jnp.asarray(bias, jnp.float32)
        if mode == "static":
            layer |= _activation_qparams(stats[c.path], engine)
        params = _set(params, c.path, _keep_axes(layer, _stored(variables, c.path)))
    qmodel = QuantizedModel(
        model, mode, scheme, engine, per_channel, tuple(c.path for c in layers),
        tuple(members[c.path] for c in layers),
    )  # fmt: skip
    return qmodel, {**variables, "params": params}


def _stored(variables: PyTree, path: Path) -> Mapping[str, Any]:
    """The layer's params as stored (partitioned boxes not unboxed)."""
    node = variables["params"]
    for name in path:
        node = node[name]
    return node


def _keep_axes(layer: dict[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """A partitioned float layer's int8 params keep its names: the int8 kernel and the bias theirs,
    the weight qparams the kernel's output (and member) names (:func:`jaxlinear.layers.qparam_axes`)."""
    kernel = stored.get("kernel")
    if not isinstance(kernel, nn.Partitioned):  # nn.LogicallyPartitioned is one
        return layer
    out = {}
    for name, value in layer.items():
        box = stored.get(name) if name in ("kernel", "bias") else None
        if isinstance(box, nn.Partitioned):
            names = box.names
        elif name.startswith("kernel_"):
            names = qparam_axes(kernel.names, np.ndim(value))
        else:
            names = None
        out[name] = value if names is None else kernel.replace(value=value, names=names)
    return out


def _default_per_channel(mode: str, engine: str) -> bool:
    """The reference's default weight granularity of a torch.ao ``mode``.

    ``"dynamic"``: per tensor, as ``quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)`` (its
    ``default_dynamic_qconfig``, on every engine). ``"static"``: as ``get_default_qconfig(engine)``,
    per output channel for ``"x86"`` / ``"fbgemm"``, per tensor for ``"qnnpack"``. (torchao's schemes are
    per channel whatever this says.)

    Args:
        mode: ``"dynamic"``, ``"static"`` or ``"weight_only"``.
        engine: ``"x86"``, ``"fbgemm"`` or ``"qnnpack"``.

    Returns:
        Whether the weights are quantized per output channel by default.

    Example:
        >>> _default_per_channel("dynamic", "x86"), _default_per_channel("static", "x86")
        (False, True)
    """
    return mode == "static" and engine != "qnnpack"


def _integer_kernels(variables: PyTree) -> dict[Path, Any]:
    """Every integer ``kernel`` leaf of ``variables["params"]``, by its layer's path."""
    out = {}
    flat = jax.tree_util.tree_flatten_with_path(nn.unbox(variables.get("params", {})))[0]
    for key_path, leaf in flat:
        names = tuple(str(getattr(k, "key", k)) for k in key_path)
        dtype = getattr(leaf, "dtype", None)
        if names and names[-1] == "kernel" and dtype is not None:
            if jnp.issubdtype(dtype, jnp.integer):
                out[names[:-1]] = leaf
    return out


def _check_float_kernels(kernels: Mapping[Path, Any]) -> None:
    quantized = [
        f"{'/'.join(p)} ({jnp.asarray(k).dtype})"
        for p, k in kernels.items()
        if not jnp.issubdtype(jnp.asarray(k).dtype, jnp.floating)
    ]
    if quantized:
        raise ValueError(
            f"`variables` must hold float kernels, got integer kernels at {quantized}: these variables "
            "are already quantized. Quantize the float variables (the ones `quantize` was given)."
        )


def _unfreeze(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {k: _unfreeze(v) for k, v in tree.items()}
    return tree


def quantize(x: Any, *args: Any, **kwargs: Any) -> Any:
    """Quantize a tensor (torch's ``quantize_per_tensor``) or a whole Flax model (post-training).

    ``quantize(x, scale, zero_point, dtype=jnp.uint8) -> QTensor``: per-tensor quantization of an
    array, bit-exact with ``torch.quantize_per_tensor``.

    ``quantize(model, variables, *, mode, calibration=None, engine="x86", per_channel=None,
    scheme=None, example_inputs=None) -> (qmodel, qvariables)``: every ``jl.Linear``, ``nn.Dense``
    and ``jl.NLinear`` of a linen ``model`` in int8 (the schemes, NLinear's per-member scheme, dtypes
    and refused layers are in this module's docstring). ``qmodel.apply(qvariables, x)`` runs it, under
    ``jax.jit`` too. ``qvariables`` mirror ``variables``: each quantized layer holds ``kernel`` (int8,
    the float kernel's layout), ``kernel_scale`` (float32, per output channel or per tensor),
    ``kernel_zero_point`` (int32; torch.ao schemes), ``bias`` and, for ``"static"``, ``in_scale``,
    ``in_zero_point``, ``out_scale``, ``out_zero_point``.

    Args:
        x: an array, or a ``flax.linen.Module`` (then the model form).
        mode: ``"dynamic"`` (torch.ao ``quantize_dynamic``), ``"static"`` (observers on
            ``calibration``) or ``"weight_only"`` (torchao ``Int8WeightOnlyConfig``).
        calibration: for ``"static"``: an iterable of example inputs (arrays, or tuples of the
            model's positional inputs), all finite.
        engine: ``"x86"``, ``"fbgemm"`` or ``"qnnpack"``: the torch.ao numerics (and default
            activation range) to reproduce.
        per_channel: torch.ao weight qparams per output channel (True) or per tensor (False). None
            (default): the reference's default, per tensor for ``"dynamic"`` (``quantize_dynamic(m,
            {nn.Linear}, dtype=torch.qint8)``), as ``get_default_qconfig(engine)`` for ``"static"``
            (per channel for x86/fbgemm, per tensor for qnnpack).
        scheme: ``"torch.ao"`` (default for dynamic/static) or ``"torchao"`` (default for
            weight_only; with ``mode="dynamic"``: ``Int8DynamicActivationInt8WeightConfig``).
        example_inputs: inputs to find the layers with, when the model's first layer is not dense
            (default: the first calibration batch, else one row for the first kernel).

    Returns:
        A ``QTensor`` (array form), or ``(QuantizedModel, qvariables)`` (model form).

    Raises:
        TypeError: ``calibration`` is not an iterable for ``"static"``; ``per_channel`` not None or
            a bool.
        ValueError: unknown ``mode`` / ``engine`` / ``scheme``; calibration data with NaN or inf, or
            empty; unit-scaled or lifted layers; a model without quantizable layers; a
            ``QuantizedModel`` or integer (already quantized) kernels in ``variables``;
            ``per_channel=False`` with a torchao scheme (per channel only).

    Example:
        >>> import flax.linen as nn, jax, jax.numpy as jnp, jaxlinear as jl
        >>> quantize(jnp.array([0.0, 0.5, 1.0]), 0.5, 1).values
        Array([1, 2, 3], dtype=uint8)
        >>> model = nn.Sequential([jl.Linear(16), nn.relu, jl.NLinear(2, 3)])
        >>> x = jax.random.normal(jax.random.key(1), (32, 2, 8))
        >>> v = model.init(jax.random.key(0), x)
        >>> qmodel, qv = quantize(model, v, mode="static", calibration=[x])
        >>> qv["params"]["layers_2"]["kernel"].dtype, qv["params"]["layers_2"]["kernel_scale"].shape
        (dtype('int8'), (2, 3))
        >>> err = jnp.abs(jax.jit(qmodel.apply)(qv, x) - model.apply(v, x)).max()
        >>> bool(err < 0.1)
        True
    """
    if isinstance(x, nn.Module | QuantizedModel):
        return quantize_model(x, *args, **kwargs)
    from flax import nnx

    if isinstance(x, nnx.Module):  # a native NNX model: the linen workflow on its linen twins
        from jaxlinear.quantization._nnx import quantize_nnx

        return quantize_nnx(x, *args, **kwargs)
    if "mode" in kwargs:
        raise TypeError(
            "`model` must be a flax.linen Module or an nnx.Module to quantize a whole model "
            f"(mode={kwargs['mode']!r}), got {type(x).__name__}."
        )
    return int8.quantize(x, *args, **kwargs)


def fake_quantized_apply(
    model: nn.Module,
    variables: PyTree,
    *args: Any,
    per_channel: bool = True,
    reduce_range: bool = True,
    **kwargs: Any,
) -> Any:
    """The QAT forward: ``model.apply`` with every ``jl.Linear`` / ``nn.Dense`` input and kernel
    fake-quantized (torch's ``FakeQuantize`` with min/max qparams of the current batch and kernel).

    Qparams come from the current batch's min/max (input, uint8 affine, ``reduce_range``) and the
    current kernel (int8 symmetric, per output channel or per tensor), under ``stop_gradient``;
    gradients are straight-through where values were not clamped. Differentiate it like
    ``model.apply``, then :func:`quantize` the trained float variables.

    Args:
        model: a Flax linen module whose ``jl.Linear`` / ``nn.Dense`` layers are to be fake-quantized
            (other layers run in float).
        variables: its float variables (``model.init(...)``).
        *args: the inputs of ``model.apply``.
        per_channel: quantize kernels per output channel (``True``) or per tensor.
        reduce_range: use 7-bit activations (uint8 ``[0, 127]``), as torch's x86/fbgemm ``QConfig``.
        **kwargs: keyword inputs of ``model.apply``.

    Returns:
        What ``model.apply(variables, *args, **kwargs)`` returns, computed with fake-quantized inputs
        and kernels.

    Raises:
        ValueError: if ``variables`` has no ``params``, or a layer's input or kernel that is not
            traced (a concrete array) holds NaN or inf (its scale would not be finite).

    Example:
        >>> import jax, jax.numpy as jnp, jaxlinear as jl
        >>> model = jl.Linear(3)
        >>> x = jax.random.normal(jax.random.key(1), (8, 4))
        >>> v = model.init(jax.random.key(0), x)
        >>> g = jax.grad(lambda v: fake_quantized_apply(model, v, x).sum())(v)
        >>> g["params"]["kernel"].shape
        (4, 3)
    """
    a_min, a_max = int8.qrange(jnp.uint8, reduce_range)
    w_min, w_max = int8.qrange(jnp.int8)
    layers = find_layers(model, variables, *args, types=DENSE, **kwargs) if args or kwargs else []

    def fake(module: nn.Module, x: Any) -> Array:
        params = nn.unbox(module.variables["params"])
        x = jnp.asarray(x, jnp.float32)
        kernel = jnp.asarray(params["kernel"], jnp.float32)
        stop = jax.lax.stop_gradient
        in_s, in_zp = choose_qparams(*min_max(stop(x)), reduce_range=reduce_range)
        xf = fake_quantize(x, in_s, in_zp, a_min, a_max)
        if per_channel:
            w_s, w_zp = choose_qparams(*min_max(stop(kernel), axis=1), jnp.int8, symmetric=True)
            kf = fake_quantize_per_channel(kernel, w_s, w_zp, 1, w_min, w_max)
        else:
            w_s, w_zp = choose_qparams(*min_max(stop(kernel)), jnp.int8, symmetric=True)
            kf = fake_quantize(kernel, w_s, w_zp, w_min, w_max)
        return functional.linear(xf, kf, params.get("bias"), precision=module.precision)

    with substitute_layers({c.path: fake for c in layers}, types=DENSE):
        return model.apply(variables, *args, **kwargs)
