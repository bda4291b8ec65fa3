"""torch's ``HistogramObserver``: the activation observer of ``get_default_qconfig(engine)``.

A running 2048-bin histogram of every observed value (re-binned onto the wider range when a batch
extends it, after upsampling each old bin 16 times), then an L2 search that clips the tails: the
``[min, max]`` whose 256-level quantization of the histogram has the smallest error, grown from the
outermost bins inwards until the error rises. Its ``(min, max)`` go through the same
``_calculate_qparams`` as ``MinMaxObserver`` (:func:`~jaxlinear.int8.choose_qparams`).

This runs at calibration time on concrete arrays, in NumPy float32, each step the float32 operation
torch performs in the same order (``torch.histc``'s ``(x - lo) * bins / (hi - lo)`` bin index,
``linspace``'s two-sided formula, ``bucketize``/``bincount`` re-binning, a float64-accumulated
``cumsum``, Python-double thresholds compared in float32, ``div(..., rounding_mode="floor")``) so the
qparams come out bit-identical. It is not a jitted JAX function on purpose: the search is a
data-dependent sequential loop (hundreds to thousands of steps, each a 2048-bin error evaluation whose
sum must be added in torch's order), and XLA's CPU backend contracts ``a * b + c`` into FMAs and
reorders reductions, both of which change the float32 roundings the search compares.

The one host dependency is torch's float32 ``sum`` (of the histogram and of each error vector): ATen
adds 2048 values in ``Vectorized<float>`` lanes in a fixed cascade; ``vector_width`` picks the lane
count: 8 on every x86 host (AVX-512 ones run the AVX2 sum kernel), 4 on aarch64. The sum order
rarely decides the search (with 8 and 16 lanes, 200 random searches came out the same), but it is
reproduced so that it never does.
"""

import platform
from typing import Any

import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from jaxlinear._typing import Array, Dtype
from jaxlinear.int8._qparams import choose_qparams
from jaxlinear.int8._qtensor import _dtype_name

__all__ = ["HistogramObserver"]

F32 = np.float32
Real = float | np.floating


# ------------------------------------------------------------------------------------------ torch ops
def default_vector_width() -> int:
    """The float32 lanes of torch's CPU ``sum`` kernel on this host: 8 on x86 (``Vectorized<float>``
    of the AVX2 and default builds; ATen registers no AVX-512 sum kernel, so AVX-512 hosts run the
    AVX2 one: measured on an AVX-512 host, 200/200 sums equal with 8 lanes, 39/200 with 16), 4 on
    aarch64 (NEON ``Vectorized<float>``; not measured here)."""
    machine = platform.machine().lower()
    return 4 if machine in ("arm64", "aarch64") else 8


