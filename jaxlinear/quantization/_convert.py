"""Post-training quantization and quantization-aware training of any Flax model built from ``jl.Linear``.

Every ``jl.Linear`` call of a model is intercepted (``flax.linen.intercept_methods``), so the model code
does not change:

1. :func:`calibrate` runs the float model on calibration batches and records, per ``Linear`` (keyed by its
   module path, e.g. ``"Dense_0"``), the running min/max of its input and output (``MinMaxObserver``).
2. :func:`convert` turns the float params and those statistics into int8 kernels (symmetric, per output
   channel by default) and uint8 activation qparams (affine, ``reduce_range`` by default): torch's
   ``get_default_qconfig("x86")`` with min/max observers.
3. :func:`quantized_apply` runs the model with each ``Linear`` replaced by quantize -> int8 linear
   (:func:`quantized_linear`, engine numerics) -> dequantize; everything else runs in float.
4. :func:`fake_quantized_apply` is the QAT forward: each ``Linear`` sees its input and kernel fake-quantized
   (straight-through gradients), with qparams from the current batch and the current kernel.
"""

from collections.abc import Iterable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlinear import functional
from jaxlinear._typing import Array, PyTree
from jaxlinear.nn._linear import Linear
from jaxlinear.quantization._fake import fake_quantize, fake_quantize_per_channel
from jaxlinear.quantization._linear import quantized_linear
from jaxlinear.quantization._qparams import choose_qparams, min_max
from jaxlinear.quantization._qtensor import (
    dequantize,
    qrange,
    quantize,
    quantize_per_channel,
)

__all__ = ["calibrate", "convert", "fake_quantized_apply", "quantized_apply"]


def _path(module: nn.Module) -> str:
    return "/".join(module.path)


def _is_linear_call(context: Any) -> bool:
    return isinstance(context.module, Linear) and context.method_name == "__call__"


def calibrate(
    model: nn.Module, variables: PyTree, batches: Iterable[Any]
) -> dict[str, dict[str, Array]]:
    """Min/max of the input and output of every ``jl.Linear`` of ``model`` over ``batches``.

    Returns:
        ``{path: {"in_min", "in_max", "out_min", "out_max"}}`` (float32 scalars).

    Raises:
        ValueError: if a batch gives a NaN or infinite input or output at some layer (torch's observers
            would record it and every qparam after it would be NaN or inf), or if the model calls no
            ``jl.Linear``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.Linear(3)
        >>> v = model.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> stats = calibrate(model, v, [jnp.ones((2, 4)), -jnp.ones((2, 4))])
        >>> sorted(stats), float(stats[""]["in_min"])
        ([''], -1.0)
    """

    call_order: dict[str, None] = {}  # filled while tracing: jit returns dicts with sorted keys

    @jax.jit
    def observe(variables, x):
        seen = {}

        def interceptor(next_fun, args, kwargs, context):
            y = next_fun(*args, **kwargs)
            if _is_linear_call(context):
                call_order[_path(context.module)] = None
                in_lo, in_hi = min_max(args[0])
                out_lo, out_hi = min_max(y)
                seen[_path(context.module)] = {
                    "in_min": in_lo,
                    "in_max": in_hi,
                    "out_min": out_lo,
                    "out_max": out_hi,
                }
            return y

        with nn.intercept_methods(interceptor):
            model.apply(variables, x)
        return seen

    stats: dict[str, dict[str, Array]] = {}
    for i, x in enumerate(batches):
        seen = observe(variables, x)
        for path in call_order:  # report the first layer, in call order, that saw NaN or inf
            new = seen[path]
            bad = [
                k for k in ("in_min", "in_max", "out_min", "out_max") if not jnp.isfinite(new[k])
            ]
            if bad:
                where = "input" if bad[0].startswith("in") else "output"
                raise ValueError(
                    f"`batches` must give finite values at every jl.Linear, got a NaN or inf "
                    f"{where} at layer {path!r} on batch {i} ({', '.join(bad)} not finite)."
                )
        for path, new in seen.items():
            old = stats.get(path)
            stats[path] = (
                new
                if old is None
                else {
                    k: (jnp.minimum if k.endswith("min") else jnp.maximum)(old[k], new[k])
                    for k in new
                }
            )
    if not stats:
        raise ValueError("`model` must call at least one jl.Linear on the calibration batches.")
    return stats


def _params_at(variables: PyTree, path: str) -> dict[str, Array]:
    node = variables["params"]
    for name in filter(None, path.split("/")):
        node = node[name]
    return node


