"""Random new neurons (gromo's ``create_layer_extensions``): a baseline to TINY, and a way to start
growth where TINY has no signal (adjacent empty hidden layers)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxlinear._checks import check_positive_int
from jaxlinear._typing import Array, PRNGKey, PyTree
from jaxlinear.growing._model import GrowingMLP, check_layer_index, check_model, split_variables
from jaxlinear.growing._updates import LayerUpdate

__all__ = ["EXTENSION_INITS", "create_layer_extensions"]

# (key, shape, reference or None, fan_in) -> values: gromo's KNOWN_EXTENSION_INITS
ExtensionInit = Callable[[PRNGKey, tuple[int, ...], Array | None, int], Array]


def _kaiming(normal: bool) -> ExtensionInit:
    def init(key, shape, reference, fan_in):
        del reference
        if fan_in <= 0:
            raise ValueError(f"`fan_in` of a Kaiming init must be > 0, got {fan_in}.")
        if normal:  # N(0, 2/fan_in)
            return jax.random.normal(key, shape) * np.float32((2.0 / fan_in) ** 0.5)
        bound = np.float32((6.0 / fan_in) ** 0.5)  # U(±√(6/fan_in))
        return jax.random.uniform(key, shape, minval=-bound, maxval=bound)

    return init


def _copy(normal: bool) -> ExtensionInit:
    fallback = _kaiming(normal)

    def init(key, shape, reference, fan_in):
        ref = None if reference is None else np.asarray(reference, np.float64).ravel()
        std = float(np.std(ref, ddof=1)) if ref is not None and ref.size >= 2 else 0.0
        if not std > 0:  # gromo: no reference, < 2 values or zero variance -> Kaiming
            return fallback(key, shape, reference, fan_in)
        if normal:
            return jax.random.normal(key, shape) * np.float32(std)
        bound = np.float32(3.0**0.5 * std)  # U(±√3·std): variance std²
        return jax.random.uniform(key, shape, minval=-bound, maxval=bound)

    return init


def _zeros(key, shape, reference, fan_in):
    del key, reference, fan_in
    return jnp.zeros(shape, jnp.float32)


#: gromo's ``KNOWN_EXTENSION_INITS``: ``(key, shape, reference, fan_in) -> values`` by name.
EXTENSION_INITS: dict[str, ExtensionInit] = {
    "copy_uniform": _copy(normal=False),
    "copy_normal": _copy(normal=True),
    "kaiming": _kaiming(normal=False),
    "kaiming_normal": _kaiming(normal=True),
    "zeros": _zeros,
}


def _resolve(name: str, init: str | ExtensionInit) -> ExtensionInit:
    if callable(init):
        return init
    if init not in EXTENSION_INITS:
        raise ValueError(
            f"`{name}` must be one of {tuple(EXTENSION_INITS)} or a callable, got {init!r}."
        )
    return EXTENSION_INITS[init]


def create_layer_extensions(
    model: GrowingMLP,
    params: PyTree,
    layer_index: int,
    extension_size: int,
    key: PRNGKey,
    *,
    output_extension_init: str | ExtensionInit = "copy_uniform",
    input_extension_init: str | ExtensionInit = "copy_uniform",
) -> LayerUpdate:
    """``extension_size`` random new neurons in hidden layer ``layer_index``, as a :class:`LayerUpdate`.

    gromo's ``create_layer_extensions`` (without rescaling or neuron pairing): the incoming weights
    α (and their bias) are drawn like the previous layer's weights (bias), the outgoing weights ω
    like the grown layer's weights, each by ``"copy_uniform"`` (U(±√3·std of the reference),
    gromo's default), ``"copy_normal"``, ``"kaiming"`` (U(±√(6/fan_in))), ``"kaiming_normal"`` or
    ``"zeros"`` (or a callable ``(key, shape, reference, fan_in) -> array``). The copies fall back to
    Kaiming when the reference has fewer than 2 values or zero variance. fan_in is the previous
    layer's input width for α and ``in + extension_size`` for ω. δ is zero and the first-order
    improvement 0: apply it with ``apply_change(model, params, update, 1.0)`` (gromo's
    ``complete_growth`` uses the scaling 1). The random draws are JAX's, not torch's.

    Args:
        model: a GrowingMLP without capacity.
        params: its params.
        layer_index: the growable layer whose input grows (1..L).
        extension_size: the number of new neurons.
        key: a PRNG key.
        output_extension_init: the init of α and its bias.
        input_extension_init: the init of ω.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 0, 2, "relu")  # TINY cannot grow this one
        >>> params = model.init(jax.random.key(0), jnp.ones((1, 5)))["params"]
        >>> u = jl.growing.create_layer_extensions(model, params, 1, 4, jax.random.key(1))
        >>> model, params = jl.growing.apply_change(model, params, u, 1.0)
        >>> model.widths
        (5, 4, 0, 3)
    """
    check_model(model)
    p, widths, _ = split_variables(model, params)
    if widths is not None:
        raise ValueError(
            "`model` must have no capacity for create_layer_extensions (unpad it, or apply the "
            "update to the unpadded model and pad again)."
        )
    check_layer_index(model, "layer_index", layer_index)
    check_positive_int("extension_size", extension_size, allow_zero=True)
    out_init = _resolve("output_extension_init", output_extension_init)
    in_init = _resolve("input_extension_init", input_extension_init)
    i, k = layer_index, extension_size
    layer, prev = p[f"layers_{i}"], p[f"layers_{i - 1}"]
    d_in, d_out = layer["kernel"].shape
    prev_in = prev["kernel"].shape[0]
    k_omega, k_alpha, k_bias = jax.random.split(key, 3)
    dtype = layer["kernel"].dtype
    omega = in_init(k_omega, (d_out, k), layer["kernel"].T, k + d_in).astype(dtype)
    alpha = out_init(k_alpha, (k, prev_in), prev["kernel"].T, prev_in).astype(dtype)
    if model.use_bias:
        bias = out_init(k_bias, (k,), prev["bias"], prev_in).astype(dtype)
        alpha = jnp.concatenate([alpha, bias[:, None]], axis=1)
    b = int(model.use_bias)
    return LayerUpdate(
        i,
        jnp.zeros((d_out, d_in + b), dtype),
        jnp.zeros((), dtype),
        jnp.zeros((prev_in + b, d_out), dtype),
        alpha,
        omega,
        jnp.zeros((k,), dtype),
        jnp.zeros((), dtype),
        k,
    )
