"""One growing linear layer, functionally: forward, extended forward, apply change, resizing.

A layer's params are ``{"kernel": (in, out), "bias": (out,)}`` (jaxlinear's layout; no ``"bias"``
without a bias). The growth quantities keep gromo's layouts, with the ones column last:
``optimal_delta`` δ ``(out, in + bias)``, ``extended_input`` ω ``(out, k)`` (on the grown layer) and
``extended_output`` α ``(k, in_prev + bias_prev)`` (on the *previous* layer). Nothing is mutated: every
function returns new params.
"""

from collections.abc import Callable, Mapping

import jax.numpy as jnp
import numpy as np

from jaxlinear import functional
from jaxlinear._checks import check_positive_int
from jaxlinear._typing import Array, PrecisionLike
from jaxlinear.growing._activations import ACTIVATIONS, activation_function
from jaxlinear.growing._layer import no_input_zeros

__all__ = [
    "ACTIVATIONS",
    "add_parameters",
    "apply_layer_change",
    "layer_extended_forward",
    "layer_forward",
    "layer_in_extension",
    "layer_out_extension",
    "split_raw",
    "sub_select_optimal_added_parameters",
]


def _linear(x: Array, kernel: Array, bias: Array | None, precision: PrecisionLike) -> Array:
    """``functional.linear`` after promoting the operands to one dtype."""
    dtype = jnp.result_type(x, kernel) if bias is None else jnp.result_type(x, kernel, bias)
    return functional.linear(
        x.astype(dtype),
        kernel.astype(dtype),
        None if bias is None else bias.astype(dtype),
        precision=precision,
    )


def _check_matrix(name: str, value: Array, shape: tuple[int | None, int | None]) -> None:
    got = tuple(np.shape(value))
    ok = len(got) == 2 and all(w is None or w == g for w, g in zip(shape, got, strict=True))
    if not ok:
        want = tuple("K" if w is None else w for w in shape)
        raise ValueError(f"`{name}` must have shape {want}, got {got}.".replace("'", ""))


def layer_forward(
    params: Mapping[str, Array], x: Array, *, precision: PrecisionLike = None
) -> Array:
    """The pre-activation ``x @ kernel + bias``; zeros when the layer has no input (gromo's forward).

    Computed by :func:`jaxlinear.functional.linear` (operands promoted to one dtype). gromo patches
    ``nn.Linear.forward`` to return zeros when ``in_features == 0``, ignoring the bias; this does the
    same (the torch init makes that bias 0 anyway).

    Args:
        params: ``{"kernel": (in, out), "bias": (out,)}``.
        x: the input ``(..., in)``.
        precision: passed to ``lax.dot_general``.

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
        return no_input_zeros(x.astype(jnp.result_type(x, kernel)), kernel.shape[1])
    return _linear(x, kernel, params.get("bias"), precision)


def split_raw(raw: Array, use_bias: bool) -> tuple[Array, Array | None]:
    """A gromo-layout ``[W | b]`` ``(out, in + bias)`` -> weight ``(out, in)``, bias ``(out,)``
    (None without a bias)."""
    if use_bias:
        return raw[:, :-1], raw[:, -1]
    return raw, None


def _raw_linear(x: Array, raw: Array, use_bias: bool, precision: PrecisionLike) -> Array:
    """``x Wᵀ + b`` for a gromo-layout ``raw = [W | b]`` ``(out, in + bias)``."""
    w, b = split_raw(raw, use_bias)
    if w.shape[1] == 0:  # no input: the bias alone (broadcast over the batch)
        out = jnp.zeros((*x.shape[:-1], w.shape[0]), jnp.result_type(x, raw))
        return (
            out
            if b is None
            else out + jnp.reshape(b, (1,) * (out.ndim - 1) + (-1,)).astype(out.dtype)
        )
    return _linear(x, w.T, b, precision)


def layer_extended_forward(
    params: Mapping[str, Array],
    x: Array,
    x_ext: Array | None = None,
    *,
    activation: str | Callable[[Array], Array] = "identity",
    optimal_delta: Array | None = None,
    extended_input: Array | None = None,
    extended_output: Array | None = None,
    optimal_delta_scaling: Array | float = 0.0,
    input_extension_scaling: Array | float = 0.0,
    output_extension_scaling: Array | float = 0.0,
    precision: PrecisionLike = None,
) -> tuple[Array, Array | None]:
    """gromo's ``extended_forward``: ``(σ(pre), σ(supp) or None)``.

    ``pre = x W + b − s_δ·δ(x) + s_in·ω(x_ext)`` and ``supp = s_out·α(x)`` (α with its bias column).
    Under the legacy amplitude γ: s_δ = γ², s_in = s_out = γ. Unlike gromo (whose in-place update
    fails under autograd when the layer has no input) this works under ``jax.grad`` with 0 inputs.

    Args:
        params: the layer's params.
        x: its input.
        x_ext: the new neurons' activations (with ``extended_input``).
        activation: applied to both outputs.
        optimal_delta: δ ``(out, in + bias)`` or None.
        extended_input: ω ``(out, k)`` or None.
        extended_output: α ``(k, in + bias)`` (this layer feeds the new neurons) or None.
        optimal_delta_scaling: s_δ.
        input_extension_scaling: s_in.
        output_extension_scaling: s_out.
        precision: passed to ``lax.dot_general``.

    Example:
        >>> p = {"kernel": jnp.zeros((2, 3)), "bias": jnp.zeros(3)}
        >>> y, supp = layer_extended_forward(p, jnp.ones((4, 2)), extended_output=jnp.ones((5, 3)),
        ...                            output_extension_scaling=0.5)
        >>> y.shape, supp.shape, float(supp[0, 0])
        ((4, 3), (4, 5), 1.5)
    """
    act = activation_function(activation)
    use_bias = "bias" in params
    d_in, d_out = params["kernel"].shape
    pre = layer_forward(params, x, precision=precision)
    if optimal_delta is not None:
        _check_matrix("optimal_delta", optimal_delta, (d_out, d_in + use_bias))
        pre = pre - optimal_delta_scaling * _raw_linear(x, optimal_delta, use_bias, precision)
    if extended_input is not None:
        _check_matrix("extended_input", extended_input, (d_out, None))
        if x_ext is None:
            raise ValueError("`x_ext` must be given when the layer has an `extended_input`.")
        if x_ext.shape[-1] != extended_input.shape[1]:
            raise ValueError(
                f"`x_ext` must have {extended_input.shape[1]} features (the columns of "
                f"`extended_input`), got shape {x_ext.shape}."
            )
        if extended_input.shape[1] > 0:
            pre = pre + input_extension_scaling * _linear(x_ext, extended_input.T, None, precision)
    elif x_ext is not None:
        raise ValueError("`x_ext` must be None when the layer has no `extended_input`.")
    supp = None
    if extended_output is not None:
        _check_matrix("extended_output", extended_output, (None, d_in + use_bias))
        supp = act(output_extension_scaling * _raw_linear(x, extended_output, use_bias, precision))
    return act(pre), supp


def layer_in_extension(params: Mapping[str, Array], weight: Array) -> dict[str, Array]:
    """New input columns: ``weight (out, K)`` (torch layout) appended to the kernel's inputs.

    Args:
        params: the layer's params.
        weight: the new input columns, torch layout ``(out, K)``.

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

    Args:
        params: the layer's params.
        weight: the new output rows, torch layout ``(K, in)``.
        bias: their bias ``(K,)`` (iff the layer has one).

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

    Args:
        params: the layer's params.
        matrix_extension: the new weights (torch layout), or None for zeros.
        bias_extension: the new biases, or None for zeros.
        added_in_features: new inputs.
        added_out_features: new outputs.

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
    if added_in_features == added_out_features == 0:
        return dict(params)
    shape = (d_out, added_in_features) if added_in_features > 0 else (added_out_features, d_in)
    if matrix_extension is None:
        matrix_extension = jnp.zeros(shape, kernel.dtype)
    elif matrix_extension.shape != shape:
        raise ValueError(
            f"`matrix_extension` must have shape {shape}, got {matrix_extension.shape}."
        )
    if added_in_features > 0:
        return layer_in_extension(params, matrix_extension)
    if "bias" in params and bias_extension is None:
        bias_extension = jnp.zeros((added_out_features,), kernel.dtype)
    return layer_out_extension(
        params, matrix_extension, bias_extension if "bias" in params else None
    )


