"""The spot cleaners other than ``auto`` and ``knn``, each on one float32 2D frame.

Every function returns ``(mask, cleaned)``: the bool mask of spot pixels and the cleaned
float32 frame. Thresholds of the noise-aware methods are in units of the noise standard
deviation fitted by :func:`._spots_auto.estimate_noise`; the baseline's is in image units.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._spots_auto import _components, detect_auto, estimate_noise, validate_components
from ._spots_core import fit_noise_model, masked_window_medians, noise_floor, sample_grid

#: Gaussian scales (pixels) of the LoG detector: spots of radius ~1 to 6 pixels.
LOG_SCALES = (0.7, 1.4, 2.8, 4.0)
#: Once the LoG has found a spot, its pixels need only this many noise units.
LOG_PIXEL_THRESHOLD = 3.0
#: The sigmoid weight is applied only where it is at least this (elsewhere f is kept).
SIGMOID_MIN_WEIGHT = 0.01

_SIGNS = {"bright": (1.0,), "dark": (-1.0,), "both": (1.0, -1.0)}


def fill_spots(frame: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """``frame`` with the pixels of ``mask`` set to the median of their unmasked neighbours."""
    out = frame.copy()
    ys, xs = np.nonzero(mask)
    if ys.size:
        out[ys, xs] = masked_window_medians(frame, mask, ys, xs, size)
    return out


def clean_baseline(frame: np.ndarray, *, polarity: str, size: int, threshold: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The lectures' cleaner: ``|f - median| > threshold`` (image units), replaced by the median."""
    med = ndimage.median_filter(frame, size=size, mode="reflect")
    diff = frame - med
    mask = np.zeros(frame.shape, dtype=bool)
    if polarity in ("bright", "both"):
        mask |= diff > threshold
    if polarity in ("dark", "both"):
        mask |= -diff > threshold
    return mask, np.where(mask, med, frame).astype(np.float32)


