"""Autocontext: later stages see filtered probability maps of the stage before.

Stage ``s >= 2`` classifies every pixel from the image features plus the features of
:data:`CONTEXT_SPEC` (or the user's bank) computed on stage ``s - 1``'s probability maps: for
two classes only the second class's map (the first is its complement), for ``K > 2`` classes
all ``K`` maps as channels. Training uses *out-of-fold* maps: the blocks of each training
image are coloured in four folds like a checkerboard (:func:`._folds.block_folds`), and a
fold model per fold learns from the other folds' samples and predicts only its own blocks, so
the maps a later stage trains on look like maps of unseen images, not the over-confident maps
of pixels the model memorised. Blocks rather than two stripes: each fold model has seen every
part of the image, not one half of it (EM benchmark, stage 2 Dice 0.823 with blocks, 0.815
with stripes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from niseg.features import FeatureSpec, compute_features

from ._estimators import make_estimator, single_threaded

#: Pixels per call of the estimator while predicting, so the estimator's own temporaries
#: (float64 copies, per-tree outputs) stay small whatever the block size.
CHUNK_PIXELS = 1 << 16

#: Default filters on the probability maps: the probability itself, then smoothed
#: probability, edges and ridges at 1 to 16 px (halo 64 per extra stage), so a later stage
#: sees whole organelles around a pixel. EM benchmark with the ``hgb`` later stage: Dice 0.836
#: with these scales against 0.82 with scales up to 5 px (a random-forest later stage gained
#: nothing from the coarse scales).
CONTEXT_SPEC = FeatureSpec(filters=("gaussian", "gradient", "hessian"),
                           scales=(1.0, 2.0, 4.0, 8.0, 16.0), raw=True)

#: Folds of checkerboard blocks (:func:`._folds.block_folds`) for the out-of-fold maps.
CONTEXT_FOLDS = 4

#: Estimator of stages 2 and later (``PixelClassifier(context_method=...)`` default), and its
#: boosting iterations when it differs from stage 1's method. Later stages see a few smooth,
#: highly informative context columns next to the image features; gradient boosting combines
#: them better than a forest (EM benchmark, stage 2 Dice 0.84 with ``hgb`` against 0.82 with
#: ``rf``, at about the same time).
CONTEXT_METHOD = "hgb"
CONTEXT_BOOSTING_ITERATIONS = 200

#: Share of ``n_estimators`` each fold model grows. The fold models only draw the maps the
#: next stage learns from, which the context filters smooth; with half the trees the four
#: fold fits (each on three quarters of the samples) cost about 1.5 full fits, not 3.
FOLD_TREE_SHARE = 0.5


def fold_trees(n_estimators: int) -> int:
    """Trees (or boosting iterations) of each fold model."""
    return max(1, round(n_estimators * FOLD_TREE_SHARE))


def context_estimators(method: str, context_method: str, n_estimators: int) -> int:
    """Trees or boosting iterations of a later stage's estimator: ``n_estimators`` when it
    uses stage 1's method, :data:`CONTEXT_BOOSTING_ITERATIONS` for a different ``hgb``."""
    if context_method == "hgb" and method != "hgb":
        return CONTEXT_BOOSTING_ITERATIONS
    return n_estimators


def resolve_context_spec(value: str | FeatureSpec | Mapping[str, Any]) -> FeatureSpec:
    """The context feature bank for ``PixelClassifier(context_features=value)``."""
    if isinstance(value, FeatureSpec):
        spec = value
    elif isinstance(value, str):
        key = value.strip().lower()
        spec = CONTEXT_SPEC if key == "context" else FeatureSpec.preset(key)
    elif isinstance(value, Mapping):
        spec = FeatureSpec.from_dict(value)
    else:
        raise TypeError(f"context_features must be 'context', 'ilastik', 'fast', a FeatureSpec "
                        f"or a dict, got {type(value).__name__}")
    if spec.position:
        raise ValueError("context_features include position, which PixelClassifier does not "
                         "use: a tile's prediction must not depend on where the tile lies")
    return spec


def context_features(proba: np.ndarray, spec: FeatureSpec, spacing: Sequence[float] | None,
                     n_jobs: int) -> np.ndarray:
    """Features of ``spec`` on probability maps ``(*spatial, K)`` -> ``(*spatial, F)``."""
    if proba.shape[-1] == 2:
        return compute_features(proba[..., 1], spec, spacing=spacing, n_threads=n_jobs)
    return compute_features(proba, spec, channel_axis=-1, spacing=spacing, n_threads=n_jobs)


def n_context_features(spec: FeatureSpec, n_classes: int, ndim: int) -> int:
    """Number of context columns for ``n_classes`` probability maps."""
    return spec.n_features(1 if n_classes == 2 else n_classes, ndim)


def context_names(spec: FeatureSpec, n_classes: int, ndim: int) -> list[str]:
    """Column names of the context features, prefixed ``context``."""
    return [f"context {n}" for n in spec.names(1 if n_classes == 2 else n_classes, ndim)]


class ConstantProba:
    """Stand-in for a fold model whose training samples hold fewer than two classes: it
    predicts the class frequencies of those samples (or of all samples when it has none)."""

    def __init__(self, prior: np.ndarray) -> None:
        self.prior = np.asarray(prior, dtype=np.float32)
        self.classes_ = np.arange(self.prior.size)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.prior, (x.shape[0], self.prior.size))


def fit_estimator(method: str, x: np.ndarray, y: np.ndarray, n_classes: int, *,
                  n_estimators: int, n_jobs: int, random_state: int | None,
                  fallback: np.ndarray) -> Any:
    """A fitted, single-threaded estimator, or a :class:`ConstantProba` when ``y`` holds
    fewer than two classes (``fallback`` is the prior used when ``y`` is empty)."""
    present = np.unique(y)
    if present.size < 2:
        prior = np.bincount(y, minlength=n_classes).astype(np.float64)
        prior = prior / prior.sum() if prior.sum() else np.asarray(fallback, np.float64)
        return ConstantProba(prior)
    estimator = make_estimator(method, n_estimators=n_estimators, n_jobs=n_jobs,
                               random_state=random_state)
    estimator.fit(x, y)
    return single_threaded(estimator)


def estimator_proba(estimator: Any, blocks: Sequence[np.ndarray], n_classes: int,
                    n_jobs: int) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` float32 of pixels whose features are the
    columns of ``blocks`` side by side (each ``(n, f_i)``), in chunks over threads.

    Classes the estimator never saw (a fold model) get probability 0.
    """
    n = blocks[0].shape[0]
    out = np.zeros((n, n_classes), dtype=np.float32)
    seen = np.asarray(estimator.classes_, dtype=np.intp)
    starts = range(0, n, CHUNK_PIXELS)

    def run(start: int) -> None:
        stop = min(start + CHUNK_PIXELS, n)
        x = blocks[0][start:stop] if len(blocks) == 1 else np.concatenate(
            [b[start:stop] for b in blocks], axis=1)
        out[start:stop, seen] = estimator.predict_proba(x)

    workers = min(n_jobs, len(starts))
    if workers <= 1:
        for start in starts:
            run(start)
    else:
        # Tree and neighbour searches release the GIL, so threads over chunks scale, and
        # every pixel's result is computed the same way whatever the chunking.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, starts))
    return out
