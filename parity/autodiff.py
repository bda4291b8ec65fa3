"""Forward plus one backward pass with the same random cotangent, on both sides.

Both sides return the output and the gradients w.r.t. the input and every parameter, so a case can
compare the whole vector-Jacobian product.
"""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import torch

from parity.exchange import to_array, to_tensor


def jax_vjp(
    apply: Callable[[Any, jax.Array], jax.Array],
    variables: Any,
    x: np.ndarray,
    cotangent: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """``(y, {param name: grad}, grad_x)`` of ``apply(variables, x)`` for ``cotangent``."""
    y, vjp = jax.vjp(apply, variables, jax.numpy.asarray(x))
    grad_vars, grad_x = vjp(jax.numpy.asarray(cotangent, y.dtype))
    flat = {
        "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
        for path, v in jax.tree_util.tree_flatten_with_path(grad_vars["params"])[0]
    }
    return np.asarray(y), flat, np.asarray(grad_x)


def torch_vjp(
    module: torch.nn.Module, x: np.ndarray, cotangent: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """``(y, {param name: grad}, grad_x)`` of ``module(x)`` for ``cotangent``."""
    xt = to_tensor(x).requires_grad_(True)
    module.zero_grad(set_to_none=True)
    y = module(xt)
    y.backward(to_tensor(cotangent).to(y.dtype))
    grads = {
        name: (to_array(p.grad) if p.grad is not None else np.zeros(p.shape, np.float32))
        for name, p in module.named_parameters()
    }
    return to_array(y), grads, to_array(xt.grad)


def torch_mse_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x, y) -> None:
    """One step of a torch optimizer on ``mean((model(x) - y)**2)``: the references' training step."""
    optimizer.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
