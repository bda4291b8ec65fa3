"""Constraints: a group of scales -> one shared scale (the formulas of ``unit_scaling.constraints``)."""

import math
from collections.abc import Callable

__all__ = [
    "CONSTRAINTS",
    "amean",
    "apply_constraint",
    "check_constraint",
    "gmean",
    "hmean",
    "to_grad_input_scale",
    "to_left_grad_scale",
    "to_output_scale",
    "to_right_grad_scale",
]


def _check_scales(scales: tuple[float, ...]) -> None:
    if not scales:
        raise ValueError("`scales` must be at least one scale, got none.")


def gmean(*scales: float) -> float:
    """The geometric mean ``(∏ s)^(1/n)``, bit-identical to ``unit_scaling.constraints.gmean``.

    Args:
        *scales: the scales to combine, one or more positive floats.

    Returns:
        The mean as a Python float.

    Raises:
        ValueError: if no scale is given.

    Example:
        >>> gmean(8.0, 2.0)
        4.0
    """
    _check_scales(scales)
    return math.pow(math.prod(scales), 1 / len(scales))


def hmean(*scales: float) -> float:
    """The harmonic mean ``n / Σ(1/s)``, as ``unit_scaling.constraints.hmean`` computes it.

    Args:
        *scales: the scales to combine, one or more positive floats.

    Returns:
        The mean as a Python float.

    Raises:
        ValueError: if no scale is given.

    Example:
        >>> hmean(8.0, 2.0)
        3.2
    """
    _check_scales(scales)
    return 1 / (sum(1 / s for s in scales) / len(scales))


def amean(*scales: float) -> float:
    """The arithmetic mean ``Σ s / n``.

    Args:
        *scales: the scales to combine, one or more positive floats.

    Returns:
        The mean as a Python float.

    Raises:
        ValueError: if no scale is given.

    Example:
        >>> amean(8.0, 2.0)
        5.0
    """
    _check_scales(scales)
    return sum(scales) / len(scales)


def to_output_scale(output_scale: float, *grad_input_scales: float) -> float:
    """Every scale becomes the output scale (u-μP's default for hidden layers).

    Args:
        output_scale: the op's forward (output) scale.
        *grad_input_scales: the op's backward scales (ignored).

    Returns:
        ``output_scale``.

    Example:
        >>> to_output_scale(2.0, 3.0)
        2.0
    """
    return output_scale


def to_grad_input_scale(output_scale: float, grad_input_scale: float) -> float:
    """Both scales become the grad-input scale (exactly two scales).

    Args:
        output_scale: the op's forward (output) scale (ignored).
        grad_input_scale: the scale of the gradient of the op's input.

    Returns:
        ``grad_input_scale``.

    Example:
        >>> to_grad_input_scale(2.0, 3.0)
        3.0
    """
    return grad_input_scale


def to_left_grad_scale(
    output_scale: float, left_grad_scale: float, right_grad_scale: float
) -> float:
    """All three scales become the left operand's grad scale (``add``/``matmul`` only).

    Args:
        output_scale: the op's forward (output) scale (ignored).
        left_grad_scale: the scale of the gradient of the left operand.
        right_grad_scale: the scale of the gradient of the right operand (ignored).

    Returns:
        ``left_grad_scale``.

    Example:
        >>> to_left_grad_scale(2.0, 3.0, 4.0)
        3.0
    """
    return left_grad_scale


def to_right_grad_scale(
    output_scale: float, left_grad_scale: float, right_grad_scale: float
) -> float:
    """All three scales become the right operand's grad scale (``add``/``matmul`` only).

    Args:
        output_scale: the op's forward (output) scale (ignored).
        left_grad_scale: the scale of the gradient of the left operand (ignored).
        right_grad_scale: the scale of the gradient of the right operand.

    Returns:
        ``right_grad_scale``.

    Example:
        >>> to_right_grad_scale(2.0, 3.0, 4.0)
        4.0
    """
    return right_grad_scale


#: Every named constraint by name, each a function of the scales ``(output, *grad_inputs)``
#: returning the one scale they all take (:func:`apply_constraint`).
CONSTRAINTS: dict[str, Callable[..., float]] = {
    "gmean": gmean,
    "hmean": hmean,
    "amean": amean,
    "to_output_scale": to_output_scale,
    "to_grad_input_scale": to_grad_input_scale,
    "to_left_grad_scale": to_left_grad_scale,
    "to_right_grad_scale": to_right_grad_scale,
}
_ANY_ARITY = ("gmean", "hmean", "amean", "to_output_scale")
_CHOICES = {  # what a binary (output, grad input) and a ternary (output, left, right) op accept
    2: (None, *_ANY_ARITY, "to_grad_input_scale"),
    3: (None, *_ANY_ARITY, "to_left_grad_scale", "to_right_grad_scale"),
}


def check_constraint(constraint: str | None, arity: int = 2) -> None:
    """Raise ``ValueError`` unless ``constraint`` is None, ``""`` or a name valid for ``arity`` scales.

    Binary ops (``linear``, ``gelu``, ...: output and grad-input scales) accept None, ``"gmean"``,
    ``"hmean"``, ``"amean"``, ``"to_output_scale"`` and ``"to_grad_input_scale"``; ternary ops
    (``add``, ``matmul``: output, left and right grad scales) take ``"to_left_grad_scale"`` /
    ``"to_right_grad_scale"`` instead of ``"to_grad_input_scale"``, as in the reference (which
    raises ``TypeError`` on the wrong arity).

    Args:
        constraint: a constraint name (a key of :data:`CONSTRAINTS`), None or ``""`` (no constraint).
        arity: the number of scales of the op: 2 (output, grad input) or 3 (output, left and right
            grad); other arities accept only the names valid for any number of scales.

    Raises:
        ValueError: if ``constraint`` is not a string or None, or not a name valid for ``arity``.

    Example:
        >>> check_constraint("to_left_grad_scale", arity=3)
    """
    if constraint == "":
        return
    choices = _CHOICES.get(arity, (None, *_ANY_ARITY))
    if constraint is not None and not isinstance(constraint, str):
        raise ValueError(f"`constraint` must be one of {choices}, got {constraint!r}.")
    if constraint not in choices:
        raise ValueError(f"`constraint` must be one of {choices}, got {constraint!r}.")


def apply_constraint(constraint: str | None, *scales: float) -> tuple[float, ...]:
    """Apply a named constraint to a group of scales: every slot gets the constraint's value.

    ``None`` (or ``""``, as in the reference) leaves the scales unconstrained.

    Warning:
        ``unit_scaling.constraints.apply_constraint`` looks the name up with ``getattr`` on its module,
        so it silently accepts unrelated names such as ``"pow"``; jaxlinear accepts only the names of
        :data:`CONSTRAINTS` that fit the number of scales (see :func:`check_constraint`) and None.

    Args:
        constraint: a constraint name (a key of :data:`CONSTRAINTS`), None or ``""``.
        *scales: the op's scales, output scale first, then the grad scales (2 or 3 in the ops).

    Returns:
        A tuple of ``len(scales)`` floats: the constraint's value in every slot, or ``scales``
        unchanged without a constraint.

    Raises:
        ValueError: for any other name, or a mean (``gmean``, ...) of no scales.

    Example:
        >>> apply_constraint("gmean", 1.0, 4.0, 2.0)
        (2.0, 2.0, 2.0)
        >>> apply_constraint(None, 0.5, 0.25)
        (0.5, 0.25)
    """
    check_constraint(constraint, len(scales))
    if not constraint:
        return tuple(scales)
    value = CONSTRAINTS[constraint](*scales)
    return tuple(value for _ in scales)
