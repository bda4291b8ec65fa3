"""The math of the dense layers ``Linear`` and ``NLinear``, written once for the linen and NNX modules.

Each front end declares the params (linen ``self.param``, NNX ``nnx.Param``) and calls these: the
initializers (torch's, the parametrization's, or the user's), the input checks, the forward (dtype
promotion, then :func:`jaxlinear.functional.linear` / :func:`~jaxlinear.functional.nlinear`) and the
learning-rate rule. The same params therefore give bit-identical outputs in both.
"""

from typing import Any

import jax.numpy as jnp
import numpy as np
from flax.linen.dtypes import promote_dtype

from jaxlinear import functional
from jaxlinear._checks import (
    check_bool,
    check_choice,
    check_dim,
    check_floating_array,
    check_floating_dtype,
    check_in_features,
    check_min_ndim,
    check_positive_int,
    check_trailing_shape,
)
from jaxlinear._typing import Array, DotGeneralT, Dtype, Initializer, PrecisionLike
from jaxlinear.functional import NLINEAR_LAYOUTS
from jaxlinear.initializers import layer_inits
from jaxlinear.parametrizations import (
    LAYER_TYPES,
    Parametrization,
    canonical_optimizer,
    get_parametrization,
)

__all__ = [
    "LrRule",
    "check_dense_config",
    "check_init",
    "check_layer_config",
    "check_linear_input",
    "check_nlinear_input",
    "dense_inits",
    "linear_forward",
    "nlinear_forward",
    "normalize_n",
    "parametrization_lr_rule",
]

#: A layer's learning-rate rule, ``{param name: (lr factor, weight-decay factor)}``.
LrRule = dict[str, tuple[float, float]]


def check_init(name: str, init: Any) -> None:
    """Raise ``TypeError`` unless ``init`` is None or a callable ``(key, shape, dtype) -> Array``.

    Args:
        name: the argument's name for the message (``"kernel_init"``).
        init: the value to check.

    Raises:
        TypeError: if ``init`` is neither None nor callable.

    Example:
        >>> check_init("kernel_init", None)
    """
    if init is not None and not callable(init):
        raise TypeError(
            f"`{name}` must be None (the layer's own init) or an initializer `(key, shape, dtype) -> "
            f"Array`, got {type(init).__name__} {init!r}."
        )


def check_layer_config(
    features: Any,
    use_bias: Any,
    dtype: Any,
    param_dtype: Any,
    kernel_init: Any = None,
    bias_init: Any = None,
) -> None:
    """Check the fields every float layer has (both front ends).

    Args:
        features: output size, an int in ``[1, 2**31 - 1]``.
        use_bias: a bool.
        dtype: a floating dtype or None.
        param_dtype: a floating dtype.
        kernel_init: None or an initializer.
        bias_init: None or an initializer.

    Raises:
        TypeError: for a value of the wrong type.
        ValueError: for a value out of range.

    Example:
        >>> check_layer_config(4, True, None, jnp.float32)
    """
    check_positive_int("features", features)
    check_dim("features", features)
    check_bool("use_bias", use_bias)
    check_floating_dtype("dtype", dtype, allow_none=True)
    check_floating_dtype("param_dtype", param_dtype)
    check_init("kernel_init", kernel_init)
    check_init("bias_init", bias_init)


def check_dense_config(
    features: Any,
    use_bias: Any,
    parametrization: Any,
    layer_type: Any,
    dtype: Any,
    param_dtype: Any,
    kernel_init: Any = None,
    bias_init: Any = None,
) -> None:
    """Check the fields shared by ``Linear`` and ``NLinear`` (both front ends).

    :func:`check_layer_config`, then the parametrization and the layer type.

    Args:
        features: output size, an int in ``[1, 2**31 - 1]``.
        use_bias: a bool.
        parametrization: None, a :class:`~jaxlinear.parametrizations.Parametrization` or its name.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``.
        dtype: a floating dtype or None.
        param_dtype: a floating dtype.
        kernel_init: None or an initializer; must be None with a parametrization.
        bias_init: None or an initializer; must be None with a parametrization.

    Raises:
        TypeError: for a value of the wrong type.
        ValueError: for a value out of range, an unknown name, or an initializer together with a
            parametrization (which defines the init itself).

    Example:
        >>> check_dense_config(4, True, "mup", "output", None, jnp.float32)
    """
    check_layer_config(features, use_bias, dtype, param_dtype, kernel_init, bias_init)
    if parametrization is not None:
        get_parametrization(parametrization)  # TypeError/ValueError for a bad one
    check_choice("layer_type", layer_type, LAYER_TYPES)
    given = [
        n for n, v in (("kernel_init", kernel_init), ("bias_init", bias_init)) if v is not None
    ]
    if parametrization is not None and given:
        raise ValueError(
            f"`{given[0]}` must be None with a parametrization (it defines the init: "
            f"{parametrization!r}); drop the parametrization to use your own initializer."
        )


