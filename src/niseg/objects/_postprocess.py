"""Clean-up of label images: small objects, stray components and holes, per class.

A removed object (too small, or not the largest of its class) takes the class that surrounds
it: the most frequent label among the pixels touching it from outside, not counting pixels
that are themselves removed (ties go to the smaller label). In a binary image that is the
background 0; a speck of class 2 inside class 1 becomes class 1; an object with no kept
neighbour becomes 0. All removed objects are decided from the same input, so the order of the
classes does not matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ._label import _check_connectivity, _check_mask

__all__ = ["fill_class_holes", "keep_largest_region", "postprocess", "remove_small_regions"]


def _classes(labels: np.ndarray, classes: Iterable[int] | None) -> list[int]:
    present = [int(c) for c in np.unique(labels) if c != 0]
    if classes is None:
        return present
    try:
        wanted = [int(c) for c in classes]
    except (TypeError, ValueError):
        raise TypeError(f"classes must be a sequence of class values, got {classes!r}") from None
    if any(c <= 0 for c in wanted):
        raise ValueError(f"classes must be positive class values (0 is never processed), "
                         f"got {wanted}")
    return [c for c in sorted(set(wanted)) if c in present]


def _check_size(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative whole number of pixels, got {value!r}")
    return int(value)


def _reassign(labels: np.ndarray, removed: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Give every connected part of ``removed`` the most frequent label around it."""
    out = labels.copy()
    groups, n = ndi.label(removed, structure=structure)
    if n == 0:
        return out
    slices = ndi.find_objects(groups)
    for index, box in enumerate(slices, start=1):
        # A box one pixel larger holds the whole outer ring of the object.
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        own = groups[grown] == index
        ring = ndi.binary_dilation(own, structure=structure) & ~removed[grown]
        neighbours = labels[grown][ring]
        if neighbours.size:
            values, counts = np.unique(neighbours, return_counts=True)
            out[grown][own] = values[np.argmax(counts)]
        else:
            out[grown][own] = 0
    return out


