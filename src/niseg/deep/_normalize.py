"""Intensity normalization of network inputs, fitted on the training images."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from niseg.models import as_array_list

#: Methods ``IntensityNormalizer(method=...)`` accepts.
NORMALIZATIONS = ("zscore", "percentile")

# Values read per image for percentiles (strided, so deterministic) and per chunk for the
# float64 moments, which keeps memory bounded for large volumes.
_PERCENTILE_SAMPLES = 2_000_000
_CHUNK = 1 << 20


class IntensityNormalizer:
    """Map image intensities to zero mean and unit variance with training-set statistics.

    ``"zscore"`` subtracts the mean and divides by the standard deviation of all training
    pixels. ``"percentile"`` first clips to the ``lower`` and ``upper`` percentiles of the
    training pixels, then z-scores with the mean and standard deviation of the clipped
    values, so a few extreme voxels (metal, ring artefacts, hot pixels in CT) neither
    dominate the statistics nor reach the network. The statistics are stored with the
    model (:meth:`to_dict`) and applied unchanged to every image it predicts.

    Parameters
    ----------
    method : {"zscore", "percentile"}
        See above; :func:`choose_normalization` picks one from the data.
    lower, upper : float
        Percentiles (0 to 100) of the clipping range of ``"percentile"``.
    channel_axis : {None, -1}
        ``None``: single-channel images. ``-1``: the last axis holds channels, each
        normalized with its own statistics.

    Attributes
    ----------
    mean_, std_ : (C,) ndarray of float64
        Statistics per channel (``C = 1`` without a channel axis).
    clip_low_, clip_high_ : (C,) ndarray of float64 or None
        The clipping range of ``"percentile"`` (``None`` for ``"zscore"``).
    n_channels_ : int

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[0, 10], [20, 30]], dtype=np.uint16)
    >>> norm = IntensityNormalizer().fit(image)
    >>> norm.transform(image)
    array([[-1.3416408, -0.4472136], [ 0.4472136,  1.3416408]], dtype=float32)
    >>> IntensityNormalizer.from_dict(norm.to_dict()).transform(image).dtype
    dtype('float32')

    Percentile clipping keeps one hot pixel from squashing everything else:

    >>> ct = np.linspace(0.0, 1.0, 1000); ct[0] = 1e6
    >>> clipped = IntensityNormalizer("percentile", 1, 99).fit(ct).transform(ct)
    >>> round(float(clipped.std()), 2), float(clipped.max()) < 2
    (1.0, True)
    """

    def __init__(self, method: str = "zscore", lower: float = 0.5, upper: float = 99.5, *,
                 channel_axis: int | None = None) -> None:
        self.method = method
        self.lower = lower
        self.upper = upper
        self.channel_axis = channel_axis

    def _check_params(self) -> None:
        if self.method not in NORMALIZATIONS:
            raise ValueError(f"method must be one of {', '.join(NORMALIZATIONS)}, got "
                             f"{self.method!r}")
        for name in ("lower", "upper"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not 0 <= value <= 100:
                raise ValueError(f"{name} must be a percentile from 0 to 100, got {value!r}")
        if not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        if self.channel_axis not in (None, -1):
            raise ValueError(f"channel_axis must be None or -1 (channels last), got "
                             f"{self.channel_axis!r}")

    def fit(self, images: Any) -> IntensityNormalizer:
        """Learn the statistics from one or several training images.

        Parameters
        ----------
        images : (M, N[, P][, C]) ndarray or list of ndarray
            Training images (all of them together give the statistics); NaN or infinite
            values are refused.

        Returns
        -------
        IntensityNormalizer
            ``self``, fitted.
        """
        self._check_params()
        image_list = as_array_list(images, "images")
        channels = None
        for i, image in enumerate(image_list):
            name = f"images[{i}]" if len(image_list) > 1 else "images"
            _check_numeric(image, name)
            if image.size == 0:
                raise ValueError(f"{name} is empty")
            if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
                raise ValueError(f"{name} contains NaN or infinite values; replace or mask "
                                 "them before training")
            n = image.shape[-1] if self.channel_axis is not None else 1
            if channels is not None and n != channels:
                raise ValueError(f"{name} has {n} channels but the first image has {channels}")
            channels = n
        mean, std, low, high = [], [], [], []
        for c in range(channels):
            parts = [_channel(image, c, self.channel_axis) for image in image_list]
            lo = hi = None
            if self.method == "percentile":
                sample = np.concatenate([_strided_sample(p, _PERCENTILE_SAMPLES // len(parts))
                                         for p in parts])
                lo, hi = (float(v) for v in np.percentile(sample, [self.lower, self.upper]))
                low.append(lo)
                high.append(hi)
            m, s = _moments(parts, lo, hi)
            if not s > 0:
                raise ValueError(f"images have constant values ({m:g}) in channel {c}; "
                                 "intensity normalization needs varying values")
            mean.append(m)
            std.append(s)
        self.mean_ = np.array(mean)
        self.std_ = np.array(std)
        self.clip_low_ = np.array(low) if low else None
        self.clip_high_ = np.array(high) if high else None
        self.n_channels_ = int(channels)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise ValueError("this IntensityNormalizer is not fitted yet; call fit() first")

    def transform(self, image: Any) -> Any:
        """Normalize an image with the fitted statistics.

        Parameters
        ----------
        image : (M, N[, P][, C]) ndarray or torch.Tensor
            Image (channels last when ``channel_axis=-1``); a tensor stays on its device.

        Returns
        -------
        (M, N[, P][, C]) ndarray or torch.Tensor of float32
        """
        self._check_fitted()
        is_tensor = isinstance(image, torch.Tensor)
        if not is_tensor:
            image = np.asarray(image)
            _check_numeric(image, "image")
        if self.channel_axis is not None and (image.ndim == 0
                                              or image.shape[-1] != self.n_channels_):
            raise ValueError(f"image has shape {tuple(image.shape)} but the normalizer expects "
                             f"{self.n_channels_} channels on the last axis")
        if is_tensor:
            x = image.to(torch.float32)

            def const(values: np.ndarray) -> torch.Tensor:
                return torch.as_tensor(values, dtype=torch.float32, device=x.device)

            if self.clip_low_ is not None:
                x = torch.minimum(torch.maximum(x, const(self.clip_low_)),
                                  const(self.clip_high_))
            return (x - const(self.mean_)) / const(self.std_)
        x = image.astype(np.float32)
        if self.clip_low_ is not None:
            x = np.clip(x, self.clip_low_.astype(np.float32), self.clip_high_.astype(np.float32))
        return ((x - self.mean_.astype(np.float32)) / self.std_.astype(np.float32)).astype(
            np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """The method, its parameters and the fitted statistics as a JSON-able dict (what a
        model file stores as ``normalization``)."""
        self._check_fitted()
        return {"method": self.method, "lower": float(self.lower), "upper": float(self.upper),
                "channel_axis": self.channel_axis, "mean": self.mean_.tolist(),
                "std": self.std_.tolist(),
                "clip_low": None if self.clip_low_ is None else self.clip_low_.tolist(),
                "clip_high": None if self.clip_high_ is None else self.clip_high_.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntensityNormalizer:
        """Rebuild a fitted normalizer from :meth:`to_dict`'s output.

        Parameters
        ----------
        data : dict
            As written by :meth:`to_dict`.

        Returns
        -------
        IntensityNormalizer
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"normalization must be a dict, got {type(data).__name__}")
        for key in ("method", "lower", "upper", "channel_axis", "mean", "std", "clip_low",
                    "clip_high"):
            if key not in data:
                raise ValueError(f"normalization is missing '{key}'")
        norm = cls(data["method"], data["lower"], data["upper"],
                   channel_axis=data["channel_axis"])
        norm._check_params()
        try:
            mean = np.asarray(data["mean"], dtype=np.float64).reshape(-1)
            std = np.asarray(data["std"], dtype=np.float64).reshape(-1)
            clips = [None if data[k] is None else np.asarray(data[k], np.float64).reshape(-1)
                     for k in ("clip_low", "clip_high")]
        except (TypeError, ValueError):
            raise ValueError("normalization has non-numeric statistics") from None
        needs_clip = norm.method == "percentile"
        if (mean.size == 0 or std.shape != mean.shape or not np.all(std > 0)
                or not np.all(np.isfinite(mean))
                or any((c is None) == needs_clip for c in clips)
                or (needs_clip and any(c.shape != mean.shape for c in clips))):
            raise ValueError("normalization has inconsistent statistics (one mean, positive "
                             "std and, for 'percentile', clip_low/clip_high per channel)")
        norm.mean_, norm.std_ = mean, std
        norm.clip_low_, norm.clip_high_ = clips
        norm.n_channels_ = int(mean.size)
        return norm


