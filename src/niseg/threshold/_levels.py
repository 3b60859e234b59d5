"""Threshold levels: automatic single levels, multi-level, hysteresis pairs, results-based.

Every function here returns numbers in the image's own units; applying them is the job of
:mod:`niseg.threshold._apply`. Dark foreground is handled by negating the intensities, so that
each rule is written once for bright objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "AUTOMATIC_METHODS",
    "auto_hysteresis_levels",
    "intermodes_threshold",
    "multi_level_threshold",
    "results_based_threshold",
    "threshold_value",
]

#: Automatic single-level methods accepted by :func:`threshold_value`.
AUTOMATIC_METHODS = (
    "otsu", "li", "yen", "isodata", "mean", "triangle", "minimum", "intermodes"
)

_HIST_BINS = 256
_MAX_SMOOTHING = 10_000


def finite_values(image: Any, name: str = "image") -> np.ndarray:
    """Finite values of ``image`` as float64, refusing empty or constant data."""
    array = np.asarray(image)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    values = array.astype(np.float64, copy=False).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(f"{name} has no finite values to threshold")
    if values.min() == values.max():
        raise ValueError(f"{name} is constant, so no threshold separates anything in it")
    return values


def check_foreground(foreground: Any) -> float:
    """Sign that turns the foreground bright: +1 for 'bright', -1 for 'dark'."""
    if foreground not in ("bright", "dark"):
        raise ValueError(f"foreground must be 'bright' or 'dark', got {foreground!r}")
    return 1.0 if foreground == "bright" else -1.0


def intermodes_threshold(image: Any, *, nbins: int = _HIST_BINS) -> float:
    """Intermodes threshold (Prewitt & Mendelsohn): the midpoint between two histogram peaks.

    The histogram is smoothed with a three-bin running mean until it has exactly two local
    maxima; the level is the mean of the two peak positions.

    Parameters
    ----------
    image : ndarray
        Intensities of any shape; NaN and infinite values are ignored.
    nbins : int
        Number of histogram bins.

    Returns
    -------
    float
        The level; bright foreground is ``image > level``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = np.r_[rng.normal(10, 1, 4000), rng.normal(30, 2, 1000)]
    >>> 18 < intermodes_threshold(image) < 22
    True
    """
    values = finite_values(image)
    if int(nbins) < 3:
        raise ValueError(f"nbins must be at least 3, got {nbins}")
    counts, edges = np.histogram(values, bins=int(nbins))
    centres = 0.5 * (edges[:-1] + edges[1:])
    hist = counts.astype(np.float64)
    for _ in range(_MAX_SMOOTHING):
        peaks = _local_maxima(hist)
        if peaks.size == 2:
            return float(0.5 * (centres[peaks[0]] + centres[peaks[1]]))
        if peaks.size < 2:
            break
        # Beyond the data range the histogram is empty, hence mode="constant" (zeros).
        hist = ndi.uniform_filter1d(hist, 3, mode="constant")
    raise ValueError("the intermodes threshold failed: the histogram of image does not "
                     "become bimodal when smoothed")


def _local_maxima(hist: np.ndarray) -> np.ndarray:
    """Indices of local maxima, one (the first bin) per plateau."""
    first_of_run = np.r_[True, hist[1:] != hist[:-1]]
    runs = np.r_[-np.inf, hist[first_of_run], -np.inf]
    peak = (runs[1:-1] > runs[:-2]) & (runs[1:-1] > runs[2:])
    return np.flatnonzero(first_of_run)[peak]


def threshold_value(image: Any, *, method: str = "otsu") -> float:
    """Return an automatic threshold level for an image's intensities.

    Parameters
    ----------
    image : ndarray
        Intensities of any shape; NaN values are ignored.
    method : {"otsu", "li", "yen", "isodata", "mean", "triangle", "minimum", "intermodes"}
        How the level is chosen: scikit-image's ``threshold_<method>``, or
        :func:`intermodes_threshold`.

    Returns
    -------
    float
        The level; foreground is ``image > level`` for bright objects.

    Examples
    --------
    >>> image = np.r_[np.zeros(50), np.ones(50)]
    >>> 0 < threshold_value(image) < 1
    True
    """
    from skimage import filters

    if method not in AUTOMATIC_METHODS:
        raise ValueError(
            f"method must be one of {', '.join(AUTOMATIC_METHODS)}, got {method!r}"
        )
    values = finite_values(image)
    if method == "intermodes":
        return intermodes_threshold(values)
    func = getattr(filters, f"threshold_{method}")
    try:
        return float(func(values))
    except RuntimeError as exc:  # e.g. threshold_minimum on a histogram without two peaks
        raise ValueError(f"the {method} threshold failed on this image: {exc}") from None


def multi_level_threshold(image: Any, *, classes: int = 3) -> np.ndarray:
    """Multi-Otsu levels that split the intensities into ``classes`` classes.

    Parameters
    ----------
    image : ndarray
        Intensities of any shape; NaN values are ignored.
    classes : int
        Number of classes K (2 or more); K - 1 levels are returned.

    Returns
    -------
    (K - 1,) ndarray of float64
        Increasing levels.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = np.repeat([0.0, 1.0, 2.0], 100) + rng.normal(0, 0.05, 300)
    >>> levels = multi_level_threshold(image, classes=3)
    >>> bool(0 < levels[0] < 1 < levels[1] < 2)
    True
    """
    from skimage.filters import threshold_multiotsu

    classes = _check_classes(classes)
    values = finite_values(image)
    distinct = np.unique(values).size
    if distinct < classes:
        raise ValueError(f"classes is {classes} but image has only {distinct} distinct values")
    nbins = _HIST_BINS if classes <= 5 else 128
    try:
        levels = threshold_multiotsu(values, classes=classes, nbins=nbins)
    except ValueError as exc:
        raise ValueError(f"the multi-level threshold with {classes} classes failed on this "
                         f"image: {exc}") from None
    return np.asarray(levels, dtype=np.float64)


def _check_classes(classes: Any) -> int:
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)):
        raise TypeError(f"classes must be a whole number, got {classes!r}")
    if classes < 2:
        raise ValueError(f"classes must be at least 2, got {classes}")
    return int(classes)


def auto_hysteresis_levels(image: Any, *, foreground: str = "bright",
                           noise_factor: float = 3.0) -> tuple[float, float]:
    """Choose hysteresis levels automatically: strong from Otsu, weak from the background noise.

    The rule: the strong level is Otsu's; the pixels on the background side of it are the
    background, with median ``m`` and robust standard deviation ``s`` (1.4826 x the median
    absolute deviation); the weak level is ``m + noise_factor * s`` (towards the foreground),
    so weak pixels are those that background noise alone rarely reaches. If that would not lie
    between ``m`` and the strong level, the midpoint of the two is used.

    Parameters
    ----------
    image : ndarray
        Intensities of any shape; NaN values are ignored.
    foreground : {"bright", "dark"}
        Whether objects are brighter or darker than the background.
    noise_factor : float
        How many background standard deviations the weak level lies from the background.

    Returns
    -------
    (float, float)
        ``(low, high)`` in image units with ``low < high``. For bright objects ``high`` is the
        strong level and ``low`` the weak one; for dark objects ``low`` is strong and ``high``
        weak.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> image = rng.normal(0.2, 0.02, (64, 64)); image[20:40, 20:40] += 0.8
    >>> low, high = auto_hysteresis_levels(image)
    >>> bool(0.2 + 2 * 0.02 < low < 0.2 + 4 * 0.02) and bool(low < high < 1.0)
    True
    """
    sign = check_foreground(foreground)
    if not np.isfinite(noise_factor) or noise_factor <= 0:
        raise ValueError(f"noise_factor must be a positive number, got {noise_factor}")
    values = sign * finite_values(image)
    strong = threshold_value(values, method="otsu")
    background = values[values <= strong]
    centre = float(np.median(background))
    spread = 1.4826 * float(np.median(np.abs(background - centre)))
    weak = centre + noise_factor * spread
    if not centre < weak < strong:
        weak = 0.5 * (centre + strong)
    low, high = sorted((sign * weak, sign * strong))
    return float(low), float(high)


def results_based_threshold(
    image: Any,
    *,
    object_size: tuple[float, float],
    foreground: str = "bright",
    candidates: int = 64,
    connectivity: int | None = None,
) -> tuple[float, dict[str, Any]]:
    """The level whose objects' sizes best fall in an expected range (results-based choice).

    Candidate levels are spread over the 1st to 99th percentile of the intensities; at each,
    the connected objects are counted and scored as (objects whose size is within
    ``object_size``) minus (objects outside it). The best-scoring level wins; among equal
    scores the middle one of the longest run is taken, which is the most stable choice.

    This method is biased by construction: it assumes the answer (the object size) and favours
    the level that reproduces it, so it cannot tell you the sizes are what you expected.

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Image; NaN pixels are never foreground.
    object_size : (float, float)
        Smallest and largest expected object size in pixels (voxels).
    foreground : {"bright", "dark"}
        Whether objects are brighter or darker than the background.
    candidates : int
        Number of candidate levels tried.
    connectivity : int, optional
        Neighbourhood of a connected object (1 = faces only; default: all neighbours).

    Returns
    -------
    level : float
        The chosen level in image units.
    details : dict
        ``levels`` tried, ``in_range`` and ``out_of_range`` object counts per level.

    Examples
    --------
    >>> image = np.zeros((40, 40)); image[5:10, 5:10] = 1.0; image[20:30, 20:30] = 0.5
    >>> level, details = results_based_threshold(image, object_size=(80, 120))
    >>> 0 < level < 0.5
    True
    """
    sign = check_foreground(foreground)
    low_size, high_size = _check_size_range(object_size)
    array = np.asarray(image)
    values = finite_values(array)
    if int(candidates) < 2:
        raise ValueError(f"candidates must be at least 2, got {candidates}")
    signed = sign * array.astype(np.float32, copy=False)
    signed = np.where(np.isfinite(signed), signed, -np.inf)
    lo, hi = np.percentile(sign * values, [1, 99])
    if hi <= lo:
        lo, hi = float(np.min(sign * values)), float(np.max(sign * values))
    trial = np.linspace(lo, hi, int(candidates) + 2)[1:-1]
    structure = ndi.generate_binary_structure(array.ndim, connectivity or array.ndim)
    in_range = np.zeros(trial.size, np.int64)
    out_range = np.zeros(trial.size, np.int64)
    for i, level in enumerate(trial):
        labels, count = ndi.label(signed > level, structure=structure)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        inside = (sizes >= low_size) & (sizes <= high_size)
        in_range[i] = int(inside.sum())
        out_range[i] = int((~inside).sum())
    score = in_range - out_range
    if in_range.max() == 0:
        raise ValueError(f"no threshold level gives objects of {low_size:g} to {high_size:g} "
                         "pixels in image; check object_size")
    best = np.flatnonzero(score == score.max())
    runs = np.split(best, np.flatnonzero(np.diff(best) != 1) + 1)
    longest = max(runs, key=len)
    chosen = float(trial[longest[len(longest) // 2]])
    details = {
        "levels": (sign * trial).tolist(),
        "in_range": in_range.tolist(),
        "out_of_range": out_range.tolist(),
    }
    return sign * chosen, details


def _check_size_range(object_size: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in object_size)
    except (TypeError, ValueError):
        raise ValueError(f"object_size must be two numbers (smallest, largest), "
                         f"got {object_size!r}") from None
    if not (np.isfinite(low) and np.isfinite(high)) or low < 1 or high < low:
        raise ValueError(f"object_size must satisfy 1 <= smallest <= largest, got {object_size!r}")
    return low, high
