"""Width parametrizations (SP, NTP, μP): init scales and learning-rate scales as Python floats.

The rules are inferno-torch's (``inferno.bnn.params``), float for float: for every ``fan_in``,
``fan_out``, ``layer_type`` and optimizer inferno accepts, each method returns the number inferno
returns (as a Python ``float``). ``fan_in``/``fan_out`` are a weight's input and output sizes; a
bias uses its weight's fans. Init scales are the **std** of a zero-mean normal; lr scales multiply
the base learning rate.

==================  =======================  ====================  ===========================
rule                Standard (SP)            NeuralTangent (NTP)   MaximalUpdate (μP)
==================  =======================  ====================  ===========================
weight std          1/√fan_in                1                     1/√fan_in (output: 1/fan_in)
bias std            1                        1                     1
SGD weight lr       1                        input 1, else         input fan_out, hidden 1,
                                             1/fan_in              output 1/fan_in
SGD bias lr         1                        1/fan_in              fan_out
Adam weight lr      1                        not defined           input 1, else 1/fan_in
Adam bias lr        1                        1/fan_in              1
==================  =======================  ====================  ===========================

Optimizer names: ``"SGD"`` and ``"Adam"`` (inferno's spellings) and the aliases users type:
``"sgd"`` -> ``"SGD"``; ``"adam"``, ``"adamw"``, ``"AdamW"`` -> ``"Adam"`` (the lr rules of an
Adam-like optimizer do not depend on how it decays weights; inferno users pass ``"Adam"`` and build
``torch.optim.AdamW`` from the groups).

Deliberate differences from inferno (its numbers are reproduced wherever it returns one):

- an unknown optimizer name raises for every parametrization, ``Standard`` included (inferno's
  ``Standard`` accepts any string; ``MaximalUpdate`` accepts only ``"SGD"``/``"Adam"``). The error
  is a :class:`UnknownOptimizerError`, which is both a ``ValueError`` and inferno's
  ``NotImplementedError``, and lists the accepted names;
- ``NeuralTangent`` has no Adam weight rule: its ``weight_lr_scale`` raises ``NotImplementedError``
  as inferno's does (so :func:`jaxlinear.optim.lr_factors` does too); its ``bias_lr_scale`` returns
  1/fan_in for Adam, as inferno's does;
- an unknown ``layer_type`` raises ``ValueError`` listing the three types (inferno's methods treat
  any unknown string as ``"hidden"``; its ``Linear`` raises ``ValueError``);
- a zero fan that inferno divides by raises :class:`ZeroFanError` (a ``ValueError`` and inferno's
  ``ZeroDivisionError``) naming the argument;
- inferno's ``NeuralTangent`` applies no ``1/√fan_in`` forward multiplier (its weights are N(0, 1)),
  so pre-activations grow like √width, unlike the NTP of the literature. jaxlinear reproduces
  inferno's numbers and names it the same.

Example:
    >>> from jaxlinear.parametrizations import MaximalUpdate
    >>> p = MaximalUpdate()
    >>> p.weight_init_scale(64, 32, "output"), p.weight_lr_scale(64, 32, "adam", "hidden")
    (0.015625, 0.015625)
"""

import math
from typing import Any, Literal

from jaxlinear._checks import check_choice, check_real

__all__ = [
    "LAYER_TYPES",
    "OPTIMIZERS",
    "LayerType",
    "MaximalUpdate",
    "NeuralTangent",
    "Parametrization",
    "Standard",
    "UnknownOptimizerError",
    "ZeroFanError",
    "canonical_optimizer",
    "get_parametrization",
    "mup_attention_scale",
    "mup_dot_product_attention",
    "mup_readout_input",
    "mup_width_mult",
    "mup_zero_init",
]

#: The type of a layer's ``layer_type`` argument, where the layer sits in the network, which selects
#: its μP rules. ``"input"`` is the first layer (from the data), ``"output"`` the readout.
LayerType = Literal["input", "hidden", "output"]
#: The accepted ``layer_type`` values, in order.
LAYER_TYPES: tuple[str, ...] = ("input", "hidden", "output")

