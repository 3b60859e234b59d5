"""`niseg train`: train a pixel classifier from brush strokes or a mask and save the model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._app import AxesOpt, OverwriteOpt, QuietOpt, _progress, _report_warnings, app, check_outputs
from ._predict import read_for_model, uncertainty_from_proba

_TOP_IMPORTANCES = 20

_PAIR_HELP = (
    "More training data: --pair IMAGE LABELS (repeatable, after IMAGE), each LABELS read like "
    "--labels, or like --mask when the first image has a --mask."
)


@app.command(
    "train",
    # '--pair IMAGE LABELS' takes two values, which Typer options cannot; it is read from the
    # extra arguments and documented in the help text below.
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_PAIR_HELP,
)
def train_command(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help=(
        "Training image or volume (file, folder or glob of slices); a colour image's "
        "channels are the model's inputs."))],
    out: Annotated[str, typer.Option("--out", "-o", help="Model file to write (.niseg).")],
    labels: Annotated[
        str | None,
        typer.Option("--labels", help=(
            "Sparse labels (brush strokes): 0 = unlabeled, 1..K = classes. A napari Labels "
            "TIFF, an ilastik label export (.h5) or project (.ilp), or any image file.")),
    ] = None,
    mask: Annotated[
        str | None,
        typer.Option("--mask", help=(
            "Dense binary mask instead of labels (non-zero = foreground); the model then "
            "predicts uint8 0/1.")),
    ] = None,
    method: Annotated[
        str,
        typer.Option("--method", help=(
            "rf (random forest), et (extra trees), hgb (histogram gradient boosting), knn, "
            "tree (one decision tree) or logreg (logistic regression).")),
    ] = "rf",
    features: Annotated[
        str,
        typer.Option("--features", help=(
            "ilastik (all filters at ilastik's 7 scales), fast (intensity, Gaussian, LoG and "
            "gradient at 1, 3.5 and 10), or a feature spec as JSON text or a .json file, "
            "e.g. '{\"filters\": [\"gaussian\", \"hessian\"], \"scales\": [1, 4]}'.")),
    ] = "ilastik",
    trees: Annotated[
        int, typer.Option("--trees", help="Trees of rf/et, boosting iterations of hgb.")
    ] = 50,
    stages: Annotated[
        int,
        typer.Option("--stages", help=(
            "Autocontext stages: each stage after the first also sees the previous stage's "
            "smoothed probabilities.")),
    ] = 1,
    select_features: Annotated[
        bool,
        typer.Option("--select-features", help=(
            "Keep only the most useful features (chosen on held-out labelled pixels); the "
            "model is then faster to apply.")),
    ] = False,
    max_samples: Annotated[
        int,
        typer.Option("--max-samples", help=(
            "Most labelled pixels per class used for training (a seeded random subset); 0 "
            "uses all.")),
    ] = 50_000,
    two_d: Annotated[
        bool,
        typer.Option("--2d", help=(
            "Treat every slice of a volume or stack as a separate 2-D training image (2-D "
            "features); the model then predicts stacks slice by slice. Default: a 3-D array "
            "is a volume with 3-D features.")),
    ] = False,
    report: Annotated[
        str | None,
        typer.Option("--report", help=(
            "Also write an HTML report: labels over the image, samples per class, feature "
            "importances, feature selection, stages and the prediction of the training "
            "image with its uncertainty.")),
    ] = None,
    stats_out: Annotated[
        str | None,
        typer.Option("--stats-out", help=(
            "Also write JSON: classes, samples per class, top feature importances, settings "
            "and training time.")),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the pixel sampling and of the classifier.")
    ] = 0,
    jobs: Annotated[
        int | None, typer.Option("--jobs", help="Threads to use (default: all CPUs).")
    ] = None,
    axes: AxesOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a pixel classifier on filter features from brush strokes or a mask.

    Draw a few strokes per class (napari: a Labels layer saved as TIFF; ilastik: exported
    labels or the .ilp project), train, then apply the model with 'niseg predict'. The model
    file records the features, classes and training provenance.
    """
    from niseg.classify import METHODS
    from niseg.io import read_image, read_labels, write_json
    from niseg.models import file_sha256, save_model

    pairs = _parse_pairs(image, list(ctx.args))
    if (labels is None) == (mask is None):
        raise ValueError("give either --labels (sparse, 0 = unlabeled) or --mask (dense "
                         "binary), exactly one of them")
    if method not in METHODS:
        raise ValueError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    for name, value in (("--trees", trees), ("--stages", stages)):
        if value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value}")
    if max_samples < 0:
        raise ValueError(f"--max-samples must be 0 (all) or positive, got {max_samples}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be a positive whole number, got {jobs}")
    feature_arg = _parse_features(features)
    target_kind = "labels" if labels is not None else "mask"
    sources = [(image, labels if labels is not None else mask), *pairs]
    check_outputs([p for pair in sources for p in pair], [out, report, stats_out],
                  overwrite=overwrite)

    with _report_warnings(quiet):
        with _progress(quiet, "reading") as update:
            data = []
            for k, (image_path, target_path) in enumerate(sources):
                update(k, len(sources), f"reading {Path(image_path).name}")
                data.append(_read_pair(image_path, target_path, axes, two_d, read_image,
                                       read_labels))
        _check_consistent(data)
        first = data[0]
        spacing = _spacing(first["metadata"], first["spatial"])
        model = _make_model(feature_arg, method=method, trees=trees, stages=stages,
                            select_features=select_features, max_samples=max_samples,
                            jobs=jobs, spacing=spacing, channels=first["channels"], seed=seed)
        images = [im for d in data for im in d["images"]]
        targets = [t for d in data for t in d["targets"]]
        with _progress(quiet, "training") as update:
            update(0, 1, f"computing features and fitting ({method})")
            start = time.perf_counter()
            if target_kind == "labels":
                model.fit(images, targets)
            else:
                model.fit(images, masks=targets)
            seconds = time.perf_counter() - start
            update(1, 1)
        stats = _stats(model, data, sources, target_kind=target_kind, out=out,
                       seconds=seconds, two_d=two_d, spacing=spacing, seed=seed)
        sections = None
        if report is not None:
            with _progress(quiet, "report") as update:
                update(0, 1, "predicting the training image for the report")
                sections = _report_sections(model, first, stats)
                update(1, 1)
        provenance = {
            "training_inputs": [
                {"image": i, target_kind: t, "sha256": _hash(i, file_sha256),
                 f"{target_kind}_sha256": _hash(t, file_sha256)} for i, t in sources],
            "two_d": two_d,
            "seed": seed,
            "training_seconds": round(seconds, 3),
            "samples_per_class": stats["samples_per_class"],
        }
        written = save_model(model, out, provenance=provenance, overwrite=overwrite)
        stats["model"] = str(written)
        if stats_out is not None:
            write_json(stats_out, stats, overwrite=overwrite)
        if sections is not None:
            from niseg.report import write_html_report

            write_html_report(report, title=f"Pixel classifier {Path(out).name}",
                              sections=sections, overwrite=overwrite)
    if not quiet:
        counts = ", ".join(f"{k}: {v}" for k, v in stats["samples_per_class"].items())
        typer.echo(f"wrote {written} ({method}, {stats['n_features']} features, "
                   f"samples per class {counts}, {seconds:.1f} s)")


