"""Unit-scaled attention, ``unit_scaling.functional.scaled_dot_product_attention``."""

import math

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_bool
from jaxlinear._typing import Array, PrecisionLike, PRNGKey
from jaxlinear.scaling._checks import as_float_array, check_mult, check_probability
from jaxlinear.scaling._elementwise import logarithmic_interpolation
from jaxlinear.scaling._opmath import upcast
from jaxlinear.scaling._scale import scale_bwd, scale_fwd
from jaxlinear.scaling._scope import op_scope

__all__ = ["scaled_dot_product_attention"]


@op_scope
def scaled_dot_product_attention(
    query: Array,
    key: Array,
    value: Array,
    attn_mask: Array | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    mult: float = 1.0,
    *,
    dropout_key: PRNGKey | None = None,
    precision: PrecisionLike = None,
) -> Array:
    """Unit-scaled attention, ``unit_scaling.functional.scaled_dot_product_attention``.

    torch's layout and semantics: ``query (..., L, E)``, ``key (..., S, E)``, ``value (..., S, Ev)``
    (heads are a leading dim: ``(batch, heads, seq, head_dim)``, unlike
    ``jax.nn.dot_product_attention``'s ``(batch, seq, heads, head_dim)``); ``softmax(q kᵀ·mult/Ev +
    mask) v``. The logits are scaled by ``mult/d`` (not ``1/√d``) with ``d = value.shape[-1]``, and
    one scale ``s = √(1 − p) / loginterp(1/(1 + 4d/mult²), √((log S if causal else 1)/S), 1)``
    multiplies the output (forward) and the gradients of ``query``, ``key`` and ``value``
    (backward), ``S = value.shape[-2]``.

    Args:
        query: ``(..., L, E)``.
        key: ``(..., S, E)``.
        value: ``(..., S, Ev)``.
        attn_mask: boolean (True attends) or additive float, broadcastable to ``(..., L, S)``.
        dropout_p: dropout probability on the attention weights (needs ``dropout_key`` if > 0).
        is_causal: attend only to positions ``s <= l`` (torch's top-left aligned mask); the causal
            scaling rule applies only with this flag, not with an equivalent ``attn_mask``.
        mult: the α hyperparameter (a positive float), the logits' multiplier.
        dropout_key: a PRNG key for the dropout.
        precision: passed to the two ``einsum`` (which accumulate in float32).

    Returns:
        ``(..., L, Ev)``.

    Example:
        >>> q = k = v = jnp.ones((1, 4, 2))
        >>> scaled_dot_product_attention(q, k, v).shape
        (1, 4, 2)
    """
    query = as_float_array("query", query)
    key = as_float_array("key", key)
    value = as_float_array("value", value)
    mult = check_mult(mult)
    check_bool("is_causal", is_causal)
    dropout_p = check_probability("dropout_p", dropout_p, allow_one=False)
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError("`query`, `key` and `value` must have at least 2 dims (..., seq, dim).")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(
            "`key` must have shape (..., S, E) and `value` (..., S, Ev) for `query` (..., L, E), "
            f"got query {query.shape}, key {key.shape}, value {value.shape}."
        )
    *_, seq_len, d_head = value.shape
    if seq_len == 0 or d_head == 0:
        raise ValueError(f"`value` must have non-empty (seq, dim), got {value.shape}.")
    if is_causal and attn_mask is not None:
        raise ValueError("`attn_mask` must be None when is_causal=True (as in torch), got a mask.")
    if dropout_p > 0 and dropout_key is None:
        raise ValueError("`dropout_key` must be a PRNG key when dropout_p > 0, got None.")
    scale = (1 - dropout_p) ** 0.5 / logarithmic_interpolation(
        alpha=1 / (1 + 4 * d_head / mult**2),
        lower=((math.log(seq_len) if is_causal else 1) / seq_len) ** 0.5,
        upper=1.0,
    )
    query, key, value = (scale_bwd(t, scale) for t in (query, key, value))
    dtype = value.dtype
    q, k, v = (upcast(t).astype(jnp.float32) for t in (query, key, value))
    logits = jnp.einsum("...le,...se->...ls", q, k, precision=precision) * (mult / d_head)
    n_q, n_k = query.shape[-2], key.shape[-2]
    if is_causal:
        causal = jnp.broadcast_to(jnp.tril(jnp.ones((n_q, n_k), bool)), logits.shape)
        logits = jnp.where(causal, logits, -jnp.inf)
    if attn_mask is not None:
        attn_mask = jnp.asarray(attn_mask)
        try:
            attn_mask = jnp.broadcast_to(attn_mask, logits.shape)
        except ValueError:
            raise ValueError(
                f"`attn_mask` must broadcast to {logits.shape} (..., L, S), got {attn_mask.shape}."
            ) from None
        if attn_mask.dtype == jnp.bool_:
            logits = jnp.where(attn_mask, logits, -jnp.inf)
        else:
            logits = logits + upcast(attn_mask).astype(jnp.float32)
    weights = jax.nn.softmax(logits, axis=-1)
    if dropout_p > 0:
        assert dropout_key is not None  # checked above
        keep = jax.random.bernoulli(dropout_key, 1 - dropout_p, weights.shape)
        weights = jnp.where(keep, weights / (1 - dropout_p), 0.0)
    out = jnp.einsum("...ls,...sd->...ld", weights, v, precision=precision).astype(dtype)
    return scale_fwd(out, scale)
