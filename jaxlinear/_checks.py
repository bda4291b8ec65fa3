"""One error style for the whole package: "`arg` must be <expected>, got <value>."

Every check runs on static information (Python values, shapes, dtypes), so it raises at construction or
trace time, before any compute.
"""

import math
from collections.abc import Iterable, Sequence
from numbers import Real
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (listed in the message)."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.")


# The largest array dimension XLA compiles safely. XLA CPU rewrites a vector-matrix product with an
# output dimension of 2**31 or more into a reshape whose size overflows int32 and aborts the whole
# process (`Check failed: ... f32[1,-2147483648]`), an abort no Python code can catch (jaxlinear
# 0.1 with jax 0.10: `Linear(2**31)` applied to one row). Sizes are limited per dimension, not per
# array: arrays of more than 2**31 elements with smaller dimensions compile and run.
MAX_DIM = 2**31 - 1


def check_bool(name: str, value: Any) -> None:
    """Raise ``TypeError`` unless ``value`` is a bool (``"False"`` would otherwise count as True)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"`{name}` must be a bool (True or False), got {type(value).__name__} {value!r}."
        )


def check_dot_general(dot_general: Any, dot_general_cls: Any = None) -> None:
    """Raise unless ``dot_general`` / ``dot_general_cls`` are None or callable, and not both given.

    Flax's ``nn.Dense`` takes a dot product function (``dot_general``, called as ``lax.dot_general``)
    or a class to build one from (``dot_general_cls``, called with no arguments at every call) and
    silently prefers the class when both are given; here that is an error, raised before any compute.
    """
    for name, value in (("dot_general", dot_general), ("dot_general_cls", dot_general_cls)):
        if value is not None and not callable(value):
            raise TypeError(
                f"`{name}` must be None or callable (a function like `jax.lax.dot_general`"
                f"{'' if name == 'dot_general' else ', or a class whose instances are one'}), got "
                f"{type(value).__name__} {value!r}."
            )
    if dot_general is not None and dot_general_cls is not None:
        raise ValueError(
            "`dot_general` and `dot_general_cls` both given: they are two ways to give one dot "
            "product function (Flax's Dense silently prefers the class); pass one of them."
        )


def concrete(x: Any) -> np.ndarray | None:
    """``x`` as a numpy array when its value is known now, None when it is traced (inside ``jit``)."""
    if isinstance(x, Tracer | jax.ShapeDtypeStruct):
        return None
    try:
        value = np.asarray(x)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return None
    return None if value.dtype == object else value


def check_finite(name: str, value: Any) -> None:
    """Raise ``ValueError`` if a concrete ``value`` (an array or a number) holds NaN or infinity.

    The package's one finite-value check; traced values cannot be checked and pass.
    """
    v = concrete(value)
    if v is None or v.size == 0 or not (v.dtype.kind in "fc" or v.dtype.name == "bfloat16"):
        return
    v = v.astype(np.complex128 if v.dtype.kind == "c" else np.float64)
    if not np.isfinite(v).all():
        bad = v[~np.isfinite(v)].ravel()[:4].tolist()
        raise ValueError(f"`{name}` must hold finite values, got {bad}.")


def check_index_range(name: str, indices: Any, n: int, what: str, *, ignore: Any = None) -> None:
    """Raise ``ValueError`` if a concrete integer ``indices`` leaves ``[0, n)`` (``ignore`` excepted).

    torch raises on such indices; JAX would clamp or wrap them (``-1`` is the last row) or return NaN.
    Traced indices (inside ``jit``) cannot be checked: callers document what JAX does with them.
    """
    v = concrete(indices)
    if v is None or v.size == 0:
        return
    bad = (v < 0) | (v >= n)
    if ignore is not None:
        bad &= v != ignore
    if np.any(bad):
        raise ValueError(
            f"`{name}` must be in [0, {n}) ({what}), got {v[bad].ravel()[:4].tolist()}."
        )


def check_dim(name: str, value: int) -> None:
    """Raise ``ValueError`` if the array size ``value`` exceeds :data:`MAX_DIM` (``2**31 - 1``).

    Checked before any array of that size is created or compiled: XLA aborts the process instead.
    """
    if value > MAX_DIM:
        raise ValueError(
            f"`{name}` must be <= 2**31 - 1 = {MAX_DIM} (the largest array dimension XLA can "
            f"compile; larger ones abort the process), got {value}."
        )


def check_real(
    name: str,
    value: Any,
    *,
    min_value: float | None = None,
    strict: bool = False,
    finite: bool = True,
) -> float:
    """Return ``float(value)`` if ``value`` is a finite real number (not a bool, not a string)
    ``>= min_value`` (``> min_value`` with ``strict``); raise ``TypeError``/``ValueError`` otherwise.

    The package's one meaning of "a real number": a Python or numpy number, not an array. With
    ``finite=False`` infinities and NaN pass (for a value applied as given, as torch applies it).
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real | np.floating | np.integer):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__} {value!r}.")
    value = float(value)
    if not finite and math.isnan(value):
        return value
    if finite and not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    if min_value is not None and (value <= min_value if strict else value < min_value):
        raise ValueError(f"`{name}` must be {'>' if strict else '>='} {min_value}, got {value!r}.")
    return value


