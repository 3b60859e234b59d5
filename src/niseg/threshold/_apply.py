"""Applying thresholds: hysteresis, local, background correction, guarded edges, clean-up."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

from niseg.threshold._levels import check_foreground, finite_values

__all__ = [
    "clean_binary",
    "correct_background",
    "guarded_multilevel",
    "hysteresis_threshold",
    "local_threshold",
]

# The morphological background is computed on a grid this many times coarser than σ, which
# keeps a large opening fast; the result is smooth anyway.
_COARSE_PER_SIGMA = 4


def _image(image: Any, name: str = "image") -> np.ndarray:
    array = np.asarray(image)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2D (M, N) or 3D (M, N, P) image, "
                         f"got shape {array.shape}")
    return array


def hysteresis_threshold(image: Any, *, low: float, high: float, foreground: str = "bright",
                         connectivity: int | None = None) -> np.ndarray:
    """Two-level threshold: weak pixels are kept only where connected to strong ones.

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Image; NaN pixels are never foreground.
    low, high : float
        Levels in image units, ``low < high``. Bright objects: strong pixels are
        ``image > high``, weak ones ``image > low``. Dark objects: strong pixels are
        ``image < low``, weak ones ``image < high``.
    foreground : {"bright", "dark"}
        Whether objects are brighter or darker than the background.
    connectivity : int, optional
        Neighbourhood linking weak to strong pixels (1 = faces only; default: all neighbours).

    Returns
    -------
    (M, N[, P]) ndarray of uint8
        1 = foreground, 0 = background.

    Examples
    --------
    >>> image = np.array([[0.0, 0.5, 0.5, 1.0, 0.0, 0.5]])
    >>> hysteresis_threshold(image, low=0.3, high=0.8).tolist()
    [[0, 1, 1, 1, 0, 0]]
    """
    sign = check_foreground(foreground)
    array = _image(image)
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high)) or low >= high:
        raise ValueError(f"hysteresis levels must be finite with low < high, got low={low:g} "
                         f"and high={high:g}")
    values = array.astype(np.float32, copy=False)
    if sign > 0:
        weak, strong = values > low, values > high
    else:
        weak, strong = values < high, values < low
    structure = ndi.generate_binary_structure(array.ndim, connectivity or array.ndim)
    labels, count = ndi.label(weak, structure=structure)
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    return keep[labels].astype(np.uint8)


def local_threshold(image: Any, *, block_size: int, offset: float = 0.0,
                    foreground: str = "bright", method: str = "gaussian") -> np.ndarray:
    """Adaptive threshold: each pixel is compared with a weighted mean of its neighbourhood.

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Image; NaN pixels are never foreground.
    block_size : int
        Odd side of the neighbourhood in pixels (3 or more).
    offset : float
        Subtracted from the local mean (added for dark objects), in image units.
    foreground : {"bright", "dark"}
        Whether objects are brighter or darker than their surroundings.
    method : {"gaussian", "mean", "median"}
        Weighting of the neighbourhood (scikit-image's ``threshold_local``).

    Returns
    -------
    (M, N[, P]) ndarray of uint8
        1 = foreground, 0 = background.

    Examples
    --------
    >>> yy, xx = np.mgrid[:40, :40]
    >>> image = xx / 40.0; image[10:14, 30:34] += 0.5; image[10:14, 5:9] += 0.5
    >>> mask = local_threshold(image, block_size=15)
    >>> int(mask[10:14, 30:34].sum()), int(mask[10:14, 5:9].sum())
    (16, 16)
    """
    from skimage.filters import threshold_local

    sign = check_foreground(foreground)
    array = _image(image)
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size < 3 or block_size % 2 == 0:
        raise ValueError(f"block_size must be an odd whole number of at least 3, got {block_size}")
    if method not in ("gaussian", "mean", "median"):
        raise ValueError(f"method must be 'gaussian', 'mean' or 'median', got {method!r}")
    values = sign * array.astype(np.float32)
    finite = np.isfinite(values)
    filled = np.where(finite, values, np.median(values[finite]) if finite.any() else 0)
    finite_values(filled)
    local = threshold_local(filled, block_size=int(block_size), method=method,
                            offset=float(offset))
    return ((filled > local) & finite).astype(np.uint8)


def correct_background(image: Any, *, sigma: float, mode: str = "divide",
                       estimate: str = "morphological", foreground: str = "bright"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Remove uneven illumination by a smooth background estimate.

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Image; NaN pixels are ignored by the estimate and stay NaN.
        The estimate is least accurate within about ``2 sigma`` of the image border.
    sigma : float
        Scale of the background in pixels; it must be larger than the objects.
    mode : {"divide", "subtract"}
        ``divide`` (default; illumination is multiplicative): ``image / background``;
        ``subtract``: ``image - background``. Both are rescaled by the background's mean so
        that values stay in the image's units.
    estimate : {"morphological", "gaussian"}
        ``morphological`` (default): a grey opening (closing for dark objects) with a window
        ``2 sigma`` wide removes objects narrower than that, then a Gaussian of ``sigma / 2``
        smooths the rest;
        ``gaussian``: a Gaussian of ``sigma`` over everything, objects included.
    foreground : {"bright", "dark"}
        Which objects the morphological estimate removes.

    Returns
    -------
    corrected : (M, N[, P]) ndarray of float32
        The corrected image.
    background : (M, N[, P]) ndarray of float32
        The background estimate.

    Examples
    --------
    >>> yy, xx = np.mgrid[:128, :128]
    >>> light = 1.0 + xx / 128.0  # brightness doubles from left to right
    >>> disc = np.hypot(yy - 64, xx - 40) < 8
    >>> corrected, background = correct_background(light * (1.0 + disc), sigma=12)
    >>> ratio = corrected[~disc].max() / corrected[~disc].min()  # was 2 before correction
    >>> bool(ratio < 1.2)
    True
    """
    sign = check_foreground(foreground)
    array = _image(image)
    if isinstance(sigma, bool) or not np.isfinite(float(sigma)) or float(sigma) <= 0:
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma}")
    sigma = float(sigma)
    if mode not in ("divide", "subtract"):
        raise ValueError(f"mode must be 'divide' or 'subtract', got {mode!r}")
    if estimate not in ("morphological", "gaussian"):
        raise ValueError(f"estimate must be 'morphological' or 'gaussian', got {estimate!r}")
    values = array.astype(np.float32)
    finite = np.isfinite(values)
    finite_values(values)
    filled = np.where(finite, values, np.median(values[finite])).astype(np.float32)
    if estimate == "gaussian":
        background = ndi.gaussian_filter(filled, sigma, mode="reflect")
    else:
        background = _morphological_background(filled, sigma, sign)
    if mode == "divide":
        if (background <= 0).any():
            raise ValueError("the background of image is not positive everywhere, so it "
                             "cannot be divided out; use mode 'subtract'")
        corrected = filled / background * np.float32(background.mean())
    else:
        corrected = filled - background + np.float32(background.mean())
    corrected = corrected.astype(np.float32)
    corrected[~finite] = np.nan
    return corrected, background.astype(np.float32)