#: The accepted optimizer names, each mapped to inferno's rule name (``"SGD"`` or ``"Adam"``).
OPTIMIZERS: dict[str, str] = {
    "SGD": "SGD",
    "sgd": "SGD",
    "Adam": "Adam",
    "adam": "Adam",
    "AdamW": "Adam",
    "adamw": "Adam",
}


class UnknownOptimizerError(ValueError, NotImplementedError):
    """An optimizer name with no lr rule: a ``ValueError`` and, like inferno's, a ``NotImplementedError``."""


class ZeroFanError(ValueError, ZeroDivisionError):
    """A zero fan where a rule divides by it: a ``ValueError`` and, like inferno's, a ``ZeroDivisionError``."""


def canonical_optimizer(optimizer: str) -> str:
    """inferno's name (``"SGD"`` or ``"Adam"``) for an accepted optimizer name.

    Args:
        optimizer: an optimizer name, one of the keys of :data:`OPTIMIZERS` (``"SGD"``, ``"sgd"``,
            ``"Adam"``, ``"adam"``, ``"AdamW"``, ``"adamw"``).

    Returns:
        ``"SGD"`` or ``"Adam"``, the rule set inferno applies for that optimizer.

    Raises:
        UnknownOptimizerError: for any other name (the message lists the accepted ones).

    Example:
        >>> canonical_optimizer("adamw")
        'Adam'
    """
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise UnknownOptimizerError(
            f"`optimizer` must be one of {tuple(OPTIMIZERS)} ('sgd' -> 'SGD'; 'adam', 'adamw', "
            f"'AdamW' -> 'Adam'), got {optimizer!r}."
        )
    return OPTIMIZERS[optimizer]


def _check_args(fan_in: object, fan_out: object, layer_type: object) -> None:
    check_real("fan_in", fan_in, min_value=0.0)
    check_real("fan_out", fan_out, min_value=0.0)
    check_choice("layer_type", layer_type, LAYER_TYPES)


def _inv(fan: float, name: str, rule: str) -> float:
    if fan == 0:
        raise ZeroFanError(f"`{name}` must be > 0 for the {rule} (it divides by {name}), got 0.")
    return 1.0 / fan


def _inv_sqrt(fan: float, name: str, rule: str) -> float:
    if fan == 0:
        raise ZeroFanError(f"`{name}` must be > 0 for the {rule} (it divides by √{name}), got 0.")
    return 1.0 / math.sqrt(fan)


