"""Adjusting a :class:`LayerUpdate` before it is applied: gromo's sub-selection and normalisations.

Both return a new update (nothing is mutated) and recompute its first-order improvement the way
gromo's ``first_order_improvement`` property reads the changed fields.
"""

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxlinear._checks import check_choice, check_positive_int
from jaxlinear._typing import Array, PyTree
from jaxlinear.growing._activations import activation_gradient_at_zero
from jaxlinear.growing._model import GrowingMLP, check_model, split_variables
from jaxlinear.growing._updates import LayerUpdate, check_update

__all__ = ["NORMALIZATION_TYPES", "normalize_optimal_updates", "sub_select_update"]

#: The ``normalization_type`` values of gromo's ``normalize_optimal_updates``.
NORMALIZATION_TYPES = (
    "equalize_second_layer",
    "equalize_extensions",
    "match_extending_layer",
    "weird_normalization",
    "legacy_normalization",
    "gradmax_normalization",
)


def _fo(model: GrowingMLP, update: LayerUpdate) -> Array:
    sv = update.singular_values
    extra = jnp.sum(sv**2) if update.squared_singular_values else jnp.sum(sv)
    slope = np.float32(activation_gradient_at_zero(model.activation))
    return update.parameter_update_decrease + slope * extra


def sub_select_update(
    model: GrowingMLP,
    update: LayerUpdate,
    keep_neurons: int | None = None,
    threshold: float | None = None,
    *,
    zeros_if_not_enough: bool = False,
    zeros_fan_in: bool = True,
    zeros_fan_out: bool = False,
) -> LayerUpdate:
    """gromo's ``sub_select_optimal_added_parameters``: keep the first ``keep_neurons`` new neurons.

    ``keep_neurons`` defaults to the count of singular values ``>= threshold``. With
    ``zeros_if_not_enough`` every neuron is kept but the others are zeroed: their λ, their incoming
    weights α (``zeros_fan_in``) and/or their outgoing weights ω (``zeros_fan_out``), so the update
    still adds all of them (gromo's option for fixed-size growth).

    Args:
        model: the GrowingMLP.
        update: a :class:`LayerUpdate`.
        keep_neurons: how many to keep.
        threshold: keep λ ``>=`` it when ``keep_neurons`` is None.
        zeros_if_not_enough: keep all, zero the others.
        zeros_fan_in: zero their α.
        zeros_fan_out: zero their ω.

    Example:
        >>> u = LayerUpdate(1, jnp.zeros((2, 3)), jnp.float32(0), None, jnp.ones((3, 4)),
        ...                 jnp.ones((2, 3)), jnp.array([3.0, 2.0, 1.0]), jnp.float32(14), 3)
        >>> model = GrowingMLP(3, 2, 3, 1, "relu")
        >>> sub_select_update(model, u, 2).singular_values.tolist()
        [3.0, 2.0]
        >>> z = sub_select_update(model, u, 1, zeros_if_not_enough=True)
        >>> z.singular_values.tolist(), z.extended_output[:, 0].tolist(), float(z.first_order_improvement)
        ([3.0, 0.0, 0.0], [1.0, 0.0, 0.0], 9.0)
    """
    check_model(model)
    k = update.added_neurons
    if keep_neurons is None:
        if threshold is None:
            raise ValueError("`keep_neurons` or `threshold` must be given, got neither.")
        keep_neurons = int(jnp.sum(update.singular_values[:k] >= threshold))
    check_positive_int("keep_neurons", keep_neurons, allow_zero=True)
    keep = min(keep_neurons, k)
    if not zeros_if_not_enough:
        new = update._replace(
            extended_output=update.extended_output[:keep],
            extended_input=update.extended_input[:, :keep],
            singular_values=update.singular_values[:keep],
            num_neurons=keep,
        )
    else:
        if not (zeros_fan_in or zeros_fan_out):
            raise ValueError(
                "`zeros_fan_in` or `zeros_fan_out` must be True with `zeros_if_not_enough`, "
                "got both False."
            )
        dropped = jnp.arange(update.singular_values.shape[0]) >= keep
        alpha, omega = update.extended_output, update.extended_input
        if zeros_fan_in:
            alpha = jnp.where(dropped[:, None], 0, alpha)
        if zeros_fan_out:
            omega = jnp.where(dropped[None, :], 0, omega)
        new = update._replace(
            extended_output=alpha,
            extended_input=omega,
            singular_values=jnp.where(dropped, 0, update.singular_values),
        )
    return new._replace(first_order_improvement=_fo(model, new))


