"""Connected components, watershed split of touching objects, and contours."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage as ndi

__all__ = ["label_objects", "object_contours", "split_touching"]


def _check_mask(mask: Any, name: str = "mask") -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2D or 3D image, got {arr.ndim} dimensions "
                         f"with shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold integer class values, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold whole class values (0 = background), but it "
                             f"has fractional, NaN or infinite values")
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} has negative values; expected 0 = background and "
                         f"1..K = classes")
    return arr


def _check_connectivity(connectivity: int | None, ndim: int) -> int:
    if connectivity is None:
        return ndim
    if isinstance(connectivity, bool) or not isinstance(connectivity, (int, np.integer)) or \
            not 1 <= int(connectivity) <= ndim:
        raise ValueError(f"connectivity must be a whole number from 1 to {ndim} for a "
                         f"{ndim}D mask, got {connectivity!r}")
    return int(connectivity)


def _check_nonnegative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def split_touching(
    mask: np.ndarray,
    *,
    min_distance: int = 5,
    h: float = 1.0,
    connectivity: int | None = None,
) -> np.ndarray:
    """Split touching objects of a binary mask with a watershed of the distance transform.

    Each object's centre is a maximum of the Euclidean distance to the background; two
    touching discs have two such maxima joined by a neck. Markers are the regional maxima
    that rise at least ``h`` pixels above the neck to their neighbours (h-maxima), so that a
    single round or elongated object is not cut at the small ripples of its distance map;
    maxima closer than ``min_distance`` pixels are merged into one marker. The watershed of
    the negated distance then grows one object from each marker.

    Parameters
    ----------
    mask : (M, N[, P]) ndarray
        Binary mask; non-zero is foreground.
    min_distance : int, optional
        Smallest distance in pixels between two object centres.
    h : float, optional
        Smallest depth (in pixels of distance) of the neck between two objects; 0 keeps
        every local maximum.
    connectivity : int, optional
        Neighbourhood of the components (1 = faces only .. ndim = full); default ndim.

    Returns
    -------
    (M, N[, P]) int32 ndarray
        Object labels 1..N, 0 = background.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:40, :60]
    >>> two = ((yy - 20) ** 2 + (xx - 20) ** 2 < 144) | ((yy - 20) ** 2 + (xx - 40) ** 2 < 144)
    >>> int(split_touching(two).max())
    2
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    binary = _check_mask(mask) > 0
    conn = _check_connectivity(connectivity, binary.ndim)
    if isinstance(min_distance, bool) or not isinstance(min_distance, (int, np.integer)) \
            or min_distance < 1:
        raise ValueError(f"min_distance must be a whole number of pixels >= 1, "
                         f"got {min_distance!r}")
    h = _check_nonnegative(h, "h")
    structure = ndi.generate_binary_structure(binary.ndim, conn)
    components, n = ndi.label(binary, structure=structure)
    if n == 0:
        return components.astype(np.int32)
    distance = ndi.distance_transform_edt(binary).astype(np.float32)
    # Regional maxima at least h deep: a ridge or plateau of the distance map is one region.
    tops = h_maxima(distance, h).astype(bool) if h > 0 else _local_maxima(distance, binary)
    # Maxima closer than min_distance are one centre: grow each by half of it and merge.
    radius = int(min_distance) // 2
    if radius > 0:
        ball = ndi.iterate_structure(ndi.generate_binary_structure(binary.ndim, 1), radius)
        tops = ndi.binary_dilation(tops, structure=ball) & binary
    markers, n_markers = ndi.label(tops, structure=np.ones((3,) * binary.ndim, dtype=bool))
    # A component without a marker (too small or too flat) stays one object.
    has_marker = np.zeros(n + 1, dtype=bool)
    has_marker[np.unique(components[markers > 0])] = True
    for i, comp in enumerate(np.flatnonzero(~has_marker[1:]) + 1):
        markers[components == comp] = n_markers + i + 1
    split = watershed(-distance, markers, mask=binary, connectivity=conn)
    return _relabel(split)


def _local_maxima(distance: np.ndarray, binary: np.ndarray) -> np.ndarray:
    from skimage.morphology import local_maxima

    return local_maxima(distance, allow_borders=True) & binary


def _relabel(labels: np.ndarray) -> np.ndarray:
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels.astype(np.int32))[0].astype(np.int32)


