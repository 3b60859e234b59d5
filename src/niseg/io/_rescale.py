"""Explicit linear rescaling to another dtype (the only place niseg changes pixel values)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike


def rescale_to_dtype(array: ArrayLike, dtype: DTypeLike) -> np.ndarray:
    """Linearly map the finite range of ``array`` onto the range of ``dtype``.

    The smallest finite value goes to the lowest value of ``dtype`` and the largest to the
    highest (0 and 1 for floating-point targets); values in between are scaled linearly and
    rounded to the nearest integer for integer targets. NaN becomes the lowest value for
    integer targets and stays NaN for float targets; +inf and -inf go to the top and bottom.
    A constant image maps to the lowest value. The input is not modified.

    This is what ``niseg convert --rescale`` does; niseg never rescales silently.

    Parameters
    ----------
    array : (M, N[, ...]) array_like
        Numeric image (any real dtype; a Dask array is computed).
    dtype : dtype-like
        Target dtype: an integer or floating-point dtype.

    Returns
    -------
    ndarray
        A new array of ``dtype`` and the shape of ``array``.

    Raises
    ------
    TypeError
        If ``array`` is not real-valued or ``dtype`` is not an integer or float dtype.

    Examples
    --------
    >>> import numpy as np
    >>> rescale_to_dtype(np.array([0.5, 1.0, np.nan, 2.5], dtype=np.float32), np.uint8)
    array([  0,  64,   0, 255], dtype=uint8)
    >>> rescale_to_dtype(np.array([[10, 20], [30, 50]], dtype=np.uint16), np.float32)
    array([[0.  , 0.25],
           [0.5 , 1.  ]], dtype=float32)
    """
    try:
        target = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a NumPy dtype, not {dtype!r}") from exc
    if target.kind not in "uif":
        raise TypeError(f"dtype must be an integer or floating-point dtype, not {target}")
    values = np.asarray(array)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"array must hold real numbers, not {values.dtype} values")
    # float64 keeps 32/64-bit integer ranges exact enough; float32 suffices for the rest.
    wide = target.itemsize >= 4 or values.dtype.itemsize >= 4
    work = values.astype(np.float64 if wide else np.float32, copy=True)
    finite = np.isfinite(work)
    if target.kind == "f":
        lo_out, hi_out = 0.0, 1.0
    else:
        info = np.iinfo(target)
        lo_out, hi_out = float(info.min), float(info.max)
        if target.itemsize == 8:
            # 2**63 - 1 rounds up to 2**63 in float64, which would overflow on the cast.
            hi_out = float(np.nextafter(hi_out, 0.0))
    if finite.any():
        lo, hi = float(work[finite].min()), float(work[finite].max())
    else:
        lo = hi = 0.0
    nan = np.isnan(work)
    span = hi - lo
    if span > 0:
        work -= lo
        work *= (hi_out - lo_out) / span
        work += lo_out
    else:
        work[finite] = lo_out
    np.clip(work, lo_out, hi_out, out=work, where=~nan)
    if target.kind == "f":
        return work.astype(target)
    work[nan] = lo_out
    np.rint(work, out=work)
    return work.astype(target)
