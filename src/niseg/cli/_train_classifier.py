"""`niseg train` with a pixel classifier (--method rf, et, hgb, knn, tree, logreg)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._train_report import TOP_IMPORTANCES, importances, labelled_pixels


def check_classifier_options(trees: int, stages: int, max_samples: int, features: str,
                             context_method: str | None = None) -> Any:
    """Check the classifier's numbers; returns the --features value to give the model.

    ``context_method`` is the --context-method value when the user gave it (``None``: not
    given)."""
    from niseg.classify._estimators import METHODS

    for name, value in (("--trees", trees), ("--stages", stages)):
        if value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value}")
    if context_method is not None:
        if context_method not in (*METHODS, "same"):
            raise ValueError(f"--context-method must be one of {', '.join(METHODS)} or same, "
                             f"got {context_method!r}")
        if stages < 2:
            raise ValueError("--context-method sets the estimator of autocontext stages 2 "
                             "and later; give --stages 2 or more")
    if max_samples < 0:
        raise ValueError(f"--max-samples must be 0 (all) or positive, got {max_samples}")
    return _parse_features(features)


def _parse_features(text: str) -> Any:
    from niseg.features import FeatureSpec

    value = text.strip()
    if value.lower() in ("ilastik", "fast"):
        return value.lower()
    if value.startswith("{"):
        source = "--features"
        raw = value
    else:
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"--features must be ilastik, fast, JSON text or a .json file, "
                             f"got {text!r}")
        source, raw = f"--features file '{value}'", path.read_text(encoding="utf-8")
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON ({exc.msg} at position {exc.pos})") from None
    try:
        return FeatureSpec.from_dict(spec)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source} is not a feature spec: {exc}") from None


def spacing_of(metadata: dict, dims: int) -> list[float] | None:
    """Pixel size of the last ``dims`` axes from the metadata, if known."""
    sizes = metadata.get("pixel_size")
    if sizes is None:
        sizes = metadata.get("slice_pixel_size")
    if sizes is None or len(sizes) < dims:
        return None
    return [float(s) for s in list(sizes)[-dims:]]


def make_classifier(features: Any, *, method: str, trees: int, stages: int,
                    context_method: str = "hgb", select_features: bool, max_samples: int, jobs: int | None,
                    spacing: list[float] | None, channels: int, seed: int) -> Any:
    """A PixelClassifier from the command-line values."""
    from niseg.classify import PixelClassifier

    kwargs: dict[str, Any] = {
        "features": features, "method": method, "n_estimators": trees,
        "max_samples_per_class": max_samples or None, "n_jobs": jobs, "spacing": spacing,
        "channel_axis": -1 if channels else None, "random_state": seed,
    }
    # Passed only when asked for, so plain training works with any PixelClassifier.
    if stages != 1:
        kwargs["stages"] = stages
        if context_method != "hgb":
            kwargs["context_method"] = None if context_method == "same" else context_method
    if select_features:
        kwargs["select_features"] = True
    try:
        return PixelClassifier(**kwargs)
    except TypeError:
        wanted = "--stages" if stages != 1 else "--select-features"
        raise ValueError(f"{wanted} is not available in this niseg's PixelClassifier") from None


def classifier_stats(model: Any, data: list[dict[str, Any]], sources: list[tuple[str, str]],
                     *, target_kind: str, out: str, seconds: float, two_d: bool,
                     spacing: list[float] | None, seed: int) -> dict[str, Any]:
    """What --stats-out writes for a pixel classifier."""
    classes = model.classes_.tolist()
    counts = [int(c) for c in model.n_samples_per_class_]
    labelled = labelled_pixels(data, classes, target_kind)
    values = importances(model)
    top = None
    if values is not None:
        order = np.argsort(-values, kind="stable")[:TOP_IMPORTANCES]
        top = [{"feature": model.feature_names_[i], "importance": float(values[i])}
               for i in order]
    stats: dict[str, Any] = {
        "model": out,
        "inputs": [{"image": i, target_kind: t, "shape": list(d["shape"])}
                   for (i, t), d in zip(sources, data)],
        "fitted_with": target_kind,
        "method": model.method,
        "features": model.feature_spec_.to_dict(),
        "n_features": len(model.feature_names_),
        "spatial_dims": int(model.spatial_dims),
        "n_channels": int(model.n_channels_),
        "two_d": two_d,
        "spacing": spacing,
        "seed": seed,
        "classes": classes,
        "labelled_pixels": labelled,
        "samples_per_class": {str(c): n for c, n in zip(classes, counts)},
        "feature_importances_top": top,
        "stages": int(getattr(model, "n_stages_", 1)),
        "context_method": (model.context_method or model.method
                           if getattr(model, "n_stages_", 1) > 1 else None),
        "training_seconds": round(seconds, 3),
        "halo": [int(h) for h in np.atleast_1d(model.halo)],
    }
    selected = getattr(model, "selected_features_", None)
    if selected is not None:
        stats["selected_features"] = [_feature_name(model, f) for f in selected]
    selection = getattr(model, "selection_", None)
    if selection is not None:
        from niseg.io import to_jsonable

        stats["selection"] = to_jsonable(selection)
    return stats


def _feature_name(model: Any, feature: Any) -> str:
    if isinstance(feature, (int, np.integer)):
        return str(model.feature_names_[int(feature)])
    return str(feature)
