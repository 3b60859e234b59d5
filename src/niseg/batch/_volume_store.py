"""Zarr outputs of a chunked run: chunk-aligned arrays, niseg metadata, OME-Zarr pyramids.

The outputs are built inside a hidden work folder of the run (``.<name>.work``) and renamed
into place only when complete. With ``multiscale`` an output is an OME-Zarr 0.5 group
(``ome`` attribute with ``multiscales``): level ``0`` at full resolution, each further level
taking every second pixel along each spatial axis (nearest neighbour, right for class and
object numbers), until the smallest spatial axis fits in one chunk.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["create_output", "write_pyramid"]

_OME_TYPES = {"z": "space", "y": "space", "x": "space", "t": "time", "c": "channel"}
_OME_UNITS = {"um": "micrometer", "nm": "nanometer", "mm": "millimeter", "cm": "centimeter",
              "m": "meter"}


def create_output(store: Path, shape: Sequence[int], chunks: Sequence[int], dtype: Any, *,
                  multiscale: bool, attrs: dict[str, Any] | None = None) -> str:
    """Create an empty chunked array (inside an OME group as level ``0`` with
    ``multiscale``); return the array's path relative to ``store``'s parent."""
    import zarr

    if store.exists():
        shutil.rmtree(store)
    if multiscale:
        group = zarr.open_group(str(store), mode="w", zarr_format=3)
        array = group.create_array("0", shape=tuple(shape), chunks=tuple(chunks),
                                   dtype=dtype, fill_value=0)
        rel = f"{store.name}/0"
    else:
        array = zarr.create_array(store=str(store), shape=tuple(shape), chunks=tuple(chunks),
                                  dtype=dtype, fill_value=0, zarr_format=3)
        rel = store.name
    if attrs:
        array.attrs.update(attrs)
    return rel


def niseg_attrs(metadata: dict[str, Any]) -> dict[str, Any]:
    """The ``niseg`` attribute :func:`niseg.io.write_image` stores with a Zarr array."""
    from niseg.io._metadata import prepare_write_metadata, stored_metadata

    meta = prepare_write_metadata(metadata, len(metadata["axes"]))
    return {"niseg": stored_metadata(meta)}


def write_pyramid(store: Path, chunks: Sequence[int], metadata: dict[str, Any]) -> int:
    """Add downsampled levels to the OME group ``store`` (level ``0`` written) and its
    ``multiscales`` metadata; return the number of levels."""
    import dask.array as da
    import zarr

    group = zarr.open_group(str(store), mode="r+")
    level0 = group["0"]
    attrs = dict(level0.attrs)
    axes = str(metadata["axes"])
    scale0 = list(metadata.get("pixel_size") or [1.0] * len(axes))
    shape = tuple(level0.shape)
    factors = [1] * len(axes)
    datasets = [_dataset("0", scale0, factors)]
    level = 0
    source = da.from_zarr(level0)
    while all(-(-n // f) > c for n, f, c in zip(shape, factors, chunks)):
        level += 1
        factors = [f * 2 for f in factors]
        view = source[tuple(slice(None, None, f) for f in factors)]
        target = group.create_array(str(level), shape=view.shape, dtype=level0.dtype,
                                    chunks=tuple(min(c, n) for c, n in zip(chunks, view.shape)),
                                    fill_value=0, overwrite=True)
        # One chunk of the full-resolution level at a time: memory stays at chunk size.
        da.store(view.rechunk(target.chunks), target, lock=False, scheduler="synchronous")
        target.attrs.update(attrs)
        datasets.append(_dataset(str(level), scale0, factors))
    unit = metadata.get("unit")
    ome_axes = []
    for letter in axes:
        entry: dict[str, Any] = {"name": letter, "type": _OME_TYPES.get(letter, "space")}
        if letter in "zyx" and unit and metadata.get("pixel_size"):
            entry["unit"] = _OME_UNITS.get(str(unit), str(unit))
        ome_axes.append(entry)
    group.attrs.update({"ome": {"version": "0.5", "multiscales": [{
        "name": metadata.get("name", store.stem), "axes": ome_axes, "datasets": datasets,
        "type": "nearest", "metadata": {"method": "numpy slicing [::2] per spatial axis"},
    }]}})
    return level + 1


def _dataset(path: str, scale0: list[float], factors: list[int]) -> dict[str, Any]:
    return {"path": path, "coordinateTransformations": [
        {"type": "scale", "scale": [float(s) * f for s, f in zip(scale0, factors)]}]}


def array_dtype(values: Sequence[int]) -> np.dtype:
    return np.dtype(np.uint8) if max(values, default=0) <= 255 else np.dtype(np.int32)
