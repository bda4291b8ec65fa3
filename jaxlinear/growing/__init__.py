"""Growing linear networks (gromo / TINY): statistics, optimal updates, new neurons, ``GrowingMLP``.

Pure functions named after gromo's (``gromo.modules.linear_growing_module``, ``gromo.utils.tools``),
taking and returning arrays and pytrees instead of mutating modules, and a jitted growth loop for
:class:`GrowingMLP` (every option of gromo 0.1.0; capacity buckets so a growth run compiles a bounded
number of times; optimizer state carried across growth).
"""

from jaxlinear.growing._activations import (
    ACTIVATION_GRADIENT_AT_ZERO as ACTIVATION_GRADIENT_AT_ZERO,
)
from jaxlinear.growing._activations import ACTIVATIONS as ACTIVATIONS
from jaxlinear.growing._activations import (
    activation_gradient_at_zero as activation_gradient_at_zero,
)
from jaxlinear.growing._adjust import NORMALIZATION_TYPES as NORMALIZATION_TYPES
from jaxlinear.growing._adjust import normalize_optimal_updates as normalize_optimal_updates
from jaxlinear.growing._adjust import sub_select_update as sub_select_update
from jaxlinear.growing._apply import DEFAULT_GAMMAS as DEFAULT_GAMMAS
from jaxlinear.growing._apply import apply_change as apply_change
from jaxlinear.growing._apply import extended_forward as extended_forward
from jaxlinear.growing._apply import line_search as line_search
from jaxlinear.growing._apply import logspace_gammas as logspace_gammas
from jaxlinear.growing._buckets import pad as pad
from jaxlinear.growing._buckets import unpad as unpad
from jaxlinear.growing._extend import add_parameters as add_parameters
from jaxlinear.growing._extend import apply_layer_change as apply_layer_change
from jaxlinear.growing._extend import layer_extended_forward as layer_extended_forward
from jaxlinear.growing._extend import layer_forward as layer_forward
from jaxlinear.growing._extend import layer_in_extension as layer_in_extension
from jaxlinear.growing._extend import layer_out_extension as layer_out_extension
from jaxlinear.growing._extend import (
    sub_select_optimal_added_parameters as sub_select_optimal_added_parameters,
)
from jaxlinear.growing._grow import GrowthStep as GrowthStep
from jaxlinear.growing._grow import grow as grow
from jaxlinear.growing._layer import GrowableLinear as GrowableLinear
from jaxlinear.growing._mlp_statistics import MLPStatistics as MLPStatistics
from jaxlinear.growing._mlp_statistics import init_statistics as init_statistics
from jaxlinear.growing._mlp_statistics import update_statistics as update_statistics
from jaxlinear.growing._mlp_statistics import (
    value_and_grad_with_statistics as value_and_grad_with_statistics,
)
from jaxlinear.growing._model import GrowingMLP as GrowingMLP
from jaxlinear.growing._model import active_widths as active_widths
from jaxlinear.growing._model import bucket_capacity as bucket_capacity
from jaxlinear.growing._opt_state import grow_opt_state as grow_opt_state
from jaxlinear.growing._random_init import EXTENSION_INITS as EXTENSION_INITS
from jaxlinear.growing._random_init import create_layer_extensions as create_layer_extensions
from jaxlinear.growing._solve import (
    compute_optimal_added_parameters as compute_optimal_added_parameters,
)
from jaxlinear.growing._solve import (
    compute_optimal_added_parameters_padded as compute_optimal_added_parameters_padded,
)
from jaxlinear.growing._solve import compute_optimal_delta as compute_optimal_delta
from jaxlinear.growing._solve import first_order_improvement as first_order_improvement
from jaxlinear.growing._solve import shrink_psd_matrix as shrink_psd_matrix
from jaxlinear.growing._solve import (
    sqrt_inverse_matrix_semi_positive as sqrt_inverse_matrix_semi_positive,
)
from jaxlinear.growing._statistics import RunningSum as RunningSum
from jaxlinear.growing._statistics import (
    compute_covariance_loss_gradient_update as compute_covariance_loss_gradient_update,
)
from jaxlinear.growing._statistics import (
    compute_cross_covariance_update as compute_cross_covariance_update,
)
from jaxlinear.growing._statistics import compute_m_prev_update as compute_m_prev_update
from jaxlinear.growing._statistics import compute_m_update as compute_m_update
from jaxlinear.growing._statistics import compute_n_update as compute_n_update
from jaxlinear.growing._statistics import compute_s_update as compute_s_update
from jaxlinear.growing._statistics import input_extended as input_extended
from jaxlinear.growing._statistics import tensor_n as tensor_n
from jaxlinear.growing._updates import LayerUpdate as LayerUpdate
from jaxlinear.growing._updates import compute_optimal_updates as compute_optimal_updates
from jaxlinear.growing._updates import select_best_update as select_best_update

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_GRADIENT_AT_ZERO",
    "DEFAULT_GAMMAS",
    "EXTENSION_INITS",
    "GrowableLinear",
    "GrowingMLP",
    "GrowthStep",
    "LayerUpdate",
    "MLPStatistics",
    "NORMALIZATION_TYPES",
    "RunningSum",
    "activation_gradient_at_zero",
    "active_widths",
    "add_parameters",
    "apply_change",
    "apply_layer_change",
    "bucket_capacity",
    "compute_covariance_loss_gradient_update",
    "compute_cross_covariance_update",
    "compute_m_prev_update",
    "compute_m_update",
    "compute_n_update",
    "compute_optimal_added_parameters",
    "compute_optimal_added_parameters_padded",
    "compute_optimal_delta",
    "compute_optimal_updates",
    "compute_s_update",
    "create_layer_extensions",
    "extended_forward",
    "first_order_improvement",
    "grow",
    "grow_opt_state",
    "init_statistics",
    "input_extended",
    "layer_extended_forward",
    "layer_forward",
    "layer_in_extension",
    "layer_out_extension",
    "line_search",
    "logspace_gammas",
    "normalize_optimal_updates",
    "pad",
    "select_best_update",
    "shrink_psd_matrix",
    "sqrt_inverse_matrix_semi_positive",
    "sub_select_optimal_added_parameters",
    "sub_select_update",
    "tensor_n",
    "unpad",
    "update_statistics",
    "value_and_grad_with_statistics",
]
