"""``quantize``: torch's ``quantize_per_tensor`` of an array, or post-training quantization of a model.

One public name, two typed implementations: an array goes to :func:`jaxlinear.int8.quantize` (level 1),
a linen model to ``_model.quantize_model`` and an NNX model to ``_nnx.quantize_nnx`` (the workflow).
The ``typing.overload`` signatures below are what documentation and static type checkers see.
"""

from collections.abc import Iterable
from typing import Any, overload

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx

from jaxlinear import int8
from jaxlinear._typing import Array, Dtype, PyTree
from jaxlinear.int8 import QTensor
from jaxlinear.quantization._model import QuantizedModel, quantize_model
from jaxlinear.quantization._nnx import quantize_nnx

__all__ = ["quantize"]


@overload
def quantize(x: Array, scale: Any, zero_point: Any, dtype: Dtype = jnp.uint8) -> QTensor: ...


@overload
def quantize(
    x: nn.Module,
    variables: PyTree,
    *,
    mode: str,
    calibration: Iterable[Any] | None = None,
    engine: str = "x86",
    per_channel: bool | None = None,
    scheme: str | None = None,
    example_inputs: Any = None,
    activation_observer: str | None = None,
) -> tuple[QuantizedModel, PyTree]: ...


@overload
def quantize(
    x: nnx.Module,
    *,
    mode: str,
    calibration: Iterable[Any] | None = None,
    engine: str = "x86",
    per_channel: bool | None = None,
    scheme: str | None = None,
    example_inputs: Any = None,
    activation_observer: str | None = None,
) -> nnx.Module: ...


def quantize(x: Any, *args: Any, **kwargs: Any) -> Any:
    """Quantize a tensor (torch's ``quantize_per_tensor``) or a whole Flax model (post-training).

    ``quantize(x, scale, zero_point, dtype=jnp.uint8) -> QTensor``: per-tensor quantization of an
    array, bit-exact with ``torch.quantize_per_tensor`` (:func:`jaxlinear.int8.quantize`).

    ``quantize(model, variables, *, mode, calibration=None, engine="x86", per_channel=None,
    scheme=None, example_inputs=None, activation_observer=None) -> (qmodel, qvariables)``: every
    ``jl.Linear``, ``nn.Dense`` and ``jl.NLinear`` of a linen ``model`` in int8 (the schemes,
    NLinear's per-member scheme, dtypes and refused layers are in :mod:`jaxlinear.quantization`).
    ``qmodel.apply(qvariables, x)`` runs it, under ``jax.jit`` too. ``qvariables`` mirror ``variables``: each quantized layer holds ``kernel``
    (int8, the float kernel's layout), ``kernel_scale`` (float32, per output channel or per tensor),
    ``kernel_zero_point`` (int32; torch.ao schemes), ``bias`` and, for ``"static"``, ``in_scale``,
    ``in_zero_point``, ``out_scale``, ``out_zero_point``.

    ``quantize(model, *, mode, ...) -> qmodel`` for an ``nnx.Module`` (no ``variables``: its params are
    its own state): a quantized copy, each quantizable layer a :class:`QuantizedNnxLayer` (each bridged
    linen module with such layers a :class:`QuantizedNnxBridge`), with the numbers of the linen path.

    Args:
        x: an array (the tensor form), a ``flax.linen.Module`` or an ``nnx.Module`` (the model form).
        *args: tensor form: ``scale``, ``zero_point`` and ``dtype`` (``jnp.uint8`` or ``jnp.int8``);
            linen model form: ``variables``, the model's float variables.
        **kwargs: tensor form: the same arguments by name; model form: the keywords below.
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
        activation_observer: for ``"static"``: ``"histogram"`` (None, the default: torch's default
            qconfig's ``HistogramObserver``, bit-exact) or ``"minmax"`` (``MinMaxObserver``, the
            plain observed range). Must be None for the other modes.

    Returns:
        A ``QTensor`` (tensor form), ``(QuantizedModel, qvariables)`` (linen model), or the quantized
        ``nnx.Module`` (NNX model).

    Raises:
        TypeError: ``mode=`` given with something that is not a model; ``variables`` given with an
            ``nnx.Module``, or no ``mode=``; ``calibration`` is not an iterable for ``"static"``;
            ``per_channel`` not None or a bool.
        ValueError: unknown ``mode`` / ``engine`` / ``scheme`` / ``activation_observer`` (or one
            given for a mode other than ``"static"``); calibration data with NaN or inf, or
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
    if isinstance(x, nnx.Module):  # a native NNX model: the linen workflow on its linen twins
        if args:
            raise TypeError(
                "`variables` must be omitted for an nnx.Module (its params are its own state): "
                "quantize(model, mode=..., calibration=..., ...)."
            )
        if "mode" not in kwargs:
            raise TypeError(
                "quantize(model, ...) needs `mode=`: 'dynamic', 'static' or 'weight_only'."
            )
        return quantize_nnx(x, **kwargs)
    if "mode" in kwargs:
        raise TypeError(
            "`model` must be a flax.linen Module or an nnx.Module to quantize a whole model "
            f"(mode={kwargs['mode']!r}), got {type(x).__name__}."
        )
    return int8.quantize(x, *args, **kwargs)
