import numpy as np, torch, jax, jax.numpy as jnp
from parity.cases import torch_quantized as C
import jaxlinear as jl
from jaxlinear import quantization as Q
from jaxlinear.quantization import _linear as L
rng = np.random.default_rng(31)
ref, _, _ = C._torch_dynamic("x86", "per_channel_sym", True, True, 30, (5, 20, 7))
x = C._nonfinite_inputs(rng)["+inf"]
want = ref(torch.from_numpy(x)).numpy()
layer = jl.DynamicQuantizedLinear(7, per_channel=True)
v = jl.interop.from_torch(layer, ref.state_dict())
p = v["params"]
kern = Q.QTensor(p["kernel"], p["kernel_scale"], p["kernel_zero_point"], 1)
lo, hi = Q.fbgemm_min_max(x)
s, zp = Q.choose_qparams_dynamic(lo, hi, reduce_range=True)
print(lo, hi, s, zp)
for val in [0, 255, 127, 128]:
    xq = np.asarray(Q.quantize(jnp.where(jnp.isinf(x), 0.0, x), s, zp).values) if False else None
    xq = np.zeros(x.shape, np.uint8)
    xq.flat[17] = val
    acc = L._accumulator(jnp.asarray(xq), zp, kern, False).astype(jnp.float32)
    from jaxlinear.quantization._numerics import fma
    y = fma(acc, s * p["kernel_scale"].reshape(1, -1), p["bias"].reshape(1, -1))
    print(val, np.asarray(y)[0], want[0])
