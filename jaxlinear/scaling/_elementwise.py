"""Unit-scaled elementwise ops: ``gelu``, ``silu``, ``silu_glu``, ``softmax``, ``dropout``.

Each op's scaling rule (``unit_scaling.functional`` 0.3.5) is written once, in its function: an
empirical model of the op's output and input-gradient std for unit-normal inputs, as a function of
its ``mult`` hyperparameter. The unscaled op runs between :func:`scale_bwd` (on its input) and
:func:`scale_fwd` (on its output), so the gradient of the input is the op's true gradient times the
grad-input scale, and the output is the op's value times the output scale.

There is no unit-scaled ``relu`` in the reference, and none here. ``relu`` of a unit-normal input has
std ≈ 0.58 and its gradient keeps half the entries, so a stack of unit-scaled linears with plain
``jax.nn.relu`` between them loses scale at every layer in both directions (0.58× forward, about
0.71× backward per layer). Use :func:`gelu` or :func:`silu` (unit-scaled both ways), or, if relu is a
must, ``scale_elementwise(jax.nn.relu, 2**0.5 / (1 - 1/math.pi)**0.5, 2**0.5)`` — the exact stds
for a unit-normal input (output std √((1 − 1/π)/2) ≈ 0.584, gradient std 1/√2).
"""

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxlinear._checks import check_bool, check_int, check_real
from jaxlinear._typing import Array, Dtype, PRNGKey
from jaxlinear.scaling._checks import as_float_array, check_mult, check_probability
from jaxlinear.scaling._constraints import apply_constraint, check_constraint
from jaxlinear.scaling._opmath import divide_by_scale, in_opmath, multiply
from jaxlinear.scaling._scale import scale_bwd, scale_fwd
from jaxlinear.scaling._scope import op_scope

__all__ = [
    "dropout",
    "gelu",
    "logarithmic_interpolation",
    "scale_elementwise",
    "silu",
    "silu_glu",
    "softmax",
]


def logarithmic_interpolation(alpha: float, lower: float, upper: float) -> float:
    """Interpolate between ``lower`` (``alpha=0``) and ``upper`` (``alpha=1``) in log space.

    ``unit_scaling.core.functional.logarithmic_interpolation``, the same float64 expression:
    ``exp(alpha * log(upper) + (1 - alpha) * log(lower))``.

    Args:
        alpha: the interpolation weight, a float (0 gives ``lower``, 1 ``upper``).
        lower: the value at ``alpha=0``, a float > 0.
        upper: the value at ``alpha=1``, a float > 0.

    Returns:
        The interpolated value as a Python float.

    Raises:
        ValueError: if ``lower`` or ``upper`` is not > 0 (``math.log``'s domain), or a value is not
            finite.
        TypeError: for a value that is not a real number.

    Example:
        >>> round(logarithmic_interpolation(0.5, 1 / 1000, 1 / 10), 12)
        0.01
    """
    alpha = check_real("alpha", alpha)
    lower = check_real("lower", lower, min_value=0.0, strict=True)
    upper = check_real("upper", upper, min_value=0.0, strict=True)
    return math.exp(alpha * math.log(upper) + (1 - alpha) * math.log(lower))


def scale_elementwise(
    f: Callable[..., Array],
    output_scale: float,
    grad_input_scale: float,
    constraint: str | None = "to_output_scale",
) -> Callable[..., Array]:
    """Turn an elementwise function into a unit-scaled one (``unit_scaling.core.functional``).

    The two scales are constrained together, then ``scaled_f(x, *args, **kwargs) =
    scale_fwd(f(scale_bwd(x, s_gin), *args, **kwargs), s_out)``.

    Args:
        f: ``f(x, *args, **kwargs) -> array``.
        output_scale: the forward scale of the output.
        grad_input_scale: the backward scale of ``x``'s gradient.
        constraint: how the two scales are tied (see :func:`check_constraint`).

    Returns:
        The scaled function.

    Example:
        >>> f = scale_elementwise(lambda x: x, 2.5, 0.5, constraint=None)
        >>> y, vjp = jax.vjp(f, jnp.ones(2))
        >>> y.tolist(), vjp(jnp.ones(2))[0].tolist()
        ([2.5, 2.5], [0.5, 0.5])
    """
    check_constraint(constraint)
    s_out, s_gin = apply_constraint(constraint, output_scale, grad_input_scale)

    def scaled_f(x: Array, *args: Any, **kwargs: Any) -> Array:
        x = scale_bwd(x, s_gin)
        return scale_fwd(f(x, *args, **kwargs), s_out)

    return scaled_f


# ---------------------------------------------------------------------------------------------------
# the unscaled ops, with torch's roundings in half precision