class Parametrization:
    """Base class: init and lr scales of a layer from its fans, layer type and optimizer.

    Subclasses override the four methods; each returns a Python float. Parametrizations are stateless:
    two instances of the same class are equal (and hash equal), so they can be fields of Flax modules.
    ``Parametrization()`` itself has no rules (every method raises ``NotImplementedError``, as
    inferno's base class does).

    Example:
        >>> Standard() == Standard(), repr(NeuralTangent())
        (True, 'NeuralTangent()')
    """

    def weight_init_scale(self, fan_in: float, fan_out: float, layer_type: str = "hidden") -> float:
        """The std of the weight's zero-mean normal init.

        Args:
            fan_in: the weight's input size, a real number >= 0.
            fan_out: the weight's output size, a real number >= 0.
            layer_type: ``"input"``, ``"hidden"`` or ``"output"`` (:data:`LAYER_TYPES`).

        Returns:
            The std as a Python float.

        Raises:
            TypeError: if a fan is not a real number.
            ValueError: if a fan is negative or not finite, or ``layer_type`` is unknown.
            ZeroFanError: if the rule divides by a fan that is 0.
            NotImplementedError: on the base class, which has no rules.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no weight_init_scale.")

    def bias_init_scale(self, fan_in: float, fan_out: float, layer_type: str = "hidden") -> float:
        """The std of the bias's zero-mean normal init (fans are the weight's).

        Args:
            fan_in: the weight's input size, a real number >= 0.
            fan_out: the weight's output size, a real number >= 0.
            layer_type: ``"input"``, ``"hidden"`` or ``"output"`` (:data:`LAYER_TYPES`).

        Returns:
            The std as a Python float.

        Raises:
            TypeError: if a fan is not a real number.
            ValueError: if a fan is negative or not finite, or ``layer_type`` is unknown.
            NotImplementedError: on the base class, which has no rules.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no bias_init_scale.")

    def weight_lr_scale(
        self, fan_in: float, fan_out: float, optimizer: str, layer_type: str = "hidden"
    ) -> float:
        """The factor multiplying the base learning rate of the weight.

        Args:
            fan_in: the weight's input size, a real number >= 0.
            fan_out: the weight's output size, a real number >= 0.
            optimizer: an optimizer name of :data:`OPTIMIZERS` (``"sgd"``, ``"adam"``, ...).
            layer_type: ``"input"``, ``"hidden"`` or ``"output"`` (:data:`LAYER_TYPES`).

        Returns:
            The factor as a Python float.

        Raises:
            TypeError: if a fan is not a real number.
            ValueError: if a fan is negative or not finite, or ``layer_type`` is unknown.
            UnknownOptimizerError: if ``optimizer`` is not in :data:`OPTIMIZERS`.
            ZeroFanError: if the rule divides by a fan that is 0.
            NotImplementedError: if the parametrization has no rule for the optimizer
                (:class:`NeuralTangent` with Adam), and on the base class.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no weight_lr_scale.")

    def bias_lr_scale(
        self, fan_in: float, fan_out: float, optimizer: str, layer_type: str = "hidden"
    ) -> float:
        """The factor multiplying the base learning rate of the bias (fans are the weight's).

        Args:
            fan_in: the weight's input size, a real number >= 0.
            fan_out: the weight's output size, a real number >= 0.
            optimizer: an optimizer name of :data:`OPTIMIZERS` (``"sgd"``, ``"adam"``, ...).
            layer_type: ``"input"``, ``"hidden"`` or ``"output"`` (:data:`LAYER_TYPES`).

        Returns:
            The factor as a Python float.

        Raises:
            TypeError: if a fan is not a real number.
            ValueError: if a fan is negative or not finite, or ``layer_type`` is unknown.
            UnknownOptimizerError: if ``optimizer`` is not in :data:`OPTIMIZERS`.
            ZeroFanError: if the rule divides by a fan that is 0.
            NotImplementedError: on the base class, which has no rules.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no bias_lr_scale.")

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self).__qualname__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Standard(Parametrization):
    """Standard parametrization (SP): weight std 1/√fan_in, bias std 1, every lr scale 1.

    The bias std is 1, as in inferno (not torch's U(±1/√fan_in)).

    Example:
        >>> sp = Standard()
        >>> sp.weight_init_scale(16, 8), sp.bias_init_scale(16, 8), sp.weight_lr_scale(16, 8, "sgd")
        (0.25, 1.0, 1.0)
    """

    def weight_init_scale(self, fan_in: float, fan_out: float, layer_type: str = "hidden") -> float:
        _check_args(fan_in, fan_out, layer_type)
        return _inv_sqrt(fan_in, "fan_in", "Standard weight init")

    def bias_init_scale(self, fan_in: float, fan_out: float, layer_type: str = "hidden") -> float:
        _check_args(fan_in, fan_out, layer_type)
        return 1.0

    def weight_lr_scale(
        self, fan_in: float, fan_out: float, optimizer: str, layer_type: str = "hidden"
    ) -> float:
        _check_args(fan_in, fan_out, layer_type)
        canonical_optimizer(optimizer)
        return 1.0

    def bias_lr_scale(
        self, fan_in: float, fan_out: float, optimizer: str, layer_type: str = "hidden"
    ) -> float:
        _check_args(fan_in, fan_out, layer_type)
        canonical_optimizer(optimizer)
        return 1.0


