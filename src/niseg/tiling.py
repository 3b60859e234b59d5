"""Prediction in tiles with halos: the one path every segmenter and batch run uses.

An image is cut into non-overlapping *core* tiles. Each core is read together with a margin of
``halo`` pixels on every side (clipped at the image border), the segmenter predicts the whole
block, and only the core is kept. When ``halo`` is at least the model's receptive-field radius,
every kept pixel saw exactly the neighbourhood it sees in an untiled prediction, so tiled labels
equal untiled labels bit for bit, while memory is bounded by the tile size.

The input may be anything that slices like a NumPy array (a NumPy array or memory map, a Dask
array, a Zarr array, an h5py dataset): only one block is in memory at a time. The output can be
given as ``out=`` (e.g. a Zarr array) for results larger than memory.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["Tile", "default_tile", "iter_tiles", "predict_tiled"]

#: Pixels per tile when no tile size is given.
DEFAULT_TILE_PIXELS = 1 << 22


@dataclass(frozen=True)
class Tile:
    """One tile of a tiled pass over an array's spatial axes.

    Attributes
    ----------
    read : tuple of slice
        Region to read from the input: the core plus its halo, clipped to the array.
    core : tuple of slice
        The core in input coordinates: where the kept result goes.
    core_in_block : tuple of slice
        The core relative to the block that was read.
    """

    read: tuple[slice, ...]
    core: tuple[slice, ...]
    core_in_block: tuple[slice, ...]


def _per_axis(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    if np.isscalar(value):
        values = (int(value),) * ndim  # type: ignore[arg-type]
    else:
        values = tuple(int(v) for v in value)  # type: ignore[union-attr]
    if len(values) != ndim:
        raise ValueError(f"{name} has {len(values)} values but there are {ndim} spatial axes")
    return values


def iter_tiles(
    shape: Sequence[int], *, tile: int | Sequence[int], halo: int | Sequence[int] = 0
) -> Iterator[Tile]:
    """Yield the tiles covering an array of ``shape``, in C order.

    Parameters
    ----------
    shape : sequence of int
        Spatial shape to cover.
    tile : int or sequence of int
        Core size per axis (the last tile along an axis may be smaller).
    halo : int or sequence of int
        Context read around each core, per axis.

    Yields
    ------
    Tile
        Slices for reading, for the core in the input and for the core inside the block.

    Examples
    --------
    >>> tiles = list(iter_tiles((5, 4), tile=3, halo=1))
    >>> len(tiles)
    4
    >>> tiles[0].read, tiles[0].core_in_block
    ((slice(0, 4, None), slice(0, 4, None)), (slice(0, 3, None), slice(0, 3, None)))
    """
    shape = tuple(int(s) for s in shape)
    tile_size = _per_axis(tile, len(shape), "tile")
    halo_size = _per_axis(halo, len(shape), "halo")
    if any(t < 1 for t in tile_size):
        raise ValueError(f"tile must be at least 1 pixel per axis, got {tile_size}")
    if any(h < 0 for h in halo_size):
        raise ValueError(f"halo must not be negative, got {halo_size}")
    starts = [range(0, n, t) for n, t in zip(shape, tile_size)]
    for origin in itertools.product(*starts):
        read, core, inner = [], [], []
        for start, n, t, h in zip(origin, shape, tile_size, halo_size):
            stop = min(start + t, n)
            lo = max(start - h, 0)
            hi = min(stop + h, n)
            read.append(slice(lo, hi))
            core.append(slice(start, stop))
            inner.append(slice(start - lo, stop - lo))
        yield Tile(tuple(read), tuple(core), tuple(inner))


def default_tile(
    spatial_shape: Sequence[int],
    *,
    chunks: Sequence[int] | None = None,
    pixels: int = DEFAULT_TILE_PIXELS,
    multiple: int | Sequence[int] | None = None,
) -> tuple[int, ...]:
    """Choose a tile size: about ``pixels`` per tile, whole chunks of a chunked input.

    Parameters
    ----------
    spatial_shape : sequence of int
        Shape of the spatial axes.
    chunks : sequence of int, optional
        Chunk shape of the input along the spatial axes; tiles are rounded up to multiples.
    pixels : int
        Target number of pixels per tile.
    multiple : int or sequence of int, optional
        Tiles are rounded up to multiples of this per axis (a segmenter's ``tile_multiple``,
        e.g. a U-Net's sliding-window step, so tiles reproduce the untiled result).

    Returns
    -------
    tuple of int
        Tile size per axis, never larger than the image (rounded to chunks).

    Examples
    --------
    >>> default_tile((10000, 10000))
    (2048, 2048)
    >>> default_tile((10000, 10000), chunks=(768, 768))
    (2304, 2304)
    >>> default_tile((100, 5000))
    (100, 5000)
    >>> default_tile((10000, 10000), multiple=96)
    (2112, 2112)
    """
    ndim = len(spatial_shape)
    side = round(pixels ** (1.0 / ndim))
    tile = [min(side, int(n)) for n in spatial_shape]
    # Axes that are smaller than a side leave pixels to give to the others.
    spare = pixels / max(int(np.prod(tile)), 1)
    grow = [i for i, n in enumerate(spatial_shape) if tile[i] < n]
    if grow and spare > 1:
        factor = spare ** (1.0 / len(grow))
        for i in grow:
            tile[i] = min(int(tile[i] * factor), int(spatial_shape[i]))
    if chunks is not None:
        tile = [
            min(int(np.ceil(t / c)) * int(c), int(n)) if c else t
            for t, c, n in zip(tile, chunks, spatial_shape)
        ]
    if multiple is not None:
        steps = _per_axis(multiple, ndim, "multiple")
        tile = [min(int(np.ceil(t / m)) * m, int(n)) if m > 0 else t
                for t, m, n in zip(tile, steps, spatial_shape)]
    return tuple(max(t, 1) for t in tile)


def _chunk_shape(image: Any, n_leading: int, spatial_dims: int) -> tuple[int, ...] | None:
    chunks = getattr(image, "chunks", None)
    if chunks is None:
        return None
    try:
        # Dask gives per-axis tuples of block sizes; Zarr and h5py give one size per axis.
        sizes = [c[0] if isinstance(c, tuple) else int(c) for c in chunks]
    except (TypeError, IndexError):
        return None
    spatial = sizes[n_leading : n_leading + spatial_dims]
    return tuple(spatial) if len(spatial) == spatial_dims else None


def predict_tiled(
    segmenter: Any,
    image: Any,
    *,
    tile: int | Sequence[int] | None = None,
    output: Literal["labels", "proba", "both"] = "labels",
    halo: int | Sequence[int] | None = None,
    out: Any = None,
    proba_out: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Predict an image of any size tile by tile, identical to predicting it whole.

    Parameters
    ----------
    segmenter : Segmenter
        A fitted model (see :class:`niseg.models.Segmenter`).
    image : (*leading, *spatial[, C]) array-like
        The image. Its ``segmenter.spatial_dims`` spatial axes come after any leading axes and
        before the channel axis, which is present only for models with ``n_channels_ > 1``.
        Leading axes are predicted slice by slice (a 2D model over a volume or a stack).
        NumPy, Dask, Zarr and h5py arrays work; only one block is read at a time.
    tile : int or sequence of int, optional
        Core tile size per spatial axis, in pixels. By default about 4 million pixels per
        tile (2048² in 2D, about 160³ in 3D), rounded up to whole chunks of a chunked input (Dask,
        Zarr) so that each chunk is decompressed few times, and to multiples of the
        segmenter's ``tile_multiple`` when it has one (U-Nets: the sliding-window step).
    output : {"labels", "proba", "both"}
        ``"labels"`` calls ``segmenter.predict`` on each block; ``"proba"`` calls
        ``segmenter.predict_proba``; ``"both"`` calls ``predict_proba`` once and takes the
        labels as ``classes_[argmax]``.
    halo : int or sequence of int, optional
        Context around each tile; defaults to ``segmenter.halo``. Smaller values make tiles
        differ from the untiled result near tile borders.
    out : array-like, optional
        Where to write the labels (shape ``image`` without the channel axis); e.g. a Zarr
        array for results larger than memory. Allocated in memory when omitted.
    proba_out : array-like, optional
        Where to write probabilities, shape ``(*leading, *spatial, K)``, float32.
    progress : callable, optional
        Called as ``progress(done, total)`` after each tile.

    Returns
    -------
    ndarray or tuple
        Labels (dtype of ``classes_``), probabilities (float32, classes on the last axis), or
        ``(labels, probabilities)`` for ``output="both"``.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.threshold import ThresholdSegmenter
    >>> image = np.random.default_rng(0).random((100, 90)).astype(np.float32)
    >>> model = ThresholdSegmenter(sigma=2.0).fit(image)
    >>> tiled = predict_tiled(model, image, tile=32)
    >>> bool((tiled == model.predict(image)).all())
    True
    """
    if output not in ("labels", "proba", "both"):
        raise ValueError(f"output must be 'labels', 'proba' or 'both', got {output!r}")
    spatial_dims = int(segmenter.spatial_dims)
    n_channels = int(getattr(segmenter, "n_channels_", 1))
    classes = np.asarray(segmenter.classes_)
    shape = tuple(int(s) for s in image.shape)

    has_channels = n_channels > 1
    if has_channels:
        if len(shape) < spatial_dims + 1 or shape[-1] != n_channels:
            raise ValueError(
                f"image has shape {shape} but the model expects {n_channels} channels on the "
                "last axis"
            )
        label_shape = shape[:-1]
    else:
        label_shape = shape
    if len(label_shape) < spatial_dims:
        raise ValueError(
            f"image has {len(label_shape)} dimensions but the model is {spatial_dims}-D"
        )
    n_leading = len(label_shape) - spatial_dims
    leading_shape = label_shape[:n_leading]
    spatial_shape = label_shape[n_leading:]
    halo = segmenter.halo if halo is None else halo

    want_labels = output in ("labels", "both")
    want_proba = output in ("proba", "both")
    if want_labels:
        if out is None:
            out = np.zeros(label_shape, dtype=classes.dtype)
        elif tuple(out.shape) != label_shape:
            raise ValueError(f"out has shape {tuple(out.shape)} but should be {label_shape}")
    if want_proba:
        proba_shape = (*label_shape, len(classes))
        if proba_out is None:
            proba_out = np.zeros(proba_shape, dtype=np.float32)
        elif tuple(proba_out.shape) != proba_shape:
            raise ValueError(
                f"proba_out has shape {tuple(proba_out.shape)} but should be {proba_shape}"
            )

    if tile is None:
        tile = default_tile(spatial_shape, chunks=_chunk_shape(image, n_leading, spatial_dims),
                            multiple=getattr(segmenter, "tile_multiple", None))
    tiles = list(iter_tiles(spatial_shape, tile=tile, halo=halo))
    leading_indices = list(np.ndindex(*leading_shape)) if leading_shape else [()]
    total = len(tiles) * len(leading_indices)
    done = 0
    channel = (slice(None),) if has_channels else ()
    for lead in leading_indices:
        for t in tiles:
            block = np.asarray(image[(*lead, *t.read, *channel)])
            if want_proba:
                proba = np.asarray(segmenter.predict_proba(block), dtype=np.float32)
                kept = proba[t.core_in_block]
                proba_out[(*lead, *t.core)] = kept
                if want_labels:
                    out[(*lead, *t.core)] = classes[np.argmax(kept, axis=-1)]
            else:
                labels = np.asarray(segmenter.predict(block))
                out[(*lead, *t.core)] = labels[t.core_in_block]
            del block
            if total > 1:
                _release_freed_memory()
            done += 1
            if progress is not None:
                progress(done, total)

    if output == "labels":
        return out
    if output == "proba":
        return proba_out
    return out, proba_out


def _release_freed_memory() -> None:
    """Hand memory freed by the last tile back to the operating system (glibc only).

    A tile's features are hundreds of MB of temporaries allocated from several threads;
    glibc keeps much of what they free in its heaps, so a process's resident memory creeps
    up with the number of tiles even though no tile's data outlives it. ``malloc_trim`` (as
    Dask's workers call it) returns that memory, keeping the peak set by one tile.
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        _MALLOC_TRIM = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None
