"""The U-Net training loop: class-balanced patch sampling, validation, schedules, stopping.

:class:`UNetSegmenter` prepares the data (normalized images, targets with every pixel that is
not for training set to :data:`IGNORE`, the validation crops) and calls :func:`train_net`.
Kept apart so the loop can be read, and tested, on its own.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._augment import augment
from ._augment_config import AugmentConfig
from ._infer import sliding_window_proba
from ._losses import IGNORE, segmentation_loss
from ._validation import EarlyStopping

__all__ = ["SCHEDULES", "PatchSampler", "TrainSettings", "ValidationSet",
           "default_iterations", "lr_factor", "train_net"]

#: Learning-rate schedules ``UNetSegmenter(schedule=...)`` accepts.
SCHEDULES = ("cosine", "poly", "none")
#: Optimizers ``UNetSegmenter(optimizer=...)`` accepts.
OPTIMIZERS = ("adamw", "sgd")
#: Times an epoch's patches cover the training images (rule for ``iterations_per_epoch``).
COVERAGE = 2.0
MIN_ITERATIONS, MAX_ITERATIONS = 10, 250
#: Most patch centres remembered per class; more labelled pixels are thinned at random.
MAX_CENTRES = 1_000_000
#: ``epochs`` when only a time budget ends training (never reached: the budget ends first).
UNLIMITED_EPOCHS = 10**9
_POLY_POWER = 0.9
_SGD_MOMENTUM = 0.9


def default_iterations(n_pixels: int, batch_size: int, patch: Sequence[int]) -> int:
    """Iterations per epoch: enough patches to cover ``n_pixels`` twice, from 10 to 250.

    Examples
    --------
    >>> default_iterations(768 * 512, 4, (128, 128))
    12
    """
    per_batch = batch_size * math.prod(patch)
    wanted = math.ceil(COVERAGE * n_pixels / per_batch)
    return int(min(MAX_ITERATIONS, max(MIN_ITERATIONS, wanted)))


def budget_horizon(settings: Any, history: Sequence[Mapping[str, Any]],
                   elapsed: float) -> int:
    """Iterations the schedule plans for when ``settings.time_budget`` limits training.

    The epochs done so far plus as many more as the remaining time holds at the median
    duration of the epochs after the first (the first also pays for warm-up: allocation,
    thread pools, a machine busy with something else), at most ``settings.epochs`` in all
    and at least one more than done.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> s = SimpleNamespace(time_budget=100.0, epochs=50, iterations_per_epoch=10)
    >>> budget_horizon(s, [{"seconds": 40.0}], 40.0)  # one slow epoch: 60 s left
    20
    >>> budget_horizon(s, [{"seconds": 40.0}, {"seconds": 5.0}], 45.0)  # then 5 s each
    130
    """
    done = len(history)
    times = [float(h["seconds"]) for h in history]
    per_epoch = float(np.median(times[1:] if done > 1 else times)) if times else 0.0
    remaining = max(0.0, float(settings.time_budget) - elapsed)
    more = int(remaining // per_epoch) if per_epoch > 0 else settings.epochs
    epochs = min(settings.epochs, done + max(1, more))
    return epochs * settings.iterations_per_epoch


def lr_factor(kind: str, step: int, horizon: int) -> float:
    """Multiplier of the base learning rate at iteration ``step`` of ``horizon``.

    ``"cosine"``: ``(1 + cos(pi t / T)) / 2``; ``"poly"``: ``(1 - t / T) ** 0.9``;
    ``"none"``: 1. Past the horizon the factor stays at its last value.

    Examples
    --------
    >>> [round(lr_factor("cosine", t, 4), 3) for t in range(5)]
    [1.0, 0.854, 0.5, 0.146, 0.0]
    >>> lr_factor("none", 3, 4)
    1.0
    """
    if kind == "none" or horizon <= 0:
        return 1.0
    t = min(step, horizon) / horizon
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return (1.0 - t) ** _POLY_POWER


class PatchSampler:
    """Draw training patches whose centres are balanced over the classes.

    Each patch is centred, up to a random shift of a quarter patch per axis, on a labelled
    training pixel of a class drawn uniformly from the classes present, so every class is at
    the centre of about ``1 / K`` of the patches however rare it is (thin roots below 1 % of
    the pixels are seen as often as the background). Patches stay inside the image; the
    pixels they cover that are not for training (unlabelled, validation block, gap) carry
    :data:`IGNORE` targets and act as context only.

    Parameters
    ----------
    images : list of (C, *spatial) ndarray of float32
        Normalized training images (2-D slices of a stack are separate items).
    targets : list of (*spatial) ndarray of int64
        Class index ``0..K-1`` of each training pixel, :data:`IGNORE` elsewhere.
    patch : tuple of int
        Patch size, at most each image's size.
    rng : numpy.random.Generator

    Examples
    --------
    >>> import numpy as np
    >>> target = np.full((40, 40), -1); target[5, 5] = 1; target[30:, 30:] = 0
    >>> sampler = PatchSampler([np.zeros((1, 40, 40), np.float32)], [target], (16, 16),
    ...                        np.random.default_rng(0))
    >>> x, y, corners = sampler.sample(64)
    >>> x.shape, y.shape, float(np.mean([(t == 1).any() for t in y])) > 0.3
    ((64, 1, 16, 16), (64, 16, 16), True)
    """

    def __init__(self, images: list[np.ndarray], targets: list[np.ndarray],
                 patch: tuple[int, ...], rng: np.random.Generator) -> None:
        self.images = images
        self.targets = targets
        self.patch = tuple(int(p) for p in patch)
        self.rng = rng
        for i, target in enumerate(targets):
            if any(n < p for n, p in zip(target.shape, self.patch)):
                raise ValueError(f"training image {i} has spatial shape {target.shape}, "
                                 f"smaller than the patch size {self.patch}")
        n_classes = int(max((t.max() for t in targets), default=-1)) + 1
        self.centres: list[tuple[np.ndarray, np.ndarray]] = []
        for k in range(n_classes):
            items, flats = [], []
            for i, target in enumerate(targets):
                flat = np.flatnonzero(target.ravel() == k)
                items.append(np.full(flat.size, i, np.int32))
                flats.append(flat)
            item, flat = np.concatenate(items), np.concatenate(flats)
            if flat.size > MAX_CENTRES:
                keep = np.sort(rng.choice(flat.size, MAX_CENTRES, replace=False))
                item, flat = item[keep], flat[keep]
            if flat.size:
                self.centres.append((item, flat))
        if not self.centres:
            raise ValueError("no labelled pixels are left for training")

    def sample(self, batch: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, tuple]]]:
        """A batch ``(x (B, C, *patch), y (B, *patch), corners)``; ``corners`` holds each
        patch's ``(item, start per axis)``."""
        xs, ys, corners = [], [], []
        for _ in range(batch):
            item_ids, flats = self.centres[int(self.rng.integers(len(self.centres)))]
            pick = int(self.rng.integers(flats.size))
            item = int(item_ids[pick])
            shape = self.targets[item].shape
            centre = np.unravel_index(int(flats[pick]), shape)
            starts = []
            for c, n, p in zip(centre, shape, self.patch):
                shift = int(self.rng.integers(-(p // 4), p // 4 + 1))
                starts.append(int(np.clip(c - p // 2 + shift, 0, n - p)))
            window = tuple(slice(s, s + p) for s, p in zip(starts, self.patch))
            xs.append(self.images[item][(slice(None), *window)])
            ys.append(self.targets[item][window])
            corners.append((item, tuple(starts)))
        return np.stack(xs), np.stack(ys), corners


#: Weight of the previous value in the moving average of the validation Dice that early
#: stopping and checkpoint selection use.
VAL_SMOOTHING = 0.7


@dataclass
class ValidationSet:
    """Crops around the validation pixels: image with context, targets on validation pixels.

    Attributes
    ----------
    images : list of (C, *crop) ndarray of float32
    targets : list of (*crop) ndarray of int64
        Class index on validation pixels, :data:`IGNORE` elsewhere (context, gap, training).
    origins : list of tuple of int
        Position of each crop in its image (so the sliding window uses the image's grid).
    foreground_only : bool
        Score the Dice of class 1 only (models trained from binary masks); otherwise the
        mean Dice of the classes present among the validation pixels.
    """

    images: list[np.ndarray]
    targets: list[np.ndarray]
    origins: list[tuple[int, ...]]
    foreground_only: bool = False

    def evaluate(self, net: torch.nn.Module, *, patch: tuple[int, ...], overlap: float,
                 batch_size: int, device: Any, loss: str,
                 class_weights: torch.Tensor | None) -> dict[str, Any]:
        """Validation loss, score and per-class Dice of ``net`` on the validation pixels."""
        n_classes = int(net.out_channels)
        tp = np.zeros(n_classes)
        fp = np.zeros(n_classes)
        fn = np.zeros(n_classes)
        probas, labels = [], []
        for image, target, origin in zip(self.images, self.targets, self.origins):
            proba = sliding_window_proba(net, image, patch=patch, overlap=overlap,
                                         batch_size=batch_size, device=device,
                                         n_classes=n_classes, size_multiple=net.size_multiple,
                                         origin=origin, spatial_dims=len(patch))
            keep = target != IGNORE
            p, t = proba[keep], target[keep]
            pred = p.argmax(-1)
            for k in range(n_classes):
                tp[k] += np.sum((pred == k) & (t == k))
                fp[k] += np.sum((pred == k) & (t != k))
                fn[k] += np.sum((pred != k) & (t == k))
            probas.append(p)
            labels.append(t)
        p_all = torch.from_numpy(np.concatenate(probas)).T[None]  # (1, K, n)
        t_all = torch.from_numpy(np.concatenate(labels))[None]
        weights = None if class_weights is None else class_weights.cpu()
        # log p as logits: their softmax is p again, so the loss is the training loss.
        val_loss = float(segmentation_loss(torch.log(p_all.clamp_min(1e-7)), t_all, kind=loss,
                                           class_weights=weights))
        present = (tp + fn) > 0
        dice = np.where(present, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
        if self.foreground_only:
            # A validation block without foreground still scores: 1 when nothing is
            # predicted there, 0 as soon as anything is (0/0 counts as agreement).
            denominator = 2 * tp[1] + fp[1] + fn[1]
            score = float(2 * tp[1] / denominator) if denominator else 1.0
        else:
            score = float(np.nanmean(dice))
        return {"val_loss": val_loss, "val_dice": score,
                "val_dice_per_class": [None if np.isnan(d) else float(d) for d in dice]}


@dataclass
class TrainSettings:
    """Everything :func:`train_net` needs besides the network and the data."""

    epochs: int
    iterations_per_epoch: int
    batch_size: int
    patch: tuple[int, ...]
    loss: str = "dice_ce"
    class_weights: torch.Tensor | None = None
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    patience: int | None = 10  # None: no early stopping (the best epoch is still kept)
    time_budget: float | None = None  # seconds
    augment: AugmentConfig | None = None
    # per channel (offset, scale): network input -> the data's units (for real count noise)
    intensity: tuple[tuple[float, float], ...] | None = None
    amp: bool = False
    freeze_encoder_epochs: int = 0
    overlap: float = 0.5
    seed: int = 0


@dataclass
class TrainResult:
    """What :func:`train_net` ran and kept."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    iterations: int = 0
    stopped_because: str = "epochs"
    seconds: float = 0.0


def _shown_total(settings: TrainSettings, horizon: int, epoch: int) -> int:
    # Before the first epoch has timed itself, an unlimited budget run has no horizon yet.
    if settings.epochs >= UNLIMITED_EPOCHS and epoch == 1:
        return settings.iterations_per_epoch
    return horizon


def train_net(net: torch.nn.Module, sampler: PatchSampler, validation: ValidationSet | None,
              settings: TrainSettings, *, device: torch.device,
              progress: Callable[..., None] | None = None) -> TrainResult:
    """Train ``net`` in place and load the best checkpoint into it.

    Every epoch draws ``iterations_per_epoch`` batches from ``sampler``, augments them on
    ``device`` with a generator seeded by ``settings.seed``, and takes one optimizer step per
    batch with the learning rate of the schedule; then the validation set (if any) is
    predicted with the sliding window, and :class:`EarlyStopping` on its Dice decides whether
    to go on. The state of the best validation epoch (the last epoch without validation) is
    loaded back at the end. Training stops after ``epochs``, after ``patience`` epochs
    without a better validation Dice, or once ``time_budget`` seconds have passed (checked
    after every iteration; the epoch in progress is then validated and recorded).
    With a time budget the schedule's horizon is shortened to the epochs that fit in it, so
    that the learning rate still decays; it is estimated again after every epoch
    (:func:`budget_horizon`), so a slow first epoch does not end the schedule early.
    """
    start = time.monotonic()
    result = TrainResult()
    net.to(device)
    params = list(net.parameters())
    if settings.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=settings.learning_rate, momentum=_SGD_MOMENTUM, nesterov=True,
            weight_decay=settings.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=settings.learning_rate,
                                weight_decay=settings.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=settings.amp)
    generator = torch.Generator(device=device).manual_seed(int(settings.seed))
    weights = None if settings.class_weights is None else settings.class_weights.to(device)
    # Without patience the stopper only tracks the best epoch: it never runs out.
    stopper = EarlyStopping(settings.patience or UNLIMITED_EPOCHS) \
        if validation is not None else None
    smoothed = None
    best_state = None
    horizon = settings.epochs * settings.iterations_per_epoch
    encoder = list(net.encoder_parameters())
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.monotonic()
        frozen = epoch <= settings.freeze_encoder_epochs
        for p in encoder:
            p.requires_grad_(not frozen)
        net.train()
        if frozen:
            # Frozen means the normalization statistics too, not just the weights.
            net.encoders.eval()
        losses = []
        out_of_time = False
        for _ in range(settings.iterations_per_epoch):
            lr = settings.learning_rate * lr_factor(settings.schedule, result.iterations,
                                                    horizon)
            for group in opt.param_groups:
                group["lr"] = lr
            x_np, y_np, _corners = sampler.sample(settings.batch_size)
            x = torch.from_numpy(x_np).to(device)
            y = torch.from_numpy(y_np).to(device)
            if settings.augment is not None:
                x, y = augment(x, y, settings.augment, generator=generator,
                               intensity=settings.intensity)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16,
                                enabled=settings.amp):
                logits = net(x)
            loss = segmentation_loss(logits.float(), y, kind=settings.loss,
                                     class_weights=weights)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(float(loss.detach()))
            result.iterations += 1
            if progress is not None:
                progress(result.iterations, _shown_total(settings, horizon, epoch),
                         text=f"epoch {epoch}")
            if settings.time_budget is not None and \
                    time.monotonic() - start > settings.time_budget:
                out_of_time = True
                break
        record: dict[str, Any] = {"epoch": epoch, "train_loss": float(np.mean(losses)),
                                  "val_loss": None, "val_dice": None,
                                  "val_dice_smoothed": None,
                                  "val_dice_per_class": None, "lr": lr,
                                  "iterations": len(losses)}
        stop = False
        if validation is not None:
            record.update(validation.evaluate(
                net, patch=settings.patch, overlap=settings.overlap,
                batch_size=settings.batch_size, device=device, loss=settings.loss,
                class_weights=weights))
            # A validation block is small, so its Dice jumps from epoch to epoch (on EM
            # mitochondria 0.42, 0.65, 0.48, 0.60, 0.59, 0.29, 0.65, 0.65 over 8 epochs) and
            # the raw maximum picked epoch 2 of 8: right-half Dice 0.83 against 0.90 for the
            # last epoch. Epochs are chosen on an exponential moving average instead.
            raw = record["val_dice"]
            smoothed = raw if smoothed is None else (
                VAL_SMOOTHING * smoothed + (1 - VAL_SMOOTHING) * raw)
            record["val_dice_smoothed"] = smoothed
            stop = stopper.step(smoothed)
            if stopper.is_best:
                best_state = copy.deepcopy(net.state_dict())
                result.best_epoch = epoch
        record["seconds"] = time.monotonic() - epoch_start
        result.history.append(record)
        if progress is not None:
            text = f"epoch {epoch}: loss {record['train_loss']:.3g}"
            if record["val_dice"] is not None:
                text += f", val Dice {record['val_dice']:.3f}"
            progress(result.iterations, _shown_total(settings, horizon, epoch), text=text)
        if out_of_time:
            result.stopped_because = "time_budget"
            break
        if stop:
            result.stopped_because = "patience"
            break
        if settings.time_budget is not None:
            horizon = budget_horizon(settings, result.history, time.monotonic() - start)
    for p in encoder:
        p.requires_grad_(True)
    if best_state is not None:
        net.load_state_dict(best_state)
    else:
        result.best_epoch = len(result.history)
    net.eval()
    result.seconds = time.monotonic() - start
    return result