class NeuralTangent(Parametrization):
    """inferno's neural tangent parametrization: N(0, 1) weights and biases, SGD lr rules only.

    SGD weight lr: 1 for input layers, 1/fan_in otherwise; bias lr 1/fan_in. inferno applies no
    ``1/√fan_in`` forward multiplier, so outputs grow like √width (this class reproduces inferno, not
    the textbook NTP). Adam has no weight rule: ``weight_lr_scale`` raises ``NotImplementedError``
    (``bias_lr_scale`` returns 1/fan_in for any accepted optimizer, as inferno's does).

    Example:
        >>> ntp = NeuralTangent()
        >>> ntp.weight_init_scale(64, 8), ntp.weight_lr_scale(64, 8, "SGD"), ntp.bias_lr_scale(64, 8, "SGD")
        (1.0, 0.015625, 0.015625)
    """

    def weight_init_scale(self, fan_in: float, fan_out: float, layer_type: str = "hidden") -> float:
        _check_args(fan_in, fan_out, layer_type)
        return 1.0

    def bias_init_scale(self, fan_in: float, fan_out: float, layer_type: str = "hidden") -> float:
        _check_args(fan_in, fan_out, layer_type)
        return 1.0

    @staticmethod
    def _check_sgd(optimizer: str) -> None:
        if canonical_optimizer(optimizer) != "SGD":
            raise NotImplementedError(
                f"NeuralTangent defines learning-rate scales for SGD only ('SGD' or 'sgd'), got "
                f"optimizer {optimizer!r}; use MaximalUpdate() or Standard() with Adam."
            )

    def weight_lr_scale(
        self, fan_in: float, fan_out: float, optimizer: str, layer_type: str = "hidden"
    ) -> float:
        _check_args(fan_in, fan_out, layer_type)
        self._check_sgd(optimizer)
        if layer_type == "input":
            return 1.0
        return _inv(fan_in, "fan_in", "NeuralTangent SGD weight lr")

    def bias_lr_scale(
        self, fan_in: float, fan_out: float, optimizer: str, layer_type: str = "hidden"
    ) -> float:
        _check_args(fan_in, fan_out, layer_type)
        canonical_optimizer(optimizer)
        return _inv(fan_in, "fan_in", "NeuralTangent bias lr")


class MaximalUpdate(Parametrization):
    """Maximal update parametrization (μP), inferno's rules (the default of ``inferno.bnn.Linear``).

    Weight std 1/√fan_in (input, hidden) and 1/fan_in (output); bias std 1. SGD lr: weight
    fan_out / 1 / 1/fan_in (input / hidden / output), bias fan_out. Adam lr: weight 1 (input) or
    1/fan_in (hidden, output), bias 1. No forward multiplier (unlike Microsoft mup's ``MuReadout``).

    Example:
        >>> mup = MaximalUpdate()
        >>> mup.weight_lr_scale(8, 64, "sgd", "input"), mup.bias_lr_scale(64, 4, "SGD", "output")
        (64.0, 4.0)
    """

    def weight_init_scale(self, fan_in: float, fan_out: float, layer_type: str = "hidden") -> float:
        _check_args(fan_in, fan_out, layer_type)
        if layer_type == "output":
            return _inv(fan_in, "fan_in", "MaximalUpdate output weight init")
        return _inv_sqrt(fan_in, "fan_in", "MaximalUpdate weight init")

    def bias_init_scale(self, fan_in: float, fan_out: float, layer_type: str = "hidden") -> float:
        _check_args(fan_in, fan_out, layer_type)
        return 1.0

    def weight_lr_scale(
        self, fan_in: float, fan_out: float, optimizer: str, layer_type: str = "hidden"
    ) -> float:
        _check_args(fan_in, fan_out, layer_type)
        if canonical_optimizer(optimizer) == "SGD":
            if layer_type == "input":
                return float(fan_out)
            if layer_type == "output":
                return _inv(fan_in, "fan_in", "MaximalUpdate SGD output weight lr")
            return 1.0
        if layer_type == "input":
            return 1.0
        return _inv(fan_in, "fan_in", "MaximalUpdate Adam weight lr")

    def bias_lr_scale(
        self, fan_in: float, fan_out: float, optimizer: str, layer_type: str = "hidden"
    ) -> float:
        _check_args(fan_in, fan_out, layer_type)
        if canonical_optimizer(optimizer) == "SGD":
            return float(fan_out)
        return 1.0


_BY_NAME: dict[str, type[Parametrization]] = {
    "standard": Standard,
    "sp": Standard,
    "neural_tangent": NeuralTangent,
    "ntp": NeuralTangent,
    "maximal_update": MaximalUpdate,
    "mup": MaximalUpdate,
}


