"""Clustering of wavelength-resolved (time-of-flight) transmission cubes into materials.

Pixels whose spectra differ only by Bragg edges a few percent apart, at 10-20 counts per
bin, are lost in the Poisson noise of their raw spectra; clustering the raw spectra then
sorts pixels by noise and mean attenuation. The default pipeline here averages neighbouring
pixels first (a Gaussian per wavelength bin), turns transmission into attenuation
(``-log T``), standardizes every bin so that noisy low-flux bins weigh no more than clean
ones, keeps as many leading principal components as there are clusters (whitened, so the
faint Bragg-edge directions count as much as the mean attenuation) and runs k-means on
those.

The cube is read in blocks of rows (with a halo for the smoothing), so a cube larger than
memory (a ``numpy.memmap``, an HDF5 or Zarr dataset, a Dask array) is processed with bounded
memory: pass one gathers per-bin statistics, the average image and a random subsample of
pixels on which PCA and k-means are fitted; pass two labels every pixel and averages the
centroid spectra.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from niseg.simulate._tof import NEUTRON_MASS, PLANCK

__all__ = ["cluster_spectra", "tof_to_wavelength"]

# Working copies per chunk element: the read block, the features, the smoothing weights and
# scipy's temporaries.
_COPIES = 5
# Gaussian windows are cut at this many sigma (scipy's default), so this is the halo.
_TRUNCATE = 4.0


def tof_to_wavelength(tof: Any, *, flight_path: float, t0: float = 0.0) -> np.ndarray:
    """Convert times of flight to neutron wavelengths (de Broglie).

    ``lambda = h (t - t0) / (m_n L)``.

    Parameters
    ----------
    tof : (L,) array_like
        Times of flight in seconds (bin centres).
    flight_path : float
        Source-detector distance ``L`` in metres.
    t0 : float, optional
        Time offset in seconds (trigger delay) subtracted from every time.

    Returns
    -------
    (L,) float64 ndarray
        Wavelengths in Å.

    Examples
    --------
    >>> from niseg.cluster import tof_to_wavelength
    >>> tof_to_wavelength([0.010, 0.020], flight_path=20.0).round(3)
    array([1.978, 3.956])
    """
    t = np.asarray(tof, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError("tof must be a 1D sequence of finite times of flight in seconds")
    length = float(flight_path)
    if not math.isfinite(length) or length <= 0:
        raise ValueError(f"flight_path must be a positive number of metres, got {flight_path!r}")
    if not math.isfinite(float(t0)):
        raise ValueError(f"t0 must be a finite time in seconds, got {t0!r}")
    lam = PLANCK * (t - float(t0)) / (NEUTRON_MASS * length) * 1e10
    if np.any(lam <= 0):
        raise ValueError(f"t0 = {t0} s is not earlier than every time of flight "
                         f"(first {t[0]:.6g} s); wavelengths would not be positive")
    return lam


def cluster_spectra(
    cube: Any,
    *,
    classes: int,
    spectral_axis: int = -1,
    wavelengths: Sequence[float] | np.ndarray | None = None,
    wavelength_range: tuple[float, float] | None = None,
    bins: tuple[int, int] | None = None,
    rebin: int = 1,
    n_components: int | str | None = "auto",
    whiten: bool = True,
    smooth: float = 1.0,
    mask: np.ndarray | None = None,
    floor: float = 1e-3,
    fit_pixels: int = 100_000,
    n_init: int = 10,
    chunk_bytes: int = 256 * 2**20,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster the pixels of a transmission cube by their spectra.

    Steps: select the wavelength range, average groups of ``rebin`` bins, smooth every
    bin spatially (Gaussian, ``smooth`` pixels), take the attenuation ``-log T`` (values
    clipped at ``floor``), standardize each bin, project on ``n_components`` principal
    components (whitened; by default as many as ``classes``), k-means with ``classes`` clusters (k-means++, ``n_init`` starts).
    PCA and k-means are fitted on at most ``fit_pixels`` randomly chosen pixels; every
    pixel is then assigned to its nearest centre.

    Invalid values: NaN and ±Inf are missing. The smoothing is a normalized convolution,
    so a missing value is filled from its valid neighbours; one still missing after that
    takes the bin's mean (standardized value 0). A pixel with fewer than half of its
    selected bins finite, or outside ``mask``, gets label 0. Zero and negative
    transmissions are measurements (zero counts in a bin, background subtraction) and are
    kept as they are while averaging; only the logarithm clips them at ``floor``.

    Parameters
    ----------
    cube : (M, N, L) array_like
        Transmission per pixel and wavelength (or ToF) bin; the spectral axis is
        ``spectral_axis``. Anything sliceable into NumPy blocks works (ndarray, memmap,
        h5py or Zarr dataset, Dask array); it is read in blocks of rows.
    classes : int
        Number of clusters ``K`` (at least 1, at most the number of valid pixels).
    spectral_axis : int, optional
        Axis of ``cube`` that holds the bins (-1 for ``yxl``, 0 for ``lyx``).
    wavelengths : (L,) array_like of float, optional
        Bin centres in Å, increasing (e.g. from :func:`tof_to_wavelength`).
    wavelength_range : (float, float), optional
        Keep only bins whose wavelength lies in ``[lo, hi]`` (needs ``wavelengths``).
    bins : (int, int), optional
        Keep bins ``start:stop`` instead (indices; not with ``wavelength_range``).
    rebin : int, optional
        Average groups of this many neighbouring bins; a last incomplete group is dropped.
    n_components : int, "auto" or None, optional
        Principal components kept (at most the number of bins). "auto" keeps ``classes``
        of them: K cluster centres span at most K - 1 directions, and every further
        whitened component would add only noise. None clusters the standardized spectra
        themselves.
    whiten : bool, optional
        Scale the components to unit variance, so that the faint Bragg-edge components
        count as much as the mean attenuation.
    smooth : float, optional
        Gaussian sigma in pixels of the spatial smoothing of every bin; 0 for none.
    mask : (M, N) bool ndarray, optional
        Pixels to cluster; the others get label 0.
    floor : float, optional
        Smallest transmission taken into the logarithm.
    fit_pixels : int, optional
        At most this many pixels to fit PCA and k-means on (fewer when their spectra would
        not fit into ``chunk_bytes``).
    n_init : int, optional
        Number of k-means starts; the best is kept.
    chunk_bytes : int, optional
        Approximate memory budget of one block of rows.
    seed : int, optional
        Seed of the subsample, PCA and k-means.
    progress : callable, optional
        Called as ``progress(done, total)`` after each block of each pass.

    Returns
    -------
    labels : (M, N) uint8 ndarray (uint16 when K > 255)
        ``1..K``, ordered by mean centroid transmission (1 attenuates most); 0 = invalid.
    info : dict
        ``centroid_spectra`` (K, L') mean unsmoothed transmission of each cluster,
        ``wavelengths`` (L',) Å or None, ``bins`` (L',) original bin index at the start of
        each group, ``average_image`` (M, N) float32 mean transmission over the selected
        bins, ``correlation`` (K, K) Pearson correlation of the centroid spectra,
        ``pixel_counts`` (K,), ``explained_variance_ratio`` of the kept components,
        ``n_components``, ``fit_pixels`` (pixels fitted on), ``chunks`` and the
        parameters used.

    Examples
    --------
    >>> from niseg.cluster import cluster_spectra
    >>> from niseg.simulate import simulate_tof
    >>> tof = simulate_tof(shape=(32, 32), n_bins=60, counts=200, seed=1)
    >>> transmission = tof.sample / tof.open_beam.mean(axis=(0, 1))
    >>> labels, info = cluster_spectra(transmission, classes=4, wavelengths=tof.wavelengths)
    >>> labels.shape, info["centroid_spectra"].shape
    ((32, 32), (4, 60))
    >>> from niseg.metrics import adjusted_rand_index
    >>> adjusted_rand_index(tof.truth, labels) > 0.9
    True
    """
    shape = tuple(int(s) for s in getattr(cube, "shape", ()))
    if len(shape) != 3:
        raise ValueError(f"cube must be 3D with two spatial axes and one spectral axis, "
                         f"got shape {shape}")
    if isinstance(spectral_axis, bool) or not isinstance(spectral_axis, (int, np.integer)) \
            or not -3 <= spectral_axis <= 2:
        raise ValueError(f"spectral_axis must be an axis of the 3D cube (-3..2), "
                         f"got {spectral_axis!r}")
    axis = int(spectral_axis) % 3
    spatial = [a for a in range(3) if a != axis]
    rows, cols, n_bins = shape[spatial[0]], shape[spatial[1]], shape[axis]
    dtype = np.dtype(getattr(cube, "dtype", np.float32))
    if dtype.kind not in "biuf":
        raise TypeError(f"cube must hold numbers, got dtype {dtype}")
    k = _check_int("classes", classes, 1)
    lam = _check_wavelengths(wavelengths, n_bins)
    start, stop = _select_bins(lam, n_bins, wavelength_range, bins)
    group = _check_int("rebin", rebin, 1)
    n_used = (stop - start) // group
    if n_used < 1:
        raise ValueError(f"rebin {group} is larger than the {stop - start} selected bins")
    if isinstance(n_components, str):
        if n_components != "auto":
            raise ValueError(f"n_components must be a number, 'auto' or None, "
                             f"got {n_components!r}")
        n_components = k
    if n_components is not None:
        n_components = min(_check_int("n_components", n_components, 1), n_used)
    sigma = float(smooth)
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"smooth must be a non-negative sigma in pixels, got {smooth!r}")
    floor = float(floor)
    if not math.isfinite(floor) or floor <= 0:
        raise ValueError(f"floor must be a small positive transmission, got {floor!r}")
    fit_pixels = _check_int("fit_pixels", fit_pixels, 1)
    n_init = _check_int("n_init", n_init, 1)
    chunk_bytes = _check_int("chunk_bytes", chunk_bytes, 1)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (rows, cols):
            raise ValueError(f"mask has shape {mask.shape} but the cube's image is "
                             f"{(rows, cols)}")
        mask = mask.astype(bool)

    prep = _Preparer(cube, axis, start, stop, group, sigma, floor, mask)
    block = max(1, chunk_bytes // max(1, cols * (stop - start) * 4 * _COPIES))
    chunks = [(y, min(rows, y + block)) for y in range(0, rows, block)]
    total_steps = 2 * len(chunks) if len(chunks) > 1 else 1
    # The subsample is held as float32 and copied about twice while fitting.
    fit_limit = max(k, min(fit_pixels, max(chunk_bytes, 64 * 2**20) // (n_used * 4 * 3)))
    rng = np.random.default_rng(seed)
    if fit_limit < rows * cols:
        chosen = np.zeros(rows * cols, dtype=bool)
        chosen[rng.choice(rows * cols, fit_limit, replace=False)] = True
        chosen = chosen.reshape(rows, cols)
    else:
        chosen = np.ones((rows, cols), dtype=bool)

    # Pass one: statistics, average image, subsample.
    sums = np.zeros(n_used)
    squares = np.zeros(n_used)
    counts = np.zeros(n_used)
    average = np.zeros((rows, cols), dtype=np.float32)
    valid = np.zeros((rows, cols), dtype=bool)
    picked: list[np.ndarray] = []
    cached: list[np.ndarray] = []
    for i, (y0, y1) in enumerate(chunks):
        raw, feats, ok = prep(y0, y1)
        raw_ok = np.isfinite(raw)
        with np.errstate(invalid="ignore", divide="ignore"):
            average[y0:y1] = np.where(raw_ok, raw, 0).sum(axis=-1) / raw_ok.sum(axis=-1)
        valid[y0:y1] = ok
        flat = feats.reshape(-1, n_used)[ok.ravel()]
        finite = np.isfinite(flat)
        clean = np.where(finite, flat, np.float32(0))
        sums += clean.sum(axis=0, dtype=np.float64)
        squares += np.square(clean).sum(axis=0, dtype=np.float64)
        del clean
        counts += finite.sum(axis=0)
        if len(chunks) == 1:
            cached.append(feats)
        picked.append(flat[chosen[y0:y1][ok]])
        if progress is not None:
            progress(i + 1, total_steps)
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError("cube has no valid pixel: every spectrum is mostly NaN or Inf, "
                         "or the mask is empty")
    if k > n_valid:
        raise ValueError(f"classes is {k} but the cube has only {n_valid} valid pixels")
    mean = sums / np.maximum(counts, 1)
    std = np.sqrt(np.maximum(squares / np.maximum(counts, 1) - mean**2, 0.0))
    usable = std > 1e-6 * np.maximum(1.0, np.abs(mean))
    if not usable.any():
        raise ValueError("cube has the same spectrum in every valid pixel; there is nothing "
                         "to cluster")
    scale = np.where(usable, std, np.inf)
    sample = np.concatenate(picked)
    del picked
    if sample.shape[0] < k:
        raise ValueError(f"only {sample.shape[0]} valid pixels fell into the fitting "
                         f"subsample for {k} classes; raise fit_pixels")
    z = _standardize(sample, mean, scale)
    n_fitted = sample.shape[0]
    del sample

    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    pca = None
    explained: list[float] = []
    if n_components is not None:
        n_comp = min(n_components, z.shape[0], int(usable.sum()))
        pca = PCA(n_components=n_comp, whiten=bool(whiten), random_state=seed,
                  svd_solver="auto")
        z = pca.fit_transform(z)
        explained = [float(v) for v in pca.explained_variance_ratio_]
        if whiten:
            # Components with (numerically) no variance would be blown up by whitening.
            z = np.nan_to_num(z)
    kmeans = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    kmeans.fit(z)

    def assign(feats: np.ndarray, ok: np.ndarray) -> np.ndarray:
        flat = _standardize(feats.reshape(-1, n_used)[ok.ravel()], mean, scale)
        if pca is not None:
            flat = np.nan_to_num(pca.transform(flat))
        return kmeans.predict(flat.astype(kmeans.cluster_centers_.dtype, copy=False))

    # Pass two: label every valid pixel, average the (unsmoothed) spectra per cluster.
    raw_labels = np.full((rows, cols), -1, dtype=np.int64)
    spec_sum = np.zeros((k, n_used))
    spec_count = np.zeros((k, n_used))
    for i, (y0, y1) in enumerate(chunks):
        if cached:
            raw, feats, ok = prep.raw_block(y0, y1), cached[0], valid
        else:
            raw, feats, ok = prep(y0, y1)
        assigned = assign(feats, ok)
        block_labels = np.full(ok.shape, -1, dtype=np.int64)
        block_labels[ok] = assigned
        raw_labels[y0:y1] = block_labels
        spectra = raw.reshape(-1, n_used)[ok.ravel()]
        finite = np.isfinite(spectra)
        # Sums of one block in float32, accumulated over blocks in float64.
        onehot = np.zeros((assigned.size, k), dtype=np.float32)
        onehot[np.arange(assigned.size), assigned] = 1.0
        spec_sum += onehot.T @ np.where(finite, spectra, np.float32(0))
        spec_count += onehot.T @ finite.astype(np.float32)
        if progress is not None and not cached:
            progress(len(chunks) + i + 1, total_steps)

    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = spec_sum / spec_count
    order = np.argsort(np.nanmean(np.where(spec_count > 0, centroids, np.nan), axis=1)
                       if np.any(spec_count > 0) else np.zeros(k), kind="stable")
    order = _nan_last(order, centroids)
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(1, k + 1)
    out_dtype = np.uint8 if k <= 255 else np.uint16
    labels = np.zeros((rows, cols), dtype=out_dtype)
    labels[raw_labels >= 0] = remap[raw_labels[raw_labels >= 0]]
    centroids = centroids[order]
    pixel_counts = np.bincount(labels.ravel(), minlength=k + 1)[1:]

    used_lam = None
    if lam is not None:
        used_lam = lam[start:start + n_used * group].reshape(n_used, group).mean(axis=1)
    info: dict[str, Any] = {
        "centroid_spectra": centroids,
        "wavelengths": used_lam,
        "bins": np.arange(start, start + n_used * group, group),
        "average_image": np.where(valid, average, np.nan).astype(np.float32),
        "correlation": _correlation(centroids),
        "pixel_counts": pixel_counts,
        "explained_variance_ratio": explained,
        "n_components": None if pca is None else int(pca.n_components_),
        "fit_pixels": int(n_fitted),
        "valid_pixels": n_valid,
        "chunks": len(chunks),
        "classes": k,
        "spectral_axis": int(spectral_axis),
        "wavelength_range": None if wavelength_range is None else
        [float(v) for v in wavelength_range],
        "bin_range": [start, stop],
        "rebin": group,
        "whiten": bool(whiten),
        "smooth": sigma,
        "floor": floor,
        "n_init": n_init,
        "seed": int(seed),
        "features": "standardized -log(T) per bin after spatial smoothing",
    }
    return labels, info


class _Preparer:
    """Reads a block of rows and turns it into attenuation features."""

    def __init__(self, cube: Any, axis: int, start: int, stop: int, group: int,
                 sigma: float, floor: float, mask: np.ndarray | None) -> None:
        self.cube, self.axis, self.start, self.stop = cube, axis, start, stop
        self.group, self.sigma, self.floor, self.mask = group, sigma, floor, mask
        self.halo = math.ceil(_TRUNCATE * sigma) if sigma > 0 else 0
        self.n_used = (stop - start) // group
        self.first = 1 if axis == 0 else 0  # the first spatial axis: blocks of its rows
        self.rows = int(cube.shape[self.first])

    def raw_block(self, y0: int, y1: int) -> np.ndarray:
        """Rows y0:y1 as (rows, N, L') float32 transmission, rebinned; NaN = missing."""
        used_stop = self.start + self.n_used * self.group
        index: list[slice] = [slice(None)] * 3
        index[self.axis] = slice(self.start, used_stop)
        index[self.first] = slice(y0, y1)
        block = np.asarray(self.cube[tuple(index)], dtype=np.float32)
        block = np.moveaxis(block, self.axis, -1)
        block = np.where(np.isfinite(block), block, np.float32(np.nan))
        if self.group > 1:
            shaped = block.reshape(block.shape[0], block.shape[1], self.n_used, self.group)
            with np.errstate(invalid="ignore"):
                finite = np.isfinite(shaped)
                total = np.where(finite, shaped, 0).sum(axis=-1)
                n = finite.sum(axis=-1)
                block = np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(np.float32)
        return block

    def __call__(self, y0: int, y1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = max(0, y0 - self.halo), min(self.rows, y1 + self.halo)
        wide = self.raw_block(lo, hi)
        finite = np.isfinite(wide)
        ok = finite.mean(axis=-1) >= 0.5
        if self.mask is not None:
            ok &= self.mask[lo:hi]
            finite &= ok[..., None]
        # In place where possible: a block's working memory is a few copies of it.
        feats = np.where(finite, wide, np.float32(0))
        if self.sigma > 0:
            # Normalized convolution: missing values neither count nor pull towards zero.
            spread = (self.sigma, self.sigma, 0)
            ndi.gaussian_filter(feats, spread, mode="nearest", truncate=_TRUNCATE, output=feats)
            den = ndi.gaussian_filter(finite.astype(np.float32), spread, mode="nearest",
                                      truncate=_TRUNCATE)
            missing = den <= 1e-3
            np.divide(feats, den, out=feats, where=~missing)
            del den
        else:
            missing = ~finite
        np.maximum(feats, self.floor, out=feats)
        np.log(feats, out=feats)
        np.negative(feats, out=feats)
        feats[missing] = np.nan
        cut = slice(y0 - lo, y0 - lo + (y1 - y0))
        return wide[cut], feats[cut], ok[cut]


def _standardize(flat: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (flat - mean.astype(np.float32)) / scale.astype(np.float32)
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)


def _nan_last(order: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    empty = np.all(~np.isfinite(centroids[order]), axis=1)
    return np.concatenate([order[~empty], order[empty]])


def _correlation(centroids: np.ndarray) -> np.ndarray:
    k = centroids.shape[0]
    filled = np.where(np.isfinite(centroids), centroids, np.nan)
    corr = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            both = np.isfinite(filled[i]) & np.isfinite(filled[j])
            if both.sum() >= 2 and np.std(filled[i, both]) > 0 and np.std(filled[j, both]) > 0:
                corr[i, j] = np.corrcoef(filled[i, both], filled[j, both])[0, 1]
    return corr


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return int(value)


def _check_wavelengths(wavelengths: Any, n_bins: int) -> np.ndarray | None:
    if wavelengths is None:
        return None
    lam = np.asarray(wavelengths, dtype=np.float64)
    if lam.shape != (n_bins,):
        raise ValueError(f"wavelengths has {lam.size} values but the cube has {n_bins} bins")
    if not np.all(np.isfinite(lam)) or np.any(np.diff(lam) <= 0):
        raise ValueError("wavelengths must be finite and increasing")
    return lam


def _select_bins(lam: np.ndarray | None, n_bins: int, wavelength_range: Any,
                 bins: Any) -> tuple[int, int]:
    if wavelength_range is not None and bins is not None:
        raise ValueError("give wavelength_range or bins, not both")
    if wavelength_range is not None:
        if lam is None:
            raise ValueError("wavelength_range needs the bin wavelengths; pass wavelengths")
        try:
            lo, hi = (float(v) for v in wavelength_range)
        except (TypeError, ValueError):
            raise TypeError(f"wavelength_range must be a pair (lo, hi) in Å, "
                            f"got {wavelength_range!r}") from None
        inside = np.flatnonzero((lam >= lo) & (lam <= hi))
        if not lo < hi or inside.size == 0:
            raise ValueError(f"wavelength_range {lo:g}:{hi:g} Å holds no bin; the cube spans "
                             f"{lam[0]:.4g} to {lam[-1]:.4g} Å")
        return int(inside[0]), int(inside[-1]) + 1
    if bins is not None:
        try:
            start, stop = (int(v) for v in bins)
        except (TypeError, ValueError):
            raise TypeError(f"bins must be a pair (start, stop) of bin indices, "
                            f"got {bins!r}") from None
        if not 0 <= start < stop <= n_bins:
            raise ValueError(f"bins {start}:{stop} must satisfy 0 <= start < stop <= {n_bins}")
        return start, stop
    return 0, n_bins
