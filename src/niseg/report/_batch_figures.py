"""Pictures of a batch run: thumbnails with the segmentation overlaid, histograms of per-file
numbers, a pooled confusion matrix and ROC curve."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from niseg.report._figures import _robust_limits

_OVERLAY_ALPHA = 0.45
_HIST_COLUMNS = 4


def plane_yx(array: Any, axes: str | None) -> np.ndarray:
    """One (y, x) plane of an image for display: the middle z/t slice, the mean over c/l.

    ``array`` may be a Dask array; only the plane is computed.
    """
    ndim = array.ndim
    if ndim < 2:
        raise ValueError(f"an image with shape {tuple(array.shape)} has no (y, x) plane")
    if not axes or len(axes) != ndim or "y" not in axes or "x" not in axes:
        axes = "?" * (ndim - 2) + "yx"
    index = tuple(slice(None) if a in "yxcl" else n // 2 for a, n in zip(axes, array.shape))
    kept = "".join(a for a in axes if a in "yxcl")
    plane = array[index]
    plane = np.asarray(plane.compute() if hasattr(plane, "compute") else plane)
    averaged = tuple(i for i, a in enumerate(kept) if a in "cl")
    if averaged:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN spectra stay NaN
            plane = np.nanmean(plane.astype(np.float32), axis=averaged)
        kept = "".join(a for a in kept if a not in "cl")
    return plane if kept == "yx" else plane.T


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    if factor == 1 or h == 0 or w == 0:
        return image[::factor, ::factor]
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # blocks of NaN stay NaN
        return np.nanmean(blocks, axis=(1, 3))


def class_colours(values: Sequence[int]) -> dict[int, np.ndarray]:
    """RGB (0..255) of each class value: tab10, class 1 first."""
    palette = colormaps["tab10"]
    return {int(v): np.asarray(palette((int(v) - 1) % 10)[:3]) * 255 for v in values}


def thumbnail_png(image: np.ndarray, segmentation: np.ndarray | None, *,
                  size: int = 160) -> bytes:
    """A grey thumbnail (longest side about ``size``) with the classes of ``segmentation``
    tinted, as PNG bytes; the image is averaged in blocks, the segmentation subsampled."""
    from PIL import Image

    factor = max(1, round(max(image.shape) / size))
    small = _block_mean(image.astype(np.float32, copy=False), factor)
    try:
        lo, hi = _robust_limits(small)
        grey = np.clip((small - lo) / (hi - lo), 0, 1)
    except ValueError:  # nothing finite to show
        grey = np.zeros(small.shape, np.float32)
    grey = np.nan_to_num(grey, nan=0.0)
    rgb = np.repeat(grey[..., None] * 255.0, 3, axis=2)
    if segmentation is not None:
        seg = segmentation[: small.shape[0] * factor: factor, : small.shape[1] * factor: factor]
        seg = seg[: small.shape[0], : small.shape[1]]
        values = [int(v) for v in np.unique(seg) if v != 0]
        for value, colour in class_colours(values).items():
            where = seg == value
            rgb[where] = (1 - _OVERLAY_ALPHA) * rgb[where] + _OVERLAY_ALPHA * colour
    buffer = io.BytesIO()
    Image.fromarray(np.round(rgb).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def histograms_figure(columns: Mapping[str, Sequence[float]]) -> Figure:
    """One histogram per named column of per-file numbers."""
    n = len(columns)
    ncols = min(n, _HIST_COLUMNS)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.0 * ncols, 2.5 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (name, values) in zip(axes, columns.items()):
        data = np.asarray(values, dtype=np.float64)
        data = data[np.isfinite(data)]
        ax.hist(data, bins=min(20, max(3, int(np.sqrt(data.size)) + 1)), color="tab:blue",
                edgecolor="white")
        ax.set_title(name, fontsize="small")
        ax.set_ylabel("files", fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig


def confusion_figure(confusion: np.ndarray, names: Sequence[str]) -> Figure:
    """Confusion matrix: colour = fraction of each truth class (row), text = pixel counts."""
    counts = np.asarray(confusion, dtype=np.int64)
    with np.errstate(all="ignore"):
        fractions = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    k = counts.shape[0]
    side = 1.2 + 0.9 * k
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    shown = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{counts[i, j]:,}\n{fractions[i, j]:.1%}", ha="center", va="center",
                    fontsize="small", color="white" if fractions[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), list(names), rotation=30, ha="right")
    ax.set_yticks(range(k), list(names))
    ax.set_xlabel("segmentation")
    ax.set_ylabel("truth")
    fig.colorbar(shown, ax=ax, label="fraction of the truth class")
    ax.set_title("Pixels of all evaluated files")
    return fig


def roc_figure(fpr: np.ndarray, tpr: np.ndarray, auc: float, n_files: int) -> Figure:
    """ROC curve of the pooled foreground probabilities against the truth."""
    fig = Figure(figsize=(4.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(fpr, tpr, color="tab:blue", label=f"AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], ":", color="0.5", label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(f"ROC, {n_files} file{'s' if n_files != 1 else ''}")
    ax.legend(loc="lower right")
    return fig
