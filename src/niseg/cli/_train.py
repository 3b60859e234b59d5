"""`niseg train`: train a pixel classifier or a U-Net from brush strokes or a mask."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._app import AxesOpt, OverwriteOpt, QuietOpt, _progress, _report_warnings, app, check_outputs
from ._predict import read_for_model
from ._train_classifier import (
    check_classifier_options,
    classifier_stats,
    make_classifier,
    spacing_of,
)
from ._train_report import classifier_report_sections

_PAIR_HELP = (
    "More training data: --pair IMAGE LABELS (repeatable, after IMAGE), each LABELS read like "
    "--labels, or like --mask when the first image has a --mask. U-Net only: "
    "--validation-pair IMAGE LABELS (repeatable) validates on these images instead of a block "
    "held out of the training images."
)

_UNET = "unet"
# Options that only one family of models understands, by parameter name.
_CLASSIFIER_ONLY = {"features": "--features", "trees": "--trees", "stages": "--stages",
                    "context_method": "--context-method", "select_features": "--select-features", "max_samples": "--max-samples"}
_UNET_ONLY = {
    "epochs": "--epochs", "time_budget": "--time-budget", "validation": "--validation",
    "patience": "--patience", "loss": "--loss", "class_weights": "--class-weights",
    "augment": "--augment", "data_counts": "--data-counts", "device": "--device",
    "init": "--init",
    "freeze_encoder_epochs": "--freeze-encoder-epochs", "patch": "--patch", "depth": "--depth",
    "base_channels": "--base-channels", "batch_size": "--batch-size",
    "learning_rate": "--learning-rate", "iterations_per_epoch": "--iterations-per-epoch",
}
_DEEP = "U-Net option (--method unet)"


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
            "Dense binary mask instead of labels (0 = background, one other value = "
            "foreground); the model then predicts uint8 0/1.")),
    ] = None,
    method: Annotated[
        str,
        typer.Option("--method", help=(
            "rf (random forest), et (extra trees), hgb (histogram gradient boosting), knn, "
            "tree (one decision tree), logreg (logistic regression) on filter features, or "
            "unet (a U-Net that learns its own filters; needs PyTorch, the 'deep' extra of "
            "niseg).")),
    ] = "rf",
    features: Annotated[
        str,
        typer.Option("--features", help=(
            "Classifier only. ilastik (all filters at ilastik's 7 scales), fast (intensity, "
            "Gaussian, LoG and gradient at 1, 3.5 and 10), or a feature spec as JSON text or a "
            ".json file, e.g. '{\"filters\": [\"gaussian\", \"hessian\"], \"scales\": [1, 4]}'.")),
    ] = "ilastik",
    trees: Annotated[
        int, typer.Option("--trees", help=(
            "Classifier only. Trees of rf/et, boosting iterations of hgb."))
    ] = 50,
    stages: Annotated[
        int,
        typer.Option("--stages", help=(
            "Classifier only. Autocontext stages: each stage after the first also sees the "
            "previous stage's smoothed probabilities.")),
    ] = 1,
    context_method: Annotated[
        str,
        typer.Option("--context-method", help=(
            "Classifier only, with --stages 2 or more. Estimator of the later stages: hgb "
            "(default; gradient boosting combines the smoothed probabilities best), rf, et, "
            "knn, tree, logreg, or same (the --method of stage 1).")),
    ] = "hgb",
    select_features: Annotated[
        bool,
        typer.Option("--select-features", help=(
            "Classifier only. Keep only the most useful features (chosen on held-out "
            "labelled pixels); the model is then faster to apply.")),
    ] = False,
    max_samples: Annotated[
        int,
        typer.Option("--max-samples", help=(
            "Classifier only. Most labelled pixels per class used for training (a seeded "
            "random subset); 0 uses all.")),
    ] = 50_000,
    epochs: Annotated[int | None, typer.Option("--epochs", help=(
        "U-Net only. Most passes of --iterations-per-epoch training steps; early stopping "
        "may end sooner. Default 50, or no limit with --time-budget."))] = None,
    time_budget: Annotated[float | None, typer.Option("--time-budget", help=(
        "U-Net only. Train for this many minutes (the model records what ran); the "
        "learning-rate schedule decays over the budget, and without --patience there is no "
        "early stop (the best validation epoch is kept)."))] = None,
    validation: Annotated[float, typer.Option("--validation", help=(
        "U-Net only. Fraction of the labelled pixels held out, with a gap of the network's "
        "halo, to choose the best epoch and stop early (0 to 0.5; 0 = none, the last epoch "
        "is kept)."))] = 0.1,
    patience: Annotated[int | None, typer.Option("--patience", help=(
        "U-Net only. Epochs without a better validation Dice before stopping. Default 10, "
        "or none with --time-budget."))] = None,
    loss: Annotated[str, typer.Option("--loss", help=(
        "U-Net only. dice_ce (Dice + cross-entropy, robust for unbalanced classes), ce, "
        "dice or focal."))] = "dice_ce",
    class_weights: Annotated[str | None, typer.Option("--class-weights", help=(
        "U-Net only. 'balanced' weighs each class by its inverse frequency among the "
        "labelled pixels (thin structures under 1 % of the pixels)."))] = None,
    augment: Annotated[str, typer.Option("--augment", help=(
        "U-Net only. Training augmentation: none, light (flips, 90° turns, brightness, contrast), "
        "default (also rotation, zoom, elastic, contrast, gamma, blur) or physics (also "
        "Poisson counting noise, gamma spots, rings and stripes)."))] = "default",
    data_counts: Annotated[float | None, typer.Option("--data-counts", help=(
        "U-Net only, with --augment physics. The training images are transmission (open beam "
        "= 1, as niseg normalize writes) measured with this many open-beam counts per "
        "pixel: the Poisson augmentation then imitates real lower-count measurements, "
        "from 20 to this many counts, instead of noise relative to each patch."))] = None,
    device: Annotated[str, typer.Option("--device", help=(
        "U-Net only. cpu, cuda (a GPU) or auto (cuda when PyTorch sees one)."))] = "auto",
    init: Annotated[str | None, typer.Option("--init", help=(
        "U-Net only. Fine-tune a U-Net model file (.niseg) with the same classes and "
        "channels instead of starting from random weights; a 2-D model can start a 3-D "
        "one."))] = None,
    freeze_encoder_epochs: Annotated[int, typer.Option("--freeze-encoder-epochs", help=(
        "U-Net only. With --init: first epochs that train the decoder only."))] = 0,
    patch: Annotated[int | None, typer.Option("--patch", help=(
        "U-Net only. Patch side in pixels, a multiple of 2^depth (default: from the "
        "self-configuration rules)."))] = None,
    depth: Annotated[int | None, typer.Option("--depth", help=(
        "U-Net only. Poolings (default: from the patch size)."))] = None,
    base_channels: Annotated[int | None, typer.Option("--base-channels", help=(
        "U-Net only. Channels of the first level, doubled per level (default: 16 on a CPU, "
        "32 on a GPU)."))] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help=(
        "U-Net only. Patches per training step (default: what the memory allows, 2 to "
        "4 on a CPU, up to 16 on a GPU)."))] = None,
    learning_rate: Annotated[float, typer.Option("--learning-rate", help=(
        "U-Net only. AdamW learning rate, decayed by a cosine schedule."))] = 1e-3,
    iterations_per_epoch: Annotated[int | None, typer.Option("--iterations-per-epoch", help=(
        "U-Net only. Training steps per epoch (default: enough patches to cover the "
        "training images twice, 10 to 250)."))] = None,
    two_d: Annotated[
        bool,
        typer.Option("--2d", help=(
            "Treat every slice of a volume or stack as a separate 2-D training image (2-D "
            "features, or a 2-D U-Net); the model then predicts stacks slice by slice. "
            "Default: a 3-D array is a volume (3-D features, a 3-D U-Net).")),
    ] = False,
    report: Annotated[
        str | None,
        typer.Option("--report", help=(
            "Also write an HTML report: labels over the image, labelled pixels per class, "
            "the prediction of the training image with its uncertainty, and for a classifier "
            "feature importances, selection and stages, for a U-Net the training curves, "
            "validation block and configuration rules.")),
    ] = None,
    stats_out: Annotated[
        str | None,
        typer.Option("--stats-out", help=(
            "Also write JSON: classes, labelled pixels, settings and training time; for a "
            "classifier samples per class and top feature importances, for a U-Net "
            "iterations, best epoch, best validation Dice, why it stopped and the "
            "configuration.")),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help=(
            "Seed of the pixel sampling and the classifier, or of the U-Net's initial "
            "weights, patches, augmentation and validation split."))
    ] = 0,
    jobs: Annotated[
        int | None, typer.Option("--jobs", help=(
            "Threads to use (default: all CPUs; for a U-Net, PyTorch's setting)."))
    ] = None,
    axes: AxesOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a pixel classifier on filter features, or a U-Net, from brush strokes or a mask.

    Draw a few strokes per class (napari: a Labels layer saved as TIFF; ilastik: exported
    labels or the .ilp project), train, then apply the model with 'niseg predict'. The model
    file records the features or network, classes and training provenance. A U-Net
    (--method unet) needs more labels and time than a classifier but learns its own filters;
    a dense --mask is its usual training target.
    """
    from niseg.io import read_image, read_labels, write_json
    from niseg.models import file_sha256, save_model

    pairs, val_pairs = _parse_pairs(image, list(ctx.args))
    if (labels is None) == (mask is None):
        raise ValueError("give either --labels (sparse, 0 = unlabeled) or --mask (dense "
                         "binary), exactly one of them")
    is_unet = method == _UNET
    _check_family(ctx, is_unet, method, bool(val_pairs))
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be a positive whole number, got {jobs}")
    target_kind = "labels" if labels is not None else "mask"
    if is_unet:
        from ._train_unet import check_patch, make_unet

        if val_pairs and _given(ctx, "validation"):
            raise ValueError("give --validation FRACTION or --validation-pair IMAGE LABELS, "
                             "not both")
        options = {
            "epochs": epochs, "time_budget": time_budget, "validation": validation,
            "patience": patience, "loss": loss, "class_weights": class_weights,
            "augment": augment, "data_counts": data_counts, "device": device, "init": init,
            "freeze_encoder_epochs": freeze_encoder_epochs, "patch": patch, "depth": depth,
            "base_channels": base_channels, "batch_size": batch_size,
            "learning_rate": learning_rate, "iterations_per_epoch": iterations_per_epoch,
            "jobs": jobs}
        model = make_unet(options, two_d=two_d, seed=seed)
    else:
        model = None
        feature_arg = check_classifier_options(
            trees, stages, max_samples, features,
            context_method if _given(ctx, "context_method") else None)
    sources = [(image, labels if labels is not None else mask), *pairs]
    inputs = [p for pair in sources + val_pairs for p in pair] + ([init] if init else [])
    check_outputs(inputs, [out, report, stats_out], overwrite=overwrite)

    with _report_warnings(quiet):
        with _progress(quiet, "reading") as update:
            data, val_data = [], []
            everything = [*sources, *val_pairs]
            for k, (image_path, target_path) in enumerate(everything):
                update(k, len(everything), f"reading {Path(image_path).name}")
                read = _read_pair(image_path, target_path, axes, two_d, target_kind,
                                  read_image, read_labels)
                (data if k < len(sources) else val_data).append(read)
        _check_consistent(data + val_data)
        first = data[0]
        images = [im for d in data for im in d["images"]]
        targets = [t for d in data for t in d["targets"]]
        if is_unet:
            from ._train_unet import fit_unet, unet_stats

            check_patch(data, patch)
            if first["channels"]:
                model.channel_axis = -1  # known only now that the image has been read
            given = None if not val_data else (
                [im for d in val_data for im in d["images"]],
                [t for d in val_data for t in d["targets"]])
            seconds = fit_unet(model, images, targets, target_kind=target_kind,
                               validation=given, quiet=quiet)
            stats = unet_stats(model, data, sources, target_kind=target_kind, out=out,
                               seconds=seconds, two_d=two_d, seed=seed)
            if val_pairs:
                stats["validation_inputs"] = [{"image": i, target_kind: t} for i, t in val_pairs]
        else:
            spacing = spacing_of(first["metadata"], first["spatial"])
            model = make_classifier(feature_arg, method=method, trees=trees, stages=stages,
                                context_method=context_method,
                                select_features=select_features, max_samples=max_samples,
                                jobs=jobs, spacing=spacing, channels=first["channels"],
                                seed=seed)
            with _progress(quiet, "training") as update:
                update(0, 1, f"computing features and fitting ({method})")
                start = time.perf_counter()
                if target_kind == "labels":
                    model.fit(images, targets)
                else:
                    model.fit(images, masks=targets)
                seconds = time.perf_counter() - start
                update(1, 1)
            stats = classifier_stats(model, data, sources, target_kind=target_kind, out=out,
                           seconds=seconds, two_d=two_d, spacing=spacing, seed=seed)
        sections = None
        if report is not None:
            with _progress(quiet, "report") as update:
                update(0, 1, "predicting the training image for the report")
                if is_unet:
                    from ._train_unet import unet_report_sections

                    sections = unet_report_sections(model, first, stats)
                else:
                    sections = classifier_report_sections(model, first, stats)
                update(1, 1)
        provenance = {
            "training_inputs": [
                {"image": i, target_kind: t, "sha256": _hash(i, file_sha256),
                 f"{target_kind}_sha256": _hash(t, file_sha256)} for i, t in sources],
            "two_d": two_d,
            "seed": seed,
            "training_seconds": round(seconds, 3),
        }
        if is_unet:
            provenance["labelled_pixels"] = stats["labelled_pixels"]
            if val_pairs:
                provenance["validation_inputs"] = stats["validation_inputs"]
        else:
            provenance["samples_per_class"] = stats["samples_per_class"]
        written = save_model(model, out, provenance=provenance, overwrite=overwrite)
        stats["model"] = str(written)
        if stats_out is not None:
            write_json(stats_out, stats, overwrite=overwrite)
        if sections is not None:
            from niseg.report import write_html_report

            kind = "U-Net" if is_unet else "Pixel classifier"
            write_html_report(report, title=f"{kind} {Path(out).name}", sections=sections,
                              overwrite=overwrite)
    if not quiet:
        typer.echo(f"wrote {written} ({_summary(stats, seconds)})")


