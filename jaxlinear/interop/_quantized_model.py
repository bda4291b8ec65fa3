"""Quantized torch models -> ``qvariables`` of a :class:`jaxlinear.quantization.QuantizedModel`.

``from_torch(qmodel, state_dict)`` loads a torch model quantized by torchao (``quantize_`` with
``Int8WeightOnlyConfig`` or ``Int8DynamicActivationInt8WeightConfig``: each linear's ``weight`` is a
torchao ``Int8Tensor``, read duck-typed through its ``qdata`` / ``scale`` / ``block_size`` /
``act_quant_kwargs``) or by ``torch.ao.quantization.quantize_dynamic`` (packed params), into the
quantized twin that :func:`jaxlinear.quantization.quantize` built from the float model: the layers are
matched as in :func:`jaxlinear.interop.from_torch`, and the torch scheme must be ``qmodel``'s (a
weight-only state_dict into ``mode="weight_only"``, ...). ``to_torch`` writes plain arrays per layer
(``weight`` int8 ``(out, in)``, ``weight_scale``, ``weight_zero_point`` for torch.ao, ``bias``, and the
static qparams ``input_scale`` ... ``zero_point``): nothing here imports torch, so rebuilding torch's
quantized tensors from them is left to the caller.
"""

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop import _model as whole
from jaxlinear.interop._arrays import check_keys, layer_params, to_numpy
from jaxlinear.interop._quantized import PACKED, read_qweight
from jaxlinear.interop._registry import Converter, register
from jaxlinear.interop._torch_run import is_torch_module, run_torch
from jaxlinear.quantization import QuantizedModel
from jaxlinear.walker import LayerCall, params_at, replace_at