def _parse_pairs(image: str, args: list[str]) -> list[tuple[str, str]]:
    if image.startswith("--pair"):
        raise ValueError("give the training IMAGE before any --pair IMAGE LABELS")
    if image.startswith("-"):
        raise ValueError(f"no such option: {image} (see 'niseg train --help')")
    pairs = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--pair" or token.startswith("--pair="):
            if token == "--pair":
                values, i = args[i + 1 : i + 3], i + 3
            else:
                values, i = [token[len("--pair="):], *args[i + 1 : i + 2]], i + 2
            if len(values) != 2 or any(not v or v.startswith("-") for v in values):
                raise ValueError("--pair needs two values: --pair IMAGE LABELS")
            pairs.append((values[0], values[1]))
        elif token.startswith("-"):
            raise ValueError(f"no such option: {token} (see 'niseg train --help')")
        else:
            raise ValueError(f"unexpected argument '{token}'; more training images go in "
                             "--pair IMAGE LABELS")
    return pairs


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


def _read_pair(image_path: str, target_path: str, axes: str | None, two_d: bool,
               read_image: Any, read_labels: Any) -> dict[str, Any]:
    array, letters, metadata = read_for_model(image_path, axes, read_image)
    channels = array.shape[-1] if letters.endswith("c") else 0
    spatial = letters.replace("c", "")
    if any(a not in "zyxt" for a in spatial) or len(spatial) not in (2, 3):
        raise ValueError(f"'{image_path}' has axes '{letters}'; train takes a 2-D image (yx), "
                         "a volume (zyx) or, with --2d, a stack (tyx), optionally with "
                         "channels (c)")
    if "t" in spatial and not two_d:
        raise ValueError(f"'{image_path}' is a stack of frames (axes {spatial}); pass --2d to "
                         "train on each frame as a 2-D image, or --axes zyx for a volume")
    shape = array.shape[: len(spatial)]
    target = read_labels(target_path, shape=shape)
    if two_d and len(spatial) == 3:
        images = list(array)
        targets = list(target)
    else:
        images, targets = [array], [target]
    return {"path": image_path, "target": target_path, "images": images, "targets": targets,
            "metadata": metadata, "channels": channels, "shape": shape,
            "spatial": 2 if two_d else len(spatial), "display": (array, target)}