def _summary(stats: dict[str, Any], seconds: float) -> str:
    if stats["method"] == _UNET:
        config = stats["config"]
        dice = stats["best_val_dice"]
        return (f"{stats['spatial_dims']}-D U-Net, depth {config['depth']}, patch "
                f"{tuple(config['patch_size'])}, {stats['epochs_run']} epochs, "
                f"{stats['iterations']} iterations, best epoch {stats['best_epoch']}"
                + (f", val Dice {dice:.3f}" if dice is not None else "")
                + f", stopped by {stats['stopped_because'].replace('_', ' ')}, {seconds:.1f} s")
    counts = ", ".join(f"{k}: {v}" for k, v in stats["samples_per_class"].items())
    return (f"{stats['method']}, {stats['n_features']} features, samples per class {counts}, "
            f"{seconds:.1f} s")


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user typed the option (rather than it keeping its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _check_family(ctx: typer.Context, is_unet: bool, method: str, val_pairs: bool) -> None:
    """Refuse options of the other family of models, naming the first one given."""
    if is_unet:
        wrong = [flag for name, flag in _CLASSIFIER_ONLY.items() if _given(ctx, name)]
        if wrong:
            raise ValueError(f"{wrong[0]} is an option of the pixel classifier; it does not "
                             "apply to --method unet")
        return
    from niseg.classify import METHODS

    if method not in METHODS:
        raise ValueError(f"--method must be one of {', '.join(METHODS)} or {_UNET}, got "
                         f"{method!r}")
    wrong = [flag for name, flag in _UNET_ONLY.items() if _given(ctx, name)]
    if val_pairs:
        wrong.append("--validation-pair")
    if wrong:
        raise ValueError(f"{wrong[0]} is a {_DEEP}; it does not apply to --method {method}")


def _parse_pairs(image: str, args: list[str]) -> tuple[list[tuple[str, str]],
                                                      list[tuple[str, str]]]:
    """``--pair IMAGE LABELS`` and ``--validation-pair IMAGE LABELS`` from the extra args."""
    if image.startswith(("--pair", "--validation-pair")):
        raise ValueError("give the training IMAGE before any --pair IMAGE LABELS")
    if image.startswith("-"):
        raise ValueError(f"no such option: {image} (see 'niseg train --help')")
    found: dict[str, list[tuple[str, str]]] = {"--pair": [], "--validation-pair": []}
    i = 0
    while i < len(args):
        token = args[i]
        name = token.split("=", 1)[0]
        if name in found:
            if token == name:
                values, i = args[i + 1 : i + 3], i + 3
            else:
                values, i = [token[len(name) + 1:], *args[i + 1 : i + 2]], i + 2
            if len(values) != 2 or any(not v or v.startswith("-") for v in values):
                raise ValueError(f"{name} needs two values: {name} IMAGE LABELS")
            found[name].append((values[0], values[1]))
        elif token.startswith("-"):
            raise ValueError(f"no such option: {token} (see 'niseg train --help')")
        else:
            raise ValueError(f"unexpected argument '{token}'; more training images go in "
                             "--pair IMAGE LABELS")
    return found["--pair"], found["--validation-pair"]


def _read_pair(image_path: str, target_path: str, axes: str | None, two_d: bool,
               target_kind: str, read_image: Any, read_labels: Any) -> dict[str, Any]:
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
    if target_kind == "mask":
        _check_binary(target, target_path)
    if two_d and len(spatial) == 3:
        images = list(array)
        targets = list(target)
    else:
        images, targets = [array], [target]
    return {"path": image_path, "target": target_path, "images": images, "targets": targets,
            "metadata": metadata, "channels": channels, "shape": shape,
            "spatial": 2 if two_d else len(spatial), "display": (array, target)}


def _check_binary(mask: np.ndarray, path: str) -> None:
    values = np.unique(mask)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        shown = ", ".join(str(v) for v in values[:6].tolist()) + (
            ", ..." if values.size > 6 else "")
        raise ValueError(f"--mask '{path}' holds the values {shown} but a mask must be binary "
                         "(0 and one other value); pass classes 1..K with --labels")


def _check_consistent(data: list[dict[str, Any]]) -> None:
    first = data[0]
    for d in data[1:]:
        if d["spatial"] != first["spatial"]:
            raise ValueError(f"'{d['path']}' is {d['spatial']}-D but '{first['path']}' is "
                             f"{first['spatial']}-D; train on images of one kind (or pass --2d)")
        if d["channels"] != first["channels"]:
            raise ValueError(f"'{d['path']}' has {max(d['channels'], 1)} channels but "
                             f"'{first['path']}' has {max(first['channels'], 1)}")


def _hash(path: str, file_sha256: Any) -> str | None:
    file_part = Path(path.split("::")[0])
    return file_sha256(file_part) if file_part.is_file() else None
