"""Quad-tree decomposition of a 2D image into homogeneous rectangular blocks."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

CRITERIA = ("std", "range")


@dataclass(frozen=True)
class QuadTree:
    """The leaves of a quad-tree decomposition.

    Attributes
    ----------
    labels : (M, N) int32 ndarray
        Leaf number of every pixel, 1..L; the leaves tile the image exactly.
    leaves : (L, 4) int64 ndarray
        ``(y0, x0, y1, x1)`` of leaf ``i + 1`` (half-open: rows ``y0:y1``, columns ``x0:x1``).
    values : (L,) float64 ndarray
        The criterion (standard deviation or range) of each leaf.
    depth : int
        The number of splits from the whole image down to the smallest leaf.
    """

    labels: np.ndarray
    leaves: np.ndarray
    values: np.ndarray
    depth: int


def _check_image(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"image must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"image must be a 2D (M, N) image for a quad tree, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("image is empty")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("image contains NaN or infinite values; a quad tree needs finite pixels")
    return arr


def _partitions(length: int, min_size: int) -> list[np.ndarray]:
    """Segment boundaries along one axis at each depth: segments longer than min_size halve.

    Splitting rows and columns independently at midpoints means that every block of one depth
    lies on the grid (rows of depth d) x (columns of depth d), which lets each depth be
    evaluated for all its blocks at once.
    """
    bounds = np.array([0, length], dtype=np.int64)
    levels = [bounds]
    while True:
        sizes = np.diff(bounds)
        split = sizes > min_size
        if not split.any():
            return levels
        mids = bounds[:-1][split] + sizes[split] // 2
        bounds = np.sort(np.concatenate([bounds, mids]))
        levels.append(bounds)


def _block_sum(table: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Sums of the blocks between row bounds y (column vector) and column bounds x (row)."""
    return (table[y[1:], x[:, 1:]] - table[y[:-1], x[:, 1:]]
            - table[y[1:], x[:, :-1]] + table[y[:-1], x[:, :-1]])


def _parent_index(child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    return np.searchsorted(parent, child[:-1], side="right") - 1


def quadtree(
    image: Any,
    *,
    criterion: str = "std",
    threshold: float,
    min_size: int = 1,
) -> QuadTree:
    """Split an image into rectangular blocks until each block is homogeneous.

    A block is split into (up to) four halves while its criterion -- the standard deviation
    or the range (max - min) of its pixels -- exceeds ``threshold`` and it is larger than
    ``min_size`` along an axis; a side of odd length splits into ``n // 2`` and ``n - n // 2``,
    so any image size works, not only powers of two. Every depth is evaluated for all its
    blocks at once: standard deviations from summed-area tables of x and x², ranges from
    block-wise minima and maxima (``np.minimum.reduceat``).

    Parameters
    ----------
    image : (M, N) ndarray
        Finite grayscale image (any numeric dtype; statistics are computed in float64).
    criterion : {'std', 'range'}, optional
        Homogeneity measure of a block.
    threshold : float
        Blocks whose criterion is at most this value (in image units) are leaves.
    min_size : int, optional
        Sides of at most this many pixels are not split further (at least 1).

    Returns
    -------
    QuadTree
        ``labels`` (leaf number per pixel, 1..L), ``leaves`` (L, 4) boxes, ``values``
        (criterion per leaf) and ``depth``.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((6, 9))
    >>> image[:3, :4] = 1.0
    >>> tree = quadtree(image, criterion="range", threshold=0.5)
    >>> tree.labels.shape, int(tree.labels.max()), tree.leaves[0].tolist()
    ((6, 9), 4, [0, 0, 3, 4])
    >>> bool((tree.values <= 0.5).all())
    True
    """
    arr = _check_image(image)
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (Real, np.number)) or not (
        np.isfinite(threshold) and threshold >= 0
    ):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ValueError(f"min_size must be a whole number of pixels >= 1, got {min_size!r}")

    values = arr.astype(np.float64)
    if criterion == "std":
        # Centring first keeps the x² table from losing the variance to cancellation.
        centred = values - values.mean()
        sat = np.zeros((arr.shape[0] + 1, arr.shape[1] + 1))
        sat2 = np.zeros_like(sat)
        np.cumsum(np.cumsum(centred, axis=0), axis=1, out=sat[1:, 1:])
        np.cumsum(np.cumsum(centred * centred, axis=0), axis=1, out=sat2[1:, 1:])

    rows = _partitions(arr.shape[0], min_size)
    cols = _partitions(arr.shape[1], min_size)
    depth_count = max(len(rows), len(cols))
    rows += [rows[-1]] * (depth_count - len(rows))
    cols += [cols[-1]] * (depth_count - len(cols))

    labels = np.zeros(arr.shape, dtype=np.int32)
    boxes: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    active = np.ones((1, 1), dtype=bool)
    next_label = 1
    depth = 0
    for d in range(depth_count):
        rb, cb = rows[d], cols[d]
        if criterion == "std":
            y, x = rb[:, None], cb[None, :]
            count = np.diff(rb)[:, None] * np.diff(cb)[None, :]
            mean = _block_sum(sat, y, x) / count
            var = _block_sum(sat2, y, x) / count - mean * mean
            # Table differences carry rounding of order eps x (table total); below that a
            # block is constant, and calling it so keeps threshold=0 meaningful.
            noise = 8 * np.finfo(np.float64).eps * sat2[-1, -1] / count
            score = np.sqrt(np.where(var > noise, var, 0.0))
        else:
            block_max = np.maximum.reduceat(np.maximum.reduceat(values, rb[:-1], axis=0),
                                            cb[:-1], axis=1)
            block_min = np.minimum.reduceat(np.minimum.reduceat(values, rb[:-1], axis=0),
                                            cb[:-1], axis=1)
            score = block_max - block_min
        last = d == depth_count - 1
        splittable = (np.diff(rb)[:, None] > min_size) | (np.diff(cb)[None, :] > min_size)
        leaf = active & ((score <= threshold) | ~splittable | last)
        if leaf.any():
            depth = d
            iy, ix = np.nonzero(leaf)
            ids = np.zeros(leaf.shape, dtype=np.int32)
            ids[iy, ix] = np.arange(next_label, next_label + iy.size, dtype=np.int32)
            next_label += iy.size
            pixel_ids = np.repeat(np.repeat(ids, np.diff(rb), axis=0), np.diff(cb), axis=1)
            painted = pixel_ids > 0
            labels[painted] = pixel_ids[painted]
            boxes.append(np.stack([rb[iy], cb[ix], rb[iy + 1], cb[ix + 1]], axis=1))
            scores.append(score[iy, ix])
        if last:
            break
        open_blocks = active & ~leaf
        if not open_blocks.any():
            break
        ry = _parent_index(rows[d + 1], rb)
        cx = _parent_index(cols[d + 1], cb)
        active = open_blocks[ry][:, cx]
    return QuadTree(
        labels=labels,
        leaves=np.concatenate(boxes).astype(np.int64),
        values=np.concatenate(scores),
        depth=depth,
    )
