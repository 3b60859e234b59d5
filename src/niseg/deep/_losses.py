"""Segmentation losses that ignore unlabelled pixels, and class weights for rare classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: Target value of unlabelled pixels (sparse strokes): they contribute nothing to a loss.
IGNORE = -1

#: Loss kinds ``segmentation_loss(kind=...)`` accepts.
LOSSES = ("ce", "dice", "dice_ce", "focal")

# Keeps the Dice ratio defined when a class has no predicted mass; small enough not to
# bias the value of classes with a few labelled pixels.
_DICE_SMOOTH = 1e-5


def segmentation_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    kind: str = "dice_ce",
    class_weights: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int = IGNORE,
    focal_gamma: float = 2.0,
) -> torch.Tensor:
    """Loss of per-class logits against class indices, ignoring unlabelled pixels.

    - ``"ce"``: cross-entropy of the softmax, averaged over labelled pixels (weighted by
      ``class_weights`` of each pixel's class, as :func:`torch.nn.functional.cross_entropy`);
      with two channels it equals binary cross-entropy on the logit difference, and a
      single channel is read as the foreground logit (binary cross-entropy with logits).
    - ``"dice"``: ``1 -`` soft Dice of the softmax probabilities, per class over all
      labelled pixels of the batch, averaged over the classes present among them (weighted
      by ``class_weights`` when given); a class absent from the labels is left out because
      its Dice is undefined, not perfect.
    - ``"dice_ce"``: the sum of the two (robust for very unbalanced classes).
    - ``"focal"``: ``-(1 - p_t) ** focal_gamma * log(p_t)``, averaged as ``"ce"``; with
      ``focal_gamma=0`` it is cross-entropy.

    Parameters
    ----------
    logits : (B, K, M, N[, P]) torch.Tensor
        Network output (``K = 1``: one foreground logit).
    target : (B, M, N[, P]) torch.Tensor of int
        Class index ``0..K-1`` (``0..1`` when ``K = 1``) per pixel, ``ignore_index`` for
        unlabelled pixels.
    kind : {"ce", "dice", "dice_ce", "focal"}
    class_weights : (K,) tensor or sequence of float, optional
        Weight of each class (``(2,)`` when ``K = 1``), e.g.
        :func:`balanced_class_weights`.
    ignore_index : int
        Target value of unlabelled pixels.
    focal_gamma : float
        Focusing exponent of ``"focal"`` (>= 0).

    Returns
    -------
    torch.Tensor
        Scalar loss; 0 (with a gradient of zeros) when no pixel is labelled.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[[[2.0, -1.0]], [[0.0, 1.0]]]])  # (1, 2, 1, 2)
    >>> target = torch.tensor([[[0, IGNORE]]])  # the second pixel is unlabelled
    >>> round(float(segmentation_loss(logits, target, kind="ce")), 4)  # log(1 + e^-2)
    0.1269
    >>> round(float(segmentation_loss(logits, target, kind="focal", focal_gamma=0)), 4)
    0.1269
    """
    if kind not in LOSSES:
        raise ValueError(f"kind must be one of {', '.join(LOSSES)}, got {kind!r}")
    if not isinstance(focal_gamma, (int, float)) or isinstance(focal_gamma, bool) \
            or not focal_gamma >= 0:
        raise ValueError(f"focal_gamma must be a number >= 0, got {focal_gamma!r}")
    logits, target = _check(logits, target, ignore_index)
    n_classes = logits.shape[1]
    weights = _weights(class_weights, n_classes, logits)
    valid = target != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    # Ignored pixels point at class 0 so that indexing works; `valid` removes them again.
    index = torch.where(valid, target, torch.zeros_like(target))
    log_p = F.log_softmax(logits, dim=1)
    if kind in ("ce", "focal"):
        return _cross_entropy(log_p, index, valid, weights,
                              focal_gamma if kind == "focal" else 0.0)
    dice = _dice(log_p.exp(), index, valid, weights)
    if kind == "dice":
        return dice
    return dice + _cross_entropy(log_p, index, valid, weights, 0.0)


def balanced_class_weights(
    targets: Any,
    n_classes: int,
    *,
    ignore_index: int = IGNORE,
    max_weight: float = 100.0,
) -> torch.Tensor:
    """Inverse-frequency class weights, ``n_labelled / (n_classes * n_class)``, clipped.

    A class of 1 % of the pixels in a two-class problem gets weight 50 and the other about
    0.5, so both contribute equally to a weighted loss. Weights are clipped to
    ``max_weight`` because a class of a few pixels would otherwise get weights in the
    thousands and make training unstable; a class without labelled pixels gets weight 1.

    Parameters
    ----------
    targets : ndarray or torch.Tensor, or a list of them
        Class indices ``0..n_classes-1``, ``ignore_index`` for unlabelled pixels.
    n_classes : int
    ignore_index : int
    max_weight : float
        Largest weight (> 0).

    Returns
    -------
    (n_classes,) torch.Tensor of float32

    Examples
    --------
    >>> import numpy as np
    >>> target = np.zeros((10, 10), np.int64); target[0, :1] = 1; target[9] = IGNORE
    >>> balanced_class_weights(target, 2)
    tensor([ 0.5056, 45.0000])
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
            or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if isinstance(max_weight, bool) or not isinstance(max_weight, (int, float)) \
            or not max_weight > 0:
        raise ValueError(f"max_weight must be a positive number, got {max_weight!r}")
    items = targets if isinstance(targets, (list, tuple)) else [targets]
    if not items:
        raise ValueError("targets is an empty list")
    counts = np.zeros(n_classes, dtype=np.int64)
    for i, item in enumerate(items):
        name = f"targets[{i}]" if len(items) > 1 else "targets"
        values = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) \
            else np.asarray(item)
        if not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"{name} must hold integer class indices, got dtype "
                            f"{values.dtype}")
        values = values[values != ignore_index]
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            bad = values.min() if values.min() < 0 else values.max()
            raise ValueError(f"{name} holds class {bad} but classes are 0 to "
                             f"{n_classes - 1} (and {ignore_index} for unlabelled)")
        counts += np.bincount(values.ravel(), minlength=n_classes)
    total = counts.sum()
    if total == 0:
        raise ValueError("targets have no labelled pixels")
    weights = np.ones(n_classes, dtype=np.float64)
    present = counts > 0
    weights[present] = total / (n_classes * counts[present])
    return torch.as_tensor(np.minimum(weights, max_weight), dtype=torch.float32)


