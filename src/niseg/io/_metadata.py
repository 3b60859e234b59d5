"""The metadata contract: axes letters, pixel sizes, units, and JSON-safe values.

Readers return a *raw* metadata dict: ``axes`` only when the file records them,
``_pixel_size_at`` (array position -> size) for the sizes they know, and any other keys.
:func:`finalise_read_metadata` turns that into the dict every niseg module relies on.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

AXES_LETTERS = "zyxtlc"
SPATIAL = "zyx"
_DEFAULT_AXES = {1: "x", 2: "yx", 3: "zyx", 4: "tzyx", 5: "tzyxc"}

_UNITS = {
    "um": "um",
    "µm": "um",
    "μm": "um",
    "\\u00b5m": "um",
    "micron": "um",
    "microns": "um",
    "micrometer": "um",
    "micrometre": "um",
    "micrometers": "um",
    "micrometres": "um",
    "nm": "nm",
    "nanometer": "nm",
    "nanometre": "nm",
    "nanometers": "nm",
    "nanometres": "nm",
    "mm": "mm",
    "millimeter": "mm",
    "millimetre": "mm",
    "millimeters": "mm",
    "millimetres": "mm",
    "cm": "cm",
    "centimeter": "cm",
    "centimetre": "cm",
    "centimeters": "cm",
    "centimetres": "cm",
    "m": "m",
    "meter": "m",
    "metre": "m",
    "meters": "m",
    "metres": "m",
}
# Units that mean "not calibrated" in ImageJ and friends.
_NO_UNIT = {"", "pixel", "pixels", "px", "none", "inch", "inches"}


def default_axes(ndim: int) -> str:
    """Axes assumed for an array with no recorded axes."""
    if ndim not in _DEFAULT_AXES:
        raise ValueError(
            f"the image has {ndim} dimensions; pass axes= with one letter per dimension "
            f"from '{AXES_LETTERS}'"
        )
    return _DEFAULT_AXES[ndim]


def check_axes(axes: Any, ndim: int, *, name: str = "axes") -> str:
    """Validate an axes string against an array's number of dimensions."""
    if not isinstance(axes, str):
        raise TypeError(f"{name} must be a string of letters from '{AXES_LETTERS}', not {axes!r}")
    letters = axes.lower()
    bad = sorted(set(letters) - set(AXES_LETTERS))
    if bad:
        raise ValueError(
            f"{name} '{axes}' has letter(s) {', '.join(bad)}; use letters from '{AXES_LETTERS}'"
        )
    if len(set(letters)) != len(letters):
        raise ValueError(f"{name} '{axes}' repeats a letter; each axis needs its own letter")
    if len(letters) != ndim:
        raise ValueError(
            f"{name} '{axes}' has {len(letters)} letters but the image has {ndim} dimensions"
        )
    return letters


def normalise_unit(unit: Any) -> str | None:
    """Map a length unit to niseg's spelling (``um``, ``nm``, ``mm``, ``cm``, ``m``).

    Returns None for units that mean "uncalibrated" (``pixel``, ``inch``, empty); other
    strings are kept, stripped, as given.
    """
    if unit is None:
        return None
    if isinstance(unit, bytes):
        unit = unit.decode("utf-8", "replace")
    text = str(unit).strip()
    key = text.lower()
    if key in _NO_UNIT:
        return None
    return _UNITS.get(key, text)


def spatial_positions(axes: str) -> list[int]:
    """Positions of the spatial letters (z, y, x) in ``axes``."""
    return [i for i, letter in enumerate(axes) if letter in SPATIAL]


def pixel_size_at(axes: str, pixel_size: Sequence[float] | None) -> dict[int, float]:
    """Map array positions to pixel sizes, given sizes listed per spatial axis of ``axes``."""
    if pixel_size is None:
        return {}
    positions = spatial_positions(axes)
    sizes = list(pixel_size)
    if len(sizes) != len(positions):
        return {}
    return {pos: float(size) for pos, size in zip(positions, sizes)}