def choose_normalization(images: Any) -> tuple[str, str]:
    """Pick ``"zscore"`` or ``"percentile"`` for the training images, with the reason.

    The rule: integer images (counts, grey levels) get ``"zscore"``; floating-point images
    get ``"percentile"`` when their values have heavy tails -- some value lies further
    beyond the 0.5-99.5 percentile range than that range is wide, as metal, ring artefacts
    or hot pixels produce in reconstructed CT -- and ``"zscore"`` otherwise. (A Gaussian
    sample of a million values reaches about half a range beyond it.)

    Parameters
    ----------
    images : (M, N[, P][, C]) ndarray or list of ndarray
        The training images (NaN values are left out of the decision).

    Returns
    -------
    method : str
    reason : str
        One plain-English sentence, recorded with the model.

    Examples
    --------
    >>> import numpy as np
    >>> choose_normalization(np.arange(100, dtype=np.uint16).reshape(10, 10))[0]
    'zscore'
    >>> ct = np.random.default_rng(0).normal(0.02, 0.005, (64, 64)); ct[5, 5] = 3.0
    >>> choose_normalization(ct)
    ('percentile', 'percentile clipping: floating-point data with heavy tails (values reach 118
    percentile ranges beyond the 0.5-99.5 percentile range)')
    """
    image_list = as_array_list(images, "images")
    for i, image in enumerate(image_list):
        _check_numeric(image, f"images[{i}]" if len(image_list) > 1 else "images")
    if not all(np.issubdtype(image.dtype, np.floating) for image in image_list):
        return "zscore", "z-score: integer data (counts or grey levels)"
    parts = [image[np.isfinite(image)] for image in image_list]
    parts = [p for p in parts if p.size]
    if not parts:
        raise ValueError("images have no finite values")
    sample = np.concatenate([_strided_sample(p, _PERCENTILE_SAMPLES // len(parts))
                             for p in parts])
    lo, hi = np.percentile(sample, [0.5, 99.5])
    low = min(float(p.min()) for p in parts)
    high = max(float(p.max()) for p in parts)
    span = float(hi - lo)
    tail = max(high - float(hi), float(lo) - low)
    if span > 0 and tail > span:
        reason = ("percentile clipping: floating-point data with heavy tails (values reach "
                  f"{tail / span:.3g} percentile ranges beyond the 0.5-99.5 percentile range)")
        return "percentile", reason
    return "zscore", "z-score: floating-point data without heavy tails"


def _check_numeric(image: np.ndarray, name: str) -> None:
    if image.dtype == bool or not (np.issubdtype(image.dtype, np.integer)
                                   or np.issubdtype(image.dtype, np.floating)):
        raise TypeError(f"{name} has dtype {image.dtype} but intensity normalization needs "
                        "integer or floating-point values")


def _channel(image: np.ndarray, c: int, channel_axis: int | None) -> np.ndarray:
    return image.reshape(-1) if channel_axis is None else image[..., c].reshape(-1)


def _strided_sample(values: np.ndarray, n: int) -> np.ndarray:
    step = max(1, values.size // max(n, 1))
    return values[::step]


def _chunks(values: np.ndarray, lo: float | None, hi: float | None) -> Iterator[np.ndarray]:
    for start in range(0, values.size, _CHUNK):
        chunk = values[start:start + _CHUNK].astype(np.float64)
        yield chunk if lo is None else np.clip(chunk, lo, hi)


def _moments(parts: list[np.ndarray], lo: float | None, hi: float | None) -> tuple[float, float]:
    # Two passes in float64: a one-pass sum of squares loses precision for large offsets
    # (e.g. 16-bit counts around 60000 with a spread of a few counts).
    count = sum(p.size for p in parts)
    total = sum(float(c.sum()) for p in parts for c in _chunks(p, lo, hi))
    mean = total / count
    squares = sum(float(((c - mean) ** 2).sum()) for p in parts for c in _chunks(p, lo, hi))
    return mean, float(np.sqrt(squares / count))