def label_objects(
    mask: np.ndarray,
    *,
    connectivity: int | None = None,
    split: bool = False,
    min_distance: int = 5,
    h: float = 1.0,
    min_size: int = 0,
) -> np.ndarray:
    """Number the connected objects of a binary or multi-class mask.

    Pixels of the same non-zero value that touch (in the sense of ``connectivity``) form one
    object; regions of different classes are never merged. With ``split``, touching objects
    within each class are separated by :func:`split_touching`.

    Parameters
    ----------
    mask : (M, N[, P]) ndarray
        Binary (0/1, bool) or multi-class (0 = background, 1..K) mask.
    connectivity : int, optional
        1 = neighbours share a face (4-connected in 2D, 6 in 3D) .. ndim = also corners
        (8 in 2D, 26 in 3D); default ndim.
    split : bool, optional
        Split touching objects with a distance-transform watershed.
    min_distance, h : optional
        Options of :func:`split_touching` (used with ``split``).
    min_size : int, optional
        Remove objects smaller than this many pixels (or voxels).

    Returns
    -------
    (M, N[, P]) int32 ndarray
        Objects 1..N numbered in raster order, 0 = background.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.array([[1, 1, 0, 2],
    ...                  [0, 0, 0, 2],
    ...                  [1, 0, 0, 0]])
    >>> label_objects(mask)
    array([[1, 1, 0, 2],
           [0, 0, 0, 2],
           [3, 0, 0, 0]], dtype=int32)
    >>> int(label_objects(mask, min_size=2).max())
    2
    """
    arr = _check_mask(mask)
    conn = _check_connectivity(connectivity, arr.ndim)
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise ValueError(f"min_size must be a whole number of pixels >= 0, got {min_size!r}")
    structure = ndi.generate_binary_structure(arr.ndim, conn)
    out = np.zeros(arr.shape, dtype=np.int64)
    offset = 0
    for value in np.unique(arr[arr > 0]):
        part = arr == value
        if split:
            objects = split_touching(part, min_distance=min_distance, h=h, connectivity=conn)
        else:
            objects = ndi.label(part, structure=structure)[0]
        n = int(objects.max())
        out[objects > 0] = objects[objects > 0] + offset
        offset += n
    if min_size > 1 and offset:
        sizes = np.bincount(out.ravel())
        small = sizes < min_size
        small[0] = False
        out[small[out]] = 0
    # Raster order: number objects by their first pixel.
    flat = out.ravel()
    values, first = np.unique(flat, return_index=True)
    order = values[np.argsort(first)]
    order = order[order > 0]
    lut = np.zeros(offset + 1, dtype=np.int32)
    lut[order] = np.arange(1, order.size + 1, dtype=np.int32)
    return lut[out]


def object_contours(labels: np.ndarray) -> dict[int, list[np.ndarray]]:
    """Outline every object of a 2D label image.

    Parameters
    ----------
    labels : (M, N) integer ndarray
        Objects 1..N, 0 = background.

    Returns
    -------
    dict of int to list of (K, 2) float ndarray
        For each object, its closed contours as ``(row, column)`` points at the half-pixel
        boundary (outer outline first, then holes), from :func:`skimage.measure.find_contours`.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((6, 6), int); labels[1:4, 1:4] = 1
    >>> contours = object_contours(labels)
    >>> len(contours[1]), contours[1][0].shape[1]
    (1, 2)
    """
    from skimage.measure import find_contours

    arr = _check_labels(labels)
    if arr.ndim != 2:
        raise ValueError(f"labels must be 2D to draw contours, got shape {arr.shape}")
    result: dict[int, list[np.ndarray]] = {}
    for value, box in enumerate(ndi.find_objects(arr), start=1):
        if box is None:
            continue
        # One pixel of padding so objects touching the edge get closed outlines.
        patch = np.pad(arr[box] == value, 1).astype(np.float32)
        origin = np.array([box[0].start - 1, box[1].start - 1], dtype=np.float64)
        contours = find_contours(patch, 0.5)
        contours.sort(key=len, reverse=True)
        result[value] = [c + origin for c in contours]
    return result


def _check_labels(labels: Any, name: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2D or 3D image, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer object label image, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} has negative values; expected 0 = background and 1..N = "
                         f"objects")
    return arr
