"""Training curves figure: losses, validation Dice and the best epoch."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.report import training_curves_figure


def _history(n=8):
    # Training loss keeps falling; validation loss turns up after epoch 4 (overfitting) and
    # validation Dice peaks at epoch 4.
    return [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 0.5 + 0.05 * (e - 4) ** 2,
             "val_dice": 0.9 - 0.02 * (e - 4) ** 2, "lr": 1e-3 * 0.9 ** e, "seconds": 1.5}
            for e in range(1, n + 1)]


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_curves_and_best_epoch_are_drawn():
    fig = training_curves_figure(_history())
    ax_loss, ax_dice = fig.axes[:2]
    assert ax_loss.get_title() == "Loss" and ax_dice.get_title() == "Validation Dice"
    loss = _lines(ax_loss)
    np.testing.assert_allclose(loss["training"].get_ydata(), [1.0 / e for e in range(1, 9)])
    np.testing.assert_allclose(loss["validation"].get_ydata()[3], 0.5)
    assert list(loss["best (epoch 4)"].get_xdata()) == [4, 4]
    dice = _lines(ax_dice)
    assert dice["best (epoch 4)"].get_xdata()[0] == 4
    assert "0.900" in fig._suptitle.get_text()
    assert len(fig.axes) == 3  # learning-rate axis


def test_explicit_best_epoch_and_missing_validation():
    history = [{"epoch": e, "train_loss": 1.0 / e} for e in range(1, 4)]
    fig = training_curves_figure(history)
    assert "best" not in "".join(_lines(fig.axes[0]))
    assert len(fig.axes) == 2
    fig = training_curves_figure(_history(), best_epoch=6)
    assert "best (epoch 6)" in _lines(fig.axes[1])


def test_bad_history():
    with pytest.raises(ValueError, match="non-empty"):
        training_curves_figure([])
    with pytest.raises(ValueError, match="train_loss"):
        training_curves_figure([{"epoch": 1}])
    with pytest.raises(ValueError, match="best_epoch"):
        training_curves_figure(_history(), best_epoch=99)
    with pytest.raises(TypeError, match="val_dice"):
        training_curves_figure([{"epoch": 1, "train_loss": 1.0, "val_dice": "high"}])
