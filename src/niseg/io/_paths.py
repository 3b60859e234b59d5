"""Natural sort order and expansion of files, folders and globs into lists of image paths."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ._formats import format_for_path, split_selector

__all__ = ["expand_paths", "is_glob", "is_zarr_store", "natural_sort_key"]

_DIGITS = re.compile(r"(\d+)")
_GLOB_CHARS = re.compile(r"[*?\[]")


def natural_sort_key(text: str | os.PathLike) -> tuple:
    """Key that sorts text with embedded numbers by value: ``slice2`` before ``slice10``.

    Letters compare case-insensitively; ties (``a01`` and ``a1``) fall back to the plain text
    so the order is always the same.

    Parameters
    ----------
    text : str or PathLike
        The text (or path) to sort.

    Returns
    -------
    tuple
        A key for :func:`sorted`.

    Examples
    --------
    >>> sorted(["slice10.tif", "slice2.tif", "Slice1.tif"], key=natural_sort_key)
    ['Slice1.tif', 'slice2.tif', 'slice10.tif']
    """
    text = os.fspath(text)
    parts = _DIGITS.split(text)
    # Even positions are text, odd positions are numbers, so keys always compare.
    key = tuple(int(part) if i % 2 else part.casefold() for i, part in enumerate(parts))
    return (key, text)


def is_glob(text: str) -> bool:
    """Tell whether ``text`` holds glob wildcards (``*``, ``?`` or ``[``)."""
    return bool(_GLOB_CHARS.search(text))


def is_zarr_store(path: Path) -> bool:
    """Tell whether the folder ``path`` is a Zarr store rather than a folder of slices."""
    if not path.is_dir():
        return False
    if path.name.lower().endswith(".zarr"):
        return True
    return any((path / marker).exists() for marker in ("zarr.json", ".zarray", ".zgroup"))


def _is_image_entry(path: Path) -> bool:
    if path.name.startswith(".") or ".partial" in path.name:
        return False
    if path.is_dir():
        return is_zarr_store(path)
    try:
        format_for_path(path)
    except ValueError:
        return False
    return True


def _expand_one(spec: str | os.PathLike) -> list[Path]:
    text = os.fspath(spec)
    file_part, selector = split_selector(text)
    if selector is not None:
        if not file_part.exists():
            raise ValueError(f"cannot read '{text}': '{file_part}' does not exist")
        return [Path(text)]
    path = Path(text)
    if path.is_dir() and not is_zarr_store(path):
        found = sorted(
            (p for p in path.iterdir() if _is_image_entry(p)),
            key=natural_sort_key,
        )
        if not found:
            raise ValueError(f"folder '{path}' holds no image files niseg can read")
        return found
    if path.exists():
        return [path]
    if is_glob(text):
        found = sorted(
            (Path(p) for p in glob.glob(text) if _is_image_entry(Path(p))),
            key=natural_sort_key,
        )
        if not found:
            raise ValueError(f"pattern '{text}' matches no image files")
        return found
    raise ValueError(f"cannot read '{text}': the file does not exist")


def expand_paths(spec: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Turn a file, a folder, a glob pattern, or a list of them into a list of image paths.

    A folder gives the image files it holds (by extension, hidden files skipped; a ``.zarr``
    folder is one image, not a folder of slices); a glob gives the image files it matches.
    Both come in natural sort order (``slice2`` before ``slice10``). A list keeps its own
    order and expands each entry in turn.

    Parameters
    ----------
    spec : str, PathLike or sequence of them
        What to expand. ``file.h5::/path`` selectors are kept as given.

    Returns
    -------
    list of Path

    Raises
    ------
    ValueError
        If a file does not exist, or a folder or pattern matches no image files.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["slice10.tif", "slice2.tif", "notes.txt"]:
    ...     _ = (folder / name).write_bytes(b"")
    >>> [p.name for p in expand_paths(folder)]
    ['slice2.tif', 'slice10.tif']
    >>> [p.name for p in expand_paths(str(folder / "slice1*.tif"))]
    ['slice10.tif']
    """
    if isinstance(spec, (str, os.PathLike)):
        return _expand_one(spec)
    if not isinstance(spec, Sequence):
        raise TypeError(
            f"spec must be a path, a pattern or a list of them, not {type(spec).__name__}"
        )
    if len(spec) == 0:
        raise ValueError("spec is an empty list; give at least one image path")
    out: list[Path] = []
    for item in spec:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"spec entries must be paths, not {type(item).__name__}")
        out.extend(_expand_one(item))
    return out
