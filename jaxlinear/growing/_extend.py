"""One growing linear layer, functionally: forward, extended forward, apply change, resizing.

A layer's params are ``{"kernel": (in, out), "bias": (out,)}`` (jaxlinear's layout; no ``"bias"``
without a bias). The growth quantities keep gromo's layouts, with the ones column last:
``optimal_delta`` δ ``(out, in + bias)``, ``extended_input`` ω ``(out, k)`` (on the grown layer) and
``extended_output`` α ``(k, in_prev + bias_prev)`` (on the *previous* layer). Nothing is mutated: every
function returns new params.
"""

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_choice, check_positive_int
from jaxlinear._typing import Array

__all__ = [
    "ACTIVATIONS",
    "add_parameters",
    "apply_change",
    "extended_forward",
    "layer_forward",
    "layer_in_extension",
    "layer_out_extension",
    "sub_select_optimal_added_parameters",
]


def _identity(x: Array) -> Array:
    return x


def _gelu(x: Array) -> Array:
    return jax.nn.gelu(x, approximate=False)  # torch.nn.GELU() is the exact erf form


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "gelu": _gelu,
    "selu": jax.nn.selu,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "identity": _identity,
}


def _activation(name: str) -> Callable[[Array], Array]:
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]


def _row(v: Array, ndim: int) -> Array:
    return jnp.reshape(v, (1,) * (ndim - 1) + (-1,))


def _affine(x: Array, weight_t: Array, bias: Array | None) -> Array:
    y = x @ weight_t
    return y if bias is None else y + _row(bias, y.ndim)


