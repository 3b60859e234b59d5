"""The filter bank: multi-scale Gaussian filters, eigenvalues, local statistics, shifts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations_with_replacement

import numpy as np
from scipy import ndimage as ndi

from ._spec import (
    DOG_RATIO,
    FILTERS,
    TRUNCATE,
    FeatureSpec,
    check_columns,
    column_layout,
    relative_spacing,
)

_F32 = np.float32


def compute_features(
    image: np.ndarray,
    spec: FeatureSpec,
    *,
    channel_axis: int | None = None,
    spacing: Sequence[float] | None = None,
    n_threads: int | None = None,
    origin: Sequence[int] | None = None,
    columns: Sequence[int] | None = None,
) -> np.ndarray:
    """Stack the features of ``spec`` for every pixel of a 2D or 3D, one- or multi-channel image.

    All filters use ``mode="reflect"`` and nothing depends on the image as a whole, so the
    features of a crop padded by ``spec.halo`` pixels equal the full image's features in the
    crop's core bit for bit. Each (channel, scale) pair runs in its own thread.

    Anisotropic voxels: sigma is in pixels of the finest axis; on an axis whose pixels are
    ``k`` times larger it is ``sigma / k``, and derivatives are per unit length of the
    finest axis, so a structure looks the same whatever the sampling.

    Parameters
    ----------
    image : (M, N[, P]) ndarray, or with one more channel axis
        Finite numeric values; integers are converted to float32 without rescaling.
    spec : FeatureSpec
        Filters, scales and extras.
    channel_axis : int, optional
        The channel axis of a multi-channel image; features are computed per channel.
    spacing : sequence of float, optional
        Pixel size along each spatial axis.
    n_threads : int, optional
        Worker threads (default: the number of CPUs, at most one per task).
    origin : sequence of int, optional
        Index of ``image``'s first pixel in a larger image, so that position features of a
        tile match the full image's.
    columns : sequence of int, optional
        Compute only these columns (indices into ``spec.names(n_channels, ndim)``), in the
        order given; the result equals ``compute_features(...)[..., columns]`` bit for bit,
        and (channel, filter, scale) groups that no column needs are not computed.

    Returns
    -------
    features : (M, N[, P], F) float32 ndarray
        Columns in the order of ``spec.names(n_channels, ndim)``, or of ``columns``.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.features import FeatureSpec, compute_features
    >>> img = np.zeros((32, 32), np.uint16); img[8:24, 8:24] = 1000
    >>> spec = FeatureSpec(filters=("gaussian", "hessian"), scales=(1.0, 2.0))
    >>> f = compute_features(img, spec)
    >>> f.shape, f.dtype, spec.names()[:3]
    ((32, 32, 7), dtype('float32'), ['raw', 'gaussian s=1', 'gaussian s=2'])
    >>> bool(np.all(f[..., 3] >= f[..., 4]))  # Hessian eigenvalues sorted descending
    True
    >>> bool(np.array_equal(compute_features(img, spec, columns=[4, 0]), f[..., [4, 0]]))
    True
    """
    if not isinstance(spec, FeatureSpec):
        raise TypeError(f"spec must be a FeatureSpec, got {type(spec).__name__}")
    channels = _channels(image, channel_axis)
    ndim = channels[0].ndim
    relative = relative_spacing(spacing, ndim)
    step = np.ones(ndim) if spacing is None else np.asarray(spacing, dtype=float).ravel()
    shape = channels[0].shape
    layout = column_layout(spec, len(channels), ndim)
    wanted = range(len(layout)) if columns is None else check_columns(columns, len(layout))
    out = np.empty(shape + (len(wanted),), dtype=_F32)

    # Where each requested column goes (a column asked twice goes to both places), grouped
    # so that a (channel, scale) pair nobody asked for is never filtered.
    targets: dict[tuple, list[int]] = {}
    for position, index in enumerate(wanted):
        targets.setdefault(layout[index], []).append(position)
    per_scale: dict[tuple[int, int], dict[tuple[str, int], list[int]]] = {}
    for column, positions in targets.items():
        kind = column[0]
        if kind == "filter":
            _, c, name, j, i = column
            per_scale.setdefault((c, j), {})[(name, i)] = positions
            continue
        if kind == "raw":
            values = channels[column[1]]
        elif kind == "stat":
            values = _local_stat(channels[column[1]], column[2], spec.window)
        elif kind == "shift":
            values = _shifted(channels[column[1]], column[2], spec.neighbourhood)
        else:
            axis = column[1]
            start = 0 if origin is None else _origin(origin, ndim)[axis]
            coords = (np.arange(shape[axis], dtype=np.float64) + start) * step[axis]
            view = [1] * ndim
            view[axis] = shape[axis]
            values = coords.astype(_F32).reshape(view)
        for p in positions:
            out[..., p] = values

    tasks = sorted(per_scale)
    if tasks:
        def run(task: tuple[int, int]) -> None:
            c, j = task
            _scale_block(channels[c], spec.scales[j], relative, spec.structure_outer,
                         per_scale[task], out)

        workers = _n_threads(n_threads, len(tasks))
        if workers == 1:
            for t in tasks:
                run(t)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run, tasks))
    return out


def _channels(image: np.ndarray, channel_axis: int | None) -> list[np.ndarray]:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a NumPy array, got {type(image).__name__}")
    if image.dtype.kind not in "biuf":
        raise TypeError(f"image must be a numeric array, got dtype {image.dtype}")
    if channel_axis is None:
        if image.ndim not in (2, 3):
            raise ValueError(f"image must be 2D (M, N) or 3D (M, N, P) without channel_axis, "
                             f"got shape {image.shape}")
        stack = [image]
    else:
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
            raise TypeError(f"channel_axis must be an integer or None, got {channel_axis!r}")
        if not -image.ndim <= channel_axis < image.ndim:
            raise ValueError(f"channel_axis {channel_axis} is out of range for an image of "
                             f"shape {image.shape}")
        if image.ndim - 1 not in (2, 3):
            raise ValueError(f"image with channel_axis must have 2 or 3 spatial axes, got "
                             f"shape {image.shape}")
        stack = list(np.moveaxis(image, channel_axis, 0))
    channels = []
    for i, chan in enumerate(stack):
        chan = np.ascontiguousarray(chan, dtype=_F32)
        if not np.all(np.isfinite(chan)):
            where = "image" if channel_axis is None else f"image channel {i}"
            raise ValueError(f"{where} contains NaN or infinite values; replace them first")
        channels.append(chan)
    return channels


def _n_threads(n_threads: int | None, n_tasks: int) -> int:
    if n_threads is None:
        return max(1, min(n_tasks, os.cpu_count() or 1))
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or (
            n_threads < 1):
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}")
    return int(min(n_threads, n_tasks))


def _origin(origin: Sequence[int], ndim: int) -> np.ndarray:
    values = np.asarray(origin).ravel()
    if values.size != ndim or values.dtype.kind not in "iu":
        raise ValueError(f"origin must be {ndim} integers (one per image axis), got {origin!r}")
    return values.astype(int)


def gaussian_derivative(image: np.ndarray, sigma: np.ndarray, order: Sequence[int],
                        relative: np.ndarray) -> np.ndarray:
    """Gaussian (derivative) of a float32 image, per unit length of the finest axis."""
    result = np.empty(image.shape, dtype=_F32)
    ndi.gaussian_filter(image, sigma, order=list(order), output=result, mode="reflect",
                        truncate=TRUNCATE)
    scale = float(np.prod(relative ** np.asarray(order)))
    if scale != 1.0:
        result /= _F32(scale)
    return result


def _scale_block(image: np.ndarray, s: float, relative: np.ndarray, outer: float,
                 wanted: dict[tuple[str, int], list[int]], out: np.ndarray) -> None:
    """The filters at scale ``s`` that ``wanted`` asks for, written to ``out``.

    ``wanted`` maps (filter name, component) to the output columns that receive it; filters
    with no wanted component are skipped, eigenvalue filters compute all components.
    """
    ndim = image.ndim
    sigma = s / relative
    axes = range(ndim)
    names = [f for f in FILTERS if any(key[0] == f for key in wanted)]

    def unit(axis: int, n: int = 1) -> tuple[int, ...]:
        order = [0] * ndim
        order[axis] = n
        return tuple(order)

    # One derivative per order, shared by the filters that use it.
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def deriv(order: tuple[int, ...]) -> np.ndarray:
        if order not in cache:
            cache[order] = gaussian_derivative(image, sigma, order, relative)
        return cache[order]

    def put(name: str, component: int, values: np.ndarray) -> None:
        for column in wanted.get((name, component), ()):
            out[..., column] = values

    for name in names:
        if name == "gaussian":
            put(name, 0, deriv((0,) * ndim))
        elif name == "dog":
            wide = gaussian_derivative(image, DOG_RATIO * sigma, (0,) * ndim, relative)
            np.subtract(deriv((0,) * ndim), wide, out=wide)
            put(name, 0, wide)
        elif name == "gradient":
            total = np.zeros(image.shape, dtype=_F32)
            for a in axes:
                d = deriv(unit(a))
                total += d * d
            put(name, 0, np.sqrt(total, out=total))
        elif name == "log":
            total = np.zeros(image.shape, dtype=_F32)
            for a in axes:
                total += deriv(unit(a, 2))
            put(name, 0, total)
        elif name == "hessian":
            elems = []
            for a, b in combinations_with_replacement(axes, 2):
                order = [0] * ndim
                order[a] += 1
                order[b] += 1
                elems.append(deriv(tuple(order)))
            for i, values in enumerate(symmetric_eigenvalues(elems)):
                put(name, i, values)
        elif name == "structure":
            elems = []
            for a, b in combinations_with_replacement(axes, 2):
                product = deriv(unit(a)) * deriv(unit(b))
                ndi.gaussian_filter(product, outer * sigma, output=product, mode="reflect",
                                    truncate=TRUNCATE)
                elems.append(product)
            for i, values in enumerate(symmetric_eigenvalues(elems)):
                put(name, i, values)


def symmetric_eigenvalues(elems: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Eigenvalues, descending, of 2x2 or 3x3 symmetric matrices given by their upper
    triangle in row order (``[a, b, c]`` for ``[[a, b], [b, c]]``; ``[a, b, c, d, e, f]``
    for ``[[a, b, c], [b, d, e], [c, e, f]]``), in closed form, element-wise.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.features import symmetric_eigenvalues
    >>> [float(v) for v in symmetric_eigenvalues([np.array(2.0), np.array(1.0), np.array(2.0)])]
    [3.0, 1.0]
    """
    if len(elems) == 3:
        a, b, c = elems
        half = (a + c) / 2
        root = np.hypot((a - c) / 2, b)
        return [half + root, half - root]
    if len(elems) != 6:
        raise ValueError(f"elems must hold the 3 or 6 upper-triangle entries, got {len(elems)}")
    a, b, c, d, e, f = elems
    # Trigonometric solution of the characteristic cubic (Smith 1961) on the shifted,
    # scaled matrix B = (A - q I) / p, whose eigenvalues are 2 cos(phi + 2 pi k / 3).
    q = (a + d + f) / 3
    a_, d_, f_ = a - q, d - q, f - q
    p = np.sqrt((a_ * a_ + d_ * d_ + f_ * f_ + 2 * (b * b + c * c + e * e)) / 6)
    safe = np.where(p > 0, p, 1).astype(p.dtype, copy=False)
    det = (a_ * (d_ * f_ - e * e) - b * (b * f_ - e * c) + c * (b * e - d_ * c)) / (safe ** 3)
    r = np.clip(det / 2, -1, 1)
    phi = np.arccos(r) / 3
    two_p = 2 * p
    first = q + two_p * np.cos(phi)
    last = q + two_p * np.cos(phi + np.asarray(2 * np.pi / 3, dtype=phi.dtype))
    middle = 3 * q - first - last
    return [first, middle, last]


def _local_stat(image: np.ndarray, stat: str, window: int) -> np.ndarray:
    size = (window,) * image.ndim
    if stat == "mean":
        return ndi.uniform_filter(image, size, output=_F32, mode="reflect")
    if stat == "variance":
        # E[x^2] - E[x]^2 cancels catastrophically in float32 for large offsets (counts).
        x = image.astype(np.float64)
        mean = ndi.uniform_filter(x, size, mode="reflect")
        var = ndi.uniform_filter(x * x, size, mode="reflect") - mean * mean
        return np.maximum(var, 0).astype(_F32)
    if stat == "min":
        return ndi.minimum_filter(image, size, mode="reflect")
    if stat == "max":
        return ndi.maximum_filter(image, size, mode="reflect")
    return ndi.median_filter(image, size, mode="reflect")


def _shifted(image: np.ndarray, offset: Sequence[int], radius: int) -> np.ndarray:
    # ndimage's "reflect" is NumPy's "symmetric" padding.
    padded = np.pad(image, radius, mode="symmetric")
    index = tuple(slice(radius + o, radius + o + n) for o, n in zip(offset, image.shape))
    return padded[index]