def apply_layer_change(
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
    :func:`layer_extended_forward` at the same scalings.

    Args:
        params: the grown layer's params.
        previous_params: the previous layer's params (gets α), or None.
        optimal_delta: δ or None.
        extended_input: ω or None.
        extended_output: α or None.
        optimal_delta_scaling: s_δ.
        input_extension_scaling: s_in.
        output_extension_scaling: s_out.

    Example:
        >>> p = {"kernel": jnp.zeros((2, 3)), "bias": jnp.zeros(3)}
        >>> prev = {"kernel": jnp.zeros((4, 2)), "bias": jnp.zeros(2)}
        >>> p, prev = apply_layer_change(
        ...     p, prev, extended_input=jnp.ones((3, 1)), extended_output=jnp.ones((1, 5)),
        ...     input_extension_scaling=1.0, output_extension_scaling=1.0)
        >>> p["kernel"].shape, prev["kernel"].shape
        ((3, 3), (4, 3))
    """
    new = dict(params)
    use_bias = "bias" in params
    d_in, d_out = params["kernel"].shape
    if optimal_delta is not None:
        _check_matrix("optimal_delta", optimal_delta, (d_out, d_in + use_bias))
        dw, db = split_raw(optimal_delta, use_bias)
        new["kernel"] = new["kernel"] - (optimal_delta_scaling * dw.T).astype(new["kernel"].dtype)
        if db is not None:
            new["bias"] = new["bias"] - (optimal_delta_scaling * db).astype(new["bias"].dtype)
    if extended_input is not None:
        _check_matrix("extended_input", extended_input, (d_out, None))
    if extended_output is not None:
        if previous_params is None:
            raise ValueError("`previous_params` must be given with an `extended_output`.")
        prev_in, prev_out = previous_params["kernel"].shape
        if prev_out != d_in:
            raise ValueError(
                f"`previous_params` must output the layer's {d_in} inputs, got a kernel of shape "
                f"{(prev_in, prev_out)}."
            )
        _check_matrix(
            "extended_output", extended_output, (None, prev_in + ("bias" in previous_params))
        )
        if extended_input is not None and extended_input.shape[1] != extended_output.shape[0]:
            raise ValueError(
                f"`extended_input` {extended_input.shape} and `extended_output` "
                f"{extended_output.shape} must add the same number of neurons."
            )
    if extended_input is not None:
        new = layer_in_extension(new, input_extension_scaling * extended_input)
    new_prev = None if previous_params is None else dict(previous_params)
    if extended_output is not None:
        assert previous_params is not None and new_prev is not None  # checked above
        aw, ab = split_raw(extended_output, "bias" in previous_params)
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

    Args:
        extended_output: α ``(k, in_prev + bias)``.
        extended_input: ω ``(out, k)``.
        singular_values: λ ``(k,)``.
        keep_neurons: how many to keep, or None.
        threshold: keep λ ``>=`` it when ``keep_neurons`` is None.

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
