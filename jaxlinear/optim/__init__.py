"""Per-parameter learning-rate scaling as optax transforms (parametrizations, mup, u-μP rules)."""

from jaxlinear.optim._coord_check import CoordRecord as CoordRecord
from jaxlinear.optim._coord_check import coord_check as coord_check
from jaxlinear.optim._coord_check import plot_coord_check as plot_coord_check
from jaxlinear.optim._lr_factors import scale_by_lr_factors as scale_by_lr_factors
from jaxlinear.optim._mup import mup_adam as mup_adam
from jaxlinear.optim._mup import mup_adamw as mup_adamw
from jaxlinear.optim._mup import mup_lr_scales as mup_lr_scales
from jaxlinear.optim._mup import mup_sgd as mup_sgd
from jaxlinear.optim._mup import mup_weight_decay_scales as mup_weight_decay_scales
from jaxlinear.optim._parametrization import lr_scales as lr_scales
from jaxlinear.optim._parametrization import parametrized_adam as parametrized_adam
from jaxlinear.optim._parametrization import parametrized_adamw as parametrized_adamw
from jaxlinear.optim._parametrization import parametrized_sgd as parametrized_sgd
from jaxlinear.optim._parametrization import scale_by_learning_rates as scale_by_learning_rates
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
    "CoordRecord",
    "add_decayed_weights_per_leaf",
    "coord_check",
    "lr_scales",
    "mup_adam",
    "mup_adamw",
    "mup_lr_scales",
    "mup_sgd",
    "mup_types",
    "mup_weight_decay_scales",
    "parametrized_adam",
    "parametrized_adamw",
    "parametrized_sgd",
    "plot_coord_check",
    "scale_by_learning_rates",
    "scale_by_lr_factors",
    "unit_scaling_adam",
    "unit_scaling_adamw",
    "unit_scaling_lr_scales",
    "unit_scaling_sgd",
    "unit_scaling_weight_decays",
]
