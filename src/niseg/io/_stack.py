"""Stacks of 2D (or nD) slice files — a folder, a glob, or a list — read as one array."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._dispatch import probe_file, read_file
from ._formats import format_for_path, supported_formats
from ._lazy import LazyFileArray, to_dask


def _describe(shape: tuple, dtype: Any) -> str:
    return f"shape {tuple(shape)} and dtype {dtype}"


def _mismatch(path: Path, got: tuple, first: Path, want: tuple) -> ValueError:
    return ValueError(
        f"cannot stack '{path}': it has {_describe(*got)} but the first slice '{first}' has "
        f"{_describe(*want)}"
    )


def _read_slice(path: Path, fmt: str, user_axes: str | None) -> np.ndarray:
    array, _ = read_file(path, fmt, None, lazy=False, user_axes=user_axes)
    return array


class _LazyStack(LazyFileArray):
    """Reads the slice files a chunk needs, checking each against the first slice."""

    def __init__(
        self, paths: list[Path], fmt: str, shape: tuple, dtype: Any, slice_axes: str | None
    ) -> None:
        super().__init__(paths[0], shape, dtype)
        self.paths = [Path(p) for p in paths]
        self.fmt = fmt
        self.slice_axes = slice_axes

    def _open(self) -> None:
        return None

    def _read(self, handle: None, key: tuple) -> np.ndarray:
        first, rest = key[0], key[1:]
        indices = range(len(self.paths))[first] if isinstance(first, slice) else [first]
        out = np.empty((len(indices), *self.shape[1:]), dtype=self.dtype)
        for j, i in enumerate(indices):
            array = _read_slice(self.paths[i], self.fmt, self.slice_axes)
            if array.shape != self.shape[1:] or array.dtype != self.dtype:
                raise _mismatch(
                    self.paths[i],
                    (array.shape, array.dtype),
                    self.paths[0],
                    (self.shape[1:], self.dtype),
                )
            out[j] = array
        out = out[(slice(None), *rest)]
        return out if isinstance(first, slice) else out[0]


def read_stack(paths: list[Path], *, lazy: bool, user_axes: str | None) -> tuple[Any, dict]:
    """Stack slice files along a new first axis (``z`` unless the slices already have one)."""
    formats = {format_for_path(p) for p in paths}
    if len(formats) > 1:
        raise ValueError(
            f"cannot stack '{paths[0].parent}': the files have several formats "
            f"({', '.join(sorted(formats))}); select one kind with a pattern such as '*.tif'"
        )
    fmt = formats.pop()
    if not supported_formats()[fmt]["stacks"]:
        raise ValueError(
            f"cannot stack '{paths[0]}': {fmt} files are read one at a time, not as slices"
        )
    slice_axes = user_axes[1:] if user_axes is not None and len(user_axes) > 1 else None
    first, raw = read_file(paths[0], fmt, None, lazy=lazy, user_axes=slice_axes)
    shape, dtype = tuple(first.shape), np.dtype(first.dtype)
    recorded = raw.pop("axes", None)
    inner = recorded if isinstance(recorded, str) and len(recorded) == len(shape) else None
    if inner is None:
        inner = {1: "x", 2: "yx", 3: "zyx"}.get(len(shape))
    raw.pop("axes_guessed", None)
    letter = next((a for a in "ztl" if a not in inner), None) if inner else None
    if letter is not None:
        raw["axes"] = letter + inner
        raw["axes_guessed"] = True
    raw["_pixel_size_at"] = {pos + 1: size for pos, size in raw.get("_pixel_size_at", {}).items()}
    if lazy:
        want = probe_file(paths[0], fmt)
        for path in paths[1:]:
            got = probe_file(path, fmt)
            if got != want:
                raise _mismatch(path, got, paths[0], want)
        source = _LazyStack(paths, fmt, (len(paths), *shape), dtype, slice_axes)
        chunks = (1, *shape)
        return to_dask(source, chunks, name_parts=tuple(str(p) for p in paths)), raw
    out = np.empty((len(paths), *shape), dtype=dtype)
    out[0] = first
    for i, path in enumerate(paths[1:], start=1):
        array = _read_slice(path, fmt, slice_axes)
        if array.shape != shape or array.dtype != dtype:
            raise _mismatch(path, (array.shape, array.dtype), paths[0], (shape, dtype))
        out[i] = array
    return out, raw
