"""Figures of objects (outlines and numbers) and of a method's robustness (score histogram)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from niseg.report._figures import _as_2d, _for_display, _robust_limits

# Numbers are written on at most this many objects; beyond that they hide the image.
_MAX_NUMBERED = 150


def objects_figure(
    image: Any,
    labels: Any,
    *,
    numbers: bool = True,
    title: str | None = None,
) -> Figure:
    """An image with the outline of every object in its own colour, and the object numbers.

    Parameters
    ----------
    image : (M, N) ndarray
        Grayscale image shown with a robust contrast (1st to 99th percentile); pass the mask
        itself when there is no intensity image.
    labels : (M, N) integer ndarray
        Objects 1..N, 0 = background (e.g. from :func:`niseg.objects.label_objects`).
    numbers : bool, optional
        Write each object's number at its centroid (up to 150 objects).
    title : str, optional
        Figure title; by default the number of objects.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((32, 32), int); labels[4:12, 4:12] = 1; labels[20:28, 10:30] = 2
    >>> fig = objects_figure(labels > 0, labels)
    >>> len(fig.axes[0].texts)
    2
    """
    from niseg.objects import object_contours

    img = _as_2d(image, "image").astype(np.float32)
    lab = _as_2d(labels, "labels", img.shape)
    if lab.dtype.kind not in "biu":
        raise TypeError(f"labels must be an integer object label image, got dtype {lab.dtype}")
    fig = Figure(figsize=(7, 7 * img.shape[0] / max(img.shape[1], 1) + 0.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lo, hi = _robust_limits(img)
    ax.imshow(_for_display(img), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest",
              extent=(-0.5, img.shape[1] - 0.5, img.shape[0] - 0.5, -0.5))
    contours = object_contours(lab.astype(np.int64))
    colours = _colours(len(contours))
    for i, (value, outlines) in enumerate(sorted(contours.items())):
        colour = colours[i % len(colours)]
        for c in outlines:
            ax.plot(c[:, 1], c[:, 0], color=colour, linewidth=1.5)
        if numbers and len(contours) <= _MAX_NUMBERED:
            ys, xs = np.nonzero(lab == value)
            ax.text(float(xs.mean()), float(ys.mean()), str(value), color=colour, fontsize=9,
                    ha="center", va="center", fontweight="bold")
    ax.set_axis_off()
    ax.set_title(title if title is not None else f"{len(contours)} objects")
    fig.tight_layout()
    return fig


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(max(n, 1))]


def robustness_figure(
    scores: Sequence[Any] | Any,
    *,
    threshold: float,
    metric: str = "dice",
    names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Histogram of a method's scores over simulated realizations, with the criterion line.

    Parameters
    ----------
    scores : (n,) array or sequence of (n_i,) arrays
        Scores of one run, or of several runs (e.g. one per counts level) drawn as
        overlaid histograms.
    threshold : float
        The criterion ``score >= threshold``, drawn as a vertical line.
    metric : str, optional
        Name of the score for the axis label.
    names : sequence of str, optional
        Legend entry of each run; the fraction meeting the criterion is appended.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = robustness_figure(np.array([0.95, 0.97, 0.85]), threshold=0.9)
    >>> fig.axes[0].get_legend().get_texts()[0].get_text()
    '67 % >= 0.9'
    """
    several = isinstance(scores, (list, tuple)) and len(scores) > 0 and \
        all(np.ndim(s) == 1 for s in scores)
    runs = ([np.asarray(s, dtype=np.float64) for s in scores] if several
            else [np.asarray(scores, dtype=np.float64).ravel()])
    if not runs or any(r.size == 0 for r in runs):
        raise ValueError("scores must hold at least one score per run")
    if names is not None and len(names) != len(runs):
        raise ValueError(f"names has {len(names)} entries but scores has {len(runs)} runs")
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    finite = np.concatenate([r[np.isfinite(r)] for r in runs])
    lo = min(float(finite.min()) if finite.size else 0.0, threshold) - 0.02
    hi = max(float(finite.max()) if finite.size else 1.0, threshold) + 0.02
    bins = np.linspace(lo, hi, 41)
    for i, run in enumerate(runs):
        met = np.isfinite(run) & (run >= threshold)
        label = f"{100 * met.mean():.0f} % >= {threshold:g}"
        if names is not None:
            label = f"{names[i]}: {label}"
        ax.hist(run[np.isfinite(run)], bins=bins, alpha=0.6, label=label)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2)
    ax.set_xlabel({"dice": "Dice", "iou": "IoU", "ari": "ARI"}.get(metric, metric))
    ax.set_ylabel("realizations")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
