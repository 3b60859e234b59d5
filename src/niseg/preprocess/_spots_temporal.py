"""Spot cleaning along the frame axis: each pixel against the same pixel in nearby frames.

A gamma spot hits one frame; the same pixel in the neighbouring frames (projections a
fraction of a degree apart, or repeated exposures) sees the object, not the spot. The
reference of frame ``t`` is the per-pixel median of the ``size - 1`` nearest other frames
(the window is shifted at the ends of the stack to keep its length), which stays a good
reference even when one of those frames has a spot at the same place.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._spots_auto import RING, _components, _group_median, _rings
from ._spots_core import fit_noise_model, noise_floor, sample_grid
from ._spots_methods import SIGMOID_MIN_WEIGHT

_SIGNS = {"bright": (1.0,), "dark": (-1.0,), "both": (1.0, -1.0)}


def neighbour_frames(index: int, count: int, size: int) -> list[int]:
    """Indices of the ``size - 1`` frames nearest to ``index`` (fewer if the stack is short)."""
    length = min(size, count)
    start = min(max(index - length // 2, 0), count - length)
    return [i for i in range(start, start + length) if i != index]


def clean_temporal(stack: np.ndarray, *, method: str, polarity: str, size: int,
                   threshold: float, width: float, structure_ratio: float
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(mask, cleaned float32 frame)`` for each frame of a ``(F, M, N)`` stack.

    ``baseline``: ``|f - reference| > threshold`` in image units. ``auto``: the threshold
    is in noise units, with the noise of ``f - reference`` fitted against the reference
    level on a pixel lattice, and each flagged region must be isolated (:func:`isolated`).
    ``sigmoid``: as ``auto`` with a soft weight. Flagged pixels take the reference value.
    """
    count = stack.shape[0]
    for t in range(count):
        frame = np.ascontiguousarray(stack[t], dtype=np.float32)
        others = np.stack([np.asarray(stack[i], dtype=np.float32)
                           for i in neighbour_frames(t, count, size)])
        reference = np.median(others, axis=0).astype(np.float32)
        diff = frame - reference
        mask = np.zeros(frame.shape, dtype=bool)
        if method == "baseline":
            for sign in _SIGNS[polarity]:
                mask |= sign * diff > threshold
            yield mask, np.where(mask, reference, frame)
            continue
        ys, xs = sample_grid(frame.shape)
        noise = fit_noise_model(reference[ys, xs], diff[ys, xs],
                                floor=noise_floor(frame, frame[ys, xs]))
        z = diff / noise(reference)
        weight = np.zeros(frame.shape, dtype=np.float32)
        for sign in _SIGNS[polarity]:
            flagged = sign * z > threshold
            kept = isolated(sign * z, flagged, ratio=structure_ratio)
            mask |= kept
            if method == "sigmoid":
                soft = 1.0 / (1.0 + np.exp(-(sign * z - threshold) / width))
                soft[flagged & ~kept] = 0.0
                np.maximum(weight, soft.astype(np.float32), out=weight)
        if method == "sigmoid":
            weight[mask] = np.maximum(weight[mask], 0.5)
            weight[weight < SIGMOID_MIN_WEIGHT] = 0.0
            yield mask, (weight * reference + (1.0 - weight) * frame).astype(np.float32)
        else:
            yield mask, np.where(mask, reference, frame)


def isolated(z: np.ndarray, flagged: np.ndarray, *, ratio: float) -> np.ndarray:
    """Keep flagged regions that stand out from the frame-to-frame differences around them.

    A spot is a local event: around it, the current frame agrees with its neighbours
    (``z``, the noise-scaled difference, is noise). An object that moved or changed between
    frames differs along its whole edge, so the pixels around a piece of it differ too. A
    region is kept when the median ``z`` of its pixels exceeds ``ratio`` times the robust
    spread of ``z`` (at least 1) in the :data:`RING`-pixel ring around it.
    """
    if ratio <= 0:
        return flagged
    index = np.flatnonzero(flagged)
    if index.size == 0:
        return flagged
    labels, count = _components(index, flagged.shape)
    ring, ring_labels = _rings(index, labels, flagged, RING)
    flat = z.reshape(-1).astype(np.float64)
    spread = 1.4826 * _group_median(ring_labels, np.abs(flat[ring]), count)
    height = _group_median(labels, flat[index], count)
    keep = height > ratio * np.maximum(spread, 1.0)
    out = np.zeros_like(flagged)
    out.reshape(-1)[index[keep[labels]]] = True
    return out
