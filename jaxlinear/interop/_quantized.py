"""``torch.ao.nn.quantized.Linear`` / ``.dynamic.Linear`` -> :class:`jaxlinear.QuantizedLinear` /
:class:`jaxlinear.DynamicQuantizedLinear`, from the packed params of the module's ``state_dict``.

torch's ``state_dict`` holds ``_packed_params._packed_params = (qweight, bias)`` (a qint8 tensor
``(out, in)`` and a float bias or None), ``_packed_params.dtype`` and the output ``scale`` /
``zero_point``. The quantized weight is read duck-typed (``int_repr()``, ``qscheme()``, ``q_scale()`` or
``q_per_channel_scales()`` ...), so nothing here imports torch.

``to_torch`` cannot build torch quantized tensors without torch: it returns plain arrays, ``weight``
(int8 ``(out, in)``), ``weight_scale``, ``weight_zero_point``, ``bias`` and the output ``scale`` /
``zero_point``. Rebuild the module with ``torch._make_per_tensor_quantized_tensor`` (or
``_make_per_channel_quantized_tensor(w, scales, zps, 0)``) and ``module.set_weight_bias(w, bias)``.
"""

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_shape
from jaxlinear._typing import PyTree
from jaxlinear.int8._checks import (
    check_integer_zero_point,
    check_scale,
    check_zero_point_range,
)
from jaxlinear.interop._arrays import check_keys, check_params, layer_params, to_numpy
from jaxlinear.interop._registry import Converter, register
from jaxlinear.nn import DynamicQuantizedLinear, QuantizedLinear

PACKED = "_packed_params._packed_params"


def read_qweight(qweight: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """``(int8 values (out, in), scales, zero points, per_channel)`` of a torch qint8 weight (duck-typed)."""
    if not hasattr(qweight, "int_repr") or not hasattr(qweight, "qscheme"):
        raise TypeError(
            f"the packed weight must be a torch quantized tensor (qint8), got {type(qweight).__name__}."
        )
    values = to_numpy(qweight.int_repr())
    if values.dtype != np.int8 or values.ndim != 2:
        raise ValueError(
            f"the packed weight must be qint8 of shape (out, in), got {values.dtype} {values.shape}."
        )
    scheme = str(qweight.qscheme())
    if "per_channel" in scheme:
        if int(qweight.q_per_channel_axis()) != 0:
            raise ValueError(
                f"the packed weight must be quantized along axis 0, got {qweight.q_per_channel_axis()}."
            )
        scales = to_numpy(qweight.q_per_channel_scales()).astype(np.float32)
        zero_points = to_numpy(qweight.q_per_channel_zero_points()).astype(np.int32)
        return values, scales, zero_points, True
    scale = np.float32(qweight.q_scale())
    return values, np.asarray(scale), np.asarray(np.int32(qweight.q_zero_point())), False


def _params(module: Any, state_dict: Mapping[str, Any], name: str, optional: list[str]) -> dict:
    check_keys(state_dict, [PACKED], optional, name)
    packed = state_dict[PACKED]
    if not isinstance(packed, tuple | list) or len(packed) != 2:
        raise ValueError(f"`state_dict[{PACKED!r}]` must be a (weight, bias) pair, got {packed!r}.")
    qweight, bias = packed
    values, scales, zero_points, per_channel = read_qweight(qweight)
    if values.shape[0] != module.features:
        raise ValueError(
            f"the packed weight must have shape ({module.features}, in_features), got {values.shape}."
        )
    if per_channel != module.per_channel:
        raise ValueError(
            f"`per_channel` of the module must be {per_channel} for this weight "
            f"({qweight.qscheme()}), got {module.per_channel}."
        )
    if bias is not None and not module.use_bias and np.any(to_numpy(bias) != 0):
        raise ValueError("`use_bias` of the module must be True for this state_dict, got False.")
    if bias is None and module.use_bias:
        raise ValueError("`use_bias` of the module must be False for this state_dict, got True.")
    params = {
        "kernel": jnp.asarray(values.T),
        "kernel_scale": jnp.asarray(scales, jnp.float32),
        "kernel_zero_point": jnp.asarray(zero_points, jnp.int32),
    }
    if module.use_bias:  # qnnpack packs a zero bias when there is none: dropped when use_bias=False
        bias = to_numpy(bias)
        check_shape(f"state_dict[{PACKED!r}][1] (the bias)", bias, (module.features,))
        params["bias"] = jnp.asarray(bias, jnp.float32)
    return params


def _static_from_torch(module: QuantizedLinear, state_dict: Mapping[str, Any]) -> PyTree:
    check_keys(
        state_dict,
        [PACKED, "scale", "zero_point"],
        ["_packed_params.dtype"],
        "QuantizedLinear (torch.ao.nn.quantized.Linear)",
    )
    params = _params(
        module, state_dict, "QuantizedLinear", ["scale", "zero_point", "_packed_params.dtype"]
    )
    scale, zero_point = to_numpy(state_dict["scale"]), to_numpy(state_dict["zero_point"])
    check_shape("state_dict['scale'] (the output scale)", scale, ())
    check_shape("state_dict['zero_point'] (the output zero point)", zero_point, ())
    check_scale("state_dict['scale']", scale)
    check_integer_zero_point("state_dict['zero_point']", zero_point)
    check_zero_point_range("state_dict['zero_point']", zero_point, 0, 255, "the range of quint8")
    params["out_scale"] = jnp.asarray(np.float32(scale))
    params["out_zero_point"] = jnp.asarray(np.int32(zero_point))
    return {"params": params}


def _dynamic_from_torch(module: DynamicQuantizedLinear, state_dict: Mapping[str, Any]) -> PyTree:
    optional = [
        "scale",
        "zero_point",
        "_packed_params.dtype",
    ]  # dynamic modules keep unused qparams
    return {"params": _params(module, state_dict, "DynamicQuantizedLinear", optional)}


def _to_torch(module: Any, variables: PyTree) -> dict[str, np.ndarray]:
    f = module.features
    q = (f,) if module.per_channel else ()
    expected = {"kernel": (None, f), "kernel_scale": q, "kernel_zero_point": q}
    if module.use_bias:
        expected["bias"] = (f,)
    if isinstance(module, QuantizedLinear):
        expected |= {"out_scale": (), "out_zero_point": ()}
    owner = f"{type(module).__name__}({f}, use_bias={module.use_bias}, per_channel={module.per_channel})"
    params = check_params(layer_params(variables), expected, owner)
    state = {
        "weight": np.ascontiguousarray(np.asarray(params["kernel"]).T),
        "weight_scale": np.asarray(params["kernel_scale"]),
        "weight_zero_point": np.asarray(params["kernel_zero_point"]),
    }
    if module.use_bias:
        state["bias"] = np.asarray(params["bias"])
    if "out_scale" in params:
        state["scale"] = np.asarray(params["out_scale"])
        state["zero_point"] = np.asarray(params["out_zero_point"])
    return state


register(
    QuantizedLinear,
    Converter("torch.ao.nn.quantized.Linear", _static_from_torch, _to_torch),
)
register(
    DynamicQuantizedLinear,
    Converter("torch.ao.nn.quantized.dynamic.Linear", _dynamic_from_torch, _to_torch),
)
