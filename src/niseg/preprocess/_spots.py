"""Spot (outlier) detection and cleaning: gamma spots, dead and hot pixels, zingers.

Gamma rays and fast neutrons that hit the camera sensor directly leave sharp bright spots
(dead or cold pixels leave dark ones) that do not belong to the object. This module finds
and replaces them, in single images, frame by frame in stacks, or along the frame axis.

Methods (``method=``):

- ``"auto"`` (default): ``|f - median|`` against a noise model fitted to the image itself
  (:mod:`._spots_auto`), peeled from the outside in so spots up to about twice the window
  are found, validated against the background around each spot so edges and corners are
  not taken for spots, and replaced by the median of the unflagged neighbours. One setting
  works from 100 to 10 000 counts per pixel, and it is several times faster than a median
  filter because exact medians are computed only where a spot is possible.
- ``"baseline"``: the lectures' method, ``|f - median| > threshold`` with ``threshold`` in
  image units, replaced by the median.
- ``"morph"``: peak (and pit) removal limited to ``max_area`` pixels by area opening and
  closing (connected grey-scale filters), thresholded in noise units.
- ``"sigmoid"``: soft replacement ``w * background + (1 - w) * f`` with a sigmoid weight of
  the noise-scaled residual (centre ``threshold``, width ``width``).
- ``"log"``: Laplacian-of-Gaussian (blob) responses at spot scales, each against its own
  noise, with pixel-exact delineation by the median residual.
- ``"knn"``: a k-nearest-neighbour classifier on (intensity, |f - median|), as in the
  lecture; given ``detector=`` or trained self-supervised on the image
  (:mod:`._spots_knn`).
- ``"cnn"``: a small convolutional network trained on simulated radiographs from 50 to
  20 000 counts (:class:`niseg.deep.CNNSpotDetector`); the model shipped with niseg unless
  ``detector=`` gives another. Needs PyTorch (``pip install 'niseg[deep]'``).

``polarity`` selects bright spots, dark spots or both. Thresholds of all methods but the
baseline are in multiples of the noise standard deviation of ``f - median``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._spots_knn import KNNSpotDetector, train_on_image
from ._spots_methods import (
    clean_auto,
    clean_baseline,
    clean_log,
    clean_morph,
    clean_sigmoid,
    fill_spots,
    limit_area,
)
from ._spots_temporal import clean_temporal

__all__ = ["SPOT_METHODS", "SPOT_POLARITIES", "clean_spots", "detect_spots"]

#: Names accepted by ``method=``.
SPOT_METHODS = ("auto", "baseline", "morph", "sigmoid", "log", "knn", "cnn")
#: Names accepted by ``polarity=``.
SPOT_POLARITIES = ("bright", "dark", "both")
#: Default threshold of the noise-aware methods, in noise standard deviations.
DEFAULT_THRESHOLD = 5.0
#: A flagged region must stand this many times above the spread of its surroundings.
STRUCTURE_RATIO = 3.0
TEMPORAL_METHODS = ("auto", "baseline", "sigmoid")


def detect_spots(
    image: Any,
    *,
    method: str = "auto",
    polarity: str = "bright",
    size: int = 5,
    threshold: float | None = None,
    max_area: int | None = None,
    width: float = 1.0,
    frame_axis: int | None = None,
    temporal: bool = False,
    detector: Any = None,
    seed: int = 0,
) -> np.ndarray:
    """Find spot (outlier) pixels in an image or a stack of frames.

    Parameters
    ----------
    image : (M, N) or (F, M, N) ndarray
        A 2D image, or a stack of 2D frames along ``frame_axis`` (any axis). Any real
        dtype; values must be finite.
    method : {"auto", "baseline", "morph", "sigmoid", "log", "knn", "cnn"}, optional
        Detector (see the module notes); ``"auto"`` needs no tuning.
    polarity : {"bright", "dark", "both"}, optional
        Spots brighter than their surroundings (gamma spots, hot pixels), darker (dead or
        cold pixels) or both.
    size : int, optional
        Side of the median window in pixels (odd, 3 to 31); with ``temporal`` the number of
        frames compared. ``auto`` finds spots up to about twice this size.
    threshold : float, optional
        Detection threshold. ``baseline``: the ``|f - median|`` limit in image units
        (required). Other methods: multiples of the noise standard deviation (default 5).
        Not used by ``knn`` and ``cnn``.
    max_area : int, optional
        Connected regions (8-connectivity) larger than this many pixels are objects, not
        spots, and are left alone. Default ``4 * size**2`` (a square twice the window:
        100 pixels for the default window), except ``baseline``, which has no limit as in
        the lecture. ``morph`` removes peaks up to this area.
    width : float, optional
        ``sigmoid`` only: width of the weight's transition in noise units.
    frame_axis : int, optional
        Axis of the frames of a 3D stack; each frame is processed on its own (or, with
        ``temporal``, against its neighbours).
    temporal : bool, optional
        Compare each pixel with the median of the same pixel in the ``size - 1``
        neighbouring frames instead of its spatial neighbours (spots rarely persist
        between frames). Needs ``frame_axis`` and at least 3 frames; methods ``auto``,
        ``baseline`` and ``sigmoid``.
    detector : KNNSpotDetector or CNNSpotDetector, optional
        ``knn``: a fitted :class:`KNNSpotDetector`; by default one is trained on the image
        itself (on the first frame of a stack) by adding simulated spots to a cleaned copy.
        ``cnn``: a fitted :class:`niseg.deep.CNNSpotDetector`; by default the one shipped
        with niseg.
    seed : int, optional
        Seed of the random steps (the ``knn`` self-supervised training).

    Returns
    -------
    ndarray of bool, same shape as ``image``
        True at spot pixels.

    Examples
    --------
    >>> from niseg.preprocess import detect_spots
    >>> from niseg.simulate import simulate_spots
    >>> sim = simulate_spots(size=128, counts=1000.0, seed=4)
    >>> found = detect_spots(sim.raw)
    >>> truth = sim.mask == 1
    >>> bool((found & truth).sum() >= 0.9 * truth.sum())
    True
    >>> bool((found & ~truth).sum() <= 0.1 * found.sum())
    True
    """
    mask, _ = _process(image, method=method, polarity=polarity, size=size,
                       threshold=threshold, max_area=max_area, width=width,
                       frame_axis=frame_axis, temporal=temporal, detector=detector, seed=seed)
    return mask


def clean_spots(
    image: Any,
    *,
    method: str = "auto",
    polarity: str = "bright",
    size: int = 5,
    threshold: float | None = None,
    max_area: int | None = None,
    width: float = 1.0,
    frame_axis: int | None = None,
    temporal: bool = False,
    detector: Any = None,
    seed: int = 0,
    return_mask: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Replace spot (outlier) pixels by plausible background values.

    Spot pixels get the median of their unflagged neighbours (the window grows until
    enough are found, so the core of a large spot gets background values, not spot
    values); ``baseline`` uses the plain window median as the lecture does, ``sigmoid``
    blends softly and ``temporal`` uses the median of the pixel in neighbouring frames.
    Pixels that are not spots keep their exact input values.

    Parameters
    ----------
    image : (M, N) or (F, M, N) ndarray
        As in :func:`detect_spots`.
    method, polarity, size, threshold, max_area, width, frame_axis, temporal, detector, seed
        As in :func:`detect_spots`.
    return_mask : bool, optional
        Also return the spot mask.

    Returns
    -------
    cleaned : ndarray, same shape and dtype as ``image``
        The cleaned image. Integer images stay integer: replacement values are rounded
        to the nearest integer and clipped to the dtype's range.
    mask : ndarray of bool, same shape as ``image``
        Only with ``return_mask``: the spot pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.preprocess import clean_spots
    >>> from niseg.simulate import simulate_spots
    >>> sim = simulate_spots(size=256, counts=1000.0, seed=3)
    >>> raw = np.round(sim.raw).astype(np.uint16)
    >>> cleaned, mask = clean_spots(raw, polarity="both", return_mask=True)
    >>> cleaned.dtype, mask.dtype
    (dtype('uint16'), dtype('bool'))
    >>> def rmse(a):
    ...     return float(np.sqrt(np.mean((a.astype(float) - sim.clean) ** 2)))
    >>> rmse(raw) > 10 * rmse(cleaned)
    True
    """
    array = _check_image(image)
    mask, cleaned = _process(array, method=method, polarity=polarity, size=size,
                             threshold=threshold, max_area=max_area, width=width,
                             frame_axis=frame_axis, temporal=temporal, detector=detector,
                             seed=seed)
    out = _restore_dtype(array, cleaned)
    return (out, mask) if return_mask else out


