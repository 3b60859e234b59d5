"""Building blocks of the spot cleaners: exact window medians where needed, noise model, filling.

The expensive part of median-based spot detection is the median filter itself. Here the
exact ``w x w`` median is computed only at pixels that could be spots. A cheap bound decides
which: the window median is at least the smallest of the ``w`` row medians in the window
(each row has ``(w + 1) / 2`` values at or above its median, ``w (w + 1) / 2`` in all, more
than half of the window), and at most the largest. So ``f - median > t`` can only hold where
``f - min(row medians) > t``: testing that bound first loses no detection, and the exact
medians are gathered for the few pixels that pass.

Padding follows :func:`scipy.ndimage.median_filter`'s default (``mode="reflect"``, i.e.
``numpy.pad(mode="symmetric")``), so medians equal SciPy's bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: Pixels gathered per chunk when computing window medians (bounds peak memory).
CHUNK_VALUES = 4_000_000
#: Target number of pixels sampled to fit the noise model.
NOISE_SAMPLES = 40_000
#: Pixels per level bin of the noise model.
BIN_PIXELS = 1_000
TAIL_QUANTILE = 0.95
#: Fraction of the highest sampled levels left out of the noise fit (large spots' cores).
TOP_EXCLUDED = 0.0025
TAIL_Z = 1.9600  # standard normal quantile of 0.975 (two-sided 0.95)
#: Residuals beyond this many MAD deviations are left out of the tail estimate: no noise,
#: not even single quanta on an empty background, reaches that far; strong spots do (one
#: large spot can fill a few percent of a level bin).
TAIL_EXCLUDE = 50.0
#: Noise floor of integer-valued images, in counts (see :func:`noise_floor`).
QUANTUM_FLOOR = 0.5
MAX_BINS = 80



def pad_reflect(image: np.ndarray, radius: int) -> np.ndarray:
    """Pad as SciPy's ``mode='reflect'`` (the edge pixel repeated, then mirrored)."""
    if radius == 0:
        return image
    return np.pad(image, radius, mode="symmetric")


def refresh_border(padded: np.ndarray, radius: int) -> None:
    """Re-mirror the padding of ``padded`` in place after its interior changed near an edge."""
    r = radius
    if r == 0:
        return
    m, n = padded.shape[0] - 2 * r, padded.shape[1] - 2 * r
    if r > m or r > n:
        padded[...] = np.pad(padded[r:r + m, r:r + n], r, mode="symmetric")
        return
    padded[:r, r:r + n] = padded[2 * r - 1:r - 1 if r > 1 else None:-1, r:r + n][:r]
    padded[r + m:, r:r + n] = padded[r + m - 1:r + m - 1 - r:-1, r:r + n]
    padded[:, :r] = padded[:, 2 * r - 1:r - 1 if r > 1 else None:-1][:, :r]
    padded[:, r + n:] = padded[:, r + n - 1:r + n - 1 - r:-1]


def unique_indices(indices: np.ndarray, size: int) -> np.ndarray:
    """Sorted unique flat indices; a mark array beats hashing when there are many."""
    if indices.size < size // 256:
        return np.unique(indices)
    mark = np.zeros(size, dtype=bool)
    mark[indices] = True
    return np.flatnonzero(mark)


