"""Figure of a pixel clustering: image, cluster map and the clusters in feature space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from niseg.report._figures import _for_display, _robust_limits

# Feature-space panel: at most this many pixels are drawn (a seeded subset), enough to see
# the clouds without a multi-megabyte figure.
_MAX_POINTS = 5000
_NO_CLASS = (0.0, 0.0, 0.0, 1.0)


def _cluster_colours(k: int) -> list[tuple[float, float, float, float]]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "turbo"]
    if k <= 10:
        return [cmap(i) for i in range(k)]
    return [cmap(i / max(k - 1, 1)) for i in range(k)]


def cluster_figure(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    features: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    centres: Any = None,
    max_points: int = _MAX_POINTS,
    seed: int = 0,
    title: str | None = None,
) -> Figure:
    """Show an image, its cluster map and the clusters in feature space with their centres.

    The third panel is a scatter of the first two features (a seeded subset of at most
    ``max_points`` labelled pixels, coloured by cluster, centres as black-edged crosses) or,
    with a single feature, its histogram per cluster with the centres as vertical lines.

    Parameters
    ----------
    image : (M, N) ndarray
        The (first) clustered image; for a volume pass one slice.
    labels : (M, N) integer ndarray
        Cluster labels ``1..K``; 0 (no class) is drawn black.
    features : (M, N, F) ndarray, optional
        Feature values per pixel in the units of ``centres``; without it only the two
        image panels are drawn.
    feature_names : sequence of str, optional
        Axis titles of the feature panel.
    centres : (K, F) array_like, optional
        Cluster centres, row ``k - 1`` for cluster ``k``.
    max_points : int, optional
        Largest number of pixels drawn in the scatter.
    seed : int, optional
        Seed of the drawn subset.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.report import cluster_figure
    >>> image = np.repeat([[0.0], [1.0]], 8, axis=0) * np.ones((1, 8))
    >>> labels = (image > 0.5).astype(np.uint8) + 1
    >>> fig = cluster_figure(image, labels, features=np.stack([image, image ** 2], -1),
    ...                      centres=[[0.0, 0.0], [1.0, 1.0]])
    >>> len(fig.axes)
    3
    """
    img = np.asarray(image)
    lab = np.asarray(labels)
    if img.ndim != 2 or img.dtype.kind not in "biuf":
        raise ValueError(f"image must be a numeric 2D (M, N) array but has shape {img.shape}; "
                         "for a volume pass one slice")
    if lab.shape != img.shape or lab.dtype.kind not in "biu":
        raise ValueError(f"labels must be an integer array of the image's shape {img.shape}, "
                         f"got shape {lab.shape} and dtype {lab.dtype}")
    feats = None
    if features is not None:
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 3 or feats.shape[:2] != img.shape:
            raise ValueError(f"features has shape {feats.shape} but must be "
                             f"{img.shape + ('F',)}")
    k = int(lab.max()) if lab.size else 0
    colours = _cluster_colours(max(k, 1))
    fig = Figure(figsize=(13.5 if feats is not None else 9.0, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3 if feats is not None else 2)
    lo, hi = _robust_limits(img.astype(np.float64))
    axes[0].imshow(_for_display(img), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    axes[0].set_title("image")
    cmap = ListedColormap([_NO_CLASS] + colours[:k])
    axes[1].imshow(_for_display(lab), cmap=cmap, vmin=-0.5, vmax=k + 0.5,
                   interpolation="nearest")
    axes[1].set_title(f"clusters (K = {k})")
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    if feats is not None:
        _feature_panel(axes[2], feats, lab, k, colours, feature_names, centres, max_points,
                       seed)
    if title:
        fig.suptitle(title)
    return fig


def _feature_panel(ax: Any, feats: np.ndarray, lab: np.ndarray, k: int, colours: list,
                   names: Sequence[str] | None, centres: Any, max_points: int,
                   seed: int) -> None:
    n_features = feats.shape[-1]
    names = list(names) if names is not None else [f"feature {i + 1}"
                                                    for i in range(n_features)]
    cen = None if centres is None else np.asarray(centres, dtype=np.float64)
    if cen is not None and (cen.ndim != 2 or cen.shape[1] != n_features):
        raise ValueError(f"centres has shape {cen.shape} but must be (K, {n_features})")
    flat = feats.reshape(-1, n_features)
    flat_labels = lab.reshape(-1)
    index = np.flatnonzero(flat_labels > 0)
    if index.size > max_points:
        index = np.sort(np.random.default_rng(seed).choice(index, max_points, replace=False))
    if n_features == 1:
        bins = np.histogram_bin_edges(flat[flat_labels > 0, 0], bins=64)
        for c in range(1, k + 1):
            ax.hist(flat[flat_labels == c, 0], bins=bins, color=colours[c - 1], alpha=0.6,
                    label=f"cluster {c}")
            if cen is not None and c <= cen.shape[0]:
                ax.axvline(cen[c - 1, 0], color=colours[c - 1], lw=2)
        ax.set_xlabel(names[0])
        ax.set_ylabel("pixels")
    else:
        point_colours = np.asarray(colours)[flat_labels[index] - 1]
        ax.scatter(flat[index, 0], flat[index, 1], s=3, c=point_colours, alpha=0.5,
                   linewidths=0)
        if cen is not None:
            ax.scatter(cen[:, 0], cen[:, 1], s=120, marker="X", c=colours[: cen.shape[0]],
                       edgecolors="black", linewidths=1.2, label="centres")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    ax.set_title("feature space" + (" (first two features)" if n_features > 2 else ""))
    if k:
        ax.legend(fontsize="small", loc="best")
