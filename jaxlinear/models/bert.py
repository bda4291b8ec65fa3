"""A BERT encoder in Flax, laid out as Hugging Face's ``transformers.BertModel``.

Built from ``jl.Linear``, ``flax.linen.Embed`` and ``flax.linen.LayerNorm``, with the submodules named as
in ``BertModel.state_dict()`` (``embeddings/word_embeddings``, ``encoder/layer_0/attention/self/query``,
..., ``pooler/dense``), so :func:`jaxlinear.interop.from_torch` ports a ``BertModel`` (or its weights
file) in one call, by name, and :func:`jaxlinear.interop.to_torch` writes its ``state_dict`` back.
The numbers are ``BertModel``'s in eval mode: absolute position embeddings, exact (erf) GELU, a padding
mask added as ``finfo.min`` to the attention scores, two-pass LayerNorm variance.
"""

import dataclasses
import json
import pathlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlinear._checks import check_positive_int
from jaxlinear.nn import Linear

__all__ = ["Bert", "BertConfig", "BertOutput", "sentence_embedding"]


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The hyperparameters of a BERT encoder, with ``transformers.BertConfig``'s names.

    The defaults are BERT-base's (as ``transformers.BertConfig()``); :meth:`from_hf` reads a
    Hugging Face config.

    Attributes:
        vocab_size: number of token ids.
        hidden_size: width of the hidden states.
        num_hidden_layers: number of encoder layers.
        num_attention_heads: attention heads per layer (``hidden_size`` must be a multiple).
        intermediate_size: width of the feed-forward layer.
        max_position_embeddings: the longest sequence.
        type_vocab_size: number of token types (segments).
        layer_norm_eps: the LayerNorms' epsilon (``1e-12`` in BERT).
        hidden_dropout_prob: dropout after the embeddings and each sublayer (training only).
        attention_probs_dropout_prob: dropout on the attention probabilities (training only).
        add_pooling_layer: whether the model has the pooler (``dense`` + tanh on the first token).

    Example:
        >>> BertConfig(hidden_size=32, num_attention_heads=4).head_size
        8
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    add_pooling_layer: bool = True

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            check_positive_int(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"`hidden_size` must be a multiple of `num_attention_heads`, got "
                f"{self.hidden_size} and {self.num_attention_heads}."
            )
        if not self.layer_norm_eps > 0:
            raise ValueError(f"`layer_norm_eps` must be > 0, got {self.layer_norm_eps!r}.")

    @property
    def head_size(self) -> int:
        """``hidden_size // num_attention_heads``."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf(cls, config: Any, *, add_pooling_layer: bool = True) -> "BertConfig":
        """The config of a Hugging Face BERT: a ``transformers.BertConfig``, its ``to_dict()``, or the
        path of a ``config.json`` (or of the folder holding it).

        Args:
            config: the Hugging Face config (an object with ``to_dict()``, a mapping, or a path).
            add_pooling_layer: as ``BertModel``'s argument of that name.

        Returns:
            The :class:`BertConfig` (keys it does not know are ignored).

        Raises:
            TypeError: if ``config`` is none of those.
            ValueError: if the config is not BERT's (``model_type``, ``hidden_act``,
                ``position_embedding_type`` other than ``"bert"``, ``"gelu"``, ``"absolute"``).

        Example:
            >>> BertConfig.from_hf({"hidden_size": 384, "num_hidden_layers": 6}).hidden_size
            384
        """
        if isinstance(config, str | pathlib.Path):
            path = pathlib.Path(config)
            path = path / "config.json" if path.is_dir() else path
            config = json.loads(path.read_text())
        elif callable(getattr(config, "to_dict", None)):
            config = config.to_dict()
        if not isinstance(config, Mapping):
            raise TypeError(
                "`config` must be a transformers BertConfig, a mapping or the path of a "
                f"config.json, got {type(config).__name__}."
            )
        for key, want in (
            ("model_type", "bert"),
            ("hidden_act", "gelu"),
            ("position_embedding_type", "absolute"),
        ):
            if config.get(key, want) != want:
                raise ValueError(f"`config['{key}']` must be {want!r}, got {config[key]!r}.")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in config.items() if k in names}
        return cls(**{**kwargs, "add_pooling_layer": add_pooling_layer})


class BertOutput(NamedTuple):
    """What :class:`Bert` returns (``BertModel``'s first two outputs).

    Attributes:
        last_hidden_state: ``(batch, length, hidden_size)``.
        pooler_output: ``(batch, hidden_size)``, ``tanh(dense(first token))``; ``None`` without
            the pooler.
    """

    last_hidden_state: jax.Array
    pooler_output: jax.Array | None


class _SelfAttention(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array, deterministic: bool) -> jax.Array:
        c = self.config
        heads = (*x.shape[:-1], c.num_attention_heads, c.head_size)
        q = Linear(c.hidden_size, name="query")(x).reshape(heads)
        k = Linear(c.hidden_size, name="key")(x).reshape(heads)
        v = Linear(c.hidden_size, name="value")(x).reshape(heads)
        scores = jnp.einsum("...qhd,...khd->...hqk", q, k) / jnp.sqrt(
            jnp.asarray(c.head_size, q.dtype)
        )
        probs = jax.nn.softmax(scores + bias, axis=-1)
        probs = nn.Dropout(c.attention_probs_dropout_prob)(probs, deterministic=deterministic)
        out = jnp.einsum("...hqk,...khd->...qhd", probs, v)
        return out.reshape(x.shape)


class _DenseNorm(nn.Module):
    """``LayerNorm(dropout(dense(x)) + residual)``: BertSelfOutput and BertOutput."""

    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, residual: jax.Array, deterministic: bool) -> jax.Array:
        c = self.config
        h = Linear(c.hidden_size, name="dense")(x)
        h = nn.Dropout(c.hidden_dropout_prob)(h, deterministic=deterministic)
        return _layer_norm(c, "LayerNorm")(h + residual)


class _Attention(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array, deterministic: bool) -> jax.Array:
        h = _SelfAttention(self.config, name="self")(x, bias, deterministic)
        return _DenseNorm(self.config, name="output")(h, x, deterministic)


class _Intermediate(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = Linear(self.config.intermediate_size, name="dense")(x)
        return nn.gelu(h, approximate=False)


class _Layer(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array, deterministic: bool) -> jax.Array:
        h = _Attention(self.config, name="attention")(x, bias, deterministic)
        inner = _Intermediate(self.config, name="intermediate")(h)
        return _DenseNorm(self.config, name="output")(inner, h, deterministic)


class _Encoder(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array, deterministic: bool) -> jax.Array:
        for i in range(self.config.num_hidden_layers):  # layer_{i} <-> torch's layer.{i}
            x = _Layer(self.config, name=f"layer_{i}")(x, bias, deterministic)
        return x


class _Embeddings(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(
        self, input_ids: jax.Array, token_type_ids: jax.Array, deterministic: bool
    ) -> jax.Array:
        c = self.config
        positions = jnp.broadcast_to(jnp.arange(input_ids.shape[-1]), input_ids.shape)
        x = nn.Embed(c.vocab_size, c.hidden_size, name="word_embeddings")(input_ids)
        x = x + nn.Embed(c.type_vocab_size, c.hidden_size, name="token_type_embeddings")(
            token_type_ids
        )
        x = x + nn.Embed(c.max_position_embeddings, c.hidden_size, name="position_embeddings")(
            positions
        )
        x = _layer_norm(c, "LayerNorm")(x)
        return nn.Dropout(c.hidden_dropout_prob)(x, deterministic=deterministic)


class _Pooler(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.tanh(Linear(self.config.hidden_size, name="dense")(x[..., 0, :]))


def _layer_norm(config: BertConfig, name: str) -> nn.LayerNorm:
    # torch's LayerNorm computes the variance in two passes
    return nn.LayerNorm(epsilon=config.layer_norm_eps, use_fast_variance=False, name=name)


class Bert(nn.Module):
    """A BERT encoder (``transformers.BertModel``) of :class:`jaxlinear.Linear`, ``nn.Embed`` and
    ``nn.LayerNorm`` layers, with ``BertModel``'s parameter names.

    ``model.apply(variables, input_ids, attention_mask, token_type_ids)`` returns a
    :class:`BertOutput`. Port pretrained weights with
    ``jl.interop.from_torch(model, bert_model_or_state_dict)``; the sentence embedding of a
    sentence-transformers model is :func:`sentence_embedding` of the last hidden state.

    Attributes:
        config: the :class:`BertConfig`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
        ...                     num_attention_heads=2, intermediate_size=32)
        >>> model = Bert(config)
        >>> ids = jnp.array([[2, 7, 9, 0]])
        >>> variables = model.init(jax.random.key(0), ids)
        >>> out = model.apply(variables, ids, jnp.array([[1, 1, 1, 0]]))
        >>> out.last_hidden_state.shape, out.pooler_output.shape
        ((1, 4, 16), (1, 16))
    """

    config: BertConfig

    @nn.compact
    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
    ) -> BertOutput:
        """Encode token ids.

        Args:
            input_ids: integer token ids ``(batch, length)``.
            attention_mask: 1 for tokens to attend to, 0 for padding, ``(batch, length)``;
                default all ones.
            token_type_ids: segment ids ``(batch, length)``; default zeros.
            deterministic: ``False`` applies dropout (needs a ``"dropout"`` rng).

        Returns:
            A :class:`BertOutput`.
        """
        c = self.config
        input_ids = jnp.asarray(input_ids)
        if not jnp.issubdtype(input_ids.dtype, jnp.integer) or input_ids.ndim < 1:
            raise ValueError(
                f"`input_ids` must be integer token ids (batch, length), got {input_ids.dtype} "
                f"{input_ids.shape}."
            )
        if input_ids.shape[-1] > c.max_position_embeddings:
            raise ValueError(
                f"`input_ids` must be at most max_position_embeddings={c.max_position_embeddings} "
                f"long, got {input_ids.shape[-1]}."
            )
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        if attention_mask is None:
            attention_mask = jnp.ones(input_ids.shape, jnp.float32)
        x = _Embeddings(c, name="embeddings")(input_ids, jnp.asarray(token_type_ids), deterministic)
        mask = jnp.asarray(attention_mask).astype(x.dtype)
        bias = (1.0 - mask)[..., None, None, :] * jnp.finfo(x.dtype).min  # (batch, 1, 1, keys)
        x = _Encoder(c, name="encoder")(x, bias, deterministic)
        pooled = None
        if c.add_pooling_layer:
            pooled = _Pooler(c, name="pooler")(x)
        return BertOutput(x, pooled)


def sentence_embedding(
    last_hidden_state: jax.Array, attention_mask: jax.Array, *, normalize: bool = True
) -> jax.Array:
    """Mean of the hidden states over the attended tokens, then L2-normalised: the sentence embedding
    of sentence-transformers' ``Pooling(pooling_mode_mean_tokens=True)`` + ``Normalize()``.

    Args:
        last_hidden_state: ``(batch, length, hidden)``.
        attention_mask: ``(batch, length)``, 1 for tokens, 0 for padding.
        normalize: whether to divide by the L2 norm (``max(norm, 1e-12)``, as
            ``torch.nn.functional.normalize``).

    Returns:
        ``(batch, hidden)`` embeddings.

    Example:
        >>> import jax.numpy as jnp
        >>> h = jnp.array([[[3.0, 0.0], [0.0, 4.0], [9.0, 9.0]]])
        >>> sentence_embedding(h, jnp.array([[1, 1, 0]]), normalize=False).tolist()
        [[1.5, 2.0]]
    """
    mask = jnp.asarray(attention_mask).astype(last_hidden_state.dtype)[..., None]
    summed = jnp.sum(last_hidden_state * mask, axis=-2)
    pooled = summed / jnp.maximum(jnp.sum(mask, axis=-2), 1e-9)
    if not normalize:
        return pooled
    norm = jnp.linalg.norm(pooled, axis=-1, keepdims=True)
    return pooled / jnp.maximum(norm, 1e-12)
