"""read_labels: training labels drawn in other tools (napari, ilastik) as one integer image.

napari saves a Labels layer as an integer TIFF (0 = unlabeled); any format ``read_image``
reads works the same way. ilastik writes labels in two ways: "Export" of the labels source
gives an HDF5 file whose dataset (``exported_data``) carries its axis order in a vigra
``axistags`` JSON attribute, with a channel axis of length 1; a project file (``.ilp``) keeps
only the labelled blocks, each a dataset under ``PixelClassification/LabelSets/labelsNNN``
with a ``blockSlice`` attribute such as ``"[0:64,0:32,0:1]"`` giving where it lies, in the
axis order recorded for the lane in ``Input Data/infos/laneNNNN/Raw Data/axistags``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._formats import format_for_path, split_selector

_SPATIAL = "zyx"
_SLICE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
# Axis orders ilastik uses when a project records none (channel last, as in its label blocks).
_DEFAULT_ILP_AXES = {2: "yx", 3: "yxc", 4: "zyxc", 5: "tzyxc"}


def read_labels(
    path: str | os.PathLike, *, shape: Sequence[int] | None = None
) -> np.ndarray:
    """Read a label image drawn in napari, ilastik or any image tool.

    Accepted are any file :func:`read_image` reads (a napari Labels layer saved as TIFF, a
    PNG, an NPY ...), an ilastik label export in HDF5 (``file.h5`` or
    ``file.h5::/exported_data``; axes from its ``axistags`` attribute), and an ilastik
    project ``file.ilp`` (the labels of the first image; ``file.ilp::1`` for the second).

    Parameters
    ----------
    path : str or PathLike
        The label file, optionally with an HDF5 dataset (or ``.ilp`` lane) after ``::``.
    shape : sequence of int, optional
        Spatial shape of the image the labels belong to, ``(M, N[, P])``; required for
        ``.ilp`` projects, which store only the labelled blocks. A trailing axis of length 1
        (a channel) is dropped to match it.

    Returns
    -------
    (M, N[, P]) ndarray of unsigned int
        0 = unlabeled, 1..K = classes; axes in ``z, y, x`` order whatever the file's order;
        the smallest unsigned dtype holding the largest value (values are never changed).

    Raises
    ------
    ValueError
        If the file cannot be read, holds negative or fractional values, several channels
        or time points, or its shape differs from ``shape``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, tifffile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> strokes = np.zeros((32, 48), np.int32); strokes[2:5, 3:20] = 1; strokes[20, 5:40] = 2
    >>> tifffile.imwrite(folder / "labels.tif", strokes)  # what napari's layer.save writes
    >>> labels = read_labels(folder / "labels.tif", shape=(32, 48))
    >>> labels.dtype, np.unique(labels).tolist()
    (dtype('uint8'), [0, 1, 2])
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or Path), not {type(path).__name__}")
    text = os.fspath(path)
    target = _check_shape(shape)
    file_part, selector = split_selector(text)
    if not file_part.exists():
        raise ValueError(f"cannot read labels '{file_part}': the file does not exist")
    if file_part.suffix.lower() == ".ilp":
        if target is None:
            raise ValueError(f"reading labels from the ilastik project '{file_part}' needs "
                             "shape= (the image's shape): a project stores only the labelled "
                             "blocks")
        array, axes = _read_ilp(file_part, selector, target)
    elif _is_hdf5(file_part):
        array, axes = _read_h5(text, file_part, selector)
    else:
        from ._api import read_image

        array, meta = read_image(text)
        array, axes = np.asarray(array), str(meta["axes"])
    labels = _to_spatial(array, axes, text)
    if target is not None:
        if labels.shape == (*target, 1):
            labels = labels[..., 0]
        if labels.shape != target:
            raise ValueError(f"labels '{text}' have shape {labels.shape} but the image has "
                             f"shape {target}")
    return _as_label_values(labels, text)


