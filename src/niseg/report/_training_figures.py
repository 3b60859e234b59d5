"""Training curves of a network: losses and validation Dice per epoch, best epoch marked."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_TRAIN_COLOUR = "tab:blue"
_VAL_COLOUR = "tab:orange"
_BEST_COLOUR = "tab:red"
_LR_COLOUR = "0.5"


def _column(history: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    values = []
    for i, row in enumerate(history):
        value = row.get(key)
        if value is None:
            values.append(np.nan)
            continue
        try:
            values.append(float(value))
        except (TypeError, ValueError):
            raise TypeError(f"history[{i}][{key!r}] must be a number, got {value!r}") from None
    return np.asarray(values, dtype=np.float64)


def training_curves_figure(
    history: Sequence[Mapping[str, Any]],
    *,
    best_epoch: int | None = None,
    title: str | None = None,
) -> Figure:
    """Loss curves (training against validation) and validation Dice over the epochs.

    A validation loss that rises while the training loss keeps falling is overfitting; the
    best epoch (the checkpoint that is kept) is marked on both panels. The learning rate, when
    recorded, is drawn on a second axis of the loss panel.

    Parameters
    ----------
    history : sequence of dict
        One dict per epoch with ``epoch`` and ``train_loss``, and optionally ``val_loss``,
        ``val_dice``, ``lr`` and ``seconds`` (missing or None values are skipped).
    best_epoch : int, optional
        Epoch to mark; by default the one with the highest ``val_dice`` (the lowest
        ``val_loss`` when there is no Dice).
    title : str, optional
        Figure title; by default the number of epochs and the best validation Dice.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: losses, and validation Dice.

    Examples
    --------
    >>> history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e + (e > 3) * 0.1 * e,
    ...             "val_dice": 0.5 + 0.1 * min(e, 3), "lr": 1e-3} for e in range(1, 7)]
    >>> fig = training_curves_figure(history)
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['Loss', 'Validation Dice']
    """
    if isinstance(history, Mapping) or not isinstance(history, Sequence) or not history:
        raise ValueError("history must be a non-empty list of per-epoch dicts")
    if not all(isinstance(row, Mapping) for row in history):
        raise TypeError("history must be a list of dicts, one per epoch")
    missing = [i for i, row in enumerate(history) if "epoch" not in row or "train_loss" not in row]
    if missing:
        raise ValueError(f"history[{missing[0]}] has no 'epoch' or 'train_loss' entry")
    epochs = _column(history, "epoch")
    train_loss = _column(history, "train_loss")
    val_loss = _column(history, "val_loss")
    val_dice = _column(history, "val_dice")
    lr = _column(history, "lr")

    if best_epoch is None:
        if np.isfinite(val_dice).any():
            best_epoch = int(epochs[int(np.nanargmax(val_dice))])
        elif np.isfinite(val_loss).any():
            best_epoch = int(epochs[int(np.nanargmin(val_loss))])
    elif best_epoch not in set(epochs.tolist()):
        raise ValueError(f"best_epoch {best_epoch} is not one of the epochs in history")

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_dice = fig.subplots(1, 2)
    ax_loss.plot(epochs, train_loss, "-o", ms=3, color=_TRAIN_COLOUR, label="training")
    if np.isfinite(val_loss).any():
        ax_loss.plot(epochs, val_loss, "-o", ms=3, color=_VAL_COLOUR, label="validation")
    ax_loss.set_title("Loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    if np.isfinite(val_dice).any():
        ax_dice.plot(epochs, val_dice, "-o", ms=3, color=_VAL_COLOUR, label="validation")
        ax_dice.set_ylim(0, 1.02)
    else:
        ax_dice.text(0.5, 0.5, "no validation Dice recorded", ha="center", va="center",
                     transform=ax_dice.transAxes)
    ax_dice.set_title("Validation Dice")
    ax_dice.set_xlabel("epoch")
    ax_dice.set_ylabel("Dice")
    if best_epoch is not None:
        for ax in (ax_loss, ax_dice):
            ax.axvline(best_epoch, color=_BEST_COLOUR, ls="--", lw=1,
                       label=f"best (epoch {best_epoch})")
        row = int(np.flatnonzero(epochs == best_epoch)[0])
        if math.isfinite(val_dice[row]):
            ax_dice.plot([best_epoch], [val_dice[row]], "*", ms=12, color=_BEST_COLOUR)
    if np.isfinite(lr).any():
        ax_lr = ax_loss.twinx()
        ax_lr.plot(epochs, lr, ":", color=_LR_COLOUR, label="learning rate")
        ax_lr.set_ylabel("learning rate", color=_LR_COLOUR)
        ax_lr.tick_params(axis="y", colors=_LR_COLOUR)
        if np.nanmin(lr) > 0 and np.nanmax(lr) / np.nanmin(lr) > 20:
            ax_lr.set_yscale("log")
    ax_loss.legend(loc="upper right", fontsize="small")
    if ax_dice.get_legend_handles_labels()[0]:
        ax_dice.legend(loc="lower right", fontsize="small")
    if title is None:
        title = f"{len(history)} epochs"
        if np.isfinite(val_dice).any():
            title += f", best validation Dice {np.nanmax(val_dice):.3f}"
    fig.suptitle(title)
    return fig
