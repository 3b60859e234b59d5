"""The default spot detector: |f - median| against a noise model fitted to the image itself.

Algorithm (one 2D frame ``f``, window ``w``, threshold ``k``):

1. Noise model. Exact window medians at a regular lattice of about 40 000 pixels give
   residuals ``f - median`` and levels ``median``; their robust spread per level bin is the
   noise standard deviation ``sigma(level)`` (see :func:`._spots_core.fit_noise_model`).
   Nothing is assumed about gain, blur (correlated noise) or units: counts, transmissions
   and attenuation images all work, and the threshold follows Poisson noise from 100 to
   10 000 counts per pixel.
2. Pre-screen. A pixel can only be a bright spot if ``f - L > k sigma(L)``, where ``L``
   (the smallest row median in the window) is a lower bound of the window median (see
   :mod:`._spots_core`); dark spots use the upper bound likewise. Typically 1-2 % of the
   pixels pass; no pixel that the exact test would flag is lost.
3. Exact test, peeled from the outside in. At candidates the exact median is computed and
   ``f - median > k sigma(median)`` flags a spot pixel. A spot wider than half the window
   fills its own window, so its core is not found at first; flagged pixels therefore take
   their window median in a working copy and every window that changed is tested again
   (flagged pixels are updated too), until nothing moves. This is the full-image
   "replace and re-test" iteration, done only where windows changed; it finds spots up to
   about twice the window (10 px with the default 5 x 5).
4. Validation. A median moves sharp corners and strongly curved edges by a fraction of a
   pixel; at high signal-to-noise ratios that passes the noise test. Each connected region
   of flagged pixels is therefore compared with a plane fitted to the unflagged pixels in a
   two-pixel ring around it: a spot stands far above that plane, while a piece of an edge
   or corner deviates from it no more than the ring itself does
   (:func:`validate_components`).
5. Dark spots are looked for after bright spots have been found and removed (also when
   only dark spots are wanted), so background pixels enclosed by a bright spot do not
   look dark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ._spots_core import (
    NoiseModel,
    fit_noise_model,
    median_bounds,
    neighbourhood,
    noise_floor,
    pad_reflect,
    refresh_border,
    sample_grid,
    window_medians,
)

#: Rounds of the outside-in peeling; each removes at least a one-pixel ring of a spot.
MAX_PEEL = 64
#: A working value that moves by less than this (noise units) no longer triggers updates.
TOLERANCE = 0.1
#: Ring width (pixels) around a flagged region used to fit its background plane.
RING = 2
#: With fewer ring pixels than this (a region filling an image corner) a region is kept.
MIN_RING = 6


@dataclass
class AutoDetection:
    """Result of :func:`detect_auto` on one frame (all arrays ``(M, N)``)."""

    mask: np.ndarray  # bool, spot pixels
    score: np.ndarray | None  # float32, (f - median) / sigma where tested (0 elsewhere)
    background: np.ndarray | None  # float32, the window median where tested (f elsewhere)
    rejected: np.ndarray  # bool, flagged but explained by the background (edges, curves)
    noise: NoiseModel
    base: np.ndarray  # float32, the frame with the bright spots that were not asked for removed


def estimate_noise(frame: np.ndarray, size: int) -> NoiseModel:
    """Noise standard deviation versus level, from exact medians at a pixel lattice."""
    padded = pad_reflect(frame, size // 2)
    ys, xs = sample_grid(frame.shape)
    med = window_medians(padded, ys, xs, size)
    values = frame[ys, xs]
    return fit_noise_model(med, values - med, floor=noise_floor(frame, values))


def detect_auto(frame: np.ndarray, *, size: int, threshold: float, polarity: str,
                structure_ratio: float, noise: NoiseModel | None = None,
                prescreen: float | None = None, scores: bool = False,
                source: np.ndarray | None = None) -> AutoDetection:
    """Flag spot pixels of a float32 frame; see the module notes.

    Dark spots are always looked for in the image with its bright spots removed, even when
    only dark spots are wanted, so that background pixels enclosed by a bright spot do not
    look dark; ``base`` of the result is that image (the one to take replacement values
    from). ``scores`` also returns the noise-scaled residual and the window median of every
    tested pixel (for the soft sigmoid replacement); ``prescreen`` (noise units, at most
    ``threshold``) widens the set of tested pixels without changing the mask.
    ``structure_ratio`` <= 0 skips the validation. ``source``, the frame in its original
    integer dtype, makes the pre-screen's row medians cheaper; it must equal ``frame``.
    """
    if noise is None:
        noise = estimate_noise(frame, size)
    screen = threshold if prescreen is None else min(prescreen, threshold)
    shape = frame.shape
    mask = np.zeros(shape, dtype=bool)
    rejected = np.zeros(shape, dtype=bool)
    score = np.zeros(shape, dtype=np.float32) if scores else None
    background = frame.copy() if scores else None
    base = frame
    signs = (1.0,) if polarity == "bright" else (1.0, -1.0)
    for sign in signs:
        # With polarity "dark" the bright pass only prepares the image for the dark one.
        report = sign < 0 or polarity != "dark"
        result = _peel(base, sign=sign, size=size, threshold=threshold,
                       screen=screen if report else threshold, noise=noise,
                       scores=scores and report, source=source if base is frame else None)
        flagged, work, pass_score, pass_background, tested = result
        kept = validate_components(base, flagged, sign=sign, ratio=structure_ratio)
        if sign > 0 and len(signs) > 1:
            base = frame.copy()
            base[kept] = work[kept]
        if not report:
            continue
        if score is not None:
            better = tested & (np.abs(pass_score) > np.abs(score))
            score[better] = pass_score[better]
            background[better] = pass_background[better]
        rejected |= flagged & ~kept
        mask |= kept
    rejected &= ~mask
    if score is not None:
        score[rejected] = 0.0
    return AutoDetection(mask=mask, score=score, background=background, rejected=rejected,
                         noise=noise, base=base)


def _peel(frame: np.ndarray, *, sign: float, size: int, threshold: float, screen: float,
          noise: NoiseModel, scores: bool, source: np.ndarray | None
          ) -> tuple[np.ndarray, np.ndarray, Any, Any, Any]:
    """Median test with outside-in peeling for one polarity (+1 bright, -1 dark).

    Returns the flagged mask, the working copy (flagged pixels at their converged window
    median) and, with ``scores``, the score ``(f - median) / sigma``, the window median
    and where they were computed (else three None).
    """
    m, n = frame.shape
    radius = size // 2
    lower, upper = median_bounds(frame if source is None else source, size, lower=True,
                                 upper=sign < 0)
    assert lower is not None
    lower = lower.astype(np.float32, copy=False)
    # sigma is non-decreasing in level and the median is at least ``lower``, so
    # sigma(lower) <= sigma(median): this test keeps every pixel the exact test flags.
    limit = noise.lower_bound(lower)
    limit *= np.float32(screen)
    if sign > 0:
        check = np.flatnonzero((frame - lower) > limit)
    else:
        assert upper is not None
        check = np.flatnonzero((upper.astype(np.float32, copy=False) - frame) > limit)
    del lower, upper, limit

    padded = pad_reflect(frame, radius)  # the working copy, kept padded
    flat_frame = frame.reshape(-1)
    flagged = np.zeros(frame.size, dtype=bool)
    tested = np.zeros(frame.size, dtype=bool) if scores else None
    score = np.zeros(frame.size, dtype=np.float32) if scores else None
    background = frame.reshape(-1).copy() if scores else None
    allowed: np.ndarray | None = None
    for _ in range(MAX_PEEL):
        if check.size == 0:
            break
        ys, xs = np.divmod(check, n)
        med = window_medians(padded, ys, xs, size)
        sig = noise(med)
        z = (flat_frame[check] - med) / sig
        was = flagged[check]
        hit = (sign * z > threshold) & ~was
        if allowed is None:
            # Peeling may go ``size`` pixels deep from what the first pass found: enough
            # for a spot twice the window, while an object a bit larger than that, whose
            # rim a median also moves, is peeled only to a ring, which the validation
            # rejects, rather than eaten whole.
            first = check[hit]
            allowed = np.zeros(frame.size, dtype=bool)
            allowed[neighbourhood(*np.divmod(first, n), size, (m, n))] = True
        else:
            hit &= allowed[check]
        if scores:
            fresh = check[~was]
            tested[fresh] = True
            score[fresh] = z[~was]
            background[fresh] = med[~was]
        # Flagged pixels take their window's median in the working copy, and pixels flagged
        # before are updated too: as a large spot's rim is replaced by background values,
        # the values first given to its core (medians of spot pixels) sink to background.
        update = hit | was
        uy, ux = ys[update], xs[update]
        moved = np.abs(padded[uy + radius, ux + radius] - med[update]) > TOLERANCE * sig[update]
        padded[uy + radius, ux + radius] = med[update]
        flagged[check[hit]] = True
        changed_y, changed_x = uy[moved], ux[moved]
        if changed_y.size == 0:
            break
        if (changed_y.min() < radius or changed_x.min() < radius
                or changed_y.max() >= m - radius or changed_x.max() >= n - radius):
            refresh_border(padded, radius)
        check = neighbourhood(changed_y, changed_x, radius, (m, n))
    work = padded[radius:radius + m, radius:radius + n]
    flagged = flagged.reshape(m, n)
    if not scores:
        return flagged, work, None, None, None
    background = background.reshape(m, n)
    background[flagged] = work[flagged]
    return flagged, work, score.reshape(m, n), background, tested.reshape(m, n)


def validate_components(frame: np.ndarray, flagged: np.ndarray, *, sign: float,
                        ratio: float) -> np.ndarray:
    """Drop flagged regions that the background around them explains (edges, corners, curves).

    Each connected region of flagged pixels is compared with a plane fitted to the unflagged
    pixels within :data:`RING` pixels of it. Around a spot that ring is smooth background and
    the spot stands far above the plane; around a piece of an edge, a corner or a strongly
    curved background the ring deviates from any plane about as much as the flagged pixels
    do. A region is kept when the median of its pixels' deviation from the plane (in the
    direction of ``sign``) exceeds ``ratio`` times the ring's robust spread, or when its
    median value lies beyond the ring's range by more than half that range.
    """
    if ratio <= 0:
        return flagged
    index = np.flatnonzero(flagged)
    if index.size == 0:
        return flagged
    m, n = frame.shape
    fg, count = _components(index, (m, n))
    ring, rg = _rings(index, fg, flagged, RING)
    fy, fx = np.divmod(index, n)
    ry, rx = np.divmod(ring, n)
    n_flag = np.bincount(fg, minlength=count).astype(np.float64)
    # Coordinates centred on each region keep the plane fit well conditioned.
    cy = np.bincount(fg, weights=fy, minlength=count) / n_flag
    cx = np.bincount(fg, weights=fx, minlength=count) / n_flag
    dy = ry - cy[rg]
    dx = rx - cx[rg]
    v = frame.reshape(-1)[ring].astype(np.float64)

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(rg, weights=weights, minlength=count)

    n_ring = np.bincount(rg, minlength=count).astype(np.float64)
    normal = np.empty((count, 3, 3))
    normal[:, 0, 0] = n_ring
    normal[:, 0, 1] = normal[:, 1, 0] = total(dy)
    normal[:, 0, 2] = normal[:, 2, 0] = total(dx)
    normal[:, 1, 1] = total(dy * dy)
    normal[:, 1, 2] = normal[:, 2, 1] = total(dy * dx)
    normal[:, 2, 2] = total(dx * dx)
    rhs = np.stack([total(v), total(v * dy), total(v * dx)], axis=1)
    # A ring too small to fit (or lying on one line, at an image border): keep the region.
    det = np.linalg.det(normal)
    usable = (n_ring >= MIN_RING) & (np.abs(det) > 1e-6 * np.maximum(n_ring, 1) ** 3)
    normal[~usable] = np.eye(3)
    rhs[~usable] = 0.0
    plane = np.linalg.solve(normal, rhs[..., None])[..., 0]
    ring_res = v - (plane[rg, 0] + plane[rg, 1] * dy + plane[rg, 2] * dx)
    # Least squares leaves the ring residuals centred: their spread is 1.4826 * median |res|.
    spread = 1.4826 * _group_median(rg, np.abs(ring_res), count)
    own = frame.reshape(-1)[index] - (plane[fg, 0] + plane[fg, 1] * (fy - cy[fg])
                                      + plane[fg, 2] * (fx - cx[fg]))
    height = _group_median(fg, np.maximum(sign * own, 0.0), count)
    # A region far outside the range of values around it is a spot whatever the shape of
    # its surroundings: a blurred image puts edge and corner pixels between the levels of
    # their neighbours, not beyond them (a dead pixel on an edge is still found).
    low = np.full(count, np.inf)
    high = np.full(count, -np.inf)
    np.minimum.at(low, rg, v)
    np.maximum.at(high, rg, v)
    level = _group_median(fg, frame.reshape(-1)[index].astype(np.float64), count)
    beyond = (level - high) if sign > 0 else (low - level)
    outside = beyond > 0.5 * (high - low)
    keep = (height > ratio * spread) | outside | ~usable
    out = np.zeros_like(flagged)
    out.reshape(-1)[index[keep[fg]]] = True
    return out


def _components(index: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """8-connected components of the pixels at sorted flat ``index``: (label per pixel, count).

    Works on the pixel list rather than the image, so its cost follows the number of
    flagged pixels, not the image size.
    """
    m, n = shape
    ys, xs = np.divmod(index, n)
    rows, cols = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        ok = (ys + dy < m) & (xs + dx >= 0) & (xs + dx < n)
        target = index[ok] + dy * n + dx
        pos = np.minimum(np.searchsorted(index, target), index.size - 1)
        hit = index[pos] == target
        rows.append(np.flatnonzero(ok)[hit])
        cols.append(pos[hit])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(r.size, dtype=np.int8), (r, c)),
                              shape=(index.size, index.size)).tocsr()
    count, labels = connected_components(graph, directed=False)
    return labels, int(count)


def _rings(index: np.ndarray, labels: np.ndarray, flagged: np.ndarray, radius: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Unflagged pixels within ``radius`` of each region: (flat indices, region label).

    A pixel near two regions belongs to the ring of each.
    """
    m, n = flagged.shape
    ys, xs = np.divmod(index, n)
    d = np.arange(-radius, radius + 1)
    side = d.size
    yy = np.repeat(ys[:, None] + d[None, :], side, axis=1)
    xx = np.tile(xs[:, None] + d[None, :], (1, side))
    lab = np.broadcast_to(labels[:, None], yy.shape)
    ok = (yy >= 0) & (yy < m) & (xx >= 0) & (xx < n)
    flat = yy[ok] * n + xx[ok]
    lab = lab[ok].astype(np.int64)
    free = ~flagged.reshape(-1)[flat]
    count = int(labels.max()) + 1
    pairs = np.unique(flat[free] * count + lab[free])
    return pairs // count, pairs % count


def _group_median(groups: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Median of ``values`` per group id in ``0..count-1`` (0 for an empty group)."""
    out = np.zeros(count)
    if values.size == 0:
        return out
    order = np.lexsort((values, groups))
    g = groups[order]
    v = values[order]
    ids = np.arange(count)
    starts = np.searchsorted(g, ids, side="left")
    ends = np.searchsorted(g, ids, side="right")
    have = ends > starts
    lo = starts + (ends - starts - 1) // 2
    hi = starts + (ends - starts) // 2
    out[have] = 0.5 * (v[lo[have]] + v[hi[have]])
    return out