def _check_shape(shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    try:
        values = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a sequence of whole numbers, got {shape!r}") from None
    if len(values) not in (2, 3) or min(values) < 1:
        raise ValueError(f"shape must be 2 or 3 positive sizes (M, N[, P]), got {shape!r}")
    return values


def _is_hdf5(file_part: Path) -> bool:
    try:
        return format_for_path(file_part) == "hdf5"
    except ValueError:
        return False


def _axistags_keys(value: Any, where: str) -> str | None:
    """Axis letters of a vigra ``axistags`` JSON string, e.g. ``'yxc'``."""
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        axes = json.loads(str(value))["axes"]
        letters = "".join(str(a["key"]).lower() for a in axes)
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"cannot read labels '{where}': its axistags are not valid JSON "
                         "axis tags") from None
    if not letters or set(letters) - set("tzyxc") or len(set(letters)) != len(letters):
        raise ValueError(f"cannot read labels '{where}': axistags '{letters}' must be "
                         "distinct letters from t, z, y, x, c")
    return letters


def _read_h5(text: str, file_part: Path, selector: str | None) -> tuple[np.ndarray, str]:
    from ._hdf5 import open_h5, resolve_dataset

    with open_h5(file_part) as f:
        ds = resolve_dataset(f, selector, file_part)
        letters = _axistags_keys(ds.attrs.get("axistags"), text)
        if letters is not None:
            if len(letters) != ds.ndim:
                raise ValueError(f"cannot read labels '{text}': axistags '{letters}' name "
                                 f"{len(letters)} axes but the data has {ds.ndim}")
            try:
                return np.asarray(ds[()]), letters
            except OSError as exc:
                raise ValueError(f"cannot read labels '{text}': the dataset is unreadable "
                                 f"({exc})") from None
    # Without ilastik's axistags the file is an ordinary niseg/NeXus image.
    from ._api import read_image

    array, meta = read_image(text)
    return np.asarray(array), str(meta["axes"])


def _parse_block_slice(value: Any, name: str) -> tuple[slice, ...]:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = str(value).strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise ValueError(f"block '{name}' has blockSlice {text!r}; expected e.g. '[0:64,0:32,0:1]'")
    slices = []
    for part in text[1:-1].split(","):
        match = _SLICE.match(part)
        if match is None or int(match.group(2)) < int(match.group(1)):
            raise ValueError(f"block '{name}' has blockSlice {text!r}; expected e.g. "
                             "'[0:64,0:32,0:1]'")
        slices.append(slice(int(match.group(1)), int(match.group(2))))
    return tuple(slices)


def _label_set(f: Any, selector: str | None, path: Path) -> tuple[Any, int]:
    import h5py

    sets = f.get("PixelClassification/LabelSets")
    if not isinstance(sets, h5py.Group) or not len(sets):
        raise ValueError(f"cannot read labels '{path}': the project holds no pixel "
                         "classification labels (PixelClassification/LabelSets)")
    if selector is None:
        name = min(sets, key=lambda n: int(re.sub(r"\D", "", n) or 0))
    elif selector.strip().isdigit():
        name = f"labels{int(selector):03d}"
    else:
        name = selector.strip().strip("/").split("/")[-1]
    if name not in sets:
        raise ValueError(f"cannot read labels '{path}::{selector}': the project has label "
                         f"sets {', '.join(sorted(sets))}")
    group = sets[name]
    digits = re.sub(r"\D", "", name)
    return group, int(digits) if digits else 0


