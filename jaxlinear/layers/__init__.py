"""The layer core: each layer's math written once, for its linen (``jaxlinear.nn``) and NNX front ends.

A front end declares the params (linen ``self.param``, NNX ``nnx.Param``) with the initializers, the
sharding names and the shapes given here, and calls the forward and the learning-rate rule given here,
so the two front ends give bit-identical outputs for the same params.

- The layer classes' shared methods, inherited by both front ends: :class:`LayerCore`,
  :class:`DenseCore` (Linear), :class:`NLinearCore`, :class:`UnitScaledCore` (settings checks,
  sharding names, initializers, input checks, forward with an optional injected ``dot_general``,
  learning-rate rule).
- Linear / NLinear: :func:`dense_inits`, :func:`linear_forward`,
  :func:`nlinear_forward`, :func:`parametrization_lr_rule` and the checks of their fields and inputs.
- Unit-scaled layers: :func:`unit_scaled_inits`, :func:`unit_scaled_forward`,
  :func:`unit_scaled_lr_rule`, :func:`umup_lr_factor`.
- Sharding names: :func:`layer_axes` (kernel and bias names, the bias defaulting to the kernel's member
  and output names), :func:`quantized_axes`, :func:`check_axes`.
"""

from jaxlinear.layers._axes import Axes as Axes
from jaxlinear.layers._axes import check_axes as check_axes
from jaxlinear.layers._axes import layer_axes as layer_axes
from jaxlinear.layers._axes import qparam_axes as qparam_axes
from jaxlinear.layers._axes import quantized_axes as quantized_axes
from jaxlinear.layers._core import DenseCore as DenseCore
from jaxlinear.layers._core import LayerCore as LayerCore
from jaxlinear.layers._core import NLinearCore as NLinearCore
from jaxlinear.layers._core import UnitScaledCore as UnitScaledCore
from jaxlinear.layers._dense import LrRule as LrRule
from jaxlinear.layers._dense import check_dense_config as check_dense_config
from jaxlinear.layers._dense import check_init as check_init
from jaxlinear.layers._dense import check_layer_config as check_layer_config
from jaxlinear.layers._dense import check_linear_input as check_linear_input
from jaxlinear.layers._dense import check_nlinear_input as check_nlinear_input
from jaxlinear.layers._dense import dense_inits as dense_inits
from jaxlinear.layers._dense import linear_forward as linear_forward
from jaxlinear.layers._dense import nlinear_forward as nlinear_forward
from jaxlinear.layers._dense import normalize_n as normalize_n
from jaxlinear.layers._dense import parametrization_lr_rule as parametrization_lr_rule
from jaxlinear.layers._unit_scaled import MUP_TYPES as MUP_TYPES
from jaxlinear.layers._unit_scaled import READOUT_CONSTRAINTS as READOUT_CONSTRAINTS
from jaxlinear.layers._unit_scaled import READOUT_SCALE_POWER as READOUT_SCALE_POWER
from jaxlinear.layers._unit_scaled import UNIT_SCALED_SCALE_POWER as UNIT_SCALED_SCALE_POWER
from jaxlinear.layers._unit_scaled import umup_lr_factor as umup_lr_factor
from jaxlinear.layers._unit_scaled import unit_scaled_forward as unit_scaled_forward
from jaxlinear.layers._unit_scaled import unit_scaled_inits as unit_scaled_inits
from jaxlinear.layers._unit_scaled import unit_scaled_lr_rule as unit_scaled_lr_rule

__all__ = [
    "MUP_TYPES",
    "READOUT_CONSTRAINTS",
    "READOUT_SCALE_POWER",
    "UNIT_SCALED_SCALE_POWER",
    "Axes",
    "DenseCore",
    "LayerCore",
    "LrRule",
    "NLinearCore",
    "UnitScaledCore",
    "check_axes",
    "check_dense_config",
    "check_init",
    "check_layer_config",
    "check_linear_input",
    "check_nlinear_input",
    "dense_inits",
    "layer_axes",
    "linear_forward",
    "nlinear_forward",
    "normalize_n",
    "parametrization_lr_rule",
    "qparam_axes",
    "quantized_axes",
    "umup_lr_factor",
    "unit_scaled_forward",
    "unit_scaled_inits",
    "unit_scaled_lr_rule",
]
