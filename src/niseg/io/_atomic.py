"""Atomic outputs: write to a temporary name next to the target, rename when complete."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def check_output_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check that ``path`` may be written and return it as a :class:`~pathlib.Path`.

    Parameters
    ----------
    path : str or PathLike
        The output file or folder.
    overwrite : bool
        Allow replacing an existing output.

    Returns
    -------
    Path
        ``path`` as a Path.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the folder that should hold ``path`` does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_output_path(d / "out.tif")
    PosixPath('...out.tif')
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"output '{path}' already exists; pass overwrite=True (--overwrite) to replace it"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"cannot write '{path}': folder '{parent}' does not exist")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write to; rename it to ``path`` only when the block succeeds.

    Readers never see a half-written output: the temporary file (or folder, for Zarr) lives in
    the same folder under a hidden name and is removed if the block raises. An existing
    ``path`` is refused unless ``overwrite`` is True.

    Parameters
    ----------
    path : str or PathLike
        Final output path (a file, or a folder such as a Zarr store).
    overwrite : bool
        Replace an existing output.

    Yields
    ------
    Path
        The temporary path to write. It keeps ``path``'s suffix so libraries that look at the
        extension behave the same.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "result.txt"
    >>> with atomic_output(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    path = check_output_path(path, overwrite=overwrite)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to the temporary output for '{path}'")
        if path.exists() and path.is_dir() and not tmp.is_dir():
            raise ValueError(f"cannot replace folder '{path}' with a file")
        if tmp.is_dir():
            replace_folder(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            _remove(tmp)


def replace_folder(source: Path, target: Path) -> None:
    """Rename the finished folder ``source`` to ``target``, replacing an existing one.

    Folders cannot be replaced atomically: an old ``target`` is moved aside under a hidden
    name first and removed after the swap, so ``target`` is never half-written.
    """
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(target, old)
    os.replace(source, target)
    if old is not None:
        _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_json(path: str | os.PathLike, data: Any, *, overwrite: bool = False) -> Path:
    """Write JSON-able data (statistics, measurements) atomically.

    NumPy scalars and arrays become plain numbers and lists; NaN and infinities become
    ``null``, so the file is strict JSON that any tool reads.

    Parameters
    ----------
    path : str or PathLike
        Output file, conventionally ``.json``.
    data : object
        Dicts, lists, strings, numbers, NumPy scalars or arrays.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "stats.json"
    >>> import json
    >>> json.loads(write_json(out, {"level": np.float32(0.5), "bad": float("nan")}).read_text())
    {'level': 0.5, 'bad': None}
    """
    text = json.dumps(to_jsonable(data), indent=2, allow_nan=False)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def to_jsonable(value: Any) -> Any:
    """Convert NumPy values, tuples and paths to plain JSON types; NaN/inf become None.

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"a": np.arange(3), "b": (np.float64(1.5), float("inf"))})
    {'a': [0, 1, 2], 'b': [1.5, None]}
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
