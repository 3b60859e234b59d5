"""A small convolutional network that finds gamma spots, dead and hot pixels.

The network is a :class:`~niseg.deep.UNet` of depth 2 and 8 base channels (about 30 000
weights, a 47-pixel receptive field: enough to see a 10-pixel spot with its surroundings and
to tell the sharp edges of a spot from the blurred edges of an object). It outputs one
logit per pixel: spot or not, bright and dark spots alike; the polarity is applied after.

Input normalization, so that one network works from 50 to 20 000 counts per pixel and for
any camera gain:

1. the *gain* ``g`` (image units per detected quantum) is estimated from the image itself:
   the variance of ``f - median_5x5(f)`` divided by the local level, the median over 32
   bins of level. Counting noise has a variance proportional to the signal, so ``f / g``
   has (up to a constant the training images share) Poisson-like statistics whatever the
   exposure or the camera gain;
2. the Anscombe transform ``a = 2 sqrt(f / g + 3/8)`` makes that noise nearly uniform
   (unit-like standard deviation) at every level, in bright and dark regions alike;
3. the local level is removed: ``r = a - median_5x5(a)`` (the Anscombe transform is
   monotonic, so ``median(a)`` is ``A(median(f))`` and one median filter serves both);
4. ``asinh(r)`` compresses strong spots (up to thousands of noise units) to a few units
   while keeping the noise and weak spots nearly linear.

An offset (an unsubtracted dark current) makes the estimated gain too small for dark
regions; normalize the image first (:func:`niseg.preprocess.normalize`) when the offset is
large compared with the signal.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from niseg.models import ModelState

from ._losses import LOSSES, segmentation_loss
from ._net import UNet

__all__ = ["SHIPPED_SPOT_MODEL", "CNNSpotDetector", "shipped_spot_detector", "train_spot_cnn"]

#: The spot model shipped with niseg (``benchmarks/train_spot_cnn.py`` writes it).
SHIPPED_SPOT_MODEL = Path(__file__).with_name("spot_cnn.niseg")

#: Window of the median that removes the local level before the network.
MEDIAN_SIZE = 5
_GAIN_BINS = 32
_THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
#: Core tile side of the tiled forward pass (bounds memory: about 30 MB per tile).
_TILE = 512


class CNNSpotDetector:
    """Convolutional spot detector: a small U-Net on noise-normalized images.

    Parameters
    ----------
    depth : int, optional
        Poolings of the U-Net (1 to 4).
    base_channels : int, optional
        Channels of its first level.
    iterations : int, optional
        Optimizer steps of :meth:`fit`.
    batch_size : int, optional
        Patches per step.
    patch : int, optional
        Side of the square training patches in pixels (a multiple of ``2 ** depth``).
    learning_rate : float, optional
        Peak learning rate of AdamW (cosine decay to zero over ``iterations``).
    loss : {"dice_ce", "ce", "dice", "focal"}, optional
        Training loss (see :func:`niseg.deep.segmentation_loss`); Dice + cross-entropy
        copes with spots being 1 % of the pixels or fewer.
    random_state : int, optional
        Seed of the weight initialisation and of the patch draw.

    Attributes
    ----------
    net_ : UNet
        The trained network (one output channel: the spot logit).
    threshold_ : float
        Probability at and above which a pixel is a spot: 0.5, or the value with the best F1
        on the ``validation`` images given to :meth:`fit`.
    classes_ : ndarray
        ``[0, 1]`` (no spot, spot).
    iterations_ : int
        Optimizer steps run.
    loss_curve_ : list of float
        Mean training loss of every 50 steps.

    Examples
    --------
    >>> import torch
    >>> from niseg.deep import CNNSpotDetector
    >>> from niseg.simulate import simulate_spots
    >>> _ = torch.set_num_threads(1)
    >>> train = simulate_spots(size=64, counts=500.0, density=0.01, seed=1)
    >>> model = CNNSpotDetector(base_channels=4, iterations=3, batch_size=2, patch=32)
    >>> model = model.fit(train.raw, train.mask)
    >>> proba = model.predict_proba(train.raw)
    >>> proba.shape, proba.dtype, model.iterations_
    ((64, 64), dtype('float32'), 3)
    >>> model.detect(train.raw, polarity="bright").dtype
    dtype('bool')
    """

    model_kind = "spot-cnn"
    model_version = 1

    def __init__(self, *, depth: int = 2, base_channels: int = 8, iterations: int = 1000,
                 batch_size: int = 16, patch: int = 64, learning_rate: float = 3e-3,
                 loss: str = "dice_ce", random_state: int = 0) -> None:
        self.depth = depth
        self.base_channels = base_channels
        self.iterations = iterations
        self.batch_size = batch_size
        self.patch = patch
        self.learning_rate = learning_rate
        self.loss = loss
        self.random_state = random_state

    # ------------------------------------------------------------------ protocol
    @property
    def spatial_dims(self) -> int:
        """2: the detector works on 2D frames."""
        return 2

    @property
    def halo(self) -> int:
        """Receptive-field radius in pixels: the network's, on the pooling grid, plus the
        median's (the gain is estimated from the whole image)."""
        self._check_fitted()
        multiple = self.net_.size_multiple
        return multiple * math.ceil(self.net_.halo / multiple) + MEDIAN_SIZE // 2

    # ------------------------------------------------------------------ fitting
    def fit(self, images: Any, masks: Any, *,
            validation: tuple[Any, Any] | None = None,
            progress: Callable[[int, int], None] | None = None) -> CNNSpotDetector:
        """Train on images and their exact spot masks (non-zero = spot).

        Parameters
        ----------
        images : (M, N) ndarray or sequence of them
            Training images (counts or any linear camera units); each at least ``patch``
            pixels on both sides.
        masks : (M, N) ndarray or sequence of them
            Spot masks of the same shapes; any non-zero value is a spot (bright or dark).
        validation : (images, masks), optional
            Held-out images and masks on which the probability threshold with the best F1
            is chosen (``threshold_``); without them the threshold is 0.5.
        progress : callable, optional
            Called as ``progress(done, total)`` every 10 steps.

        Returns
        -------
        CNNSpotDetector
            ``self``, fitted.
        """
        self._check_params()
        image_list, mask_list = _pairs(images, masks, "images", "masks")
        for i, image in enumerate(image_list):
            if min(image.shape) < self.patch:
                raise ValueError(f"images[{i}] has shape {image.shape} but training needs at "
                                 f"least {self.patch} x {self.patch} pixels (patch)")
        if not any(m.any() for m in mask_list):
            raise ValueError("masks mark no spot pixel; the detector needs spots to learn from")
        inputs = [network_input(image)[0] for image in image_list]
        targets = [m.astype(np.int64) for m in mask_list]

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.random_state))
            net = UNet(2, 1, 1, depth=int(self.depth), base_channels=int(self.base_channels),
                       norm="none")
        optimizer = torch.optim.AdamW(net.parameters(), lr=float(self.learning_rate),
                                      weight_decay=1e-4)
        total = int(self.iterations)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)))
        rng = np.random.default_rng(int(self.random_state))
        net.train()
        curve, running = [], []
        for step in range(total):
            x, y = _batch(inputs, targets, rng, int(self.batch_size), int(self.patch))
            loss = segmentation_loss(net(torch.from_numpy(x)), torch.from_numpy(y),
                                     kind=self.loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            running.append(float(loss.detach()))
            if len(running) == 50 or step == total - 1:
                curve.append(float(np.mean(running)))
                running = []
            if progress is not None and ((step + 1) % 10 == 0 or step + 1 == total):
                progress(step + 1, total)
        net.eval()
        self.net_ = net
        self.classes_ = np.array([0, 1], dtype=np.uint8)
        self.n_channels_ = 1
        self.iterations_ = total
        self.loss_curve_ = curve
        self.threshold_ = 0.5
        if validation is not None:
            self.threshold_ = self._calibrate(validation)
        return self

    def _calibrate(self, validation: Any) -> float:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("validation must be a pair (images, masks)")
        images, masks = _pairs(validation[0], validation[1], "validation images",
                               "validation masks")
        counts = np.zeros((_THRESHOLDS.size, 3), dtype=np.int64)
        for image, mask in zip(images, masks):
            proba = self.predict_proba(image)
            for i, t in enumerate(_THRESHOLDS):
                found = proba >= t
                counts[i] += (np.count_nonzero(found & mask), np.count_nonzero(found & ~mask),
                              np.count_nonzero(~found & mask))
        tp, fp, fn = counts.T
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        return float(_THRESHOLDS[int(np.argmax(f1))])

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, image: Any) -> np.ndarray:
        """Spot probability per pixel.

        The network runs tile by tile (:func:`niseg.tiling.predict_tiled`, 512-pixel cores
        with the network's halo), so memory stays bounded for large images.

        Parameters
        ----------
        image : (M, N) ndarray
            A 2D image (any real dtype, finite values).

        Returns
        -------
        (M, N) float32 ndarray
            Values in [0, 1]; ``threshold_`` and above is a spot.
        """
        self._check_fitted()
        return _proba(self.net_, network_input(image)[0])

    def predict(self, image: Any) -> np.ndarray:
        """Spot mask of an image, bright and dark spots alike.

        Parameters
        ----------
        image : (M, N) ndarray
            A 2D image.

        Returns
        -------
        (M, N) bool ndarray
            True where the spot probability is at least ``threshold_``.
        """
        return self.predict_proba(image) >= self.threshold_

    def detect(self, image: Any, *, polarity: str = "both") -> np.ndarray:
        """Spot mask of one polarity.

        Parameters
        ----------
        image : (M, N) ndarray
            A 2D image.
        polarity : {"bright", "dark", "both"}, optional
            Keep the spots (8-connected regions) that stand above their 5 x 5 median
            (summed over the spot), those below it, or both.

        Returns
        -------
        (M, N) bool ndarray
            True at spot pixels.
        """
        self._check_fitted()
        if polarity not in ("bright", "dark", "both"):
            raise ValueError(f"polarity must be one of 'bright', 'dark', 'both', "
                             f"got {polarity!r}")
        values, frame, median = network_input(image)
        mask = _proba(self.net_, values) >= self.threshold_
        if polarity == "both":
            return mask
        # Polarity per spot (8-connected region), by the sign of its summed residual: inside
        # a large spot the window median is itself a spot value, so a pixel-wise sign would
        # split the spot.
        labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
        if n == 0:
            return mask
        sums = ndimage.sum_labels(frame - median, labels, index=np.arange(1, n + 1))
        keep = sums > 0 if polarity == "bright" else sums < 0
        return np.concatenate([[False], keep])[labels]

    # ------------------------------------------------------------------ model file
    def to_model_state(self) -> ModelState:
        """Return what the model file stores (see :func:`niseg.models.save_model`)."""
        self._check_fitted()
        tensors = {k: v.detach().cpu().numpy().copy() for k, v in self.net_.state_dict().items()}
        return ModelState(
            params=self.get_params(),
            state={"threshold_": self.threshold_, "iterations_": self.iterations_,
                   "loss_curve_": list(self.loss_curve_), "net": self.net_.config()},
            tensors=tensors,
            normalization={"method": "gain-anscombe-median-asinh", "median_size": MEDIAN_SIZE},
            provenance=dict(getattr(self, "provenance_", None) or {}),
        )

    @classmethod
    def from_model_state(cls, state: ModelState) -> CNNSpotDetector:
        """Rebuild a fitted detector from a :class:`niseg.models.ModelState`."""
        model = cls(**state.params)
        s = state.state
        norm = state.normalization or {}
        if norm.get("median_size", MEDIAN_SIZE) != MEDIAN_SIZE:
            raise ValueError(f"the spot model uses a median of {norm.get('median_size')} "
                             f"pixels but this niseg uses {MEDIAN_SIZE}")
        net = UNet(**s["net"])
        if not state.tensors:
            raise ValueError("the spot model has no network weights")
        weights = {k: torch.from_numpy(np.array(v)) for k, v in state.tensors.items()}
        try:
            net.load_state_dict(weights)
        except RuntimeError:
            raise ValueError("the network weights do not fit the recorded network") from None
        net.eval()
        model.net_ = net
        model.threshold_ = float(s["threshold_"])
        model.iterations_ = int(s["iterations_"])
        model.loss_curve_ = [float(v) for v in s.get("loss_curve_", [])]
        model.classes_ = np.array([0, 1], dtype=np.uint8)
        model.n_channels_ = 1
        return model

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters as a dict (scikit-learn style)."""
        return {"depth": self.depth, "base_channels": self.base_channels,
                "iterations": self.iterations, "batch_size": self.batch_size,
                "patch": self.patch, "learning_rate": self.learning_rate, "loss": self.loss,
                "random_state": self.random_state}

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        for name, low in (("depth", 1), ("base_channels", 1), ("iterations", 1),
                          ("batch_size", 1), ("patch", 4), ("random_state", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.depth > 4:
            raise ValueError(f"depth must be an integer from 1 to 4, got {self.depth}")
        if self.patch % 2**self.depth:
            raise ValueError(f"patch must be a multiple of {2**self.depth} for depth "
                             f"{self.depth}, got {self.patch}")
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ValueError(f"learning_rate must be a positive number, got {rate!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError("this CNNSpotDetector is not fitted yet; call fit(images, masks) "
                             "first or load a model file")


def train_spot_cnn(
    *,
    counts_range: tuple[float, float] = (50.0, 20000.0),
    n_images: int = 40,
    n_validation: int = 8,
    size: int = 192,
    iterations: int = 1000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    **params: Any,
) -> CNNSpotDetector:
    """Train a :class:`CNNSpotDetector` on simulated spotty radiographs.

    Images come from :func:`niseg.simulate.simulate_spots` with the count level drawn
    log-uniformly from ``counts_range``, detector blur uniformly from 0.7 to 1.5 pixels,
    spots covering 1 % of the pixels (a third of them dark) and the default spot sizes and
    amplitudes (1-10 px, 6-2000 noise deviations). The target is the exact spot mask.
    ``n_validation`` further images, drawn the same way, choose the probability threshold.
    Image seeds are derived from ``seed`` (``numpy.random.SeedSequence([seed, 6])``, 32-bit
    values, recorded in ``provenance_``), so they do not collide with small test seeds.

    Parameters
    ----------
    counts_range : (float, float), optional
        Lowest and highest open-beam counts per pixel.
    n_images, n_validation : int, optional
        Training and validation images.
    size : int, optional
        Side of each simulated image in pixels.
    iterations : int, optional
        Optimizer steps.
    seed : int, optional
        Seed of the images, the weights and the patch draw.
    progress : callable, optional
        ``progress(done, total)`` during training.
    **params
        Further :class:`CNNSpotDetector` parameters (``depth``, ``base_channels``, ...).

    Returns
    -------
    CNNSpotDetector
        Fitted, with ``provenance_`` describing the training data.

    Examples
    --------
    >>> import torch
    >>> _ = torch.set_num_threads(1)
    >>> model = train_spot_cnn(n_images=2, n_validation=1, size=64, iterations=2,
    ...                        batch_size=2, patch=32, base_channels=4)
    >>> model.iterations_, model.provenance_["n_images"]
    (2, 2)
    """
    from niseg.simulate import simulate_spots

    low, high = (float(v) for v in counts_range)
    if not 0 < low <= high:
        raise ValueError(f"counts_range must be two positive numbers, low first, "
                         f"got {counts_range!r}")
    for name, value, least in (("n_images", n_images, 1), ("n_validation", n_validation, 0),
                               ("size", size, 16), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    total = int(n_images) + int(n_validation)
    seeds = [int(s) for s in np.random.SeedSequence([int(seed), 6]).generate_state(total)]
    rng = np.random.default_rng(seeds[0])
    counts = np.exp(rng.uniform(math.log(low), math.log(high), total))
    blurs = rng.uniform(0.7, 1.5, total)
    images, masks = [], []
    for s, c, b in zip(seeds, counts, blurs):
        sim = simulate_spots(size=int(size), counts=float(c), blur=float(b), density=0.01,
                             dark_fraction=1 / 3, seed=s)
        images.append(sim.raw)
        masks.append(sim.mask > 0)
    validation = None
    if n_validation:
        validation = (images[n_images:], masks[n_images:])
    start = time.perf_counter()
    model = CNNSpotDetector(iterations=iterations, random_state=int(seed), **params)
    model.fit(images[:n_images], masks[:n_images], validation=validation, progress=progress)
    model.provenance_ = {
        "training_data": "niseg.simulate.simulate_spots",
        "seed": int(seed),
        "image_seeds": seeds,
        "n_images": int(n_images),
        "n_validation": int(n_validation),
        "size": int(size),
        "counts": [round(float(c), 3) for c in counts],
        "blur": [round(float(b), 4) for b in blurs],
        "density": 0.01,
        "dark_fraction": 1 / 3,
        "iterations": model.iterations_,
        "threshold": model.threshold_,
        "train_seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
    }
    return model


@functools.lru_cache(maxsize=1)
def shipped_spot_detector() -> CNNSpotDetector:
    """The spot detector shipped with niseg (loaded once, then cached).

    Trained by ``python benchmarks/train_spot_cnn.py --out src/niseg/deep/spot_cnn.niseg``
    (see that script for the settings: 3 000 steps on 40 simulated radiographs from 50 to
    20 000 counts per pixel, threshold 0.55 chosen on 8 more).

    Returns
    -------
    CNNSpotDetector

    Examples
    --------
    >>> shipped_spot_detector().threshold_ > 0
    True
    """
    from niseg.models import load_model

    if not SHIPPED_SPOT_MODEL.is_file():
        raise ValueError(f"the shipped spot model {SHIPPED_SPOT_MODEL} is missing; "
                         "reinstall niseg or run benchmarks/train_spot_cnn.py")
    return load_model(SHIPPED_SPOT_MODEL)


# ---------------------------------------------------------------------------- internals


def network_input(image: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalized network input of a frame (see the module notes).

    Returns ``(input, frame, median)``: the float32 input ``asinh(A(f/g) - A(median))``,
    the frame as float32 and its 5 x 5 median.
    """
    from niseg.preprocess._spots import _check_frame

    frame = _check_frame(image, name="image")
    median = ndimage.median_filter(frame, size=MEDIAN_SIZE, mode="reflect")
    gain = estimate_gain(frame, median)
    scale = np.float32(1.0 / gain)
    a = 2.0 * np.sqrt(np.maximum(frame * scale + np.float32(0.375), 0))
    a_med = 2.0 * np.sqrt(np.maximum(median * scale + np.float32(0.375), 0))
    return np.arcsinh(a - a_med).astype(np.float32), frame, median


