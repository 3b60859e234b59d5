"""Spatial folds: stripes or checkerboard blocks of each training image.

Autocontext and feature selection need predictions for labelled pixels from models that did
not train on them *or on their neighbours* (whose filter responses overlap). Random pixel
splits leak through the filters' support; stripes (feature selection) and blocks
(autocontext) leak only near their boundaries.
"""

from __future__ import annotations

import numpy as np


def balanced_stripes(class_index: np.ndarray, k: int, n_classes: int
                     ) -> tuple[int, np.ndarray]:
    """Axis and boundaries of ``k`` stripes that split every class's labels about evenly.

    Parameters
    ----------
    class_index : (M, N[, P]) ndarray of int
        Class index of each pixel, -1 where unlabeled.
    k : int
        Number of stripes.
    n_classes : int
        Number of classes.

    Returns
    -------
    axis : int
        The axis cut across: the one whose best cuts give each stripe the closest to
        ``1/k`` of every class (the longest axis among equals), so that a brush stroke is
        cut across rather than left whole in one stripe.
    bounds : (k + 1,) ndarray of int
        ``bounds[0] = 0``, ``bounds[-1] = n``; strictly increasing when the axis has at least
        ``k`` slices.
    """
    best: tuple[float, int, int, np.ndarray] | None = None
    for axis in range(class_index.ndim):
        n = class_index.shape[axis]
        coords = np.indices(class_index.shape, sparse=True)[axis]
        coords = np.broadcast_to(coords, class_index.shape)
        labelled = class_index >= 0
        counts = np.bincount(class_index[labelled].astype(np.int64) * n + coords[labelled],
                             minlength=n_classes * n).reshape(n_classes, n)
        totals = counts.sum(1, keepdims=True)
        present = totals[:, 0] > 0
        # share of each class's labels before each possible cut 0..n
        share = np.concatenate([np.zeros((n_classes, 1)), np.cumsum(counts, 1)], 1)
        share = share[present] / np.maximum(totals[present], 1)
        bounds = np.zeros(k + 1, dtype=np.int64)
        bounds[-1] = n
        worst = 0.0
        for j in range(1, k):
            low, high = bounds[j - 1] + 1, n - (k - j)
            if high < low:
                bounds[j] = bounds[j - 1]
                continue
            deviation = np.abs(share[:, low:high + 1] - j / k).max(0) if share.size else (
                np.abs(np.arange(low, high + 1) / n - j / k))
            pick = int(np.argmin(deviation))
            bounds[j] = low + pick
            worst = max(worst, float(deviation[pick]))
        key = (worst, -n, axis, bounds)
        if best is None or key[:3] < best[:3]:
            best = key
    assert best is not None
    return best[2], best[3]


def axis_coordinate(flat_index: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Coordinate along ``axis`` of C-order flat indices into an array of ``shape``."""
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return (np.asarray(flat_index, dtype=np.int64) // inner) % shape[axis]


def stripe(bounds: np.ndarray, fold: int, axis: int, ndim: int) -> tuple[slice, ...]:
    """Index of stripe ``fold`` in an array with ``ndim`` spatial axes."""
    index = [slice(None)] * ndim
    index[axis] = slice(int(bounds[fold]), int(bounds[fold + 1]))
    return tuple(index)


#: Blocks per axis (at least) of the longest axis in :func:`block_folds`.
BLOCKS_PER_AXIS = 8


def block_folds(shape: tuple[int, ...], k: int = 4) -> np.ndarray:
    """Fold number of every pixel: cubic blocks coloured like a checkerboard in ``k`` folds.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape, 2-D or 3-D.
    k : int
        Number of folds, at most 4.

    Returns
    -------
    (M, N[, P]) ndarray of int8
        Values ``0..k-1``. Blocks have side ``ceil(max(shape) / BLOCKS_PER_AXIS)``. With
        ``k = 4``, blocks that share a face lie in different folds, so every fold spreads
        evenly over the image and a model trained on the other folds has seen every part of
        it, unlike a model of one stripe, which predicts a region unlike any it trained on.
    """
    side = -(-max(shape) // BLOCKS_PER_AXIS)
    parity = [(np.arange(n) // side) % 2 for n in shape]
    fold = np.zeros(shape, dtype=np.int64)
    # weights 1, 2, 3: neighbours along any axis differ by a non-multiple of 4
    for axis, p in enumerate(parity):
        fold = fold + (axis + 1) * p.reshape([-1 if a == axis else 1 for a in range(len(shape))])
    return (fold % 4 % k).astype(np.int8)
