"""k-means and Gaussian-mixture clustering of pixel feature vectors."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from niseg.features import pixel_features, standardize
from niseg.features._pixel import as_image_list

#: Models understood by :func:`cluster_pixels`.
CLUSTER_MODELS = ("kmeans", "gmm")

# Fitting uses at most this many valid pixels (a seeded random subset); every pixel is then
# assigned in chunks, so memory stays bounded for large images and volumes.
MAX_FIT_SAMPLES = 200_000
# The silhouette score costs O(n^2): it is computed on a seeded subset of this size.
_SILHOUETTE_SAMPLES = 2_000
_PREDICT_CHUNK = 1 << 20
_SMALL_FIT = 50_000
_MAX_CLASSES = 255


def cluster_pixels(
    images: np.ndarray | Sequence[np.ndarray],
    *,
    classes: int | str = 3,
    model: str = "kmeans",
    features: Sequence[str] = ("intensity",),
    sigmas: float | Sequence[float] = (1.0,),
    position_weight: float = 0.0,
    spacing: Sequence[float] | None = None,
    valid_mask: np.ndarray | None = None,
    max_classes: int = 8,
    max_fit_samples: int = MAX_FIT_SAMPLES,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster the pixels of one or more co-registered images by k-means or a Gaussian mixture.

    Each pixel becomes a feature vector (:func:`niseg.features.pixel_features`: the
    intensities of all images and, on request, filter responses and position); every feature
    is standardized over the valid pixels so that none dominates by its units, position
    columns are then multiplied by ``position_weight``. The model is fitted on at most
    ``max_fit_samples`` valid pixels drawn with ``seed`` and assigns every valid pixel.

    Clusters are numbered in a fixed order: by increasing mean of the first feature (the
    intensity of the first image by default), ties broken by the next features, so the same
    data give the same numbers whatever the random start.

    Parameters
    ----------
    images : (M, N[, P]) ndarray or sequence of them
        One image, or several co-registered images of one shape.
    classes : int or "auto", optional
        Number of clusters ``K`` (2 to 255), or ``"auto"`` to choose ``K`` in
        ``2..max_classes``: for k-means the largest mean silhouette coefficient (computed on
        a seeded subset of 2000 pixels), for a Gaussian mixture the smallest Bayesian
        information criterion (BIC). The scores of every candidate are returned.
    model : {"kmeans", "gmm"}, optional
        k-means (scikit-learn ``KMeans``, 4 seeded starts) or a Gaussian mixture with full
        covariances (``GaussianMixture``, k-means start).
    features : sequence of str, optional
        Filters of :func:`niseg.features.pixel_features` applied to every image.
    sigmas : float or sequence of float, optional
        Filter scales in pixels.
    position_weight : float, optional
        Weight of the pixel coordinates (0 = not used). Coordinates are standardized like
        the other features, so 1 gives position the weight of one intensity feature and
        larger values give compact, blob-like clusters.
    spacing : sequence of float, optional
        Pixel size per axis (anisotropic filters and position).
    valid_mask : (M, N[, P]) bool ndarray, optional
        Pixels to cluster; the others (padding, empty corners, NaN) get label 0 and do not
        influence the fit. Required when an image holds NaN or infinite values.
    max_classes : int, optional
        Largest ``K`` tried by ``classes="auto"``.
    max_fit_samples : int, optional
        Largest number of pixels the model is fitted on.
    seed : int, optional
        Seed of the pixel subset and of the model's random start.

    Returns
    -------
    labels : (M, N[, P]) uint8 ndarray
        Cluster ``1..K`` per pixel, 0 outside the valid mask.
    info : dict
        ``model``, ``classes`` (the K used), ``class_names``, ``criterion`` (``None``,
        ``"silhouette"`` or ``"bic"``), ``scores`` (candidate K -> score), ``feature_names``,
        ``centres`` (K x F, original units of each feature; position in coordinates),
        ``feature_mean``, ``feature_std``, ``position_weight``, ``pixel_counts``,
        ``fractions``, ``fit_samples``, ``valid_pixels``, ``seed``.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.cluster import cluster_pixels
    >>> rng = np.random.default_rng(0)
    >>> image = np.repeat([10.0, 50.0, 90.0], 100).reshape(30, 10) + rng.normal(0, 2, (30, 10))
    >>> labels, info = cluster_pixels(image, classes=3, seed=0)
    >>> labels[0, 0].item(), labels[15, 0].item(), labels[29, 0].item()
    (1, 2, 3)
    >>> [round(c[0]) for c in info["centres"]]
    [10, 50, 90]
    """
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    arrays = as_image_list(images)
    shape = arrays[0].shape
    model = _check_model(model)
    auto = isinstance(classes, str)
    k_fixed = _check_classes(classes)
    max_classes = _check_int("max_classes", max_classes, 2, _MAX_CLASSES)
    max_fit_samples = _check_int("max_fit_samples", max_fit_samples, 100, 10**9)
    weight = _check_weight(position_weight)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    valid = _valid_pixels(arrays, valid_mask)
    n_valid = int(np.count_nonzero(valid))
    if n_valid == 0:
        raise ValueError("valid_mask selects no pixels; nothing to cluster")
    if not auto and k_fixed > n_valid:
        raise ValueError(f"classes={k_fixed} is larger than the number of valid pixels "
                         f"({n_valid})")
    if isinstance(features, str):
        features = (features,)
    # Pixels outside the mask (maybe NaN) take the valid mean, so filters near the mask's
    # edge are not poisoned by NaN or by padding values far from the data.
    filled = [_fill_invalid(a, valid) for a in arrays]
    feats, names = pixel_features(filled, filters=features, sigmas=sigmas,
                                  position=weight > 0, spacing=spacing)
    scaled, mean, std = standardize(feats, mask=valid)
    del feats
    n_position = len(shape) if weight > 0 else 0
    if n_position:
        scaled[..., -n_position:] *= np.float32(weight)
    flat = scaled.reshape(-1, scaled.shape[-1])
    valid_index = np.flatnonzero(valid.reshape(-1))
    rng = np.random.default_rng(seed)
    if n_valid > max_fit_samples:
        fit_index = np.sort(rng.choice(valid_index, size=max_fit_samples, replace=False))
    else:
        fit_index = valid_index
    sample = flat[fit_index]
    distinct = _count_distinct(sample, limit=max(k_fixed, max_classes if auto else 0))
    if distinct < 2:
        raise ValueError("the valid pixels all have the same feature values (a constant "
                         "image?); there is nothing to cluster")

    def fit(k: int) -> Any:
        if model == "kmeans":
            est = KMeans(n_clusters=k, n_init=4, random_state=seed)
        else:
            est = GaussianMixture(n_components=k, covariance_type="full", n_init=1,
                                  reg_covar=1e-4, random_state=seed)
        with warnings.catch_warnings(), _threads(sample.shape[0]):
            # A sample with fewer distinct values than K is refused above; what is left
            # (e.g. an EM step limit) does not change the labels' validity.
            warnings.simplefilter("ignore")
            return est.fit(sample)

    criterion: str | None = None
    scores: dict[int, float] = {}
    if auto:
        candidates = [k for k in range(2, max_classes + 1) if k <= min(distinct, n_valid)]
        if not candidates:
            raise ValueError(f"classes='auto' needs at least 2 distinct pixels, got {distinct}")
        fitted = {}
        if model == "kmeans":
            from sklearn.metrics import pairwise_distances, silhouette_score

            criterion = "silhouette"
            sub = sample
            if sample.shape[0] > _SILHOUETTE_SAMPLES:
                sub_index = np.sort(rng.choice(sample.shape[0], _SILHOUETTE_SAMPLES,
                                               replace=False))
                sub = sample[sub_index]
            # One distance matrix for every candidate K instead of one per K.
            distances = pairwise_distances(sub.astype(np.float64))
            for k in candidates:
                est = fitted[k] = fit(k)
                sub_labels = est.predict(sub)
                n_found = np.unique(sub_labels).size
                scores[k] = (float(silhouette_score(distances, sub_labels, metric="precomputed"))
                             if 1 < n_found < sub.shape[0] else -1.0)
            k_used = max(candidates, key=lambda k: (scores[k], -k))
        else:
            criterion = "bic"
            for k in candidates:
                est = fitted[k] = fit(k)
                scores[k] = float(est.bic(sample))
            k_used = min(candidates, key=lambda k: (scores[k], k))
        estimator = fitted[k_used]
    else:
        if k_fixed > distinct:
            raise ValueError(f"classes={k_fixed} but the valid pixels have only {distinct} "
                             "distinct feature vectors")
        k_used = k_fixed
        estimator = fit(k_used)

    centres_scaled = (estimator.cluster_centers_ if model == "kmeans"
                      else estimator.means_).astype(np.float64)
    centres_unweighted = centres_scaled.copy()
    if n_position:
        centres_unweighted[:, -n_position:] /= weight
    centres = centres_unweighted * std + mean
    # Rank clusters by their centre, first feature first, for a reproducible numbering.
    order = np.lexsort(centres.T[::-1])
    rank = np.empty(k_used, dtype=np.int64)
    rank[order] = np.arange(k_used)
    labels = np.zeros(flat.shape[0], dtype=np.uint8)
    for start in range(0, valid_index.size, _PREDICT_CHUNK):
        idx = valid_index[start:start + _PREDICT_CHUNK]
        labels[idx] = rank[estimator.predict(flat[idx])] + 1
    labels = labels.reshape(shape)
    counts = np.bincount(labels.reshape(-1), minlength=k_used + 1)[1:]
    info: dict[str, Any] = {
        "model": model,
        "classes": k_used,
        "class_names": [f"cluster {i}" for i in range(1, k_used + 1)],
        "criterion": criterion,
        "scores": scores,
        "feature_names": names,
        "centres": centres[order].tolist(),
        "feature_mean": mean.tolist(),
        "feature_std": std.tolist(),
        "position_weight": weight,
        "pixel_counts": [int(c) for c in counts],
        "fractions": [float(c) / n_valid for c in counts],
        "fit_samples": int(fit_index.size),
        "valid_pixels": n_valid,
        "seed": int(seed),
    }
    return labels, info


