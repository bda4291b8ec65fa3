"""Simulated floating-point formats: ``FPFormat`` and ``cast`` (``unit_scaling.formats`` 0.3.5).

A value is rounded to a format with ``exponent_bits`` and ``mantissa_bits`` (IEEE-like: the largest
exponent is a normal exponent, so E4M3's maximum is 240, not OCP float8_e4m3fn's 448), with
subnormals, saturation to ± the largest value (infinities too), and the reference's rounding:

- ``"nearest"`` rounds ties *toward zero* (1.0625 → 1.0 in E4M3), not to even;
- ``"stochastic"`` (the reference's default) adds ``srbits`` random bits below the kept mantissa
  before truncating, so a value rounds up with probability proportional to its distance from the
  lower neighbour.

The reference works on the float32 bit pattern of ``x / 2^(127 − 2^(e−1))``, where the format's
subnormals are float32 subnormals. This port does the same integer arithmetic without float32
subnormals (which XLA may flush to zero): the values equal the reference's bit for bit, including
the reference's first rounding (to nearest even) of values below float32's subnormal grid.

Warning:
    The reference's ``FPFormat.quantise`` discards its float32 upcast, so a bfloat16 input gives
    wrong shapes and values there; here any floating input is rounded in float32 and cast back.
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxlinear._checks import check_int
from jaxlinear._typing import Array, PRNGKey
from jaxlinear.scaling._checks import as_float_array

__all__ = ["FPFormat", "Format", "cast", "cast_bwd"]

_ROUNDINGS = ("stochastic", "nearest")


@dataclasses.dataclass(frozen=True)
class FPFormat:
    """A floating-point format to simulate, ``unit_scaling.formats.FPFormat``.

    Args:
        exponent_bits: 2 to 7 (the reference requires >= 2; with 8 its downscale becomes an
            upscale and values above 2^126 overflow to infinity, so 8 is rejected here).
        mantissa_bits: 0 to 23.
        rounding: ``"stochastic"`` (the default, as in the reference) or ``"nearest"`` (ties
            toward zero).
        srbits: random bits for stochastic rounding; 0 means all ``23 − mantissa_bits``.

    Example:
        >>> e4m3 = FPFormat(4, 3, "nearest")
        >>> e4m3.max_absolute_value, e4m3.min_absolute_subnormal, str(e4m3)
        (240.0, 0.0009765625, 'E4M3-RN')
    """

    exponent_bits: int
    mantissa_bits: int
    rounding: str = "stochastic"
    srbits: int = 0

    def __post_init__(self) -> None:
        for name, lo, hi in (("exponent_bits", 2, 7), ("mantissa_bits", 0, 23)):
            v = check_int(name, getattr(self, name))
            if not lo <= v <= hi:
                raise ValueError(f"`{name}` must be an int in [{lo}, {hi}], got {v!r}.")
        if self.rounding not in _ROUNDINGS:
            raise ValueError(f"`rounding` must be one of {_ROUNDINGS}, got {self.rounding!r}.")
        top = 23 - self.mantissa_bits
        check_int("srbits", self.srbits)
        if not 0 <= self.srbits <= top:
            raise ValueError(f"`srbits` must be an int in [0, {top}], got {self.srbits!r}.")
        if self.srbits and self.rounding != "stochastic":
            raise ValueError(f"`srbits` must be 0 with rounding='nearest', got {self.srbits}.")
        if self.srbits == 0 and self.rounding == "stochastic":
            object.__setattr__(self, "srbits", top)

    @property
    def bits(self) -> int:
        """Sign, exponent and mantissa bits."""
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def max_absolute_value(self) -> float:
        """240 for E4M3, 57344 for E5M2, ``2^(2^(e−1) − 1) · (2 − 2^−m)``."""
        return float(2 ** (2 ** (self.exponent_bits - 1) - 1) * (2 - 2**-self.mantissa_bits))

    @property
    def min_absolute_normal(self) -> float:
        """``2^(1 − 2^(e−1))``."""
        return float(2 ** (1 - 2 ** (self.exponent_bits - 1)))

    @property
    def min_absolute_subnormal(self) -> float:
        """``min_absolute_normal · 2^−m``."""
        return self.min_absolute_normal * 2.0**-self.mantissa_bits

    def __str__(self) -> str:
        tag = {"stochastic": "SR", "nearest": "RN"}[self.rounding]
        return f"E{self.exponent_bits}M{self.mantissa_bits}-{tag}"


Format = FPFormat | Any  # an FPFormat, or a JAX float dtype such as jnp.float8_e4m3fn


def _check_format(fmt: Any, name: str = "fmt") -> FPFormat | np.dtype:
    if isinstance(fmt, FPFormat):
        return fmt
    try:
        dtype = np.dtype(fmt)
    except TypeError:
        dtype = None
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"`{name}` must be an FPFormat or a float dtype (e.g. jnp.float8_e4m3fn), got {fmt!r}."
        )
    probe = np.array([0.0, -1.0], np.float32)
    if not np.array_equal(probe.astype(dtype).astype(np.float32), probe):
        raise ValueError(
            f"`{name}` must be a float dtype with zero and negative values (a sign bit), got "
            f"{dtype.name}, which turns them into NaN (a scale format such as float8_e8m0fnu, "
            "which unit_scaling's FPFormat does not have either)."
        )
    return dtype


def _random_bits(fmt: FPFormat, key: PRNGKey | None, shape: tuple[int, ...]) -> Array | None:
    """The reference's ``randint(0, 2**srbits, shape)`` draw, from a JAX key."""
    if fmt.rounding != "stochastic":
        return None
    if key is None:
        raise ValueError(f"`key` must be a PRNG key for stochastic rounding ({fmt}), got None.")
    return jax.random.randint(key, shape, 0, 2**fmt.srbits, dtype=jnp.int32)


