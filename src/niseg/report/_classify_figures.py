"""Figures of a trained pixel classifier: training strokes, feature importances, feature
selection and the prediction with its uncertainty."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from niseg.report._figures import _MAX_DISPLAY, _for_display, _Palette, _robust_limits

_STROKE_ALPHA = 0.85
_BLACK = (0.0, 0.0, 0.0, 1.0)
_CLEAR = (0.0, 0.0, 0.0, 0.0)


def _image_2d(image: Any, name: str = "image") -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 2 or a.dtype.kind not in "biuf" or a.size == 0:
        raise ValueError(f"{name} must be a numeric 2D (M, N) image but has shape {a.shape}; "
                         "for a volume pass one slice, e.g. volume[volume.shape[0] // 2]")
    return a


def _labels_2d(labels: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    a = np.asarray(labels)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape} but image has shape {shape}")
    if a.dtype.kind not in "biu":
        raise ValueError(f"{name} must hold integer class values, got dtype {a.dtype}")
    return a


def _strokes_for_display(labels: np.ndarray) -> np.ndarray:
    """Shrink like the image panels, keeping thin strokes visible (the largest value of a block
    wins, so a one-pixel stroke survives where plain subsampling would drop it)."""
    step = max(1, math.ceil(max(labels.shape) / _MAX_DISPLAY))
    if step == 1:
        return labels
    from skimage.measure import block_reduce

    return block_reduce(labels, (step, step), np.max)


def _legend(ax: Any, palette: _Palette, values: np.ndarray, names: Sequence[str] | None) -> None:
    if values.size == 0:
        return
    texts = [str(names[i]) if names is not None and i < len(names) else f"class {v}"
             for i, v in enumerate(values.tolist())]
    handles = [Patch(color=palette.colour_of(v)) for v in values]
    ax.legend(handles, texts, loc="upper center", bbox_to_anchor=(0.5, 0.0),
              ncols=min(4, len(texts)), fontsize="small", frameon=False)


def training_labels_figure(
    image: Any,
    labels: Any,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """The training image and the labels (brush strokes or a mask) drawn over it.

    Parameters
    ----------
    image : (M, N) ndarray
        The training image (for a volume pass one slice).
    labels : (M, N) integer ndarray
        0 = unlabeled, other values = classes, each in its own colour.
    class_names : sequence of str, optional
        Legend text for the non-zero label values in increasing order.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels on their own Agg canvas: the image, and the labels over it.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((40, 60))
    >>> labels = np.zeros((40, 60), np.uint8); labels[5, 5:30] = 1; labels[30, 10:50] = 2
    >>> fig = training_labels_figure(image, labels, class_names=["pore", "matrix"])
    >>> len(fig.axes)
    2
    """
    img = _image_2d(image)
    lab = _labels_2d(labels, img.shape, "labels")
    values = np.unique(lab)
    values = values[values != 0]
    palette = _Palette([values])
    lo, hi = _robust_limits(img.astype(np.float64))
    shown = _for_display(img).astype(np.float32)
    strokes = _strokes_for_display(lab)
    fig = Figure(figsize=(9.0, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    axes[0].imshow(shown, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    axes[0].set_title("training image")
    axes[1].imshow(shown, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    fill = palette.rgba(strokes, background=_CLEAR)
    fill[..., 3] *= _STROKE_ALPHA
    axes[1].imshow(fill, interpolation="nearest")
    labelled = int(np.count_nonzero(lab))
    axes[1].set_title(f"labels ({labelled} pixels, {100 * labelled / lab.size:.2g} %)")
    _legend(axes[1], palette, values, class_names)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def feature_importance_figure(
    names: Sequence[str],
    importances: Any,
    *,
    top: int = 20,
    title: str | None = None,
) -> Figure:
    """Horizontal bars of the ``top`` most important features, the most important on top.

    Parameters
    ----------
    names : sequence of str
        Feature names (e.g. ``PixelClassifier.feature_names_``).
    importances : (F,) array_like
        One non-negative importance per feature (e.g. ``feature_importances_``).
    top : int
        Number of bars.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = feature_importance_figure(["raw", "gaussian s=1", "log s=1"], [0.2, 0.5, 0.3])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]  # most important first
    ['gaussian s=1', 'log s=1', 'raw']
    """
    values = np.asarray(importances, dtype=np.float64).ravel()
    labels = [str(n) for n in names]
    if values.size != len(labels) or values.size == 0:
        raise ValueError(f"importances has {values.size} values but names has {len(labels)}; "
                         "give one importance per feature")
    if not np.isfinite(values).all():
        raise ValueError("importances contain NaN or infinite values")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    order = np.argsort(-values, kind="stable")[: int(top)]
    fig = Figure(figsize=(7.5, 1.2 + 0.28 * order.size), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    positions = np.arange(order.size)[::-1]
    ax.barh(positions, values[order], color="#2d5f8b")
    ax.set_yticks(positions, [labels[i] for i in order], fontsize="small")
    ax.set_xlabel("importance (mean decrease in impurity)")
    ax.set_title(f"top {order.size} of {values.size} features")
    if title:
        fig.suptitle(title)
    return fig


def feature_selection_figure(
    n_features: Sequence[int],
    scores: Sequence[float],
    *,
    chosen: int | None = None,
    full_score: float | None = None,
    score_name: str = "held-out Dice",
    title: str | None = None,
) -> Figure:
    """Score of a classifier against the number of features kept, with the chosen number.

    Parameters
    ----------
    n_features : sequence of int
        Numbers of features tried (k).
    scores : sequence of float
        The score for each k.
    chosen : int, optional
        The k that was kept (marked by a vertical line).
    full_score : float, optional
        The score with every feature (a horizontal dashed line).
    score_name : str
        Axis label of the score.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = feature_selection_figure([2, 4, 8], [0.81, 0.9, 0.91], chosen=4, full_score=0.91)
    >>> len(fig.axes[0].lines)
    3
    """
    k = np.asarray(n_features, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if k.size != s.size or k.size == 0:
        raise ValueError(f"n_features has {k.size} values but scores has {s.size}; give one "
                         "score per number of features")
    order = np.argsort(k, kind="stable")
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(k[order], s[order], "o-", color="#2d5f8b", label=score_name)
    if full_score is not None:
        ax.axhline(float(full_score), color="0.4", linestyle="--", label="all features")
    if chosen is not None:
        ax.axvline(float(chosen), color="C3", linestyle=":", label=f"chosen: {chosen}")
    if k.size and k.max() / max(k.min(), 1) > 8:
        ax.set_xscale("log")
    ax.set_xlabel("number of features")
    ax.set_ylabel(score_name)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("feature selection")
    if title:
        fig.suptitle(title)
    return fig


def prediction_figure(
    image: Any,
    labels: Any,
    uncertainty: Any,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """The image, the predicted classes and the uncertainty ``1 - (p1 - p2)`` side by side.

    Parameters
    ----------
    image : (M, N) ndarray
        The image that was classified (for a volume pass one slice).
    labels : (M, N) integer ndarray
        Predicted classes.
    uncertainty : (M, N) ndarray
        Values in [0, 1]: 0 where one class is certain, 1 where the two likeliest tie.
    class_names : sequence of str, optional
        Legend text for the class values in increasing order (0 included when predicted).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels and a colour bar for the uncertainty.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((32, 32))
    >>> labels = (image > 0.5).astype(np.uint8) + 1
    >>> fig = prediction_figure(image, labels, 1 - np.abs(2 * image - 1))
    >>> len(fig.axes)  # three panels and the colour bar
    4
    """
    img = _image_2d(image)
    lab = _labels_2d(labels, img.shape, "labels")
    unc = np.asarray(uncertainty, dtype=np.float32)
    if unc.shape != img.shape:
        raise ValueError(f"uncertainty has shape {unc.shape} but image has shape {img.shape}")
    values = np.unique(lab)
    # Predictions have no "unlabeled" value: show class 0 (a mask model's background) too.
    shifted = lab.astype(np.int64) + (1 if values.size and values[0] == 0 else 0)
    palette = _Palette([np.unique(shifted)])
    lo, hi = _robust_limits(img.astype(np.float64))
    fig = Figure(figsize=(13.5, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    axes[0].imshow(_for_display(img).astype(np.float32), cmap="gray", vmin=lo, vmax=hi,
                   interpolation="nearest")
    axes[0].set_title("image")
    axes[1].imshow(palette.rgba(_for_display(shifted), background=_BLACK),
                   interpolation="nearest")
    axes[1].set_title(f"prediction ({values.size} class{'' if values.size == 1 else 'es'})")
    handles = [Patch(color=palette.colour_of(v)) for v in np.unique(shifted)]
    texts = [str(class_names[i]) if class_names is not None and i < len(class_names)
             else f"class {v}" for i, v in enumerate(values.tolist())]
    if handles:
        axes[1].legend(handles, texts, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                       ncols=min(4, len(texts)), fontsize="small", frameon=False)
    shown = axes[2].imshow(_for_display(unc), cmap="magma", vmin=0, vmax=1,
                           interpolation="nearest")
    axes[2].set_title(f"uncertainty (mean {float(np.nanmean(unc)):.3f})")
    fig.colorbar(shown, ax=axes[2], shrink=0.8)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig
