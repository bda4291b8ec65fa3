"""TabM (Gorishniy et al., ICLR 2025; ``tabm`` 0.0.3) and its numerical embeddings
(``rtdl_num_embeddings`` 0.0.12) in Flax: the same layers, inits and defaults, number for number.

``TabM.make(n_num_features=..., cat_cardinalities=..., d_out=...)`` builds tabm's model; its output is
``(batch, k, d_out)``, k predictions per object, evaluated (as tabm's authors do) by the mean of the
members' predictions. ``jaxlinear.interop.from_torch(model, torch_tabm)`` ports a trained torch TabM.
"""

from jaxlinear.tabm._activations import ACTIVATIONS as ACTIVATIONS
from jaxlinear.tabm._backbones import MLPBackbone as MLPBackbone
from jaxlinear.tabm._backbones import MLPBackboneBatchEnsemble as MLPBackboneBatchEnsemble
from jaxlinear.tabm._backbones import MLPBackboneEnsemble as MLPBackboneEnsemble
from jaxlinear.tabm._backbones import MLPBackboneMiniEnsemble as MLPBackboneMiniEnsemble
from jaxlinear.tabm._bins import compute_bins as compute_bins
from jaxlinear.tabm._elementwise_affine import ElementwiseAffine as ElementwiseAffine
from jaxlinear.tabm._ensemble_view import EnsembleView as EnsembleView
from jaxlinear.tabm._ensemble_view import ensemble_view as ensemble_view
from jaxlinear.tabm._linear_batch_ensemble import LinearBatchEnsemble as LinearBatchEnsemble
from jaxlinear.tabm._linear_embeddings import LinearEmbeddings as LinearEmbeddings
from jaxlinear.tabm._linear_embeddings import LinearReLUEmbeddings as LinearReLUEmbeddings
from jaxlinear.tabm._linear_ensemble import LinearEnsemble as LinearEnsemble
from jaxlinear.tabm._periodic_embeddings import PeriodicEmbeddings as PeriodicEmbeddings
from jaxlinear.tabm._piecewise_linear import PiecewiseLinearEmbeddings as PiecewiseLinearEmbeddings
from jaxlinear.tabm._piecewise_linear import PiecewiseLinearEncoding as PiecewiseLinearEncoding
from jaxlinear.tabm._scaling import SCALING_INITS as SCALING_INITS
from jaxlinear.tabm._scaling import scaling_init as scaling_init
from jaxlinear.tabm._tabm import ARCH_TYPES as ARCH_TYPES
from jaxlinear.tabm._tabm import TabM as TabM
from jaxlinear.tabm._tabm import make_tabm_backbone as make_tabm_backbone

__all__ = [
    "ACTIVATIONS",
    "ARCH_TYPES",
    "ElementwiseAffine",
    "EnsembleView",
    "LinearBatchEnsemble",
    "LinearEmbeddings",
    "LinearEnsemble",
    "LinearReLUEmbeddings",
    "MLPBackbone",
    "MLPBackboneBatchEnsemble",
    "MLPBackboneEnsemble",
    "MLPBackboneMiniEnsemble",
    "PeriodicEmbeddings",
    "PiecewiseLinearEmbeddings",
    "PiecewiseLinearEncoding",
    "SCALING_INITS",
    "TabM",
    "compute_bins",
    "ensemble_view",
    "make_tabm_backbone",
    "scaling_init",
]
