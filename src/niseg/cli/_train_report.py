"""Report sections of `niseg train`: the parts every model shares and the classifier's own."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ._predict import class_names

TOP_IMPORTANCES = 20


def labelled_pixels(data: list[dict[str, Any]], classes: list, target_kind: str) -> dict:
    """Labelled pixels per class over all training inputs (mask pixels count as 0 or 1)."""
    counts = {str(c): 0 for c in classes}
    for d in data:
        values, n = np.unique(np.concatenate([t.ravel() for t in d["targets"]]),
                              return_counts=True)
        for v, c in zip(values.tolist(), n.tolist()):
            key = str(int(v != 0)) if target_kind == "mask" else str(v)
            if key in counts:
                counts[key] += int(c)
    return counts


def importances(model: Any) -> np.ndarray | None:
    """The classifier's feature importances, or None when its method has none."""
    try:
        values = np.asarray(model.feature_importances_, dtype=np.float64)
    except (AttributeError, ValueError):
        return None
    return values if values.size == len(model.feature_names_) else None


def training_data_sections(model: Any, first: dict[str, Any], stats: dict[str, Any],
                           extra_columns: dict[str, dict] | None = None) -> list[dict]:
    """'Training data' (labels over the shown slice) and 'Labelled pixels per class'."""
    from niseg.report import training_labels_figure

    array, target = first["display"]
    names = class_names(model)
    k, image2d, labels2d = display_slice(array, target, first["channels"])
    where = f" (slice {k})" if k is not None else ""
    label_names = names if stats["fitted_with"] == "labels" else ["foreground"]
    kind = stats["fitted_with"]
    rows = []
    for c, n in zip(stats["classes"], names):
        row = {"class": c, "name": n, "labelled pixels": stats["labelled_pixels"][str(c)]}
        for column, values in (extra_columns or {}).items():
            row[column] = values[str(c)]
        rows.append(row)
    return [{
        "heading": "Training data",
        "text": "\n\n".join(f"{e['image']} with {kind} {e[kind]}, shape {tuple(e['shape'])}"
                            for e in stats["inputs"]) + f"\n\nShown: the first image{where}.",
        "figure": training_labels_figure(image2d, labels2d, class_names=label_names),
    }, {"heading": "Labelled pixels per class", "table": rows}]


def prediction_section(model: Any, first: dict[str, Any]) -> dict[str, Any]:
    """The training image's prediction and uncertainty on the slice the report shows."""
    from niseg.models import margin_uncertainty
    from niseg.report import prediction_figure
    from niseg.tiling import predict_tiled

    array, target = first["display"]
    k, image2d, _ = display_slice(array, target, first["channels"])
    block, index = _prediction_block(model, array, k)
    proba = np.asarray(predict_tiled(model, block, output="proba"))[index]
    predicted = model.classes_[np.argmax(proba, axis=-1)]
    uncertainty = margin_uncertainty(proba)
    return {
        "heading": "Prediction of the training image",
        "text": "Uncertainty is 1 - (p1 - p2) from the two likeliest classes: 0 where the "
                "model is sure, 1 where two classes tie. Draw more labels where it is high.\n\n"
                f"Mean uncertainty {float(uncertainty.mean()):.3f}.",
        "figure": prediction_figure(image2d, predicted, uncertainty,
                                    class_names=class_names(model)),
    }


def classifier_report_sections(model: Any, first: dict[str, Any],
                               stats: dict[str, Any]) -> list[dict]:
    """All sections of a pixel classifier's training report."""
    from niseg.report import feature_importance_figure, feature_selection_figure

    sections = training_data_sections(model, first, stats,
                                      {"training samples": stats["samples_per_class"]})
    top = stats["feature_importances_top"]
    if top:
        sections.append({
            "heading": "Feature importances",
            "text": f"{stats['n_features']} features; the {len(top)} most important by mean "
                    "decrease in impurity.",
            "figure": feature_importance_figure(model.feature_names_, importances(model),
                                                top=TOP_IMPORTANCES),
        })
    else:
        sections.append({"heading": "Feature importances",
                         "text": f"The method {model.method!r} gives no feature importances."})
    selection = getattr(model, "selection_", None)
    if selection is not None:
        curve = _selection_curve(selection)
        section: dict[str, Any] = {"heading": "Feature selection", "table": {
            k: v for k, v in stats["selection"].items() if not isinstance(v, (list, dict))}}
        if curve is not None:
            section["figure"] = feature_selection_figure(curve[0], curve[1], chosen=curve[2],
                                                         full_score=curve[3])
        if stats.get("selected_features"):
            section["text"] = "Kept: " + ", ".join(stats["selected_features"])
        sections.append(section)
    n_stages = stats["stages"]
    sections.append({
        "heading": "Autocontext stages",
        "text": ("1 stage: the classifier sees the filter features only." if n_stages == 1 else
                 f"{n_stages} stages: each stage after the first also sees the previous "
                 "stage's class probabilities, smoothed, as extra features."),
    })
    sections.append(prediction_section(model, first))
    sections.append({"heading": "Settings", "table": {
        "method": stats["method"], "features": json.dumps(stats["features"]),
        "spatial dimensions": stats["spatial_dims"], "channels": stats["n_channels"],
        "2-D slices": stats["two_d"], "spacing": stats["spacing"], "seed": stats["seed"],
        "halo": stats["halo"], "training seconds": stats["training_seconds"]}})
    return sections


def display_slice(array: np.ndarray, target: np.ndarray,
                  channels: int) -> tuple[int | None, np.ndarray, np.ndarray]:
    """A 2-D view: the slice with the most labelled pixels of a volume or stack."""
    image = array[..., 0] if channels else array
    if target.ndim == 2:
        return None, image, target
    k = int(np.argmax(np.count_nonzero(target.reshape(target.shape[0], -1), axis=1)))
    return k, image[k], target[k]


def _prediction_block(model: Any, array: np.ndarray, k: int | None) -> tuple[np.ndarray, Any]:
    """What to predict for the shown slice, and where the slice lies in the result."""
    if k is None:
        return array, ()
    if int(model.spatial_dims) == 2:
        return array[k], ()
    # A 3-D model: a slab of halo slices either side gives the exact slice at less cost.
    halo = int(np.atleast_1d(model.halo)[0])
    lo, hi = max(k - halo, 0), min(k + halo + 1, array.shape[0])
    multiple = getattr(model, "tile_multiple", None)
    if multiple is not None:
        # A U-Net's window grid is anchored to the block origin: start the slab on the grid.
        step = int(np.atleast_1d(multiple)[0])
        lo = lo // step * step
    return array[lo:hi], (k - lo,)


def _selection_curve(selection: Any) -> tuple[list, list, Any, Any] | None:
    """(k values, held-out Dice, chosen k, Dice with all features) from ``selection_``."""
    try:
        ks = [int(v) for v in selection["k"]]
        scores = [float(v) for v in selection["dice"]]
    except (KeyError, TypeError, ValueError):
        return None
    if len(ks) != len(scores) or not ks:
        return None
    return ks, scores, selection.get("chosen_k"), selection.get("full_dice")