def convert(
    variables: PyTree,
    stats: dict[str, dict[str, Array]],
    *,
    per_channel: bool = True,
    reduce_range: bool = True,
) -> dict[str, dict[str, Any]]:
    """int8 weights and activation qparams for every calibrated ``jl.Linear``.

    Weights: symmetric int8 (``per_channel_symmetric`` along the output axis, or
    ``per_tensor_symmetric``). Activations: affine uint8 from the calibrated min/max, 7-bit with
    ``reduce_range`` (torch's x86 default, which also avoids FBGEMM's int16 saturation), for inputs and
    outputs alike, as torch's activation observer.

    Returns:
        ``{path: {"kernel": QTensor, "bias": Array | None, "in_scale", "in_zero_point", "out_scale",
        "out_zero_point"}}``, the input of :func:`quantized_apply`.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.Linear(3)
        >>> v = model.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> q = convert(v, calibrate(model, v, [jnp.ones((2, 4))]))
        >>> q[""]["kernel"].values.dtype, q[""]["kernel"].axis
        (dtype('int8'), 1)
    """
    out = {}
    for path, st in stats.items():
        params = _params_at(variables, path)
        kernel = jnp.asarray(params["kernel"], jnp.float32)
        if per_channel:
            lo, hi = min_max(kernel, axis=1)
            w_s, w_zp = choose_qparams(lo, hi, jnp.int8, symmetric=True)
            qkernel = quantize_per_channel(kernel, w_s, w_zp, 1, jnp.int8)
        else:
            w_s, w_zp = choose_qparams(*min_max(kernel), jnp.int8, symmetric=True)
            qkernel = quantize(kernel, w_s, w_zp, jnp.int8)
        in_s, in_zp = choose_qparams(st["in_min"], st["in_max"], reduce_range=reduce_range)
        out_s, out_zp = choose_qparams(st["out_min"], st["out_max"], reduce_range=reduce_range)
        bias = params.get("bias")
        out[path] = {
            "kernel": qkernel,
            "bias": None if bias is None else jnp.asarray(bias, jnp.float32),
            "in_scale": in_s,
            "in_zero_point": in_zp,
            "out_scale": out_s,
            "out_zero_point": out_zp,
        }
    return out


def quantized_apply(
    model: nn.Module,
    variables: PyTree,
    qparams: dict[str, dict[str, Any]],
    *args: Any,
    engine: str = "x86",
    int16_saturation: bool = False,
    **kwargs: Any,
) -> Any:
    """``model.apply(variables, *args)`` with every converted ``jl.Linear`` run in int8.

    ``engine`` and ``int16_saturation`` are :func:`quantized_linear`'s (the saturation never matters
    with the default ``reduce_range`` activations of :func:`convert`).

    Each such layer quantizes its float input with the calibrated qparams, runs
    :func:`quantized_linear` (``engine`` numerics) and dequantizes the uint8 output: the computation of a
    torch model converted with ``QuantStub``/``DeQuantStub`` around each linear.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.Linear(3)
        >>> x = jax.random.normal(jax.random.key(1), (8, 4))
        >>> v = model.init(jax.random.key(0), x)
        >>> q = convert(v, calibrate(model, v, [x]))
        >>> err = jnp.abs(quantized_apply(model, v, q, x) - model.apply(v, x)).max()
        >>> bool(err < 0.05)
        True
    """

    def interceptor(next_fun, call_args, call_kwargs, context):
        if not _is_linear_call(context) or _path(context.module) not in qparams:
            return next_fun(*call_args, **call_kwargs)
        qp = qparams[_path(context.module)]
        x = jnp.asarray(call_args[0], jnp.float32)
        flat = x.reshape(-1, x.shape[-1])
        xq = quantize(flat, qp["in_scale"], qp["in_zero_point"], jnp.uint8)
        y = quantized_linear(
            xq,
            qp["kernel"],
            qp["bias"],
            qp["out_scale"],
            qp["out_zero_point"],
            engine=engine,
            int16_saturation=int16_saturation,
        )
        return dequantize(y).reshape(*x.shape[:-1], -1)

    with nn.intercept_methods(interceptor):
        return model.apply(variables, *args, **kwargs)


def fake_quantized_apply(
    model: nn.Module,
    variables: PyTree,
    *args: Any,
    per_channel: bool = True,
    reduce_range: bool = True,
    **kwargs: Any,
) -> Any:
    """The QAT forward: ``model.apply`` with every ``jl.Linear``'s input and kernel fake-quantized.

    Qparams come from the current batch's min/max (input) and the current kernel (symmetric int8), under
    ``stop_gradient``; gradients are straight-through where values were not clamped. Differentiate it
    like ``model.apply``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.Linear(3)
        >>> x = jax.random.normal(jax.random.key(1), (8, 4))
        >>> v = model.init(jax.random.key(0), x)
        >>> g = jax.grad(lambda v: fake_quantized_apply(model, v, x).sum())(v)
        >>> g["params"]["kernel"].shape
        (4, 3)
    """
    a_min, a_max = qrange(jnp.uint8, reduce_range)
    w_min, w_max = qrange(jnp.int8)

    def interceptor(next_fun, call_args, call_kwargs, context):
        if not _is_linear_call(context):
            return next_fun(*call_args, **call_kwargs)
        module = context.module
        params = module.variables["params"]
        x = jnp.asarray(call_args[0], jnp.float32)
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
        bias = params.get("bias")
        return functional.linear(xf, kf, bias, precision=module.precision)

    with nn.intercept_methods(interceptor):
        return model.apply(variables, *args, **kwargs)
