"""Overview figures of a segmentation, drawn on a bare Agg canvas (no pyplot state)."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from niseg import __version__
from niseg.io import atomic_output

# Panels show at most this many pixels per side; larger images are subsampled for display
# (histograms always use every pixel).
_MAX_DISPLAY = 1024
# Outlines are drawn per class up to this many classes; instance images get one outline.
_MAX_OUTLINED = 20
_FIGURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
_OVERLAY_ALPHA = 0.4
_TRUTH_OUTLINE = "white"


def _as_2d(arr: Any, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric or boolean array, got dtype {a.dtype}")
    if shape is None and a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2D (M, N) image but has shape {a.shape}; for a volume or a "
            "stack pass one slice, e.g. volume[volume.shape[0] // 2]"
        )
    if shape is not None and a.shape != shape:
        hint = "; pass one class, e.g. proba[..., 1]" if a.ndim == 3 and name == "proba" else ""
        raise ValueError(f"{name} has shape {a.shape} but image has shape {shape}{hint}")
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    return a


def _for_display(a: np.ndarray) -> np.ndarray:
    step = max(1, math.ceil(max(a.shape) / _MAX_DISPLAY))
    return a[::step, ::step]


def _robust_limits(image: np.ndarray) -> tuple[float, float]:
    finite = image[np.isfinite(image)] if image.dtype.kind == "f" else image.ravel()
    if finite.size == 0:
        raise ValueError("image has no finite values to show")
    lo, hi = (float(v) for v in np.percentile(finite, [1, 99]))
    if hi <= lo:  # (nearly) constant image: still show something
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def _label_values(labels: np.ndarray, name: str) -> np.ndarray:
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError(f"{name} contains NaN values")
    values = np.unique(labels)
    return values[values != 0]


class _Palette:
    """Qualitative colours for label values, the same value getting the same colour everywhere.

    When every labelled image is binary ({0, v}), all foreground values share the first colour,
    so a 0/255 truth and a 0/1 result look alike.
    """

    def __init__(self, labelled: Sequence[np.ndarray]) -> None:
        self.values = np.unique(np.concatenate(labelled)) if labelled else np.zeros(0)
        self.binary = all(v.size <= 1 for v in labelled)
        colours = matplotlib.colormaps["tab10" if self.values.size <= 10 else "tab20"].colors
        self.colours = np.array([matplotlib.colors.to_rgba(c) for c in colours], dtype=np.float32)

    def colour_index(self, values: np.ndarray) -> np.ndarray:
        if self.binary:
            return np.zeros(values.shape, dtype=np.intp)
        return np.searchsorted(self.values, values) % len(self.colours)

    def rgba(self, labels: np.ndarray, *, background: tuple[float, ...]) -> np.ndarray:
        out = np.empty(labels.shape + (4,), dtype=np.float32)
        out[:] = background
        foreground = labels != 0
        out[foreground] = self.colours[self.colour_index(labels[foreground])]
        return out

    def colour_of(self, value: Any) -> np.ndarray:
        return self.colours[int(self.colour_index(np.array([value]))[0])]


def _outline(ax: Any, labels: np.ndarray, values: np.ndarray, colours: list, **style: Any) -> None:
    """Contour lines around each labelled region (vector lines stay visible when scaled down)."""
    if values.size > _MAX_OUTLINED:
        values, colours = np.array([0]), [colours[0]]
        regions = [labels != 0]
    else:
        regions = [labels == v for v in values]
    for region, colour in zip(regions, colours):
        if region.any() and not region.all():
            ax.contour(region.astype(np.float32), levels=[0.5], colors=[colour], **style)


def _histogram(ax: Any, image: np.ndarray, levels: list[float]) -> None:
    finite = image[np.isfinite(image)] if image.dtype.kind == "f" else image.ravel()
    lo, hi = float(finite.min()), float(finite.max())
    if image.dtype.kind in "biu" and hi - lo <= 256:
        edges = np.arange(lo, hi + 2) - 0.5  # one bin per integer value
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1, 257)
    counts, edges = np.histogram(finite, bins=edges)
    ax.stairs(counts, edges, fill=True, color="0.35")
    if counts.max() > 0:
        ax.set_yscale("log")
    for k, level in enumerate(levels):
        ax.axvline(level, color=f"C{(k + 1) % 10}", linestyle="--", label=f"level {level:.4g}")
    if levels:
        ax.legend(loc="best", fontsize="small")
    ax.set_xlabel("pixel value")
    ax.set_ylabel("pixels (log scale)")
    ax.set_title("histogram")


def _check_levels(levels: Any) -> list[float]:
    if levels is None:
        return []
    items = [levels] if isinstance(levels, (Real, np.number)) else list(np.ravel(levels))
    out = []
    for v in items:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (Real, np.number)):
            raise TypeError(f"levels must be numbers, got {v!r}")
        if not math.isfinite(float(v)):
            raise ValueError(f"levels must be finite numbers, got {v!r}")
        out.append(float(v))
    return out


def overview_figure(
    image: Any,
    *,
    truth: Any = None,
    result: Any = None,
    proba: Any = None,
    levels: float | Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """Side-by-side panels of an image, its segmentation, ground truth and histogram.

    Panels, in order (one axes each, no colour bars): the image (grayscale, contrast from the
    1st to the 99th percentile), the truth and the result (if given; label 0 black, classes in
    qualitative colours, the same value in the same colour), the probability map (if given),
    an overlay (if truth or result is given: result colours and outlines over the image, truth
    outlined in dashed white) and the histogram of the image with dashed lines at ``levels``.

    Parameters
    ----------
    image : (M, N) ndarray
        The image (2D only: for a volume pass one slice, e.g. ``volume[k]``). NaN pixels are
        left blank. Images larger than 1024 pixels per side are subsampled for display.
    truth, result : (M, N) ndarray, optional
        Ground-truth and result label images (binary or multi-class; 0 = background).
    proba : (M, N) ndarray, optional
        Foreground probability map (for a multi-class map pass one class, ``proba[..., k]``).
    levels : float or sequence of float, optional
        Threshold values to mark on the histogram.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        A figure on its own Agg canvas, not registered with pyplot: save it with
        :func:`save_figure` or :func:`figure_to_png_bytes`.

    Examples
    --------
    >>> yy, xx = np.mgrid[:64, :64]
    >>> image = np.hypot(yy - 32, xx - 32).astype(np.float32)
    >>> result = (image < 20).astype(np.uint8)
    >>> fig = overview_figure(image, result=result, levels=[20.0], title="disc")
    >>> len(fig.axes)
    4
    """
    img = _as_2d(image, "image")
    if img.dtype == bool:
        img = img.view(np.uint8)
    lbl_truth = None if truth is None else _as_2d(truth, "truth", img.shape)
    lbl_result = None if result is None else _as_2d(result, "result", img.shape)
    prob = None if proba is None else _as_2d(proba, "proba", img.shape)
    if prob is not None and prob.dtype.kind == "f" and np.isnan(prob).any():
        raise ValueError("proba contains NaN values")
    marks = _check_levels(levels)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")
    lo, hi = _robust_limits(img)

    values = {}
    for name, lbl in (("truth", lbl_truth), ("result", lbl_result)):
        if lbl is not None:
            values[name] = _label_values(lbl, name)
    palette = _Palette(list(values.values()))

    panels = ["image"]
    panels += [name for name in ("truth", "result") if name in values]
    panels += ["proba"] if prob is not None else []
    panels += ["overlay"] if values else []
    panels += ["histogram"]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.8 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title)

    shown = _for_display(img).astype(np.float32, copy=False)
    black = (0.0, 0.0, 0.0, 1.0)
    clear = (0.0, 0.0, 0.0, 0.0)
    for k, panel in enumerate(panels, start=1):
        ax = fig.add_subplot(nrows, ncols, k)
        if panel == "histogram":
            _histogram(ax, img, marks)
            continue
        ax.set_axis_off()
        if panel == "image":
            ax.imshow(shown, cmap="gray", vmin=lo, vmax=hi)
            ax.set_title("image")
        elif panel in ("truth", "result"):
            lbl = _for_display(lbl_truth if panel == "truth" else lbl_result)
            ax.imshow(palette.rgba(lbl, background=black), interpolation="nearest")
            n = values[panel].size
            ax.set_title(f"{panel} ({n} class{'' if n == 1 else 'es'})")
        elif panel == "proba":
            p = _for_display(prob).astype(np.float32, copy=False)
            inside = float(p.min()) >= 0 and float(p.max()) <= 1
            ax.imshow(p, cmap="viridis", vmin=0 if inside else None, vmax=1 if inside else None)
            ax.set_title("probability" if inside else "score")
        else:
            ax.imshow(shown, cmap="gray", vmin=lo, vmax=hi)
            handles = []
            if lbl_result is not None:
                lbl = _for_display(lbl_result)
                fill = palette.rgba(lbl, background=clear)
                fill[..., 3] *= _OVERLAY_ALPHA
                ax.imshow(fill, interpolation="nearest")
                v = values["result"]
                _outline(ax, lbl, v, [palette.colour_of(x) for x in v], linewidths=1.0)
                handles.append(Line2D([], [], color=palette.colour_of(v[0] if v.size else 1)))
            if lbl_truth is not None:
                v = values["truth"]
                _outline(ax, _for_display(lbl_truth), v, [_TRUTH_OUTLINE] * max(v.size, 1),
                         linewidths=1.0, linestyles="dashed")
                handles.append(Line2D([], [], color=_TRUTH_OUTLINE, linestyle="--"))
            names = (["result"] if lbl_result is not None else []) + (
                ["truth"] if lbl_truth is not None else []
            )
            # Below the panel, so the key never hides part of the image.
            legend = ax.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                               ncols=2, fontsize="small", facecolor="0.25",
                               labelcolor="white", frameon=True)
            legend.get_frame().set_edgecolor("none")
            ax.set_title("overlay")
    return fig



def panels_figure(
    panels: Sequence[tuple[str, Any]],
    *,
    outlines: Sequence[tuple[str, Any]] = (),
    shared_contrast: Sequence[bool] | None = None,
    title: str | None = None,
) -> Figure:
    """A row of named grayscale images, e.g. the steps of a pipeline, with optional outlines.

    Each panel is shown with its own robust contrast (1st to 99th percentile); masks given in
    ``outlines`` are drawn as coloured contours on every panel, so a reader can follow the
    same objects (spots, segmented regions) through the steps.

    Parameters
    ----------
    panels : sequence of (str, (M, N) ndarray)
        Titles and images, all of the same shape (2D; pass one slice of a volume).
    outlines : sequence of (str, (M, N) ndarray[, sequence of int]), optional
        Names and masks (non-zero = inside) outlined in one colour each, on every panel or
        only on the panels whose indices are given as a third element.
    shared_contrast : sequence of bool, optional
        Panels marked True share one grey scale (the first marked panel's), so that values
        can be compared between them (e.g. before and after cleaning).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        A figure on its own Agg canvas (see :func:`save_figure`).

    Examples
    --------
    >>> raw = np.random.default_rng(0).random((32, 32))
    >>> fig = panels_figure([("raw", raw), ("smoothed", raw * 0.5)],
    ...                     outlines=[("mask", raw > 0.9)])
    >>> len(fig.axes)
    2
    """
    if not panels:
        raise ValueError("panels must hold at least one (title, image) pair")
    images = []
    for k, panel in enumerate(panels):
        if not (isinstance(panel, tuple) and len(panel) == 2 and isinstance(panel[0], str)):
            raise TypeError(f"panels[{k}] must be a (title, image) pair")
        shape = images[0].shape if images else None
        images.append(_as_2d(panel[1], f"panels[{k}]", shape))
    masks, where = [], []
    for k, outline in enumerate(outlines):
        if not (
            isinstance(outline, tuple) and len(outline) in (2, 3) and isinstance(outline[0], str)
        ):
            raise TypeError(f"outlines[{k}] must be a (name, mask) pair or (name, mask, panels)")
        masks.append(_as_2d(outline[1], f"outlines[{k}]", images[0].shape) != 0)
        on = range(len(images)) if len(outline) == 2 else [int(i) for i in outline[2]]
        if any(not 0 <= i < len(images) for i in on):
            raise ValueError(f"outlines[{k}] names a panel index outside 0..{len(images) - 1}")
        where.append(set(on))
    shared = list(shared_contrast) if shared_contrast is not None else [False] * len(images)
    if len(shared) != len(images):
        raise ValueError(f"shared_contrast has {len(shared)} values for {len(images)} panels")
    common = next((_robust_limits(im) for im, flag in zip(images, shared) if flag), None)

    ncols = min(4, len(images))
    nrows = math.ceil(len(images) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 3.6 * nrows + (0.4 if outlines else 0)),
                 layout="constrained")
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title)
    colours = [f"C{(k + 1) % 10}" for k in range(len(masks))]
    for k, ((name, _), image, flag) in enumerate(zip(panels, images, shared)):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        ax.set_axis_off()
        lo, hi = common if flag and common is not None else _robust_limits(image)
        ax.imshow(_for_display(image).astype(np.float32), cmap="gray", vmin=lo, vmax=hi)
        for mask, colour, on in zip(masks, colours, where):
            if k not in on:
                continue
            shown = _for_display(mask)
            if shown.any() and not shown.all():
                ax.contour(shown.astype(np.float32), levels=[0.5], colors=[colour],
                           linewidths=0.8)
        ax.set_title(name)
    if masks:
        handles = [Line2D([], [], color=c) for c in colours]
        fig.legend(handles, [outline[0] for outline in outlines], loc="outside lower center",
                   ncols=len(masks), fontsize="small", frameon=False)
    return fig

def _check_figure(fig: Any) -> Figure:
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    return fig


def _check_dpi(dpi: Any) -> float:
    if isinstance(dpi, bool) or not isinstance(dpi, (Real, np.number)) or not 1 <= dpi <= 2400:
        raise ValueError(f"dpi must be a number between 1 and 2400, got {dpi!r}")
    return float(dpi)


def _png_metadata() -> dict[str, str]:
    return {"Software": f"niseg {__version__} (matplotlib {matplotlib.__version__})"}


def figure_to_png_bytes(fig: Figure, *, dpi: float = 100) -> bytes:
    """Render a figure to PNG bytes (e.g. to embed in an HTML report).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    dpi : float
        Resolution in dots per inch.

    Returns
    -------
    bytes
        The PNG file contents.

    Examples
    --------
    >>> fig = overview_figure(np.arange(64.0).reshape(8, 8))
    >>> figure_to_png_bytes(fig)[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    _check_figure(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_check_dpi(dpi), metadata=_png_metadata())
    return buffer.getvalue()


def save_figure(
    fig: Figure, path: str | os.PathLike, *, overwrite: bool = False, dpi: float = 100
) -> Path:
    """Write a figure to a PNG (or PDF/SVG, by suffix) file, atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or PathLike
        Output file ending in ``.png``, ``.pdf`` or ``.svg``.
    overwrite : bool
        Replace an existing file.
    dpi : float
        Resolution in dots per inch (raster output).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "overview.png"
    >>> save_figure(overview_figure(np.eye(8)), out).read_bytes()[:4]
    b'\\x89PNG'
    """
    _check_figure(fig)
    path = Path(path)
    fmt = _FIGURE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"figure path must end in .png, .pdf or .svg, got '{path}'")
    dpi = _check_dpi(dpi)
    metadata = _png_metadata() if fmt == "png" else None
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
    return path
