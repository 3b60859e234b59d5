"""The scikit-learn estimators a pixel classifier can use, and class-balanced sampling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Estimator names accepted by ``PixelClassifier(method=...)``.
METHODS = ("rf", "et", "hgb", "knn", "tree", "logreg")


def make_estimator(method: str, *, n_estimators: int, n_jobs: int,
                   random_state: int | None) -> Any:
    """A fresh scikit-learn classifier for ``method`` (see :data:`METHODS`).

    Distance- and gradient-based methods (``knn``, ``logreg``) get a ``StandardScaler`` in
    front, in a ``Pipeline``, so that no feature dominates by its units. For ``hgb``,
    ``n_estimators`` is the number of boosting iterations (``max_iter``).
    """
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if method == "rf":
        return RandomForestClassifier(n_estimators=n_estimators, n_jobs=n_jobs,
                                      random_state=random_state)
    if method == "et":
        return ExtraTreesClassifier(n_estimators=n_estimators, n_jobs=n_jobs,
                                    random_state=random_state)
    if method == "hgb":
        return HistGradientBoostingClassifier(max_iter=n_estimators, random_state=random_state)
    if method == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_jobs=n_jobs))
    if method == "tree":
        return DecisionTreeClassifier(random_state=random_state)
    if method == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def single_threaded(estimator: Any) -> Any:
    """Set every ``n_jobs`` of a fitted estimator to 1.

    A forest predicting with several jobs adds the trees' probabilities in whatever order the
    threads finish, which changes the last bits from run to run; the classifier parallelises
    over pixel chunks instead, so every pixel's sum runs in one fixed order.
    """
    keys = [k for k in estimator.get_params(deep=True) if k == "n_jobs" or k.endswith("__n_jobs")]
    if keys:
        estimator.set_params(**{k: 1 for k in keys})
    return estimator


def balanced_sample(
    targets: Sequence[np.ndarray], classes: np.ndarray, cap: int | None,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Pick up to ``cap`` labelled pixels of each class, uniformly over all target images.

    Parameters
    ----------
    targets : sequence of ndarray
        Per-image class values; pixels whose value is not in ``classes`` are skipped.
    classes : (K,) ndarray
        Class values to sample, in order; the sample's class index is the position here.
    cap : int or None
        Most pixels per class; ``None`` keeps all.
    rng : numpy.random.Generator
        Source of the random choice.

    Returns
    -------
    indices : list of ndarray
        Per image, the sorted flat indices of the chosen pixels.
    y : list of ndarray
        Per image, the class index of each chosen pixel (same order as ``indices``).
    counts : (K,) ndarray
        Pixels chosen per class.
    """
    n_images = len(targets)
    flat = [np.asarray(t).ravel() for t in targets]
    chosen: list[list[np.ndarray]] = [[] for _ in range(n_images)]
    counts = np.zeros(len(classes), dtype=np.int64)
    for k, value in enumerate(classes):
        where = [np.flatnonzero(f == value) for f in flat]
        sizes = np.array([w.size for w in where], dtype=np.int64)
        total = int(sizes.sum())
        take = total if cap is None else min(total, cap)
        counts[k] = take
        if take < total:
            # Choose positions in the concatenation of all images, then split them back.
            picks = np.sort(rng.choice(total, size=take, replace=False))
            bounds = np.concatenate([[0], np.cumsum(sizes)])
            for i in range(n_images):
                lo, hi = np.searchsorted(picks, bounds[i : i + 2])
                chosen[i].append(where[i][picks[lo:hi] - bounds[i]])
        else:
            for i in range(n_images):
                chosen[i].append(where[i])
    indices, y = [], []
    for i in range(n_images):
        idx = np.concatenate(chosen[i]) if chosen[i] else np.empty(0, np.int64)
        lab = np.concatenate([np.full(c.size, k, dtype=np.intp) for k, c in enumerate(chosen[i])]
                             ) if chosen[i] else np.empty(0, np.intp)
        order = np.argsort(idx, kind="stable")
        indices.append(idx[order])
        y.append(lab[order])
    return indices, y, counts