def get_parametrization(parametrization: Parametrization | str) -> Parametrization:
    """A parametrization instance from an instance or a name (``"sp"``, ``"ntp"``, ``"mup"``, ...).

    Args:
        parametrization: a :class:`Parametrization` instance (returned as is) or one of the names
            ``"standard"``/``"sp"``, ``"neural_tangent"``/``"ntp"``, ``"maximal_update"``/``"mup"``.

    Returns:
        The :class:`Parametrization` instance.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything that is neither (e.g. the class ``MaximalUpdate`` instead of an
            instance ``MaximalUpdate()``).

    Example:
        >>> get_parametrization("mup")
        MaximalUpdate()
    """
    if isinstance(parametrization, Parametrization):
        return parametrization
    if isinstance(parametrization, str):
        check_choice("parametrization", parametrization, _BY_NAME)
        return _BY_NAME[parametrization]()
    if isinstance(parametrization, type) and issubclass(parametrization, Parametrization):
        raise TypeError(
            f"`parametrization` must be an instance, e.g. {parametrization.__name__}(), got the "
            f"class {parametrization.__name__}."
        )
    raise TypeError(
        "`parametrization` must be a jaxlinear.parametrizations.Parametrization instance "
        f"(Standard(), NeuralTangent(), MaximalUpdate()) or one of {tuple(_BY_NAME)}, got "
        f"{type(parametrization).__name__} {parametrization!r}."
    )


def mup_width_mult(fan_in: int, base_fan_in: int) -> float:
    """Microsoft mup's width multiplier of a readout: ``fan_in / base_fan_in`` (1.0 when equal).

    Args:
        fan_in: the readout's input width in this model, a real number >= 0.
        base_fan_in: the readout's input width in the base model (mup's ``set_base_shapes``), a real
            number >= 0; > 0 unless it equals ``fan_in``.

    Returns:
        The width multiplier as a Python float.

    Raises:
        TypeError: if a fan is not a real number (a bool, a string).
        ValueError: if a fan is negative or not finite, or ``base_fan_in`` is 0 while ``fan_in`` is not.

    Example:
        >>> mup_width_mult(256, 64)
        4.0
    """
    check_real("fan_in", fan_in, min_value=0.0)
    check_real("base_fan_in", base_fan_in, min_value=0.0)
    if fan_in == base_fan_in:
        return 1.0
    return fan_in / _check_positive_base(base_fan_in)


def _check_positive_base(base: float) -> float:
    if base == 0:
        raise ValueError("`base_fan_in` must be > 0 (the readout's input width in the base model).")
    return base


def mup_readout_input(x: Any, width_mult: float, output_mult: float = 1.0) -> Any:
    """The input of mup's ``MuReadout`` matmul: ``output_mult * x / width_mult``, as mup computes it.

    ``MuReadout(x) = F.linear(output_mult * x / width_mult, W, b)``: apply this before a plain
    (``parametrization=None``) :class:`jaxlinear.Linear` to get mup's readout. The two Python floats keep
    the dtype of ``x`` and the operations are mup's (multiply, then divide), so the result is
    bit-identical to torch's.

    Args:
        x: the readout's input, an array of shape ``(..., fan_in)`` (any floating dtype).
        width_mult: the readout's width multiplier (:func:`mup_width_mult`), a finite float > 0.
        output_mult: mup's ``output_mult`` of the readout, a finite float.

    Returns:
        ``output_mult * x / width_mult``, an array like ``x`` (same shape and dtype).

    Raises:
        TypeError: if ``width_mult`` or ``output_mult`` is not a real number.
        ValueError: if ``width_mult`` is not finite and > 0, or ``output_mult`` is not finite.

    Example:
        >>> import jax.numpy as jnp
        >>> mup_readout_input(jnp.ones(2), mup_width_mult(256, 64), output_mult=2.0).tolist()
        [0.5, 0.5]
    """
    check_real("width_mult", width_mult, min_value=0.0, strict=True)
    check_real("output_mult", output_mult)
    return output_mult * x / float(width_mult)


def mup_attention_scale(head_dim: int, attn_mult: float = 1.0) -> float:
    """μP's attention-logit scale ``attn_mult / head_dim`` (standard attention uses ``1/√head_dim``).

    Under μP, query and key become correlated as they train, so ``q·k`` grows like ``head_dim``, not
    ``√head_dim``: μP divides the logits by ``head_dim`` (Yang et al. 2022, Microsoft mup's examples use
    ``attn_mult / d``). ``attn_mult`` is a tunable constant; ``attn_mult = √head_dim`` of the base model
    gives the standard scale there.

    Args:
        head_dim: the dimension of one head's query/key, an int > 0.
        attn_mult: the constant multiplier, a finite float > 0.

    Returns:
        ``attn_mult / head_dim`` as a Python float.

    Raises:
        TypeError: if an argument is not a real number.
        ValueError: if ``head_dim`` or ``attn_mult`` is not finite and > 0.

    Example:
        >>> mup_attention_scale(64), mup_attention_scale(64, attn_mult=8.0)
        (0.015625, 0.125)
    """
    check_real("head_dim", head_dim, min_value=0.0, strict=True)
    check_real("attn_mult", attn_mult, min_value=0.0, strict=True)
    return float(attn_mult) / float(head_dim)


