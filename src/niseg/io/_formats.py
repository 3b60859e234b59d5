"""The formats niseg reads and writes, what each keeps, and how a path maps to a format."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

__all__ = [
    "MetadataLossWarning",
    "PrecisionLossWarning",
    "format_for_path",
    "lossless_dtype_for",
    "split_selector",
    "supported_formats",
]


class MetadataLossWarning(UserWarning):
    """Warned when a format cannot keep metadata the caller passed to ``write_image``."""


class PrecisionLossWarning(UserWarning):
    """Warned when a format cannot keep the exact pixel values (JPEG compression)."""


_INTS = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
_ALL_NUMERIC = [*_INTS, "float16", "float32", "float64", "complex64", "complex128"]

# One record per format. It is the single source for dispatch, the dtype checks of
# write_image, the metadata-loss warnings and the table in docs/io.md.
_FORMATS: dict[str, dict] = {
    "tiff": {
        "name": "TIFF",
        "extensions": [".tif", ".tiff"],
        "dtypes": list(_ALL_NUMERIC),
        "write_dtypes": list(_ALL_NUMERIC),
        "axes": "recorded",
        "keeps": ["pixel_size", "unit", "exposure_time", "classes"],
        "other_keys": "all",
        "lazy": "chunked",
        "stacks": True,
    },
    "png": {
        "name": "PNG",
        "extensions": [".png"],
        "dtypes": ["uint8", "uint16"],
        "write_dtypes": ["uint8", "uint16"],
        "axes": "from shape",
        "keeps": [],
        "other_keys": "none",
        "lazy": "loads then wraps",
        "stacks": True,
    },
    "jpeg": {
        "name": "JPEG",
        "extensions": [".jpg", ".jpeg"],
        "dtypes": [],
        "write_dtypes": ["uint8"],
        "axes": "from shape",
        "keeps": [],
        "other_keys": "none",
        "lazy": "loads then wraps",
        "stacks": True,
    },
    "fits": {
        "name": "FITS",
        "extensions": [".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz"],
        "dtypes": [*_INTS, "float32", "float64"],
        "write_dtypes": [*_INTS, "float32", "float64"],
        "axes": "recorded",
        "keeps": ["pixel_size", "unit", "exposure_time", "classes"],
        "other_keys": "scalars",
        "lazy": "loads then wraps",
        "stacks": True,
    },
    "npy": {
        "name": "NPY",
        "extensions": [".npy"],
        "dtypes": list(_ALL_NUMERIC),
        "write_dtypes": list(_ALL_NUMERIC),
        "axes": "from shape",
        "keeps": [],
        "other_keys": "none",
        "lazy": "chunked",
        "stacks": True,
    },
    "hdf5": {
        "name": "HDF5 / NeXus",
        "extensions": [".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".nx5"],
        "dtypes": list(_ALL_NUMERIC),
        "write_dtypes": list(_ALL_NUMERIC),
        "axes": "recorded",
        "keeps": ["pixel_size", "unit", "exposure_time", "classes"],
        "other_keys": "all",
        "lazy": "chunked",
        "stacks": False,
    },
    "zarr": {
        "name": "Zarr v3",
        "extensions": [".zarr"],
        "dtypes": list(_ALL_NUMERIC),
        "write_dtypes": list(_ALL_NUMERIC),
        "axes": "recorded",
        "keeps": ["pixel_size", "unit", "exposure_time", "classes"],
        "other_keys": "all",
        "lazy": "chunked",
        "stacks": False,
    },
}

# Keys that describe where data was read from; they are neither stored nor warned about.
PROVENANCE_KEYS = frozenset({"source", "dataset", "axes_guessed", "header"})


def supported_formats() -> dict[str, dict]:
    """Describe every format niseg reads and writes.

    Returns
    -------
    dict of str to dict
        One entry per format name (``"tiff"``, ``"png"``, ``"jpeg"``, ``"fits"``, ``"npy"``,
        ``"hdf5"``, ``"zarr"``) with keys:

        - ``name``: a display name;
        - ``extensions``: lower-case file extensions, with the dot;
        - ``dtypes``: dtype names the format stores exactly (bool is written as uint8 0/1);
        - ``write_dtypes``: dtype names ``write_image`` accepts (JPEG takes uint8 but is lossy);
        - ``axes``: ``"recorded"`` if the file keeps the axes letters, ``"from shape"`` if
          they are inferred again on reading;
        - ``keeps``: standard metadata keys the format keeps (``pixel_size``, ``unit``,
          ``exposure_time``, ``classes``);
        - ``other_keys``: which other metadata keys are kept: ``"all"`` (any JSON-able value),
          ``"scalars"`` (numbers, strings, booleans) or ``"none"``;
        - ``lazy``: how ``read_image(..., lazy=True)`` works: ``"chunked"`` (reads nothing
          until computed) or ``"loads then wraps"`` (reads the file, then wraps it in Dask);
        - ``stacks``: whether a folder or glob of such files is read as a stack.

        The result is a copy; changing it changes nothing in niseg.

    Examples
    --------
    >>> formats = supported_formats()
    >>> formats["png"]["dtypes"]
    ['uint8', 'uint16']
    >>> formats["tiff"]["extensions"]
    ['.tif', '.tiff']
    """
    return copy.deepcopy(_FORMATS)


def split_selector(path: str | os.PathLike) -> tuple[Path, str | None]:
    """Split ``'file.h5::/entry/data'`` into the file path and the selector inside it.

    Examples
    --------
    >>> split_selector("scan.h5::/entry/data/data")
    (PosixPath('scan.h5'), '/entry/data/data')
    >>> split_selector("image.tif")
    (PosixPath('image.tif'), None)
    """
    text = os.fspath(path)
    if "::" in text:
        file_part, selector = text.split("::", 1)
        return Path(file_part), (selector or None)
    return Path(text), None


def _extension_table() -> list[tuple[str, str]]:
    pairs = [(ext, fmt) for fmt, rec in _FORMATS.items() for ext in rec["extensions"]]
    # Longest first so ".fits.gz" wins over a plain ".gz" match.
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def _known_extensions() -> str:
    return ", ".join(ext for rec in _FORMATS.values() for ext in rec["extensions"])


def format_for_path(path: str | os.PathLike) -> str:
    """Name the image format of ``path`` from its extension.

    Parameters
    ----------
    path : str or PathLike
        A file name; an HDF5 or Zarr selector after ``::`` is ignored.

    Returns
    -------
    str
        One of ``"tiff"``, ``"png"``, ``"jpeg"``, ``"fits"``, ``"npy"``, ``"hdf5"``,
        ``"zarr"``.

    Raises
    ------
    ValueError
        If the extension is not one niseg knows.

    Examples
    --------
    >>> format_for_path("scan_0001.TIF")
    'tiff'
    >>> format_for_path("run.nxs::/entry/data/data")
    'hdf5'
    >>> format_for_path("sky.fits.gz")
    'fits'
    """
    file_part, _ = split_selector(path)
    name = file_part.name.lower()
    for ext, fmt in _extension_table():
        if name.endswith(ext) and len(name) > len(ext):
            return fmt
    suffix = file_part.suffix or "(none)"
    raise ValueError(
        f"'{file_part}' has an unknown image format extension {suffix} "
        f"(known: {_known_extensions()})"
    )


def check_format_name(fmt: str) -> str:
    """Return ``fmt`` in lower case, or raise ValueError if it is not a known format."""
    if not isinstance(fmt, str) or fmt.lower() not in _FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(_FORMATS)}, not {fmt!r}")
    return fmt.lower()


def lossless_dtype_for(fmt: str, dtype: DTypeLike) -> bool:
    """Tell whether format ``fmt`` stores images of ``dtype`` with their exact values.

    ``bool`` counts as exact where the format stores uint8, because booleans are written as
    uint8 0/1. JPEG never stores exact values.

    Parameters
    ----------
    fmt : str
        A format name from :func:`supported_formats`.
    dtype : dtype-like
        The image dtype.

    Returns
    -------
    bool

    Examples
    --------
    >>> lossless_dtype_for("png", "uint16")
    True
    >>> lossless_dtype_for("png", "float32")
    False
    >>> lossless_dtype_for("jpeg", "uint8")
    False
    """
    fmt = check_format_name(fmt)
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a NumPy dtype, not {dtype!r}") from exc
    stored = _FORMATS[fmt]["dtypes"]
    if dt == np.bool_:
        return "uint8" in stored
    return dt.name in stored


def formats_markdown_table() -> str:
    """Render the metadata table of docs/io.md from the format records."""

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    header = (
        "| Format | Extensions | Axes | Pixel size / unit | Exposure time | Classes "
        "| Other keys | Dtypes stored exactly | Lazy reading |"
    )
    rule = "|" + "---|" * 9
    rows = [header, rule]
    for rec in _FORMATS.values():
        other = {"all": "any JSON-able", "scalars": "scalars only", "none": "no"}
        rows.append(
            "| "
            + " | ".join(
                [
                    rec["name"],
                    " ".join(f"`{ext}`" for ext in rec["extensions"]),
                    rec["axes"],
                    yes("pixel_size" in rec["keeps"] and "unit" in rec["keeps"]),
                    yes("exposure_time" in rec["keeps"]),
                    yes("classes" in rec["keeps"]),
                    other[rec["other_keys"]],
                    ", ".join(rec["dtypes"]) if rec["dtypes"] else "none (lossy)",
                    rec["lazy"],
                ]
            )
            + " |"
        )
    return "\n".join(rows)
