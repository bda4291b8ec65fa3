"""tabm 0.0.3 / rtdl_num_embeddings 0.0.12 <-> :mod:`jaxlinear.tabm`: every layer, embedding, backbone
and ``TabM`` itself, so ``from_torch(model, torch_tabm)`` ports a whole torch TabM in one call.

Layouts: ``LinearBatchEnsemble.weight`` and ``nn.Linear.weight`` are ``(out, in)`` (transposed to the
``(in, out)`` kernel); ``LinearEnsemble`` / ``_NLinear`` weights are ``(k, in, out)`` as in jaxlinear;
elementwise weights keep their shape (``ElementwiseAffine.weight`` is ``scale``, the embeddings'
``weight`` is ``kernel``). The piecewise-linear encoding's buffers (``impl.*``) are not params: they
are checked against the module's ``bins`` on import and written from them on export.
"""

from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxlinear._typing import PyTree
from jaxlinear.interop._arrays import check_keys, layer_params, to_numpy
from jaxlinear.interop._registry import Converter, converter_for, register
from jaxlinear.nn import Linear
from jaxlinear.tabm import (
    ElementwiseAffine,
    LinearBatchEnsemble,
    LinearEmbeddings,
    LinearEnsemble,
    LinearReLUEmbeddings,
    MLPBackbone,
    MLPBackboneBatchEnsemble,
    MLPBackboneEnsemble,
    MLPBackboneMiniEnsemble,
    PeriodicEmbeddings,
    PiecewiseLinearEmbeddings,
    TabM,
)
from jaxlinear.tabm._piecewise_linear import ple_constants
from jaxlinear.tabm._tabm import tabm_backbone, tabm_output

Params = dict[str, Any]
# (torch key, flax param, to flax (transposed or not), expected torch shape with None for free dims)
Leaf = tuple[str, str, bool, tuple[int | None, ...]]


def _leaf_from(module: Any, sd: Mapping[str, Any], leaves: list[Leaf], owner: str) -> Params:
    check_keys(sd, [t for t, *_ in leaves], [], owner)
    params: Params = {}
    for torch_key, name, transpose, shape in leaves:
        value = to_numpy(sd[torch_key])
        if value.ndim != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, value.shape, strict=True)
        ):
            want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
            raise ValueError(
                f"`state_dict['{torch_key}']` for {owner} must have shape {want}, got {value.shape}."
            )
        params[name] = jnp.asarray(value.T if transpose else value, module.param_dtype)
    return {"params": params}


def _leaf_to(variables: PyTree, leaves: list[Leaf], owner: str) -> dict[str, np.ndarray]:
    params = layer_params(variables)
    names = [n for _, n, *_ in leaves]
    if sorted(params) != sorted(names):
        raise ValueError(
            f"`variables['params']` for {owner} must have params {sorted(names)}, got "
            f"{sorted(params)}."
        )
    out = {}
    for torch_key, name, transpose, shape in leaves:
        value = np.array(params[name])
        value = value.T if transpose else value
        if value.ndim != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, value.shape, strict=True)
        ):
            raise ValueError(
                f"`variables['params']['{name}']` for {owner} has shape {np.shape(params[name])}, "
                f"which does not fit torch's {torch_key} {shape}."
            )
        out[torch_key] = value
    return out


def _leaf(leaves: Callable[[Any], list[Leaf]], owner: Callable[[Any], str], torch_name: str):
    return Converter(
        torch_name,
        lambda m, sd: _leaf_from(m, sd, leaves(m), owner(m)),
        lambda m, v: _leaf_to(v, leaves(m), owner(m)),
    )