def finalise_read_metadata(raw: dict, ndim: int, *, user_axes: str | None, source: str) -> dict:
    """Build the metadata dict of the contract from what a reader found."""
    meta = dict(raw)
    recorded = meta.pop("axes", None)
    recorded_guessed = bool(meta.pop("axes_guessed", False))
    sizes = meta.pop("_pixel_size_at", {}) or {}
    meta.pop("pixel_size", None)
    meta.pop("slice_pixel_size", None)
    if user_axes is not None:
        axes, guessed = check_axes(user_axes, ndim), False
    elif recorded is not None and _valid_axes(recorded, ndim):
        axes, guessed = recorded, recorded_guessed
    else:
        axes, guessed = default_axes(ndim), ndim >= 3
    meta["axes"] = axes
    meta["axes_guessed"] = guessed
    positions = spatial_positions(axes)
    unit = normalise_unit(meta.pop("unit", None))
    if positions and all(p in sizes for p in positions):
        meta["pixel_size"] = tuple(sizes[p] for p in positions)
    else:
        # The slice spacing of a stack of 2D files is not recorded anywhere: keep the
        # in-plane size under its own key instead of inventing a z spacing.
        yx = [axes.find("y"), axes.find("x")]
        if -1 not in yx and all(p in sizes for p in yx):
            meta["slice_pixel_size"] = tuple(sizes[p] for p in yx)
    if unit is not None and ("pixel_size" in meta or "slice_pixel_size" in meta):
        meta["unit"] = unit
    meta["source"] = source
    return meta


def _valid_axes(axes: Any, ndim: int) -> bool:
    try:
        check_axes(axes, ndim)
    except (TypeError, ValueError):
        return False
    return True


