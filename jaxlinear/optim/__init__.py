"""Per-parameter learning-rate scaling as optax transforms (parametrizations, u-μP rules)."""

from jaxlinear.optim._lr_factors import scale_by_lr_factors as scale_by_lr_factors

__all__ = ["scale_by_lr_factors"]
