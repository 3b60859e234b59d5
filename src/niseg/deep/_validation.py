"""An honest validation block carved from the training images, and early stopping.

A network validated on pixels next to its training pixels looks better than it is: their
receptive fields overlap, so it has seen the validation context while fitting. The validation
block is therefore a slab (or whole images) separated from every training pixel by a gap band
at least the network's halo wide, so that no training pixel's receptive field reaches a
validation pixel and no validation pixel's receptive field reaches a training pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["EarlyStopping", "ValidationBlock", "validation_split"]

# Whole images are used for validation only when they come this close to the wanted size.
_WHOLE_IMAGE_TOLERANCE = 0.5


@dataclass(frozen=True)
class ValidationBlock:
    """Training and validation regions of one image.

    Attributes
    ----------
    train_mask : (*leading, M, N[, P]) ndarray of bool
        Pixels whose labels may be used for training.
    val_mask : (*leading, M, N[, P]) ndarray of bool
        Pixels whose labels are used for validation only. Pixels in neither mask (the gap
        band) are not used at all.
    axis : int or None
        Spatial axis (counted from the first spatial axis) across which the image was cut;
        None when the image is used whole for training or for validation.
    val_slice : slice or None
        Validation slab along ``axis``.
    n_train, n_val : int
        Labelled pixels in the training and validation regions.
    """

    train_mask: np.ndarray
    val_mask: np.ndarray
    axis: int | None
    val_slice: slice | None
    n_train: int
    n_val: int


def _labelled(item: Any, index: int, spatial_dims: int) -> np.ndarray:
    if isinstance(item, tuple) and all(isinstance(v, (int, np.integer)) for v in item):
        labelled = np.ones(tuple(int(v) for v in item), dtype=bool)
    else:
        arr = np.asarray(item)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"labels[{index}] must be a label image or a shape tuple, got "
                            f"dtype {arr.dtype}")
        labelled = arr != 0
    if labelled.ndim < spatial_dims:
        raise ValueError(f"labels[{index}] has shape {labelled.shape} but needs at least "
                         f"{spatial_dims} spatial axes")
    return labelled


def _halo(halo: int | Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    values = (halo,) * spatial_dims if np.isscalar(halo) else tuple(halo)  # type: ignore[arg-type]
    if len(values) != spatial_dims or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0
            for v in values):
        raise ValueError(f"halo must be a non-negative whole number or one per spatial axis "
                         f"({spatial_dims}), got {halo!r}")
    return tuple(int(v) for v in values)


def _whole_images(counts: list[int], target: float, rng: np.random.Generator) -> list[int]:
    """Images that together hold about ``target`` labels, leaving labels to train on."""
    chosen: list[int] = []
    total = 0
    for i in rng.permutation(len(counts)):
        if counts[i] and total + counts[i] <= target * (1 + _WHOLE_IMAGE_TOLERANCE):
            chosen.append(int(i))
            total += counts[i]
    left = sum(counts) - total
    if total >= target * (1 - _WHOLE_IMAGE_TOLERANCE) and left > 0:
        return sorted(chosen)
    return []


def _slab(labelled: np.ndarray, axis: int, target: float, gap: int,
          from_end: bool) -> tuple[slice, slice, int, int]:
    """Validation and training slices along ``axis`` and their label counts."""
    other = tuple(a for a in range(labelled.ndim) if a != axis)
    profile = labelled.sum(axis=other)
    n = profile.size
    order = profile[::-1] if from_end else profile
    cumulative = np.cumsum(order)
    # The shortest slab from this end holding at least the target number of labels.
    k = int(np.searchsorted(cumulative, target)) + 1
    k = min(k, n)
    if from_end:
        val = slice(n - k, n)
        train = slice(0, max(n - k - gap, 0))
    else:
        val = slice(0, k)
        train = slice(min(k + gap, n), n)
    return val, train, int(profile[val].sum()), int(profile[train].sum())


def validation_split(
    labels: Sequence[Any],
    fraction: float,
    halo: int | Sequence[int],
    *,
    spatial_dims: int,
    seed: int = 0,
) -> list[ValidationBlock]:
    """Set aside about ``fraction`` of the labelled pixels for validation, away from training.

    With three or more labelled images, whole images are used for validation when some of
    them (picked in a seeded random order) hold between half and 1.5 times the wanted number
    of labels: separate images are the most honest validation and waste no pixels on a gap.
    Otherwise the image with the most labels is cut across its longest spatial axis: a slab at
    one end (the end picked by ``seed``; the other end is tried when the first leaves nothing)
    just long enough to hold ``fraction`` of all labels becomes the validation block, the next
    ``halo`` pixels are a gap used for nothing, and the rest, with all other images, is for
    training. Labels are counted, not pixels, so sparse strokes work.

    Parameters
    ----------
    labels : sequence of ndarray or shape tuples
        Per training image, its labels with shape ``(*leading, M, N[, P])``: non-zero pixels
        are labelled (brush strokes, 0 = unlabelled). For a dense mask, in which 0 is a class,
        pass its shape (all pixels labelled) or ``np.ones(mask.shape, bool)``. Leading axes
        (slices of a 2D model) are cut together with the spatial ones.
    fraction : float
        Wanted share of the labelled pixels for validation, above 0 and at most 0.5.
    halo : int or sequence of int
        Width of the gap in pixels per spatial axis: the network's receptive-field radius.
    spatial_dims : int
        Number of spatial axes of the network (2 or 3); they are the last axes of each image.
    seed : int, optional
        Seed of the choices; the same inputs and seed give the same split.

    Returns
    -------
    list of ValidationBlock
        One per image, with its training and validation masks. Every training pixel is more
        than ``halo`` pixels from every validation pixel along the cut axis.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.ones((100, 60), np.uint8)
    >>> (block,) = validation_split([labels], 0.2, 8, spatial_dims=2)
    >>> block.axis, block.n_val, block.n_train
    (0, 1200, 4320)
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) \
            or not 0 < float(fraction) <= 0.5:
        raise ValueError(f"fraction must be above 0 and at most 0.5, got {fraction!r}")
    if len(labels) == 0:
        raise ValueError("labels is empty; give at least one labelled training image")
    gaps = _halo(halo, spatial_dims)
    labelled = [_labelled(item, i, spatial_dims) for i, item in enumerate(labels)]
    counts = [int(m.sum()) for m in labelled]
    total = sum(counts)
    if total == 0:
        raise ValueError("labels has no labelled (non-zero) pixels to split")
    target = float(fraction) * total
    rng = np.random.default_rng(seed)

    if sum(c > 0 for c in counts) >= 3:
        chosen = _whole_images(counts, target, rng)
        if chosen:
            return [ValidationBlock(train_mask=np.full(m.shape, i not in chosen),
                                    val_mask=np.full(m.shape, i in chosen), axis=None,
                                    val_slice=None, n_train=0 if i in chosen else counts[i],
                                    n_val=counts[i] if i in chosen else 0)
                    for i, m in enumerate(labelled)]

    # The largest image holds at least half of the labels when there are fewer than three,
    # so with fraction <= 0.5 its slab can always reach the target.
    tie_break = rng.permutation(len(counts))
    cut = int(max(tie_break, key=lambda i: counts[i]))
    mask = labelled[cut]
    lead = mask.ndim - spatial_dims
    spatial_shape = mask.shape[lead:]
    # Longest spatial axis; the first of equals, so that a (z, y, x) volume is cut in z.
    axis = int(np.argmax(spatial_shape))
    ends = [True, False] if rng.random() < 0.5 else [False, True]
    rest_train = total - counts[cut]
    for from_end in ends:
        val, train, n_val, n_train = _slab(mask, lead + axis, target, gaps[axis], from_end)
        if n_val > 0 and n_train + rest_train > 0:
            break
    else:
        raise ValueError(
            f"no labelled pixels are left for training after a validation slab of "
            f"{val.stop - val.start} pixels and a gap of {gaps[axis]} pixels along axis {axis} "
            f"of image {cut}; label more, lower fraction or use a smaller halo")

    blocks = []
    for i, m in enumerate(labelled):
        if i != cut:
            blocks.append(ValidationBlock(np.ones(m.shape, bool), np.zeros(m.shape, bool),
                                          None, None, counts[i], 0))
            continue
        index: list[Any] = [slice(None)] * m.ndim
        train_mask = np.zeros(m.shape, bool)
        val_mask = np.zeros(m.shape, bool)
        index[lead + axis] = train
        train_mask[tuple(index)] = True
        index[lead + axis] = val
        val_mask[tuple(index)] = True
        blocks.append(ValidationBlock(train_mask, val_mask, axis, val, n_train, n_val))
    return blocks


