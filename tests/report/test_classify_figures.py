"""Figures of a trained pixel classifier."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.report import (
    feature_importance_figure,
    feature_selection_figure,
    figure_to_png_bytes,
    prediction_figure,
    training_labels_figure,
)


def _image(shape=(40, 60)):
    return np.random.default_rng(0).random(shape).astype(np.float32)


def test_training_labels_figure_keeps_thin_strokes_on_large_images():
    image = _image((2100, 300))  # shown at 1/3 scale
    labels = np.zeros(image.shape, np.uint8)
    labels[1000, 10:200] = 1  # one pixel thick: plain subsampling would drop it
    labels[1500:1510, 50:60] = 2
    fig = training_labels_figure(image, labels, class_names=["pore", "matrix"], title="t")
    overlay = fig.axes[1].get_images()[1].get_array()
    assert overlay.shape[:2] == (700, 100)
    assert (overlay[..., 3] > 0).any(axis=1).sum() >= 1 + 3  # the stroke row and the patch
    texts = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert texts == ["pore", "matrix"]
    assert "190 pixels" in fig.axes[1].get_title() or "290 pixels" in fig.axes[1].get_title()
    assert figure_to_png_bytes(fig).startswith(b"\x89PNG")


def test_feature_importance_figure_orders_and_limits():
    names = [f"f{i}" for i in range(30)]
    values = np.arange(30, dtype=float)
    fig = feature_importance_figure(names, values, top=5)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["f29", "f28", "f27", "f26", "f25"]
    widths = sorted(p.get_width() for p in fig.axes[0].patches)
    assert widths == [25, 26, 27, 28, 29]
    with pytest.raises(ValueError, match="one importance per feature"):
        feature_importance_figure(names, values[:3])
    with pytest.raises(ValueError, match="top"):
        feature_importance_figure(names, values, top=0)


def test_feature_selection_figure_marks_choice():
    fig = feature_selection_figure([16, 2, 4, 8], [0.95, 0.7, 0.9, 0.94], chosen=8,
                                   full_score=0.95)
    line = fig.axes[0].lines[0]
    assert line.get_xdata().tolist() == [2, 4, 8, 16]
    assert line.get_ydata().tolist() == [0.7, 0.9, 0.94, 0.95]
    assert any("chosen: 8" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    with pytest.raises(ValueError, match="one score per"):
        feature_selection_figure([1, 2], [0.5])


def test_prediction_figure_shows_background_class_and_uncertainty():
    image = _image()
    labels = (image > 0.5).astype(np.uint8)  # a mask model: classes 0 and 1
    unc = (1 - np.abs(2 * image - 1)).astype(np.float32)
    fig = prediction_figure(image, labels, unc, class_names=["background", "foreground"])
    rgba = fig.axes[1].get_images()[0].get_array()
    # Both classes are coloured (class 0 is not drawn as black "unlabeled").
    assert len({tuple(c) for c in rgba.reshape(-1, 4).tolist()}) == 2
    assert (rgba[..., :3].sum(-1) > 0).all()
    assert fig.axes[2].get_images()[0].get_clim() == (0, 1)
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == [
        "background", "foreground"]
    with pytest.raises(ValueError, match="uncertainty has shape"):
        prediction_figure(image, labels, unc[:5])
    with pytest.raises(ValueError, match="2D"):
        prediction_figure(image[None], labels, unc)
