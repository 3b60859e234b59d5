"""HDF5 / NeXus reading and writing (h5py), with the NXtomo projection / flat / dark split.

Metadata written by niseg lives in the dataset's attributes, one attribute per key
(non-scalars JSON-encoded) plus ``niseg_keys``, a JSON object naming niseg's keys and how
each is encoded. Other attributes are reported under ``metadata["header"]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._lazy import LazyFileArray, to_dask
from ._metadata import default_chunks, header_value, normalise_unit, restore_stored_metadata

_KEYS_ATTR = "niseg_keys"
_IMAGE_KEY_NAMES = ("PROJECTION", "FLAT", "DARK")


def _invalid(path: Path) -> ValueError:
    return ValueError(f"cannot read '{path}': the file is truncated or not a valid HDF5 file")


def open_h5(path: Path) -> Any:
    """Open an HDF5 file for reading, turning library errors into one ValueError."""
    import h5py

    try:
        return h5py.File(path, "r")
    except Exception as exc:
        raise _invalid(path) from exc


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.item())
    return value if isinstance(value, str) else None


def _image_datasets(f: Any) -> list[Any]:
    import h5py

    found: list[Any] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 and obj.dtype.kind in "biufc":
            found.append(obj)

    f.visititems(visit)
    return found


def _signal_of(group: Any) -> Any:
    import h5py

    signal = _text(group.attrs.get("signal"))
    if signal and isinstance(group.get(signal), h5py.Dataset):
        return group[signal]
    return None


def _nexus_default(f: Any) -> Any:
    import h5py

    entry_name = _text(f.attrs.get("default"))
    entry = f.get(entry_name) if entry_name else None
    if isinstance(entry, h5py.Group):
        data_name = _text(entry.attrs.get("default"))
        group = entry.get(data_name) if data_name else None
        if isinstance(group, h5py.Group) and _signal_of(group) is not None:
            return _signal_of(group)
    for name in f:
        entry = f.get(name)
        if not isinstance(entry, h5py.Group):
            continue
        for sub in entry.values():
            is_nxdata = isinstance(sub, h5py.Group) and _text(sub.attrs.get("NX_class")) == "NXdata"
            if is_nxdata and _signal_of(sub) is not None:
                return _signal_of(sub)
    return None


def _candidates(f: Any) -> str:
    names = [ds.name for ds in _image_datasets(f)]
    if not names:
        return "the file holds no image datasets"
    more = ", ..." if len(names) > 5 else ""
    return "image datasets: " + ", ".join(names[:5]) + more


def resolve_dataset(f: Any, selector: str | None, path: Path) -> Any:
    """Find the dataset to read: the selector, the only image, or the NeXus default."""
    import h5py

    if selector:
        obj = f.get(selector)
        if isinstance(obj, h5py.Group) and _signal_of(obj) is not None:
            return _signal_of(obj)
        if not isinstance(obj, h5py.Dataset):
            what = "a group" if isinstance(obj, h5py.Group) else "not in the file"
            raise ValueError(
                f"cannot read '{path}::{selector}': '{selector}' is {what} ({_candidates(f)})"
            )
        return obj
    images = _image_datasets(f)
    if len(images) == 1:
        return images[0]
    default = _nexus_default(f)
    if default is not None:
        return default
    if isinstance(f.get("/entry/data/data"), h5py.Dataset):
        return f["/entry/data/data"]
    if not images:
        raise ValueError(f"cannot read '{path}': the file holds no image dataset (2D or more)")
    raise ValueError(
        f"cannot read '{path}': it holds several image datasets; pick one as "
        f"'{path}::/path/to/data' ({_candidates(f)})"
    )


def _entry_paths(ds: Any, *tails: str) -> list[str]:
    parent = ds.parent.name.rstrip("/")
    entry = "/" + ds.name.strip("/").split("/")[0]
    paths = [f"{parent}/{tails[0].split('/')[-1]}"]
    paths += [f"{entry}/{tail}" for tail in tails]
    return paths


def _find_1d(f: Any, ds: Any, *tails: str) -> tuple[np.ndarray | None, Any]:
    import h5py

    for candidate in _entry_paths(ds, *tails):
        try:
            obj = f.get(candidate)
        except (KeyError, TypeError, ValueError):  # a path through a dataset
            obj = None
        if isinstance(obj, h5py.Dataset) and obj.ndim == 1 and obj.shape[0] == ds.shape[0]:
            return obj[()], obj
    return None, None


def image_key_of(f: Any, ds: Any) -> np.ndarray | None:
    """The NXtomo image_key (0 projection, 1 flat, 2 dark) for a 3D frame stack, if any."""
    if ds.ndim != 3:
        return None
    key, _ = _find_1d(f, ds, "instrument/detector/image_key", "data/image_key")
    return None if key is None else np.asarray(key).astype(np.int64)


def _rotation_angle(f: Any, ds: Any) -> tuple[np.ndarray | None, str | None]:
    angles, obj = _find_1d(f, ds, "sample/rotation_angle", "data/rotation_angle")
    if angles is None:
        return None, None
    unit = _text(obj.attrs.get("units")) or _text(obj.attrs.get("unit"))
    return np.asarray(angles, dtype=np.float64), unit


def _detector_metadata(f: Any, ds: Any) -> dict:
    """Pixel size and count time recorded by an NXdetector next to the frames."""
    import h5py

    entry = "/" + ds.name.strip("/").split("/")[0]
    try:
        detector = f.get(f"{entry}/instrument/detector")
    except (KeyError, TypeError, ValueError):
        detector = None
    raw: dict[str, Any] = {}
    if not isinstance(detector, h5py.Group):
        return raw
    sizes, units = [], set()
    for name in ("y_pixel_size", "x_pixel_size"):
        obj = detector.get(name)
        if isinstance(obj, h5py.Dataset) and obj.size == 1:
            sizes.append(float(np.asarray(obj[()]).ravel()[0]))
            units.add(normalise_unit(_text(obj.attrs.get("units"))))
    if len(sizes) == 2 and len(units) == 1 and None not in units and min(sizes) > 0:
        raw["_pixel_size_at"] = {ds.ndim - 2: sizes[0], ds.ndim - 1: sizes[1]}
        raw["unit"] = units.pop()
    count = detector.get("count_time")
    if isinstance(count, h5py.Dataset) and count.size >= 1:
        values = np.unique(np.asarray(count[()], dtype=np.float64))
        if values.size == 1:
            raw["exposure_time"] = float(values[0])
    return raw


def _attrs_metadata(ds: Any) -> dict:
    attrs = ds.attrs
    kinds: dict[str, str] = {}
    if _KEYS_ATTR in attrs:
        try:
            kinds = json.loads(_text(attrs[_KEYS_ATTR]) or "{}")
        except ValueError:
            kinds = {}
    stored: dict[str, Any] = {}
    header: dict[str, Any] = {}
    for key in attrs:
        if key == _KEYS_ATTR:
            continue
        try:
            value = attrs[key]
        except Exception:  # unreadable attribute types (references, odd strings)
            continue
        if key in kinds:
            if kinds[key] == "json":
                stored[key] = json.loads(_text(value) or "null")
            else:
                stored[key] = header_value(value)
        else:
            plain = header_value(value)
            if plain is not NotImplemented:
                header[key] = plain
    raw = restore_stored_metadata(stored) if stored else {}
    if header:
        raw["header"] = header
    return raw


class _LazyH5(LazyFileArray):
    def __init__(self, path: Path, name: str, shape: tuple, dtype: Any, chunks: Any) -> None:
        super().__init__(path, shape, dtype)
        self.name = name
        if chunks is not None:
            self.chunks = chunks

    def _open(self) -> Any:
        return open_h5(self.path)

    def _read(self, handle: Any, key: tuple) -> np.ndarray:
        return handle[self.name][key]


def _take(ds: Any, index: np.ndarray) -> np.ndarray:
    """Read frames ``index`` (sorted) of a dataset in contiguous runs."""
    out = np.empty((index.size, *ds.shape[1:]), dtype=ds.dtype)
    if index.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    start = 0
    for run in np.split(index, breaks):
        out[start : start + run.size] = ds[int(run[0]) : int(run[-1]) + 1]
        start += run.size
    return out


def _lazy_dataset(path: Path, ds: Any) -> Any:
    if ds.chunks is not None:
        chunks: Any = "auto"
    else:
        chunks = tuple(1 if i < ds.ndim - 2 else "auto" for i in range(ds.ndim))
    return to_dask(
        _LazyH5(path, ds.name, ds.shape, ds.dtype, ds.chunks), chunks, name_parts=(ds.name,)
    )


def read_hdf5(path: Path, selector: str | None, *, lazy: bool) -> tuple[Any, dict]:
    """Read one dataset; for NXtomo frame stacks, only the projections."""
    f = open_h5(path)
    with f:
        ds = resolve_dataset(f, selector, path)
        raw = _detector_metadata(f, ds)
        raw.update(_attrs_metadata(ds))
        raw["dataset"] = ds.name
        key = image_key_of(f, ds)
        index = None
        if key is not None:
            index = np.flatnonzero(key == 0)
            raw["nxtomo"] = {
                "n_projections": int(index.size),
                "n_flats": int(np.sum(key == 1)),
                "n_darks": int(np.sum(key == 2)),
            }
            raw.setdefault("axes", "tyx")
            angles, unit = _rotation_angle(f, ds)
            if angles is not None:
                raw["rotation_angle"] = angles[index].tolist()
                if unit:
                    raw["rotation_angle_unit"] = unit
        try:
            if lazy:
                data = _lazy_dataset(path, ds)
                if index is not None and index.size != ds.shape[0]:
                    contiguous = index.size and index[-1] - index[0] + 1 == index.size
                    data = data[int(index[0]) : int(index[-1]) + 1] if contiguous else data[index]
            else:
                data = ds[()] if index is None else _take(ds, index)
        except Exception as exc:
            raise _invalid(path) from exc
    return data, raw


def read_nxtomo_file(path: Path, selector: str | None) -> dict:
    """Split an NXtomo (or Data Exchange) file into projections, flats and darks."""
    import h5py

    f = open_h5(path)
    with f:
        exchange = f.get("/exchange/data")
        if selector is None and isinstance(exchange, h5py.Dataset) and exchange.ndim == 3:
            return _read_exchange(f)
        ds = resolve_dataset(f, selector, path)
        key = image_key_of(f, ds)
        if key is None:
            raise ValueError(
                f"cannot read '{path}' as NXtomo: no image_key with one entry per frame of "
                f"'{ds.name}' (looked beside it, in instrument/detector and in data)"
            )
        parts = {
            name: _take(ds, np.flatnonzero(key == value))
            for name, value in (("projections", 0), ("flats", 1), ("darks", 2))
        }
        angles, unit = _rotation_angle(f, ds)
        meta = _detector_metadata(f, ds)
        meta.update(_attrs_metadata(ds))
        meta["dataset"] = ds.name
        if unit:
            meta["rotation_angle_unit"] = unit
    parts["rotation_angle"] = None if angles is None else angles[key == 0]
    parts["metadata"] = meta
    return parts


def _read_exchange(f: Any) -> dict:
    import h5py

    data = f["/exchange/data"]
    parts: dict[str, Any] = {"projections": data[()]}
    for name, where in (("flats", "/exchange/data_white"), ("darks", "/exchange/data_dark")):
        obj = f.get(where)
        if isinstance(obj, h5py.Dataset) and obj.ndim == 3:
            parts[name] = obj[()]
        else:
            parts[name] = np.empty((0, *data.shape[1:]), dtype=data.dtype)
    theta = f.get("/exchange/theta")
    parts["rotation_angle"] = (
        np.asarray(theta[()], dtype=np.float64)
        if isinstance(theta, h5py.Dataset) and theta.shape == (data.shape[0],)
        else None
    )
    meta = _attrs_metadata(data)
    meta["dataset"] = data.name
    parts["metadata"] = meta
    return parts


def _attribute(value: Any) -> tuple[Any, str]:
    if isinstance(value, (bool, int, float, str)):
        return value, "plain"
    return json.dumps(value), "json"


def write_hdf5(tmp: Path, array: Any, meta: dict, stored: dict, dataset: str | None) -> None:
    """Write ``array`` as a new HDF5 file holding one dataset (default ``/data``)."""
    import h5py

    name = dataset or "/data"
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    chunks = default_chunks(shape, meta["axes"], dtype.itemsize) if 0 not in shape else None
    with h5py.File(tmp, "w") as f:
        ds = f.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks)
        if hasattr(array, "dask"):
            import dask.array as da

            # h5py is not safe for concurrent writes: let Dask serialise the stores.
            da.store(array, ds, lock=True)
        else:
            ds[...] = np.asarray(array)
        kinds: dict[str, str] = {}
        for key, value in stored.items():
            ds.attrs[key], kinds[key] = _attribute(value)
        for key, value in (meta.get("header") or {}).items():
            if key in kinds or key == _KEYS_ATTR:
                continue
            ds.attrs[key] = _attribute(value)[0]
        ds.attrs[_KEYS_ATTR] = json.dumps(kinds)
