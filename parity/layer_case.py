"""The common shape of a layer parity case: build, export, load, run both sides, compare VJPs."""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxlinear as jl
from parity.autodiff import jax_vjp, torch_vjp
from parity.exchange import export_state_dict
from parity.harness import Check

DTYPES = {"fp32": (torch.float32, jnp.float32), "bf16": (torch.bfloat16, jnp.bfloat16)}

# A jax param path and the function that puts its gradient in the torch parameter's layout.
ParamMap = dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]


def shape_str(shape: tuple[int, ...]) -> str:
    return "(" + "x".join(map(str, shape)) + ")"  # no commas: `--only` splits on them


def layer_checks(
    make_torch: Callable[[], torch.nn.Module],
    jax_module: nn.Module,
    x_shape: tuple[int, ...],
    dtype: str,
    seed: int,
    param_map: ParamMap,
) -> list[Check]:
    """Output, input-grad and every param-grad of the torch reference vs ``jax_module``.

    The torch module is built under ``torch.manual_seed(seed)``, cast to ``dtype``, exported through a
    safetensors file and loaded with ``jl.interop.from_torch``; both sides get the same input and the
    same random cotangent.
    """
    torch_dtype, jax_dtype = DTYPES[dtype]
    torch.manual_seed(seed)
    ref = make_torch().to(torch_dtype)
    variables = jl.interop.from_torch(jax_module, export_state_dict(ref))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape, dtype=np.float32).astype(jax_dtype)
    y_shape = jax.eval_shape(jax_module.apply, variables, jnp.asarray(x)).shape
    g = rng.standard_normal(y_shape, dtype=np.float32).astype(jax_dtype)
    y_want, grads_want, gx_want = torch_vjp(ref, x, g)
    y_got, grads_got, gx_got = jax_vjp(jax_module.apply, variables, x, g)
    checks = [Check("output", y_got, y_want), Check("grad x", gx_got, gx_want)]
    for torch_name, (jax_name, to_torch_layout) in param_map.items():
        checks.append(
            Check(
                f"grad {torch_name}", to_torch_layout(grads_got[jax_name]), grads_want[torch_name]
            )
        )
    return checks
