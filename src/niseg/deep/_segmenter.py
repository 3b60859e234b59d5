"""UNetSegmenter: a self-configuring U-Net that speaks niseg's Segmenter protocol."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from niseg.models import (
    ModelState,
    as_array_list,
    check_binary_mask,
    check_finite_image,
    check_sparse_labels,
    item_name,
    margin_uncertainty,
)

from . import _train
from ._augment_config import PRESETS, AugmentConfig
from ._config import MIN_BOTTLENECK, NetConfig, configure
from ._infer import _resolve_device, sliding_window_proba, tiling_halo, window_step
from ._losses import IGNORE, LOSSES, balanced_class_weights
from ._net import NORMS, UNet, inflate_2d_to_3d
from ._normalize import NORMALIZATIONS, IntensityNormalizer
from ._train import OPTIMIZERS, SCHEDULES, PatchSampler, TrainSettings, ValidationSet
from ._validation import validation_split

#: Epochs and early-stopping patience without a time budget (with one: no limit, no early stop).
DEFAULT_EPOCHS, DEFAULT_PATIENCE = 50, 10

__all__ = ["UNetSegmenter"]


class UNetSegmenter:
    """Train a U-Net on sparse labels or dense masks and predict in Gaussian-blended patches.

    Unset sizes come from :func:`niseg.deep.configure`'s documented rules (recorded in
    ``config_.rules`` and in the model file). Training draws class-balanced patches (see
    :class:`niseg.deep._train.PatchSampler`), augments them on the training device, and
    validates every epoch on an honest validation block carved from the training images by
    :func:`niseg.deep.validation_split` (a gap of the network's halo separates it from the
    training pixels; validation and gap pixels enter training patches as input context only,
    with ignored targets). The weights of the epoch with the best validation Dice are kept.

    Parameters
    ----------
    spatial_dims : {None, 2, 3}
        Spatial axes of the network; ``None``: all axes of the images (except channels). Give
        2 to train a 2-D network on the slices of stacks (leading axes).
    depth, base_channels : int, optional
        Poolings and first-level width of the U-Net (default: from :func:`configure`).
    patch_size : int or tuple of int, optional
        Training and inference patch (default: from :func:`configure`); every size must be a
        multiple of ``2 ** depth`` and fit in every training image.
    batch_size : int, optional
        Patches per step (default: from :func:`configure`, at least 2).
    norm : {"batch", "instance", "group", "none"}
    dropout : float
        Channel dropout at the bottleneck.
    loss : {"dice_ce", "ce", "dice", "focal"}
        See :func:`niseg.deep.segmentation_loss`.
    class_weights : None, "balanced" or sequence of float
        Per-class loss weights; ``"balanced"`` = :func:`niseg.deep.balanced_class_weights` of
        the training pixels.
    optimizer : {"adamw", "sgd"}
        AdamW, or SGD with Nesterov momentum 0.9 (which usually wants ``learning_rate=1e-2``).
    learning_rate : float
        Base learning rate, 1e-3 by default (right for AdamW on these small nets).
    weight_decay : float
    schedule : {"cosine", "poly", "none"}
        Learning-rate decay over all planned iterations (``epochs * iterations_per_epoch``):
        cosine to 0, polynomial ``(1 - t/T) ** 0.9``, or constant.
    epochs : int, optional
        Most epochs. ``None``: 50, or no limit with a ``time_budget`` (the budget ends
        training).
    iterations_per_epoch : int, optional
        Default: enough patches to cover the training images twice, from 10 to 250.
    time_budget : float, optional
        Minutes; training stops once they have passed (the model records what ran). The
        schedule's length is the epochs that fit in the budget, estimated again after every
        epoch, so the learning rate reaches its end as the budget does.
    validation : float or None
        Fraction of the labelled pixels held out for validation (0 < f <= 0.5); ``None``: no
        validation, no early stopping, the last epoch is kept. Ignored when ``fit`` gets
        explicit validation images.
    patience : int, optional
        Epochs without a better (smoothed) validation Dice before stopping. ``None``: 10, or
        no early stopping with a ``time_budget``: the schedule then decays over the whole
        budget and stopping halfway would keep a model trained at a high learning rate; the
        best validation epoch is still the one kept.
    augment : str, dict or AugmentConfig
        A preset name (``"none"``, ``"light"``, ``"default"``, ``"physics"``), an
        :class:`AugmentConfig` or its ``to_dict()``.
    normalization : {None, "zscore", "percentile"}
        Intensity normalization (default: from :func:`configure`).
    overlap : float
        Overlap of neighbouring inference patches (0 to below 1).
    mirror : bool
        Test-time augmentation at prediction: average over all flips.
    device : {"cpu", "cuda", "cuda:N", "auto"}
        Where to train and predict; ``"auto"`` picks CUDA when PyTorch sees a GPU.
    amp : bool, optional
        Mixed precision (float16 autocast with gradient scaling). ``None``: on for CUDA, off
        on the CPU; ``True`` on the CPU is refused (it is slower there, not faster).
    init : str, PathLike or UNetSegmenter, optional
        Fine-tune from a ``.niseg`` U-Net model file or a fitted segmenter: the same number
        of classes and channels is required; its depth, width, normalization and up-sampling
        are used. A 2-D model starts a 3-D net through :func:`inflate_2d_to_3d`. The
        intensity normalization is fitted again on the new training images.
    freeze_encoder_epochs : int
        Epochs during which the encoder (weights and normalization statistics) is frozen.
    channel_axis : {None, -1}
        ``-1``: the last axis of every image holds channels.
    random_state : int
        Seeds the initial weights, patch sampling, augmentation, dropout and the validation
        split. On the CPU the same data, seed and thread count give the same weights
        (``torch.use_deterministic_algorithms`` is on during ``fit``); on CUDA PyTorch's
        deterministic algorithms are used where they exist.
    n_threads : int, optional
        PyTorch CPU threads during ``fit`` and prediction (``None``: PyTorch's setting).

    Attributes
    ----------
    classes_ : (K,) ndarray
        Label values: the classes of sparse ``labels`` or ``[0, 1]`` (uint8) for masks.
    net_ : UNet
        The trained network (best validation epoch), in eval mode.
    config_ : NetConfig
        Patch, depth, width, batch size, normalization and the rules that chose them.
    normalizer_ : IntensityNormalizer
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_dice`` (foreground Dice
        for masks, mean Dice of the classes present otherwise), ``val_dice_smoothed`` (its
        moving average, 0.7 x previous + 0.3 x new, on which the best epoch is chosen and early
        stopping waits), ``val_dice_per_class``,
        ``lr`` (last of the epoch), ``seconds``, ``iterations``.
    best_epoch_ : int
        Epoch whose weights were kept.
    iterations_ : int
        Optimizer steps run.
    stopped_because_ : {"epochs", "patience", "time_budget"}
    validation_ : dict
        Which pixels validated: ``source`` (``"split"``, ``"given"`` or ``"none"``),
        ``gap`` and per block ``image``, ``axis``, ``start``, ``stop``, ``n_val``,
        ``n_train``.
    augment_ : AugmentConfig
    class_weights_ : list of float or None
    training_seconds_ : float
    device_ : str
        Device the model trained on.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((64, 64), np.uint8); truth[16:48, 16:48] = 1
    >>> image = (truth + rng.normal(0, 0.3, truth.shape)).astype(np.float32)
    >>> model = UNetSegmenter(depth=1, base_channels=4, patch_size=32, epochs=2,
    ...                       iterations_per_epoch=5, augment="none", n_threads=1)
    >>> model = model.fit(image, masks=truth)
    >>> model.predict_proba(image).shape, model.predict(image).dtype, model.iterations_
    ((64, 64, 2), dtype('uint8'), 10)
    >>> model.halo, model.tile_multiple
    ((32, 32), (16, 16))
    """

    model_kind = "unet"
    model_version = 1

    def __init__(
        self,
        *,
        spatial_dims: int | None = None,
        depth: int | None = None,
        base_channels: int | None = None,
        patch_size: int | Sequence[int] | None = None,
        batch_size: int | None = None,
        norm: str = "batch",
        dropout: float = 0.0,
        loss: str = "dice_ce",
        class_weights: str | Sequence[float] | None = None,
        optimizer: str = "adamw",
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        schedule: str = "cosine",
        epochs: int | None = None,
        iterations_per_epoch: int | None = None,
        time_budget: float | None = None,
        validation: float | None = 0.1,
        patience: int | None = None,
        augment: str | Mapping[str, Any] | AugmentConfig = "default",
        normalization: str | None = None,
        overlap: float = 0.5,
        mirror: bool = False,
        device: str = "cpu",
        amp: bool | None = None,
        init: str | os.PathLike | UNetSegmenter | None = None,
        freeze_encoder_epochs: int = 0,
        channel_axis: int | None = None,
        random_state: int = 0,
        n_threads: int | None = None,
    ) -> None:
        self._spatial_dims = spatial_dims
        self.depth = depth
        self.base_channels = base_channels
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.norm = norm
        self.dropout = dropout
        self.loss = loss
        self.class_weights = class_weights
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.epochs = epochs
        self.iterations_per_epoch = iterations_per_epoch
        self.time_budget = time_budget
        self.validation = validation
        self.patience = patience
        self.augment = augment
        self.normalization = normalization
        self.overlap = overlap
        self.mirror = mirror
        self.device = device
        self.amp = amp
        self.init = init
        self.freeze_encoder_epochs = freeze_encoder_epochs
        self.channel_axis = channel_axis
        self.random_state = random_state
        self.n_threads = n_threads

    # -- protocol properties -----------------------------------------------------------------

    @property
    def spatial_dims(self) -> int | None:
        """Spatial axes of the trained network (2 or 3); before ``fit``, the parameter."""
        if not hasattr(self, "config_"):
            return self._spatial_dims
        return self.config_.spatial_dims

    @property
    def halo(self) -> tuple[int, ...]:
        """Context for tiled prediction, :func:`tiling_halo` of the patch and overlap: with
        it, and tiles that are multiples of :attr:`tile_multiple`, tiles reproduce the
        untiled probabilities."""
        self._check_fitted()
        return tiling_halo(self.config_.patch_size, self.overlap)

    @property
    def tile_multiple(self) -> tuple[int, ...]:
        """Tile sizes for :func:`niseg.tiling.predict_tiled` should be multiples of this (the
        sliding-window step); its default tile size respects it."""
        self._check_fitted()
        return window_step(self.config_.patch_size, self.overlap)

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, images: Any, labels: Any = None, *, masks: Any = None,
            validation: tuple[Any, Any] | None = None,
            progress: Callable[..., None] | None = None) -> UNetSegmenter:
        """Train on one or several images with sparse labels or dense binary masks.

        Parameters
        ----------
        images : (*leading, M, N[, P][, C]) ndarray or list of ndarray
            Training images (channels last when ``channel_axis=-1``); leading axes are
            slices of a 2-D network (``spatial_dims=2``).
        labels : ndarray or list of ndarray, optional
            Sparse labels of the same shape without channels: 0 = unlabelled, 1..K classes.
        masks : ndarray or list of ndarray, optional
            Dense binary masks (0 and one non-zero value); the model then predicts 0/1.
        validation : (images, labels_or_masks), optional
            Separate validation images with labels (or masks, as for training), instead of
            a block carved from the training images.
        progress : callable, optional
            Called as ``progress(iteration, planned_iterations, text=...)``.

        Returns
        -------
        UNetSegmenter
            ``self``, fitted.
        """
        p = self._check_params()
        image_list, targets, classes, fitted_with = self._targets(images, labels, masks,
                                                                  p["spatial_dims"])
        dims = p["spatial_dims"] or image_list[0].ndim - int(self.channel_axis is not None)
        n_channels = image_list[0].shape[-1] if self.channel_axis is not None else 1
        device = _device(self.device)
        amp = device.type == "cuda" if self.amp is None else bool(self.amp)
        if amp and device.type != "cuda":
            raise ValueError("amp (mixed precision) needs a CUDA device; use amp=None or "
                             "False on the CPU")
        source = self._init_source()
        with _torch_settings(self.n_threads, deterministic=True), torch.random.fork_rng(
                devices=[device.index or 0] if device.type == "cuda" else []):
            torch.manual_seed(int(self.random_state))
            self._fit(image_list, targets, classes, fitted_with, dims, n_channels, device,
                      amp, source, validation, progress, p)
        return self

    def _fit(self, image_list, targets, classes, fitted_with, dims, n_channels, device, amp,
             source, validation, progress, p) -> None:
        n_classes = len(classes)
        spatial_shapes = [t.shape[t.ndim - dims:] for t in targets]
        config = configure(spatial_shapes, spatial_dims=dims, n_channels=n_channels,
                           n_classes=n_classes, device=str(device), images=image_list)
        config = self._override(config, source, spatial_shapes)
        net = self._build_net(config, source)
        normalizer = IntensityNormalizer(config.normalization,
                                         channel_axis=self.channel_axis).fit(image_list)

        rng = np.random.default_rng(self.random_state)
        items, item_targets, item_val, blocks_info = [], [], [], []
        if validation is None and p["validation"] is not None:
            split_input = [t.shape if fitted_with == "masks" else (t != IGNORE)
                           for t in targets]
            blocks = validation_split(split_input, p["validation"], net.halo,
                                      spatial_dims=dims, seed=self.random_state)
            blocks_info = [{"image": i, "axis": b.axis,
                            "start": None if b.val_slice is None else b.val_slice.start,
                            "stop": None if b.val_slice is None else b.val_slice.stop,
                            "n_val": b.n_val, "n_train": b.n_train}
                           for i, b in enumerate(blocks)]
        else:
            blocks = None
        val_images, val_targets, val_origins = [], [], []
        for i, (image, target) in enumerate(zip(image_list, targets)):
            slices = _slices(normalizer.transform(image), target, dims, self.channel_axis)
            train_mask = None if blocks is None else blocks[i].train_mask.reshape(
                -1, *target.shape[target.ndim - dims:])
            val_mask = None if blocks is None else blocks[i].val_mask.reshape(train_mask.shape)
            for j, (x, t) in enumerate(slices):
                items.append(x)
                item_targets.append(t if train_mask is None else
                                    np.where(train_mask[j], t, IGNORE))
                if val_mask is not None and (val_mask[j] & (t != IGNORE)).any():
                    crop = _crop(val_mask[j], net.halo)
                    val_images.append(x[(slice(None), *crop)])
                    val_targets.append(np.where(val_mask[j], t, IGNORE)[crop])
                    val_origins.append(tuple(s.start for s in crop))
                    item_val.append(len(items) - 1)
        if validation is not None:
            v_images, v_targets = self._validation_data(validation, fitted_with, classes, dims,
                                                        n_channels)
            for image, target in zip(v_images, v_targets):
                for x, t in _slices(normalizer.transform(image), target, dims,
                                    self.channel_axis):
                    val_images.append(x)
                    val_targets.append(t)
                    val_origins.append((0,) * dims)
        val_set = ValidationSet(val_images, val_targets, val_origins,
                                foreground_only=fitted_with == "masks") if val_images else None
        for i, t in enumerate(item_targets):
            if any(n < s for n, s in zip(t.shape, config.patch_size)):
                raise ValueError(f"training image {i} has spatial shape {t.shape}, smaller "
                                 f"than the patch size {config.patch_size}")
        sampler = PatchSampler(items, item_targets, config.patch_size, rng)
        weights = self._class_weights(item_targets, n_classes)
        n_pixels = sum(t.size for t in item_targets if (t != IGNORE).any())
        ipe = p["iterations_per_epoch"] or _train.default_iterations(
            n_pixels, config.batch_size, config.patch_size)
        settings = TrainSettings(
            epochs=p["epochs"], iterations_per_epoch=ipe, batch_size=config.batch_size,
            patch=config.patch_size, loss=self.loss, class_weights=weights,
            optimizer=self.optimizer, learning_rate=float(self.learning_rate),
            weight_decay=float(self.weight_decay), schedule=self.schedule,
            patience=p["patience"],
            time_budget=None if self.time_budget is None else 60.0 * self.time_budget,
            augment=None if p["augment"] == AugmentConfig.preset("none") else p["augment"],
            amp=amp, freeze_encoder_epochs=p["freeze"], overlap=float(self.overlap),
            intensity=tuple(zip(normalizer.mean_.tolist(), normalizer.std_.tolist())),
            seed=int(self.random_state))
        result = _train.train_net(net, sampler, val_set, settings, device=device,
                                  progress=progress)

        self.net_ = net.cpu().eval()
        self.config_ = config
        self.normalizer_ = normalizer
        self.classes_ = classes
        self.n_channels_ = int(n_channels)
        self.fitted_with_ = fitted_with
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.iterations_ = result.iterations
        self.iterations_per_epoch_ = ipe
        self.stopped_because_ = result.stopped_because
        self.training_seconds_ = result.seconds
        self.validation_ = {"source": "given" if validation is not None else
                            ("split" if blocks is not None else "none"),
                            "fraction": None if blocks is None else p["validation"],
                            "gap": int(net.halo) if blocks is not None else None,
                            "blocks": [b for b in blocks_info if b["n_val"]]}
        self.augment_ = p["augment"]
        self.class_weights_ = None if weights is None else [float(w) for w in weights]
        self.device_ = str(device)
        self.init_ = None if source is None else (
            os.fspath(self.init) if isinstance(self.init, (str, os.PathLike))
            else "a fitted UNetSegmenter")
        self.class_names_ = None

    # -- prediction --------------------------------------------------------------------------

    def predict_proba(self, image: np.ndarray, *, origin: int | Sequence[int] = 0) -> np.ndarray:
        """Probability of each class for every pixel, by Gaussian-blended sliding window.

        Parameters
        ----------
        image : (M, N[, P][, C]) ndarray
            Image with the model's spatial axes (channels last for multi-channel models).
        origin : int or sequence of int
            Position of ``image`` in a larger image it was cut from (see
            :func:`sliding_window_proba`); blocks starting at multiples of
            :attr:`tile_multiple` need none.

        Returns
        -------
        (M, N[, P], K) ndarray of float32
        """
        self._check_fitted()
        image = self._check_image(image)
        if self.channel_axis is not None and image.ndim == self.spatial_dims:
            image = image[..., None]
        x = self.normalizer_.transform(image)
        if self.n_channels_ > 1 or x.ndim > self.spatial_dims:
            x = np.moveaxis(x, -1, 0)
        with _torch_settings(self.n_threads, deterministic=False):
            return sliding_window_proba(
                self.net_, x, patch=self.config_.patch_size, overlap=self.overlap,
                batch_size=self.config_.batch_size, mirror=bool(self.mirror),
                device=_device(self.device), n_classes=len(self.classes_),
                size_multiple=self.net_.size_multiple, origin=origin,
                spatial_dims=self.spatial_dims)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label image ``classes_[argmax(predict_proba(image))]``, shape ``(M, N[, P])``."""
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(image), axis=-1)]

    def predict_uncertainty(self, image: np.ndarray) -> np.ndarray:
        """Uncertainty ``1 - (p1 - p2)`` of the two largest class probabilities, float32
        ``(M, N[, P])``: 0 where one class is certain, 1 where two tie."""
        return margin_uncertainty(self.predict_proba(image))

    # -- model file --------------------------------------------------------------------------

    def to_model_state(self) -> ModelState:
        """What the model file stores: parameters, learned state, weights (safetensors),
        normalization and provenance (see :func:`niseg.models.save_model`)."""
        self._check_fitted()
        params = self.get_params()
        params["augment"] = self.augment_.to_dict()
        params["init"] = None
        if params["class_weights"] is not None and not isinstance(params["class_weights"], str):
            params["class_weights"] = [float(w) for w in params["class_weights"]]
        if isinstance(params["patch_size"], Sequence):
            params["patch_size"] = [int(s) for s in params["patch_size"]]
        tensors = {k: (v.detach().cpu().float() if v.is_floating_point() else v.cpu()).numpy()
                   for k, v in self.net_.state_dict().items()}
        state = {"classes_": self.classes_.tolist(), "classes_dtype": str(self.classes_.dtype),
                 "n_channels_": self.n_channels_, "fitted_with_": self.fitted_with_,
                 "net": self.net_.config(), "config_": self.config_.to_dict(),
                 "history_": self.history_, "best_epoch_": self.best_epoch_,
                 "iterations_": self.iterations_,
                 "iterations_per_epoch_": self.iterations_per_epoch_,
                 "stopped_because_": self.stopped_because_, "validation_": self.validation_,
                 "augment_": self.augment_.to_dict(), "class_weights_": self.class_weights_,
                 "training_seconds_": self.training_seconds_, "device_": self.device_,
                 "init_": self.init_}
        provenance = {"random_state": self.random_state, "iterations": self.iterations_,
                      "epochs_run": len(self.history_), "best_epoch": self.best_epoch_,
                      "stopped_because": self.stopped_because_,
                      "training_seconds": self.training_seconds_, "device": self.device_,
                      "init": self.init_}
        best = [h for h in self.history_ if h["epoch"] == self.best_epoch_]
        if best and best[0]["val_dice"] is not None:
            provenance["validation_dice"] = best[0]["val_dice"]
        return ModelState(params=params, state=state, tensors=tensors,
                          normalization=self.normalizer_.to_dict(), provenance=provenance)

    @classmethod
    def from_model_state(cls, state: ModelState) -> UNetSegmenter:
        """Rebuild a fitted segmenter from a :class:`niseg.models.ModelState`."""
        params = dict(state.params)
        model = cls(**params)
        s = state.state
        model.net_ = UNet(**s["net"])
        if not state.tensors:
            raise ValueError("a U-Net model needs its network weights")
        try:
            model.net_.load_state_dict({k: torch.from_numpy(np.array(v))
                                        for k, v in state.tensors.items()})
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ValueError(f"the weights do not fit the network ({first})") from None
        model.net_.eval()
        model.config_ = NetConfig.from_dict(s["config_"])
        model.normalizer_ = IntensityNormalizer.from_dict(state.normalization or {})
        model.classes_ = np.asarray(s["classes_"], dtype=np.dtype(s["classes_dtype"]))
        model.n_channels_ = int(s["n_channels_"])
        if model.classes_.size != model.net_.out_channels or \
                model.n_channels_ != model.net_.in_channels:
            raise ValueError("classes_ and n_channels_ do not match the network")
        for name in ("fitted_with_", "history_", "best_epoch_", "iterations_",
                     "iterations_per_epoch_", "stopped_because_", "validation_",
                     "class_weights_", "training_seconds_", "device_", "init_"):
            setattr(model, name, s.get(name))
        model.augment_ = AugmentConfig.from_dict(s["augment_"])
        model.class_names_ = None
        return model

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters as a dict."""
        names = ("depth", "base_channels", "patch_size", "batch_size", "norm", "dropout",
                 "loss", "class_weights", "optimizer", "learning_rate", "weight_decay",
                 "schedule", "epochs", "iterations_per_epoch", "time_budget", "validation",
                 "patience", "augment", "normalization", "overlap", "mirror", "device", "amp",
                 "init", "freeze_encoder_epochs", "channel_axis", "random_state", "n_threads")
        out = {n: getattr(self, n) for n in names}
        out["spatial_dims"] = self._spatial_dims
        return out

    def __repr__(self) -> str:
        return (f"UNetSegmenter(depth={self.depth!r}, base_channels={self.base_channels!r}, "
                f"patch_size={self.patch_size!r}, epochs={self.epochs!r})")

    # -- helpers -----------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError("this UNetSegmenter is not fitted yet; call fit() first")

    def _check_params(self) -> dict[str, Any]:
        sd = self._spatial_dims
        if sd is not None and (isinstance(sd, bool) or sd not in (2, 3)):
            raise ValueError(f"spatial_dims must be None, 2 or 3, got {sd!r}")
        for name in ("depth", "base_channels", "batch_size", "iterations_per_epoch"):
            value = getattr(self, name)
            if value is not None:
                _positive_int(name, value)
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got "
                             f"{self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got "
                             f"{self.schedule!r}")
        if self.normalization is not None and self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be None or one of "
                             f"{', '.join(NORMALIZATIONS)}, got {self.normalization!r}")
        if self.channel_axis not in (None, -1):
            raise ValueError(f"channel_axis must be None or -1 (channels last), got "
                             f"{self.channel_axis!r}")
        for name in ("learning_rate", "time_budget"):
            value = getattr(self, name)
            if (value is not None or name == "learning_rate") and not _positive(value):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not _positive(self.weight_decay) and self.weight_decay != 0:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        fraction = self.validation
        if fraction is not None and (not _positive(fraction) or fraction > 0.5):
            raise ValueError(f"validation must be None or a fraction above 0 and at most 0.5, "
                             f"got {fraction!r}")
        freeze = self.freeze_encoder_epochs
        if isinstance(freeze, bool) or not isinstance(freeze, (int, np.integer)) or freeze < 0:
            raise ValueError(f"freeze_encoder_epochs must be a whole number >= 0, got "
                             f"{freeze!r}")
        if self.n_threads is not None:
            _positive_int("n_threads", self.n_threads)
        if not isinstance(self.overlap, (int, float)) or not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be a number from 0 to below 1, got "
                             f"{self.overlap!r}")
        budget = self.time_budget is not None
        epochs = (_positive_int("epochs", self.epochs) if self.epochs is not None
                  else (_train.UNLIMITED_EPOCHS if budget else DEFAULT_EPOCHS))
        patience = (_positive_int("patience", self.patience) if self.patience is not None
                    else (None if budget else DEFAULT_PATIENCE))
        return {"spatial_dims": sd, "epochs": epochs, "patience": patience,
                "iterations_per_epoch": self.iterations_per_epoch,
                "validation": None if fraction is None else float(fraction),
                "freeze": int(freeze), "augment": _augment_config(self.augment)}

    def _targets(self, images: Any, labels: Any, masks: Any, spatial_dims: int | None
                 ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, str]:
        """Validated images, per-image class indices (IGNORE = unlabelled) and classes."""
        if (labels is None) == (masks is None):
            raise ValueError("give either labels (sparse, 0 = unlabeled) or masks (dense "
                             "binary), exactly one of them")
        image_list = as_array_list(images, "images")
        name = "labels" if labels is not None else "masks"
        raw = as_array_list(labels if labels is not None else masks, name)
        if len(raw) != len(image_list):
            raise ValueError(f"got {len(image_list)} images but {len(raw)} {name}")
        channels = self.channel_axis is not None
        first = image_list[0].ndim - int(channels)
        for i, (image, target) in enumerate(zip(image_list, raw)):
            iname = item_name("images", i, len(image_list))
            check_finite_image(image, iname)
            ndim = image.ndim - int(channels)
            if ndim != first or ndim < (spatial_dims or 2) or (spatial_dims is None
                                                               and ndim not in (2, 3)):
                raise ValueError(f"{iname} has shape {image.shape} but all training images "
                                 f"must have the same number of axes, "
                                 f"{spatial_dims or '2 or 3'} spatial"
                                 f"{' plus channels last' if channels else ''}")
            if channels and image.shape[-1] != image_list[0].shape[-1]:
                raise ValueError(f"{iname} has {image.shape[-1]} channels but the first "
                                 f"training image has {image_list[0].shape[-1]}")
            spatial = image.shape[:ndim]
            if target.shape != spatial:
                raise ValueError(f"{item_name(name, i, len(raw))} has shape {target.shape} but "
                                 f"image has shape {spatial}")
        if masks is not None:
            targets = [_binary_int64(m, item_name("masks", i, len(raw))) for i, m in enumerate(raw)]
            if not any(t.any() for t in targets) or all(t.all() for t in targets):
                raise ValueError("masks must contain both foreground and background pixels")
            return image_list, targets, np.array([0, 1], np.uint8), "masks"
        checked = [check_sparse_labels(t, item_name("labels", i, len(raw))) for i, t in enumerate(raw)]
        present = np.unique(np.concatenate([np.unique(t) for t in checked]))
        classes = present[present != 0]
        if classes.size == 0:
            raise ValueError("labels have no labelled pixels; draw at least two classes "
                             "(values 1..K, 0 = unlabeled)")
        if classes.size == 1:
            raise ValueError(f"labels hold only one class ({classes[0]}); a segmenter needs at "
                             "least two labelled classes")
        targets = [np.where(t == 0, IGNORE, np.searchsorted(classes, t)).astype(np.int64)
                   for t in checked]
        return image_list, targets, classes.astype(np.result_type(classes.dtype, np.uint8)), \
            "labels"

    def _validation_data(self, validation: Any, fitted_with: str, classes: np.ndarray,
                         dims: int, n_channels: int) -> tuple[list, list]:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("validation must be a pair (images, labels) or (images, masks)")
        images = as_array_list(validation[0], "validation images")
        raw = as_array_list(validation[1], f"validation {fitted_with}")
        if len(images) != len(raw):
            raise ValueError(f"got {len(images)} validation images but {len(raw)} "
                             f"validation {fitted_with}")
        targets = []
        for i, (image, target) in enumerate(zip(images, raw)):
            name = item_name("validation images", i, len(images))
            check_finite_image(image, name)
            channels = self.channel_axis is not None
            spatial = image.shape[:image.ndim - int(channels)]
            if target.shape != spatial or len(spatial) < dims or \
                    (channels and image.shape[-1] != n_channels):
                raise ValueError(f"{name} has shape {image.shape} and its {fitted_with} "
                                 f"{target.shape}, which do not match each other or the "
                                 "training images")
            if fitted_with == "masks":
                targets.append(_binary_int64(target, f"validation masks[{i}]"))
                continue
            t = check_sparse_labels(target, f"validation labels[{i}]")
            unknown = np.setdiff1d(np.unique(t), np.concatenate([[0], classes]))
            if unknown.size:
                raise ValueError(f"validation labels[{i}] hold class {unknown[0]}, which the "
                                 f"training labels lack (classes {classes.tolist()})")
            targets.append(np.where(t == 0, IGNORE, np.searchsorted(classes, t)))
        if not any((t != IGNORE).any() for t in targets):
            raise ValueError("the validation labels have no labelled pixels")
        return images, [t.astype(np.int64) for t in targets]

    def _init_source(self) -> UNetSegmenter | None:
        init = self.init
        if init is None:
            return None
        if isinstance(init, (str, os.PathLike)):
            from niseg.models import load_model

            init = load_model(init)
        if not isinstance(init, UNetSegmenter) or not hasattr(init, "net_"):
            raise TypeError(f"init must be a .niseg U-Net model file or a fitted "
                            f"UNetSegmenter, got {type(init).__name__}")
        return init

    def _override(self, config: NetConfig, source: UNetSegmenter | None,
                  shapes: list[tuple[int, ...]]) -> NetConfig:
        """Apply the user's sizes (and those of a model to fine-tune) over the rules."""
        rules = list(config.rules)
        depth, base = self.depth, self.base_channels
        if source is not None:
            src = source.net_
            for name, value, have in (("depth", depth, src.depth),
                                      ("base_channels", base, src.base_channels)):
                if value is not None and value != have:
                    raise ValueError(f"{name} is {value} but the init model has {have}; leave "
                                     f"it unset to fine-tune")
            if config.n_classes != src.out_channels or config.n_channels != src.in_channels:
                raise ValueError(f"the init model has {src.out_channels} classes and "
                                 f"{src.in_channels} channels but the training data have "
                                 f"{config.n_classes} classes and {config.n_channels} channels")
            if src.spatial_dims > config.spatial_dims:
                raise ValueError("the init model is 3-D but the new network is 2-D; a 2-D "
                                 "model can start a 3-D one, not the reverse")
            depth, base = src.depth, src.base_channels
            rules.append(f"fine-tuning: depth {depth}, width {base}, norm {src.norm} and "
                         f"upsample {src.upsample} from the init model")
        patch = config.patch_size
        if self.patch_size is not None:
            patch = _as_tuple(self.patch_size, config.spatial_dims, "patch_size")
            if depth is None:
                depth = _depth_for(patch)
            rules.append(f"patch {patch}: given")
        elif depth is not None:
            m = 2**depth
            patch = tuple(max(m, s // m * m) for s in patch)
        depth = config.depth if depth is None else int(depth)
        if any(s % 2**depth for s in patch):
            raise ValueError(f"patch_size {patch} must be a multiple of 2 ** depth = "
                             f"{2**depth} along every axis")
        smallest = tuple(min(s[a] for s in shapes) for a in range(config.spatial_dims))
        if any(p > n for p, n in zip(patch, smallest)):
            raise ValueError(f"patch_size {patch} is larger than the smallest training image "
                             f"{smallest}; give a smaller patch_size")
        changes = {"patch_size": patch, "depth": depth}
        if base is not None:
            changes["base_channels"] = int(base)
        for name, value in (("depth", self.depth), ("base_channels", self.base_channels),
                            ("batch_size", self.batch_size),
                            ("normalization", self.normalization)):
            if value is not None:
                changes[name] = value
                rules.append(f"{name} {value}: given")
        return dataclasses.replace(config, rules=tuple(rules), **changes)

    def _build_net(self, config: NetConfig, source: UNetSegmenter | None) -> UNet:
        norm, upsample = self.norm, "transpose"
        if source is not None:
            norm, upsample = source.net_.norm, source.net_.upsample
        net = UNet(**config.unet_params(), norm=norm, dropout=float(self.dropout),
                   upsample=upsample)
        if source is not None:
            state = source.net_.state_dict()
            if source.net_.spatial_dims != net.spatial_dims:
                state = inflate_2d_to_3d(state, net)
            net.load_state_dict(state)
        return net

    def _class_weights(self, targets: list[np.ndarray], n_classes: int) -> torch.Tensor | None:
        cw = self.class_weights
        if cw is None:
            return None
        if isinstance(cw, str):
            if cw != "balanced":
                raise ValueError(f"class_weights must be None, 'balanced' or one weight per "
                                 f"class, got {cw!r}")
            return balanced_class_weights(targets, n_classes)
        values = np.asarray(cw, dtype=np.float64).ravel()
        if values.size != n_classes or not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"class_weights must hold {n_classes} non-negative numbers, one "
                             f"per class, got {cw!r}")
        return torch.as_tensor(values, dtype=torch.float32)

    def _check_image(self, image: Any) -> np.ndarray:
        image = np.asarray(image)
        dims = self.spatial_dims
        expected = dims + int(self.n_channels_ > 1 or self.channel_axis is not None)
        if image.ndim == dims + 1 and self.channel_axis is not None:
            if image.shape[-1] != self.n_channels_:
                raise ValueError(f"image has {image.shape[-1]} channels on its last axis but "
                                 f"the model was trained on {self.n_channels_}")
        elif image.ndim != dims or self.n_channels_ != 1:
            raise ValueError(f"image has shape {image.shape} but the model expects "
                             f"{expected} axes ({dims} spatial"
                             f"{', channels last' if expected > dims else ''})")
        check_finite_image(image, "image")
        return image


def _device(device: Any) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return _resolve_device(device)


@contextmanager
def _torch_settings(n_threads: int | None, *, deterministic: bool):
    threads = torch.get_num_threads()
    was = torch.are_deterministic_algorithms_enabled()
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*deterministic.*")
            yield
    finally:
        torch.set_num_threads(threads)
        if deterministic:
            torch.use_deterministic_algorithms(was)


def _slices(image: np.ndarray, target: np.ndarray, dims: int, channel_axis: int | None
            ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split leading axes: ``[(x (C, *spatial), target (*spatial))]`` per slice."""
    spatial = target.shape[target.ndim - dims:]
    x = image if channel_axis is not None else image[..., None]
    x = np.moveaxis(x.reshape(-1, *spatial, x.shape[-1]), -1, 1)
    t = target.reshape(-1, *spatial)
    return [(np.ascontiguousarray(x[j]), t[j]) for j in range(t.shape[0])]


def _crop(mask: np.ndarray, context: int) -> tuple[slice, ...]:
    """Bounding box of ``mask`` grown by ``context`` pixels, inside the image."""
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        out.append(slice(max(int(hits[0]) - context, 0),
                         min(int(hits[-1]) + 1 + context, mask.shape[axis])))
    return tuple(out)


def _depth_for(patch: tuple[int, ...]) -> int:
    """Most poolings (up to 5) that divide the patch and keep 4 px at the bottleneck."""
    depth = 1
    while depth < 5 and all(p % 2 ** (depth + 1) == 0 for p in patch) \
            and min(patch) // 2 ** (depth + 1) >= MIN_BOTTLENECK:
        depth += 1
    return depth


def _as_tuple(value: Any, dims: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * dims
    else:
        try:
            values = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an int or {dims} ints, got {value!r}") from None
    if len(values) != dims or any(v < 1 for v in values):
        raise ValueError(f"{name} must be {dims} positive sizes, got {value!r}")
    return values


def _augment_config(value: Any) -> AugmentConfig:
    if isinstance(value, AugmentConfig):
        return value
    if isinstance(value, str):
        if value not in PRESETS:
            raise ValueError(f"augment must be one of {', '.join(PRESETS)}, an AugmentConfig "
                             f"or a dict, got {value!r}")
        return AugmentConfig.preset(value)
    if isinstance(value, Mapping):
        return AugmentConfig.from_dict(dict(value))
    raise TypeError(f"augment must be a preset name, an AugmentConfig or a dict, got "
                    f"{type(value).__name__}")


def _positive(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
            and math.isfinite(value) and value > 0)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def _binary_int64(mask: np.ndarray, name: str) -> np.ndarray:
    # int64: class indices that unlabelled (IGNORE = -1) pixels can join
    return check_binary_mask(mask, name).astype(np.int64)
