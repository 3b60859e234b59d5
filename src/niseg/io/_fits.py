"""FITS reading and writing (astropy.io.fits).

niseg's own header keywords: ``NISEGAX`` (axes letters, numpy order), ``EXPTIME`` (seconds),
``PIXSIZEn`` (pixel size along FITS axis *n*, so ``PIXSIZE1`` is x) with ``PIXUNIT``,
``NISEGCLS`` (class names as JSON) and ``HIERARCH NISEG <key>`` for other scalar metadata.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._lazy import wrap_loaded

_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|BZERO|BSCALE|PCOUNT|GCOUNT|XTENSION|END|CHECKSUM|"
    r"DATASUM|BLANK|COMMENT|HISTORY|)$"
)
_EXPOSURE_KEYS = ("EXPTIME", "EXPOSURE", "EXPOSURE_TIME")
_OURS = re.compile(r"^(NISEGAX|NISEGCLS|PIXUNIT|PIXSIZE\d+)$")
_EXTRA_PREFIX = "NISEG "


def _invalid(path: Path) -> ValueError:
    return ValueError(f"cannot read '{path}': the file is truncated or not a valid FITS file")


def _open(path: Path) -> Any:
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fits.open(path, memmap=False)
    except Exception as exc:
        raise _invalid(path) from exc


def _image_hdu(hdul: Any, path: Path) -> Any:
    from astropy.io import fits

    kinds = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)
    for hdu in hdul:
        if isinstance(hdu, kinds) and hdu.header.get("NAXIS", 0) > 0:
            return hdu
    raise ValueError(f"cannot read '{path}': the FITS file holds no image data")


def _plain(value: Any) -> Any:
    from astropy.io.fits.card import Undefined

    if isinstance(value, Undefined):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _header_to_metadata(header: Any, ndim: int) -> dict:
    raw: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    at: dict[int, float] = {}
    exposure_found = False
    for key, value in header.items():
        upper = key.upper()
        value = _plain(value)
        if _STRUCTURAL.match(upper):
            continue
        if upper == "NISEGAX" and isinstance(value, str):
            raw["axes"] = value.strip().lower()
        elif upper.startswith("PIXSIZE") and upper[7:].isdigit():
            n = int(upper[7:])
            if 1 <= n <= ndim and isinstance(value, (int, float)):
                at[ndim - n] = float(value)
        elif upper == "PIXUNIT":
            raw["unit"] = value
        elif upper == "NISEGCLS" and isinstance(value, str):
            try:
                raw["classes"] = [str(c) for c in json.loads(value)]
            except (ValueError, TypeError):
                extras[key] = value
        elif upper in _EXPOSURE_KEYS and not exposure_found and isinstance(value, (int, float)):
            raw["exposure_time"] = float(value)
            exposure_found = True
        elif upper.startswith(_EXTRA_PREFIX):
            raw[key[len(_EXTRA_PREFIX) :]] = value
        else:
            extras[key] = value
    if at:
        raw["_pixel_size_at"] = at
    if extras:
        raw["header"] = extras
    return raw


def read_fits(path: Path, *, lazy: bool, user_axes: str | None) -> tuple[Any, dict]:
    """Read the first image HDU of a FITS file in native byte order."""
    hdul = _open(path)
    with hdul:
        hdu = _image_hdu(hdul, path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = np.array(hdu.data)
        except Exception as exc:
            raise _invalid(path) from exc
        raw = _header_to_metadata(hdu.header, data.ndim)
    if data.dtype.byteorder not in ("=", "|"):
        data = data.astype(data.dtype.newbyteorder("="))
    return (wrap_loaded(data) if lazy else data), raw


def probe_fits(path: Path) -> tuple[tuple[int, ...], Any]:
    """Shape and a storage signature of a FITS image, from its header."""
    hdul = _open(path)
    with hdul:
        hdu = _image_hdu(hdul, path)
        h = hdu.header
        shape = tuple(int(h[f"NAXIS{n}"]) for n in range(h["NAXIS"], 0, -1))
        bitpix, bzero, bscale = h.get("BITPIX"), h.get("BZERO", 0), h.get("BSCALE", 1)
    base = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}
    name = base.get(bitpix, f"BITPIX {bitpix}")
    if bscale == 1 and bitpix == 8 and bzero == -128:
        name = "int8"
    elif bscale == 1 and bitpix in (16, 32, 64) and bzero == 2 ** (bitpix - 1):
        name = f"uint{bitpix}"
    elif bscale != 1 or bzero != 0:
        name = f"{name} scaled by BSCALE {bscale} and BZERO {bzero}"
    return shape, name


def _card_ok(key: str, value: Any) -> bool:
    from astropy.io import fits

    if isinstance(value, float) and not np.isfinite(value):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            card = fits.Card(key, value)
            card.verify("exception")
            str(card)
    except Exception:
        return False
    return True


def _scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, str))


def write_fits(tmp: Path, array: np.ndarray, meta: dict, extras: dict) -> list[str]:
    """Write ``array`` as the primary HDU; return the metadata keys that could not be kept."""
    from astropy.io import fits

    header = fits.Header()
    dropped: list[str] = []

    def put(key: str, value: Any, name: str) -> None:
        if _scalar(value) and _card_ok(key, value):
            header[key] = value
        else:
            dropped.append(name)

    for key, value in (meta.get("header") or {}).items():
        upper = str(key).upper()
        if _STRUCTURAL.match(upper) or _OURS.match(upper) or upper in _EXPOSURE_KEYS:
            continue
        card_key = key if len(key) <= 8 and key.isupper() else f"HIERARCH {key}"
        if _scalar(value) and _card_ok(card_key, value):
            header[card_key] = value
    axes = meta["axes"]
    if not meta.get("axes_guessed"):
        header["NISEGAX"] = axes
    if "exposure_time" in meta:
        header["EXPTIME"] = (meta["exposure_time"], "exposure time [s]")
    if "pixel_size" in meta:
        positions = [i for i, a in enumerate(axes) if a in "zyx"]
        for pos, size in zip(positions, meta["pixel_size"]):
            header[f"PIXSIZE{array.ndim - pos}"] = (size, f"pixel size along {axes[pos]}")
        if "unit" in meta:
            put("PIXUNIT", meta["unit"], "unit")
    if "classes" in meta:
        put("NISEGCLS", json.dumps(meta["classes"]), "classes")
    for key, value in extras.items():
        put(f"HIERARCH {_EXTRA_PREFIX}{key}", value, key)
    # astropy may scale or byte-swap the data it is given; hand it a copy of the caller's.
    hdu = fits.PrimaryHDU(data=np.array(array, copy=True), header=header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdu.writeto(tmp, output_verify="exception")
    return dropped