# ------------------------------------------------------------------------------ driver


def _process(image: Any, *, method: str, polarity: str, size: int, threshold: float | None,
             max_area: int | None, width: float, frame_axis: int | None, temporal: bool,
             detector: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate everything, run the method frame by frame; (mask, cleaned float32)."""
    array = _check_image(image)
    method = _check_choice("method", method, SPOT_METHODS)
    polarity = _check_choice("polarity", polarity, SPOT_POLARITIES)
    size = _check_size(size)
    threshold = _check_threshold(method, threshold)
    max_area = _check_max_area(max_area)
    width = _check_positive("width", width)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if not isinstance(temporal, (bool, np.bool_)):
        raise TypeError(f"temporal must be True or False, got {type(temporal).__name__}")
    if method == "cnn":
        detector = _cnn_detector(detector)
    elif detector is not None:
        if method != "knn":
            raise ValueError(f"detector is only used by methods 'knn' and 'cnn', "
                             f"not {method!r}")
        if not isinstance(detector, KNNSpotDetector):
            raise TypeError(f"detector must be a fitted KNNSpotDetector, "
                            f"got {type(detector).__name__}")
        detector._check_fitted()

    if frame_axis is None:
        if array.ndim != 2:
            hint = "; pass frame_axis to clean a stack frame by frame" if array.ndim == 3 else ""
            raise ValueError(f"image must be 2D (M, N), got shape {array.shape}{hint}")
        if temporal:
            raise ValueError("temporal=True needs a stack of frames and its frame_axis")
        stack = array[None]
    else:
        if array.ndim != 3:
            raise ValueError(f"frame_axis is given, so image must be a 3D stack of frames, "
                             f"got shape {array.shape}")
        if isinstance(frame_axis, bool) or not isinstance(frame_axis, (int, np.integer)):
            raise TypeError(f"frame_axis must be an integer axis, got {frame_axis!r}")
        if not -3 <= frame_axis <= 2:
            raise ValueError(f"frame_axis must be an axis of a 3D stack (-3 to 2), "
                             f"got {frame_axis}")
        stack = np.moveaxis(array, int(frame_axis), 0)
    mask = np.zeros(stack.shape, dtype=bool)
    cleaned = np.empty(stack.shape, dtype=np.float32)
    if temporal:
        if method not in TEMPORAL_METHODS:
            raise ValueError(f"temporal=True works with method 'auto', 'baseline' or "
                             f"'sigmoid', not {method!r}")
        if stack.shape[0] < 3:
            raise ValueError(f"temporal=True needs at least 3 frames, got {stack.shape[0]}")
        for i, (found, values) in enumerate(clean_temporal(
                stack, method=method, polarity=polarity, size=size, threshold=threshold,
                width=width, structure_ratio=STRUCTURE_RATIO)):
            mask[i], cleaned[i] = found, values
    else:
        for i in range(stack.shape[0]):
            frame = np.ascontiguousarray(stack[i], dtype=np.float32)
            if method == "knn" and detector is None:
                detector = train_on_image(frame, polarity=polarity, size=size, seed=int(seed))
            # Row medians for the pre-screen run faster on 8- and 16-bit integers.
            source = stack[i] if stack.dtype.kind in "iu" and stack.dtype.itemsize <= 2 else None
            mask[i], cleaned[i] = _clean_frame(frame, method=method, polarity=polarity,
                                               size=size, threshold=threshold,
                                               max_area=max_area, width=width,
                                               detector=detector, source=source)
    if max_area is None and method != "baseline":
        max_area = 4 * size * size
    if max_area is not None and method != "morph":
        for i in range(stack.shape[0]):
            small = limit_area(mask[i], max_area)
            dropped = mask[i] & ~small
            if dropped.any():
                frame = np.ascontiguousarray(stack[i], dtype=np.float32)
                cleaned[i][dropped] = frame[dropped]
                mask[i] = small
    if frame_axis is None:
        return mask[0], cleaned[0]
    return np.moveaxis(mask, 0, int(frame_axis)), np.moveaxis(cleaned, 0, int(frame_axis))


def _clean_frame(frame: np.ndarray, *, method: str, polarity: str, size: int,
                 threshold: float, max_area: int | None, width: float,
                 detector: Any, source: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    if method == "auto":
        return clean_auto(frame, polarity=polarity, size=size, threshold=threshold,
                          structure_ratio=STRUCTURE_RATIO, source=source)
    if method == "baseline":
        return clean_baseline(frame, polarity=polarity, size=size, threshold=threshold)
    if method == "sigmoid":
        return clean_sigmoid(frame, polarity=polarity, size=size, threshold=threshold,
                             width=width, structure_ratio=STRUCTURE_RATIO)
    if method == "morph":
        area = 4 * size * size if max_area is None else max_area
        return clean_morph(frame, polarity=polarity, size=size, threshold=threshold,
                           max_area=area, structure_ratio=STRUCTURE_RATIO)
    if method == "log":
        return clean_log(frame, polarity=polarity, size=size, threshold=threshold,
                         structure_ratio=STRUCTURE_RATIO)
    assert detector is not None
    if method == "cnn":
        mask = detector.detect(frame, polarity=polarity)
        return mask, fill_spots(frame, mask, size)
    mask = detector.predict(frame)
    if polarity != "both":
        from scipy import ndimage

        med = ndimage.median_filter(frame, size=size, mode="reflect")
        mask &= (frame > med) if polarity == "bright" else (frame < med)
    return mask, fill_spots(frame, mask, size)


def _cnn_detector(detector: Any) -> Any:
    """The given CNN spot detector, checked, or the shipped one (torch imported only here)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ImportError("method 'cnn' needs PyTorch: pip install 'niseg[deep]'") from None
    from niseg.deep._spots import CNNSpotDetector, shipped_spot_detector

    if detector is None:
        return shipped_spot_detector()
    if not isinstance(detector, CNNSpotDetector):
        raise TypeError(f"detector must be a fitted CNNSpotDetector for method 'cnn', "
                        f"got {type(detector).__name__}")
    detector._check_fitted()
    return detector


# ------------------------------------------------------------------------------ checks


def _check_image(image: Any) -> np.ndarray:
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"image must be a numeric array, got {type(image).__name__}")
    array = np.asarray(image)
    if array.dtype == bool or array.dtype.kind not in "iuf":
        raise TypeError(f"image must hold real numbers, got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"image is empty (shape {array.shape})")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"image has {bad} NaN or infinite values; spot cleaning needs finite "
                         f"values (fill or crop them first)")
    return array


