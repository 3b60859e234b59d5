"""A trainable smoothed-threshold segmenter.

:class:`ThresholdSegmenter` is the simplest trained model in niseg: Gaussian
smoothing followed by one threshold, either automatic (unsupervised) or learned from a mask or
brush-stroke labels. It implements the :class:`niseg.models.Segmenter` protocol, so it is
saved as a ``.niseg`` file and predicts in tiles like every other model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit

from niseg.models import ModelState, as_array_list
from niseg.threshold._levels import AUTOMATIC_METHODS, threshold_value

__all__ = ["ThresholdSegmenter"]

_TRUNCATE = 4.0  # Gaussian kernels are cut at 4 σ; the halo follows from it.




class ThresholdSegmenter:
    """Gaussian smoothing followed by one threshold, fitted from data.

    Without labels, the level is an automatic threshold (``method``) of the smoothed training
    intensities. With dense binary ``masks`` it is the level that maximises the Dice
    coefficient of the foreground on the training images; with sparse two-class ``labels``
    (0 = unlabeled) the level that maximises the balanced accuracy on the labelled pixels.

    Parameters
    ----------
    sigma : float or sequence of float
        Gaussian smoothing σ in pixels (per axis for anisotropic voxels); 0 disables it.
    method : {"auto", "otsu", "li", "yen", "isodata", "mean", "triangle", "minimum"}
        How the level is chosen without labels; ``"auto"`` means Otsu. With ``masks`` or
        ``labels`` the level is always learned, and ``method`` must be ``"auto"``.
    foreground : {"bright", "dark"}
        Whether objects are brighter or darker than the background (unsupervised and mask
        training). With sparse labels, the data tell which class is brighter.

    Attributes
    ----------
    threshold_ : float
        The learned level, in smoothed intensity units.
    scale_ : float
        Within-class standard deviation of the smoothed training intensities; it sets how fast
        the probability goes from 0 to 1 around the level.
    classes_ : ndarray
        ``[0, 1]`` when trained without labels or with masks, else the two label values.
    bright_class_ : int
        Index into ``classes_`` of the class above the level.
    n_channels_ : int
        Always 1.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((64, 64), np.uint8); truth[16:48, 16:48] = 1
    >>> image = truth + rng.normal(0, 0.5, truth.shape)
    >>> model = ThresholdSegmenter(sigma=2.0).fit(image, masks=truth)
    >>> float((model.predict(image) == truth).mean()) > 0.95
    True
    """

    model_kind = "smoothed-threshold"
    model_version = 1

    def __init__(
        self,
        *,
        sigma: float | Sequence[float] = 1.0,
        method: str = "auto",
        foreground: Literal["bright", "dark"] = "bright",
    ) -> None:
        self.sigma = sigma
        self.method = method
        self.foreground = foreground

    # -- protocol properties -----------------------------------------------------------------

    @property
    def spatial_dims(self) -> int:
        """Number of spatial dimensions the model was trained on (2 or 3)."""
        self._check_fitted()
        return self.spatial_dims_

    @property
    def halo(self) -> tuple[int, ...]:
        """Receptive-field radius per axis: the Gaussian kernel radius."""
        self._check_fitted()
        return tuple(int(_TRUNCATE * s + 0.5) for s in self._sigmas(self.spatial_dims_))

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, images: Any, labels: Any = None, *, masks: Any = None) -> ThresholdSegmenter:
        """Learn the threshold level from one or several images.

        Parameters
        ----------
        images : (M, N[, P]) ndarray or list of ndarray
            Training images (2D or 3D, one channel).
        labels : ndarray or list of ndarray, optional
            Sparse labels, 0 = unlabeled, exactly two classes among the other values.
        masks : ndarray or list of ndarray, optional
            Dense binary masks (non-zero = foreground).

        Returns
        -------
        ThresholdSegmenter
            ``self``, fitted.
        """
        if self.foreground not in ("bright", "dark"):
            raise ValueError(f"foreground must be 'bright' or 'dark', got {self.foreground!r}")
        if self.method != "auto" and self.method not in AUTOMATIC_METHODS:
            raise ValueError(
                f"method must be 'auto' or one of {', '.join(AUTOMATIC_METHODS)}, "
                f"got {self.method!r}"
            )
        if labels is not None and masks is not None:
            raise ValueError("give either labels or masks, not both")
        if (labels is not None or masks is not None) and self.method != "auto":
            raise ValueError(
                f"method={self.method!r} is unsupervised; leave method='auto' to learn the "
                "level from labels or masks"
            )
        image_list = as_array_list(images, "images")
        ndim = image_list[0].ndim
        for i, image in enumerate(image_list):
            if image.ndim not in (2, 3) or image.ndim != ndim:
                raise ValueError(
                    f"images[{i}] has {image.ndim} dimensions but all training images must be "
                    f"2-D or 3-D alike (the first has {ndim})"
                )
            if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
                raise TypeError(f"images[{i}] must be real numbers, got dtype {image.dtype}")
            if not np.isfinite(image).all():
                raise ValueError(f"images[{i}] contains NaN or infinite values")
        self.spatial_dims_ = ndim
        sigmas = self._sigmas(ndim)
        smoothed = [self._smooth(image, sigmas) for image in image_list]

        targets = labels if labels is not None else masks
        if targets is None:
            values = np.concatenate([s.ravel() for s in smoothed])
            method = "otsu" if self.method == "auto" else self.method
            level = threshold_value(values, method=method)
            self.classes_ = np.array([0, 1], dtype=np.uint8)
            self.bright_class_ = 1 if self.foreground == "bright" else 0
            self.fitted_with_ = method
        else:
            target_list = as_array_list(targets, "labels" if labels is not None else "masks")
            if len(target_list) != len(image_list):
                raise ValueError(
                    f"got {len(image_list)} images but {len(target_list)} label images"
                )
            for i, (image, target) in enumerate(zip(image_list, target_list)):
                if target.shape != image.shape:
                    raise ValueError(
                        f"labels[{i}] has shape {target.shape} but image has shape {image.shape}"
                    )
            if masks is not None:
                values = np.concatenate([s.ravel() for s in smoothed])
                truth = np.concatenate([(m != 0).ravel() for m in target_list])
                if truth.all() or not truth.any():
                    raise ValueError("masks must contain both foreground and background pixels")
                sign = 1.0 if self.foreground == "bright" else -1.0
                level = sign * _best_dice_level(sign * values, truth)
                self.classes_ = np.array([0, 1], dtype=np.uint8)
                self.bright_class_ = 1 if self.foreground == "bright" else 0
                self.fitted_with_ = "best-dice"
            else:
                level = self._fit_sparse(smoothed, target_list)
                self.fitted_with_ = "best-balanced-accuracy"
        self.threshold_ = float(level)
        self.scale_ = _within_class_std(
            np.concatenate([s.ravel() for s in smoothed]), self.threshold_
        )
        self.n_channels_ = 1
        self.class_names_ = None
        return self

    def _fit_sparse(self, smoothed: list[np.ndarray], labels: list[np.ndarray]) -> float:
        values = np.concatenate([s[lab != 0] for s, lab in zip(smoothed, labels)])
        classes = np.concatenate([lab[lab != 0] for lab in labels])
        present = np.unique(classes)
        if present.size != 2:
            found = ", ".join(str(v) for v in present) or "none"
            raise ValueError(
                f"a threshold separates exactly two labelled classes, but labels hold {found}"
            )
        low, high = present
        # Which class lies above the level is learned from the labelled medians.
        low_is_bright = np.median(values[classes == low]) > np.median(values[classes == high])
        bright = low if low_is_bright else high
        self.classes_ = np.array(present, dtype=np.result_type(classes.dtype, np.uint8))
        self.bright_class_ = int(np.flatnonzero(self.classes_ == bright)[0])
        is_bright = classes == bright
        return _best_balanced_level(values, is_bright)

    # -- prediction --------------------------------------------------------------------------

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Probability of each class per pixel.

        Parameters
        ----------
        image : (M, N[, P]) ndarray
            Image with the model's number of spatial dimensions.

        Returns
        -------
        (M, N[, P], 2) ndarray of float32
            Probabilities of ``classes_`` on the last axis: a logistic function of the
            distance of the smoothed intensity from the level, in units of ``scale_``.
        """
        margin = self._margin(image)
        above = margin > 0
        p_bright = expit(margin).astype(np.float32)
        # float32 can round a probability to exactly 0.5 next to the level; nudge those pixels
        # so that classes_[argmax(proba)] always equals predict() (argmax takes index 0 on ties).
        half = np.float32(0.5)
        if self.bright_class_ == 1:
            p_bright[above & (p_bright <= half)] = np.nextafter(half, np.float32(1))
            p_bright[~above & (p_bright > half)] = half
        else:
            p_bright[above & (p_bright < half)] = half
            p_bright[~above & (p_bright >= half)] = np.nextafter(half, np.float32(0))
        proba = np.empty((*margin.shape, 2), dtype=np.float32)
        proba[..., self.bright_class_] = p_bright
        proba[..., 1 - self.bright_class_] = 1 - p_bright
        return proba

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label image: ``classes_[argmax(predict_proba(image))]``.

        Parameters
        ----------
        image : (M, N[, P]) ndarray
            Image with the model's number of spatial dimensions.

        Returns
        -------
        (M, N[, P]) ndarray
            Values from ``classes_``.
        """
        above = self._margin(image) > 0
        index = above if self.bright_class_ == 1 else ~above
        return self.classes_[index.astype(np.intp)]

    def _margin(self, image: np.ndarray) -> np.ndarray:
        self._check_fitted()
        image = np.asarray(image)
        if image.ndim != self.spatial_dims_:
            raise ValueError(
                f"image has {image.ndim} dimensions but the model is {self.spatial_dims_}-D"
            )
        smoothed = self._smooth(image, self._sigmas(self.spatial_dims_))
        return (smoothed.astype(np.float64) - self.threshold_) / self.scale_

    # -- helpers -----------------------------------------------------------------------------

    def _sigmas(self, ndim: int) -> tuple[float, ...]:
        sigma = self.sigma
        sigmas = (float(sigma),) * ndim if np.isscalar(sigma) else tuple(map(float, sigma))
        if len(sigmas) != ndim or any(s < 0 for s in sigmas):
            raise ValueError(f"sigma must be one non-negative value or {ndim} values, got {sigma}")
        return sigmas

    @staticmethod
    def _smooth(image: np.ndarray, sigmas: tuple[float, ...]) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        if not any(sigmas):
            return image
        return ndi.gaussian_filter(image, sigmas, mode="reflect", truncate=_TRUNCATE)

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise ValueError("this ThresholdSegmenter is not fitted yet; call fit() first")

    # -- model file --------------------------------------------------------------------------

    def to_model_state(self) -> ModelState:
        """Return what the model file stores (see :func:`niseg.models.save_model`)."""
        self._check_fitted()
        sigma = self.sigma if np.isscalar(self.sigma) else list(self.sigma)
        return ModelState(
            params={"sigma": sigma, "method": self.method, "foreground": self.foreground},
            state={
                "threshold_": self.threshold_,
                "scale_": self.scale_,
                "classes_": self.classes_.tolist(),
                "classes_dtype": str(self.classes_.dtype),
                "bright_class_": self.bright_class_,
                "spatial_dims_": self.spatial_dims_,
                "fitted_with_": self.fitted_with_,
            },
        )

    @classmethod
    def from_model_state(cls, state: ModelState) -> ThresholdSegmenter:
        """Rebuild a fitted model from a :class:`niseg.models.ModelState`."""
        params = state.params
        model = cls(sigma=params["sigma"], method=params["method"], foreground=params["foreground"])
        s = state.state
        model.threshold_ = float(s["threshold_"])
        model.scale_ = float(s["scale_"])
        model.classes_ = np.asarray(s["classes_"], dtype=np.dtype(s["classes_dtype"]))
        model.bright_class_ = int(s["bright_class_"])
        model.spatial_dims_ = int(s["spatial_dims_"])
        model.fitted_with_ = str(s["fitted_with_"])
        model.n_channels_ = 1
        model.class_names_ = None
        if model.bright_class_ not in (0, 1) or model.classes_.shape != (2,):
            raise ValueError("a threshold model has exactly two classes")
        if not np.isfinite(model.threshold_):
            raise ValueError("threshold_ must be a finite number")
        if model.spatial_dims_ not in (2, 3) or not 0 < model.scale_ < np.inf:
            raise ValueError("spatial_dims_ must be 2 or 3 and scale_ positive")
        model._sigmas(model.spatial_dims_)
        return model

    def __repr__(self) -> str:
        return (
            f"ThresholdSegmenter(sigma={self.sigma!r}, method={self.method!r}, "
            f"foreground={self.foreground!r})"
        )


def _best_dice_level(values: np.ndarray, truth: np.ndarray) -> float:
    """Level t maximising the Dice of ``values > t`` against ``truth`` (exact, O(n log n))."""
    order = np.argsort(values, kind="stable")[::-1]
    v = values[order]
    tp = np.cumsum(truth[order], dtype=np.int64)
    n_pos = int(truth.sum())
    # Only cut between distinct values: index i means "the first i+1 sorted values are above".
    last_of_run = np.flatnonzero(np.r_[v[1:] != v[:-1], True])
    predicted = last_of_run + 1
    dice = 2.0 * tp[last_of_run] / (predicted + n_pos)
    best = int(np.argmax(dice))
    i = last_of_run[best]
    return _level_between(v, i)


def _best_balanced_level(values: np.ndarray, is_bright: np.ndarray) -> float:
    """Level maximising the balanced accuracy of ``values > t`` for the bright class."""
    order = np.argsort(values, kind="stable")[::-1]
    v = values[order]
    bright_sorted = is_bright[order]
    n_bright = int(bright_sorted.sum())
    n_dark = bright_sorted.size - n_bright
    tp = np.cumsum(bright_sorted, dtype=np.int64)
    fp = np.cumsum(~bright_sorted, dtype=np.int64)
    last_of_run = np.flatnonzero(np.r_[v[1:] != v[:-1], True])
    score = 0.5 * (tp[last_of_run] / n_bright + (n_dark - fp[last_of_run]) / n_dark)
    i = last_of_run[int(np.argmax(score))]
    return _level_between(v, i)


def _level_between(sorted_desc: np.ndarray, i: int) -> float:
    """Midpoint between the i-th value (kept above) and the next one (below)."""
    if i + 1 < sorted_desc.size:
        return 0.5 * (float(sorted_desc[i]) + float(sorted_desc[i + 1]))
    # Everything above: put the level just below the smallest value.
    return float(np.nextafter(sorted_desc[i], -np.inf))


def _within_class_std(values: np.ndarray, level: float) -> float:
    values = values.astype(np.float64, copy=False)
    above = values > level
    spread = 0.0
    for part in (values[above], values[~above]):
        if part.size > 1:
            spread += part.size * part.var()
    std = float(np.sqrt(spread / values.size))
    if not std > 0:
        # Two perfectly flat classes: any positive scale gives the same labels.
        std = max(float(np.ptp(values)) * 1e-3, 1e-12)
    return std
