"""Figure of a spectral (time-of-flight) clustering: the lecture's panels plus correlations."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from niseg.report._figures import _for_display, _robust_limits

__all__ = ["spectra_figure"]

_NO_CLASS = (0.0, 0.0, 0.0, 1.0)


def _class_colours(k: int) -> list[tuple[float, ...]]:
    name = "tab10" if k <= 10 else "tab20"
    base = list(matplotlib.colormaps[name].colors)
    return [tuple(base[i % len(base)]) + (1.0,) for i in range(k)]


def spectra_figure(
    average_image: np.ndarray,
    labels: np.ndarray,
    centroid_spectra: np.ndarray,
    *,
    wavelengths: Sequence[float] | np.ndarray | None = None,
    correlation: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Average image, centroid spectra, cluster map and centroid correlation matrix.

    The spectra and the map share one colour per cluster, so a reader matches a curve to
    its region at a glance; label 0 (no class) is black in the map.

    Parameters
    ----------
    average_image : (M, N) ndarray
        Mean transmission over the wavelengths used (NaN where invalid).
    labels : (M, N) integer ndarray
        Cluster map, ``1..K`` with 0 = no class.
    centroid_spectra : (K, L) ndarray
        Mean transmission of each cluster per bin; row ``k - 1`` belongs to label ``k``.
    wavelengths : (L,) array_like, optional
        Bin wavelengths in Å for the x axis; bin numbers otherwise.
    correlation : (K, K) ndarray, optional
        Correlation of the centroid spectra; computed from them when not given.
    class_names : sequence of str, optional
        ``K`` names for the legend (default "cluster 1", ...).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Four panels on an Agg canvas; write it with :func:`niseg.report.save_figure`.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.report import spectra_figure
    >>> labels = np.repeat([[1, 2]], 4, axis=0).repeat(4, axis=1)
    >>> spectra = np.array([[0.5, 0.6, 0.4], [0.9, 0.8, 0.9]])
    >>> fig = spectra_figure(np.ones((4, 8)), labels, spectra, wavelengths=[1.0, 2.0, 3.0])
    >>> len(fig.axes) >= 4
    True
    """
    average = np.asarray(average_image, dtype=np.float64)
    lab = np.asarray(labels)
    spectra = np.asarray(centroid_spectra, dtype=np.float64)
    if average.ndim != 2:
        raise ValueError(f"average_image must be a 2D (M, N) image, got shape {average.shape}")
    if lab.shape != average.shape:
        raise ValueError(f"labels has shape {lab.shape} but average_image has shape "
                         f"{average.shape}")
    if lab.dtype.kind not in "biu":
        raise TypeError(f"labels must be an integer array, got dtype {lab.dtype}")
    if spectra.ndim != 2 or spectra.shape[0] < 1 or spectra.shape[1] < 1:
        raise ValueError(f"centroid_spectra must be a (K, L) array, got shape {spectra.shape}")
    k, n_bins = spectra.shape
    if lab.size and int(lab.max()) > k:
        raise ValueError(f"labels go up to {int(lab.max())} but centroid_spectra has {k} rows")
    if wavelengths is None:
        x = np.arange(n_bins, dtype=np.float64)
        xlabel = "bin"
    else:
        x = np.asarray(wavelengths, dtype=np.float64)
        if x.shape != (n_bins,):
            raise ValueError(f"wavelengths has {x.size} values but centroid_spectra has "
                             f"{n_bins} bins")
        xlabel = "wavelength (Å)"
    names = [f"cluster {i + 1}" for i in range(k)] if class_names is None else \
        [str(n) for n in class_names]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names but there are {k} clusters")
    if correlation is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.corrcoef(np.nan_to_num(spectra)) if k > 1 else np.ones((1, 1))
    corr = np.asarray(correlation, dtype=np.float64)
    if corr.shape != (k, k):
        raise ValueError(f"correlation has shape {corr.shape}, expected {(k, k)}")

    colours = _class_colours(k)
    fig = Figure(figsize=(16, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_avg, ax_spec, ax_map, ax_corr = fig.subplots(1, 4, width_ratios=[1, 1.4, 1, 1])

    shown = _for_display(average)
    finite = np.isfinite(shown)
    lo, hi = _robust_limits(shown) if finite.any() else (0.0, 1.0)
    im = ax_avg.imshow(shown, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    fig.colorbar(im, ax=ax_avg, shrink=0.8, label="transmission")
    ax_avg.set_title("average image")
    ax_avg.set_axis_off()

    for i in range(k):
        ax_spec.plot(x, spectra[i], color=colours[i], lw=1.3, label=names[i])
    ax_spec.set_xlabel(xlabel)
    ax_spec.set_ylabel("mean transmission")
    ax_spec.set_title("centroid spectra")
    ax_spec.legend(fontsize="small", loc="best")
    ax_spec.grid(alpha=0.3)

    cmap = ListedColormap([_NO_CLASS] + colours)
    norm = BoundaryNorm(np.arange(-0.5, k + 1.5), cmap.N)
    ax_map.imshow(_for_display(lab), cmap=cmap, norm=norm, interpolation="nearest")
    ax_map.set_title("cluster map (black: no class)")
    ax_map.set_axis_off()

    im = ax_corr.imshow(corr, cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax_corr, shrink=0.8, label="correlation")
    ticks = np.arange(k)
    ax_corr.set_xticks(ticks, [str(i + 1) for i in ticks])
    ax_corr.set_yticks(ticks, [str(i + 1) for i in ticks])
    if k <= 8:
        for i in range(k):
            for j in range(k):
                if np.isfinite(corr[i, j]):
                    ax_corr.text(j, i, f"{corr[i, j]:.3f}", ha="center", va="center",
                                 fontsize="small", color="white" if corr[i, j] < np.nanmean(corr)
                                 else "black")
    ax_corr.set_title("centroid correlation")
    if title:
        fig.suptitle(title)
    return fig

