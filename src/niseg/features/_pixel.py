"""Pixel features: filter responses of co-registered images and pixel position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

#: Filter names understood by :func:`pixel_features`, in the order their columns appear.
PIXEL_FILTERS = ("intensity", "gaussian", "gradient", "dog", "laplacian")

# Difference of Gaussians G(sigma) - G(_DOG_RATIO * sigma): 1.6 makes it a close
# approximation of the (negative, scale-normalised) Laplacian of Gaussian at sigma.
_DOG_RATIO = 1.6


def as_image_list(images: Any, name: str = "images") -> list[np.ndarray]:
    """One array, or a sequence of co-registered arrays of one shape, as a list of arrays."""
    if isinstance(images, np.ndarray):
        arrays = [images]
    elif isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError(f"{name} is empty; give at least one image")
        arrays = [np.asarray(a) for a in images]
    else:
        raise TypeError(f"{name} must be an array or a sequence of arrays, "
                        f"got {type(images).__name__}")
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name}[{i}] must be a numeric array, got dtype {a.dtype}")
        if a.ndim not in (2, 3):
            raise ValueError(f"{name}[{i}] must be a 2D (M, N) or 3D (M, N, P) image but has "
                             f"shape {a.shape}")
        if a.shape != shape:
            raise ValueError(f"{name}[{i}] has shape {a.shape} but {name}[0] has shape {shape}; "
                             "the images must be co-registered")
    return arrays


def _check_sigmas(sigmas: Any) -> tuple[float, ...]:
    try:
        values = tuple(float(s) for s in np.atleast_1d(np.asarray(sigmas, dtype=float)))
    except (TypeError, ValueError):
        raise ValueError(f"sigmas must be positive numbers, got {sigmas!r}") from None
    if not values or not all(np.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"sigmas must be positive numbers, got {sigmas!r}")
    return values


def _check_filters(filters: Any) -> tuple[str, ...]:
    if isinstance(filters, str):
        filters = (filters,)
    names = tuple(str(f).strip().lower() for f in filters)
    if not names:
        raise ValueError(f"filters is empty; choose from {', '.join(PIXEL_FILTERS)}")
    for f in names:
        if f not in PIXEL_FILTERS:
            raise ValueError(f"unknown filter {f!r}; choose from {', '.join(PIXEL_FILTERS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"filters lists a filter twice: {filters!r}")
    return names


def _check_spacing(spacing: Any, ndim: int) -> np.ndarray:
    if spacing is None:
        return np.ones(ndim)
    values = np.asarray(spacing, dtype=float).ravel()
    if values.size != ndim or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"spacing must be {ndim} positive numbers (one per image axis), "
                         f"got {spacing!r}")
    return values


def pixel_features(
    images: np.ndarray | Sequence[np.ndarray],
    *,
    filters: Sequence[str] = PIXEL_FILTERS,
    sigmas: float | Sequence[float] = (1.0,),
    position: bool = False,
    spacing: Sequence[float] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Stack per-pixel features of one or more co-registered images on a last axis.

    For every image, in order, and for every filter in ``filters``: ``intensity`` (the
    values themselves, once), and at each scale ``sigma``: ``gaussian`` (smoothed),
    ``gradient`` (Gaussian gradient magnitude), ``dog`` (difference of Gaussians
    ``G(sigma) - G(1.6 sigma)``) and ``laplacian`` (Laplacian of Gaussian). With
    ``position`` the pixel coordinates (in ``spacing`` units) follow as the last columns.

    Parameters
    ----------
    images : (M, N[, P]) ndarray or sequence of them
        One image, or several co-registered images of one shape (e.g. a neutron and an
        X-ray radiograph of the same sample). Values must be finite.
    filters : sequence of str, optional
        Names from :data:`PIXEL_FILTERS`; the columns follow the order of
        :data:`PIXEL_FILTERS`, whatever the order given.
    sigmas : float or sequence of float, optional
        Scales of the Gaussian filters in pixels (of the finest axis when ``spacing`` is
        given).
    position : bool, optional
        Append the coordinates of each pixel (``y``, ``x`` [, ``z``] along the array axes).
    spacing : sequence of float, optional
        Pixel size along each axis. Filters then use the same physical scale on every axis
        (anisotropic voxels) and derivatives are per unit length of the finest axis;
        position columns are in these units.

    Returns
    -------
    features : (M, N[, P], F) float32 ndarray
        The features, image axes first.
    names : list of str
        ``F`` names such as ``"image 1 intensity"``, ``"image 2 gradient s=2"`` or
        ``"position y"``.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.features import pixel_features
    >>> a = np.zeros((16, 16), np.float32); a[4:12, 4:12] = 1.0
    >>> feats, names = pixel_features([a, 2 * a], filters=("intensity", "gradient"),
    ...                               sigmas=(1.0, 2.0), position=True)
    >>> feats.shape, feats.dtype
    ((16, 16, 8), dtype('float32'))
    >>> names[:3], names[-2:]
    (['image 1 intensity', 'image 1 gradient s=1', 'image 1 gradient s=2'], ['position y', 'position x'])
    """
    arrays = as_image_list(images)
    wanted = _check_filters(filters)
    scales = _check_sigmas(sigmas)
    ndim = arrays[0].ndim
    step = _check_spacing(spacing, ndim)
    # Sigma is given in pixels of the finest axis; coarser axes get proportionally fewer.
    relative = step / step.min()
    columns: list[np.ndarray] = []
    names: list[str] = []
    for i, raw in enumerate(arrays):
        image = raw.astype(np.float32, copy=False)
        if image.dtype.kind == "f" and not np.all(np.isfinite(image)):
            raise ValueError(f"images[{i}] contains NaN or infinite values; replace them or "
                             "exclude them with a valid mask")
        label = f"image {i + 1}"
        if "intensity" in wanted:
            columns.append(image)
            names.append(f"{label} intensity")
        for f in PIXEL_FILTERS[1:]:
            if f not in wanted:
                continue
            for s in scales:
                columns.append(_filter(image, f, s / relative, relative))
                names.append(f"{label} {f} s={s:g}")
    if position:
        grids = np.meshgrid(*[np.arange(n, dtype=np.float32) * np.float32(d)
                              for n, d in zip(arrays[0].shape, step)], indexing="ij")
        columns.extend(grids)
        names.extend(f"position {a}" for a in "yxz"[:ndim])
    features = np.stack(columns, axis=-1).astype(np.float32, copy=False)
    return features, names