def _check_consistent(data: list[dict[str, Any]]) -> None:
    first = data[0]
    for d in data[1:]:
        if d["spatial"] != first["spatial"]:
            raise ValueError(f"'{d['path']}' is {d['spatial']}-D but '{first['path']}' is "
                             f"{first['spatial']}-D; train on images of one kind (or pass --2d)")
        if d["channels"] != first["channels"]:
            raise ValueError(f"'{d['path']}' has {max(d['channels'], 1)} channels but "
                             f"'{first['path']}' has {max(first['channels'], 1)}")


def _spacing(metadata: dict, dims: int) -> list[float] | None:
    sizes = metadata.get("pixel_size")
    if sizes is None:
        sizes = metadata.get("slice_pixel_size")
    if sizes is None or len(sizes) < dims:
        return None
    return [float(s) for s in list(sizes)[-dims:]]


def _make_model(features: Any, *, method: str, trees: int, stages: int, select_features: bool,
                max_samples: int, jobs: int | None, spacing: list[float] | None,
                channels: int, seed: int) -> Any:
    from niseg.classify import PixelClassifier

    kwargs: dict[str, Any] = {
        "features": features, "method": method, "n_estimators": trees,
        "max_samples_per_class": max_samples or None, "n_jobs": jobs, "spacing": spacing,
        "channel_axis": -1 if channels else None, "random_state": seed,
    }
    # Passed only when asked for, so plain training works with any PixelClassifier.
    if stages != 1:
        kwargs["stages"] = stages
    if select_features:
        kwargs["select_features"] = True
    try:
        return PixelClassifier(**kwargs)
    except TypeError:
        wanted = "--stages" if stages != 1 else "--select-features"
        raise ValueError(f"{wanted} is not available in this niseg's PixelClassifier") from None


def _hash(path: str, file_sha256: Any) -> str | None:
    file_part = Path(path.split("::")[0])
    return file_sha256(file_part) if file_part.is_file() else None


