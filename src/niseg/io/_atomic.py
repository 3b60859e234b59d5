"""Atomic outputs: write to a temporary name next to the target, rename when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


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
            # Folders cannot be replaced atomically: move the old one aside, then swap.
            old = None
            if path.exists():
                old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                _remove(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