def _components(binary: np.ndarray, structure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    comps, n = ndi.label(binary, structure=structure)
    sizes = np.bincount(comps.ravel(), minlength=n + 1)
    return comps, sizes


def remove_small_regions(
    labels: Any,
    min_size: int,
    *,
    classes: Iterable[int] | None = None,
    connectivity: int | None = None,
) -> np.ndarray:
    """Remove connected objects smaller than ``min_size`` pixels, per class.

    Parameters
    ----------
    labels : (M, N[, P]) integer ndarray
        Binary (0/1) or multi-class (1..K) label image; 0 is never processed.
    min_size : int
        Objects with fewer pixels are given the surrounding class (see the module notes).
    classes : iterable of int, optional
        Classes to clean; by default every non-zero class present.
    connectivity : int, optional
        Neighbourhood of objects (1 = faces only .. ndim = full); default ndim.

    Returns
    -------
    (M, N[, P]) ndarray
        Cleaned labels, same dtype (a new array; the input is not modified).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.ones((6, 6), np.uint8); labels[1, 1] = 2; labels[3:6, 3:6] = 2
    >>> remove_small_regions(labels, 4)
    array([[1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 1],
           [1, 1, 1, 2, 2, 2],
           [1, 1, 1, 2, 2, 2],
           [1, 1, 1, 2, 2, 2]], dtype=uint8)
    """
    return postprocess(labels, min_size=min_size, classes=classes, connectivity=connectivity)


def keep_largest_region(
    labels: Any,
    *,
    classes: Iterable[int] | None = None,
    connectivity: int | None = None,
) -> np.ndarray:
    """Keep only the largest connected object of each class.

    Parameters
    ----------
    labels : (M, N[, P]) integer ndarray
        Binary or multi-class label image; 0 is never processed.
    classes : iterable of int, optional
        Classes to clean; by default every non-zero class present.
    connectivity : int, optional
        Neighbourhood of objects (1 = faces only .. ndim = full); default ndim.

    Returns
    -------
    (M, N[, P]) ndarray
        Labels in which the other objects took the surrounding class (0 in a binary image).
        Of objects of equal size, the first in C order is kept.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((4, 7), np.uint8); mask[1:3, 0:3] = 1; mask[1:3, 5:7] = 1
    >>> keep_largest_region(mask)
    array([[0, 0, 0, 0, 0, 0, 0],
           [1, 1, 1, 0, 0, 0, 0],
           [1, 1, 1, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    return postprocess(labels, keep_largest=True, classes=classes, connectivity=connectivity)


def fill_class_holes(
    labels: Any,
    *,
    classes: Iterable[int] | None = None,
    connectivity: int | None = None,
) -> np.ndarray:
    """Fill the holes of each class's objects.

    A hole of class ``c`` is a connected region of other pixels that class ``c`` encloses
    (it does not touch the image border). It is filled with ``c`` when it holds only
    background 0 or classes not being processed; an inclusion of another processed class is a
    real structure and is kept. In a binary image every hole is filled; pass ``classes=[c]``
    to fill everything that class ``c`` encloses in a multi-class image.

    Parameters
    ----------
    labels : (M, N[, P]) integer ndarray
        Binary or multi-class label image.
    classes : iterable of int, optional
        Classes whose holes are filled; by default every non-zero class present.
    connectivity : int, optional
        Neighbourhood of the objects (1 = faces only .. ndim = full); default ndim. Holes use
        the complementary neighbourhood (faces only when objects use the full one), so a
        diagonal gap in an outline does not open a hole.

    Returns
    -------
    (M, N[, P]) ndarray
        Labels with holes filled.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((5, 5), np.uint8); mask[1:4, 1:4] = 1; mask[2, 2] = 0
    >>> int(fill_class_holes(mask)[2, 2])
    1
    """
    return postprocess(labels, fill_holes=True, classes=classes, connectivity=connectivity)


def _fill(labels: np.ndarray, todo: list[int], conn: int) -> np.ndarray:
    out = labels.copy()
    # Background regions use the complementary connectivity so that object outlines closed
    # diagonally still enclose their holes (the usual digital-topology pairing).
    hole_structure = ndi.generate_binary_structure(labels.ndim,
                                                   labels.ndim + 1 - conn)
    processed = np.isin(labels, todo)
    for c in todo:
        others, n = ndi.label(labels != c, structure=hole_structure)
        if n == 0:
            continue
        border = np.zeros(n + 1, bool)
        for axis in range(labels.ndim):
            for edge in (0, -1):
                border[np.take(others, edge, axis=axis)] = True
        blocked = np.zeros(n + 1, bool)
        blocked[others[processed & (labels != c)]] = True
        fill = ~border & ~blocked
        fill[0] = False
        out[fill[others]] = c
    return out


def postprocess(
    labels: Any,
    *,
    min_size: int = 0,
    keep_largest: bool = False,
    fill_holes: bool = False,
    classes: Iterable[int] | None = None,
    connectivity: int | None = None,
) -> np.ndarray:
    """Clean a label image per class: small objects, all but the largest, holes.

    The steps run in this order, each on the result of the one before: remove objects
    smaller than ``min_size``; keep the largest object of each class; fill holes. Removed
    objects take the class that surrounds them (see :func:`remove_small_regions`); holes are
    filled as in :func:`fill_class_holes`.

    Parameters
    ----------
    labels : (M, N[, P]) integer or bool ndarray
        Binary (0/1) or multi-class (1..K, 0 = no class) labels; 0 is never processed.
    min_size : int, optional
        Smallest object kept, in pixels; 0 keeps all.
    keep_largest : bool, optional
        Keep only the largest connected object of each class.
    fill_holes : bool, optional
        Fill holes in each class's objects.
    classes : iterable of int, optional
        Classes to process; by default every non-zero class present.
    connectivity : int, optional
        Neighbourhood of objects (1 = faces only .. ndim = full); default ndim.

    Returns
    -------
    (M, N[, P]) ndarray
        Cleaned labels; integer input keeps its dtype, bool input gives uint8 and whole-number
        floats give int64. The input is unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((6, 8), np.uint8)
    >>> mask[1:5, 1:5] = 1; mask[2, 2] = 0; mask[0, 7] = 1
    >>> postprocess(mask, min_size=2, fill_holes=True)
    array([[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 1, 1, 1, 1, 0, 0, 0],
           [0, 1, 1, 1, 1, 0, 0, 0],
           [0, 1, 1, 1, 1, 0, 0, 0],
           [0, 1, 1, 1, 1, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    original = np.asarray(labels)
    arr = _check_mask(original, "labels")
    if original.dtype.kind in "iu":
        arr = original
    min_size = _check_size(min_size, "min_size")
    conn = _check_connectivity(connectivity, arr.ndim)
    structure = ndi.generate_binary_structure(arr.ndim, conn)
    todo = _classes(arr, classes)
    out = arr.copy()

    if min_size > 1 and todo:
        removed = np.zeros(out.shape, bool)
        for c in todo:
            comps, sizes = _components(out == c, structure)
            small = sizes < min_size
            small[0] = False
            removed |= small[comps]
        out = _reassign(out, removed, structure)
    if keep_largest and todo:
        removed = np.zeros(out.shape, bool)
        for c in todo:
            comps, sizes = _components(out == c, structure)
            if sizes.size <= 2:
                continue
            sizes[0] = 0
            extra = np.ones(sizes.size, bool)
            extra[0] = False
            extra[int(np.argmax(sizes))] = False
            removed |= extra[comps]
        out = _reassign(out, removed, structure)
    if fill_holes and todo:
        out = _fill(out, todo, conn)
    return out
