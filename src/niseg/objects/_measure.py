"""Per-object measurements in pixels and physical units, per-class totals, CSV tables."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._label import _check_labels, _check_mask

__all__ = ["class_totals", "measure_objects", "write_table_csv"]


def _spacing(pixel_size: Any, ndim: int) -> tuple[float, ...] | None:
    if pixel_size is None:
        return None
    values = np.atleast_1d(np.asarray(pixel_size, dtype=np.float64)) \
        if not isinstance(pixel_size, str) else None
    if values is None or values.ndim != 1 or values.size not in (1, ndim) \
            or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"pixel_size must be one positive number or {ndim} (one per axis), "
                         f"got {pixel_size!r}")
    if values.size == 1:
        values = np.repeat(values, ndim)
    return tuple(float(v) for v in values)


def measure_objects(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    *,
    class_map: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    pixel_size: float | Sequence[float] | None = None,
    unit: str | None = None,
) -> list[dict[str, Any]]:
    """Measure every object of a label image, in pixels and in physical units.

    Parameters
    ----------
    labels : (M, N[, P]) integer ndarray
        Objects 1..N, 0 = background (e.g. from :func:`label_objects`).
    image : (M, N[, P]) ndarray, optional
        Intensities for the mean, minimum and maximum intensity of each object (NaN ignored).
    class_map : (M, N[, P]) integer ndarray, optional
        Multi-class mask the objects came from; each object gets the class most of its
        pixels have. Without it every object is class 1.
    class_names : sequence of str, optional
        Names of classes 1..K for the ``class_name`` column.
    pixel_size : float or sequence of float, optional
        Pixel size (one value, or one per axis in array order) in ``unit``; adds the
        physical columns.
    unit : str, optional
        Length unit of ``pixel_size`` (default "um" when a pixel size is given).

    Returns
    -------
    list of dict
        One row per object with ``label``, ``class``, (``class_name``), ``area_px``
        (``volume_px`` in 3D), ``equivalent_diameter_px`` (of the disc or ball of the same
        area or volume), ``centroid_<axis>`` and ``bbox_<axis>0`` / ``bbox_<axis>1``
        (pixel indices, end exclusive), ``orientation_deg`` (2D: angle of the major axis
        from the x (column) axis, counter-clockwise as displayed, in (-90, 90]),
        ``mean_intensity`` / ``min_intensity`` / ``max_intensity`` with ``image``, and with
        ``pixel_size`` ``area_<unit>2`` (``volume_<unit>3``),
        ``equivalent_diameter_<unit>`` and ``centroid_<axis>_<unit>``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((10, 10), np.int32); labels[2:5, 1:9] = 1
    >>> row = measure_objects(labels, pixel_size=2.0)[0]
    >>> row["area_px"], row["area_um2"], row["orientation_deg"]
    (24, 96.0, 0.0)
    """
    from skimage.measure import regionprops

    arr = _check_labels(labels)
    ndim = arr.ndim
    spacing = _spacing(pixel_size, ndim)
    unit = (unit or "um") if spacing is not None else None
    if image is not None:
        image = np.asarray(image)
        if image.shape != arr.shape:
            raise ValueError(f"image has shape {image.shape} but labels has shape {arr.shape}")
        if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
            raise TypeError(f"image must hold real numbers, got dtype {image.dtype}")
    if class_map is not None:
        class_map = _check_mask(class_map, "class_map")
        if class_map.shape != arr.shape:
            raise ValueError(f"class_map has shape {class_map.shape} but labels has shape "
                             f"{arr.shape}")
    axes = "zyx"[-ndim:]
    size_name = "area" if ndim == 2 else "volume"
    voxel = float(np.prod(spacing)) if spacing is not None else None
    rows: list[dict[str, Any]] = []
    for region in regionprops(arr):
        coords = region.coords
        row: dict[str, Any] = {"label": int(region.label)}
        if class_map is not None:
            values = class_map[tuple(coords.T)]
            row["class"] = int(np.bincount(values.ravel()).argmax())
        else:
            row["class"] = 1
        if class_names is not None:
            k = row["class"]
            row["class_name"] = str(class_names[k - 1]) if 1 <= k <= len(class_names) else ""
        count = int(region.area)
        row[f"{size_name}_px"] = count
        row["equivalent_diameter_px"] = _equivalent_diameter(float(count), ndim)
        for a, c in zip(axes, region.centroid, strict=True):
            row[f"centroid_{a}"] = float(c)
        bbox = region.bbox
        for i, a in enumerate(axes):
            row[f"bbox_{a}0"] = int(bbox[i])
            row[f"bbox_{a}1"] = int(bbox[i + ndim])
        if ndim == 2:
            row["orientation_deg"] = _orientation_deg(coords, spacing)
        if spacing is not None and voxel is not None:
            physical = count * voxel
            row[f"{size_name}_{unit}{ndim}"] = physical
            row[f"equivalent_diameter_{unit}"] = _equivalent_diameter(physical, ndim)
            for a, c, s in zip(axes, region.centroid, spacing, strict=True):
                row[f"centroid_{a}_{unit}"] = float(c) * s
        if image is not None:
            values = image[tuple(coords.T)].astype(np.float64)
            finite = values[np.isfinite(values)]
            row["mean_intensity"] = float(finite.mean()) if finite.size else float("nan")
            row["min_intensity"] = float(finite.min()) if finite.size else float("nan")
            row["max_intensity"] = float(finite.max()) if finite.size else float("nan")
        rows.append(row)
    return rows


def _equivalent_diameter(size: float, ndim: int) -> float:
    if ndim == 2:
        return math.sqrt(4.0 * size / math.pi)
    return (6.0 * size / math.pi) ** (1.0 / 3.0)


def _orientation_deg(coords: np.ndarray, spacing: tuple[float, ...] | None) -> float:
    # Principal axis of the pixel-centre covariance, in physical coordinates when known.
    scale = np.asarray(spacing if spacing is not None else (1.0, 1.0))
    y = coords[:, 0] * scale[0]
    x = coords[:, 1] * scale[1]
    if coords.shape[0] < 2:
        return 0.0
    cov = np.cov(np.vstack([x, y]))
    if np.allclose(cov, 0):
        return 0.0
    evals, evecs = np.linalg.eigh(cov)
    vx, vy = evecs[:, -1]
    if abs(evals[-1] - evals[0]) <= 1e-12 * max(abs(evals[-1]), 1.0):
        return 0.0  # a disc or square has no major axis
    # y points down in the display, so counter-clockwise is -y.
    angle = round(math.degrees(math.atan2(-vy, vx)), 6)
    if angle <= -90.0:
        angle += 180.0
    elif angle > 90.0:
        angle -= 180.0
    return angle + 0.0


def class_totals(
    rows: Sequence[Mapping[str, Any]],
    *,
    shape: Sequence[int],
    class_names: Sequence[str] | None = None,
    pixel_size: float | Sequence[float] | None = None,
    unit: str | None = None,
) -> list[dict[str, Any]]:
    """Sum object measurements per class: count, total area (volume) and area fraction.

    Parameters
    ----------
    rows : sequence of dict
        Rows from :func:`measure_objects`.
    shape : sequence of int
        Shape of the label image (its pixel count is the denominator of the fraction).
    class_names : sequence of str, optional
        Names of classes 1..K.
    pixel_size : float or sequence of float, optional
        Pixel size in ``unit`` for the physical totals.
    unit : str, optional
        Length unit (default "um" when a pixel size is given).

    Returns
    -------
    list of dict
        One row per class present: ``class``, (``class_name``), ``count``, ``area_px``
        (``volume_px``), ``fraction``, ``mean_equivalent_diameter_px`` and with
        ``pixel_size`` ``area_<unit>2`` (``volume_<unit>3``).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((10, 10), np.int32); labels[:2, :5] = 1; labels[5:, 5:] = 2
    >>> class_totals(measure_objects(labels), shape=labels.shape)[0]["fraction"]
    0.35
    """
    ndim = len(shape)
    if ndim not in (2, 3):
        raise ValueError(f"shape must have 2 or 3 dimensions, got {tuple(shape)}")
    spacing = _spacing(pixel_size, ndim)
    unit = (unit or "um") if spacing is not None else None
    size_name = "area" if ndim == 2 else "volume"
    total_pixels = int(np.prod(shape))
    classes = sorted({int(r["class"]) for r in rows})
    out = []
    for k in classes:
        members = [r for r in rows if int(r["class"]) == k]
        pixels = int(sum(int(r[f"{size_name}_px"]) for r in members))
        entry: dict[str, Any] = {"class": k}
        if class_names is not None:
            entry["class_name"] = str(class_names[k - 1]) if 1 <= k <= len(class_names) else ""
        entry["count"] = len(members)
        entry[f"{size_name}_px"] = pixels
        entry["fraction"] = pixels / total_pixels if total_pixels else 0.0
        entry["mean_equivalent_diameter_px"] = float(
            np.mean([r["equivalent_diameter_px"] for r in members]))
        if spacing is not None:
            entry[f"{size_name}_{unit}{ndim}"] = pixels * float(np.prod(spacing))
        out.append(entry)
    return out


def write_table_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], *,
                    overwrite: bool = False) -> Path:
    """Write rows of measurements as a CSV file (header from the keys of the first row).

    Parameters
    ----------
    path : str or PathLike
        Output ``.csv`` file, written atomically.
    rows : sequence of dict
        Rows with the same keys (e.g. from :func:`measure_objects`).
    overwrite : bool, optional
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "objects.csv"
    >>> _ = write_table_csv(out, [{"label": 1, "area_px": 4}])
    >>> out.read_text().splitlines()
    ['label,area_px', '1,4']
    """
    from niseg.io import atomic_output

    columns: list[str] = [] if rows else ["label"]
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    with atomic_output(path, overwrite=overwrite) as tmp, \
            open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
    return Path(path)


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return value
