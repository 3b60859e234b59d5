"""read_image, write_image and read_nxtomo: the public entry points of niseg.io."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._atomic import atomic_output
from ._dispatch import read_file
from ._fits import write_fits
from ._formats import (
    PROVENANCE_KEYS,
    MetadataLossWarning,
    PrecisionLossWarning,
    format_for_path,
    split_selector,
    supported_formats,
)
from ._hdf5 import read_nxtomo_file, write_hdf5
from ._metadata import (
    AXES_LETTERS,
    default_axes,
    finalise_read_metadata,
    prepare_write_metadata,
    stored_metadata,
)
from ._npy import write_npy
from ._paths import expand_paths, is_glob, is_zarr_store
from ._raster import check_raster_shape, write_raster
from ._stack import read_stack
from ._tiff import write_tiff
from ._zarr import write_zarr

_SELECTABLE = ("hdf5", "zarr")
_STANDARD = ("pixel_size", "unit", "exposure_time", "classes")


def _check_user_axes(axes: Any) -> str | None:
    if axes is None:
        return None
    if not isinstance(axes, str) or not axes:
        raise TypeError(f"axes must be a string of letters from '{AXES_LETTERS}', not {axes!r}")
    return axes.lower()


def _as_text(path: Any, name: str = "path") -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or Path), not {type(path).__name__}")
    return os.fspath(path)


def _format_of_existing(file_part: Path) -> str:
    if file_part.is_dir() and is_zarr_store(file_part):
        return "zarr"
    return format_for_path(file_part)


def read_image(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    axes: str | None = None,
    lazy: bool = False,
) -> tuple[np.ndarray | Any, dict]:
    """Read an image, a stack or a volume with its axes and metadata.

    ``path`` may be a file (TIFF, PNG, JPEG, FITS, NPY, HDF5/NeXus, Zarr), an HDF5 or Zarr
    file with a selector (``scan.h5::/entry/data/data``, ``store.zarr::group/array``), a
    folder or glob of slice files (stacked in natural order along a new first axis), or a
    list of slice files. NXtomo files give only the projections (see :func:`read_nxtomo`).

    Parameters
    ----------
    path : str, PathLike or sequence of them
        What to read.
    axes : str, optional
        Axis letters from ``"zyxtlc"``, one per dimension (e.g. ``"tyx"`` for a stack of
        projections); they replace whatever the file records or the default.
    lazy : bool
        Return a Dask array. TIFF, slice stacks, NPY, HDF5 and Zarr read nothing until
        computed; PNG, JPEG and FITS are read and then wrapped.

    Returns
    -------
    array : (M, N[, ...]) ndarray or dask.array.Array
        The pixels, in the dtype stored in the file (never rescaled).
    metadata : dict
        ``axes`` (str) and ``axes_guessed`` (bool) always; ``source`` (absolute path)
        always; ``pixel_size`` (one float per z/y/x axis, in axes order) and ``unit`` when
        known; ``exposure_time`` (s), ``classes``, ``header`` (format extras) and any keys
        stored by :func:`write_image` when present. HDF5/Zarr add ``dataset``; NXtomo adds
        ``nxtomo`` counts and ``rotation_angle``. Stacks of 2D files whose slice spacing is
        unknown give ``slice_pixel_size`` (y, x) instead of ``pixel_size``.

    Raises
    ------
    ValueError
        If the file is missing, unreadable, truncated, of unknown type, if a selector points
        nowhere, or if ``axes`` does not fit the data.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_image(folder / "frames.tif", np.zeros((3, 4, 5), np.uint16))
    >>> image, meta = read_image(folder / "frames.tif", axes="tyx")
    >>> image.shape, meta["axes"], meta["axes_guessed"]
    ((3, 4, 5), 'tyx', False)
    """
    user_axes = _check_user_axes(axes)
    if not isinstance(path, (str, os.PathLike)):
        if not isinstance(path, Sequence):
            raise TypeError(
                f"path must be a file path or a list of them, not {type(path).__name__}"
            )
        paths = expand_paths(path)
        return _read_many(paths, user_axes, lazy, source=os.path.abspath(paths[0].parent))
    text = _as_text(path)
    file_part, selector = split_selector(text)
    if selector is None and file_part.is_dir() and not is_zarr_store(file_part):
        return _read_many(expand_paths(text), user_axes, lazy, source=os.path.abspath(text))
    if selector is None and not file_part.exists() and is_glob(text):
        return _read_many(expand_paths(text), user_axes, lazy, source=os.path.abspath(text))
    if not file_part.exists():
        raise ValueError(f"cannot read '{file_part}': the file does not exist")
    try:
        fmt = _format_of_existing(file_part)
    except ValueError as exc:
        raise ValueError(f"cannot read {exc}") from None
    if selector is not None and fmt not in _SELECTABLE:
        raise ValueError(f"cannot read '{text}': only HDF5 and Zarr paths take a '::' selector")
    array, raw = _guarded(
        file_part, lambda: read_file(file_part, fmt, selector, lazy=lazy, user_axes=user_axes)
    )
    meta = finalise_read_metadata(
        raw, array.ndim, user_axes=user_axes, source=os.path.abspath(file_part)
    )
    return array, meta


def _guarded(path: Path, read: Any) -> Any:
    """Run a reader; turn any library error that slipped through into one ValueError."""
    try:
        return read()
    except ValueError as exc:
        # Our own errors name the file; a library's bare ValueError gets the name added.
        if path.name in str(exc):
            raise
        raise ValueError(f"cannot read '{path}': {exc}") from exc
    except (TypeError, MemoryError):
        raise
    except Exception as exc:
        raise ValueError(f"cannot read '{path}': {exc}") from exc


def _read_many(
    paths: list[Path], user_axes: str | None, lazy: bool, *, source: str
) -> tuple[Any, dict]:
    array, raw = _guarded(paths[0], lambda: read_stack(paths, lazy=lazy, user_axes=user_axes))
    meta = finalise_read_metadata(raw, array.ndim, user_axes=user_axes, source=source)
    return array, meta


def read_nxtomo(path: str | os.PathLike) -> dict:
    """Read a tomography scan stored as NeXus NXtomo, split into projections, flats and darks.

    Frames are classified by the NXtomo ``image_key`` (0 projection, 1 flat / open beam,
    2 dark), found beside the frames, in ``/entry/instrument/detector`` or in
    ``/entry/data``. A Data Exchange file (``/exchange/data``, ``data_white``,
    ``data_dark``, ``theta``) is read the same way.

    Parameters
    ----------
    path : str or PathLike
        The HDF5/NeXus file, optionally with ``::/path/to/frames``.

    Returns
    -------
    dict
        ``projections``, ``flats``, ``darks``: (T, M, N) ndarrays (T may be 0);
        ``rotation_angle``: (T,) float64 ndarray for the projections, or None;
        ``metadata``: dict with ``axes`` ``"tyx"``, ``source``, ``dataset``, ``nxtomo``
        counts, and pixel size, exposure time and ``rotation_angle_unit`` when recorded.

    Raises
    ------
    ValueError
        If the file cannot be read or has no image_key for its frames.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import h5py, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scan.nxs"
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("entry/instrument/detector/data", data=np.zeros((5, 4, 6)))
    ...     _ = f.create_dataset("entry/instrument/detector/image_key", data=[2, 1, 0, 0, 0])
    >>> scan = read_nxtomo(path)
    >>> scan["projections"].shape, scan["flats"].shape, scan["darks"].shape
    ((3, 4, 6), (1, 4, 6), (1, 4, 6))
    """
    text = _as_text(path)
    file_part, selector = split_selector(text)
    if not file_part.exists():
        raise ValueError(f"cannot read '{file_part}': the file does not exist")
    try:
        fmt = format_for_path(file_part)
    except ValueError as exc:
        raise ValueError(f"cannot read {exc}") from None
    if fmt != "hdf5":
        raise ValueError(f"cannot read '{file_part}' as NXtomo: it is a {fmt} file, not HDF5/NeXus")
    parts = _guarded(file_part, lambda: read_nxtomo_file(file_part, selector))
    raw = parts["metadata"]
    raw["axes"] = "tyx"
    raw["nxtomo"] = {
        "n_projections": int(parts["projections"].shape[0]),
        "n_flats": int(parts["flats"].shape[0]),
        "n_darks": int(parts["darks"].shape[0]),
    }
    parts["metadata"] = finalise_read_metadata(
        raw, 3, user_axes=None, source=os.path.abspath(file_part)
    )
    return parts


def _implied_axes(fmt: str, ndim: int) -> str | None:
    """Axes a format without recorded axes reads back for an array of ``ndim``."""
    if fmt in ("png", "jpeg"):
        return {2: "yx", 3: "yxc"}.get(ndim)
    try:
        return default_axes(ndim)
    except ValueError:
        return None


def _dropped_keys(fmt: str, meta: dict) -> list[str]:
    record = supported_formats()[fmt]
    candidates = [k for k in meta if k not in PROVENANCE_KEYS and k != "axes"]
    dropped: list[str] = []
    implied = _implied_axes(fmt, len(meta["axes"]))
    if record["axes"] == "from shape" and not meta["axes_guessed"] and meta["axes"] != implied:
        dropped.append("axes")
    if record["other_keys"] == "all":
        return dropped
    if record["other_keys"] == "none":
        return dropped + candidates
    # Scalars-only formats (FITS) report what they could not store while writing.
    return dropped


def _prepare_array(array: Any, fmt: str) -> Any:
    is_dask = hasattr(array, "dask") and hasattr(array, "compute")
    if is_dask and fmt not in ("tiff", "hdf5", "zarr"):
        array, is_dask = array.compute(), False
    if not is_dask:
        array = np.asarray(array)
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "biufc":
        raise TypeError(f"array must hold numbers, not {dtype} values")
    if array.ndim == 0:
        raise ValueError("array is a single number; an image needs at least one dimension")
    if dtype == np.bool_:
        array = array.astype(np.uint8)
    elif dtype.byteorder not in ("=", "|"):
        array = array.astype(dtype.newbyteorder("="))
    return array


def _dtype_refusal(fmt: str, dtype: np.dtype) -> ValueError:
    record = supported_formats()[fmt]
    allowed = record["write_dtypes"]
    listed = " and ".join(allowed) if len(allowed) <= 2 else ", ".join(allowed)
    return ValueError(
        f"{record['name']} stores only {listed} images, not {dtype}; convert with "
        "rescale_to_dtype first (niseg convert --rescale)"
    )


def write_image(
    path: str | os.PathLike,
    array: ArrayLike,
    metadata: dict | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write an image with its metadata, atomically, in the format its extension names.

    The data go to a temporary file next to ``path`` that is renamed only when complete, so
    a failed write leaves nothing behind. Values are never rescaled: a dtype the format
    cannot store exactly is refused (use :func:`rescale_to_dtype`); booleans are written as
    uint8 0/1. ``file.h5::/group/data`` and ``store.zarr::group/array`` name the dataset
    (default ``/data`` for HDF5); an existing HDF5 file is replaced as a whole.

    Parameters
    ----------
    path : str or PathLike
        Output file (or ``.zarr`` folder).
    array : (M, N[, ...]) array_like
        The image. Dask arrays are written chunk by chunk to TIFF, HDF5 and Zarr.
    metadata : dict, optional
        As returned by :func:`read_image`: ``axes`` (default from the number of
        dimensions), ``pixel_size`` (one value per z/y/x axis, or one number for all),
        ``unit``, ``exposure_time``, ``classes``, ``header`` and other JSON-able keys.
        ``source`` and ``dataset`` describe a read and are not stored.
    overwrite : bool
        Replace an existing output.

    Returns
    -------
    Path
        The file written (without any ``::`` selector).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the format cannot store the dtype or shape exactly, or metadata is inconsistent.

    Warns
    -----
    MetadataLossWarning
        When the format drops metadata that was passed (PNG, JPEG and NPY keep only what
        the shape implies; FITS keeps scalars only).
    PrecisionLossWarning
        Always for JPEG, whose compression changes pixel values.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "volume.tif"
    >>> volume = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    >>> write_image(out, volume, {"axes": "zyx", "pixel_size": (2.0, 0.5, 0.5), "unit": "um"})
    PosixPath('...volume.tif')
    >>> _, meta = read_image(out)
    >>> meta["pixel_size"], meta["unit"]
    ((2.0, 0.5, 0.5), 'um')
    """
    text = _as_text(path)
    file_part, selector = split_selector(text)
    fmt = format_for_path(file_part)
    if selector is not None and fmt not in _SELECTABLE:
        raise ValueError(f"cannot write '{text}': only HDF5 and Zarr paths take a '::' selector")
    data = _prepare_array(array, fmt)
    if np.dtype(data.dtype).name not in supported_formats()[fmt]["write_dtypes"]:
        raise _dtype_refusal(fmt, np.dtype(data.dtype))
    meta = prepare_write_metadata(metadata, data.ndim)
    if fmt in ("png", "jpeg"):
        check_raster_shape(data, meta["axes"], fmt, guessed=meta["axes_guessed"])
    dropped = _dropped_keys(fmt, meta)
    if fmt == "jpeg":
        warnings.warn(
            f"JPEG compression is lossy: '{file_part}' will not hold the exact pixel values; "
            "use PNG or TIFF to keep them",
            PrecisionLossWarning,
            stacklevel=2,
        )
    if dropped:
        _warn_dropped(fmt, file_part, dropped)
    stored = stored_metadata(meta)
    late: list[str] = []
    with atomic_output(file_part, overwrite=overwrite) as tmp:
        if fmt == "tiff":
            if meta.get("header"):
                stored["header"] = meta["header"]
            write_tiff(tmp, data, meta, stored)
        elif fmt in ("png", "jpeg"):
            write_raster(tmp, data, meta, fmt)
        elif fmt == "fits":
            extras = {
                k: v
                for k, v in meta.items()
                if k not in PROVENANCE_KEYS and k != "axes" and k not in _STANDARD
            }
            late = write_fits(tmp, data, meta, extras)
        elif fmt == "npy":
            write_npy(tmp, data)
        elif fmt == "hdf5":
            write_hdf5(tmp, data, meta, stored, selector)
        else:
            write_zarr(tmp, data, meta, stored, selector)
    if late:
        _warn_dropped(fmt, file_part, late)
    return file_part


def _warn_dropped(fmt: str, path: Path, keys: list[str]) -> None:
    name = supported_formats()[fmt]["name"]
    warnings.warn(
        f"{name} file '{path}' does not keep metadata {', '.join(keys)}; they were dropped "
        "(TIFF, HDF5 and Zarr keep them)",
        MetadataLossWarning,
        stacklevel=3,
    )
