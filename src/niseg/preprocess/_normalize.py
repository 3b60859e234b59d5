"""Open-beam / dark-current normalization of radiographs, stacks and time-of-flight cubes.

Model. A detector pixel records counts proportional to the exposure time ``t``:
``I = t_s (phi T + d)`` for the sample, ``OB = t_ob (phi + d)`` for the open beam and
``DC = t_dc d`` for the dark frames, where ``phi`` is the beam rate and ``d`` the dark rate.
Hence::

    T = (I / t_s - DC / t_dc) / (OB / t_ob - DC / t_dc)
      = (I - k_ds DC) / (k_os (OB - k_do DC)),   k_ds = t_s / t_dc, k_do = t_ob / t_dc,
                                                 k_os = t_s / t_ob.

The dark signal is taken to grow linearly with exposure time. A detector with a fixed offset
(bias) that does not depend on exposure breaks that assumption; take the dark frames at the
sample's and open beam's exposure and the factors are all 1, which makes the model exact.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._frames import (
    BLOCK_BYTES,
    _as_numeric,
    _check_block,
    _check_method,
    _Piece,
    combine_pieces,
)

__all__ = ["GUARD_COUNTS", "minus_log", "normalize"]

#: Default guard: pixels whose dark-subtracted open beam has at most this many counts are
#: NaN in the result (a beam that weak gives a meaningless ratio, and zero divides).
GUARD_COUNTS = 1.0
#: More than this fraction of pixels with a non-positive (or guarded) denominator is an error.
_MOST = 0.5
_NEGATIVE_HINT = (
    "; if the data are already dark-subtracted, leave out the dark and pass "
    "allow_negative=True (--allow-negative)"
)


@dataclass
class _Layout:
    """Where the sample keeps its frames, rows, columns and wavelength bins."""

    frame_axis: int | None
    spectral_axis: int | None
    frame_shape: tuple[int, ...]  # sample shape without the frame axis (what one OB is)
    spatial_shape: tuple[int, int]  # (M, N)
    n_frames: int
    n_bins: int
    order: tuple[int, ...]  # sample axes in canonical order (frames, y, x, bins)


def _axis_arg(value: Any, name: str, ndim: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    if not -ndim <= value < ndim:
        raise ValueError(f"{name}={value} is out of range for a sample with {ndim} dimensions")
    return int(value) % ndim


def _layout(shape: tuple[int, ...], frame_axis: Any, spectral_axis: Any) -> _Layout:
    ndim = len(shape)
    f = _axis_arg(frame_axis, "frame_axis", ndim)
    s = _axis_arg(spectral_axis, "spectral_axis", ndim)
    if f is not None and f == s:
        raise ValueError(f"frame_axis and spectral_axis are both axis {f}; they must differ")
    spatial = [a for a in range(ndim) if a not in (f, s)]
    if len(spatial) != 2:
        given = [n for n, a in (("frame_axis", f), ("spectral_axis", s)) if a is not None]
        said = f" besides {' and '.join(given)}" if given else ""
        raise ValueError(
            f"sample has shape {tuple(shape)} but needs exactly two image axes (y, x){said}; "
            "pass frame_axis for a stack of frames or spectral_axis for wavelength bins"
        )
    frame_shape = tuple(n for a, n in enumerate(shape) if a != f)
    order = tuple(a for a in (f, *spatial, s) if a is not None)
    return _Layout(
        frame_axis=f,
        spectral_axis=s,
        frame_shape=frame_shape,
        spatial_shape=(shape[spatial[0]], shape[spatial[1]]),
        n_frames=1 if f is None else shape[f],
        n_bins=1 if s is None else shape[s],
        order=order,
    )


def _canonical(array: np.ndarray, layout: _Layout, *, stacked: bool) -> np.ndarray:
    """A view of a frame (or a stack of frames along axis 0) as ``(k, M, N, L)``."""
    # Axes of one frame, in the sample's order with the frame axis removed.
    frame_axes = [a for a in range(len(layout.frame_shape) + (layout.frame_axis is not None))
                  if a != layout.frame_axis]
    position = {a: i for i, a in enumerate(frame_axes)}
    wanted = [position[a] for a in layout.order if a != layout.frame_axis]
    view = np.transpose(array, [0, *(1 + w for w in wanted)]) if stacked else (
        np.transpose(array, wanted)[np.newaxis])
    if layout.spectral_axis is None:
        view = view[..., np.newaxis]
    return view


def _reference_pieces(value: Any, name: str, layout: _Layout, *,
                      allow_spatial: bool) -> list[tuple[np.ndarray, bool, bool]]:
    """Split open_beam/dark into ``(array, is_stack, is_spatial_only)`` entries."""
    entries = list(value) if isinstance(value, (list, tuple)) else [value]
    if not entries:
        raise ValueError(f"{name} is an empty list; give at least one frame")
    frame = layout.frame_shape
    spatial = layout.spatial_shape
    result = []
    for i, entry in enumerate(entries):
        label = name if len(entries) == 1 and not isinstance(value, (list, tuple)) \
            else f"{name}[{i}]"
        array = _as_numeric(entry, label)
        shape = array.shape
        if shape == frame:
            result.append((array, False, False))
        elif allow_spatial and shape == spatial:
            result.append((array, False, True))
        elif shape[1:] == frame and shape[0] > 0:
            result.append((array, True, False))
        elif allow_spatial and shape[1:] == spatial and shape[0] > 0:
            result.append((array, True, True))
        else:
            what = f"{frame}" + (f" or {spatial}" if allow_spatial else "")
            raise ValueError(
                f"{label} has shape {shape} but the sample's frames have shape {frame}; give "
                f"frames of shape {what}, or a stack of them along a first axis"
            )
    kinds = {spatial_only for _, _, spatial_only in result}
    if len(kinds) > 1:
        raise ValueError(f"{name} mixes frames of shape {frame} with frames of shape {spatial}; "
                         "give all entries for every wavelength bin or all for none")
    return result


def _check_exposures(exposure: Any, n_ob: int, n_dc: int, has_dark: bool
                     ) -> dict[str, Any] | None:
    if exposure is None:
        return None
    if not isinstance(exposure, Mapping):
        raise TypeError("exposure must be a dict such as {'sample': 10.0, 'open_beam': 5.0, "
                        f"'dark': 10.0}} or None, not {type(exposure).__name__}")
    unknown = set(exposure) - {"sample", "open_beam", "dark"}
    if unknown:
        raise ValueError(f"exposure has unknown key(s) {sorted(map(str, unknown))}; use "
                         "'sample', 'open_beam' and 'dark'")
    needed = ["sample", "open_beam"] + (["dark"] if has_dark else [])
    missing = [k for k in needed if k not in exposure]
    if missing:
        raise ValueError(f"exposure lacks the time for {' and '.join(map(repr, missing))}; give "
                         f"exposure times for {', '.join(needed)} (or exposure=None for no "
                         "scaling)")
    counts = {"sample": 1, "open_beam": n_ob, "dark": n_dc}
    times: dict[str, Any] = {}
    for key in needed:
        value = exposure[key]
        if isinstance(value, (list, tuple, np.ndarray)) and key != "sample":
            values = list(value)
            if len(values) != counts[key]:
                raise ValueError(f"exposure['{key}'] gives {len(values)} times but {key} has "
                                 f"{counts[key]} entries; give one time or one per entry")
        else:
            values = [value] * counts[key]
        checked = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise TypeError(f"exposure['{key}'] must be a number of seconds, not {v!r}")
            if not (math.isfinite(float(v)) and float(v) > 0):
                raise ValueError(f"exposure['{key}'] must be a positive number of seconds, "
                                 f"got {float(v):g}")
            checked.append(float(v))
        times[key] = checked[0] if key == "sample" else checked
    return times


def parse_roi(roi: Any, name: str = "dose_roi") -> tuple[slice, slice]:
    """Turn ``'y0:y1,x0:x1'`` or a pair of slices into two slices (no bounds check yet)."""
    if isinstance(roi, str):
        parts = roi.split(",")
        if len(parts) != 2:
            raise ValueError(f"{name} {roi!r} must look like y0:y1,x0:x1, e.g. 0:50,0:50")
        slices = []
        for part in parts:
            bounds = part.split(":")
            if len(bounds) != 2:
                raise ValueError(f"{name} range {part!r} must look like start:stop, e.g. 10:60")
            try:
                lo, hi = (int(b) if b.strip() else None for b in bounds)
            except ValueError:
                raise ValueError(f"{name} range {part!r} must hold whole numbers") from None
            slices.append(slice(lo, hi))
        return slices[0], slices[1]
    if (not isinstance(roi, (list, tuple)) or len(roi) != 2
            or not all(isinstance(s, slice) for s in roi)):
        raise TypeError(f"{name} must be two slices (y, x) or a string 'y0:y1,x0:x1', "
                        f"not {roi!r}")
    for s in roi:
        for v in (s.start, s.stop):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
                raise TypeError(f"{name} bounds must be whole numbers, not {v!r}")
        if s.step not in (None, 1):
            raise ValueError(f"{name} slices must not have a step, got {s}")
    return roi[0], roi[1]


def _bounded_roi(roi: tuple[slice, slice], shape: tuple[int, int]) -> tuple[slice, slice]:
    out = []
    for s, n in zip(roi, shape):
        lo = 0 if s.start is None else int(s.start)
        hi = n if s.stop is None else int(s.stop)
        if lo < 0 or hi > n or lo >= n:
            text = ",".join(f"{'' if r.start is None else r.start}:"
                            f"{'' if r.stop is None else r.stop}" for r in roi)
            raise ValueError(f"dose_roi {text} reaches outside the image of {shape[0]} x "
                             f"{shape[1]} pixels")
        if hi <= lo:
            raise ValueError(f"dose_roi range {lo}:{hi} is empty; give start < stop")
        out.append(slice(lo, hi))
    return out[0], out[1]


def _check_guard(guard: Any) -> float:
    if isinstance(guard, bool) or not isinstance(guard, (int, float, np.integer, np.floating)):
        raise TypeError(f"guard must be a number of counts, not {type(guard).__name__}")
    if not (math.isfinite(float(guard)) and guard >= 0):
        raise ValueError(f"guard must be a finite number of counts >= 0, got {guard!r}")
    return float(guard)


def _check_floor(floor: Any) -> float | None:
    if floor is None:
        return None
    if isinstance(floor, bool) or not isinstance(floor, (int, float, np.integer, np.floating)):
        raise TypeError(f"floor must be a positive number or None, not {type(floor).__name__}")
    if not (math.isfinite(float(floor)) and floor > 0):
        raise ValueError(f"floor must be a positive finite number (e.g. 1e-6) or None, "
                         f"got {floor!r}")
    return float(floor)


def _check_clip(clip: Any) -> tuple[float, float] | None:
    if clip is None:
        return None
    try:
        lo, hi = (float(v) for v in clip)
    except (TypeError, ValueError):
        raise TypeError(f"clip must be a pair (low, high) of numbers or None, not {clip!r}") \
            from None
    if not lo < hi:
        raise ValueError(f"clip must have low < high, got {clip!r}")
    return lo, hi


def _minus_log_inplace(values: np.ndarray, floor: float | None) -> int:
    """Replace float32 T by -ln T in place; return how many values were <= 0 (or < floor)."""
    if floor is None:
        bad = values <= 0
        values[bad] = np.nan
    else:
        bad = values < floor
        values[bad] = floor
    with np.errstate(invalid="ignore", divide="ignore"):
        np.log(values, out=values)
    np.negative(values, out=values)
    return int(np.count_nonzero(bad))


def minus_log(transmission: ArrayLike, *, floor: float | None = None) -> np.ndarray:
    """Attenuation ``-ln T`` of a transmission image (Beer–Lambert: ``sum mu d``).

    Parameters
    ----------
    transmission : (M, N[, ...]) array_like
        Transmission values, normally in (0, 1]; values above 1 (noise) give a negative
        attenuation and are kept.
    floor : float, optional
        Without it, ``T <= 0`` gives NaN (the attenuation is undefined). With it, values
        below ``floor`` are raised to ``floor`` first, so they give the finite attenuation
        ``-ln floor``.

    Returns
    -------
    (M, N[, ...]) float32 ndarray
        ``-ln T``; NaN stays NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.preprocess import minus_log
    >>> minus_log(np.array([1.0, np.exp(-2.0), 0.0, -0.1]))
    array([-0.,  2., nan, nan], dtype=float32)
    >>> minus_log(np.array([0.5, 0.0]), floor=1e-3).round(3)
    array([0.693, 6.908], dtype=float32)
    """
    floor = _check_floor(floor)
    values = _as_numeric(transmission, "transmission").astype(np.float32, copy=True)
    _minus_log_inplace(values, floor)
    return values


def normalize(
    sample: ArrayLike,
    open_beam: ArrayLike | Sequence[ArrayLike],
    dark: ArrayLike | Sequence[ArrayLike] | None = None,
    *,
    combine: str = "median",
    frame_axis: int | None = None,
    spectral_axis: int | None = None,
    exposure: Mapping[str, Any] | None = None,
    dose_roi: tuple[slice, slice] | str | None = None,
    guard: float = GUARD_COUNTS,
    log: bool = False,
    floor: float | None = None,
    clip: tuple[float, float] | None = None,
    allow_negative: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Flat-field normalize: transmission ``T = (I - DC) / (OB - DC)`` with exposure scaling.

    Open-beam (``OB``) and dark-current (``DC``) frames are each combined into one reference
    (median or mean); each sample frame, or each wavelength bin of a time-of-flight cube, is
    divided by its own reference. Counts are taken to scale with exposure time, the dark
    signal included: with exposure times ``t_s``, ``t_ob`` and ``t_dc``,
    ``T = (I - (t_s/t_dc) DC) / ((t_s/t_ob) (OB - (t_ob/t_dc) DC))``. A detector offset that
    does not grow with exposure is exact only when all exposures are equal.

    Nothing is hidden: pixels whose dark-subtracted open beam is at most ``guard`` counts
    are NaN and counted; values ``T <= 0`` and ``T > 1`` (both possible with noise) are
    counted and kept unless ``clip`` is given. The sample is processed in blocks of rows in
    float32, so the only full-size array is the result.

    Parameters
    ----------
    sample : (M, N), (K, M, N), (M, N, L) or (K, M, N, L) array_like
        Detected counts: one image, a stack of frames (``frame_axis``), a ToF cube
        (``spectral_axis``) or a stack of cubes (both); any axis order.
    open_beam : array_like or sequence of array_like
        A frame of the sample's frame shape (the sample without its frame axis: ``(M, N)``,
        or the cube ``(M, N, L)`` in the sample's axis order), a stack of such frames along
        a new first axis, or a list of those. All frames are combined by ``combine`` (per
        wavelength bin for cubes).
    dark : array_like or sequence of array_like, optional
        Dark-current frames, as ``open_beam``; for a ToF cube also ``(M, N)`` frames, which
        apply to every bin. None = no dark subtraction.
    combine : {"median", "mean"}, optional
        How the open-beam and dark frames are combined.
    frame_axis : int, optional
        Sample axis holding frames (projections, repeats); every frame is divided by the
        same references.
    spectral_axis : int, optional
        Sample axis holding wavelength (time-of-flight) bins; each bin is divided by its own
        open-beam bin.
    exposure : dict, optional
        Exposure times in seconds: ``{"sample": t_s, "open_beam": t_ob, "dark": t_dc}``
        (``"dark"`` only with ``dark``). For lists of references a list of times, one per
        entry, may be given. None = all exposures equal, no scaling. A UserWarning tells
        when the sample and open-beam exposures differ.
    dose_roi : (slice, slice) or str, optional
        A region ``(y, x)`` (or ``"y0:y1,x0:x1"``) the beam reaches without the sample.
        Each frame (each bin of a cube) is divided by the ratio of the region's mean
        dark-subtracted sample to its mean dark-subtracted open beam, so ``T`` averages 1
        there; corrects changes of beam intensity between exposures.
    guard : float, optional
        Smallest dark-subtracted open-beam value, in open-beam counts, that still divides;
        at or below it a pixel is NaN (default 1 count). Use a smaller value for open beams
        that are not in counts.
    log : bool, optional
        Return the attenuation ``-ln T`` instead of ``T`` (see :func:`minus_log`).
    floor : float, optional
        With ``log``: raise ``T`` below ``floor`` to ``floor`` instead of giving NaN for
        ``T <= 0``.
    clip : (float, float), optional
        Limit ``T`` to ``[low, high]`` after counting (before ``-ln``); by default nothing is
        clipped.
    allow_negative : bool, optional
        Accept negative values in the sample and open beam (data already dark-subtracted);
        by default they are refused, since raw counts cannot be negative.
    progress : callable, optional
        Called as ``progress(done, total)`` after each block of rows.

    Returns
    -------
    result : float32 ndarray, shape of ``sample``
        Transmission (or attenuation with ``log``).
    stats : dict
        JSON-able: ``n_pixels``, ``n_guarded``, ``n_nonpositive``, ``n_above_one`` and
        ``fraction_*`` of each (counted before ``clip`` and ``-ln``), ``n_log_undefined``
        (``log`` only: values NaN or floored), ``combine``, ``n_open_beam_frames``,
        ``n_dark_frames``, ``guard``, ``exposure`` (the times, or None),
        ``scale_factors`` (``open_beam_to_sample`` ``k_os``, ``dark_to_sample`` ``k_ds``,
        ``dark_to_open_beam`` ``k_do``), ``dose_roi`` and ``dose_factors`` (a number, a list
        per frame or bin, or a list of lists [frame][bin]; None without ``dose_roi``),
        ``frame_axis``, ``spectral_axis``, ``log``, ``floor``, ``clip``.

    Raises
    ------
    ValueError
        For shapes that do not match (naming both), an open beam not brighter than the
        dark current in most pixels (swapped inputs), a non-positive exposure, negative or
        NaN counts, or a dose region outside the image, empty, or without beam.
    TypeError
        For inputs that are not arrays of real numbers or options of the wrong type.

    Warns
    -----
    UserWarning
        When the sample and open-beam exposure times differ.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.preprocess import normalize
    >>> dark = np.full((2, 3), 100.0)
    >>> open_beam = np.stack([dark + 1000, dark + 1010, dark + 990])  # three frames
    >>> sample = dark + np.array([[1000, 500, 100], [0, 1200, 1000]])
    >>> t, stats = normalize(sample, open_beam, dark)
    >>> t
    array([[1. , 0.5, 0.1],
           [0. , 1.2, 1. ]], dtype=float32)
    >>> stats["n_nonpositive"], stats["n_above_one"], stats["n_open_beam_frames"]
    (1, 1, 3)
    >>> normalize(sample, open_beam, dark, log=True)[0].round(2)
    array([[-0.  ,  0.69,  2.3 ],
           [  nan, -0.18, -0.  ]], dtype=float32)
    """
    sample_arr = _as_numeric(sample, "sample")
    layout = _layout(sample_arr.shape, frame_axis, spectral_axis)
    method = _check_method(combine, "combine")
    guard = _check_guard(guard)
    floor = _check_floor(floor)
    clip = _check_clip(clip)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, not {type(progress).__name__}")
    ob_entries = _reference_pieces(open_beam, "open_beam", layout, allow_spatial=False)
    dc_entries = ([] if dark is None
                  else _reference_pieces(dark, "dark", layout, allow_spatial=True))
    times = _check_exposures(exposure, len(ob_entries), len(dc_entries), dark is not None)
    roi = None
    if dose_roi is not None:
        roi = _bounded_roi(parse_roi(dose_roi), layout.spatial_shape)

    t_s = times["sample"] if times else 1.0
    t_ob = times["open_beam"][0] if times else 1.0
    t_dc = times["dark"][0] if times and dark is not None else t_s
    if times and any(not math.isclose(t, t_s, rel_tol=1e-6) for t in times["open_beam"]):
        shown = ", ".join(f"{t:g}" for t in dict.fromkeys(times["open_beam"]))
        warnings.warn(
            f"sample exposure ({t_s:g} s) differs from open-beam exposure ({shown} s); the open "
            f"beam is scaled by exposure time (x{t_s / t_ob:.4g})", UserWarning, stacklevel=2)

    M, N = layout.spatial_shape
    L = layout.n_bins
    ref_shape = (M, N, L)

    ob_pieces = []
    for i, (array, stacked, _) in enumerate(ob_entries):
        scale = t_ob / times["open_beam"][i] if times else 1.0
        view = _canonical(array, layout, stacked=stacked)
        ob_pieces.append(_Piece(view, view.shape[0], scale))
    n_ob = sum(p.count for p in ob_pieces)
    den = combine_pieces(ob_pieces, ref_shape, method, name="open_beam", finite=True,
                         nonnegative=not allow_negative, hint=_NEGATIVE_HINT)

    n_dc = 0
    dcs = None
    if dc_entries:
        spatial_only = dc_entries[0][2]
        dc_pieces = []
        for i, (array, stacked, _) in enumerate(dc_entries):
            scale = t_dc / times["dark"][i] if times else 1.0
            if spatial_only:
                # An (M, N) dark frame serves every wavelength bin: give it a bin axis of 1.
                view = (array if stacked else array[np.newaxis])[..., np.newaxis]
            else:
                view = _canonical(array, layout, stacked=stacked)
            dc_pieces.append(_Piece(view, view.shape[0], scale))
        n_dc = sum(p.count for p in dc_pieces)
        dc = combine_pieces(dc_pieces, (M, N, 1 if spatial_only else L), method, name="dark",
                            finite=True)
        k_do = t_ob / t_dc
        den -= dc if k_do == 1.0 else dc * np.float32(k_do)
        k_ds = t_s / t_dc
        dcs = dc if k_ds == 1.0 else dc * np.float32(k_ds)

    not_brighter = float(np.count_nonzero(den <= 0)) / den.size
    if not_brighter > _MOST:
        pct = f"{100 * not_brighter:.0f} %"
        if dcs is None:
            raise ValueError(f"the open beam holds no counts in {pct} of pixels; check that "
                             "open_beam is an open-beam (flat-field) image")
        raise ValueError(f"the open beam is not brighter than the dark current in {pct} of "
                         "pixels; are the open-beam and dark images swapped?")
    guarded = den <= guard
    n_guarded_ref = int(np.count_nonzero(guarded))
    if n_guarded_ref / den.size > _MOST:
        raise ValueError(
            f"the dark-subtracted open beam is at most guard={guard:g} counts in "
            f"{100 * n_guarded_ref / den.size:.0f} % of pixels; give raw counts or a smaller "
            "guard")
    den[guarded] = np.nan
    k_os = t_s / t_ob
    if k_os != 1.0:
        den *= np.float32(k_os)

    out = np.empty(sample_arr.shape, dtype=np.float32)
    # Frames first (a single image is a stack of one), then (k, M, N, L) views.
    sample_c = _canonical(_frames_first(sample_arr, layout), layout, stacked=True)
    out_c = _canonical(_frames_first(out, layout), layout, stacked=True)

    sample_hint = _NEGATIVE_HINT if dcs is not None else (
        "; pass allow_negative=True (--allow-negative) if the data are already dark-subtracted")
    dose = np.ones((layout.n_frames, L), dtype=np.float64)
    if roi is not None:
        dose = _dose_factors(sample_c, den, dcs, roi, allow_negative, sample_hint)

    counts = {"nonpositive": 0, "above_one": 0, "log_undefined": 0}
    step = max(1, BLOCK_BYTES // max(1, 4 * N * L))
    blocks = range(0, M, step)
    total = layout.n_frames * len(blocks)
    done = 0
    for f in range(layout.n_frames):
        factors = None if roi is None else (1.0 / dose[f]).astype(np.float32)
        for start in blocks:
            rows = slice(start, min(start + step, M))
            raw = sample_c[f, rows]
            _check_block(raw, "sample", finite=True, nonnegative=not allow_negative,
                         hint=sample_hint)
            t = out_c[f, rows]
            # Cast and subtract in one pass; divide rather than multiply by a reciprocal so
            # that a sample equal to the open beam gives exactly 1.
            if dcs is not None:
                np.subtract(raw, dcs[rows], out=t, casting="unsafe")
            else:
                np.copyto(t, raw, casting="unsafe")
            t /= den[rows]
            if factors is not None:
                t *= factors
            # A cheap NaN-ignoring extreme first: most blocks need only one of the counts.
            if np.fmin.reduce(t, axis=None) <= 0:
                counts["nonpositive"] += int(np.count_nonzero(t <= 0))
            if np.fmax.reduce(t, axis=None) > 1:
                counts["above_one"] += int(np.count_nonzero(t > 1))
            if clip is not None:
                np.clip(t, clip[0], clip[1], out=t)
            if log:
                counts["log_undefined"] += _minus_log_inplace(t, floor)
            done += 1
            if progress is not None:
                progress(done, total)

    n_pixels = int(sample_arr.size)
    n_guarded = n_guarded_ref * layout.n_frames
    stats: dict[str, Any] = {
        "n_pixels": n_pixels,
        "n_guarded": n_guarded,
        "n_nonpositive": counts["nonpositive"],
        "n_above_one": counts["above_one"],
        "fraction_guarded": n_guarded / n_pixels,
        "fraction_nonpositive": counts["nonpositive"] / n_pixels,
        "fraction_above_one": counts["above_one"] / n_pixels,
        "fraction_open_beam_not_brighter": not_brighter,
        "combine": method,
        "n_open_beam_frames": n_ob,
        "n_dark_frames": n_dc,
        "guard": guard,
        "exposure": times,
        "scale_factors": {
            "open_beam_to_sample": t_s / t_ob,
            "dark_to_sample": t_s / t_dc if dcs is not None else None,
            "dark_to_open_beam": t_ob / t_dc if dcs is not None else None,
        },
        "dose_roi": None if roi is None else [[roi[0].start, roi[0].stop],
                                              [roi[1].start, roi[1].stop]],
        "dose_factors": None if roi is None else _shaped(dose, layout),
        "frame_axis": layout.frame_axis,
        "spectral_axis": layout.spectral_axis,
        "log": bool(log),
        "floor": floor,
        "clip": None if clip is None else list(clip),
    }
    if log:
        stats["n_log_undefined"] = counts["log_undefined"]
    return out, stats


def _frames_first(array: np.ndarray, layout: _Layout) -> np.ndarray:
    if layout.frame_axis is None:
        return array[np.newaxis]
    return np.moveaxis(array, layout.frame_axis, 0)


def _dose_factors(sample_c: np.ndarray, den: np.ndarray, dcs: np.ndarray | None,
                  roi: tuple[slice, slice], allow_negative: bool, hint: str) -> np.ndarray:
    """Per frame and bin: ROI mean of (I - DC) over ROI mean of the scaled (OB - DC)."""
    den_roi = den[roi]
    valid = np.isfinite(den_roi)
    n_valid = valid.sum(axis=(0, 1))
    if np.any(n_valid == 0):
        raise ValueError("dose_roi holds only guarded pixels (open beam at or below guard); "
                         "choose a region the beam reaches")
    den_sum = np.where(valid, den_roi, 0).sum(axis=(0, 1), dtype=np.float64)
    factors = np.empty((sample_c.shape[0], den.shape[-1]), dtype=np.float64)
    for f in range(sample_c.shape[0]):
        raw = sample_c[f][roi]
        _check_block(raw, "sample", finite=True, nonnegative=not allow_negative, hint=hint)
        num = raw.astype(np.float32)
        if dcs is not None:
            num -= dcs[roi]
        num_sum = np.where(valid, num, 0).sum(axis=(0, 1), dtype=np.float64)
        ratio = num_sum / den_sum
        if not np.all(ratio > 0):
            where = f"frame {f}" if sample_c.shape[0] > 1 else "the sample"
            raise ValueError(f"in {where} the dark-subtracted counts inside dose_roi are not "
                             "positive; choose a region the beam reaches without the sample")
        factors[f] = ratio
    return factors


def _shaped(dose: np.ndarray, layout: _Layout) -> Any:
    shape = tuple(n for n, axis in ((layout.n_frames, layout.frame_axis),
                                    (layout.n_bins, layout.spectral_axis)) if axis is not None)
    return dose.reshape(shape).tolist()