def _filter(image: np.ndarray, name: str, sigma: np.ndarray,
            relative: np.ndarray) -> np.ndarray:
    if name == "gaussian":
        return ndi.gaussian_filter(image, sigma)
    if name == "dog":
        return ndi.gaussian_filter(image, sigma) - ndi.gaussian_filter(image, _DOG_RATIO * sigma)
    # Derivatives per unit length of the finest axis, so anisotropic volumes are not skewed.
    total = np.zeros(image.shape, dtype=np.float32)
    for axis in range(image.ndim):
        order = [0] * image.ndim
        if name == "gradient":
            order[axis] = 1
            d = ndi.gaussian_filter(image, sigma, order=order) / np.float32(relative[axis])
            total += d * d
        else:
            order[axis] = 2
            total += ndi.gaussian_filter(image, sigma, order=order) / np.float32(
                relative[axis] ** 2)
    return np.sqrt(total) if name == "gradient" else total


def standardize(
    features: np.ndarray,
    *,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale each feature to zero mean and unit standard deviation.

    Parameters
    ----------
    features : (..., F) ndarray
        Features on the last axis (e.g. from :func:`pixel_features`).
    mask : (...) bool ndarray, optional
        Pixels whose statistics are used (e.g. the valid region); all pixels are scaled.

    Returns
    -------
    scaled : (..., F) float32 ndarray
        ``(features - mean) / std``.
    mean : (F,) float64 ndarray
        Mean of each feature over the masked pixels.
    std : (F,) float64 ndarray
        Standard deviation of each feature; a constant feature gets 1 so that it stays 0
        instead of dividing by zero.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.features import standardize
    >>> f = np.array([[1.0, 100.0], [3.0, 300.0]])
    >>> scaled, mean, std = standardize(f)
    >>> scaled.tolist(), mean.tolist(), std.tolist()
    ([[-1.0, -1.0], [1.0, 1.0]], [2.0, 200.0], [1.0, 100.0])
    """
    arr = np.asarray(features)
    if arr.dtype.kind not in "biuf" or arr.ndim < 1 or arr.size == 0:
        raise ValueError(f"features must be a non-empty numeric array with features on the "
                         f"last axis, got shape {arr.shape} and dtype {arr.dtype}")
    flat = arr.reshape(-1, arr.shape[-1])
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != arr.shape[:-1]:
            raise ValueError(f"mask has shape {m.shape} but features have pixel shape "
                             f"{arr.shape[:-1]}")
        flat = flat[m.reshape(-1).astype(bool)]
        if flat.shape[0] == 0:
            raise ValueError("mask selects no pixels")
    # float64 sums: float32 loses digits on millions of pixels with a large offset.
    mean = flat.mean(axis=0, dtype=np.float64)
    std = flat.std(axis=0, dtype=np.float64)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ValueError("features contain NaN or infinite values")
    std = np.where(std > 0, std, 1.0)
    scaled = (arr.astype(np.float32, copy=False) - mean.astype(np.float32)) / std.astype(
        np.float32)
    return scaled, mean, std
