"""TIFF reading and writing (tifffile), in ImageJ form where Fiji can use it."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ._lazy import LazyFileArray, to_dask
from ._metadata import collapse_equal_channels, normalise_unit, restore_stored_metadata

_FROM_TIFFFILE = {"Y": "y", "X": "x", "Z": "z", "T": "t", "C": "c", "S": "c", "E": "l", "A": "t"}
_TO_TIFFFILE = {"y": "Y", "x": "X", "z": "Z", "t": "T", "c": "C", "l": "E"}
_IMAGEJ_DTYPES = ("uint8", "uint16", "float32")
_IMAGEJ_ORDER = "tzcyx"
_TO_CM = {"um": 1e-4, "nm": 1e-7, "mm": 0.1, "cm": 1.0, "m": 100.0}
_OME_UNITS = {"µm": "um", "nm": "nm", "mm": "mm", "cm": "cm", "m": "m"}


def _invalid(path: Path) -> ValueError:
    return ValueError(f"cannot read '{path}': the file is truncated or not a valid TIFF")


class _Quiet:
    """Silence tifffile's logger: damaged files are reported by our own ValueError."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("tifffile")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)


def _open(path: Path) -> tifffile.TiffFile:
    try:
        with _Quiet():
            tif = tifffile.TiffFile(path)
            series = tif.series
    except Exception as exc:  # tifffile's own errors subclass ValueError; reword them all
        raise _invalid(path) from exc
    if not series:
        tif.close()
        raise _invalid(path)
    return tif


def _our_metadata(tif: tifffile.TiffFile) -> dict | None:
    try:
        if tif.is_shaped and tif.shaped_metadata:
            stored = tif.shaped_metadata[0].get("niseg")
            if isinstance(stored, dict):
                return stored
        if tif.is_imagej and tif.imagej_metadata:
            stored = tif.imagej_metadata.get("niseg")
            if isinstance(stored, str):
                value = json.loads(stored)
                return value if isinstance(value, dict) else None
    except (ValueError, TypeError):
        return None
    return None


def _mapped_axes(tf_axes: str) -> str | None:
    letters = [_FROM_TIFFFILE.get(a) for a in tf_axes]
    if None in letters or len(set(letters)) != len(letters):
        return None
    return "".join(letters)  # type: ignore[arg-type]


def _resolution(page: Any) -> tuple[float | None, float | None]:
    def one(tag: str) -> float | None:
        item = page.tags.get(tag)
        if item is None:
            return None
        num, den = item.value if isinstance(item.value, tuple) else (item.value, 1)
        return den / num if num else None

    return one("YResolution"), one("XResolution")


def _foreign_pixel_sizes(tif: tifffile.TiffFile, tf_axes: str) -> tuple[dict[int, float], Any]:
    """Pixel sizes of files niseg did not write: OME, ImageJ, then TIFF resolution tags."""
    at: dict[int, float] = {}
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ET.fromstring(tif.ome_metadata)
            pixels = next(el for el in root.iter() if el.tag.endswith("Pixels"))
        except (ET.ParseError, StopIteration):
            pixels = None
        if pixels is not None:
            unit = None
            for letter in "ZYX":
                size = pixels.get(f"PhysicalSize{letter}")
                if size is not None and letter in tf_axes:
                    at[tf_axes.index(letter)] = float(size)
                    raw_unit = pixels.get(f"PhysicalSize{letter}Unit", "µm")
                    unit = _OME_UNITS.get(raw_unit, normalise_unit(raw_unit))
            if at:
                return at, unit
    page = tif.pages.first
    size_y, size_x = _resolution(page)
    unit = None
    if tif.is_imagej and tif.imagej_metadata:
        ij = tif.imagej_metadata
        unit = normalise_unit(ij.get("unit"))
        if unit is not None and "Z" in tf_axes and ij.get("spacing"):
            at[tf_axes.index("Z")] = float(ij["spacing"])
    else:
        resunit = page.tags.get("ResolutionUnit")
        # Inch resolutions are nearly always a 72/96 dpi default of non-scientific software.
        if resunit is not None and int(resunit.value) == 3:
            unit = "cm"
    if unit is None:
        return {}, None
    if size_y and "Y" in tf_axes:
        at[tf_axes.index("Y")] = size_y
    if size_x and "X" in tf_axes:
        at[tf_axes.index("X")] = size_x
    return at, unit


class _TiffHandle:
    def __init__(self, path: Path) -> None:
        import zarr

        self.tif = _open(path)
        self.array = zarr.open(self.tif.aszarr(series=0, level=0), mode="r")

    def close(self) -> None:
        self.tif.close()


class _LazyTiff(LazyFileArray):
    def _open(self) -> _TiffHandle:
        return _TiffHandle(self.path)

    def _read(self, handle: _TiffHandle, key: tuple) -> np.ndarray:
        try:
            return handle.array[key]
        except Exception as exc:
            raise _invalid(self.path) from exc


