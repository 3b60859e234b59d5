"""Route one file to its format's reader or prober."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._fits import probe_fits, read_fits
from ._hdf5 import read_hdf5
from ._npy import probe_npy, read_npy
from ._raster import probe_raster, read_raster
from ._tiff import probe_tiff, read_tiff
from ._zarr import read_zarr


def read_file(
    path: Path, fmt: str, selector: str | None, *, lazy: bool, user_axes: str | None
) -> tuple[Any, dict]:
    """Read one file of format ``fmt``; returns the array and the reader's raw metadata."""
    if fmt == "tiff":
        return read_tiff(path, lazy=lazy, user_axes=user_axes)
    if fmt in ("png", "jpeg"):
        return read_raster(path, fmt, lazy=lazy, user_axes=user_axes)
    if fmt == "fits":
        return read_fits(path, lazy=lazy, user_axes=user_axes)
    if fmt == "npy":
        return read_npy(path, lazy=lazy, user_axes=user_axes)
    if fmt == "hdf5":
        return read_hdf5(path, selector, lazy=lazy)
    if fmt == "zarr":
        return read_zarr(path, selector, lazy=lazy)
    raise ValueError(f"cannot read '{path}': unknown format {fmt!r}")


def probe_file(path: Path, fmt: str) -> tuple[tuple[int, ...], Any]:
    """Shape and storage type of one slice file, read from its header only."""
    if fmt == "tiff":
        return probe_tiff(path)
    if fmt in ("png", "jpeg"):
        return probe_raster(path, fmt)
    if fmt == "fits":
        return probe_fits(path)
    if fmt == "npy":
        return probe_npy(path)
    raise ValueError(f"cannot stack '{path}': {fmt} files are not read as slices")
