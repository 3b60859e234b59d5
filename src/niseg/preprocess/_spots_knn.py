"""A k-nearest-neighbour spot detector on (intensity, |f - median|) features, as in the lecture.

Each pixel is described by two numbers: its value and the absolute difference to the
median of its ``size x size`` window. A k-NN classifier, fitted on images whose spot
pixels are known (simulated spots), labels the pixels of a new image. Features are
standardised before the neighbour search, so that the two axes count alike whatever the
image units.

Where no labelled image exists, :meth:`KNNSpotDetector.fit_on_image` trains
*self-supervised*: the image is first cleaned with the ``auto`` detector, spots with a known
mask are added to that clean copy (:func:`niseg.simulate.add_spots`, amplitudes in the
image's own noise units), and the detector is fitted on the result, so that its features
have the image's own levels and noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

#: Pixels per chunk when predicting (bounds memory for large images).
PREDICT_CHUNK = 1_000_000


class KNNSpotDetector:
    """k-nearest-neighbour classifier of spot pixels on (intensity, |f - median|) features.

    Parameters
    ----------
    n_neighbors : int, optional
        Number of neighbours that vote.
    size : int, optional
        Side of the median window (odd, at least 3).
    max_samples : int, optional
        At most this many training pixels: all spot pixels up to half of it, the rest
        drawn at random from the other pixels.
    random_state : int, optional
        Seed of the training-pixel draw.

    Attributes
    ----------
    classes_ : ndarray
        ``[False, True]`` after fitting (no spot, spot).
    n_training_pixels_ : int
        Pixels used for fitting.

    Examples
    --------
    >>> from niseg.preprocess import KNNSpotDetector
    >>> from niseg.simulate import simulate_spots
    >>> train = simulate_spots(size=96, counts=500.0, density=0.01, seed=1)
    >>> test = simulate_spots(size=96, counts=500.0, density=0.01, seed=2)
    >>> knn = KNNSpotDetector().fit(train.raw, train.mask == 1)
    >>> mask = knn.predict(test.raw)
    >>> mask.shape, mask.dtype
    ((96, 96), dtype('bool'))
    >>> knn.confusion_with_baseline(test.raw, threshold=50.0).shape
    (2, 2)
    """

    def __init__(self, n_neighbors: int = 5, *, size: int = 5, max_samples: int = 50_000,
                 random_state: int = 0) -> None:
        self.n_neighbors = n_neighbors
        self.size = size
        self.max_samples = max_samples
        self.random_state = random_state

    # ------------------------------------------------------------------ features
    def features(self, image: Any) -> np.ndarray:
        """Per-pixel features ``(intensity, |f - median|)``.

        Parameters
        ----------
        image : (M, N) ndarray
            A 2D image.

        Returns
        -------
        (M * N, 2) float32 ndarray
            One row per pixel in C order.
        """
        from ._spots import _check_frame, _check_size

        frame = _check_frame(image, name="image")
        size = _check_size(self.size)
        med = ndimage.median_filter(frame, size=size, mode="reflect")
        return np.stack([frame.ravel(), np.abs(frame - med).ravel()], axis=1)

    # ------------------------------------------------------------------ fitting
    def fit(self, images: Any, masks: Any) -> KNNSpotDetector:
        """Fit on one or more images and their spot masks (non-zero = spot).

        Parameters
        ----------
        images : (M, N) ndarray or sequence of them
            Training images.
        masks : (M, N) ndarray or sequence of them
            Spot masks of the same shapes; any non-zero value is a spot.

        Returns
        -------
        KNNSpotDetector
            ``self``, fitted.
        """
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        image_list = _as_list(images, "images")
        mask_list = _as_list(masks, "masks")
        if len(image_list) != len(mask_list):
            raise ValueError(f"images has {len(image_list)} images but masks has "
                             f"{len(mask_list)}")
        if isinstance(self.n_neighbors, bool) or not isinstance(self.n_neighbors,
                                                                (int, np.integer)):
            raise TypeError(f"n_neighbors must be a positive integer, "
                            f"got {type(self.n_neighbors).__name__}")
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be a positive integer, got {self.n_neighbors}")
        rng = np.random.default_rng(self.random_state)
        xs, ys = [], []
        for image, mask in zip(image_list, mask_list):
            feats = self.features(image)
            target = np.asarray(mask)
            if target.shape != np.shape(image):
                raise ValueError(f"mask has shape {target.shape} but its image has shape "
                                 f"{np.shape(image)}")
            target = target.ravel() != 0
            xs.append(feats)
            ys.append(target)
        features = np.concatenate(xs)
        labels = np.concatenate(ys)
        if labels.all() or not labels.any():
            raise ValueError("masks must mark some spot pixels and some other pixels to "
                             "train on")
        chosen = _balanced_sample(labels, int(self.max_samples), rng)
        if self.n_neighbors > chosen.size:
            raise ValueError(f"n_neighbors is {self.n_neighbors} but there are only "
                             f"{chosen.size} training pixels")
        self.model_ = make_pipeline(StandardScaler(),
                                    KNeighborsClassifier(n_neighbors=int(self.n_neighbors)))
        self.model_.fit(features[chosen], labels[chosen])
        self.classes_ = np.array([False, True])
        self.n_training_pixels_ = int(chosen.size)
        return self

    def fit_on_image(self, image: Any, *, polarity: str = "bright", seed: int = 0
                     ) -> KNNSpotDetector:
        """Fit self-supervised on the image to be cleaned (no labels needed).

        The image is cleaned with the ``auto`` detector (both polarities), spots with a
        known mask are added to that clean copy with :func:`niseg.simulate.add_spots`
        (1 % of the pixels; amplitudes from 6 to 2000 noise deviations; bright, dark or
        10 % dark for ``polarity="both"``) and the detector is fitted on the result. Its
        features then have the image's own levels and noise.

        Parameters
        ----------
        image : (M, N) ndarray
            The image to learn from (normally the one to clean).
        polarity : {"bright", "dark", "both"}, optional
            Which spots to simulate.
        seed : int, optional
            Seed of the simulated spots (and of the training-pixel draw).

        Returns
        -------
        KNNSpotDetector
            ``self``, fitted.
        """
        from niseg.simulate import add_spots

        from ._spots import SPOT_POLARITIES, _check_choice, _check_frame, _check_size
        from ._spots_methods import clean_auto

        frame = _check_frame(image, name="image")
        polarity = _check_choice("polarity", polarity, SPOT_POLARITIES)
        _, quiet = clean_auto(frame, polarity="both", size=_check_size(self.size),
                              threshold=5.0, structure_ratio=3.0)
        dark_fraction = {"bright": 0.0, "dark": 1.0, "both": 0.1}[polarity]
        try:
            spotty, truth = add_spots(quiet, density=0.01, dark_fraction=dark_fraction,
                                      seed=seed)
        except ValueError:
            # A noiseless image: amplitudes relative to its range instead of its noise.
            scale = float(np.ptp(quiet)) or 1.0
            spotty, truth = add_spots(quiet, density=0.01, dark_fraction=dark_fraction,
                                      noise_sigma=scale / 100.0, seed=seed)
        if not truth.any():
            raise ValueError(f"image of shape {frame.shape} is too small to place training "
                             f"spots for the k-NN detector; fit it on a labelled image instead")
        return self.fit(spotty, truth > 0)

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, image: Any) -> np.ndarray:
        """Fraction of spot neighbours per pixel.

        Parameters
        ----------
        image : (M, N) ndarray
            A 2D image.

        Returns
        -------
        (M, N) float32 ndarray
            Values in [0, 1]; 0.5 and above is a spot.
        """
        self._check_fitted()
        feats = self.features(image)
        out = np.empty(feats.shape[0], dtype=np.float32)
        spot_column = list(self.model_.classes_).index(True)
        for start in range(0, feats.shape[0], PREDICT_CHUNK):
            part = feats[start:start + PREDICT_CHUNK]
            out[start:start + PREDICT_CHUNK] = self.model_.predict_proba(part)[:, spot_column]
        return out.reshape(np.shape(image))

    def predict(self, image: Any) -> np.ndarray:
        """Spot mask of an image.

        Parameters
        ----------
        image : (M, N) ndarray
            A 2D image.

        Returns
        -------
        (M, N) bool ndarray
            True at spot pixels (at least half of the neighbours are spots).
        """
        return self.predict_proba(image) >= 0.5

    def confusion_with_baseline(self, image: Any, *, threshold: float) -> np.ndarray:
        """Confusion matrix of this detector against the lectures' baseline on an image.

        Parameters
        ----------
        image : (M, N) ndarray
            A 2D image.
        threshold : float
            The baseline's ``|f - median|`` limit in image units.

        Returns
        -------
        (2, 2) int64 ndarray
            Rows: baseline says no spot / spot; columns: k-NN says no spot / spot.
        """
        from ._spots import detect_spots

        knn = self.predict(image).ravel()
        base = detect_spots(image, method="baseline", polarity="both", size=self.size,
                            threshold=threshold).ravel()
        return np.bincount(2 * base.astype(np.intp) + knn.astype(np.intp),
                           minlength=4).reshape(2, 2).astype(np.int64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError("this KNNSpotDetector is not fitted yet; call fit(images, masks) "
                             "first")


def train_on_image(frame: np.ndarray, *, polarity: str, size: int, seed: int = 0
                   ) -> KNNSpotDetector:
    """Self-supervised k-NN detector for one image (see :meth:`KNNSpotDetector.fit_on_image`)."""
    return KNNSpotDetector(size=size, random_state=seed).fit_on_image(frame, polarity=polarity,
                                                                      seed=seed)


def _balanced_sample(labels: np.ndarray, max_samples: int, rng: np.random.Generator
                     ) -> np.ndarray:
    spots = np.flatnonzero(labels)
    others = np.flatnonzero(~labels)
    max_samples = max(max_samples, 2)
    if spots.size > max_samples // 2:
        spots = rng.choice(spots, size=max_samples // 2, replace=False)
    room = max_samples - spots.size
    if others.size > room:
        others = rng.choice(others, size=room, replace=False)
    return np.sort(np.concatenate([spots, others]))


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
