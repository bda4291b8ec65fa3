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
    "to_output_scale",
]


def gmean(*scales: float) -> float:
    """The geometric mean ``(∏ s)^(1/n)``, bit-identical to ``unit_scaling.constraints.gmean``.

    Example:
        >>> gmean(8.0, 2.0)
        4.0
    """
    return math.pow(math.prod(scales), 1 / len(scales))


def hmean(*scales: float) -> float:
    """The harmonic mean ``n / Σ(1/s)``, as ``unit_scaling.constraints.hmean`` computes it.

    Example:
        >>> hmean(8.0, 2.0)
        3.2
    """
    return 1 / (sum(1 / s for s in scales) / len(scales))


def amean(*scales: float) -> float:
    """The arithmetic mean ``Σ s / n``.

    Example:
        >>> amean(8.0, 2.0)
        5.0
    """
    return sum(scales) / len(scales)


def to_output_scale(output_scale: float, *grad_input_scales: float) -> float:
    """Every scale becomes the output scale (u-μP's default for hidden layers).

    Example:
        >>> to_output_scale(2.0, 3.0)
        2.0
    """
    return output_scale


def to_grad_input_scale(output_scale: float, grad_input_scale: float) -> float:
    """Both scales become the grad-input scale (exactly two scales).

    Example:
        >>> to_grad_input_scale(2.0, 3.0)
        3.0
    """
    return grad_input_scale


CONSTRAINTS: dict[str, Callable[..., float]] = {
    "gmean": gmean,
    "hmean": hmean,
    "amean": amean,
    "to_output_scale": to_output_scale,
    "to_grad_input_scale": to_grad_input_scale,
}
_CONSTRAINT_CHOICES = (None, *CONSTRAINTS)


def check_constraint(constraint: str | None) -> None:
    """Raise ``ValueError`` unless ``constraint`` is None, ``""`` or one of the five names."""
    if constraint == "":
        return
    if constraint is not None and not isinstance(constraint, str):
        raise ValueError(f"`constraint` must be one of {_CONSTRAINT_CHOICES}, got {constraint!r}.")
    if constraint not in _CONSTRAINT_CHOICES:
        raise ValueError(f"`constraint` must be one of {_CONSTRAINT_CHOICES}, got {constraint!r}.")


def apply_constraint(constraint: str | None, *scales: float) -> tuple[float, ...]:
    """Apply a named constraint to a group of scales: every slot gets the constraint's value.

    ``None`` (or ``""``, as in the reference) leaves the scales unconstrained.

    Warning:
        ``unit_scaling.constraints.apply_constraint`` looks the name up with ``getattr`` on its module,
        so it silently accepts unrelated names such as ``"pow"``; jaxlinear accepts only
        :data:`CONSTRAINTS`' five names and None.

    Raises:
        ValueError: for any other name.

    Example:
        >>> apply_constraint("gmean", 1.0, 4.0, 2.0)
        (2.0, 2.0, 2.0)
        >>> apply_constraint(None, 0.5, 0.25)
        (0.5, 0.25)
    """
    check_constraint(constraint)
    if not constraint:
        return tuple(scales)
    value = CONSTRAINTS[constraint](*scales)
    return tuple(value for _ in scales)