def _check(logits: Any, target: Any, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a floating-point torch.Tensor")
    if not isinstance(target, torch.Tensor) or target.is_floating_point() \
            or target.is_complex() or target.dtype == torch.bool:
        raise TypeError("target must be an integer torch.Tensor of class indices")
    if logits.ndim < 3:
        raise ValueError(f"logits has shape {tuple(logits.shape)} but (batch, classes, "
                         "spatial axes...) is expected")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != tuple(expected):
        raise ValueError(f"target has shape {tuple(target.shape)} but logits "
                         f"{tuple(logits.shape)} need {tuple(expected)}")
    n_classes = max(logits.shape[1], 2)
    if logits.shape[1] == 1:
        # One foreground logit l: softmax([0, l]) gives sigmoid(l), so the two-class losses
        # are the binary ones.
        logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
    target = target.long()
    labelled = target[target != ignore_index]
    if labelled.numel():
        low, high = int(labelled.min()), int(labelled.max())
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ValueError(f"target holds class {bad} but logits have {n_classes} classes "
                             f"(0 to {n_classes - 1}, and {ignore_index} for unlabelled)")
    return logits, target


def _weights(class_weights: Any, n_classes: int, logits: torch.Tensor) -> torch.Tensor | None:
    if class_weights is None:
        return None
    weights = torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
    if weights.shape != (n_classes,):
        raise ValueError(f"class_weights has shape {tuple(weights.shape)} but the logits "
                         f"have {n_classes} classes")
    if not bool(torch.all(weights >= 0)) or not bool(torch.isfinite(weights).all()):
        raise ValueError("class_weights must be finite and non-negative")
    return weights


def _cross_entropy(log_p: torch.Tensor, index: torch.Tensor, valid: torch.Tensor,
                   weights: torch.Tensor | None, gamma: float) -> torch.Tensor:
    log_pt = log_p.gather(1, index.unsqueeze(1)).squeeze(1)
    loss = -log_pt
    if gamma:
        loss = (1 - log_pt.exp()).clamp(min=0) ** gamma * loss
    pixel_weight = valid.to(log_p.dtype)
    if weights is not None:
        pixel_weight = pixel_weight * weights[index]
    denominator = pixel_weight.sum()
    if not bool(denominator > 0):
        return log_p.sum() * 0.0
    # `where`, not a product, so that huge logits at ignored pixels cannot leak NaN.
    return torch.where(valid, loss * pixel_weight, torch.zeros_like(loss)).sum() / denominator


def _dice(proba: torch.Tensor, index: torch.Tensor, valid: torch.Tensor,
          weights: torch.Tensor | None) -> torch.Tensor:
    n_classes = proba.shape[1]
    one_hot = F.one_hot(index, n_classes).movedim(-1, 1).to(proba.dtype)
    mask = valid.unsqueeze(1)
    proba = torch.where(mask, proba, torch.zeros_like(proba))
    one_hot = torch.where(mask, one_hot, torch.zeros_like(one_hot))
    axes = [0, *range(2, proba.ndim)]
    intersection = (proba * one_hot).sum(axes)
    sizes = proba.sum(axes) + one_hot.sum(axes)
    dice = (2 * intersection + _DICE_SMOOTH) / (sizes + _DICE_SMOOTH)
    present = one_hot.sum(axes) > 0
    class_weight = present.to(proba.dtype)
    if weights is not None:
        class_weight = class_weight * weights
    if not bool(class_weight.sum() > 0):
        return proba.sum() * 0.0
    return ((1 - dice) * class_weight).sum() / class_weight.sum()
