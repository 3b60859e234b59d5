"""Figures of threshold results: every automatic method side by side with the histogram."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from niseg.report._figures import _as_2d, _for_display, _robust_limits

__all__ = ["threshold_methods_figure"]


def threshold_methods_figure(
    image: Any,
    results: Mapping[str, tuple[Any, float | None, str | None]],
    *,
    title: str | None = None,
) -> Figure:
    """Threshold methods side by side: the histogram with every level, then one mask each.

    Parameters
    ----------
    image : (M, N) ndarray
        The thresholded image (2D; pass one slice of a volume).
    results : mapping of str to (labels, level, reason)
        Per method: its (M, N) binary result and level, or ``(None, None, reason)`` where the
        method failed -- the output of :func:`niseg.threshold.try_all_thresholds`.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        A figure on its own Agg canvas; save it with :func:`niseg.report.save_figure`.

    Examples
    --------
    >>> from niseg.threshold import try_all_thresholds
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(0, 0.1, (32, 32)); image[8:24, 8:24] += 1
    >>> fig = threshold_methods_figure(image, try_all_thresholds(image))
    >>> len(fig.axes) >= 9
    True
    """
    img = _as_2d(image, "image").astype(np.float32)
    if not results:
        raise ValueError("results is empty; give at least one method's result")
    names = list(results)
    n_panels = len(names) + 1
    cols = min(4, n_panels)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(rows, cols, 1)
    finite = img[np.isfinite(img)]
    counts, edges = np.histogram(finite, bins=256)
    ax.stairs(counts, edges, fill=True, color="0.35")
    if counts.max() > 0:
        ax.set_yscale("log")
    for k, name in enumerate(names):
        level = results[name][1]
        if level is not None:
            ax.axvline(level, color=f"C{k % 10}", linestyle="--", label=f"{name} {level:.4g}")
    ax.legend(loc="best", fontsize="x-small")
    ax.set_title("histogram and levels")
    ax.set_xlabel("pixel value")
    lo, hi = _robust_limits(img)
    shown = _for_display(img)
    for k, name in enumerate(names):
        labels, level, reason = results[name]
        ax = fig.add_subplot(rows, cols, k + 2)
        ax.set_xticks([])
        ax.set_yticks([])
        if labels is None:
            ax.imshow(shown, cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(f"{name}: failed", color="C3", fontsize="small")
            ax.text(0.5, 0.5, str(reason)[:60], transform=ax.transAxes, ha="center",
                    va="center", wrap=True, fontsize="x-small", color="C3",
                    bbox={"facecolor": "white", "alpha": 0.8})
            continue
        mask = _as_2d(labels, f"results[{name!r}]", img.shape)
        ax.imshow(_for_display(mask != 0), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        fraction = float(np.count_nonzero(mask)) / mask.size
        ax.set_title(f"{name}: {level:.4g} ({100 * fraction:.1f} %)", color=f"C{k % 10}",
                     fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