def layer_forward(params: Mapping[str, Array], x: Array) -> Array:
    """The pre-activation ``x @ kernel + bias``; zeros when the layer has no input (gromo's forward).

    gromo patches ``nn.Linear.forward`` to return zeros when ``in_features == 0``, ignoring the bias;
    this does the same (the torch init makes that bias 0 anyway).

    Example:
        >>> p = {"kernel": jnp.zeros((0, 3)), "bias": jnp.ones(3)}
        >>> layer_forward(p, jnp.zeros((2, 0))).tolist()
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    kernel = params["kernel"]
    if x.shape[-1] != kernel.shape[0]:
        raise ValueError(
            f"`x` must have {kernel.shape[0]} features (the kernel's in_features), got {x.shape}."
        )
    if kernel.shape[0] == 0:
        return jnp.zeros((*x.shape[:-1], kernel.shape[1]), jnp.result_type(x, kernel))
    return _affine(x, kernel, params.get("bias"))


def _split(raw: Array, use_bias: bool) -> tuple[Array, Array | None]:
    """(out, in + bias) -> weight (out, in), bias (out,) | None."""
    if use_bias:
        return raw[:, :-1], raw[:, -1]
    return raw, None


def extended_forward(
    params: Mapping[str, Array],
    x: Array,
    x_ext: Array | None = None,
    *,
    activation: str = "identity",
    optimal_delta: Array | None = None,
    extended_input: Array | None = None,
    extended_output: Array | None = None,
    optimal_delta_scaling: Array | float = 0.0,
    input_extension_scaling: Array | float = 0.0,
    output_extension_scaling: Array | float = 0.0,
) -> tuple[Array, Array | None]:
    """gromo's ``extended_forward``: ``(σ(pre), σ(supp) or None)``.

    ``pre = x W + b − s_δ·δ(x) + s_in·ω(x_ext)`` and ``supp = s_out·α(x)`` (α with its bias column).
    Under the legacy amplitude γ: s_δ = γ², s_in = s_out = γ. Unlike gromo (whose in-place update
    fails under autograd when the layer has no input) this works under ``jax.grad`` with 0 inputs.

    Example:
        >>> p = {"kernel": jnp.zeros((2, 3)), "bias": jnp.zeros(3)}
        >>> y, supp = extended_forward(p, jnp.ones((4, 2)), extended_output=jnp.ones((5, 3)),
        ...                            output_extension_scaling=0.5)
        >>> y.shape, supp.shape, float(supp[0, 0])
        ((4, 3), (4, 5), 1.5)
    """
    act = _activation(activation)
    use_bias = "bias" in params
    pre = layer_forward(params, x)
    if optimal_delta is not None:
        dw, db = _split(optimal_delta, use_bias)
        pre = pre - optimal_delta_scaling * _affine(x, dw.T, db)
    if extended_input is not None:
        if x_ext is None:
            raise ValueError("`x_ext` must be given when the layer has an `extended_input`.")
        pre = pre + input_extension_scaling * (x_ext @ extended_input.T)
    elif x_ext is not None:
        raise ValueError("`x_ext` must be None when the layer has no `extended_input`.")
    supp = None
    if extended_output is not None:
        aw, ab = _split(extended_output, use_bias)
        supp = act(output_extension_scaling * _affine(x, aw.T, ab))
    return act(pre), supp


def layer_in_extension(params: Mapping[str, Array], weight: Array) -> dict[str, Array]:
    """New input columns: ``weight (out, K)`` (torch layout) appended to the kernel's inputs.

    Example:
        >>> p = layer_in_extension({"kernel": jnp.zeros((2, 3))}, jnp.ones((3, 4)))
        >>> p["kernel"].shape
        (6, 3)
    """
    kernel = params["kernel"]
    if weight.ndim != 2 or weight.shape[0] != kernel.shape[1]:
        raise ValueError(f"`weight` must have shape ({kernel.shape[1]}, K), got {weight.shape}.")
    new = dict(params)
    new["kernel"] = jnp.concatenate([kernel, weight.T.astype(kernel.dtype)], axis=0)
    return new


def layer_out_extension(
    params: Mapping[str, Array], weight: Array, bias: Array | None = None
) -> dict[str, Array]:
    """New outputs: ``weight (K, in)`` (torch layout) and ``bias (K,)`` (required iff the layer has one).

    Example:
        >>> p = {"kernel": jnp.zeros((2, 3)), "bias": jnp.zeros(3)}
        >>> p = layer_out_extension(p, jnp.ones((4, 2)), jnp.ones(4))
        >>> p["kernel"].shape, p["bias"].shape
        ((2, 7), (7,))
    """
    kernel = params["kernel"]
    if weight.ndim != 2 or weight.shape[1] != kernel.shape[0]:
        raise ValueError(f"`weight` must have shape (K, {kernel.shape[0]}), got {weight.shape}.")
    new = dict(params)
    new["kernel"] = jnp.concatenate([kernel, weight.T.astype(kernel.dtype)], axis=1)
    if "bias" in params:
        if bias is None or bias.shape != (weight.shape[0],):
            shape = None if bias is None else bias.shape
            raise ValueError(f"`bias` must have shape ({weight.shape[0]},), got {shape}.")
        new["bias"] = jnp.concatenate([params["bias"], bias.astype(params["bias"].dtype)])
    elif bias is not None:
        raise ValueError("`bias` must be None for a layer without a bias.")
    return new


def add_parameters(
    params: Mapping[str, Array],
    matrix_extension: Array | None,
    bias_extension: Array | None,
    added_in_features: int = 0,
    added_out_features: int = 0,
) -> dict[str, Array]:
    """gromo's ``add_parameters``: add inputs *or* outputs (zeros where an extension is None).

    Fixing the neighbouring layers is up to the caller (gromo warns about it).

    Example:
        >>> p = {"kernel": jnp.zeros((2, 3)), "bias": jnp.zeros(3)}
        >>> add_parameters(p, None, None, added_out_features=2)["kernel"].shape
        (2, 5)
    """
    check_positive_int("added_in_features", added_in_features, allow_zero=True)
    check_positive_int("added_out_features", added_out_features, allow_zero=True)
    if added_in_features > 0 and added_out_features > 0:
        raise ValueError(
            "`added_in_features` and `added_out_features` must not both be > 0, got "
            f"{added_in_features} and {added_out_features}."
        )
    kernel = params["kernel"]
    d_in, d_out = kernel.shape
    new = dict(params)
    if added_in_features > 0:
        if matrix_extension is None:
            matrix_extension = jnp.zeros((d_out, added_in_features), kernel.dtype)
        elif matrix_extension.shape != (d_out, added_in_features):
            raise ValueError(
                f"`matrix_extension` must have shape {(d_out, added_in_features)}, "
                f"got {matrix_extension.shape}."
            )
        new = layer_in_extension(new, matrix_extension)
    if added_out_features > 0:
        if matrix_extension is None:
            matrix_extension = jnp.zeros((added_out_features, d_in), kernel.dtype)
        elif matrix_extension.shape != (added_out_features, d_in):
            raise ValueError(
                f"`matrix_extension` must have shape {(added_out_features, d_in)}, "
                f"got {matrix_extension.shape}."
            )
        if "bias" in params and bias_extension is None:
            bias_extension = jnp.zeros((added_out_features,), kernel.dtype)
        new = layer_out_extension(
            new, matrix_extension, bias_extension if "bias" in params else None
        )
    return new


def apply_change(
    params: Mapping[str, Array],
    previous_params: Mapping[str, Array] | None,
    *,
    optimal_delta: Array | None = None,
    extended_input: Array | None = None,
    extended_output: Array | None = None,
    optimal_delta_scaling: float | Array = 0.0,
    input_extension_scaling: float | Array = 0.0,
    output_extension_scaling: float | Array = 0.0,
) -> tuple[dict[str, Array], dict[str, Array] | None]:
    """gromo's ``apply_change``: ``W ← W − s_δ·δ``, ``W ← [W | s_in·ω]``, previous ``← [W; s_out·α]``.

    Returns ``(params, previous_params)``. After it, the plain forward equals
    :func:`extended_forward` at the same scalings.

    Example:
        >>> p = {"kernel": jnp.zeros((2, 3)), "bias": jnp.zeros(3)}
        >>> prev = {"kernel": jnp.zeros((4, 2)), "bias": jnp.zeros(2)}
        >>> p, prev = apply_change(p, prev, extended_input=jnp.ones((3, 1)),
        ...                        extended_output=jnp.ones((1, 5)), input_extension_scaling=1.0,
        ...                        output_extension_scaling=1.0)
        >>> p["kernel"].shape, prev["kernel"].shape
        ((3, 3), (4, 3))
    """
    new = dict(params)
    use_bias = "bias" in params
    if optimal_delta is not None:
        dw, db = _split(optimal_delta, use_bias)
        new["kernel"] = new["kernel"] - optimal_delta_scaling * dw.T
        if db is not None:
            new["bias"] = new["bias"] - optimal_delta_scaling * db
    if extended_input is not None:
        new = layer_in_extension(new, input_extension_scaling * extended_input)
    new_prev = None if previous_params is None else dict(previous_params)
    if extended_output is not None:
        if previous_params is None:
            raise ValueError("`previous_params` must be given with an `extended_output`.")
        aw, ab = _split(extended_output, "bias" in previous_params)
        new_prev = layer_out_extension(
            new_prev,
            output_extension_scaling * aw,
            None if ab is None else output_extension_scaling * ab,
        )
    return new, new_prev


def sub_select_optimal_added_parameters(
    extended_output: Array,
    extended_input: Array,
    singular_values: Array,
    keep_neurons: int | None = None,
    threshold: float | None = None,
) -> tuple[Array, Array, Array]:
    """Keep the first ``keep_neurons`` new neurons (or those with λ ≥ ``threshold``): α, ω, λ.

    Example:
        >>> a, o, s = sub_select_optimal_added_parameters(
        ...     jnp.ones((3, 4)), jnp.ones((2, 3)), jnp.array([3.0, 2.0, 1.0]), threshold=1.5)
        >>> a.shape, o.shape, s.tolist()
        ((2, 4), (2, 2), [3.0, 2.0])
    """
    if keep_neurons is None:
        if threshold is None:
            raise ValueError("`keep_neurons` or `threshold` must be given, got neither.")
        keep_neurons = int(jnp.sum(singular_values >= threshold))
    check_positive_int("keep_neurons", keep_neurons, allow_zero=True)
    return (
        extended_output[:keep_neurons],
        extended_input[:, :keep_neurons],
        singular_values[:keep_neurons],
    )