def _threads(n_samples: int) -> Any:
    from threadpoolctl import threadpool_limits

    # Thread start-up and OpenMP spin-waiting cost more than they save on small samples
    # (a 4000-pixel fit is ~7x slower with threads on a busy 2-core machine).
    return threadpool_limits(1) if n_samples < _SMALL_FIT else contextlib.nullcontext()


def _check_model(model: Any) -> str:
    name = str(model).strip().lower()
    if name not in CLUSTER_MODELS:
        raise ValueError(f"model must be one of {', '.join(CLUSTER_MODELS)}, got {model!r}")
    return name


def _check_classes(classes: Any) -> int:
    if isinstance(classes, str):
        if classes.strip().lower() != "auto":
            raise ValueError(f"classes must be a whole number or 'auto', got {classes!r}")
        return 0
    return _check_int("classes", classes, 2, _MAX_CLASSES)


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


def _check_weight(value: Any) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"position_weight must be a number, got {value!r}") from None
    if not np.isfinite(weight) or weight < 0:
        raise ValueError(f"position_weight must be a number >= 0, got {value!r}")
    return weight


def _valid_pixels(arrays: list[np.ndarray], valid_mask: Any) -> np.ndarray:
    shape = arrays[0].shape
    finite = np.ones(shape, dtype=bool)
    for a in arrays:
        if a.dtype.kind == "f":
            finite &= np.isfinite(a)
    if valid_mask is None:
        if not finite.all():
            bad = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"
                   and not np.isfinite(a).all()]
            raise ValueError(f"images[{bad[0]}] contains NaN or infinite values; pass a "
                             "valid_mask that excludes them")
        return finite
    mask = np.asarray(valid_mask)
    if mask.shape != shape:
        raise ValueError(f"valid_mask has shape {mask.shape} but the images have shape {shape}")
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"valid_mask must be a boolean or numeric array, got dtype {mask.dtype}")
    mask = mask != 0
    if np.any(mask & ~finite):
        raise ValueError("the images contain NaN or infinite values inside valid_mask; "
                         "exclude them from the mask")
    return mask


def _fill_invalid(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    if valid.all():
        return image
    out = image.astype(np.float32, copy=True)
    out[~valid] = np.float32(image[valid].mean(dtype=np.float64)) if valid.any() else 0.0
    return out


def _count_distinct(sample: np.ndarray, *, limit: int) -> int:
    """Number of distinct rows, counting exactly only up to ``limit`` + 1 (cheap early out)."""
    head = sample[: max(limit, 1) * 50 + 1000]
    n = np.unique(head, axis=0).shape[0]
    if n > limit or head.shape[0] == sample.shape[0]:
        return n
    return int(np.unique(sample, axis=0).shape[0])


__all__ = ["CLUSTER_MODELS", "MAX_FIT_SAMPLES", "cluster_pixels"]
