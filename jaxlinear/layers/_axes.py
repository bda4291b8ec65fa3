"""Sharding names of a layer's params: logical axis names, one per dimension, checked and defaulted."""

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Axes", "check_axes", "layer_axes", "qparam_axes", "quantized_axes"]

#: Logical axis names of one param, one per dimension (``None`` = not sharded), or ``None`` for a
#: param created without sharding metadata.
Axes = tuple[str | None, ...] | None


def check_axes(name: str, axes: Any, ndim: int | None = None) -> Axes:
    """``axes`` as a tuple of names (or None), checked against the param's number of dims.

    Args:
        name: the argument's name for the error message (``"kernel_axes"``).
        axes: None, or a tuple (or list) of logical axis names, each a str or None.
        ndim: the param's number of dims; None skips the length check.

    Returns:
        ``axes`` as a tuple, or None.

    Raises:
        TypeError: if ``axes`` is not None or a sequence of str/None (a bare string is rejected:
            ``("model",)`` names one dim, ``"model"`` would name five).
        ValueError: if ``ndim`` is given and ``axes`` names another number of dims.

    Example:
        >>> check_axes("kernel_axes", ["embed", "mlp"], 2)
        ('embed', 'mlp')
    """
    if axes is None:
        return None
    if isinstance(axes, str | bytes) or not isinstance(axes, Sequence):
        raise TypeError(
            f"`{name}` must be None or a tuple of logical axis names (str or None, one per dim), got "
            f"{type(axes).__name__} {axes!r}."
        )
    out = tuple(axes)
    bad = [a for a in out if a is not None and not isinstance(a, str)]
    if bad:
        raise TypeError(f"`{name}` must hold str or None names, got {bad!r} in {out!r}.")
    if ndim is not None and len(out) != ndim:
        raise ValueError(
            f"`{name}` must name each of the param's {ndim} dims (one name or None per dim), got "
            f"{len(out)} names {out!r}."
        )
    return out


def layer_axes(
    kernel_axes: Any, bias_axes: Any, kernel_ndim: int, *, use_bias: bool = True
) -> tuple[Axes, Axes]:
    """The checked kernel and bias names of a dense layer (kernel ``(*n, in, out)``, bias ``(*n, out)``).

    ``bias_axes=None`` with kernel names takes the kernel's leading member names (``NLinear``'s ``n``
    dims) plus its output name: the bias is sharded as the kernel's output.

    Args:
        kernel_axes: None, or one name (or None) per kernel dim.
        bias_axes: None (the default above), or one name (or None) per bias dim.
        kernel_ndim: the kernel's number of dims (2, or ``len(n) + 2`` for ``NLinear``).
        use_bias: whether the layer has a bias (without one, the bias names are None).

    Returns:
        ``(kernel_axes, bias_axes)``, each a tuple or None.

    Raises:
        TypeError, ValueError: as :func:`check_axes`, for either argument.

    Example:
        >>> layer_axes(("ensemble", "embed", "mlp"), None, 3)
        (('ensemble', 'embed', 'mlp'), ('ensemble', 'mlp'))
    """
    kernel = check_axes("kernel_axes", kernel_axes, kernel_ndim)
    bias = check_axes("bias_axes", bias_axes, kernel_ndim - 1)
    if not use_bias:
        return kernel, None
    if bias is None and kernel is not None:
        bias = (*kernel[:-2], kernel[-1])
    return kernel, bias


def quantized_axes(kernel_axes: Any, bias_axes: Any, *, per_channel: bool) -> Mapping[str, Axes]:
    """The names of a quantized linear layer's params: the int8 kernel keeps the float kernel's.

    The per-output-channel ``kernel_scale`` / ``kernel_zero_point`` take the kernel's output name; the
    per-tensor ones (scalars) and the output qparams have no dims to name.

    Args:
        kernel_axes: None or two names, ``(in, out)``.
        bias_axes: None (the kernel's output name) or one name.
        per_channel: whether the weight qparams are per output channel.

    Returns:
        ``{param name: axes}`` for ``kernel``, ``bias``, ``kernel_scale`` and ``kernel_zero_point``.

    Raises:
        TypeError, ValueError: as :func:`check_axes`.

    Example:
        >>> quantized_axes(("embed", "mlp"), None, per_channel=True)["kernel_scale"]
        ('mlp',)
    """
    kernel, bias = layer_axes(kernel_axes, bias_axes, 2)
    qparams = None if kernel is None or not per_channel else (kernel[-1],)
    return {
        "kernel": kernel,
        "bias": bias,
        "kernel_scale": qparams,
        "kernel_zero_point": qparams,
    }


def qparam_axes(kernel_axes: Axes, ndim: int) -> Axes:
    """The names of a weight qparam (scale or zero point) of ``ndim`` dims, from its kernel's names.

    A kernel ``(*n, in, out)`` has per-channel qparams ``(*n, out)`` (its member names plus its output
    name), per-member qparams ``(*n,)`` (its member names), and per-tensor scalars (no names).

    Args:
        kernel_axes: the float kernel's names, or None.
        ndim: the qparam's number of dims.

    Returns:
        The qparam's names, or None (no kernel names, a scalar, or a shape of no such kind).

    Example:
        >>> qparam_axes(("ensemble", "embed", "mlp"), 2), qparam_axes(("embed", "mlp"), 0)
        (('ensemble', 'mlp'), None)
    """
    if kernel_axes is None or ndim == 0:
        return None
    if ndim == len(kernel_axes) - 1:
        return (*kernel_axes[:-2], kernel_axes[-1])
    if ndim == len(kernel_axes) - 2:
        return tuple(kernel_axes[:-2])
    return None