def _read_ilp(path: Path, selector: str | None,
              target: tuple[int, ...]) -> tuple[np.ndarray, str]:
    import h5py

    from ._hdf5 import open_h5

    with open_h5(path) as f:
        group, lane = _label_set(f, selector, path)
        blocks = []
        members = group.values() if isinstance(group, h5py.Group) else [group]
        for block in members:
            where = f"{path}::{block.name}"
            # ilastik keeps masked label images as a group with a 'data' member.
            data = block.get("data") if isinstance(block, h5py.Group) else block
            if not isinstance(data, h5py.Dataset) or "blockSlice" not in block.attrs:
                raise ValueError(f"cannot read labels '{where}': expected a dataset with a "
                                 "blockSlice attribute")
            slicing = _parse_block_slice(block.attrs["blockSlice"], where)
            array = np.asarray(data[()])
            if array.shape != tuple(s.stop - s.start for s in slicing):
                raise ValueError(f"cannot read labels '{where}': its shape {array.shape} "
                                 "differs from its blockSlice")
            blocks.append((slicing, array))
        info = f.get(f"Input Data/infos/lane{lane:04d}/Raw Data/axistags")
        recorded = (_axistags_keys(info[()], f"{path}::{info.name}")
                    if isinstance(info, h5py.Dataset) else None)
    ndim = len(blocks[0][0]) if blocks else len(recorded or "yxc")
    if any(len(s) != ndim for s, _ in blocks):
        raise ValueError(f"cannot read labels '{path}': its label blocks differ in "
                         "dimensions")
    axes = recorded if recorded is not None else _DEFAULT_ILP_AXES.get(ndim)
    if axes is None or len(axes) != ndim:
        raise ValueError(f"cannot read labels '{path}': label blocks have {ndim} dimensions "
                         f"but the project's axes are {axes or 'not recorded'}")
    spatial = [a for a in axes if a in _SPATIAL]
    if len(spatial) != len(target):
        raise ValueError(f"labels in '{path}' have {len(spatial)} spatial axes "
                         f"({''.join(spatial)}) but the image has shape {target}")
    size = dict(zip(sorted(spatial, key=_SPATIAL.index), target))
    full_shape = tuple(size.get(a, 1) for a in axes)
    dtype = np.result_type(np.uint8, *[b.dtype for _, b in blocks]) if blocks else np.uint8
    out = np.zeros(full_shape, dtype=dtype)
    for slicing, array in blocks:
        for letter, s, n in zip(axes, slicing, full_shape):
            if s.stop > n:
                raise ValueError(f"labels in '{path}' reach {s.stop} along axis {letter} but "
                                 f"the image has {n} there; is shape {target} the right "
                                 "image?")
        out[slicing] = array
    return out, axes


def _to_spatial(array: np.ndarray, axes: str, name: str) -> np.ndarray:
    """Drop a length-1 channel or time axis and order the rest z, y, x."""
    for letter in axes:
        if letter in _SPATIAL:
            continue
        n = array.shape[axes.index(letter)]
        if letter in "ct" and n == 1:
            array = np.take(array, 0, axis=axes.index(letter))
            axes = axes.replace(letter, "")
            continue
        what = {"c": "channels", "t": "time points", "l": "wavelength bins"}.get(letter, letter)
        raise ValueError(f"labels '{name}' hold {n} {what} (axes {axes}); labels must be one "
                         "integer image, 0 = unlabeled and 1..K = classes")
    order = sorted(range(len(axes)), key=lambda i: _SPATIAL.index(axes[i]))
    return np.transpose(array, order)


def _as_label_values(labels: np.ndarray, name: str) -> np.ndarray:
    if labels.dtype.kind == "b":
        return labels.astype(np.uint8)
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all():
            raise ValueError(f"labels '{name}' contain NaN or infinite values; labels must be "
                             "whole numbers, 0 = unlabeled and 1..K = classes")
        if np.any(labels != np.round(labels)):
            raise ValueError(f"labels '{name}' hold fractional values; labels must be whole "
                             "numbers, 0 = unlabeled and 1..K = classes")
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"labels '{name}' have dtype {labels.dtype}; labels must be whole "
                         "numbers, 0 = unlabeled and 1..K = classes")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels '{name}' hold negative values (down to {labels.min():g}); "
                         "use 0 for unlabeled and 1..K for classes")
    top = float(labels.max()) if labels.size else 0.0
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if top <= np.iinfo(dtype).max:
            return labels.astype(dtype, copy=False)
    raise ValueError(f"labels '{name}' hold values too large for class numbers ({top:g})")