def clean_auto(frame: np.ndarray, *, polarity: str, size: int, threshold: float,
               structure_ratio: float, source: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Noise-aware median test with peeling and validation (see :mod:`._spots_auto`)."""
    det = detect_auto(frame, size=size, threshold=threshold, polarity=polarity,
                      structure_ratio=structure_ratio, source=source)
    filled = fill_spots(det.base, det.mask, size)
    out = frame.copy()
    out[det.mask] = filled[det.mask]
    return det.mask, out


def clean_sigmoid(frame: np.ndarray, *, polarity: str, size: int, threshold: float,
                  width: float, structure_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft replacement: ``w * background + (1 - w) * f`` with a sigmoid weight.

    ``w = 1 / (1 + exp(-(z - threshold) / width))`` where ``z`` is the noise-scaled residual
    ``|f - median| / sigma`` of the ``auto`` detector (in the direction of ``polarity``). The
    background is the median of the unflagged neighbours for pixels above the threshold
    (the ``auto`` mask, ``w > 0.5``) and the window median for the weaker ones, so values
    just below the threshold are pulled part of the way instead of being left or replaced
    outright.
    """
    det = detect_auto(frame, size=size, threshold=threshold, polarity=polarity,
                      structure_ratio=structure_ratio, scores=True,
                      prescreen=max(threshold - 6.0 * width, 0.0))
    assert det.score is not None and det.background is not None
    z = det.score
    if polarity == "bright":
        z = np.maximum(z, 0.0)
    elif polarity == "dark":
        z = np.maximum(-z, 0.0)
    else:
        z = np.abs(z)
    weight = np.zeros(frame.shape, dtype=np.float32)
    tested = z > 0
    weight[tested] = 1.0 / (1.0 + np.exp(-(z[tested] - threshold) / width))
    weight[det.rejected] = 0.0
    weight[det.mask] = np.maximum(weight[det.mask], 0.5)
    target = det.background.copy()
    filled = fill_spots(det.base, det.mask, size)
    target[det.mask] = filled[det.mask]
    soft = weight >= SIGMOID_MIN_WEIGHT
    out = frame.copy()
    out[soft] = weight[soft] * target[soft] + (1.0 - weight[soft]) * frame[soft]
    return det.mask, out


def clean_morph(frame: np.ndarray, *, polarity: str, size: int, threshold: float,
                max_area: int, structure_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Peak (and pit) removal limited to ``max_area`` pixels, by connected filtering.

    An area opening removes every bright structure whose connected area, at each grey
    level, is below ``max_area + 1`` pixels: the union of all openings by reconstruction
    with connected shapes of that area, i.e. grey-scale peak removal with a maximum spot
    area. Dark spots use the area closing (hole filling with the same limit). Pixels that
    the opening lowers by more than ``threshold`` noise units are spots; larger objects,
    whatever their brightness, survive the opening untouched.
    """
    from skimage.morphology import area_closing, area_opening

    noise = estimate_noise(frame, size)
    mask = np.zeros(frame.shape, dtype=bool)
    for sign in _SIGNS[polarity]:
        if sign > 0:
            flat = area_opening(frame, area_threshold=max_area + 1, connectivity=2)
            depth = frame - flat
        else:
            flat = area_closing(frame, area_threshold=max_area + 1, connectivity=2)
            depth = flat - frame
        found = depth > threshold * noise(flat)
        mask |= validate_components(frame, found, sign=sign, ratio=structure_ratio)
    return mask, fill_spots(frame, mask, size)


def clean_log(frame: np.ndarray, *, polarity: str, size: int, threshold: float,
              structure_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Laplacian-of-Gaussian detection at spot scales, with pixel-exact delineation.

    1. For each scale ``s`` in :data:`LOG_SCALES` the scale-normalised response
       ``-s**2 * LoG_s(f)`` is computed as twice the weaker of the two principal curvatures
       (the Hessian eigenvalues, whose sum is the Laplacian): on a round spot of radius
       about ``s * sqrt(2)`` both equal half the LoG, across an edge only one is large, so
       edges do not respond. Each scale's response is divided by its own noise, fitted
       against the smoothed level like the median residual
       (:func:`._spots_core.fit_noise_model`), measured on the image with the spots of
       step 2 removed: the threshold adapts to the local Poisson noise and to the scale.
       Pixels where the best scale exceeds ``threshold`` are seeds.
    2. The LoG integrates over a spot, so it finds weak multi-pixel spots, but its response
       is blurred. The spot's own pixels are taken from the median residual test of the
       ``auto`` detector at the lower :data:`LOG_PIXEL_THRESHOLD`: each connected region it
       flags is kept when it touches a seed.
    """
    shape = frame.shape
    det = detect_auto(frame, size=size, threshold=min(LOG_PIXEL_THRESHOLD, threshold),
                      polarity=polarity, structure_ratio=structure_ratio)
    # The responses of strong spots reach far (a few times the scale) and would inflate a
    # noise estimate taken on the image itself; the noise is measured where the liberal
    # median test has already removed them.
    quiet = fill_spots(frame, det.mask, size)
    smooth = ndimage.gaussian_filter(quiet, 2.0 * max(LOG_SCALES), mode="reflect")
    ys, xs = sample_grid(shape)
    seeds = np.zeros(shape, dtype=bool)
    for sign in _SIGNS[polarity]:
        best = np.zeros(shape, dtype=np.float32)
        for scale in LOG_SCALES:
            reference = _blob_response(quiet, scale, sign)
            model = fit_noise_model(smooth[ys, xs], reference[ys, xs],
                                    floor=noise_floor(reference))
            response = _blob_response(frame, scale, sign)
            np.maximum(best, response / model(smooth), out=best)
        seeds |= best > threshold
    labels, count = ndimage.label(det.mask, structure=np.ones((3, 3), dtype=bool))
    near = ndimage.binary_dilation(seeds, structure=np.ones((3, 3), dtype=bool))
    touched = np.zeros(count + 1, dtype=bool)
    touched[np.unique(labels[near & det.mask])] = True
    touched[0] = False
    mask = touched[labels]
    out = frame.copy()
    out[mask] = fill_spots(det.base, mask, size)[mask]
    return mask, out


def _blob_response(frame: np.ndarray, scale: float, sign: float) -> np.ndarray:
    """Scale-normalised blob response: twice the weaker principal curvature of the spot's sign.

    The Laplacian is the sum of the Hessian's two eigenvalues. On a round blob they are
    equal, so twice the weaker one equals the LoG; across an edge only one is large, so the
    weaker one (and this response) stays at noise level, where the LoG would respond.
    """
    hyy = ndimage.gaussian_filter(frame, scale, order=(2, 0), mode="reflect")
    hxx = ndimage.gaussian_filter(frame, scale, order=(0, 2), mode="reflect")
    hxy = ndimage.gaussian_filter(frame, scale, order=(1, 1), mode="reflect")
    half_trace = 0.5 * (hxx + hyy)
    root = np.sqrt(0.25 * (hxx - hyy) ** 2 + hxy ** 2)
    # A bright blob has two negative curvatures: the weaker is the larger eigenvalue.
    weaker = -(half_trace + root) if sign > 0 else half_trace - root
    return (2.0 * scale ** 2 * weaker).astype(np.float32)


def limit_area(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Remove connected regions (8-connectivity) larger than ``max_area`` pixels."""
    index = np.flatnonzero(mask)
    if index.size <= max_area:
        return mask
    labels, count = _components(index, mask.shape)
    small = np.bincount(labels, minlength=count) <= max_area
    if small.all():
        return mask
    out = np.zeros_like(mask)
    out.reshape(-1)[index[small[labels]]] = True
    return out