def estimate_gain(frame: np.ndarray, median: np.ndarray) -> float:
    """Image units per detected quantum: variance of ``f - median`` over the level.

    Robust (MAD) variances in 32 equal-count bins of the level, divided by the bin's level,
    median over the bins with a positive level. A noiseless image gets a gain of a
    millionth of its range, so that any spot stands far above its (absent) noise.
    """
    level = median.ravel()
    residual = (frame - median).ravel()
    step = max(1, level.size // 200_000)
    level, residual = level[::step].astype(np.float64), residual[::step].astype(np.float64)
    order = np.argsort(level, kind="stable")
    ratios = []
    for part in np.array_split(order, min(_GAIN_BINS, max(1, level.size // 50))):
        if part.size == 0:
            continue
        lev = float(np.mean(level[part]))
        r = residual[part]
        sigma = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        if lev > 0 and sigma > 0:
            ratios.append(sigma * sigma / lev)
    floor = max(float(np.ptp(frame)), float(np.max(np.abs(frame))), 1e-30) * 1e-6
    return max(float(np.median(ratios)) if ratios else 0.0, floor)


class _NetOnInput:
    """The network as a one-class segmenter of the normalized input, for predict_tiled."""

    spatial_dims = 2
    n_channels_ = 1
    classes_ = np.array([1], dtype=np.uint8)

    def __init__(self, net: UNet) -> None:
        self.net = net
        multiple = net.size_multiple
        # A halo on the pooling grid keeps every tile's pooling aligned with the whole image.
        self.halo = multiple * math.ceil(net.halo / multiple)

    def predict_proba(self, block: np.ndarray) -> np.ndarray:
        multiple = self.net.size_multiple
        pad = [(0, (-n) % multiple) for n in block.shape]
        padded = np.pad(block, pad, mode="symmetric")
        with torch.no_grad():
            logits = self.net(torch.from_numpy(np.ascontiguousarray(padded))[None, None])
            proba = torch.sigmoid(logits)[0, 0].numpy()
        return proba[:block.shape[0], :block.shape[1], None]


def _proba(net: UNet, values: np.ndarray) -> np.ndarray:
    from niseg.tiling import predict_tiled

    proba = predict_tiled(_NetOnInput(net), values, tile=_TILE, output="proba")
    return np.ascontiguousarray(proba[..., 0], dtype=np.float32)


def _batch(inputs: list[np.ndarray], targets: list[np.ndarray], rng: np.random.Generator,
           batch_size: int, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Random patches with random flips and transposes (the spot statistics are isotropic)."""
    xs = np.empty((batch_size, 1, patch, patch), dtype=np.float32)
    ys = np.empty((batch_size, patch, patch), dtype=np.int64)
    for b in range(batch_size):
        i = int(rng.integers(len(inputs)))
        m, n = inputs[i].shape
        y0 = int(rng.integers(0, m - patch + 1))
        x0 = int(rng.integers(0, n - patch + 1))
        x = inputs[i][y0:y0 + patch, x0:x0 + patch]
        y = targets[i][y0:y0 + patch, x0:x0 + patch]
        flip_y, flip_x, swap = rng.integers(0, 2, 3)
        if flip_y:
            x, y = x[::-1], y[::-1]
        if flip_x:
            x, y = x[:, ::-1], y[:, ::-1]
        if swap:
            x, y = x.T, y.T
        xs[b, 0], ys[b] = x, y
    return xs, ys


def _pairs(images: Any, masks: Any, image_name: str, mask_name: str
           ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from niseg.preprocess._spots import _check_frame

    image_list = _as_list(images, image_name)
    mask_list = _as_list(masks, mask_name)
    if len(image_list) != len(mask_list):
        raise ValueError(f"{image_name} has {len(image_list)} images but {mask_name} has "
                         f"{len(mask_list)}")
    frames, bools = [], []
    for i, (image, mask) in enumerate(zip(image_list, mask_list)):
        frame = _check_frame(image, name=f"{image_name}[{i}]")
        target = np.asarray(mask)
        if target.shape != frame.shape:
            raise ValueError(f"{mask_name}[{i}] has shape {target.shape} but its image has "
                             f"shape {frame.shape}")
        frames.append(frame)
        bools.append(target != 0)
    return frames, bools


def _as_list(value: Any, name: str) -> list[Any]:
    if isinstance(value, np.ndarray):
        return [value] if value.ndim == 2 else list(value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = list(value)
        if items and np.ndim(items[0]) == 2:
            return items
        return [np.asarray(value)]
    raise TypeError(f"{name} must be a 2D array or a sequence of 2D arrays, "
                    f"got {type(value).__name__}")
