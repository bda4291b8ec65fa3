"""Running the torch module beside its port: the order torch calls its layers, and the output check.

Given a torch module (not a bare ``state_dict``), :func:`jaxlinear.interop.from_torch` runs it once on
the example inputs with forward pre-hooks on every submodule: the order of the first calls pairs
equal-shaped layers that names do not decide, as the walker's trace orders the Flax layers. Then, with
``check``, both models run on the same inputs and their outputs are compared. torch is imported here only
when the caller passed a torch module (so it is installed); nothing else in jaxlinear imports it.
"""

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxlinear.interop._arrays import to_numpy

__all__ = ["CHECK_RTOL", "compare_outputs", "is_torch_module", "run_torch", "to_jax_inputs"]

#: The output check's tolerance: ``max |port - torch| <= CHECK_RTOL * max |torch| + CHECK_ATOL`` for
#: each output. fp32 rounding through a deep model stays near ``1e-6`` of the output's scale (MiniLM-L6:
#: ``2.6e-6``); a wrongly paired or wrongly configured layer is off by ``1e-3`` to ``1``.
CHECK_RTOL = 1e-4
#: The output check's absolute floor (outputs near zero), as fp32 parity's ``atol``.
CHECK_ATOL = 1e-6


def is_torch_module(source: Any) -> bool:
    """Whether ``source`` is a torch ``nn.Module`` (duck-typed: hooks, submodules, a state_dict)."""
    return all(
        callable(getattr(source, name, None))
        for name in ("named_modules", "register_forward_pre_hook", "state_dict")
    )


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "cpu") and _is_array(x)


def to_jax_inputs(example: tuple) -> tuple:
    """The example inputs for the Flax model: torch tensors become numpy arrays, the rest stays."""
    return tuple(to_numpy(x) if _is_tensor(x) else x for x in example)


def _device_dtype(torch_module: Any) -> tuple[Any, Any]:
    """The device of the module's first tensor and the dtype of its first floating one."""
    device = dtype = None
    for tensor in (*torch_module.parameters(), *torch_module.buffers()):
        device = tensor.device if device is None else device
        if dtype is None and tensor.dtype.is_floating_point:
            dtype = tensor.dtype
    return device, dtype


def _to_torch_inputs(example: tuple, torch_module: Any) -> tuple:
    """Torch tensors on the module's device; numpy/jax float arrays in the module's float dtype (a
    bf16 model gets bf16 inputs), torch tensors as they are."""
    import torch

    device, dtype = _device_dtype(torch_module)

    def convert(x: Any) -> Any:
        if _is_tensor(x):
            return x if device is None else x.to(device)
        if _is_array(x):
            if isinstance(x, jax.ShapeDtypeStruct):
                raise ValueError(
                    "`example_inputs` must be arrays (values) to run the torch module, got a "
                    f"jax.ShapeDtypeStruct {x.shape}."
                )
            array = np.array(x)
            floating = np.issubdtype(array.dtype, np.floating) or array.dtype.name == "bfloat16"
            if array.dtype.name == "bfloat16":
                array = array.astype(np.float32)
            tensor = torch.from_numpy(array)
            if floating and dtype is not None:
                tensor = tensor.to(dtype)
            return tensor if device is None else tensor.to(device)
        return x

    return tuple(convert(x) for x in example)


def run_torch(torch_module: Any, example: tuple) -> tuple[dict[str, int], Any]:
    """Run ``torch_module`` once in eval mode without gradients, recording the order in which its
    submodules are first called (by their ``named_modules`` names; ``""`` is the module itself).

    The module's ``training`` flags are restored afterwards. Returns ``(order, output)``.
    """
    import torch

    order: dict[str, int] = {}
    modules = list(torch_module.named_modules())
    training = [(m, m.training) for _, m in modules]

    def hook(name: str) -> Any:
        def record(*_: Any) -> None:  # returns None: the inputs are left as they are
            order.setdefault(name, len(order))

        return record

    handles = [m.register_forward_pre_hook(hook(name)) for name, m in modules]
    try:
        torch_module.eval()
        with torch.no_grad():
            output = torch_module(*_to_torch_inputs(example, torch_module))
    finally:
        for handle in handles:
            handle.remove()
        for m, flag in training:
            m.train(flag)
    return order, output


def _torch_leaves(output: Any) -> list[np.ndarray]:
    if output is None:
        return []
    if _is_tensor(output):
        return [to_numpy(output)]
    if isinstance(output, Mapping):  # dicts and transformers' ModelOutput (None values left out)
        return [a for v in output.values() for a in _torch_leaves(v)]
    if isinstance(output, tuple | list):
        return [a for v in output for a in _torch_leaves(v)]
    return []


def compare_outputs(flax_output: Any, torch_output: Any) -> list[str]:
    """The outputs that differ beyond :data:`CHECK_RTOL` (one line each; empty when they agree).

    Both outputs are flattened (tuples, lists, dicts, named tuples, ``ModelOutput``; ``None`` left
    out); the Flax model's arrays are compared with torch's first ones (torch modules may return more,
    e.g. ``nn.MultiheadAttention``'s attention weights). Raises ``ValueError`` when they cannot be
    paired by shape.
    """
    got = [np.asarray(a) for a in jax.tree.leaves(flax_output) if _is_array(a)]
    want = _torch_leaves(torch_output)
    shapes_got, shapes_want = [a.shape for a in got], [a.shape for a in want]
    if not got or len(want) < len(got) or shapes_want[: len(got)] != shapes_got:
        raise ValueError(
            f"cannot compare the outputs: the Flax model returns arrays of shapes {shapes_got}, the "
            f"torch module {shapes_want}; pass check=False (or example_inputs both accept)."
        )
    problems = []
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        g, w = g.astype(np.float64), w.astype(np.float64)
        if not np.array_equal(np.isnan(g), np.isnan(w)):
            problems.append(f"output {i}: NaNs at different places")
            continue
        ok = ~np.isnan(w)
        err = float(np.max(np.abs(g[ok] - w[ok]), initial=0.0))
        scale = float(np.max(np.abs(w[ok]), initial=0.0))
        if err > CHECK_RTOL * scale + CHECK_ATOL:
            problems.append(
                f"output {i} {g.shape}: max |port - torch| = {err:.3g} (largest |torch| {scale:.3g}; "
                f"allowed {CHECK_RTOL:g} * {scale:.3g} + {CHECK_ATOL:g})"
            )
    return problems