def _multi_row_sum(rows: np.ndarray) -> np.ndarray:
    """ATen's ``multi_row_sum``: the cascade over ``rows`` (size, ...) with 4 levels of 16."""
    size = rows.shape[0]
    ceil_log2 = 1 if size <= 2 else int(size - 1).bit_length()
    power = max(4, ceil_log2 // 4)
    step, mask = 1 << power, (1 << power) - 1
    acc = [np.zeros(rows.shape[1:], F32) for _ in range(4)]
    i = 0
    while i + step <= size:
        for _ in range(step):
            acc[0] = acc[0] + rows[i]
            i += 1
        for j in range(1, 4):
            acc[j] = acc[j] + acc[j - 1]
            acc[j - 1] = np.zeros_like(acc[j - 1])
            if i & (mask << (j * power)):
                break
    while i < size:
        acc[0] = acc[0] + rows[i]
        i += 1
    for j in range(1, 4):
        acc[0] = acc[0] + acc[j]
    return acc[0]


def torch_sum(a: np.ndarray, width: int) -> np.float32:
    """``torch.sum`` of a contiguous 1-D float32 array (one thread: below ATen's grain size):
    ``vectorized_inner_sum`` with ``width`` lanes, ``row_sum``'s 4-way ILP and the scalar tail."""
    a = np.ascontiguousarray(a, F32)
    n = a.size
    n_vec = n // width
    vecs = a[: n_vec * width].reshape(n_vec, width)
    n_ilp = n_vec // 4
    partial = _multi_row_sum(vecs[: n_ilp * 4].reshape(n_ilp, 4, width))  # (4, width)
    p0 = partial[0]
    for i in range(n_ilp * 4, n_vec):
        p0 = p0 + vecs[i]
    for k in range(1, 4):
        p0 = p0 + partial[k]
    total = F32(0)
    for v in a[n_vec * width :]:
        total = F32(total + v)
    for v in p0:
        total = F32(total + v)
    return total


def fma32(a: Any, b: Any, c: Any) -> np.ndarray:
    """``fmaf(a, b, c)``: ``a * b + c`` of float32 operands rounded once, as the FMA instructions the
    compiler contracts torch's C++ into.

    ``a * b`` is exact in float64; the float64 sum's rounding error is recovered exactly (TwoSum) and,
    where that sum sits exactly on a float32 tie, nudged one float64 step towards the exact value, so
    the final rounding to float32 is the correctly rounded one (no double rounding).
    """
    f64 = np.float64
    p = np.asarray(a, f64) * np.asarray(b, f64)
    c = np.asarray(c, f64)
    t = p + c
    tp = t - p
    err = (p - (t - tp)) + (c - tp)
    r = t.astype(F32)
    tie = (err != 0) & (np.abs(t - r.astype(f64)) * 2 == np.abs(np.spacing(r).astype(f64)))
    t = np.where(tie, np.nextafter(t, t + err), t)
    return t.astype(F32)


def linspace(start: Real, end: Real, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps)`` in float32 on CPU: ``start + step * i`` for the first
    half, ``end - step * (steps - 1 - i)`` for the second (both ends exact), each contracted into one
    FMA as torch's build does (measured: 0 mismatches in 7 M values; two roundings differ in ~20 %)."""
    s, e = F32(start), F32(end)
    step = F32(F32(e - s) / F32(steps - 1))
    idx = np.arange(steps)
    half = steps // 2
    lo = fma32(step, idx[:half].astype(F32), s)
    hi = fma32(-step, (steps - idx[half:] - 1).astype(F32), e)
    return np.concatenate([lo, hi]).astype(F32)


def histc(x: np.ndarray, bins: int, lo: Real, hi: Real) -> np.ndarray:
    """``torch.histc(x, bins, min=lo, max=hi)`` on a float32 CPU tensor (``LINEAR_INTERPOLATION``:
    bin ``int((x - lo) * bins / (hi - lo))`` in float32, values outside ``[lo, hi]`` skipped)."""
    left, right = float(lo), float(hi)
    if left == right and x.size:
        left, right = float(x.min()), float(x.max())
    if left == right:
        left, right = left - 1.0, right + 1.0
    le, re = F32(left), F32(right)
    inside = x[(x >= le) & (x <= re)]
    pos = ((inside - le) * F32(bins) / F32(re - le)).astype(np.int64)
    pos[pos == bins] = bins - 1
    return np.bincount(pos, minlength=bins).astype(F32)


def _floor_divide(a: np.ndarray, b: np.float32) -> np.ndarray:
    """``torch.div(a, b, rounding_mode="floor")`` for float32 (``c10::div_floor_floating``)."""
    mod = np.fmod(a, b)
    div = (a - mod) / b
    div = np.where((mod != 0) & ((b < 0) != (mod < 0)), div - F32(1), div)
    floordiv = np.floor(div)
    floordiv = np.where(div - floordiv > F32(0.5), floordiv + F32(1), floordiv)
    return np.where(div == 0, np.copysign(F32(0), a / b), floordiv).astype(F32)


def _get_norm(begin: Any, end: Any, density: np.ndarray) -> np.ndarray:
    return density * ((end * end * end - begin * begin * begin) / F32(3))


# ------------------------------------------------------------------------------------------ observer
class HistogramObserver:
    """torch's ``HistogramObserver``, bit for bit: ``update`` with each batch, then ``qparams``.

    The activation observer of torch's default static qconfigs (``get_default_qconfig(engine)``:
    uint8 affine, ``reduce_range=True`` for x86/fbgemm, False for qnnpack/onednn). It keeps a running
    ``bins``-bin histogram and, for the qparams, searches the ``[min, max]`` that minimises the L2 error
    of quantizing that histogram to ``2**8`` levels, clipping outliers (see the module docstring for how
    each float32 step follows torch's). Concrete arrays only: it is calibration-time NumPy, not a jitted
    function.

    Args:
        bins: the number of histogram bins (torch's default 2048).
        dtype: ``jnp.uint8`` (quint8, the default qconfigs') or ``jnp.int8`` (qint8).
        reduce_range: 7-bit range (uint8 ``[0, 127]``), as the x86/fbgemm default qconfig.
        symmetric: ``per_tensor_symmetric`` qparams instead of ``per_tensor_affine``.
        vector_width: float32 lanes of torch's ``sum`` on the host whose numbers to reproduce (4, 8
            or 16; None: this host's, see the module docstring).

    Attributes:
        histogram: the running histogram, float32 ``(bins,)`` (None before the first update).
        min_val: the smallest value observed (float32; ``inf`` before the first update).
        max_val: the largest value observed (float32; ``-inf`` before the first update).

    Raises:
        ValueError: ``bins`` < 1, ``vector_width`` not 8 or 16, or an unknown ``dtype``.

    Example:
        >>> import numpy as np
        >>> obs = HistogramObserver(reduce_range=True)
        >>> x = np.random.default_rng(0).standard_normal(10_000).astype(np.float32)
        >>> obs.update(x).update(2 * x)  # a second, wider batch: the histogram is re-binned
        HistogramObserver(bins=2048, min_val=-7.79884, max_val=6.96367)
        >>> lo, hi = obs.min_max()  # the search clips the upper tail
        >>> bool(lo == obs.min_val), round(float(hi), 4)
        (True, 6.5096)
        >>> scale, zero_point = obs.qparams()
        >>> round(float(scale), 5), int(zero_point)
        (0.11266, 69)
    """

    def __init__(
        self,
        bins: int = 2048,
        dtype: Dtype = np.uint8,
        *,
        reduce_range: bool = False,
        symmetric: bool = False,
        vector_width: int | None = None,
    ) -> None:
        if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
            raise ValueError(f"`bins` must be a positive int, got {bins!r}.")
        name = _dtype_name(dtype)
        width = default_vector_width() if vector_width is None else vector_width
        if isinstance(width, bool) or width not in (4, 8, 16):
            raise ValueError(f"`vector_width` must be None, 4, 8 or 16, got {vector_width!r}.")
        self.bins = int(bins)
        self.dtype = np.dtype(name)
        self.reduce_range = bool(reduce_range)
        self.symmetric = bool(symmetric)
        self.vector_width = width
        self.dst_nbins = 2 ** (8 * self.dtype.itemsize)
        self.upsample_rate = 16
        self.histogram: np.ndarray | None = None
        self.min_val: np.float32 = F32(np.inf)
        self.max_val: np.float32 = F32(-np.inf)

    def __repr__(self) -> str:
        return (
            f"HistogramObserver(bins={self.bins}, min_val={float(self.min_val):.6g}, "
            f"max_val={float(self.max_val):.6g})"
        )

    # ---------------------------------------------------------------------------------- observing
    def update(self, x: ArrayLike) -> "HistogramObserver":
        """Observe one batch (torch's ``forward``); infinite values are ignored, as torch does.

        Args:
            x: the observed values, any shape (cast to float32 and flattened); empty: nothing observed.

        Returns:
            ``self``, updated in place.

        Raises:
            ValueError: if ``x`` holds NaN (torch's histogram would silently drop it and its min/max
                would be NaN).

        Example:
            >>> HistogramObserver().update([1.0, 2.0, 4.0]).max_val
            np.float32(4.0)
        """
        a = np.asarray(x, F32).ravel()
        if a.size == 0:
            return self
        if np.isnan(a).any():
            raise ValueError("`x` must not hold NaN (the observed min/max would be NaN).")
        if np.isinf(a).any():
            a = a[np.abs(a) != np.inf]
            if a.size == 0:
                return self
        x_min, x_max = F32(a.min()), F32(a.max())
        if self.histogram is None:
            self.min_val, self.max_val = x_min, x_max
            self.histogram = histc(a, self.bins, x_min, x_max)
            return self
        new_min, new_max = F32(min(self.min_val, x_min)), F32(max(self.max_val, x_max))
        update = histc(a, self.bins, new_min, new_max)
        if new_min == self.min_val and new_max == self.max_val:
            self.histogram = self.histogram + update
        else:
            self.histogram = self._combine(update, new_min, new_max)
            self.min_val, self.max_val = new_min, new_max
        return self

    def _combine(self, update: np.ndarray, new_min: np.float32, new_max: np.float32) -> np.ndarray:
        """torch's ``_combine_histograms`` (the old histogram moved onto ``[new_min, new_max]``)."""
        hist, lo, hi = self.histogram, self.min_val, self.max_val
        assert hist is not None
        if lo == hi:  # one value observed so far: all its count lands in one new bin
            one = histc(np.array([lo], F32), self.bins, new_min, new_max)
            return one * torch_sum(hist, self.vector_width) + update
        rate = self.upsample_rate
        fine = np.repeat(hist, rate) / F32(rate)
        bin_size = F32(F32(hi - lo) / F32(self.bins * rate))
        mids = linspace(lo, hi, self.bins * rate + 1)[:-1] + F32(F32(0.5) * bin_size)
        edges = linspace(new_min, new_max, self.bins + 1)
        buckets = np.clip(np.searchsorted(edges, mids, side="right") - 1, 0, self.bins - 1)
        moved = np.zeros(self.bins, F32)
        np.add.at(moved, buckets, fine)  # bincount with float32 weights: in order, in float32
        return update + moved

    # ---------------------------------------------------------------------------------- the search
    def _quantization_error(self, start_bin: int, end_bin: int) -> float:
        """torch's ``_compute_quantization_error``: the L2 error of ``[start_bin, end_bin]``."""
        hist = self.histogram
        assert hist is not None
        bin_width = (float(self.max_val) - float(self.min_val)) / self.bins
        dst_bin_width = bin_width * (end_bin - start_bin + 1) / self.dst_nbins
        if dst_bin_width == 0.0:
            return 0.0
        bw, dw, half = F32(bin_width), F32(dst_bin_width), F32(dst_bin_width / 2)
        src_begin = (np.arange(self.bins) - start_bin).astype(F32) * bw
        src_end = src_begin + bw
        last = F32(self.dst_nbins - 1)
        dst_of_begin = np.clip(_floor_divide(src_begin, dw), F32(0), last)
        dst_of_begin_center = (dst_of_begin + F32(0.5)) * dw
        dst_of_end = np.clip(_floor_divide(src_end, dw), F32(0), last)
        density = hist / bw
        norm = np.zeros(self.bins, F32)
        norm = norm + _get_norm(src_begin - dst_of_begin_center, np.full(self.bins, half), density)
        inner = _get_norm(F32(-dst_bin_width / 2), half, density)
        norm = norm + (dst_of_end - dst_of_begin - F32(1)) * inner
        dst_of_end_center = dst_of_end * dw + half
        norm = norm + _get_norm(F32(-dst_bin_width / 2), src_end - dst_of_end_center, density)
        return float(torch_sum(norm, self.vector_width))

    def min_max(self) -> tuple[np.float32, np.float32]:
        """The searched ``(min, max)`` (torch's ``_non_linear_param_search``) the qparams come from.

        Returns:
            ``(new_min, new_max)`` as float32 scalars, inside the observed range.

        Raises:
            ValueError: if nothing was observed.

        Example:
            >>> lo, hi = HistogramObserver().update([0.0, 1.0]).min_max()  # the last bin clipped
            >>> float(lo), float(hi)
            (0.0, 0.99951171875)
        """
        hist = self.histogram
        if hist is None:
            raise ValueError("the observer must see at least one batch before its qparams.")
        lo, hi = self.min_val, self.max_val
        bin_width = F32(F32(hi - lo) / F32(self.bins))
        if bin_width == 0:  # one value: every error is 0 and the range stays [lo, lo]
            return lo, hi
        total = float(torch_sum(hist, self.vector_width))
        csum = np.cumsum(hist.astype(np.float64)).astype(F32)  # ATen's CPU cumsum adds in double
        alpha, beta, stepsize = 0.0, 1.0, 1e-5
        start_bin, end_bin = 0, self.bins - 1
        norm_min = float("inf")
        while alpha < beta:
            next_alpha, next_beta = alpha + stepsize, beta - stepsize
            # torch walks l up while cSum[l] < next_alpha * total (a 0-d float32 tensor against a
            # Python float: compared in float32), r down while cSum[r] > next_beta * total
            first = int(np.searchsorted(csum, F32(next_alpha * total), side="left"))
            last = int(np.searchsorted(csum, F32(next_beta * total), side="right")) - 1
            left = min(max(first, start_bin), end_bin)
            right = max(min(last, end_bin), start_bin)
            next_start, next_end = start_bin, end_bin
            if left - start_bin > end_bin - right:
                next_start, alpha = left, next_alpha
            else:
                next_end, beta = right, next_beta
            if next_start == start_bin and next_end == end_bin:
                continue
            norm = self._quantization_error(next_start, next_end)
            if norm > norm_min:
                break
            norm_min, start_bin, end_bin = norm, next_start, next_end
        return F32(lo + F32(bin_width * F32(start_bin))), F32(
            lo + F32(bin_width * F32(end_bin + 1))
        )

    def qparams(self) -> tuple[Array, Array]:
        """``(scale, zero_point)``: torch's ``calculate_qparams`` (the searched range through
        ``_calculate_qparams``, as :func:`~jaxlinear.int8.choose_qparams`).

        Returns:
            ``scale`` (float32) and ``zero_point`` (int32) scalars; scale 1 and zero point 0 when
            nothing was observed, as torch (which also warns).

        Example:
            >>> s, zp = HistogramObserver().update([0.0, 2.55]).qparams()
            >>> round(float(s), 6), int(zp)
            (0.009995, 0)
        """
        if self.histogram is None:
            lo, hi = F32(np.inf), F32(-np.inf)
        else:
            lo, hi = self.min_max()
        return choose_qparams(
            jnp.asarray(lo),
            jnp.asarray(hi),
            self.dtype,
            symmetric=self.symmetric,
            reduce_range=self.reduce_range,
        )