def _check_frame(image: Any, *, name: str) -> np.ndarray:
    array = _check_image(image)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2D (M, N), got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return str(value)


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an odd integer from 3 to 31, got {type(size).__name__}")
    if size < 3 or size > 31 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer from 3 to 31, got {size}")
    return int(size)


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_threshold(method: str, threshold: Any) -> float:
    if threshold is None:
        if method == "baseline":
            raise ValueError("method 'baseline' needs threshold: the |f - median| limit in "
                             "image units (the other methods default to 5 noise deviations)")
        return DEFAULT_THRESHOLD
    return _check_positive("threshold", threshold)


def _check_max_area(max_area: Any) -> int | None:
    if max_area is None:
        return None
    if isinstance(max_area, bool) or not isinstance(max_area, (int, np.integer)):
        raise TypeError(f"max_area must be a positive integer number of pixels, "
                        f"got {type(max_area).__name__}")
    if max_area < 1:
        raise ValueError(f"max_area must be a positive integer number of pixels, "
                         f"got {max_area}")
    return int(max_area)


def _restore_dtype(original: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
    """The input with only the changed pixels replaced, in the input's dtype."""
    reference = original.astype(np.float32)
    changed = cleaned != reference
    out = original.copy()
    values = cleaned[changed]
    if original.dtype.kind in "iu":
        info = np.iinfo(original.dtype)
        values = np.clip(np.rint(values.astype(np.float64)), info.min, info.max)
    out[changed] = values.astype(original.dtype)
    return out