def _stats(model: Any, data: list[dict[str, Any]], sources: list[tuple[str, str]], *,
           target_kind: str, out: str, seconds: float, two_d: bool,
           spacing: list[float] | None, seed: int) -> dict[str, Any]:
    classes = model.classes_.tolist()
    counts = [int(c) for c in model.n_samples_per_class_]
    labelled = {str(c): 0 for c in classes}
    for d in data:
        values, n = np.unique(np.concatenate([t.ravel() for t in d["targets"]]),
                              return_counts=True)
        for v, c in zip(values.tolist(), n.tolist()):
            key = str(int(v != 0)) if target_kind == "mask" else str(v)
            if key in labelled:
                labelled[key] += int(c)
    importances = _importances(model)
    top = None
    if importances is not None:
        order = np.argsort(-importances, kind="stable")[:_TOP_IMPORTANCES]
        top = [{"feature": model.feature_names_[i], "importance": float(importances[i])}
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


def _importances(model: Any) -> np.ndarray | None:
    try:
        values = np.asarray(model.feature_importances_, dtype=np.float64)
    except (AttributeError, ValueError):
        return None
    return values if values.size == len(model.feature_names_) else None


def _report_sections(model: Any, first: dict[str, Any], stats: dict[str, Any]) -> list[dict]:
    from niseg.report import (
        feature_importance_figure,
        feature_selection_figure,
        prediction_figure,
        training_labels_figure,
    )

    from ._predict import class_names

    array, target = first["display"]
    names = class_names(model)
    k, image2d, labels2d = _display_slice(array, target, first["channels"])
    where = f" (slice {k})" if k is not None else ""
    label_names = names if stats["fitted_with"] == "labels" else ["foreground"]
    sections: list[dict[str, Any]] = [{
        "heading": "Training data",
        "text": "\n\n".join(
            f"{e['image']} with {stats['fitted_with']} {e[stats['fitted_with']]}, shape "
            f"{tuple(e['shape'])}" for e in stats["inputs"]) + f"\n\nShown: the first image{where}.",
        "figure": training_labels_figure(image2d, labels2d, class_names=label_names),
    }, {
        "heading": "Labelled pixels per class",
        "table": [{"class": c, "name": n, "labelled pixels": stats["labelled_pixels"][str(c)],
                   "training samples": stats["samples_per_class"][str(c)]}
                  for c, n in zip(stats["classes"], names)],
    }]
    top = stats["feature_importances_top"]
    if top:
        importances = _importances(model)
        sections.append({
            "heading": "Feature importances",
            "text": f"{stats['n_features']} features; the {len(top)} most important by mean "
                    "decrease in impurity.",
            "figure": feature_importance_figure(model.feature_names_, importances,
                                                top=_TOP_IMPORTANCES),
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
    from niseg.tiling import predict_tiled

    block, index = _prediction_block(model, array, k)
    proba = np.asarray(predict_tiled(model, block, output="proba"))[index]
    predicted = model.classes_[np.argmax(proba, axis=-1)]
    uncertainty = uncertainty_from_proba(proba)
    sections.append({
        "heading": "Prediction of the training image",
        "text": "Uncertainty is 1 - (p1 - p2) from the two likeliest classes: 0 where the "
                "model is sure, 1 where two classes tie. Draw more labels where it is high.\n\n"
                f"Mean uncertainty {float(uncertainty.mean()):.3f}.",
        "figure": prediction_figure(image2d, predicted, uncertainty, class_names=names),
    })
    sections.append({"heading": "Settings", "table": {
        "method": stats["method"], "features": json.dumps(stats["features"]),
        "spatial dimensions": stats["spatial_dims"], "channels": stats["n_channels"],
        "2-D slices": stats["two_d"], "spacing": stats["spacing"], "seed": stats["seed"],
        "halo": stats["halo"], "training seconds": stats["training_seconds"]}})
    return sections


def _display_slice(array: np.ndarray, target: np.ndarray,
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