def check_int(name: str, value: Any) -> int:
    """Return ``int(value)`` if ``value`` is an int (Python or numpy, not a bool); raise ``TypeError`` otherwise.

    The package's one meaning of "an int"; range checks come after it (``ValueError``).
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}.")
    return int(value)


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise unless ``value`` is an int (:func:`check_int`) > 0 (or >= 0 with ``allow_zero``)."""
    check_int(name, value)
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be an int {bound}, got {value!r}.")


def check_floating_dtype(name: str, dtype: Any, *, allow_none: bool = False) -> None:
    """Raise ``TypeError`` unless ``dtype`` is a real floating dtype (or None with ``allow_none``)."""
    if dtype is None:
        if allow_none:
            return
        ok = False  # jnp.issubdtype reads None as numpy's default float64
    else:
        try:
            ok = jnp.issubdtype(dtype, jnp.floating)
        except TypeError:
            ok = False
    if not ok:
        raise TypeError(
            f"`{name}` must be a floating dtype (float32, bfloat16, ...), got {dtype!r}."
        )


def check_floating_array(name: str, x: Any) -> None:
    """Raise ``TypeError`` unless ``x`` is an array of a real floating dtype."""
    dtype = getattr(x, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"`{name}` must be a floating array (float32, bfloat16, ...), got dtype {dtype}."
        )


def check_min_ndim(name: str, x: Any, ndim: int, what: str) -> None:
    """Raise ``ValueError`` unless ``x.ndim >= ndim``; ``what`` describes the expected layout."""
    if np.ndim(x) < ndim:
        raise ValueError(
            f"`{name}` must have at least {ndim} dimension(s) {what}, got shape {np.shape(x)}."
        )


def check_trailing_shape(name: str, x: Any, expected: Sequence[int], what: str) -> None:
    """Raise ``ValueError`` unless the last dims of ``x`` equal ``expected`` exactly (no broadcasting)."""
    expected = tuple(int(d) for d in expected)
    shape = tuple(np.shape(x))
    if len(shape) < len(expected) or shape[len(shape) - len(expected) :] != expected:
        raise ValueError(f"`{name}` must have trailing shape {expected} {what}, got shape {shape}.")


