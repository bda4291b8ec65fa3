"""One optimizer API: rules compute per-parameter :class:`Factors`, optimizers consume them.

- rules: :func:`lr_factors` (each jaxlinear layer's own rule: inferno's parametrizations, torch's plain
  factor 1, unit_scaling's u-μP) and :func:`mup_factors` (Microsoft mup, from base shapes);
- optimizers: :func:`sgd`, :func:`adam`, :func:`adamw` with torch's semantics, optax
  ``GradientTransformation`` objects built from the transforms below;
- building blocks: :func:`scale_by_lr_factors`, :func:`add_decayed_weights_per_leaf`,
  :func:`scale_by_torch_adam`, :func:`torch_momentum`, :func:`scale_by_learning_rate`;
- the μP coordinate check: :func:`coord_check`, :func:`plot_coord_check`.
"""

from jaxlinear.optim._alias import adam as adam
from jaxlinear.optim._alias import adamw as adamw
from jaxlinear.optim._alias import sgd as sgd
from jaxlinear.optim._coord_check import CoordRecord as CoordRecord
from jaxlinear.optim._coord_check import coord_check as coord_check
from jaxlinear.optim._coord_check import plot_coord_check as plot_coord_check
from jaxlinear.optim._factors import Factors as Factors
from jaxlinear.optim._factors import LayerTypeWarning as LayerTypeWarning
from jaxlinear.optim._factors import lr_factors as lr_factors
from jaxlinear.optim._mup import mup_factors as mup_factors
from jaxlinear.optim._transforms import TorchAdamState as TorchAdamState
from jaxlinear.optim._transforms import TorchMomentumState as TorchMomentumState
from jaxlinear.optim._transforms import (
    add_decayed_weights_per_leaf as add_decayed_weights_per_leaf,
)
from jaxlinear.optim._transforms import scale_by_learning_rate as scale_by_learning_rate
from jaxlinear.optim._transforms import scale_by_lr_factors as scale_by_lr_factors
from jaxlinear.optim._transforms import scale_by_torch_adam as scale_by_torch_adam
from jaxlinear.optim._transforms import torch_momentum as torch_momentum

__all__ = [
    "CoordRecord",
    "Factors",
    "LayerTypeWarning",
    "TorchAdamState",
    "TorchMomentumState",
    "adam",
    "adamw",
    "add_decayed_weights_per_leaf",
    "coord_check",
    "lr_factors",
    "mup_factors",
    "plot_coord_check",
    "scale_by_learning_rate",
    "scale_by_lr_factors",
    "scale_by_torch_adam",
    "sgd",
    "torch_momentum",
]
