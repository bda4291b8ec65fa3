"""``unit_scaling.Linear`` / ``LinearReadout`` <-> :class:`jaxlinear.UnitScaledLinear` /
:class:`jaxlinear.LinearReadout`: transpose ``weight (out, in)`` to ``kernel (in, out)``, as for
``torch.nn.Linear``.

The u-μP metadata of the torch parameters (``mup_type``, ``mup_scaling_depth``) is not part of a
``state_dict``; in jaxlinear it comes from the module (its ``lr_rule``, read by
:func:`jaxlinear.optim.lr_factors`).
"""

from jaxlinear.interop._linear import dense_from_torch, dense_to_torch
from jaxlinear.interop._registry import Converter, register
from jaxlinear.nn import LinearReadout, UnitScaledLinear

register(UnitScaledLinear, Converter("unit_scaling.Linear", dense_from_torch, dense_to_torch))
register(LinearReadout, Converter("unit_scaling.LinearReadout", dense_from_torch, dense_to_torch))
