"""PNG and JPEG reading and writing (Pillow)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ._lazy import wrap_loaded
from ._metadata import collapse_equal_channels

_NAMES = {"png": "PNG", "jpeg": "JPEG"}
_CHANNELS = {"LA": 2, "PA": 4, "RGB": 3, "YCbCr": 3, "CMYK": 3, "LAB": 3, "HSV": 3, "RGBA": 4}


@contextlib.contextmanager
def _no_pixel_limit() -> Iterator[None]:
    # Pillow's decompression-bomb guard refuses large detector images; users open their own
    # files, so lift it while we read.
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _invalid(path: Path, fmt: str) -> ValueError:
    return ValueError(f"cannot read '{path}': the file is truncated or not a valid {_NAMES[fmt]}")


def _to_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    array = np.array(im)
    if mode == "1":
        return array.astype(np.uint8)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    if mode == "I" and im.format == "PNG":
        # Older Pillow opens 16-bit grey PNGs as 32-bit "I"; the values fit uint16 exactly.
        array = array.astype(np.uint16)
    return array


def read_raster(path: Path, fmt: str, *, lazy: bool, user_axes: str | None) -> tuple[Any, dict]:
    """Read a PNG or JPEG file (first frame). RGB with equal channels reads as grey."""
    try:
        with _no_pixel_limit(), Image.open(path) as im:
            im.load()
            array = _to_array(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _invalid(path, fmt) from exc
    raw: dict = {}
    if array.ndim == 3:
        if user_axes is None or len(user_axes) == 2:
            array = collapse_equal_channels(array)
        if array.ndim == 3:
            raw["axes"] = "yxc"
    return (wrap_loaded(array) if lazy else array), raw


def probe_raster(path: Path, fmt: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype a PNG/JPEG file reads as (before grey detection), from its header."""
    try:
        with _no_pixel_limit(), Image.open(path) as im:
            width, height, mode = im.width, im.height, im.mode
            transparent = "transparency" in im.info
    except (OSError, SyntaxError, ValueError) as exc:
        raise _invalid(path, fmt) from exc
    dtype = np.dtype(np.uint8)
    if mode.startswith("I;16") or (mode == "I" and fmt == "png"):
        dtype = np.dtype(np.uint16)
    elif mode == "I":
        dtype = np.dtype(np.int32)
    elif mode == "F":
        dtype = np.dtype(np.float32)
    channels = _CHANNELS.get(mode, 0)
    if mode == "P":
        channels = 4 if transparent else 3
    shape = (height, width, channels) if channels else (height, width)
    return shape, dtype


def check_raster_shape(array: np.ndarray, axes: str, fmt: str, *, guessed: bool = False) -> None:
    """Refuse shapes PNG/JPEG cannot hold (stacks, non-uint8 colour).

    A 3D array whose axes were only guessed is taken as colour when its last axis fits.
    """
    name = _NAMES[fmt]
    colour = array.ndim == 3 and (axes.endswith("c") or guessed)
    allowed = (2, 3, 4) if fmt == "png" else (3,)
    fits_colour = colour and array.shape[-1] in allowed and array.dtype == np.uint8
    if array.ndim != 2 and not fits_colour:
        raise ValueError(
            f"{name} stores one 2D grey image or a (y, x, {'|'.join(map(str, allowed))}) uint8 "
            f"colour image, not shape {tuple(array.shape)} {array.dtype} with axes '{axes}'; "
            "write stacks and other shapes as TIFF"
        )


def write_raster(tmp: Path, array: np.ndarray, meta: dict, fmt: str) -> None:
    """Write a grey or colour image as PNG or JPEG (JPEG quality 95)."""
    check_raster_shape(array, meta["axes"], fmt, guessed=meta.get("axes_guessed", False))
    image = Image.fromarray(np.ascontiguousarray(array))
    if fmt == "png":
        image.save(tmp, format="PNG")
    else:
        image.save(tmp, format="JPEG", quality=95)
