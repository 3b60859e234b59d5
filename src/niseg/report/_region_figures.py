"""Figures of region-based segmentations: region boundaries over the image, means, classes."""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from niseg.report._figures import _as_2d, _for_display, _robust_limits

_BOUNDARY_COLOUR = (1.0, 0.85, 0.0, 1.0)


def _boundary_segments(regions: np.ndarray) -> np.ndarray:
    """Line segments (in imshow coordinates) along pixel edges between different regions."""
    iy, ix = np.nonzero(regions[1:, :] != regions[:-1, :])
    horizontal = np.stack([np.stack([ix - 0.5, iy + 0.5], 1), np.stack([ix + 0.5, iy + 0.5], 1)], 1)
    iy, ix = np.nonzero(regions[:, 1:] != regions[:, :-1])
    vertical = np.stack([np.stack([ix + 0.5, iy - 0.5], 1), np.stack([ix + 0.5, iy + 0.5], 1)], 1)
    return np.concatenate([horizontal, vertical]).astype(np.float32)


def region_overlay_figure(
    image: Any,
    regions: Any,
    *,
    mean_image: Any = None,
    classes: Any = None,
    class_names: Any = None,
    title: str | None = None,
) -> Figure:
    """Region boundaries (superpixels, quad-tree leaves) drawn over the image, with the
    region-mean image and a class map beside it when given.

    Parameters
    ----------
    image : (M, N) ndarray
        The grayscale image (one slice of a volume).
    regions : (M, N) integer ndarray
        Region number per pixel; boundaries are drawn between different numbers.
    mean_image : (M, N) ndarray, optional
        Each region at its mean value (shown with the image's grey scale).
    classes : (M, N) integer ndarray, optional
        Class per pixel, 1..K (0 = no class), shown in qualitative colours with boundaries.
    class_names : sequence of str, optional
        Names of classes 1..K for the legend.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One, two or three panels side by side.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.arange(64.0).reshape(8, 8)
    >>> regions = np.repeat(np.arange(1, 5), 16).reshape(8, 8)
    >>> fig = region_overlay_figure(image, regions, classes=(regions > 2) + 1)
    >>> len(fig.axes)
    2
    """
    img = _as_2d(image, "image").astype(np.float32)
    reg = _as_2d(regions, "regions", img.shape)
    if reg.dtype.kind not in "iub":
        raise TypeError(f"regions must be an integer label image, got dtype {reg.dtype}")
    panels: list[tuple[str, str, np.ndarray]] = [("regions", "image with region boundaries", img)]
    if mean_image is not None:
        panels.append(("mean", "region means", _as_2d(mean_image, "mean_image", img.shape)))
    if classes is not None:
        cls = _as_2d(classes, "classes", img.shape)
        if cls.dtype.kind not in "iub":
            raise TypeError(f"classes must be an integer label image, got dtype {cls.dtype}")
        panels.append(("classes", "classes", cls))
    lo, hi = _robust_limits(img)
    n_regions = int(np.unique(reg).size)
    fig = Figure(figsize=(4.2 * len(panels), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (kind, name, data) in zip(axes, panels):
        ax.set_axis_off()
        if kind == "regions":
            ax.imshow(_for_display(data), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            # Boundaries as thin vector lines between pixels, so that even one-pixel regions
            # leave the image visible (a painted boundary pixel would hide them).
            ax.add_collection(LineCollection(_boundary_segments(_for_display(reg)),
                                             colors=[_BOUNDARY_COLOUR], linewidths=0.6))
            ax.set_title(f"{name} ({n_regions} regions)")
        elif kind == "mean":
            ax.imshow(_for_display(data), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(name)
        else:
            shown = _for_display(data).astype(np.int64)
            k = max(int(shown.max()), 1)
            cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
            rgba = np.zeros(shown.shape + (4,), dtype=np.float32)
            for value in range(1, k + 1):
                rgba[shown == value] = cmap((value - 1) % cmap.N)
            ax.imshow(rgba, interpolation="nearest")
            ax.set_title(name)
            names = list(class_names) if class_names is not None else []
            handles = [matplotlib.patches.Patch(
                color=cmap((v - 1) % cmap.N),
                label=names[v - 1] if v - 1 < len(names) else f"class {v}")
                for v in range(1, k + 1) if (shown == v).any()]
            if handles and len(handles) <= 12:
                ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)
    if title:
        fig.suptitle(title)
    return fig
