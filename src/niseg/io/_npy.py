"""NPY reading (eager or memory-mapped) and writing; pickled object arrays are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._lazy import LazyFileArray, to_dask


def _load(path: Path, mmap: bool) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise ValueError(
                f"cannot read '{path}': it holds pickled Python objects, which niseg does not "
                "load for safety"
            ) from exc
        raise ValueError(
            f"cannot read '{path}': the file is truncated or not a valid NPY file"
        ) from exc
    except Exception as exc:
        raise ValueError(
            f"cannot read '{path}': the file is truncated or not a valid NPY file"
        ) from exc
    if not isinstance(array, np.ndarray):
        raise ValueError(f"cannot read '{path}': it is not a single NPY array")
    if array.dtype.kind not in "biufc" or array.dtype.fields is not None:
        raise ValueError(
            f"cannot read '{path}': it holds {array.dtype} values, not a numeric image"
        )
    return array


class _LazyNpy(LazyFileArray):
    def _open(self) -> np.ndarray:
        return _load(self.path, mmap=True)

    def _read(self, handle: np.ndarray, key: tuple) -> np.ndarray:
        return np.array(handle[key], dtype=self.dtype)


def read_npy(path: Path, *, lazy: bool, user_axes: str | None) -> tuple[Any, dict]:
    """Read an NPY array; ``lazy`` memory-maps it and wraps it in Dask."""
    if lazy:
        mapped = _load(path, mmap=True)
        shape, dtype = mapped.shape, mapped.dtype
        del mapped
        dtype = dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype
        return to_dask(_LazyNpy(path, shape, dtype), "auto"), {}
    array = _load(path, mmap=False)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    return array, {}


def probe_npy(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an NPY file, from its header."""
    mapped = _load(path, mmap=True)
    return tuple(mapped.shape), np.dtype(mapped.dtype)


def write_npy(tmp: Path, array: np.ndarray) -> None:
    """Write ``array`` as NPY."""
    with open(tmp, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