def check_shape(name: str, x: Any, expected: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``x.shape == expected``."""
    expected = tuple(int(d) for d in expected)
    if tuple(np.shape(x)) != expected:
        raise ValueError(f"`{name}` must have shape {expected}, got {tuple(np.shape(x))}.")


def check_in_features(name: str, x: Any, kernel_shape: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``x.shape[-1]`` equals the kernel's input size ``kernel_shape[0]``."""
    n_kernel, shape = int(kernel_shape[0]), tuple(np.shape(x))
    if not shape or shape[-1] != n_kernel:
        raise ValueError(
            f"`{name}` must have {n_kernel} input features (its last dim), as the layer's kernel "
            f"{tuple(kernel_shape)}, got shape {shape}."
        )


class ParamMismatchError(ValueError):
    """A layer's ``variables['params']`` do not fit it: a param of another shape, or an unknown one."""


class ParamNotFoundError(ValueError):
    """A layer's ``variables['params']`` lack one of its params (the message starts with its path)."""


def check_param_shapes(module: Any, shapes: dict[str, tuple[int | None, ...]]) -> None:
    """Inside a layer's ``__call__``: its given params are exactly ``shapes`` (``None``: any size).

    Flax would raise a ``ScopeParamShapeError`` or ``ScopeParamNotFoundError`` later (not a
    ``ValueError``), and silently ignores a param the layer does not ask for; here each names the
    param and the shape expected. Nothing is checked while the layer is initialised.
    """
    given = module.variables.get("params", {})
    if module.is_initializing() and not given:
        return
    owner = type(module).__name__
    for name in given:
        if name not in shapes and "__" not in str(name):  # "to_nnx__rngs": nnx.bridge's own
            raise ParamMismatchError(
                f"`variables['params']` of this {owner} must have only {sorted(shapes)}, got the "
                f"unknown param {name!r} (it would be ignored)."
            )
    for name, expected in shapes.items():
        if name not in given:
            if module.is_initializing():
                continue
            where = "/".join(map(str, module.scope.path))
            raise ParamNotFoundError(
                (f"{where}: " if where else "")
                + f"`variables['params']` of this {owner} must have {name!r} of shape "
                f"{_show(expected)}, got none (params {sorted(given)})."
            )
        shape = tuple(np.shape(nn_unbox(given[name])))
        if len(shape) != len(expected) or any(
            e is not None and s != e for s, e in zip(shape, expected, strict=True)
        ):
            raise ParamMismatchError(
                f"`variables['params']['{name}']` of this {owner} must have shape "
                f"{_show(expected)}, got {shape}."
            )


def _show(shape: tuple[int | None, ...]) -> str:
    inner = ", ".join("in_features" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def nn_unbox(value: Any) -> Any:
    """A flax boxed variable's array (``nn.Partitioned`` ...), else ``value``."""
    return value.unbox() if hasattr(value, "unbox") else value


def check_layer_params(
    module: Any, use_bias: bool, kernel_shape: tuple[int | None, ...] | None = None
) -> None:
    """Inside a layer's ``__call__``: the given params are floating, and no bias is silently dropped.

    Flax ignores a variable the layer does not ask for, so a ``bias`` given to a layer built with
    ``use_bias=False`` would be dropped without a word; integer params would be promoted silently.
    With ``kernel_shape`` (``None`` for the input size, checked against ``x`` by the layer), the
    params must be exactly ``kernel`` of that shape and ``bias`` of ``kernel_shape[:-2] +
    kernel_shape[-1:]`` (see :func:`check_param_shapes`).
    """
    for name in ("kernel", "bias"):
        if module.has_variable("params", name):
            value = module.get_variable("params", name)
            value = value.unbox() if hasattr(value, "unbox") else value  # a partitioned box
            check_floating_array(f"variables['params']['{name}']", value)
    if not use_bias and module.has_variable("params", "bias"):
        raise ValueError(
            "`variables['params']` must not have a 'bias' for a layer built with use_bias=False "
            "(it would be ignored); build the layer with use_bias=True or drop the bias."
        )
    if kernel_shape is not None:
        shapes = {"kernel": tuple(kernel_shape)}
        if use_bias:
            shapes["bias"] = (*kernel_shape[:-2], kernel_shape[-1])
        check_param_shapes(module, shapes)