def to_jsonable(value: Any, *, key: str = "metadata") -> Any:
    """Convert NumPy scalars, arrays and tuples to plain JSON-able Python values."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"metadata key {k!r} inside '{key}' must be a string")
            out[k] = to_jsonable(v, key=f"{key}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, key=key) for v in value]
    raise TypeError(
        f"metadata '{key}' holds a {type(value).__name__}, which cannot be stored; "
        "use numbers, strings, lists or dicts"
    )


def prepare_write_metadata(metadata: Mapping | None, ndim: int) -> dict:
    """Validate and normalise metadata given to ``write_image`` for an array of ``ndim``."""
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict or None, not {type(metadata).__name__}")
    meta = {k: v for k, v in metadata.items() if v is not None}
    for k in meta:
        if not isinstance(k, str):
            raise TypeError(f"metadata keys must be strings, not {k!r}")
    if "axes" in meta:
        meta["axes"] = check_axes(meta["axes"], ndim, name="metadata axes")
        meta["axes_guessed"] = bool(meta.get("axes_guessed", False))
    else:
        meta["axes"] = default_axes(ndim)
        meta["axes_guessed"] = ndim >= 3
    positions = spatial_positions(meta["axes"])
    if "pixel_size" in meta:
        meta["pixel_size"] = _check_pixel_size(meta["pixel_size"], meta["axes"], positions)
    if "slice_pixel_size" in meta:
        meta["slice_pixel_size"] = _check_sizes(meta["slice_pixel_size"], "slice_pixel_size")
    if "unit" in meta:
        unit = normalise_unit(meta["unit"])
        if unit is None:
            meta.pop("unit")
        else:
            meta["unit"] = unit
    if "exposure_time" in meta:
        value = meta["exposure_time"]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"metadata exposure_time must be a number of seconds, not {value!r}")
        if not math.isfinite(float(value)) or float(value) < 0:
            raise ValueError(f"metadata exposure_time must be a finite number >= 0, not {value}")
        meta["exposure_time"] = float(value)
    if "classes" in meta:
        classes = meta["classes"]
        if isinstance(classes, str) or not isinstance(classes, Sequence):
            raise TypeError(f"metadata classes must be a list of names, not {classes!r}")
        meta["classes"] = [str(c) for c in classes]
    if "header" in meta and not isinstance(meta["header"], Mapping):
        raise TypeError(f"metadata header must be a dict, not {type(meta['header']).__name__}")
    for k, v in meta.items():
        if k not in ("pixel_size", "slice_pixel_size"):
            meta[k] = to_jsonable(v, key=k)
    return meta


def _check_sizes(value: Any, name: str) -> tuple[float, ...]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = [value]
    try:
        sizes = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"metadata {name} must be numbers, not {value!r}") from None
    if not all(math.isfinite(s) and s > 0 for s in sizes):
        raise ValueError(f"metadata {name} must be finite numbers > 0, not {sizes}")
    return sizes


def _check_pixel_size(value: Any, axes: str, positions: list[int]) -> tuple[float, ...]:
    scalar = isinstance(value, numbers.Real) and not isinstance(value, bool)
    sizes = _check_sizes(value, "pixel_size")
    if scalar and positions:
        # One number means square (cubic) pixels.
        sizes = sizes * len(positions)
    if len(sizes) != len(positions):
        raise ValueError(
            f"metadata pixel_size has {len(sizes)} values but axes '{axes}' has "
            f"{len(positions)} spatial axes"
        )
    return sizes


def stored_metadata(meta: Mapping) -> dict:
    """The part of normalised write metadata that a format with free metadata stores."""
    out = {}
    for k, v in meta.items():
        if k in ("source", "dataset", "header"):
            continue
        if k == "axes_guessed":
            if v:
                out[k] = True
            continue
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def restore_stored_metadata(stored: Mapping) -> dict:
    """Turn metadata stored by :func:`stored_metadata` back into raw reader metadata."""
    meta = dict(stored)
    axes = meta.get("axes")
    sizes = meta.pop("pixel_size", None)
    slice_sizes = meta.pop("slice_pixel_size", None)
    at: dict[int, float] = {}
    if isinstance(axes, str):
        at.update(pixel_size_at(axes, sizes))
        if slice_sizes is not None and len(slice_sizes) == 2:
            yx = [axes.find("y"), axes.find("x")]
            if -1 not in yx:
                at.update({yx[0]: float(slice_sizes[0]), yx[1]: float(slice_sizes[1])})
    if at:
        meta["_pixel_size_at"] = at
    if "exposure_time" in meta and meta["exposure_time"] is not None:
        meta["exposure_time"] = float(meta["exposure_time"])
    return meta


def collapse_equal_channels(array: np.ndarray) -> np.ndarray:
    """Return the first channel of a (y, x, 3|4) image whose colour channels are equal.

    RGBA counts as grey only when the alpha channel is fully opaque.
    """
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        return array
    first = array[..., 0]
    if not (np.array_equal(first, array[..., 1]) and np.array_equal(first, array[..., 2])):
        return array
    if array.shape[-1] == 4:
        alpha = array[..., 3]
        full = np.iinfo(array.dtype).max if array.dtype.kind in "ui" else 1.0
        if not np.all(alpha == full):
            return array
    return np.ascontiguousarray(first)


def header_value(value: Any) -> Any:
    """Convert a file attribute to a plain Python value for ``metadata['header']``.

    Returns ``NotImplemented`` for values that have no plain form (large arrays, objects).
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU" and value.size <= 1000:
            return [header_value(v) for v in value.ravel().tolist()]
        if value.dtype.kind in "biuf" and value.size <= 1000:
            return value.item() if value.ndim == 0 else value.tolist()
        return NotImplemented
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [header_value(v) for v in value]
    return NotImplemented


def default_chunks(shape: Sequence[int], axes: str, itemsize: int) -> tuple[int, ...]:
    """Storage chunks: at most 256 along spatial axes, whole channels, single frames.

    Spectral (``l``) axes get up to 64 bins so a spectrum is read from few chunks; spatial
    sizes shrink until a chunk holds at most 16 MiB.
    """
    chunks = []
    for n, letter in zip(shape, axes):
        if letter in SPATIAL:
            chunks.append(min(n, 256))
        elif letter == "c":
            chunks.append(n)
        elif letter == "l":
            chunks.append(min(n, 64))
        else:
            chunks.append(1)
    chunks = [max(c, 1) for c in chunks]
    limit = 16 * 2**20
    while int(np.prod(chunks)) * itemsize > limit:
        spatial = [i for i, a in enumerate(axes) if a in SPATIAL and chunks[i] > 16]
        if not spatial:
            break
        for i in spatial:
            chunks[i] = max(16, chunks[i] // 2)
    return tuple(chunks)
