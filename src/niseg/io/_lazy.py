"""Array-likes that open their file on first use, for Dask arrays that read nothing up front.

Each object holds only a path and what is needed to find the data, so it pickles cheaply to
Dask workers; the open file handle is created per process and dropped when pickled.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np


class LazyFileArray:
    """Base class: subclasses implement :meth:`_open` and :meth:`_read`."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._handle: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        raise NotImplementedError

    def _read(self, handle: Any, key: tuple) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        # Library handles (tifffile, h5py) are not safe to share between threads.
        with self._lock:
            if self._handle is None:
                self._handle = self._open()
            out = self._read(self._handle, key)
        return np.asarray(out)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        close = getattr(handle, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # closing at interpreter shutdown may fail; nothing to save
                pass


def file_token(path: Path, *extra: Any) -> str:
    """A name for a Dask array that changes when the file changes, without hashing data."""
    try:
        st = os.stat(path)
        stamp = f"{st.st_mtime_ns}-{st.st_size}"
    except OSError:
        stamp = "missing"
    import dask.base

    return dask.base.tokenize(os.path.abspath(path), stamp, *extra)


def to_dask(source: LazyFileArray, chunks: Any, *, name_parts: tuple = ()) -> Any:
    """Wrap a lazy array-like in a Dask array without touching the data."""
    import dask.array as da

    name = "niseg-read-" + file_token(source.path, source.shape, str(source.dtype), *name_parts)
    return da.from_array(
        source,
        chunks=chunks,
        name=name,
        meta=np.empty((0,) * source.ndim, dtype=source.dtype),
        fancy=False,
    )


def page_chunks(shape: tuple[int, ...], n_leading: int) -> tuple:
    """One chunk per page/slice: 1 along the leading axes, whole along the others."""
    return tuple(1 if i < n_leading else n for i, n in enumerate(shape))


def wrap_loaded(array: np.ndarray) -> Any:
    """Wrap an array already in memory (formats without chunked access)."""
    import dask.array as da

    return da.from_array(array, chunks="auto")