def dense_inits(
    parametrization: Parametrization | str | None,
    fan_in: int,
    fan_out: int,
    layer_type: str = "hidden",
    kernel_init: Initializer | None = None,
    bias_init: Initializer | None = None,
) -> tuple[Initializer, Initializer]:
    """The kernel and bias initializers of a dense layer (or of one ``NLinear`` member).

    The user's ``kernel_init`` / ``bias_init`` where given, else :func:`jaxlinear.initializers.layer_inits`
    (torch's U(±1/√fan_in), or the parametrization's normal).

    Args:
        parametrization: None, or a parametrization (then both initializers must be None).
        fan_in: the layer's input size (per member for ``NLinear``).
        fan_out: its output size.
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``.
        kernel_init: None or the user's kernel initializer.
        bias_init: None or the user's bias initializer.

    Returns:
        ``(kernel_init, bias_init)``, each ``init(key, shape, dtype) -> Array``.

    Raises:
        ValueError: for an initializer together with a parametrization.

    Example:
        >>> import jax
        >>> k_init, _ = dense_inits(None, 16, 4)
        >>> bool((jnp.abs(k_init(jax.random.key(0), (16, 4))) <= 0.25).all())
        True
    """
    if parametrization is not None and (kernel_init is not None or bias_init is not None):
        raise ValueError(
            "`kernel_init` / `bias_init` must be None with a parametrization (it defines the init)."
        )
    default_kernel, default_bias = layer_inits(parametrization, fan_in, fan_out, layer_type)
    return kernel_init or default_kernel, bias_init or default_bias


def normalize_n(n: Any) -> tuple[int, ...]:
    """``NLinear``'s ``n`` (an int or a non-empty tuple of ints) as a tuple.

    Args:
        n: the number of members, an int or a tuple of ints (a grid of members).

    Returns:
        ``n`` as a tuple of Python ints.

    Raises:
        TypeError: if ``n`` is not an int or a tuple of ints.
        ValueError: for an empty tuple or a member count out of ``[1, 2**31 - 1]``.

    Example:
        >>> normalize_n(3), normalize_n((2, 4))
        ((3,), (2, 4))
    """
    if isinstance(n, bool | np.bool_) or not isinstance(n, int | np.integer | tuple | list):
        raise TypeError(f"`n` must be an int or a non-empty tuple of ints, got {n!r}.")
    n_tuple = (n,) if isinstance(n, int | np.integer) else tuple(n)
    if not n_tuple:
        raise ValueError("`n` must be an int or a non-empty tuple of ints, got ().")
    for d in n_tuple:
        check_positive_int("n", d)
        check_dim("n", int(d))
    return tuple(int(d) for d in n_tuple)


def check_linear_input(x: Any, kernel_shape: tuple[int, ...] | None = None) -> Array:
    """``x`` as a floating array ``(..., in)``, matching the kernel's ``in`` if it exists.

    Args:
        x: the layer's input.
        kernel_shape: the existing kernel's shape, or None at init.

    Returns:
        ``x`` as a JAX array.

    Raises:
        TypeError: for a non-floating input.
        ValueError: for a scalar, a dim above ``2**31 - 1`` or an ``in`` that is not the kernel's.

    Example:
        >>> check_linear_input([[1.0, 2.0]], (2, 3)).shape
        (1, 2)
    """
    x = jnp.asarray(x)
    check_floating_array("x", x)
    check_min_ndim("x", x, 1, "(..., in_features)")
    check_dim("x.shape[-1]", x.shape[-1])
    if kernel_shape is not None:
        check_in_features("x", x, kernel_shape)
    return x


def check_nlinear_input(
    x: Any, n: tuple[int, ...], layout: str, kernel_shape: tuple[int, ...] | None = None
) -> Array:
    """``x`` as a floating array ``(..., *n, in)`` (``(*n, ..., in)`` member-major).

    Args:
        x: the layer's input.
        n: the member dims.
        layout: ``"batch_major"`` or ``"member_major"``.
        kernel_shape: the existing kernel's shape ``(*n, in, out)``, or None at init.

    Returns:
        ``x`` as a JAX array.

    Raises:
        TypeError: for a non-floating input.
        ValueError: for a shape that does not fit ``n``, the layout or the kernel.

    Example:
        >>> check_nlinear_input(jnp.ones((5, 3, 2)), (3,), "batch_major").shape
        (5, 3, 2)
    """
    x = jnp.asarray(x)
    check_floating_array("x", x)
    check_choice("layout", layout, NLINEAR_LAYOUTS)
    what = "(*n, ..., in_features)" if layout == "member_major" else "(..., *n, in_features)"
    check_min_ndim("x", x, len(n) + 1, f"{what} with n={n}")
    n_in = x.shape[-1]
    if layout == "member_major":
        if tuple(x.shape[: len(n)]) != n:
            raise ValueError(
                f"`x` must have shape (*n, ..., in_features) with n={n}, got shape {x.shape}."
            )
    else:
        check_trailing_shape("x", x, (*n, n_in), f"(..., *n, in_features) with n={n}")
    check_dim("x.shape[-1]", n_in)
    if kernel_shape is not None:
        if layout == "member_major":
            check_in_features("x", x, kernel_shape[-2:])
        else:
            what = "(..., *n, in_features) matching the kernel"
            check_trailing_shape("x", x, kernel_shape[:-1], what)
    return x


