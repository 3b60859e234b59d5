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
    TRUNCATE,
    FeatureSpec,
    _components,
    neighbour_offsets,
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

    Returns
    -------
    features : (M, N[, P], F) float32 ndarray
        Columns in the order of ``spec.names(n_channels, ndim)``.

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
    """
    if not isinstance(spec, FeatureSpec):
        raise TypeError(f"spec must be a FeatureSpec, got {type(spec).__name__}")
    channels = _channels(image, channel_axis)
    ndim = channels[0].ndim
    relative = relative_spacing(spacing, ndim)
    step = np.ones(ndim) if spacing is None else np.asarray(spacing, dtype=float).ravel()
    shape = channels[0].shape
    n_features = spec.n_features(len(channels), ndim)
    out = np.empty(shape + (n_features,), dtype=_F32)

    per_scale = sum(_components(f, ndim) for f in spec.filters)
    per_channel = (int(spec.raw) + per_scale * len(spec.scales) + len(spec.local_stats)
                   + len(neighbour_offsets(spec.neighbourhood, ndim)))
    tasks = []
    for c, chan in enumerate(channels):
        base = c * per_channel
        k = base
        if spec.raw:
            out[..., k] = chan
            k += 1
        for j, s in enumerate(spec.scales):
            tasks.append((chan, s, base + int(spec.raw), j))
        k += per_scale * len(spec.scales)
        for stat in spec.local_stats:
            out[..., k] = _local_stat(chan, stat, spec.window)
            k += 1
        for off in neighbour_offsets(spec.neighbourhood, ndim):
            out[..., k] = _shifted(chan, off, spec.neighbourhood)
            k += 1

    if tasks:
        def run(task: tuple[np.ndarray, float, int, int]) -> None:
            chan, s, start, j = task
            _scale_block(chan, spec.filters, s, j, len(spec.scales), relative,
                         spec.structure_outer, out, start)

        workers = _n_threads(n_threads, len(tasks))
        if workers == 1:
            for t in tasks:
                run(t)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run, tasks))

    if spec.position:
        start = np.zeros(ndim, dtype=int) if origin is None else _origin(origin, ndim)
        k = per_channel * len(channels)
        for axis in range(ndim):
            coords = (np.arange(shape[axis], dtype=np.float64) + start[axis]) * step[axis]
            view = [1] * ndim
            view[axis] = shape[axis]
            out[..., k + axis] = coords.astype(_F32).reshape(view)
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


def _scale_block(image: np.ndarray, filters: Sequence[str], s: float, j: int, n_scales: int,
                  relative: np.ndarray, outer: float, out: np.ndarray, start: int) -> None:
    """All filters at scale number ``j``, written to their columns of ``out``.

    Columns are grouped by filter, then scale, then component: filter ``f`` with ``n``
    components at scale ``j`` starts at ``start + (earlier filters' components) * n_scales
    + j * n``.
    """
    ndim = image.ndim
    sigma = s / relative
    axes = range(ndim)

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

    k = start
    for name in filters:
        n = _components(name, ndim)
        target = [k + j * n + i for i in range(n)]
        if name == "gaussian":
            out[..., target[0]] = deriv((0,) * ndim)
        elif name == "dog":
            wide = gaussian_derivative(image, DOG_RATIO * sigma, (0,) * ndim, relative)
            np.subtract(deriv((0,) * ndim), wide, out=wide)
            out[..., target[0]] = wide
        elif name == "gradient":
            total = np.zeros(image.shape, dtype=_F32)
            for a in axes:
                d = deriv(unit(a))
                total += d * d
            out[..., target[0]] = np.sqrt(total, out=total)
        elif name == "log":
            total = np.zeros(image.shape, dtype=_F32)
            for a in axes:
                total += deriv(unit(a, 2))
            out[..., target[0]] = total
        elif name == "hessian":
            elems = []
            for a, b in combinations_with_replacement(axes, 2):
                order = [0] * ndim
                order[a] += 1
                order[b] += 1
                elems.append(deriv(tuple(order)))
            _write_eigenvalues(elems, out, target)
        elif name == "structure":
            elems = []
            for a, b in combinations_with_replacement(axes, 2):
                product = deriv(unit(a)) * deriv(unit(b))
                ndi.gaussian_filter(product, outer * sigma, output=product, mode="reflect",
                                    truncate=TRUNCATE)
                elems.append(product)
            _write_eigenvalues(elems, out, target)
        k += n * n_scales


def _write_eigenvalues(elems: list[np.ndarray], out: np.ndarray, target: list[int]) -> None:
    for column, values in zip(target, symmetric_eigenvalues(elems)):
        out[..., column] = values


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