def _morphological_background(values: np.ndarray, sigma: float, sign: float) -> np.ndarray:
    step = max(1, int(sigma // _COARSE_PER_SIGMA))
    coarse = ndi.zoom(values, 1 / step, order=1, mode="nearest", grid_mode=True) \
        if step > 1 else values
    # A flat window 2 sigma wide removes objects narrower than that; the milder Gaussian after
    # it only smooths the window's blocky steps, so the illumination's shape is kept.
    size = 2 * max(1, round(sigma / step)) + 1
    opened = (ndi.grey_opening if sign > 0 else ndi.grey_closing)(coarse, size=size)
    smooth = ndi.gaussian_filter(opened, sigma / (2 * step), mode="nearest")
    if step == 1:
        return smooth
    factors = [n / c for n, c in zip(values.shape, smooth.shape)]
    full = ndi.zoom(smooth, factors, order=1, mode="nearest", grid_mode=True)
    return full[tuple(slice(0, n) for n in values.shape)]


def clean_binary(mask: Any, *, fill_holes: bool = False, min_size: int = 0, opening: int = 0,
                 closing: int = 0) -> np.ndarray:
    """Clean a binary result: opening, closing, small-object removal and hole filling.

    The steps run in that order: opening with a disk (ball in 3D) of radius ``opening``
    removes thin protrusions and specks, closing bridges narrow gaps, objects smaller than
    ``min_size`` pixels are removed and finally enclosed holes are filled.

    Parameters
    ----------
    mask : (M, N[, P]) ndarray
        Binary image (non-zero = foreground).
    fill_holes : bool
        Fill background regions not connected to the image border.
    min_size : int
        Remove objects with fewer pixels than this.
    opening, closing : int
        Radii in pixels of the structuring elements; 0 skips the step.

    Returns
    -------
    (M, N[, P]) ndarray of uint8
        The cleaned mask, 0/1.

    Examples
    --------
    >>> mask = np.zeros((9, 9), np.uint8); mask[2:7, 2:7] = 1; mask[4, 4] = 0; mask[0, 8] = 1
    >>> int(clean_binary(mask, fill_holes=True, min_size=2).sum())
    25
    """
    from skimage import morphology

    array = _image(mask, "mask") != 0
    for name, value in (("min_size", min_size), ("opening", opening), ("closing", closing)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a whole number of at least 0, got {value!r}")
    footprint = morphology.disk if array.ndim == 2 else morphology.ball
    if opening:
        array = ndi.binary_opening(array, structure=footprint(int(opening)))
    if closing:
        # Pad so that closing does not glue objects to the border.
        pad = int(closing)
        padded = np.pad(array, pad, mode="constant")
        padded = ndi.binary_closing(padded, structure=footprint(pad))
        array = padded[tuple(slice(pad, -pad) for _ in range(array.ndim))]
    if min_size > 1:
        labels, _count = ndi.label(array, structure=np.ones((3,) * array.ndim))
        sizes = np.bincount(labels.ravel())
        keep = sizes >= min_size
        keep[0] = False
        array = keep[labels]
    if fill_holes:
        array = ndi.binary_fill_holes(array)
    return array.astype(np.uint8)


def guarded_multilevel(image: Any, levels: Any, *, foreground: str = "bright",
                       sigma: float = 1.0, edge_level: float | None = None,
                       return_guard: bool = False) -> Any:
    """Multi-level labels with guarded edges against the "virtual skin" between classes.

    Where class 1 meets class 3, blur makes the boundary pass through class-2 values, so a
    plain multi-level threshold draws a thin false skin of class 2. Here pixels with a high
    gradient magnitude are left out at first; the rest are labelled by ``levels``; the left-out
    pixels are then filled by region growing from their labelled neighbours (a seeded
    watershed on the gradient magnitude, so each pixel joins the side of the edge it lies on).

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Image; NaN pixels get label 0.
    levels : sequence of float
        Increasing levels in image units (e.g. from :func:`multi_level_threshold`).
    foreground : {"bright", "dark"}
        Class order: bright -- class 1 is the darkest; dark -- class 1 is the brightest.
    sigma : float
        σ in pixels of the Gaussian gradient magnitude.
    edge_level : float, optional
        Gradient magnitude above which a pixel is guarded (image units per pixel); default:
        the Otsu level of the gradient magnitude.
    return_guard : bool
        Also return the guarded pixels.

    Returns
    -------
    labels : (M, N[, P]) ndarray of uint8
        Classes 1..K (K = len(levels) + 1), 0 for NaN pixels.
    guard : (M, N[, P]) ndarray of bool
        Only with ``return_guard``: the pixels that were left out and filled afterwards.

    Examples
    --------
    >>> image = np.repeat([[0.0] * 10 + [1.0] + [2.0] * 10], 8, axis=0)
    >>> labels = guarded_multilevel(image, [0.5, 1.5])
    >>> sorted(np.unique(labels).tolist())
    [1, 3]
    """
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    array = _image(image)
    labels = apply_levels(array, levels, foreground=foreground)
    if float(sigma) <= 0:
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma}")
    finite = np.isfinite(array)
    filled = np.where(finite, array, np.median(array[finite])).astype(np.float32)
    gradient = ndi.gaussian_gradient_magnitude(filled, float(sigma), mode="reflect")
    if edge_level is None:
        edge_level = float(threshold_otsu(gradient)) if np.ptp(gradient) > 0 else np.inf
    guard = (gradient > float(edge_level)) & finite
    markers = np.where(guard, 0, labels).astype(np.int32)
    if markers.any():
        grown = watershed(gradient, markers=markers, mask=finite)
        labels = grown.astype(np.uint8)
    return (labels, guard) if return_guard else labels


def apply_levels(image: np.ndarray, levels: Any, *, foreground: str = "bright") -> np.ndarray:
    """Classes 1..K from K-1 increasing levels (class K is the most foreground); NaN gets 0."""
    sign = check_foreground(foreground)
    levels = np.asarray(levels, dtype=np.float64).ravel()
    if levels.size == 0 or not np.isfinite(levels).all() or (np.diff(levels) <= 0).any():
        raise ValueError(f"levels must be finite and strictly increasing, got {levels.tolist()}")
    if levels.size > 254:
        raise ValueError(f"at most 254 levels fit in uint8 labels, got {levels.size}")
    array = np.asarray(image)
    values = array.astype(np.float64, copy=False)
    classes = np.digitize(values, levels, right=True)  # 0..K-1, value == level goes below
    if sign < 0:
        classes = levels.size - classes
    labels = (classes + 1).astype(np.uint8)
    labels[~np.isfinite(values)] = 0
    return labels
