"""PixelClassifier: a scikit-learn classifier on filter-bank features of every pixel."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from niseg.features import FeatureSpec, compute_features
from niseg.models import ModelState, as_array_list

from ._estimators import METHODS, balanced_sample, make_estimator, single_threaded

#: Pixels per call of the estimator while predicting, so the estimator's own temporaries
#: (float64 copies, per-tree outputs) stay small whatever the block size.
CHUNK_PIXELS = 1 << 16


class PixelClassifier:
    """Classify every pixel from multi-scale filter features with a scikit-learn estimator.

    The features of :func:`niseg.features.compute_features` (ilastik's filter bank by default)
    are computed for the training images, a class-balanced sample of the labelled pixels
    trains the estimator, and prediction classifies every pixel of a block. Because the
    features depend only on pixels within ``halo``, :func:`niseg.tiling.predict_tiled` gives
    labels identical to an untiled prediction.

    Parameters
    ----------
    features : {"ilastik", "fast"} or FeatureSpec or dict
        The feature bank: a preset name, a :class:`niseg.features.FeatureSpec` or its
        ``to_dict()``. Position features are refused: they would make a tile's prediction
        depend on where the tile lies.
    method : {"rf", "et", "hgb", "knn", "tree", "logreg"}
        Random forest, extra trees, histogram gradient boosting, k-nearest neighbours (on
        standardized features), one decision tree, logistic regression (on standardized
        features).
    n_estimators : int
        Trees of ``rf``/``et``; boosting iterations of ``hgb``; unused by the others.
    max_samples_per_class : int or None
        Most labelled pixels per class used for training, drawn at random (seeded) from all
        training images together; a class with fewer labelled pixels uses them all. ``None``
        uses every labelled pixel.
    n_jobs : int or None
        Threads for features, fitting and prediction (``None``: all CPUs).
    spacing : sequence of float, optional
        Pixel size along each spatial axis, for anisotropic voxels (see
        :func:`niseg.features.compute_features`).
    channel_axis : {None, -1}
        ``None``: images are single-channel, ``(M, N[, P])``. ``-1``: the last axis of every
        training image holds channels, ``(M, N[, P], C)``; a model with one channel also
        predicts images without that axis.
    random_state : int or None
        Seed of the pixel sampling and of the estimator; the same data and seed give the same
        model.

    Attributes
    ----------
    classes_ : (K,) ndarray
        Label values: those present in sparse ``labels`` (0 = unlabeled excluded), or
        ``[0, 1]`` (uint8) for a model fitted from ``masks``.
    n_channels_ : int
        Number of input channels.
    feature_spec_ : FeatureSpec
        The feature bank used.
    feature_names_ : list of str
        One name per feature column.
    estimator_ : sklearn estimator
        The fitted classifier (predicting class indices ``0..K-1``).
    n_samples_per_class_ : (K,) ndarray
        Training pixels used per class.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((64, 64), np.uint8); truth[:, 32:] = 1
    >>> image = rng.normal(0, 1, truth.shape) * np.where(truth, 3.0, 0.5)  # two textures
    >>> model = PixelClassifier(features="fast", n_estimators=10).fit(image, masks=truth)
    >>> float((model.predict(image) == truth).mean()) > 0.9
    True
    >>> model.predict_proba(image).shape, model.halo
    ((64, 64, 2), (40, 40))
    """

    model_kind = "pixel-classifier"
    model_version = 1

    def __init__(
        self,
        *,
        features: str | FeatureSpec | Mapping[str, Any] = "ilastik",
        method: str = "rf",
        n_estimators: int = 50,
        max_samples_per_class: int | None = 50_000,
        n_jobs: int | None = 2,
        spacing: Sequence[float] | None = None,
        channel_axis: int | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.features = features
        self.method = method
        self.n_estimators = n_estimators
        self.max_samples_per_class = max_samples_per_class
        self.n_jobs = n_jobs
        self.spacing = spacing
        self.channel_axis = channel_axis
        self.random_state = random_state

    # -- protocol properties -----------------------------------------------------------------

    @property
    def spatial_dims(self) -> int:
        """Number of spatial dimensions the model was trained on (2 or 3)."""
        self._check_fitted()
        return self.spatial_dims_

    @property
    def halo(self) -> tuple[int, ...]:
        """Receptive-field radius per spatial axis: that of the feature bank."""
        self._check_fitted()
        return self.feature_spec_.halo_per_axis(self.spacing, self.spatial_dims_)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Impurity-based importance of each feature (``rf``, ``et`` and ``tree`` only)."""
        self._check_fitted()
        values = getattr(self.estimator_, "feature_importances_", None)
        if values is None:
            raise AttributeError(f"method {self.method!r} has no feature importances; use "
                                 "'rf', 'et' or 'tree'")
        return np.asarray(values)

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, images: Any, labels: Any = None, *, masks: Any = None) -> PixelClassifier:
        """Train on one or several images with sparse labels or dense binary masks.

        Parameters
        ----------
        images : (M, N[, P][, C]) ndarray or list of ndarray
            Training images, all 2D or all 3D, with the channel axis last when
            ``channel_axis=-1``.
        labels : ndarray or list of ndarray, optional
            Sparse labels of the same spatial shape: 0 = unlabeled, other non-negative
            integers are classes (at least two).
        masks : ndarray or list of ndarray, optional
            Dense binary masks (non-zero = foreground); the model then predicts 0/1.

        Returns
        -------
        PixelClassifier
            ``self``, fitted.
        """
        spec = self._spec()
        method = self._method()
        n_jobs = self._n_jobs()
        n_estimators = self._positive_int("n_estimators", self.n_estimators)
        cap = self.max_samples_per_class
        if cap is not None:
            cap = self._positive_int("max_samples_per_class", cap)
        if self.channel_axis not in (None, -1):
            raise ValueError(f"channel_axis must be None or -1 (channels last), got "
                             f"{self.channel_axis!r}")
        if (labels is None) == (masks is None):
            raise ValueError("give either labels (sparse, 0 = unlabeled) or masks (dense "
                             "binary), exactly one of them")
        image_list = as_array_list(images, "images")
        target_name = "labels" if labels is not None else "masks"
        target_list = as_array_list(labels if labels is not None else masks, target_name)
        if len(target_list) != len(image_list):
            raise ValueError(f"got {len(image_list)} images but {len(target_list)} "
                             f"{target_name}")
        has_channels = self.channel_axis is not None
        spatial_dims = image_list[0].ndim - int(has_channels)
        n_channels = image_list[0].shape[-1] if has_channels else 1
        for i, (image, target) in enumerate(zip(image_list, target_list)):
            name = _item("images", i, len(image_list))
            _check_values(image, name)
            if image.ndim - int(has_channels) != spatial_dims or spatial_dims not in (2, 3):
                raise ValueError(
                    f"{name} has shape {image.shape} but all training images must be 2-D or "
                    f"3-D alike{' with channels last' if has_channels else ''}")
            if has_channels and image.shape[-1] != n_channels:
                raise ValueError(f"{name} has {image.shape[-1]} channels but the first "
                                 f"training image has {n_channels}")
            spatial = image.shape[:spatial_dims]
            if target.shape != spatial:
                raise ValueError(f"{_item(target_name, i, len(target_list))} has shape "
                                 f"{target.shape} but image has shape {spatial}")
        if self.spacing is not None:
            from niseg.features._spec import relative_spacing

            relative_spacing(self.spacing, spatial_dims)

        if masks is not None:
            targets = [(np.asarray(m) != 0).astype(np.uint8) for m in target_list]
            classes = np.array([0, 1], dtype=np.uint8)
            present = np.unique(np.concatenate([np.unique(t) for t in targets]))
            if present.size < 2:
                raise ValueError("masks must contain both foreground and background pixels")
        else:
            targets = [_check_labels(t, _item("labels", i, len(target_list)))
                       for i, t in enumerate(target_list)]
            present = np.unique(np.concatenate([np.unique(t) for t in targets]))
            classes = present[present != 0]
            if classes.size == 0:
                raise ValueError("labels have no labelled pixels; draw at least two classes "
                                 "(values 1..K, 0 = unlabeled)")
            if classes.size == 1:
                raise ValueError(f"labels hold only one class ({classes[0]}); a classifier "
                                 "needs at least two labelled classes")
            classes = classes.astype(np.result_type(classes.dtype, np.uint8))

        rng = np.random.default_rng(self.random_state)
        indices, y_parts, counts = balanced_sample(targets, classes, cap, rng)
        n_features = spec.n_features(n_channels, spatial_dims)
        x = np.empty((int(counts.sum()), n_features), dtype=np.float32)
        row = 0
        for image, idx in zip(image_list, indices):
            if idx.size == 0:
                continue
            feats = self._features(image, spec, n_jobs)
            x[row : row + idx.size] = feats.reshape(-1, n_features)[idx]
            row += idx.size
            del feats
        y = np.concatenate(y_parts)

        estimator = make_estimator(method, n_estimators=n_estimators, n_jobs=n_jobs,
                                   random_state=self.random_state)
        estimator.fit(x, y)
        self.estimator_ = single_threaded(estimator)
        self.classes_ = classes
        self.spatial_dims_ = spatial_dims
        self.n_channels_ = int(n_channels)
        self.feature_spec_ = spec
        self.feature_names_ = spec.names(self.n_channels_, spatial_dims)
        self.n_samples_per_class_ = counts
        self.fitted_with_ = target_name
        self.class_names_ = None
        return self

    # -- prediction --------------------------------------------------------------------------

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Probability of each class for every pixel of a block.

        Parameters
        ----------
        image : (M, N[, P][, C]) ndarray
            Image with the model's spatial dimensions (and channels last when the model has
            more than one channel).

        Returns
        -------
        (M, N[, P], K) ndarray of float32
            Probabilities of ``classes_`` on the last axis.
        """
        self._check_fitted()
        image = self._check_image(image)
        feats = self._features(image, self.feature_spec_, self._n_jobs())
        spatial = feats.shape[:-1]
        flat = feats.reshape(-1, feats.shape[-1])
        n_classes = len(self.classes_)
        out = np.empty((flat.shape[0], n_classes), dtype=np.float32)
        starts = range(0, flat.shape[0], CHUNK_PIXELS)

        def run(start: int) -> None:
            stop = min(start + CHUNK_PIXELS, flat.shape[0])
            out[start:stop] = self.estimator_.predict_proba(flat[start:stop])

        workers = min(self._n_jobs(), len(starts))
        if workers <= 1:
            for start in starts:
                run(start)
        else:
            # Tree and neighbour searches release the GIL, so threads over chunks scale, and
            # every pixel's result is computed the same way whatever the chunking.
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run, starts))
        return out.reshape(*spatial, n_classes)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label image: ``classes_[argmax(predict_proba(image))]``.

        Parameters
        ----------
        image : (M, N[, P][, C]) ndarray
            As for :meth:`predict_proba`.

        Returns
        -------
        (M, N[, P]) ndarray
            Values from ``classes_``.
        """
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(image), axis=-1)]

    def predict_uncertainty(self, image: np.ndarray) -> np.ndarray:
        """Uncertainty ``1 - (p1 - p2)`` from the two largest class probabilities, as ilastik.

        Parameters
        ----------
        image : (M, N[, P][, C]) ndarray
            As for :meth:`predict_proba`.

        Returns
        -------
        (M, N[, P]) ndarray of float32
            0 where one class is certain, 1 where the top two classes tie.
        """
        proba = self.predict_proba(image)
        top = np.partition(proba, proba.shape[-1] - 2, axis=-1)[..., -2:]
        return (np.float32(1) - (top[..., 1] - top[..., 0])).astype(np.float32)

    # -- helpers -----------------------------------------------------------------------------

    def _spec(self) -> FeatureSpec:
        features = self.features
        if isinstance(features, FeatureSpec):
            spec = features
        elif isinstance(features, str):
            spec = FeatureSpec.preset(features)
        elif isinstance(features, Mapping):
            spec = FeatureSpec.from_dict(features)
        else:
            raise TypeError(f"features must be 'ilastik', 'fast', a FeatureSpec or a dict, "
                            f"got {type(features).__name__}")
        if spec.position:
            raise ValueError("features include position, which PixelClassifier does not use: "
                             "a tile's prediction must not depend on where the tile lies")
        return spec

    def _method(self) -> str:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        return self.method

    def _n_jobs(self) -> int:
        if self.n_jobs is None:
            return os.cpu_count() or 1
        return self._positive_int("n_jobs", self.n_jobs)

    @staticmethod
    def _positive_int(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        return int(value)

    def _features(self, image: np.ndarray, spec: FeatureSpec, n_jobs: int) -> np.ndarray:
        channel_axis = -1 if image.ndim > self._spatial_dims_of(image) else None
        return compute_features(image, spec, channel_axis=channel_axis, spacing=self.spacing,
                                n_threads=n_jobs)

    def _spatial_dims_of(self, image: np.ndarray) -> int:
        if hasattr(self, "spatial_dims_"):
            return self.spatial_dims_
        return image.ndim - int(self.channel_axis is not None)

    def _check_image(self, image: Any) -> np.ndarray:
        image = np.asarray(image)
        dims = self.spatial_dims_
        if self.channel_axis is not None and image.ndim == dims + 1:
            if image.shape[-1] != self.n_channels_:
                raise ValueError(f"image has {image.shape[-1]} channels on its last axis but "
                                 f"the model was trained on {self.n_channels_}")
        elif image.ndim != dims or self.n_channels_ != 1:
            if self.n_channels_ != 1:
                expected = f"{dims} spatial axes and {self.n_channels_} channels last"
            else:
                expected = f"{dims} dimensions"
            raise ValueError(f"image has shape {image.shape} but the model expects "
                             f"{expected}")
        _check_values(image, "image")
        return image

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise ValueError("this PixelClassifier is not fitted yet; call fit() first")

    # -- model file --------------------------------------------------------------------------

    def to_model_state(self) -> ModelState:
        """Return what the model file stores (see :func:`niseg.models.save_model`)."""
        self._check_fitted()
        features = self.features if isinstance(self.features, str) else (
            self.feature_spec_.to_dict())
        spacing = None if self.spacing is None else [float(s) for s in self.spacing]
        importances = getattr(self.estimator_, "feature_importances_", None)
        return ModelState(
            params={
                "features": features,
                "method": self.method,
                "n_estimators": int(self.n_estimators),
                "max_samples_per_class": self.max_samples_per_class,
                "n_jobs": self.n_jobs,
                "spacing": spacing,
                "channel_axis": self.channel_axis,
                "random_state": self.random_state,
            },
            state={
                "classes_": self.classes_.tolist(),
                "classes_dtype": str(self.classes_.dtype),
                "spatial_dims_": self.spatial_dims_,
                "n_channels_": self.n_channels_,
                "feature_spec_": self.feature_spec_.to_dict(),
                "feature_names_": list(self.feature_names_),
                "n_samples_per_class_": self.n_samples_per_class_.tolist(),
                "fitted_with_": self.fitted_with_,
                # aligned with feature_names_ (a dict would be re-sorted in the JSON)
                "feature_importances_": (None if importances is None
                                         else [float(v) for v in importances]),
            },
            estimators={"estimator": self.estimator_},
            provenance={"random_state": self.random_state},
        )

    @classmethod
    def from_model_state(cls, state: ModelState) -> PixelClassifier:
        """Rebuild a fitted model from a :class:`niseg.models.ModelState`."""
        p = state.params
        model = cls(features=p["features"], method=p["method"],
                    n_estimators=p["n_estimators"],
                    max_samples_per_class=p["max_samples_per_class"], n_jobs=p["n_jobs"],
                    spacing=p["spacing"], channel_axis=p["channel_axis"],
                    random_state=p["random_state"])
        s = state.state
        estimator = (state.estimators or {}).get("estimator")
        if estimator is None or not hasattr(estimator, "predict_proba"):
            raise ValueError("a pixel classifier needs a fitted estimator in its weights")
        model.feature_spec_ = FeatureSpec.from_dict(s["feature_spec_"])
        model.classes_ = np.asarray(s["classes_"], dtype=np.dtype(s["classes_dtype"]))
        model.spatial_dims_ = int(s["spatial_dims_"])
        model.n_channels_ = int(s["n_channels_"])
        model.feature_names_ = [str(n) for n in s["feature_names_"]]
        model.n_samples_per_class_ = np.asarray(s["n_samples_per_class_"], dtype=np.int64)
        model.fitted_with_ = str(s["fitted_with_"])
        model.class_names_ = None
        model.estimator_ = single_threaded(estimator)
        if model.spatial_dims_ not in (2, 3) or model.n_channels_ < 1:
            raise ValueError("spatial_dims_ must be 2 or 3 and n_channels_ positive")
        if model.classes_.ndim != 1 or model.classes_.size < 2:
            raise ValueError("a pixel classifier has at least two classes")
        n_features = model.feature_spec_.n_features(model.n_channels_, model.spatial_dims_)
        if len(model.feature_names_) != n_features or getattr(
                estimator, "n_features_in_", n_features) != n_features:
            raise ValueError("the estimator's number of features does not match the spec")
        if len(getattr(estimator, "classes_", model.classes_)) != model.classes_.size:
            raise ValueError("the estimator's number of classes does not match classes_")
        return model

    def __repr__(self) -> str:
        return (f"PixelClassifier(features={self.features!r}, method={self.method!r}, "
                f"n_estimators={self.n_estimators!r})")


def _item(name: str, i: int, n: int) -> str:
    return name if n == 1 else f"{name}[{i}]"




def _check_values(image: np.ndarray, name: str) -> None:
    if image.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {image.dtype}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinite values; replace them first")


def _check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    if labels.dtype.kind == "b":
        return labels.astype(np.uint8)
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or np.any(labels != np.round(labels)):
            raise TypeError(f"{name} must hold whole-number class values, got fractions")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class values, got dtype {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds negative values; use 0 for unlabeled and 1..K for "
                         "classes")
    return labels
