"""Synthetic scribbles: sparse training labels drawn inside each class as a person would.

A person labelling an image for a pixel classifier drags a brush through the middle of
each kind of region: a few smooth, curved strokes per class, well inside the region, and
in a volume only on a few slices. :func:`brush_strokes` imitates that from an exact truth
so that training from sparse labels can be tested against the dense truth. The labels go to
each class in proportion to its area, or (``allocation="equal"``) in equal shares, as a
person who paints several of the small objects, not just one, would spend them.

A stroke is a random walk with momentum: the heading turns by an angular velocity that
itself drifts slowly, so strokes curve smoothly instead of jittering. The walk stays on the
class mask eroded by the brush radius, so the brush never touches another class; when the
next step would leave it, the walk turns towards the free side, and it ends when no turn
helps or the stroke is long enough.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.morphology import disk

from ._phantom import _check_seed

__all__ = ["brush_strokes"]

_TURN_NOISE = 0.03  # rad per pixel: how fast the curvature of a stroke changes
_TURN_MEMORY = 0.9  # momentum of the angular velocity
_DEFLECTIONS = (0.35, 0.7, 1.05, 1.4, 1.75, 2.1, 2.45, 2.8)  # rad, tried on both sides
_MAX_IDLE_STROKES = 5


def brush_strokes(
    truth: np.ndarray,
    *,
    fraction: float = 0.02,
    width: int = 3,
    seed: int = 0,
    classes: Sequence[int] | None = None,
    max_strokes: int | None = None,
    zero_is_class: bool = True,
    n_slices: int | None = None,
    allocation: str = "area",
) -> np.ndarray:
    """Scribble labels inside each class of a truth image, as a person would draw them.

    Parameters
    ----------
    truth : (M, N) or (P, M, N) integer ndarray
        Dense class labels (e.g. a simulator's ``truth``), non-negative.
    fraction : float, optional
        Fraction to label, in ``(0, 1]``: of each class's pixels with ``allocation="area"``,
        of all pixels with ``allocation="equal"``; in 3D, of the voxels on the annotated
        slices. Strokes stop once a class's share is reached, so coverage exceeds it by at
        most one brush footprint; a class too thin for the brush to reach it gets less (see
        Notes).
    width : int, optional
        Brush diameter in pixels; the brush is a disc of radius ``width // 2``, so an even
        width draws like the next odd one.
    seed : int, optional
        Seed of every random step; the same arguments give the same strokes.
    classes : sequence of int, optional
        Truth values to draw strokes for; default every value present (without 0 when
        ``zero_is_class`` is False). Values absent from ``truth`` get none.
    max_strokes : int, optional
        Most strokes per class (per class and slice in 3D); default as many as
        ``fraction`` needs. Every class present gets at least one stroke.
    zero_is_class : bool, optional
        True (the simulator's convention, 0 = open beam or air is a real class): truth
        value ``v`` becomes label ``v + 1``. False (0 means "no class", e.g. outside a
        region of interest): 0 gets no strokes and ``v`` stays ``v``.
    n_slices : int, optional
        3D only: number of evenly spaced slices along the first axis to annotate; default
        ``max(3, P // 16)`` (at most ``P``). A slice is added for any class that none of
        them shows, so every class present is labelled.
    allocation : {"area", "equal"}, optional
        How the labels are shared among the classes. ``"area"`` (default): each class gets
        ``fraction`` of its own pixels, so a class covering 7 % of the image gets 7 % of
        the labels, often a single stroke. ``"equal"``: ``fraction`` of all pixels (of
        each annotated slice in 3D) split equally among the classes drawn there, as a
        person spends about the same effort on every class however small; a class smaller
        than its share gets at most all its pixels.

    Returns
    -------
    (M, N) or (P, M, N) uint8 ndarray
        0 = unlabeled, otherwise the label of the class under the stroke (uint16 when a
        label exceeds 255).

    Notes
    -----
    Strokes stay strictly inside their class: the walk runs on the class mask eroded by
    the brush radius, and painted pixels are clipped to the class. A class thinner than
    the brush (a 3-pixel object under a 5-pixel brush) is drawn with the largest brush
    that fits inside it, down to single pixels, so every class present gets at least one
    labelled pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.simulate import brush_strokes
    >>> truth = np.zeros((64, 64), dtype=np.uint8)
    >>> truth[16:48, 16:48] = 1
    >>> labels = brush_strokes(truth, fraction=0.05, width=3, seed=0)
    >>> sorted(np.unique(labels).tolist())  # 0 = unlabeled, 1 = truth 0, 2 = truth 1
    [0, 1, 2]
    >>> bool(np.all(truth[labels == 2] == 1) and np.all(truth[labels == 1] == 0))
    True
    >>> [int((labels == k).sum()) for k in (1, 2)]  # 5 % of each class: the larger gets more
    [154, 52]
    >>> equal = brush_strokes(truth, fraction=0.05, width=3, seed=0, allocation="equal")
    >>> [int((equal == k).sum()) for k in (1, 2)]  # 5 % of the image, half for each class
    [104, 103]
    """
    truth = _check_truth(truth)
    fraction = _check_number("fraction", fraction, low=0.0, high=1.0)
    width = _check_count("width", width, low=1)
    seed = _check_seed(seed)
    if max_strokes is not None:
        max_strokes = _check_count("max_strokes", max_strokes, low=1)
    if not isinstance(zero_is_class, (bool, np.bool_)):
        raise TypeError(f"zero_is_class must be True or False, got {type(zero_is_class).__name__}")
    if not isinstance(allocation, str) or allocation not in ("area", "equal"):
        raise ValueError(f"allocation must be 'area' or 'equal', got {allocation!r}")
    present = np.unique(truth)
    values = _check_classes(classes, present, zero_is_class=bool(zero_is_class))
    offset = 1 if zero_is_class else 0
    top = max(values, default=0) + offset
    if top > np.iinfo(np.uint16).max:
        raise ValueError(f"truth values must give labels up to 65535, got a label of {top}")
    labels = np.zeros(truth.shape, dtype=np.uint8 if top <= 255 else np.uint16)
    rng = np.random.default_rng(seed)
    brush = _Brush(fraction=fraction, radius=width // 2, max_strokes=max_strokes, rng=rng,
                   equal=allocation == "equal")
    if truth.ndim == 2:
        brush.draw(truth, labels, values, offset)
        return labels
    for z in _pick_slices(truth, values, n_slices):
        brush.draw(truth[z], labels[z], values, offset)
    return labels


class _Brush:
    """Draws the strokes of every class on one 2D image (a slice of a volume)."""

    def __init__(self, *, fraction: float, radius: int, max_strokes: int | None,
                 rng: np.random.Generator, equal: bool = False) -> None:
        self.fraction = fraction
        self.radius = radius
        self.max_strokes = max_strokes
        self.rng = rng
        self.equal = equal

    def draw(self, truth: np.ndarray, labels: np.ndarray, values: Sequence[int],
             offset: int) -> None:
        present, counts = np.unique(truth, return_counts=True)
        areas = dict(zip(present.tolist(), counts.tolist()))
        drawn = sum(1 for value in values if value in areas)
        for value in values:
            area = areas.get(value, 0)
            if not area:
                continue
            # equal: the class's share of the slice, at most the whole class
            target = (min(area, math.ceil(self.fraction * truth.size / drawn - 1e-9))
                      if self.equal else math.ceil(self.fraction * area - 1e-9))
            self._class_strokes(truth == value, labels, value + offset, area, max(1, target))

    def _class_strokes(self, mask: np.ndarray, labels: np.ndarray, label: int,
                       area: int, target: int) -> None:
        # The walk runs where the whole brush fits in the class; a class too thin for the
        # brush gets the largest brush that fits (down to one pixel).
        for radius in range(self.radius, -1, -1):
            footprint = disk(radius).astype(bool)
            track = ndimage.binary_erosion(mask, footprint) if radius else mask
            if track.any():
                break
        length = max(10.0 * (2 * radius + 1), 0.5 * math.sqrt(area))
        limit = self.max_strokes if self.max_strokes is not None else math.inf
        covered, strokes, idle = 0, 0, 0
        while covered < target and strokes < limit and idle < _MAX_IDLE_STROKES:
            free = np.flatnonzero(track & (labels == 0))
            if free.size == 0:
                break
            start = np.unravel_index(free[self.rng.integers(free.size)], mask.shape)
            added = self._stroke(start, track, mask, footprint, labels, label,
                                 target - covered, self.rng.uniform(0.5, 1.0) * length)
            covered += added
            strokes += 1
            idle = idle + 1 if added == 0 else 0

    def _stroke(self, start: tuple[Any, ...], track: np.ndarray, mask: np.ndarray,
                footprint: np.ndarray, labels: np.ndarray, label: int, budget: int,
                length: float) -> int:
        rng = self.rng
        y, x = float(start[0]), float(start[1])
        heading = rng.uniform(0.0, 2.0 * math.pi)
        turn = 0.0
        added = 0
        for _ in range(max(1, int(length))):
            added += _stamp(labels, mask, footprint, round(y), round(x), label)
            if added >= budget:
                break
            turn = _TURN_MEMORY * turn + rng.normal(0.0, _TURN_NOISE)
            heading += turn
            step = _next_step(track, y, x, heading, rng)
            if step is None:
                break
            y, x, angle = step
            if angle != heading:
                turn = 0.0  # deflected at an edge: start curving afresh
            heading = angle
        return added


def _next_step(track: np.ndarray, y: float, x: float, heading: float,
               rng: np.random.Generator) -> tuple[float, float, float] | None:
    """One pixel forward, turning as little as needed to stay on the track."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    for turn in (0.0, *[s * d for d in _DEFLECTIONS for s in (sign, -sign)]):
        angle = heading + turn
        ny, nx = y + math.sin(angle), x + math.cos(angle)
        i, j = round(ny), round(nx)
        if 0 <= i < track.shape[0] and 0 <= j < track.shape[1] and track[i, j]:
            return ny, nx, angle
    return None


def _stamp(labels: np.ndarray, mask: np.ndarray, footprint: np.ndarray, i: int, j: int,
           label: int) -> int:
    """Paint the brush at pixel ``(i, j)`` inside ``mask``; return the new pixel count."""
    r = footprint.shape[0] // 2
    i0, i1 = max(i - r, 0), min(i + r + 1, labels.shape[0])
    j0, j1 = max(j - r, 0), min(j + r + 1, labels.shape[1])
    brush = footprint[i0 - i + r:i1 - i + r, j0 - j + r:j1 - j + r]
    box = labels[i0:i1, j0:j1]
    paint = brush & mask[i0:i1, j0:j1] & (box == 0)
    box[paint] = label
    return int(paint.sum())


def _pick_slices(truth: np.ndarray, values: Sequence[int], n_slices: int | None) -> list[int]:
    depth = truth.shape[0]
    if n_slices is None:
        n_slices = min(depth, max(3, depth // 16))
    else:
        n_slices = min(_check_count("n_slices", n_slices, low=1), depth)
    chosen = {round(z) for z in np.linspace(0, depth - 1, n_slices + 2)[1:-1]}
    if depth <= 2:
        chosen = set(range(min(depth, n_slices)))
    for value in values:
        per_slice = np.count_nonzero(truth == value, axis=(1, 2))
        if per_slice.any() and not any(per_slice[z] for z in chosen):
            chosen.add(int(np.argmax(per_slice)))
    return sorted(chosen)


def _check_truth(truth: Any) -> np.ndarray:
    if not isinstance(truth, np.ndarray):
        raise TypeError(f"truth must be a NumPy array of class labels, got {type(truth).__name__}")
    if truth.dtype == bool:
        truth = truth.astype(np.uint8)
    if truth.dtype.kind not in "ui":
        raise TypeError(f"truth must hold integer class labels, got dtype {truth.dtype}")
    if truth.ndim not in (2, 3) or min(truth.shape) < 1:
        raise ValueError(f"truth must be a 2D (M, N) or 3D (P, M, N) array, got shape "
                         f"{truth.shape}")
    if truth.dtype.kind == "i" and truth.min() < 0:
        raise ValueError(f"truth must hold non-negative class labels, got {int(truth.min())}")
    return truth


def _check_classes(classes: Any, present: np.ndarray, *, zero_is_class: bool) -> list[int]:
    if classes is None:
        values = [int(v) for v in present]
        return values if zero_is_class else [v for v in values if v != 0]
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, np.ndarray)):
        raise TypeError(f"classes must be a sequence of truth values, "
                        f"got {type(classes).__name__}")
    values = []
    for v in classes:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"classes must hold non-negative integer truth values, got {v!r}")
        if v == 0 and not zero_is_class:
            raise ValueError("classes contains 0, which zero_is_class=False marks as no class")
        values.append(int(v))
    known = set(present.tolist())
    return [v for v in dict.fromkeys(values) if v in known]


def _check_number(name: str, value: Any, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in ({low:g}, {high:g}], "
                        f"got {type(value).__name__}")
    if not low < value <= high:
        raise ValueError(f"{name} must be a number in ({low:g}, {high:g}], got {value!r}")
    return float(value)


def _check_count(name: str, value: Any, *, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be an integer of at least {low}, got {value}")
    return int(value)