def window_medians(padded: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """Exact medians of the ``size x size`` windows centred at ``(ys, xs)``.

    ``padded`` is the image padded by ``size // 2`` on every side; ``ys, xs`` are
    coordinates in the unpadded image.
    """
    n = ys.size
    out = np.empty(n, dtype=padded.dtype)
    if n == 0:
        return out
    area = size * size
    flat = padded.reshape(-1)
    offsets = window_offsets(padded.shape[1], size)
    step = max(1, CHUNK_VALUES // area)
    for start in range(0, n, step):
        corner = ys[start:start + step] * padded.shape[1] + xs[start:start + step]
        block = np.take(flat, corner[:, None] + offsets[None, :])
        out[start:start + step] = np.partition(block, area // 2, axis=1)[:, area // 2]
    return out


def window_offsets(width: int, size: int) -> np.ndarray:
    """Flat offsets of a ``size x size`` window from its top-left pixel in rows of ``width``."""
    d = np.arange(size, dtype=np.intp)
    return (d[:, None] * width + d[None, :]).ravel()


def running_median_rows(image: np.ndarray, size: int) -> np.ndarray:
    """Median over ``size`` neighbours along each row (axis 1), reflect-padded."""
    if size == 1:
        return image.copy()
    if size in (3, 5):
        r = size // 2
        padded = np.pad(image, ((0, 0), (r, r)), mode="symmetric")
        n = image.shape[1]
        cols = [padded[:, i:i + n] for i in range(size)]
        return _median_network(cols)
    return ndimage.median_filter(image, size=(1, size), mode="reflect")


def _median_network(values: list[np.ndarray]) -> np.ndarray:
    """Median of 3 or 5 arrays, elementwise, by a min/max selection network."""
    if len(values) == 3:
        a, b, c = values
        lo = np.minimum(a, b)
        hi = np.maximum(a, b)
        return np.maximum(lo, np.minimum(hi, c))
    a, b, c, d, e = values
    # Drop the smallest and largest of (a, b, c, d) in a way that keeps the median of 5.
    lo_ab, hi_ab = np.minimum(a, b), np.maximum(a, b)
    lo_cd, hi_cd = np.minimum(c, d), np.maximum(c, d)
    # max(lo_ab, lo_cd) and min(hi_ab, hi_cd) with e: median of those three is the answer.
    x = np.maximum(lo_ab, lo_cd)
    y = np.minimum(hi_ab, hi_cd)
    lo, hi = np.minimum(x, y), np.maximum(x, y)
    return np.maximum(lo, np.minimum(hi, e))


def median_bounds(image: np.ndarray, size: int, *, lower: bool, upper: bool
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Lower and upper bounds of the ``size x size`` window median at every pixel."""
    rows = running_median_rows(image, size)
    lo = _extreme_columnwise(rows, size, np.minimum) if lower else None
    hi = _extreme_columnwise(rows, size, np.maximum) if upper else None
    return lo, hi


def _extreme_columnwise(rows: np.ndarray, size: int, op: np.ufunc) -> np.ndarray:
    """Minimum or maximum over ``size`` rows (reflect-padded) by shifted views.

    Faster than :func:`scipy.ndimage.minimum_filter1d` along axis 0 of a C-ordered image,
    which walks memory with a large stride.
    """
    r = size // 2
    padded = np.pad(rows, ((r, r), (0, 0)), mode="symmetric")
    m = rows.shape[0]
    out = padded[0:m].copy()
    for i in range(1, size):
        op(out, padded[i:i + m], out=out)
    return out


def sample_grid(shape: tuple[int, int], target: int = NOISE_SAMPLES
                ) -> tuple[np.ndarray, np.ndarray]:
    """A regular lattice of about ``target`` pixel coordinates (deterministic sampling)."""
    m, n = shape
    # At least every second pixel: a large spot then gives few samples to any level bin.
    step = max(2, int(math.sqrt(m * n / max(target, 1))))
    ys, xs = np.meshgrid(np.arange(step // 2, m, step), np.arange(step // 2, n, step),
                         indexing="ij")
    return ys.ravel(), xs.ravel()


def fit_noise_model(levels: np.ndarray, residuals: np.ndarray, *, floor: float) -> NoiseModel:
    """Noise standard deviation as a function of the local level, from sampled residuals.

    - Samples are split into equal-count bins of level (the highest 0.25 % of levels are
      left out: inside large bright spots the window median is a spot value);
    - each bin's spread is the larger of ``1.4826 * MAD`` and the spread implied by the 95th
      percentile of absolute residuals (:func:`tail_sigma`), so that sparse single-quantum
      noise behind strong absorbers is measured by its tail;
    - the variance curve is replaced by its lower non-decreasing envelope (at each level,
      the smallest variance found at that level or above). Counting noise grows with the
      signal, so a bin that stands above a brighter one owes its spread to something other
      than noise: edges or corners, which a median moves at high signal-to-noise ratios.
      A non-decreasing curve also makes the value at a lower bound of the level a lower
      bound of the noise, which the candidate pre-screen relies on;
    - the variance is interpolated linearly in level between bin centres (exact for Poisson
      and Poisson-Gaussian noise, whose variance is linear in the signal, even across a
      sparsely sampled range such as a few dark pixels behind an absorber) and extended
      above the last bin with the median slope of the top quarter of the curve.
    """
    levels = np.asarray(levels, dtype=np.float64)
    residuals = np.asarray(residuals, dtype=np.float64)
    order = np.argsort(levels, kind="stable")
    keep = max(1, int(np.ceil(levels.size * (1.0 - TOP_EXCLUDED))))
    levels, residuals = levels[order][:keep], residuals[order][:keep]
    n_bins = int(np.clip(levels.size // BIN_PIXELS, 1, MAX_BINS))
    centres, spreads = [], []
    for chunk_l, chunk_r in zip(np.array_split(levels, n_bins), np.array_split(residuals, n_bins)):
        if chunk_l.size == 0:
            continue
        centres.append(float(np.median(chunk_l)))
        spreads.append(max(robust_sigma(chunk_r), tail_sigma(chunk_r)))
    centres_a, first = np.unique(np.asarray(centres), return_index=True)
    variance = np.asarray(spreads)[first] ** 2
    variance = np.minimum.accumulate(variance[::-1])[::-1]
    variance = np.maximum(variance, floor * floor)
    slope = 0.0
    if centres_a.size >= 2:
        top = max(2, centres_a.size // 4)
        rises = np.diff(variance[-top:]) / np.diff(centres_a[-top:])
        slope = max(0.0, float(np.median(rises)))
    return NoiseModel(centres_a, variance, slope)


class NoiseModel:
    """Noise standard deviation as a function of level (see :func:`fit_noise_model`).

    Variance is piecewise linear in level through ``(centres, variance)``, constant below
    the first centre and extended with ``slope`` (variance per level unit) above the last.
    """

    def __init__(self, centres: np.ndarray, variance: np.ndarray, slope: float = 0.0) -> None:
        self.centres = np.asarray(centres, dtype=np.float64)
        self.variance = np.asarray(variance, dtype=np.float64)
        self.slope = float(slope)

    def __call__(self, level: np.ndarray) -> np.ndarray:
        level = np.asarray(level, dtype=np.float64)
        var = np.interp(level, self.centres, self.variance)
        if self.slope > 0:
            top = self.centres[-1]
            var = np.where(level > top, self.variance[-1] + self.slope * (level - top), var)
        return np.sqrt(var).astype(np.float32)

    def lower_bound(self, level: np.ndarray, steps: int = 4096) -> np.ndarray:
        """A value <= the noise at every pixel of a large level image, by table look-up.

        The level range is cut into ``steps`` cells and each pixel gets the noise at the
        lower edge of its cell; the model is non-decreasing, so this never exceeds the exact
        value, and it is several times faster than interpolating millions of levels.
        """
        lo = float(np.min(level))
        hi = float(np.max(level))
        if not hi > lo:
            return np.full(level.shape, self(np.array([lo]))[0], dtype=np.float32)
        edges = np.linspace(lo, hi, steps + 1)
        table = self(edges)
        scale = np.float32(steps / (hi - lo))
        # One cell lower than computed: float32 rounding must not push a pixel up a cell.
        cell = ((level - np.float32(lo)) * scale).astype(np.int32)
        cell -= 1
        np.clip(cell, 0, steps, out=cell)
        return table[cell]


def robust_sigma(values: np.ndarray) -> float:
    """``1.4826 * MAD``; for quantized data whose MAD is 0, a mean-deviation estimate."""
    if values.size == 0:
        return 0.0
    centred = np.abs(values - np.median(values))
    mad = float(np.median(centred))
    if mad > 0:
        return 1.4826 * mad
    # Integer data with most residuals exactly 0: the mean absolute deviation of the central
    # 98 % still measures the spread (sqrt(pi/2) converts it for a normal distribution).
    top = np.quantile(centred, 0.98)
    kept = centred[centred <= top]
    return float(math.sqrt(math.pi / 2.0) * kept.mean()) if kept.size else 0.0


def tail_sigma(values: np.ndarray) -> float:
    """Spread implied by the 95th percentile of absolute deviations (Gaussian-equivalent).

    Equal to the MAD estimate for Gaussian noise, larger where counts are so low that the
    noise is a sparse scatter of single detected quanta (behind a strong absorber): there
    the bulk of the residuals is near zero but the tail, which decides false detections,
    is not. Residuals beyond :data:`TAIL_EXCLUDE` MAD deviations are spots and are left
    out first.
    """
    if values.size < 100:
        return 0.0
    centred = np.abs(values - np.median(values))
    core = robust_sigma(values)
    if core > 0:
        centred = centred[centred <= TAIL_EXCLUDE * core]
    return float(np.quantile(centred, TAIL_QUANTILE) / TAIL_Z)


def noise_floor(image: np.ndarray, sample: np.ndarray | None = None) -> float:
    """Smallest noise level accepted, so a noiseless or constant image flags nothing odd.

    Integer-valued data (``sample``, a few thousand of its values, all whole numbers) cannot
    resolve less than its counting step: where nearly every pixel is 0 (a strong absorber at
    a short exposure) a single 1 must not count as a spot, so the floor is then
    :data:`QUANTUM_FLOOR` of one count.
    """
    scale = float(np.max(np.abs(image))) if image.size else 0.0
    floor = max(scale * 1e-6, float(np.finfo(np.float32).tiny))
    if sample is not None and sample.size and np.all(sample == np.rint(sample)):
        floor = max(floor, QUANTUM_FLOOR)
    return floor


def neighbourhood(ys: np.ndarray, xs: np.ndarray, radius: int, shape: tuple[int, int]
                  ) -> np.ndarray:
    """Flat indices of all pixels within ``radius`` (chessboard) of the given pixels."""
    if ys.size == 0:
        return np.empty(0, dtype=np.intp)
    d = np.arange(-radius, radius + 1)
    yy = np.clip(ys[:, None, None] + d[None, :, None], 0, shape[0] - 1)
    xx = np.clip(xs[:, None, None] + d[None, None, :], 0, shape[1] - 1)
    return unique_indices((yy * shape[1] + xx).ravel(), shape[0] * shape[1])


def masked_window_medians(image: np.ndarray, mask: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                          size: int, *, min_valid: int | None = None,
                          max_size: int | None = None) -> np.ndarray:
    """Median of the unmasked pixels in a window around each ``(ys, xs)``.

    The window starts at ``size x size`` and grows (to ``2 size + 1``, ...) for the pixels
    that have fewer than ``min_valid`` unmasked neighbours (a large spot), up to
    ``max_size``; a pixel with no unmasked neighbour even then keeps the median of its
    largest window, masked pixels included.
    """
    n = ys.size
    out = np.empty(n, dtype=np.float32)
    if n == 0:
        return out
    if min_valid is None:
        min_valid = max(3, (size * size) // 4)
    if max_size is None:
        max_size = max(4 * size + 1, 41)
    pending = np.arange(n)
    current = size
    while pending.size:
        radius = current // 2
        values = pad_reflect(image.astype(np.float32, copy=False), radius)
        hidden = pad_reflect(mask, radius)
        med, count = _nan_medians(values, hidden, ys[pending], xs[pending], current)
        last = current >= max_size
        done = (count >= min_valid) | (last & (count > 0))
        out[pending[done]] = med[done]
        if last:
            rest = pending[~done]
            if rest.size:
                out[rest] = window_medians(values, ys[rest], xs[rest], current)
            break
        pending = pending[~done]
        current = 2 * current + 1
    return out


def _nan_medians(values: np.ndarray, hidden: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
    area = size * size
    offsets = np.arange(size)
    med = np.empty(ys.size, dtype=np.float32)
    count = np.empty(ys.size, dtype=np.intp)
    step = max(1, CHUNK_VALUES // area)
    for start in range(0, ys.size, step):
        y = ys[start:start + step, None, None] + offsets[None, :, None]
        x = xs[start:start + step, None, None] + offsets[None, None, :]
        block = values[y, x].reshape(-1, area).astype(np.float32)
        block[hidden[y, x].reshape(-1, area)] = np.inf
        block.sort(axis=1)
        valid = np.isfinite(block).sum(axis=1)
        lo = np.clip((valid - 1) // 2, 0, area - 1)
        hi = np.clip(valid // 2, 0, area - 1)
        rows = np.arange(block.shape[0])
        med[start:start + step] = 0.5 * (block[rows, lo] + block[rows, hi])
        count[start:start + step] = valid
    return med, count