class EarlyStopping:
    """Stop training when a validation score has not improved for ``patience`` epochs.

    Parameters
    ----------
    patience : int
        Epochs without improvement after which :meth:`step` says stop.
    min_delta : float, optional
        Smallest change that counts as an improvement; equal values (ties) never count.
    mode : {"max", "min"}
        Whether larger (Dice) or smaller (loss) values are better.

    Attributes
    ----------
    best : float or None
        Best value so far.
    best_epoch : int or None
        Epoch (1 for the first call of :meth:`step`) of the best value.
    is_best : bool
        Whether the last value was a new best (save a checkpoint then).
    epoch : int
        Number of values seen.

    Examples
    --------
    >>> stopper = EarlyStopping(patience=2)
    >>> [stopper.step(v) for v in (0.5, 0.6, 0.6, 0.55)]
    [False, False, False, True]
    >>> stopper.best, stopper.best_epoch
    (0.6, 2)
    """

    def __init__(self, patience: int, min_delta: float = 0.0,
                 mode: Literal["max", "min"] = "max") -> None:
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) \
                or patience < 1:
            raise ValueError(f"patience must be a whole number of at least 1, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float, np.floating)) \
                or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a non-negative number, got {min_delta!r}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = mode
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.is_best = False
        self.epoch = 0

    def step(self, value: float) -> bool:
        """Record one epoch's value.

        Parameters
        ----------
        value : float
            The validation score of this epoch; NaN never improves.

        Returns
        -------
        bool
            True when ``patience`` epochs have passed since the best value.
        """
        value = float(value)
        self.epoch += 1
        if math.isnan(value):
            improved = False
        elif self.best is None:
            improved = True
        elif self.mode == "max":
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        self.is_best = improved
        if improved:
            self.best = value
            self.best_epoch = self.epoch
        since = self.epoch - (self.best_epoch if self.best_epoch is not None else 0)
        return since >= self.patience