def _gelu_opmath(x: Array, approximate: str) -> Array:
    return in_opmath(lambda v: jax.nn.gelu(v, approximate=approximate == "tanh"), x)


def _unscaled_gelu(x: Array, mult: float, approximate: str) -> Array:
    if mult == 1:
        return _gelu_opmath(x, approximate)
    return divide_by_scale(_gelu_opmath(multiply(x, mult), approximate), mult)


def _unscaled_silu(x: Array, mult: float) -> Array:
    if mult == 1:
        return in_opmath(jax.nn.silu, x)
    sig = in_opmath(jax.nn.sigmoid, multiply(x, mult))
    return in_opmath(jnp.multiply, x, sig)


def _check_approximate(approximate: str) -> str:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"`approximate` must be one of ('none', 'tanh'), got {approximate!r}.")
    return approximate


# ---------------------------------------------------------------------------------------------------
# the unit-scaled ops


@op_scope
def gelu(
    x: Array,
    mult: float = 1.0,
    constraint: str | None = "to_output_scale",
    approximate: str = "none",
) -> Array:
    """A unit-scaled GELU, ``unit_scaling.functional.gelu``.

    ``gelu(x * mult) / mult`` (torch's ``F.gelu``; ``approximate="tanh"`` for the tanh form), with
    the output scaled by ``loginterp(α, 2, √(2/(1 − 1/π)))`` and the input gradient by
    ``loginterp(α, 2, √2)``, ``α = 1 / (1 + 1/(4 mult²))``, then constrained.

    Args:
        x: a floating array.
        mult: the α hyperparameter of u-μP (a positive float): the input's multiplier.
        constraint: how the two scales are tied; the default gives both the output scale.
        approximate: ``"none"`` (erf) or ``"tanh"``.

    Returns:
        An array like ``x``.

    Example:
        >>> y = gelu(jnp.array([0.0, 1.0]))
        >>> [round(v, 4) for v in y.tolist()]
        [0.0, 1.4865]
    """
    x = as_float_array("x", x)
    mult = check_mult(mult)
    _check_approximate(approximate)
    alpha = 1 / (1 + 0.25 / mult**2)
    output_scale = logarithmic_interpolation(alpha, 2**1, (2 / (1 - 1 / math.pi)) ** 0.5)
    grad_input_scale = logarithmic_interpolation(alpha, 2**1, 2**0.5)
    scaled = scale_elementwise(_unscaled_gelu, output_scale, grad_input_scale, constraint)
    return scaled(x, mult, approximate)


@op_scope
def silu(x: Array, mult: float = 1.0, constraint: str | None = "to_output_scale") -> Array:
    """A unit-scaled SiLU (swish), ``unit_scaling.functional.silu``.

    ``x * sigmoid(x * mult)``, with the output scaled by ``loginterp(1/(1 + 1/(4 mult²)), 2,
    √(2/(1 − 1/π)))`` and the input gradient by ``loginterp(1/(1 + 1/mult²), 2, √2)``.

    Args:
        x: a floating array.
        mult: the α hyperparameter (a positive float): the multiplier inside the sigmoid.
        constraint: how the two scales are tied.

    Returns:
        An array like ``x``.

    Example:
        >>> [round(v, 4) for v in silu(jnp.array([0.0, 1.0])).tolist()]
        [0.0, 1.2916]
    """
    x = as_float_array("x", x)
    mult = check_mult(mult)
    output_scale = logarithmic_interpolation(
        1 / (1 + 0.25 / mult**2), 2**1, (2 / (1 - 1 / math.pi)) ** 0.5
    )
    grad_input_scale = logarithmic_interpolation(1 / (1 + 1 / mult**2), 2**1, 2**0.5)
    scaled = scale_elementwise(_unscaled_silu, output_scale, grad_input_scale, constraint)
    return scaled(x, mult)


@op_scope
def silu_glu(x: Array, gate: Array, mult: float = 1.0) -> Array:
    """A unit-scaled SwiGLU product ``x * silu(gate)``, ``unit_scaling.functional.silu_glu``.

    One scale ``s = loginterp(1/(1 + 1/mult²), 2, √2)`` (``2^0.75`` at ``mult=1``) multiplies the
    output in the forward pass and both inputs' gradients in the backward pass.

    Args:
        x: the linear input.
        gate: the gate (SiLU) input, the same shape as ``x``.
        mult: the α hyperparameter (a positive float).

    Returns:
        An array like ``x``.

    Example:
        >>> round(float(silu_glu(jnp.ones(1), jnp.ones(1))[0]), 4)
        1.2295
    """
    x = as_float_array("x", x)
    gate = as_float_array("gate", gate)
    if x.shape != gate.shape:
        raise ValueError(f"`gate` must have the shape of `x` {x.shape}, got {gate.shape}.")
    mult = check_mult(mult)
    scale = logarithmic_interpolation(1 / (1 + 1 / mult**2), 2**1, 2**0.5)
    x = scale_bwd(x, scale)
    gate = scale_bwd(gate, scale)
    out = in_opmath(jnp.multiply, x, _unscaled_silu(gate, mult))
    return scale_fwd(out, scale)