def read_tiff(path: Path, *, lazy: bool, user_axes: str | None) -> tuple[Any, dict]:
    """Read the first series of a TIFF file with its metadata."""
    tif = _open(path)
    with tif:
        series = tif.series[0]
        shape, dtype, tf_axes = tuple(series.shape), series.dtype, series.axes
        stored = _our_metadata(tif)
        if stored is not None:
            raw = restore_stored_metadata(stored)
            collapse = False
        else:
            raw = {}
            mapped = _mapped_axes(tf_axes)
            if mapped is not None:
                raw["axes"] = mapped
            at, unit = _foreign_pixel_sizes(tif, tf_axes)
            if at:
                raw["_pixel_size_at"] = at
                raw["unit"] = unit
            collapse = tf_axes == "YXS" and (user_axes is None or len(user_axes) == 2)
        if lazy and not collapse:
            n_leading = len(shape) - (3 if tf_axes.endswith("S") else 2)
            chunks = tuple(1 if i < n_leading else "auto" for i in range(len(shape)))
            return to_dask(_LazyTiff(path, shape, dtype), chunks), raw
        try:
            with _Quiet():
                data = series.asarray()
        except Exception as exc:
            raise _invalid(path) from exc
    if collapse:
        data = collapse_equal_channels(data)
        if data.ndim == 2:
            raw.pop("axes", None)
            raw["_pixel_size_at"] = {
                pos: size for pos, size in raw.get("_pixel_size_at", {}).items() if pos < 2
            }
    if lazy:
        from ._lazy import wrap_loaded

        return wrap_loaded(data), raw
    return data, raw


def probe_tiff(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a TIFF's first series, without reading pixels."""
    tif = _open(path)
    with tif:
        return tuple(tif.series[0].shape), np.dtype(tif.series[0].dtype)


def _imagej_axes(axes: str, shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    if dtype.name not in _IMAGEJ_DTYPES:
        return None
    rgb = axes.endswith("c") and shape[-1] == 3 and dtype == np.uint8
    core = axes[:-1] if rgb else axes
    if not core.endswith("yx") or set(core) - set(_IMAGEJ_ORDER):
        return None
    if rgb and "c" in core:
        return None
    order = [_IMAGEJ_ORDER.index(letter) for letter in core]
    if order != sorted(order):
        return None
    return core.upper() + ("S" if rgb else "")


def _is_rgb(axes: str, shape: tuple[int, ...], dtype: np.dtype) -> bool:
    return axes.endswith("c") and shape[-1] in (3, 4) and dtype.name in ("uint8", "uint16")


def _pages(array: Any, page_ndim: int):
    """Yield pages of a (possibly Dask) array, computing one block of pages at a time."""
    lead = array.shape[: array.ndim - page_ndim]
    flat = array.reshape((-1, *array.shape[array.ndim - page_ndim :])) if lead else array[None]
    step = flat.chunks[0][0] if hasattr(flat, "chunks") and flat.chunks[0] else 1
    for start in range(0, flat.shape[0], max(step, 1)):
        block = np.asarray(flat[start : start + step])
        yield from block


def write_tiff(tmp: Path, array: Any, meta: dict, stored: dict) -> None:
    """Write ``array`` to ``tmp`` as ImageJ TIFF if Fiji can read it, else shaped TIFF."""
    axes = meta["axes"]
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    sizes = dict(zip([i for i, a in enumerate(axes) if a in "zyx"], meta.get("pixel_size", ())))
    size_of = {axes[pos]: size for pos, size in sizes.items()}
    if "slice_pixel_size" in meta and not size_of:
        size_of = dict(zip("yx", meta["slice_pixel_size"]))
    unit = meta.get("unit")
    ij_axes = _imagej_axes(axes, shape, dtype)
    rgb = ij_axes.endswith("S") if ij_axes else _is_rgb(axes, shape, dtype)
    kwargs: dict[str, Any] = {"photometric": "rgb" if rgb else "minisblack"}
    if ij_axes is not None:
        ij_meta: dict[str, Any] = {"axes": ij_axes}
        if unit is not None and unit.isascii() and "y" in size_of and "x" in size_of:
            kwargs["resolution"] = (1.0 / size_of["x"], 1.0 / size_of["y"])
            ij_meta["unit"] = "micron" if unit == "um" else unit
            if "z" in size_of:
                ij_meta["spacing"] = size_of["z"]
        ij_meta["niseg"] = json.dumps(stored, ensure_ascii=True)
        kwargs.update(imagej=True, metadata=ij_meta)
    else:
        tf_axes = "".join(_TO_TIFFFILE[a] for a in axes)
        if rgb:
            tf_axes = tf_axes[:-1] + "S"
        kwargs["metadata"] = {"axes": tf_axes, "niseg": stored}
        if unit in _TO_CM and "y" in size_of and "x" in size_of:
            to_cm = _TO_CM[unit]
            kwargs["resolution"] = (1.0 / (size_of["x"] * to_cm), 1.0 / (size_of["y"] * to_cm))
            kwargs["resolutionunit"] = "CENTIMETER"
        kwargs["bigtiff"] = int(np.prod(shape)) * dtype.itemsize > 2**32 - 2**25
    page_ndim = min(len(shape), 3 if rgb else 2)
    if hasattr(array, "dask") and len(shape) > page_ndim:
        data: Any = _pages(array, page_ndim)
        kwargs.update(shape=shape, dtype=dtype)
    else:
        data = np.asarray(array)
    tifffile.imwrite(tmp, data, **kwargs)