def linear_forward(
    x: Array,
    kernel: Array,
    bias: Array | None,
    *,
    dtype: Dtype | None = None,
    precision: PrecisionLike = None,
    dot_general: DotGeneralT | None = None,
) -> Array:
    """``Linear``'s forward: promote ``x``, kernel and bias to one dtype, then ``x @ kernel + bias``.

    Args:
        x: ``(..., in)``.
        kernel: ``(in, out)``.
        bias: ``(out,)`` or None.
        dtype: the computation dtype; None promotes from the operands (Flax's ``promote_dtype``).
        precision: passed to ``lax.dot_general``.
        dot_general: None (:func:`jaxlinear.functional.linear`) or a dot product function
            (:func:`jaxlinear.functional.linear_dot_general`, as Flax's ``nn.Dense``).

    Returns:
        ``(..., out)`` in the promoted dtype.

    Example:
        >>> linear_forward(jnp.ones((2, 3)), jnp.ones((3, 4)), None).shape
        (2, 4)
    """
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=dtype)
    if dot_general is not None:
        return functional.linear_dot_general(
            x, kernel, bias, dot_general=dot_general, precision=precision
        )
    return functional.linear(x, kernel, bias, precision=precision)


def nlinear_forward(
    x: Array,
    kernel: Array,
    bias: Array | None,
    *,
    dtype: Dtype | None = None,
    precision: PrecisionLike = None,
    layout: str = "batch_major",
    dot_general: DotGeneralT | None = None,
) -> Array:
    """``NLinear``'s forward: promote the operands to one dtype, then :func:`~jaxlinear.functional.nlinear`.

    Args:
        x: ``(..., *n, in)`` (``(*n, ..., in)`` member-major).
        kernel: ``(*n, in, out)``.
        bias: ``(*n, out)`` or None.
        dtype: the computation dtype; None promotes from the operands.
        precision: passed to ``lax.dot_general``.
        layout: ``"batch_major"`` or ``"member_major"``.
        dot_general: None (:func:`jaxlinear.functional.nlinear`) or a dot product function, the
            member dims its batch dims (:func:`jaxlinear.functional.nlinear_dot_general`).

    Returns:
        ``(..., *n, out)`` (``(*n, ..., out)`` member-major) in the promoted dtype.

    Example:
        >>> nlinear_forward(jnp.ones((5, 2, 3)), jnp.ones((2, 3, 4)), None).shape
        (5, 2, 4)
    """
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=dtype)
    if dot_general is not None:  # an injected product (not the fast path below)
        return functional.nlinear_dot_general(
            x, kernel, bias, dot_general=dot_general, precision=precision, layout=layout
        )
    return functional.nlinear(x, kernel, bias, precision=precision, layout=layout)


def parametrization_lr_rule(
    parametrization: Parametrization | str | None,
    fans: tuple[int, int],
    names: tuple[str, ...],
    optimizer: str,
    layer_type: str,
    depth: int | None,
    layer: str,
) -> LrRule:
    """inferno's ``parameters_and_lrs`` rule for one dense layer: ``{name: (lr factor, wd factor)}``.

    With ``parametrization=None`` every factor is 1 (torch's plain optimizer). Otherwise the kernel gets
    ``weight_lr_scale(fan_in, fan_out, optimizer, layer_type)`` and the bias ``bias_lr_scale(...)``
    (weight first, as inferno: NeuralTangent + Adam raises before any bias rule runs). inferno's groups
    carry no weight decay, so the optimizer's applies to every parameter: weight-decay factor 1.

    Args:
        parametrization: None or a parametrization (or its name).
        fans: ``(fan_in, fan_out)`` of the layer (of one member for ``NLinear``).
        names: the layer's param names (``("kernel", "bias")``).
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"`` (inferno's spellings too).
        layer_type: ``"input"``, ``"hidden"`` or ``"output"``.
        depth: must be None.
        layer: the layer's description for error messages.

    Returns:
        ``{param name: (lr factor, weight-decay factor)}`` as Python floats.

    Raises:
        ValueError: for a ``depth`` (only unit-scaled layers have a depth rule) or an unknown optimizer.
        NotImplementedError: where inferno raises (``NeuralTangent`` with Adam).

    Example:
        >>> parametrization_lr_rule("mup", (64, 8), ("kernel",), "adam", "hidden", None, "a Linear")
        {'kernel': (0.015625, 1.0)}
    """
    if depth is not None:
        raise ValueError(
            f"`depth` must name only stacks of unit-scaled layers (u-μP's depth rule); {layer} follows "
            f"inferno's rules, which have no depth, got depth={depth!r}."
        )
    canonical_optimizer(optimizer)
    if parametrization is None:
        return {name: (1.0, 1.0) for name in names}
    p = get_parametrization(parametrization)
    rule = {"kernel": (float(p.weight_lr_scale(*fans, optimizer, layer_type)), 1.0)}
    if "bias" in names:
        rule["bias"] = (float(p.bias_lr_scale(*fans, optimizer, layer_type)), 1.0)
    return rule