def read_torchao_weight(weight: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(int8 values (out, in), float32 scales (out,), dynamic)`` of a torchao ``Int8Tensor``.

    Only the schemes of the two default configs are accepted: symmetric, per row, no activation
    pre-scale, no reduced range; ``dynamic`` says whether activations are quantized too.
    """
    if not hasattr(weight, "qdata") or not hasattr(weight, "block_size"):
        raise TypeError(
            f"the weight must be a torchao Int8Tensor (quantize_ with Int8WeightOnlyConfig or "
            f"Int8DynamicActivationInt8WeightConfig), got {type(weight).__name__}."
        )
    values = to_numpy(weight.qdata)
    if values.dtype != np.int8 or values.ndim != 2:
        raise ValueError(
            f"the weight's qdata must be int8 (out, in), got {values.dtype} {values.shape}."
        )
    if list(weight.block_size) != [1, values.shape[1]]:
        raise ValueError(
            f"the weight must be quantized per row (PerRow, block_size [1, {values.shape[1]}]), got "
            f"block_size {list(weight.block_size)}."
        )
    zp = getattr(weight, "zero_point", None)
    if zp is not None and np.any(to_numpy(zp) != 0):
        raise ValueError("the weight must be symmetric (zero points 0), got non-zero zero points.")
    if getattr(weight, "act_pre_scale", None) is not None or getattr(weight, "reduce_range", False):
        raise ValueError("the weight must have no act_pre_scale and reduce_range=False (defaults).")
    kwargs = getattr(weight, "act_quant_kwargs", None)
    if kwargs is not None:
        granularity = type(kwargs.granularity).__name__
        mapping = getattr(kwargs.mapping_type, "name", str(kwargs.mapping_type))
        if granularity != "PerRow" or mapping != "SYMMETRIC" or kwargs.reduce_range:
            raise ValueError(
                "the activations must be quantized per row, symmetric, full range (the config's "
                f"defaults), got {granularity}, {mapping}, reduce_range={kwargs.reduce_range}."
            )
    scales = to_numpy(weight.scale).astype(np.float32).reshape(-1)
    return values, scales, kwargs is not None


def _layer_from_torch(qm: QuantizedModel, call: LayerCall, sub: Mapping[str, Any]) -> dict:
    module = call.module
    has_bias = getattr(module, "use_bias", True)
    if qm.scheme == "torchao":
        check_keys(
            sub, ["weight", "bias"] if has_bias else ["weight"], [], f"{call.name} (torchao)"
        )
        values, scales, dynamic = read_torchao_weight(sub["weight"])
        if dynamic != (qm.mode == "dynamic"):
            got = "Int8DynamicActivationInt8WeightConfig" if dynamic else "Int8WeightOnlyConfig"
            raise ValueError(
                f"`qmodel` must have the state_dict's scheme ({got}), got mode={qm.mode!r}."
            )
        params = {"kernel": jnp.asarray(values.T), "kernel_scale": jnp.asarray(scales)}
        if has_bias:
            params["bias"] = jnp.asarray(to_numpy(sub["bias"]), module.param_dtype)
        return params
    if qm.mode != "dynamic":
        raise ValueError(
            f"from_torch loads torch.ao models quantized by quantize_dynamic; `qmodel` has mode "
            f"{qm.mode!r}."
        )
    check_keys(sub, [PACKED], ["_packed_params.dtype", "scale", "zero_point"], call.name)
    qweight, bias = sub[PACKED]
    values, scales, zero_points, per_channel = read_qweight(qweight)
    if per_channel != qm.per_channel:
        raise ValueError(f"`qmodel` must have per_channel={per_channel} for this state_dict, got "
                         f"{qm.per_channel}.")  # fmt: skip
    params = {
        "kernel": jnp.asarray(values.T),
        "kernel_scale": jnp.asarray(scales, jnp.float32),
        "kernel_zero_point": jnp.asarray(zero_points, jnp.int32),
    }
    if has_bias:
        if bias is None:
            raise ValueError(
                f"the torch layer for {call.name!r} has no bias, the Flax layer has one."
            )
        params["bias"] = jnp.asarray(to_numpy(bias), jnp.float32)
    return params


def _from_torch(qm: QuantizedModel, source: Any) -> PyTree:
    torch_module = source if is_torch_module(source) else None
    state_dict = whole._state_dict(source)
    model = qm.model
    errors: list[Exception] = []
    order = None
    for probe in whole._probes(state_dict) or [None]:
        if probe is None:
            raise ValueError("`state_dict` has no 2-D weight to trace `qmodel.model` with.")
        try:
            abstract = whole._abstract_variables(model, (probe,))
            layers = whole._layers(model, abstract, (probe,))
            if torch_module is not None:  # torch's call order pairs equal-shaped layers
                order = run_torch(torch_module, (probe,))[0]
        except Exception as err:  # noqa: BLE001 - this probe does not fit the model: try the next
            errors.append(err)
            continue
        break
    else:
        raise ValueError(f"could not trace `qmodel.model` on the state_dict's weights: {errors[0]}")
    groups = whole._groups(state_dict)
    converted: dict[str, dict] = {}

    def signature(call: LayerCall) -> tuple[int, ...] | None:
        layer = params_at(abstract, call.path)
        if call.path in qm.paths:
            kernel = layer["kernel"]
            return (kernel.shape[-1], kernel.shape[-2])
        zeros = jax.tree.map(lambda v: np.zeros(v.shape, v.dtype), dict(layer))
        converter = whole._converter(call.module)
        try:
            return whole._weight_shape(converter.to_torch(call.module, {"params": zeros}))
        except (KeyError, ValueError, TypeError):
            return None

    def fits(call: LayerCall, prefix: str, mapped: bool) -> str | None:
        want = params_at(abstract, call.path)
        converter = whole._converter(call.module)
        try:
            if call.path in qm.paths:
                params = _layer_from_torch(qm, call, groups[prefix])
            else:  # a layer kept in float (LayerNorm, Embed, ...): its own converter
                params = converter.from_torch(call.module, groups[prefix])["params"]
        except (KeyError, ValueError, TypeError) as err:
            return str(err).strip("\"'").rstrip(".")
        if call.path in qm.paths:
            if tuple(params["kernel"].shape) != tuple(want["kernel"].shape):
                return f"kernel {tuple(params['kernel'].shape)}, the layer needs {want['kernel'].shape}"
        elif whole._shapes(params) != whole._shapes(dict(want)):
            return f"params of shapes {whole._shapes(params)}, the layer needs {whole._shapes(dict(want))}"
        why = whole._settings(converter, call.module, whole._submodule(torch_module, prefix))
        if why and call.path not in qm.paths:
            return why
        converted[call.name] = params
        return None

    layers = [c for c in layers if params_at(abstract, c.path)]  # paramless: nothing to load
    pairs = whole._match(model, layers, groups, {}, signature, fits, order)
    params: dict[str, Any] = {}
    for call, _ in pairs:
        params = replace_at(params, call.path, dict(converted[call.name]))
    missing = sorted(
        p for p in whole._leaf_paths(abstract["params"])
        if not any(p.startswith(c.name + "/") or not c.name for c, _ in pairs)
    )  # fmt: skip
    if missing:
        raise ValueError(f"`qmodel.model` has params no converter covers: {missing}.")
    return {"params": params}


_TORCH_NAMES = {
    "kernel_scale": "weight_scale",
    "kernel_zero_point": "weight_zero_point",
    "bias": "bias",
    "in_scale": "input_scale",
    "in_zero_point": "input_zero_point",
    "out_scale": "scale",
    "out_zero_point": "zero_point",
}


def _to_torch(qm: QuantizedModel, variables: PyTree) -> dict[str, np.ndarray]:
    layer_params(variables)
    state: dict[str, np.ndarray] = {}
    for path, members in zip(qm.paths, qm.members, strict=True):
        params = params_at(variables, path)
        prefix = whole.torch_name(path)
        kernel = np.asarray(params["kernel"])
        if kernel.dtype != np.int8:
            raise ValueError(f"`variables` must hold int8 kernels (qvariables), got {kernel.dtype} at "
                             f"{'/'.join(path)!r}.")  # fmt: skip
        weight = kernel if members else kernel.T  # delu's layout has no transpose
        state[f"{prefix}.weight" if prefix else "weight"] = np.ascontiguousarray(weight)
        for name, value in params.items():
            if name != "kernel":
                key = _TORCH_NAMES[name]
                state[f"{prefix}.{key}" if prefix else key] = np.asarray(value)
    return state


register(
    QuantizedModel,
    Converter("torchao.quantize_ / torch.ao.quantization.quantize_dynamic", _from_torch, _to_torch),
)