def _std(x: ArrayLike) -> float:
    """torch's ``Tensor.std()`` (unbiased): NaN below 2 elements."""
    flat = np.asarray(x, np.float64).ravel()
    return float(np.std(flat, ddof=1)) if flat.size >= 2 else float("nan")


def _std_of(weight: ArrayLike | None, fan_in: int) -> float | None:
    """gromo's ``_std_of_layer``: None without weights, the std if > 0, else ``fan_in ** -0.5``."""
    if weight is None or np.size(weight) == 0:
        return None
    std = _std(weight)
    return std if std > 0 else fan_in**-0.5


def _scale_to(weight: ArrayLike | None, fan_in: int, target: float) -> float:
    current = _std_of(weight, fan_in)
    return 1.0 if current is None else target / current


def normalize_optimal_updates(
    model: GrowingMLP,
    params: PyTree,
    update: LayerUpdate,
    std_target: float | None = None,
    normalization_type: str = "legacy_normalization",
    gradmax_scale: float = 1.0,
) -> LayerUpdate:
    """gromo's ``normalize_optimal_updates``: rescale δ, α and ω to a target standard deviation.

    The std is torch's (unbiased) over the weights only (not the biases). ``std_target`` defaults to
    the std of the grown layer's kernel (``1/√k`` when it has none). ``normalization_type``:

    - ``"equalize_second_layer"``: δ and ω to the target std, α by std(ω)/std(δ)'s ratio of
      scalings;
    - ``"equalize_extensions"``: α and ω to the target, δ by the product of their scalings;
    - ``"match_extending_layer"``: each to the std of the layer it modifies (``std_target``
      ignored);
    - ``"legacy_normalization"`` (= ``"weird_normalization"``, the default): δ to the target, α by
      target/std(ω), ω unchanged;
    - ``"gradmax_normalization"``: every column of ω to norm ``gradmax_scale``·mean column norm of
      the grown layer's weight, λⱼ by √(its factor).

    δ's decrease scales with δ, λ with √(s_α·s_ω) (s_α·s_ω under ``ignore_singular_values``), and the
    first-order improvement is recomputed. Works on the unpadded layouts (a bucketed model: unpad).

    Args:
        model: the GrowingMLP (without capacity).
        params: its params.
        update: a :class:`LayerUpdate`.
        std_target: the target std, or None.
        normalization_type: one of :data:`NORMALIZATION_TYPES`.
        gradmax_scale: the scale of ``"gradmax_normalization"``.

    Example:
        >>> import jax, jaxlinear as jl
        >>> model = jl.growing.GrowingMLP(5, 3, 2, 1, "tanh")
        >>> x = jax.random.normal(jax.random.key(1), (16, 5))
        >>> params = model.init(jax.random.key(0), x)["params"]
        >>> sse = lambda pred, y: jnp.sum((pred - y) ** 2)
        >>> stats = jl.growing.update_statistics(model, params, jl.growing.init_statistics(model),
        ...                                      x, jnp.sin(x[:, :3]), sse)
        >>> (u,) = jl.growing.compute_optimal_updates(model, stats)
        >>> v = jl.growing.normalize_optimal_updates(model, params, u)
        >>> std = lambda a: float(jnp.std(a, ddof=1))
        >>> round(std(v.optimal_delta[:, :-1]) / std(params["layers_1"]["kernel"]), 4)
        1.0
    """
    check_model(model)
    check_choice("normalization_type", normalization_type, NORMALIZATION_TYPES)
    p, widths, _ = split_variables(model, params)
    if widths is not None:
        raise ValueError(
            "`model` must have no capacity for normalize_optimal_updates (unpad it first)."
        )
    check_update(model, update)
    i = update.layer_index
    use_bias = model.use_bias
    weight = np.asarray(p[f"layers_{i}"]["kernel"]).T  # (out, in), torch's layout
    prev_weight = np.asarray(p[f"layers_{i - 1}"]["kernel"]).T
    delta_w = np.asarray(update.optimal_delta)[:, : weight.shape[1]]
    omega = np.asarray(update.extended_input)  # (out, k)
    alpha_w = np.asarray(update.extended_output)[:, : prev_weight.shape[1]]  # (k, in_prev)
    k, in_prev, d_in = omega.shape[1], prev_weight.shape[1], weight.shape[1]
    has_delta = bool(np.any(np.asarray(update.optimal_delta)))  # gromo: no δ layer -> not scaled

    if normalization_type == "gradmax_normalization":
        if not gradmax_scale > 0:
            raise ValueError(f"`gradmax_scale` must be > 0, got {gradmax_scale!r}.")
        norms = np.sqrt((weight.astype(np.float64) ** 2).sum(axis=0))
        target = norms.mean() * gradmax_scale if norms.size else 0.0
        if norms.size == 0 or not target > 0:  # gromo warns and skips
            return update
        col = np.sqrt((omega.astype(np.float64) ** 2).sum(axis=0))
        scales = np.where(col > 0, target / np.where(col > 0, col, 1), 1.0).astype(np.float32)
        new = update._replace(
            extended_input=update.extended_input * scales[None, :],
            singular_values=update.singular_values * np.sqrt(scales[:k]),
        )
        return new._replace(first_order_improvement=_fo(model, new))

    if std_target is None:
        std = _std(weight) if weight.size else float("nan")
        std_target = std if std > 0 else 1.0 / k**0.5
    if not isinstance(std_target, float | int) or not std_target > 0:
        raise ValueError(f"`std_target` must be a positive float, got {std_target!r}.")
    std_target = float(std_target)
    delta_ref = delta_w if has_delta else None
    if normalization_type == "equalize_second_layer":
        delta_scale = _scale_to(delta_ref, d_in, std_target)
        in_scale = _scale_to(omega, k, std_target)
        out_scale = delta_scale / in_scale
    elif normalization_type == "match_extending_layer":
        self_std = _std_of(weight, d_in)
        if self_std is None:
            self_std = k**-0.5
        prev_std = _std_of(prev_weight, in_prev)
        if prev_std is None:
            prev_std = in_prev**-0.5
        in_scale = _scale_to(omega, k, self_std)
        out_scale = _scale_to(alpha_w, in_prev, prev_std)
        delta_scale = _scale_to(delta_ref, d_in, self_std)
    elif normalization_type == "equalize_extensions":
        in_scale = _scale_to(omega, k, std_target)
        out_scale = _scale_to(alpha_w, in_prev, std_target)
        delta_scale = in_scale * out_scale
    else:  # legacy_normalization / weird_normalization
        delta_scale = _scale_to(delta_ref, d_in, std_target)
        out_scale = _scale_to(omega, k, std_target)
        in_scale = 1.0
    del use_bias
    new = update
    if has_delta and delta_scale != 1.0:
        new = new._replace(
            optimal_delta=new.optimal_delta * np.float32(delta_scale),
            parameter_update_decrease=new.parameter_update_decrease * np.float32(delta_scale),
        )
    exponent = 0.5 if update.squared_singular_values else 1.0
    new = new._replace(
        extended_output=new.extended_output * np.float32(out_scale),
        extended_input=new.extended_input * np.float32(in_scale),
        singular_values=new.singular_values * np.float32((out_scale * in_scale) ** exponent),
    )
    return new._replace(first_order_improvement=_fo(model, new))