def mup_dot_product_attention(
    query: Any, key: Any, value: Any, *args: Any, attn_mult: float = 1.0, **kwargs: Any
) -> Any:
    """``flax.linen.dot_product_attention`` with μP's logit scale ``attn_mult / head_dim``.

    A drop-in ``attention_fn`` (e.g. ``nn.MultiHeadDotProductAttention(attention_fn=...)``) or a call in a
    hand-written attention: the query is multiplied by ``attn_mult / √head_dim`` before Flax's own
    ``1/√head_dim``, so the logits are ``attn_mult · q·k / head_dim`` (:func:`mup_attention_scale`).

    Args:
        query: ``(..., q_len, heads, head_dim)``.
        key: ``(..., kv_len, heads, head_dim)``.
        value: ``(..., kv_len, heads, v_dim)``.
        *args: further positional arguments of ``flax.linen.dot_product_attention`` (``bias``, ``mask``).
        attn_mult: the constant multiplier of :func:`mup_attention_scale`, a finite float > 0.
        **kwargs: keyword arguments of ``flax.linen.dot_product_attention``.

    Returns:
        The attention output ``(..., q_len, heads, v_dim)``.

    Raises:
        TypeError, ValueError: as :func:`mup_attention_scale` for ``attn_mult``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> q = k = v = jax.random.normal(jax.random.key(0), (2, 5, 2, 8))
        >>> mup_dot_product_attention(q, k, v).shape
        (2, 5, 2, 8)
    """
    import flax.linen as nn

    head_dim = query.shape[-1]
    scale = mup_attention_scale(head_dim, attn_mult) * math.sqrt(head_dim)
    return nn.dot_product_attention(query * scale, key, value, *args, **kwargs)


def mup_zero_init(variables: Any, *paths: str) -> Any:
    """``variables`` with every param of the layers at ``paths`` set to zero (μP's zero init).

    μP's recipe zero-initialises the readout (mup's ``MuReadout(readout_zero_init=True)`` zeroes its
    weight and bias) and the attention query (so attention starts uniform at every width). A layer with
    a ``parametrization`` draws its own init, so zero it after ``model.init``.

    Args:
        variables: the model's variables (a dict with ``"params"``) or its params.
        *paths: the layers to zero, as ``"block/q"`` paths in the params tree (one or more).

    Returns:
        A new tree like ``variables``, the params under each path replaced by zeros of the same shape
        and dtype (the input is not modified).

    Raises:
        ValueError: if no path is given, or a path is not in the params.

    Example:
        >>> import jax.numpy as jnp
        >>> v = {"params": {"head": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}}}
        >>> mup_zero_init(v, "head")["params"]["head"]["kernel"].sum().item()
        0.0
    """
    import jax
    import jax.numpy as jnp

    if not paths:
        raise ValueError("`paths` must name at least one layer to zero, e.g. 'head'.")
    has_params = isinstance(variables, dict) and "params" in variables
    params = variables["params"] if has_params else variables

    def rebuild(node: Any, keys: list[str], where: str) -> Any:
        if not keys:
            return jax.tree.map(jnp.zeros_like, node)
        if not hasattr(node, "keys") or keys[0] not in node:
            raise ValueError(
                f"`paths` must name layers of the params, got {where!r} (no such entry)."
            )
        return {**node, keys[0]: rebuild(node[keys[0]], keys[1:], where)}

    for path in paths:
        if not isinstance(path, str) or not path.strip("/"):
            raise ValueError(f"`paths` must be non-empty strings like 'block/q', got {path!r}.")
        params = rebuild(params, path.strip("/").split("/"), path)
    return {**variables, "params": params} if has_params else params