def _under(sd: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    start = prefix + "."
    return {k[len(start) :]: v for k, v in sd.items() if k.startswith(start)}


# (flax submodule name, torch prefix, the unbound submodule that converts it)
Child = tuple[str, str, Any]


def _composite(children: Callable[[Any, Any], list[Child]], torch_name: str) -> Converter:
    """A converter delegating to each child's converter under its torch prefix.

    ``children(module, source)`` lists the children; ``source`` is the state_dict (import) or the
    params (export), for children whose config depends on a shape.
    """

    def from_torch(module: Any, sd: Mapping[str, Any]) -> PyTree:
        kids = children(module, sd)
        prefixes = [p + "." for _, p, _ in kids]
        stray = sorted(k for k in sd if not any(k.startswith(p) for p in prefixes))
        if stray:
            raise KeyError(
                f"`state_dict` for {type(module).__name__} has unexpected keys {stray} (expected "
                f"keys under {[p for _, p, _ in kids]})."
            )
        params = {}
        for name, prefix, child in kids:
            converter = converter_for(child)
            assert converter is not None
            params[name] = converter.from_torch(child, _under(sd, prefix))["params"]
        return {"params": params}

    def to_torch(module: Any, variables: PyTree) -> dict[str, np.ndarray]:
        params = layer_params(variables)
        kids = children(module, params)
        expected = sorted(n for n, _, _ in kids)
        if sorted(params) != expected:
            raise ValueError(
                f"`variables['params']` for {type(module).__name__} must have {expected}, got "
                f"{sorted(params)}."
            )
        out: dict[str, np.ndarray] = {}
        for name, prefix, child in kids:
            converter = converter_for(child)
            assert converter is not None
            for key, value in converter.to_torch(child, {"params": params[name]}).items():
                out[f"{prefix}.{key}"] = value
        return out

    return Converter(torch_name, from_torch, to_torch)


# ---- layers ---------------------------------------------------------------------------------------


def _ensemble_leaves(m: LinearEnsemble) -> list[Leaf]:
    leaves: list[Leaf] = [("weight", "kernel", False, (m.k, None, m.features))]
    return leaves + ([("bias", "bias", False, (m.k, m.features))] if m.use_bias else [])


def _batch_ensemble_leaves(m: LinearBatchEnsemble) -> list[Leaf]:
    k, f = m.k, m.features
    leaves: list[Leaf] = [
        ("weight", "kernel", True, (f, None)),
        ("r", "r", False, (k, None)),
        ("s", "s", False, (k, f)),
    ]
    return leaves + ([("bias", "bias", False, (k, f))] if m.use_bias else [])


def _affine_leaves(m: ElementwiseAffine) -> list[Leaf]:
    shape: tuple[int | None, ...] = tuple(m.shape)
    leaves: list[Leaf] = [("weight", "scale", False, shape)]
    return leaves + ([("bias", "bias", False, shape)] if m.use_bias else [])


def _embeddings_leaves(m: LinearEmbeddings) -> list[Leaf]:
    shape = (m.n_features, m.d_embedding)
    return [("weight", "kernel", False, shape), ("bias", "bias", False, shape)]


def _periodic_leaves(m: PeriodicEmbeddings) -> list[Leaf]:
    n, f2, d = m.n_features, 2 * m.n_frequencies, m.d_embedding
    leaves: list[Leaf] = [("periodic.weight", "periodic/kernel", False, (n, m.n_frequencies))]
    if m.lite:
        leaves += [
            ("linear.weight", "linear/kernel", True, (d, f2)),
            ("linear.bias", "linear/bias", False, (d,)),
        ]
    else:
        leaves += [
            ("linear.weight", "linear/kernel", False, (n, f2, d)),
            ("linear.bias", "linear/bias", False, (n, d)),
        ]
    return leaves


def _nest(flat: PyTree) -> PyTree:
    out: dict[str, Any] = {}
    for path, value in flat["params"].items():
        node = out
        *head, last = path.split("/")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = value
    return {"params": out}


def _flat(variables: PyTree) -> PyTree:
    params = layer_params(variables)
    return {"params": {f"{a}/{b}": v for a, sub in params.items() for b, v in dict(sub).items()}}


def _ple_leaves(m: PiecewiseLinearEmbeddings) -> list[Leaf]:
    n, d = m.output_shape
    max_bins = max(len(b) for b in m.bins) - 1
    if m.resolved_version == "B":
        return [
            ("linear0.weight", "linear0/kernel", False, (n, d)),
            ("linear0.bias", "linear0/bias", False, (n, d)),
            ("linear.weight", "linear/kernel", False, (n, max_bins, d)),
        ]
    return [
        ("linear.weight", "linear/kernel", False, (n, max_bins, d)),
        ("linear.bias", "linear/bias", False, (n, d)),
    ]


def _ple_buffers(m: PiecewiseLinearEmbeddings) -> dict[str, np.ndarray]:
    weight, bias, single, mask = ple_constants(m.bins)
    out = {"impl.weight": weight, "impl.bias": bias}
    if single is not None:
        out["impl.single_bin_mask"] = single
    if mask is not None:
        out["impl.mask"] = mask
    return out


def _ple_from(m: PiecewiseLinearEmbeddings, sd: Mapping[str, Any]) -> PyTree:
    owner = f"PiecewiseLinearEmbeddings(version={m.resolved_version!r})"
    buffers = _ple_buffers(m)
    check_keys(sd, [t for t, *_ in _ple_leaves(m)] + list(buffers), [], owner)
    for key, want in buffers.items():
        got = to_numpy(sd[key])
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-6, atol=0):
            raise ValueError(
                f"`state_dict['{key}']` does not match the module's `bins`: the torch model was "
                "built with other bin edges (pass the same bins, e.g. converted from its own)."
            )
    params = {k: v for k, v in sd.items() if k not in buffers}
    return _nest(_leaf_from(m, params, _ple_leaves(m), owner))