@op_scope
def softmax(
    x: Array,
    axis: int = -1,
    dtype: Dtype | None = None,
    constraint: str | None = "to_output_scale",
    mult: float = 1.0,
) -> Array:
    """A unit-scaled softmax, ``unit_scaling.functional.softmax`` (``dim`` is ``axis`` here).

    ``softmax(x * mult)`` along ``axis`` (computed in ``dtype`` if given), with ``n = x.shape[axis]``,
    the output scaled by ``loginterp(α, n, √n)`` and the input gradient by ``loginterp(α, n/mult,
    √(n/mult))``, ``α = 1/(1 + 4/mult²)``: between the flat (``n``) and one-hot (``√n``) limits.

    Args:
        x: a floating array.
        axis: the axis to normalise (the reference's ``dim``; required there).
        dtype: cast ``x`` to this dtype before the softmax, as ``F.softmax(dtype=)``.
        constraint: how the two scales are tied.
        mult: the α hyperparameter (a positive float), the logits' multiplier.

    Returns:
        An array like ``x`` (in ``dtype`` if given).

    Example:
        >>> [round(v, 4) for v in softmax(jnp.zeros(4)).tolist()]  # 1/4 times 2**1.8
        [0.8706, 0.8706, 0.8706, 0.8706]
    """
    x = as_float_array("x", x)
    mult = check_mult(mult)
    if not -x.ndim <= check_int("axis", axis) < max(x.ndim, 1):
        raise ValueError(f"`axis` must be an int in [-{x.ndim}, {x.ndim}), got {axis!r}.")
    n = x.shape[axis] if x.ndim else 1
    alpha = 1 / (1 + 4 / mult**2)
    output_scale = logarithmic_interpolation(alpha, n, n**0.5)
    grad_input_scale = logarithmic_interpolation(alpha, n / mult, (n / mult) ** 0.5)

    def unscaled(v: Array) -> Array:
        v = multiply(v, mult)
        if dtype is not None:
            v = v.astype(dtype)
        return in_opmath(lambda u: jax.nn.softmax(u, axis=axis), v)

    return scale_elementwise(unscaled, output_scale, grad_input_scale, constraint)(x)


def _dropout(x: Array, p: float, keep: Array | None) -> Array:
    """Unit-scaled dropout given the keep mask (None: no dropout), the one place of its rule."""
    scale = (1 - p) ** 0.5

    def unscaled(v: Array) -> Array:
        if keep is None:
            return v
        if p == 1:
            return v * jnp.zeros((), v.dtype)
        # torch: noise = bernoulli(1 - p).div_(1 - p) in x's dtype, then x * noise
        noise = divide_by_scale(keep.astype(v.dtype), 1 - p)
        return in_opmath(jnp.multiply, v, noise)

    return scale_elementwise(unscaled, scale, scale, constraint=None)(x)


@op_scope
def dropout(
    x: Array, p: float = 0.5, training: bool = True, *, key: PRNGKey | None = None
) -> Array:
    """Unit-scaled dropout, ``unit_scaling.functional.dropout``.

    torch's dropout (each entry kept with probability ``1 − p`` and divided by ``1 − p``), with the
    output and the input gradient both scaled by ``√(1 − p)``. As in the reference, the forward
    scale applies with ``training=False`` too: the output is ``√(1 − p)·x``, which is the expected
    value of the training output (unit-scaled dropout keeps ``E[y]`` the same in both modes,
    and a unit std in training).

    The random mask comes from ``key`` (JAX's RNG cannot reproduce torch's draws); given the same
    mask, values and gradients equal the reference's.

    Args:
        x: a floating array.
        p: the probability of dropping an entry, in [0, 1].
        training: apply the random mask (needs ``key`` when ``p > 0``).
        key: a PRNG key.

    Returns:
        An array like ``x``.

    Raises:
        ValueError: for ``p`` outside [0, 1], or no ``key`` when one is needed.

    Example:
        >>> dropout(jnp.ones(2), 0.75, training=False).tolist()
        [0.5, 0.5]
    """
    x = as_float_array("x", x)
    p = check_probability("p", p)
    check_bool("training", training)
    if not training or p == 0 or x.size == 0:
        return _dropout(x, p, None)
    if key is None:
        raise ValueError("`key` must be a PRNG key when training with p > 0, got None.")
    keep = jax.random.bernoulli(key, 1 - p, x.shape)
    return _dropout(x, p, keep)