def _quantise(x: Array, fmt: FPFormat, random: Array | None) -> Array:
    """float32 ``x`` rounded to ``fmt``, as ``FPFormat.quantise``; ``random`` its randint draw."""
    e, m = fmt.exponent_bits, fmt.mantissa_bits
    k = 23 - m
    mask = (1 << k) - 1
    shift = 127 - 2 ** (e - 1)  # x / 2^shift puts the format's subnormals at float32's
    if random is None:
        offset = jnp.int32(mask // 2)
    else:
        srbitsbar = k - fmt.srbits
        offset = random.astype(jnp.int32) << srbitsbar
        if srbitsbar > 0:
            offset = offset + (1 << (srbitsbar - 1))
    absmax = fmt.max_absolute_value
    xc = jnp.clip(x, -absmax, absmax)
    bits = lax.bitcast_convert_type(xc, jnp.int32)
    sign = bits & jnp.int32(-(2**31))
    mag = bits & jnp.int32(0x7FFFFFFF)
    exp = mag >> 23
    # the downscaled magnitude as float32 bits: exact when normal, else a subnormal rounded to
    # nearest even (torch's float32 division)
    normal = exp - shift >= 1
    d_normal = mag - jnp.int32(shift << 23)
    sig = jnp.where(exp > 0, (mag & 0x7FFFFF) | (1 << 23), mag & 0x7FFFFF)
    r = jnp.clip(shift + 1 - jnp.maximum(exp, 1), 1, 25)
    q = sig >> r
    rem = sig & ((jnp.int32(1) << r) - 1)
    half = jnp.int32(1) << (r - 1)
    q = q + ((rem > half) | ((rem == half) & ((q & 1) == 1))).astype(jnp.int32)
    d = jnp.where(normal, d_normal, q)
    d = (d + offset) & jnp.int32(~mask)
    # back up: normal -> add the exponent back; subnormal -> integer times 2^(shift - 149)
    up = lax.bitcast_convert_type((d + jnp.int32(shift << 23)) | sign, jnp.float32)
    sub = d.astype(jnp.float32) * jnp.float32(2.0 ** (shift - 149))
    sub = jnp.where(sign != 0, -sub, sub)
    out = jnp.where(d >= (1 << 23), up, sub)
    return jnp.where(jnp.isnan(x), x, out)


def _cast_values(x: Array, fmt: FPFormat | np.dtype, key: PRNGKey | None) -> Array:
    if isinstance(fmt, FPFormat):
        random = _random_bits(fmt, key, x.shape)
        return _quantise(x.astype(jnp.float32), fmt, random).astype(x.dtype)
    top = float(jnp.finfo(fmt).max)  # a saturating cast (float8 overflow is NaN otherwise)
    return jnp.clip(x, -top, top).astype(fmt).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _cast(x: Array, fmt: Any, key: Any) -> Array:
    return _cast_values(x, fmt, key)


def _cast_fwd(x, fmt, key):
    return _cast_values(x, fmt, key), None


def _cast_bwd_rule(fmt, res, g):
    return g, None


_cast.defvjp(_cast_fwd, _cast_bwd_rule)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _cast_grad(x: Array, fmt: Any, key: Any) -> Array:
    return x


def _cast_grad_fwd(x, fmt, key):
    return x, key


def _cast_grad_bwd(fmt, key, g):
    return _cast_values(g, fmt, key), None


_cast_grad.defvjp(_cast_grad_fwd, _cast_grad_bwd)


def cast(x: Array, fmt: Format, *, key: PRNGKey | None = None) -> Array:
    """``x`` rounded to ``fmt`` (kept in ``x``'s dtype), with a straight-through gradient.

    ``FPFormat.quantise`` / ``quantise_fwd`` of the reference: the values are those of the format,
    the gradient passes through unchanged (the reference's ``quantise`` itself has no gradient).
    ``fmt`` may also be a JAX float dtype (``jnp.float8_e4m3fn``, ``jnp.float8_e5m2``, ...): then
    the cast is XLA's (round to nearest even) after saturating to the dtype's largest value.

    Args:
        x: a floating array (rounded in float32 and cast back).
        fmt: an :class:`FPFormat` or a float dtype.
        key: a PRNG key, required for stochastic rounding.

    Returns:
        The rounded values, in ``x``'s dtype.

    Example:
        >>> cast(jnp.array([1.0625, 1.1, 300.0, -1e-4]), FPFormat(4, 3, "nearest")).tolist()
        [1.0, 1.125, 240.0, -0.0]
    """
    x = as_float_array("x", x)
    fmt = _check_format(fmt)
    if isinstance(fmt, FPFormat) and fmt.rounding == "stochastic" and key is None:
        raise ValueError(f"`key` must be a PRNG key for stochastic rounding ({fmt}), got None.")
    return _cast(x, fmt, key)


def cast_bwd(x: Array, fmt: Format, *, key: PRNGKey | None = None) -> Array:
    """The identity in the forward pass; the gradient is rounded to ``fmt`` (``quantise_bwd``).

    Args:
        x: a floating array.
        fmt: an :class:`FPFormat` or a float dtype.
        key: a PRNG key, required for stochastic rounding.

    Returns:
        ``x``.

    Example:
        >>> g = jax.grad(lambda v: (cast_bwd(v, FPFormat(5, 2, "nearest")) * 1.1).sum())
        >>> g(jnp.ones(2)).tolist()  # 1.1 in E5M2
        [1.0, 1.0]
    """
    x = as_float_array("x", x)
    fmt = _check_format(fmt)
    if isinstance(fmt, FPFormat) and fmt.rounding == "stochastic" and key is None:
        raise ValueError(f"`key` must be a PRNG key for stochastic rounding ({fmt}), got None.")
    return _cast_grad(x, fmt, key)
