"""Zarr v3 reading and writing; niseg metadata lives in the array attribute ``"niseg"``.

A store may hold a single array or a group; ``store.zarr::path/in/group`` picks an array.
OME-Zarr groups are read at their first (full-resolution) level, with axes and scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._metadata import default_chunks, header_value, normalise_unit, restore_stored_metadata

_OME_LETTERS = {"t": "t", "c": "c", "z": "z", "y": "y", "x": "x"}


def _invalid(path: Path) -> ValueError:
    return ValueError(f"cannot read '{path}': the folder is not a valid Zarr store")


def _arrays_in(group: Any) -> list[Any]:
    import zarr

    arrays = [node for _, node in group.members(max_depth=None) if isinstance(node, zarr.Array)]
    return sorted(arrays, key=lambda node: node.path)


def _ome_multiscales(group: Any) -> list | None:
    attrs = dict(group.attrs)
    multiscales = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    return multiscales if isinstance(multiscales, list) and multiscales else None


def _ome_metadata(multiscale: dict, ndim: int) -> dict:
    raw: dict[str, Any] = {}
    axes = multiscale.get("axes") or []
    names = [a.get("name") if isinstance(a, dict) else a for a in axes]
    letters = [_OME_LETTERS.get(str(n).lower()) for n in names]
    if len(letters) == ndim and None not in letters and len(set(letters)) == ndim:
        raw["axes"] = "".join(letters)  # type: ignore[arg-type]
    try:
        dataset = multiscale["datasets"][0]
        scale = next(
            t["scale"] for t in dataset.get("coordinateTransformations", []) if t["type"] == "scale"
        )
    except (KeyError, IndexError, StopIteration, TypeError):
        return raw
    units = {
        normalise_unit(a.get("unit"))
        for a, letter in zip(axes, letters)
        if isinstance(a, dict) and letter in ("z", "y", "x")
    }
    if "axes" in raw and len(scale) == ndim and len(units) == 1 and None not in units:
        raw["_pixel_size_at"] = {
            i: float(s) for i, (s, letter) in enumerate(zip(scale, raw["axes"])) if letter in "zyx"
        }
        raw["unit"] = units.pop()
    return raw


def _locate(root: Any, path: Path, selector: str | None) -> tuple[Any, dict]:
    import zarr

    node = root
    if selector:
        try:
            node = root[selector.strip("/")]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(
                f"cannot read '{path}::{selector}': the store holds no array '{selector}'"
            ) from exc
    if isinstance(node, zarr.Array):
        return node, {}
    multiscales = _ome_multiscales(node)
    if multiscales:
        try:
            array = node[multiscales[0]["datasets"][0]["path"]]
        except (KeyError, IndexError, TypeError) as exc:
            raise _invalid(path) from exc
        return array, _ome_metadata(multiscales[0], array.ndim)
    arrays = _arrays_in(node)
    if len(arrays) == 1:
        return arrays[0], {}
    where = f"{path}::{selector}" if selector else str(path)
    if not arrays:
        raise ValueError(f"cannot read '{where}': the Zarr group holds no arrays")
    names = ", ".join(a.path for a in arrays[:5]) + (", ..." if len(arrays) > 5 else "")
    raise ValueError(
        f"cannot read '{where}': the Zarr group holds several arrays; pick one as "
        f"'{path}::name' ({names})"
    )


def read_zarr(path: Path, selector: str | None, *, lazy: bool) -> tuple[Any, dict]:
    """Read an array from a Zarr store (lazily as Dask if asked)."""
    import zarr

    try:
        root = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise _invalid(path) from exc
    array, raw = _locate(root, path, selector)
    attrs = dict(array.attrs)
    stored = attrs.pop("niseg", None)
    if isinstance(stored, dict):
        raw.update(restore_stored_metadata(stored))
    header = {k: header_value(v) for k, v in attrs.items()}
    header = {k: v for k, v in header.items() if v is not NotImplemented}
    if header:
        raw["header"] = header
    if array.path:
        raw["dataset"] = array.path
    try:
        if lazy:
            import dask.array as da

            data = da.from_zarr(str(path), component=array.path or None)
        else:
            data = array[...]
    except Exception as exc:
        raise _invalid(path) from exc
    return data, raw


def write_zarr(tmp: Path, array: Any, meta: dict, stored: dict, selector: str | None) -> None:
    """Write ``array`` as a chunked Zarr v3 array (inside a group if a selector is given)."""
    import zarr

    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    chunks = default_chunks(shape, meta["axes"], dtype.itemsize)
    if selector and selector.strip("/"):
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        target = root.create_array(selector.strip("/"), shape=shape, dtype=dtype, chunks=chunks)
    else:
        target = zarr.create_array(
            store=str(tmp), shape=shape, dtype=dtype, chunks=chunks, zarr_format=3
        )
    if hasattr(array, "dask"):
        import dask.array as da

        # Chunk-aligned blocks never share a Zarr chunk, so no lock is needed.
        da.store(array.rechunk(chunks), target, lock=False)
    else:
        target[...] = np.asarray(array)
    attrs = {k: v for k, v in (meta.get("header") or {}).items() if k != "niseg"}
    attrs["niseg"] = stored
    target.attrs.update(attrs)
