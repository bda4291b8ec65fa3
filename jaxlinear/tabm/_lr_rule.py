"""The learning-rate rule of the tabm layers (:func:`jaxlinear.optim.lr_factors` reads it).

tabm and rtdl_num_embeddings initialise their layers as torch does and train them with one torch
optimizer over all parameters (``torch.optim.AdamW(model.parameters(), ...)``): every parameter takes
the base learning rate and weight decay, the rule of a :class:`jaxlinear.Linear` with
``parametrization=None``. A layer given a parametrization (:class:`~jaxlinear.tabm.LinearEnsemble`)
follows it as :class:`jaxlinear.NLinear` does, member by member.
"""

from collections.abc import Mapping

import flax.linen as nn

from jaxlinear.layers import LrRule, parametrization_lr_rule

__all__ = ["TabmLrRule"]


class TabmLrRule(nn.Module):
    """Base of the tabm layers with params: their :meth:`lr_rule` (factor 1 without a parametrization)."""

    def lr_rule(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        optimizer: str,
        *,
        depth: int | None = None,
        readout_constraint: str | None = None,
    ) -> LrRule:
        """This layer's learning-rate rule: ``{param name: (lr factor, weight-decay factor)}``.

        Without a ``parametrization`` (every tabm layer but a :class:`LinearEnsemble` given one),
        factor 1 for every param, learning rate and weight decay: the rule of a
        :class:`jaxlinear.Linear` without one (torch's plain optimizer, as tabm trains). With one, the
        rule of :meth:`jaxlinear.NLinear.lr_rule` for fans ``shapes["kernel"][-2:]`` (one member).

        Args:
            shapes: the shape of each param by name.
            optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"`` (inferno's spellings too).
            depth: must be None: only unit-scaled layers have a depth rule.
            readout_constraint: ignored (a u-μP notion; accepted so every layer's rule has one
                signature).

        Returns:
            ``{param name: (lr factor, weight-decay factor)}`` for every name of ``shapes``, as
            Python floats; the weight-decay factor is always 1.

        Raises:
            ValueError: for a ``depth``, an unknown optimizer, or a zero fan the rule divides by.
            NotImplementedError: where inferno raises (``NeuralTangent`` with Adam).

        Example:
            >>> import jaxlinear as jl
            >>> jl.tabm.ElementwiseAffine((4, 3), use_bias=False, scaling_init="ones").lr_rule(
            ...     {"scale": (4, 3)}, "adam")
            {'scale': (1.0, 1.0)}
            >>> jl.tabm.LinearEnsemble(8, k=4, parametrization="mup").lr_rule(
            ...     {"kernel": (4, 64, 8), "bias": (4, 8)}, "adam")
            {'kernel': (0.015625, 1.0), 'bias': (1.0, 1.0)}
        """
        del readout_constraint
        parametrization = getattr(self, "parametrization", None)
        fans = (0, 0) if parametrization is None else shapes["kernel"][-2:]
        return parametrization_lr_rule(
            parametrization,
            (int(fans[0]), int(fans[1])),
            tuple(shapes),
            optimizer,
            getattr(self, "layer_type", "hidden"),
            depth,
            f"the {type(self).__name__} {self.name!r}",
        )
