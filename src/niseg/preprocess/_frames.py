"""Combining open-beam and dark-current frames into one reference, block by block.

Reference frames come as one frame, a stack of frames, or a list of those. They are combined
(median or mean over all frames) in blocks of rows, so the float32 working copy is a few
megabytes however many frames there are and whatever their stored dtype.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["combine_frames"]

COMBINE_METHODS = ("median", "mean")
#: Size of the float32 working block; small enough to stay in cache-friendly territory.
BLOCK_BYTES = 8 * 2**20


@dataclass
class _Piece:
    """One entry of a reference list: an array holding ``count`` frames along axis 0.

    ``data`` is a view in the caller's canonical frame layout; ``scale`` multiplies its
    values (exposure-time scaling) before combining.
    """

    data: np.ndarray
    count: int
    scale: float = 1.0


def _as_numeric(value: Any, name: str) -> np.ndarray:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a numeric array, not {type(value).__name__}")
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, not {array.dtype} values")
    if array.dtype.kind == "b":
        raise TypeError(f"{name} must hold counts, not booleans")
    if array.ndim == 0:
        raise ValueError(f"{name} is a single number; expected an image or a stack of images")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    return array


def _check_method(method: Any, name: str = "method") -> str:
    if method not in COMBINE_METHODS:
        raise ValueError(f"{name} must be 'median' or 'mean', got {method!r}")
    return str(method)


def _rows_per_block(row_items: int, n_frames: int) -> int:
    return max(1, BLOCK_BYTES // max(1, 4 * row_items * n_frames))


def _combine_block(block: np.ndarray, method: str) -> np.ndarray:
    """Median or mean over axis 0 of a float32 block, ignoring NaN only where there is any."""
    if np.isnan(block).any():
        with warnings.catch_warnings():
            # An all-NaN pixel stays NaN; the warning would only repeat that.
            warnings.simplefilter("ignore", RuntimeWarning)
            reduce = np.nanmedian if method == "median" else np.nanmean
            return reduce(block, axis=0).astype(np.float32, copy=False)
    if method == "median":
        return np.median(block, axis=0).astype(np.float32, copy=False)
    return np.mean(block, axis=0, dtype=np.float32)


def _check_block(values: np.ndarray, name: str, *, finite: bool, nonnegative: bool,
                 hint: str) -> None:
    if values.dtype.kind == "u" or not (finite or nonnegative):
        return
    lo = values.min()
    if finite and values.dtype.kind == "f":
        hi = values.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} holds NaN or infinite values; replace them (e.g. with the "
                             "median of their neighbours) before normalizing")
    if nonnegative and lo < 0:
        raise ValueError(f"{name} holds negative values (minimum {float(lo):g}), which raw counts "
                         f"cannot have{hint}")


def combine_pieces(pieces: Sequence[_Piece], frame_shape: tuple[int, ...], method: str, *,
                   name: str, finite: bool = False, nonnegative: bool = False,
                   hint: str = "") -> np.ndarray:
    """Combine all frames of ``pieces`` (each ``(count, *frame_shape)``) into one float32 frame.

    With ``finite``/``nonnegative`` the raw values are checked block by block, so bad input
    is refused without a full-size temporary.
    """
    total = sum(p.count for p in pieces)
    out = np.empty(frame_shape, dtype=np.float32)
    row_items = int(np.prod(frame_shape[1:], dtype=np.int64)) if len(frame_shape) > 1 else 1
    step = _rows_per_block(row_items, total)
    for start in range(0, frame_shape[0], step):
        rows = slice(start, min(start + step, frame_shape[0]))
        block = np.empty((total, rows.stop - rows.start, *frame_shape[1:]), dtype=np.float32)
        at = 0
        for piece in pieces:
            raw = piece.data[:, rows]
            _check_block(raw, name, finite=finite, nonnegative=nonnegative, hint=hint)
            target = block[at:at + piece.count]
            target[...] = raw
            if piece.scale != 1.0:
                target *= np.float32(piece.scale)
            at += piece.count
        out[rows] = block[0] if total == 1 else _combine_block(block, method)
    return out


def combine_frames(
    frames: ArrayLike | Sequence[ArrayLike],
    *,
    method: str = "median",
    axis: int = 0,
) -> np.ndarray:
    """Combine open-beam or dark-current frames into one frame by their median or mean.

    NaN values are ignored (a pixel that is NaN in every frame stays NaN), so frames with
    masked pixels can be combined. The median rejects outliers such as gamma spots that hit
    one frame; the mean has lower noise when the frames are clean. The work is done in
    blocks of rows in float32, so integer frames of any size need only a small temporary.

    Parameters
    ----------
    frames : (K, M, N[, ...]) array_like or sequence of array_like
        The frames, stacked along ``axis``; or a list whose entries are single frames (all
        of the same shape) or stacks of such frames along ``axis`` (one dimension more than
        the smallest entry). A list of entries that all have the same number of dimensions
        is a list of single frames.
    method : {"median", "mean"}, optional
        How to combine.
    axis : int, optional
        The frame axis of a stack.

    Returns
    -------
    (M, N[, ...]) float32 ndarray
        The combined frame.

    Raises
    ------
    ValueError
        If ``method`` is unknown, ``axis`` is out of range, the frames are empty or their
        shapes differ.
    TypeError
        If the frames are not real numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.preprocess import combine_frames
    >>> frames = np.array([[[10, 12]], [[11, 50]], [[9, 13]]], dtype=np.uint16)  # (3, 1, 2)
    >>> combine_frames(frames)
    array([[10., 13.]], dtype=float32)
    >>> combine_frames(frames, method="mean")
    array([[10., 25.]], dtype=float32)
    >>> combine_frames([np.array([[1.0, np.nan]]), np.array([[3.0, 4.0]])])
    array([[2., 4.]], dtype=float32)
    """
    method = _check_method(method)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, not {type(axis).__name__}")
    if isinstance(frames, np.ndarray) or not isinstance(frames, Sequence) or isinstance(
            frames, (str, bytes)):
        entries = [_as_numeric(frames, "frames")]
        stacked = [True]
    else:
        if len(frames) == 0:
            raise ValueError("frames is an empty list; give at least one frame")
        entries = [_as_numeric(f, f"frames[{i}]") for i, f in enumerate(frames)]
        low = min(e.ndim for e in entries)
        if all(e.ndim == low for e in entries):
            stacked = [False] * len(entries)
        else:
            stacked = [e.ndim == low + 1 for e in entries]
            for i, e in enumerate(entries):
                if e.ndim not in (low, low + 1):
                    raise ValueError(f"frames[{i}] has {e.ndim} dimensions; entries must be "
                                     f"frames with {low} or stacks with {low + 1}")
    pieces = []
    frame_shape = None
    for i, (entry, is_stack) in enumerate(zip(entries, stacked)):
        if is_stack:
            if not -entry.ndim <= axis < entry.ndim:
                raise ValueError(f"axis {axis} is out of range for frames with "
                                 f"{entry.ndim} dimensions")
            if entry.ndim < 2:
                raise ValueError(f"frames has shape {entry.shape}; a stack needs a frame axis "
                                 "and at least one more")
            view = np.moveaxis(entry, axis, 0)
        else:
            view = entry[np.newaxis]
        if frame_shape is None:
            frame_shape = view.shape[1:]
        elif view.shape[1:] != frame_shape:
            raise ValueError(f"frames[{i}] holds frames of shape {view.shape[1:]} but the first "
                             f"entry holds frames of shape {frame_shape}")
        if view.shape[0] == 0:
            raise ValueError(f"frames has no frames along axis {axis} (shape {entry.shape})")
        pieces.append(_Piece(view, view.shape[0]))
    return combine_pieces(pieces, frame_shape, method, name="frames")
