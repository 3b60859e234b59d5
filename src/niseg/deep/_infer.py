"""Sliding-window inference of a network with Gaussian blending and mirroring.

The image is covered by patches on a regular grid with ``step = patch * (1 - overlap)``; each
patch's class probabilities are weighted by a Gaussian importance map (highest in the patch
centre, where the network sees the most context) and the weighted sums are divided by the
summed weights.

The grid is anchored to absolute image coordinates: patch starts are the multiples of the step
counted from the image origin, and the grid runs past the image end into reflect padding
instead of squeezing the last patch against the border. A crop of the image that starts at a
multiple of the step (or that passes its ``origin``) therefore sees the same patches at the same
places as the whole image, so predicting in tiles with :func:`niseg.tiling.predict_tiled` gives
the untiled probabilities within rounding (1e-5) when the tile size is a multiple of the step
and the halo is :func:`tiling_halo` (which is itself a multiple of the step, at least a patch
minus one pixel): every patch that covers a kept pixel then lies entirely inside the block.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["gaussian_importance", "sliding_window_proba", "tiling_halo", "window_step"]

# Patch edges of the Gaussian map fall to exp(-8) per axis; a floor keeps the summed weight of
# pixels seen only by patch corners (image corners in 3D) well above float32 underflow.
_MIN_WEIGHT = 1e-6


def _as_patch(patch: int | Sequence[int], ndim: int | None = None) -> tuple[int, ...]:
    if isinstance(patch, (int, np.integer)) and not isinstance(patch, bool):
        if ndim is None:
            raise ValueError("patch must be a sequence of sizes when the number of spatial "
                             "axes is not known")
        values = (int(patch),) * ndim
    else:
        try:
            values = tuple(int(p) for p in patch)  # type: ignore[union-attr]
        except TypeError:
            raise TypeError(f"patch must be an int or a sequence of ints, got {patch!r}") from None
        if ndim is not None and len(values) != ndim:
            raise ValueError(f"patch has {len(values)} sizes but the image has {ndim} spatial "
                             "axes")
    if not values or any(p < 1 for p in values):
        raise ValueError(f"patch sizes must be at least 1 pixel, got {values}")
    return values


def _check_overlap(overlap: float) -> float:
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float, np.integer,
                                                             np.floating)) \
            or not 0 <= float(overlap) < 1:
        raise ValueError(f"overlap must be a number from 0 to below 1, got {overlap!r}")
    return float(overlap)


def window_step(patch: int | Sequence[int], overlap: float = 0.5) -> tuple[int, ...]:
    """Distance between neighbouring patches of the sliding window, per axis.

    Parameters
    ----------
    patch : sequence of int
        Patch size per spatial axis.
    overlap : float, optional
        Fraction of a patch shared by neighbouring patches, from 0 to below 1.

    Returns
    -------
    tuple of int
        ``max(1, round(patch * (1 - overlap)))`` per axis.

    Examples
    --------
    >>> window_step((64, 48), 0.5)
    (32, 24)
    """
    sizes = _as_patch(patch)
    overlap = _check_overlap(overlap)
    return tuple(max(1, round(p * (1.0 - overlap))) for p in sizes)


def tiling_halo(patch: int | Sequence[int], overlap: float = 0.5) -> tuple[int, ...]:
    """Halo for tiled prediction that reproduces the untiled sliding window.

    The smallest multiple of the step that is at least ``patch - 1``: a block read with this
    halo around a core that starts at a multiple of the step contains every patch covering
    the core, and its own patch grid lines up with the grid of the whole image.

    Parameters
    ----------
    patch : sequence of int
        Patch size per spatial axis.
    overlap : float, optional
        Patch overlap, as in :func:`sliding_window_proba`.

    Returns
    -------
    tuple of int
        Halo per spatial axis, in pixels. Use tile sizes that are multiples of
        :func:`window_step` with it.

    Examples
    --------
    >>> tiling_halo((64, 64), 0.5)
    (64, 64)
    >>> tiling_halo((32, 48), 0.0)
    (32, 48)
    """
    sizes = _as_patch(patch)
    steps = window_step(sizes, overlap)
    return tuple(math.ceil(max(p - 1, 1) / s) * s for p, s in zip(sizes, steps))


def gaussian_importance(patch: int | Sequence[int]) -> np.ndarray:
    """Gaussian importance map of a patch, σ = patch / 8 per axis, maximum 1.

    Parameters
    ----------
    patch : sequence of int
        Patch size per spatial axis.

    Returns
    -------
    (*patch) ndarray of float32
        Separable Gaussian centred on the patch, scaled to a maximum of 1 and floored at 1e-6.

    Examples
    --------
    >>> w = gaussian_importance((8, 8))
    >>> w.shape, w.dtype, float(w.max()), bool(w[0, 0] < w[4, 4])
    ((8, 8), dtype('float32'), 1.0, True)
    """
    sizes = _as_patch(patch)
    weights = np.ones((), dtype=np.float64)
    for p in sizes:
        x = np.arange(p, dtype=np.float64) - (p - 1) / 2.0
        sigma = p / 8.0
        g = np.exp(-0.5 * (x / sigma) ** 2)
        weights = np.multiply.outer(weights, g / g.max())
    return np.maximum(weights, _MIN_WEIGHT).astype(np.float32)


def _resolve_device(device: Any) -> Any:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was requested but PyTorch sees no CUDA GPU; "
                             "use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist: PyTorch sees "
                             f"{torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return dev


def _spatial_dims(net: Any, image: np.ndarray, patch: Any, spatial_dims: int | None) -> int:
    if spatial_dims is None and not isinstance(patch, (int, np.integer)):
        spatial_dims = len(tuple(patch))
    if spatial_dims is None:
        spatial_dims = getattr(net, "spatial_dims", None)
    if spatial_dims is None and image.ndim == 2:
        spatial_dims = 2
    if spatial_dims is None:
        raise ValueError(f"image has shape {image.shape}, which is ambiguous: give patch as "
                         "one size per spatial axis or pass spatial_dims")
    if int(spatial_dims) not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return int(spatial_dims)


def _patch_starts(n: int, p: int, step: int, offset: int) -> tuple[list[int], int, int]:
    """Patch starts in padded coordinates, and the padding before and after the axis.

    ``offset`` is the absolute coordinate of the first pixel modulo the step.
    """
    before = offset
    count = max(1, math.ceil((before + n - p) / step) + 1)
    after = (count - 1) * step + p - before - n
    return [i * step for i in range(count)], before, max(after, 0)


def _forward(net: Any, batch: Any, mirror_axes: list[tuple[int, ...]]) -> Any:
    import torch

    total = None
    for axes in mirror_axes:
        x = torch.flip(batch, axes) if axes else batch
        logits = net(x)
        if logits.shape[0] != batch.shape[0] or logits.shape[2:] != batch.shape[2:]:
            raise ValueError(f"net maps patches of shape {tuple(batch.shape)} to "
                             f"{tuple(logits.shape)}; expected logits of shape (B, K, "
                             f"{', '.join(str(s) for s in batch.shape[2:])})")
        logits = logits.float()
        if logits.shape[1] == 1:
            # One logit is a binary model trained with BCE: class 1 is its sigmoid.
            fg = torch.sigmoid(logits)
            proba = torch.cat([1.0 - fg, fg], dim=1)
        else:
            proba = torch.softmax(logits, dim=1)
        if axes:
            proba = torch.flip(proba, axes)
        total = proba if total is None else total + proba
    return total / len(mirror_axes)


def sliding_window_proba(
    net: Any,
    image: Any,
    *,
    patch: int | Sequence[int],
    overlap: float = 0.5,
    batch_size: int = 4,
    mirror: bool = False,
    device: Any = "cpu",
    n_classes: int | None = None,
    size_multiple: int | Sequence[int] = 1,
    origin: int | Sequence[int] = 0,
    spatial_dims: int | None = None,
) -> np.ndarray:
    """Class probabilities of a whole image from a network applied patch by patch.

    Parameters
    ----------
    net : torch.nn.Module
        Maps ``(B, C, *patch)`` float32 inputs to ``(B, K, *patch)`` logits. A single logit
        channel is read as a binary model (probabilities ``1 - sigmoid``, ``sigmoid``). It is
        moved to ``device`` and run in eval mode without gradients; its training flag is
        restored afterwards.
    image : (C, M, N[, P]) or (M, N[, P]) ndarray
        One normalized image, channels first when there are channels.
    patch : int or sequence of int
        Patch size per spatial axis, a multiple of ``size_multiple``. Axes shorter than a
        patch are reflect-padded up to it and cropped afterwards.
    overlap : float, optional
        Fraction of a patch shared by neighbours (step = ``patch * (1 - overlap)``).
    batch_size : int, optional
        Patches per forward pass.
    mirror : bool, optional
        Test-time augmentation: average the probabilities over all flips of the spatial axes
        (4 passes in 2D, 8 in 3D).
    device : str or torch.device, optional
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    n_classes : int, optional
        Expected number of classes K; a network giving another number raises ValueError.
    size_multiple : int or sequence of int, optional
        Input sizes the network accepts are multiples of this (2**pooling steps of a U-Net).
    origin : int or sequence of int, optional
        Absolute coordinate of ``image``'s first pixel when it is a crop of a larger image;
        patches are placed on the grid of the larger image, so that crops reproduce its
        prediction (see the module notes).
    spatial_dims : int, optional
        Number of spatial axes (2 or 3), when neither ``patch`` (a sequence) nor
        ``net.spatial_dims`` tells it.

    Returns
    -------
    (M, N[, P], K) ndarray of float32
        Probabilities with classes on the last axis; they sum to 1 over the classes.

    Examples
    --------
    >>> import numpy as np, torch
    >>> net = torch.nn.Conv2d(1, 3, 3, padding=1)
    >>> image = np.random.default_rng(0).normal(size=(40, 50)).astype(np.float32)
    >>> proba = sliding_window_proba(net, image, patch=(16, 16))
    >>> proba.shape, proba.dtype, bool(np.allclose(proba.sum(-1), 1, atol=1e-5))
    ((40, 50, 3), dtype('float32'), True)
    """
    import torch

    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"image must hold numbers, got dtype {arr.dtype}")
    sd = _spatial_dims(net, arr, patch, spatial_dims)
    if arr.ndim == sd:
        arr = arr[None]
    elif arr.ndim != sd + 1:
        raise ValueError(f"image has shape {arr.shape} but a {sd}D network needs (C, *spatial) "
                         f"or (*spatial) with {sd} spatial axes")
    spatial = arr.shape[1:]
    if any(n < 1 for n in spatial):
        raise ValueError(f"image has shape {arr.shape}, with an empty spatial axis")
    sizes = _as_patch(patch, sd)
    multiple = _as_patch(size_multiple, sd)
    if any(p % m for p, m in zip(sizes, multiple)):
        raise ValueError(f"patch {sizes} must be a multiple of the network's size multiple "
                         f"{multiple}")
    steps = window_step(sizes, overlap)
    origins = (origin,) * sd if isinstance(origin, (int, np.integer)) else tuple(origin)
    if len(origins) != sd:
        raise ValueError(f"origin has {len(origins)} values but there are {sd} spatial axes")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
    dev = _resolve_device(device)

    grids, pads = [], []
    for n, p, s, o in zip(spatial, sizes, steps, origins):
        starts, before, after = _patch_starts(int(n), p, s, int(o) % s)
        grids.append(starts)
        pads.append((before, after))
    data = np.asarray(arr, dtype=np.float32)
    # Reflect padding continues structures smoothly; np.pad reflects repeatedly when the
    # padding is longer than the axis. A one-pixel axis can only be repeated.
    padded = data
    for axis, (n, pad) in enumerate(zip(spatial, pads), start=1):
        widths = [(0, 0)] * padded.ndim
        widths[axis] = pad
        padded = np.pad(padded, widths, mode="reflect" if n > 1 else "edge")
    weight = gaussian_importance(sizes)
    weight_t = torch.from_numpy(weight).to(dev)
    mirror_axes = [()]
    if mirror:
        mirror_axes = [axes for r in range(sd + 1)
                       for axes in itertools.combinations(range(2, sd + 2), r)]

    was_training = net.training
    net.to(dev)
    net.eval()
    accum: Any = None
    norm = torch.zeros(padded.shape[1:], dtype=torch.float32, device=dev)
    corners = list(itertools.product(*grids))
    try:
        with torch.no_grad():
            for first in range(0, len(corners), int(batch_size)):
                chunk = corners[first:first + int(batch_size)]
                windows = [tuple(slice(c, c + p) for c, p in zip(corner, sizes))
                           for corner in chunk]
                batch = torch.from_numpy(
                    np.stack([padded[(slice(None), *w)] for w in windows])).to(dev)
                try:
                    proba = _forward(net, batch, mirror_axes)
                except RuntimeError as exc:
                    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise ValueError(f"net failed on patches of shape {tuple(batch.shape)} "
                                     f"({first_line})") from None
                if accum is None:
                    k = int(proba.shape[1])
                    if n_classes is not None and k != int(n_classes):
                        raise ValueError(f"net gives {k} class probabilities but n_classes is "
                                         f"{n_classes}")
                    accum = torch.zeros((k, *padded.shape[1:]), dtype=torch.float32,
                                        device=dev)
                for i, w in enumerate(windows):
                    accum[(slice(None), *w)] += proba[i] * weight_t
                    norm[w] += weight_t
    finally:
        net.train(was_training)
    crop = tuple(slice(b, b + int(n)) for (b, _), n in zip(pads, spatial))
    result = (accum[(slice(None), *crop)] / norm[crop]).cpu().numpy()
    return np.ascontiguousarray(np.moveaxis(result, 0, -1), dtype=np.float32)
