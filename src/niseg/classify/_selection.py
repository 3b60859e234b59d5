"""Feature selection: the fewest top-ranked features that keep held-out Dice.

The labelled pixels of a spatially separate stripe are held out (:mod:`._folds`); a model on
all features is trained on the rest and scored on them; features are ranked by that model's
impurity importances (an auxiliary random forest for methods without them); then models on
the top ``k`` features, ``k`` growing on a roughly geometric grid, are scored the same way,
and the first ``k`` whose held-out Dice is within :data:`TOLERANCE` of the full set wins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._autocontext import estimator_proba, fit_estimator
from ._estimators import make_estimator

#: Largest drop in held-out Dice accepted for a smaller feature set.
TOLERANCE = 0.01

#: Stripes per image when choosing the held-out part (one stripe in this many is held out).
SELECTION_FOLDS = 4

#: Training pixels per class used while selecting (the final model uses all samples); the
#: ranking and the comparison between subsets need far fewer than the final fit.
SELECTION_SAMPLES_PER_CLASS = 10_000

#: Held-out labelled pixels scored per subset.
EVAL_PIXELS = 100_000


def k_grid(n_features: int) -> list[int]:
    """Subset sizes tried, ascending and below ``n_features``: 1, 2, 3, 4, 6, 8, 12, 16, ..."""
    sizes: set[int] = set()
    power = 1
    while power < n_features:
        sizes.update((power, 3 * power // 2 if power > 1 else 1, 3 * power))
        power *= 2
    return sorted(k for k in sizes if k < n_features)


def heldout_dice(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> float:
    """Foreground Dice (class index 1) for two classes, else the mean per-class Dice over
    the classes present in ``truth`` or ``pred``."""
    def one(k: int) -> float:
        a, b = pred == k, truth == k
        total = int(a.sum() + b.sum())
        return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total

    if n_classes == 2:
        return one(1)
    present = np.union1d(np.unique(pred), np.unique(truth))
    return float(np.mean([one(int(k)) for k in present]))


def select_columns(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray,
                   y_eval: np.ndarray, n_classes: int, names: list[str], *, method: str,
                   n_estimators: int, n_jobs: int, random_state: int | None,
                   ) -> tuple[list[int], dict[str, Any]]:
    """Columns to keep (ascending) and the record of how they were chosen."""
    n_features = x_train.shape[1]
    prior = np.bincount(y_train, minlength=n_classes) / max(y_train.size, 1)

    def score(columns: np.ndarray) -> tuple[float, Any]:
        estimator = fit_estimator(method, x_train[:, columns], y_train, n_classes,
                                  n_estimators=n_estimators, n_jobs=n_jobs,
                                  random_state=random_state, fallback=prior)
        proba = estimator_proba(estimator, [x_eval[:, columns]], n_classes, n_jobs)
        return heldout_dice(np.argmax(proba, axis=1), y_eval, n_classes), estimator

    everything = np.arange(n_features)
    full_dice, full_model = score(everything)
    importances = getattr(full_model, "feature_importances_", None)
    ranked_by = "importances"
    if importances is None:
        ranked_by = "auxiliary random forest"
        forest = make_estimator("rf", n_estimators=max(n_estimators, 20), n_jobs=n_jobs,
                                random_state=random_state)
        importances = forest.fit(x_train, y_train).feature_importances_
    # Stable sort on -importance: ties keep the spec's order, so the ranking is deterministic.
    order = np.argsort(-np.asarray(importances), kind="stable")
    tried, scores = [], []
    chosen = n_features
    for k in k_grid(n_features):
        d, _ = score(order[:k])
        tried.append(k)
        scores.append(round(float(d), 6))
        if d >= full_dice - TOLERANCE:
            chosen = k
            break
    columns = sorted(int(c) for c in order[:chosen])
    record = {
        "k": tried + [n_features],
        "dice": scores + [round(float(full_dice), 6)],
        "chosen_k": int(chosen),
        "full_dice": round(float(full_dice), 6),
        "chosen_dice": round(float(full_dice if chosen == n_features
                                   else scores[tried.index(chosen)]), 6),
        "tolerance": TOLERANCE,
        "n_features": int(n_features),
        "ranked_by": ranked_by,
        "ranking": [names[int(i)] for i in order],
        "n_train_pixels": int(y_train.size),
        "n_heldout_pixels": int(y_eval.size),
    }
    return columns, record
