"""Per-parameter learning-rate scaling as optax transforms (parametrizations, u-μP rules)."""

from jaxlinear.optim._lr_factors import scale_by_lr_factors as scale_by_lr_factors
from jaxlinear.optim._unit_scaling import mup_types as mup_types
from jaxlinear.optim._unit_scaling import unit_scaling_adam as unit_scaling_adam
from jaxlinear.optim._unit_scaling import unit_scaling_adamw as unit_scaling_adamw
from jaxlinear.optim._unit_scaling import unit_scaling_lr_scales as unit_scaling_lr_scales
from jaxlinear.optim._unit_scaling import unit_scaling_sgd as unit_scaling_sgd
from jaxlinear.optim._unit_scaling import unit_scaling_weight_decays as unit_scaling_weight_decays
from jaxlinear.optim._weight_decay import (
    add_decayed_weights_per_leaf as add_decayed_weights_per_leaf,
)

__all__ = [
    "add_decayed_weights_per_leaf",
    "mup_types",
    "scale_by_lr_factors",
    "unit_scaling_adam",
    "unit_scaling_adamw",
    "unit_scaling_lr_scales",
    "unit_scaling_sgd",
    "unit_scaling_weight_decays",
]