def _ple_to(m: PiecewiseLinearEmbeddings, variables: PyTree) -> dict[str, np.ndarray]:
    owner = f"PiecewiseLinearEmbeddings(version={m.resolved_version!r})"
    out = _leaf_to(_flat(variables), _ple_leaves(m), owner)
    return out | _ple_buffers(m)


def _nested(leaves: Callable[[Any], list[Leaf]], owner: Callable[[Any], str], torch_name: str):
    """A leaf converter whose flax params are nested one level (``"linear/kernel"``)."""
    return Converter(
        torch_name,
        lambda m, sd: _nest(_leaf_from(m, sd, leaves(m), owner(m))),
        lambda m, v: _leaf_to(_flat(v), leaves(m), owner(m)),
    )


# ---- backbones and TabM ---------------------------------------------------------------------------


def _block_children(m: Any, make: Callable[[int], Any]) -> list[Child]:
    return [(f"blocks_{i}", f"blocks.{i}.0", make(i)) for i in range(m.n_blocks)]


def _plain_children(m: MLPBackbone | MLPBackboneMiniEnsemble, source: Any) -> list[Child]:
    del source
    return _block_children(m, lambda i: Linear(m.d_block, param_dtype=m.param_dtype))


def _packed_children(m: MLPBackboneEnsemble, source: Any) -> list[Child]:
    del source
    return _block_children(m, lambda i: LinearEnsemble(m.d_block, k=m.k, param_dtype=m.param_dtype))


def _batch_children(m: MLPBackboneBatchEnsemble, source: Any) -> list[Child]:
    del source
    return _block_children(
        m,
        lambda i: LinearBatchEnsemble(
            m.d_block, k=m.k, scaling_init="ones", param_dtype=m.param_dtype
        ),
    )


def _mini_children(m: MLPBackboneMiniEnsemble, source: Any) -> list[Child]:
    if "affine" in source:  # flax params (export)
        shape = tuple(np.shape(layer_params({"params": source["affine"]})["scale"]))
    else:
        weight = source.get("affine.weight")
        shape = (m.k, 1) if weight is None else tuple(np.shape(weight))
    affine = ElementwiseAffine(
        shape, use_bias=m.affine_bias, scaling_init="ones", param_dtype=m.param_dtype
    )
    return [("affine", "affine", affine), *_plain_children(m, source)]


def _tabm_children(m: TabM, source: Any) -> list[Child]:
    del source
    kids: list[Child] = []
    if m.num_embeddings is not None:
        kids.append(("num_embeddings", "num_module", m.num_embeddings))
    kids.append(("backbone", "backbone", tabm_backbone(m)))
    if m.d_out is not None:
        kids.append(("output", "output", tabm_output(m)))
    return kids


register(
    LinearEnsemble,
    _leaf(
        _ensemble_leaves, lambda m: f"LinearEnsemble({m.features}, k={m.k})", "tabm.LinearEnsemble"
    ),
)
register(
    LinearBatchEnsemble,
    _leaf(
        _batch_ensemble_leaves,
        lambda m: f"LinearBatchEnsemble({m.features}, k={m.k})",
        "tabm.LinearBatchEnsemble",
    ),
)
register(
    ElementwiseAffine,
    _leaf(
        _affine_leaves, lambda m: f"ElementwiseAffine({tuple(m.shape)})", "tabm.ElementwiseAffine"
    ),
)
register(
    LinearEmbeddings,
    _leaf(
        _embeddings_leaves,
        lambda m: f"LinearEmbeddings({m.n_features}, {m.d_embedding})",
        "rtdl_num_embeddings.LinearEmbeddings",
    ),
)
register(
    LinearReLUEmbeddings,
    _composite(
        lambda m, s: [
            (
                "linear",
                "linear",
                LinearEmbeddings(m.n_features, m.d_embedding, param_dtype=m.param_dtype),
            )
        ],
        "rtdl_num_embeddings.LinearReLUEmbeddings",
    ),
)
register(
    PeriodicEmbeddings,
    _nested(
        _periodic_leaves,
        lambda m: f"PeriodicEmbeddings({m.n_features}, {m.d_embedding}, lite={m.lite})",
        "rtdl_num_embeddings.PeriodicEmbeddings",
    ),
)
register(
    PiecewiseLinearEmbeddings,
    Converter("rtdl_num_embeddings.PiecewiseLinearEmbeddings", _ple_from, _ple_to),
)
register(MLPBackbone, _composite(_plain_children, "tabm.MLPBackbone"))
register(MLPBackboneEnsemble, _composite(_packed_children, "tabm.MLPBackboneEnsemble"))
register(MLPBackboneMiniEnsemble, _composite(_mini_children, "tabm.MLPBackboneMiniEnsemble"))
register(MLPBackboneBatchEnsemble, _composite(_batch_children, "tabm.MLPBackboneBatchEnsemble"))
register(TabM, _composite(_tabm_children, "tabm.TabM"))
