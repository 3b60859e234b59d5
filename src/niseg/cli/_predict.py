"""`niseg predict`: apply a trained model file to an image, tile by tile."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._app import AxesOpt, OverwriteOpt, QuietOpt, _progress, _report_warnings, app, check_outputs

_KEPT_METADATA = ("pixel_size", "unit", "slice_pixel_size", "source")


@app.command("predict")
def predict_command(
    model: Annotated[str, typer.Argument(help=(
        "Model file (.niseg) written by 'niseg train', 'niseg demo' or save_model().")),
    ],
    image: Annotated[str, typer.Argument(help=(
        "Image, volume or stack (file, folder or glob of slices). A 2-D model predicts a "
        "volume or stack slice by slice."))],
    out: Annotated[str, typer.Option("--out", "-o", help=(
        "Label image: the model's class values (uint8 0/1 for a model trained from a mask)."))],
    proba_out: Annotated[
        str | None,
        typer.Option("--proba-out", help=(
            "Also write the class probabilities: float32, classes on the last axis in the "
            "order of the class values.")),
    ] = None,
    uncertainty_out: Annotated[
        str | None,
        typer.Option("--uncertainty-out", help=(
            "Also write the uncertainty 1 - (p1 - p2) from the two likeliest classes: "
            "float32, 0 = certain, 1 = a tie.")),
    ] = None,
    tile: Annotated[
        int | None,
        typer.Option("--tile", help=(
            "Tile side in pixels (memory bound); the result does not depend on it. Default: "
            "about 4 million pixels per tile. For a U-Net it is rounded up, with a warning, to "
            "a multiple of the network's window step so that tiles match the whole image.")),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help=(
            "U-Net models only: cpu, cuda (a GPU) or auto (cuda when PyTorch sees one; the "
            "default, whatever device the model was trained on).")),
    ] = None,
    mirror: Annotated[
        bool,
        typer.Option("--mirror", help=(
            "U-Net models only: average the predictions of all flips of the image (test-time "
            "augmentation; 4 times slower in 2-D, 8 in 3-D, usually a little more accurate).")),
    ] = False,
    min_size: Annotated[
        int,
        typer.Option("--min-size", help=(
            "Post-processing: objects smaller than this many pixels take the class around "
            "them (0 = keep all). Post-processing changes the labels, not --proba-out.")),
    ] = 0,
    keep_largest: Annotated[
        bool,
        typer.Option("--keep-largest", help=(
            "Post-processing: keep only the largest connected object of each class.")),
    ] = False,
    fill_holes: Annotated[
        bool,
        typer.Option("--fill-holes", help="Post-processing: fill holes in each class's objects."),
    ] = False,
    stats_out: Annotated[
        str | None,
        typer.Option("--stats-out", help=(
            "Also write JSON: model, classes, pixels, fraction and area per class, time.")),
    ] = None,
    axes: AxesOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Segment an image with a trained model (pixel classifier, U-Net, threshold model, ...).

    The image is predicted in tiles with enough margin that the result equals an untiled
    prediction. Colour images give the model their channels; a model trained on 2-D images
    predicts each slice of a volume or stack (and post-processes it slice by slice). A U-Net
    runs on the GPU when PyTorch sees one, otherwise on the CPU, wherever it was trained.
    """
    from niseg.io import read_image, write_image, write_json
    from niseg.models import load_model, margin_uncertainty, read_model_info
    from niseg.tiling import predict_tiled

    if tile is not None and tile < 1:
        raise ValueError(f"--tile must be a positive number of pixels, got {tile}")
    if min_size < 0:
        raise ValueError(f"--min-size must be 0 (keep all) or a positive number of pixels, "
                         f"got {min_size}")
    check_outputs([model, image], [out, proba_out, uncertainty_out, stats_out],
                  overwrite=overwrite)
    start = time.perf_counter()
    with _report_warnings(quiet):
        if not Path(model).is_file():
            raise ValueError(f"model file '{model}' does not exist")
        info = read_model_info(model)
        if info["kind"] != "unet":
            for flag, given in (("--device", device is not None), ("--mirror", mirror)):
                if given:
                    raise ValueError(f"{flag} applies to U-Net models only; '{model}' is a "
                                     f"{info['kind']} model")
        segmenter = load_model(model)
        if info["kind"] == "unet":
            _set_unet_device(segmenter, device or "auto", mirror)
        array, letters, metadata = read_for_model(image, axes, read_image)
        array = check_image_fits(array, letters, segmenter, image, model)
        letters = letters if array.ndim == len(letters) else letters.replace("c", "")
        tiles = _tile_size(tile, segmenter)
        want_proba = proba_out is not None or uncertainty_out is not None
        with _progress(quiet, "predicting") as update:
            result = predict_tiled(segmenter, array, tile=tiles,
                                   output="both" if want_proba else "labels",
                                   progress=lambda done, total: update(done, total))
        labels, proba = result if want_proba else (result, None)
        cleaning = {"min_size": min_size, "keep_largest": keep_largest, "fill_holes": fill_holes}
        if min_size or keep_largest or fill_holes:
            labels = _postprocess(labels, int(segmenter.spatial_dims), cleaning)
        uncertainty = None if proba is None or uncertainty_out is None else (
            margin_uncertainty(proba))
        classes = np.asarray(segmenter.classes_)
        names = class_names(segmenter)
        spatial = letters.replace("c", "")
        meta = {k: metadata[k] for k in _KEPT_METADATA if k in metadata}
        written = {"out": str(write_image(out, labels, {**meta, "axes": spatial,
                                                        "classes": names},
                                          overwrite=overwrite))}
        if proba_out is not None:
            assert proba is not None
            written["proba_out"] = str(write_image(
                proba_out, proba, {**meta, "axes": spatial + "c", "classes": names},
                overwrite=overwrite))
        if uncertainty is not None:
            written["uncertainty_out"] = str(write_image(
                uncertainty_out, uncertainty, {**meta, "axes": spatial}, overwrite=overwrite))
        stats: dict[str, Any] = {
            "model": model,
            "model_kind": info["kind"],
            "input": image,
            "outputs": written,
            "classes": classes.tolist(),
            "class_names": names,
            "tile": None if tiles is None else list(tiles),
            "device": getattr(segmenter, "device", None) if info["kind"] == "unet" else None,
            "mirror": mirror,
            "postprocess": cleaning,
            "slice_wise": labels.ndim > int(segmenter.spatial_dims),
            "class_stats": class_stats(labels, classes, names, metadata, spatial),
            "seconds": round(time.perf_counter() - start, 3),
        }
        if uncertainty is not None:
            stats["mean_uncertainty"] = float(uncertainty.mean(dtype=np.float64))
        if stats_out is not None:
            write_json(stats_out, stats, overwrite=overwrite)
    if not quiet:
        parts = ", ".join(f"{e['name']} {100 * e['fraction']:.1f} %"
                          for e in stats["class_stats"])
        typer.echo(f"wrote {written['out']} ({parts})")


def _set_unet_device(segmenter: Any, device: str, mirror: bool) -> None:
    """Predict where asked ("auto": a GPU if PyTorch sees one), not where it was trained."""
    from ._train_unet import check_device

    check_device(device)
    segmenter.device = device
    if mirror:
        segmenter.mirror = True


def _tile_size(tile: int | None, segmenter: Any) -> tuple[int, ...] | None:
    """The user's tile, rounded up to the segmenter's ``tile_multiple`` (with a warning)."""
    if tile is None:
        return None
    dims = int(segmenter.spatial_dims)
    multiple = getattr(segmenter, "tile_multiple", None)
    if multiple is None:
        return (int(tile),) * dims
    steps = [int(m) for m in np.broadcast_to(np.atleast_1d(multiple), (dims,))]
    rounded = tuple(-(-int(tile) // m) * m for m in steps)
    if any(r != tile for r in rounded):
        warnings.warn(f"--tile {tile} is not a multiple of the U-Net's window step "
                      f"{' x '.join(map(str, steps))}; using tiles of "
                      f"{' x '.join(map(str, rounded))} so that they match the whole-image "
                      "prediction", stacklevel=2)
    return rounded


def _postprocess(labels: np.ndarray, dims: int, cleaning: dict[str, Any]) -> np.ndarray:
    """niseg.objects.postprocess, per slice where a 2-D model predicted a stack."""
    from niseg.objects import postprocess

    if labels.ndim == dims:
        return postprocess(labels, **cleaning)
    flat = labels.reshape(-1, *labels.shape[labels.ndim - dims:])
    cleaned = np.stack([postprocess(plane, **cleaning) for plane in flat])
    return cleaned.reshape(labels.shape).astype(labels.dtype, copy=False)


def read_for_model(path: str, axes: str | None, read_image: Any) -> tuple[np.ndarray, str, dict]:
    """Read an image with its channel axis (if any) moved last; returns the axes letters too."""
    array, meta = read_image(path, axes=axes)
    array = np.asarray(array)
    letters = str(meta.get("axes") or "")
    if len(letters) != array.ndim:
        raise ValueError(f"'{path}' has shape {array.shape} but its axes are '{letters}'; "
                         "pass --axes")
    if "c" in letters:
        array = np.moveaxis(array, letters.index("c"), -1)
        letters = letters.replace("c", "") + "c"
    if array.dtype.kind not in "biuf":
        raise ValueError(f"'{path}' holds {array.dtype} values; a model needs real numbers")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"'{path}' contains NaN or infinite values; replace them first "
                         "(e.g. with the neighbouring values)")
    return array, letters, meta


def check_image_fits(array: np.ndarray, letters: str, segmenter: Any, image: str,
                     model: str) -> np.ndarray:
    """Refuse, in one sentence, an image the model cannot predict; drop a lone channel."""
    dims = int(segmenter.spatial_dims)
    n_channels = int(getattr(segmenter, "n_channels_", 1))
    has_c = letters.endswith("c")
    got = array.shape[-1] if has_c else 1
    if got != n_channels:
        raise ValueError(f"'{image}' has {got} channel{'s' if got != 1 else ''} but the model "
                         f"'{model}' was trained on {n_channels}")
    if has_c and n_channels == 1:
        array = array[..., 0]
    spatial = letters.replace("c", "")
    if len(spatial) < dims:
        raise ValueError(f"'{image}' is {len(spatial)}-D ({spatial}) but the model '{model}' "
                         f"is {dims}-D; it needs a volume (zyx)")
    if any(a not in "zyx" for a in spatial[-dims:]):
        raise ValueError(f"'{image}' has axes '{spatial}' but the model predicts its last "
                         f"{dims} axes as space (y, x{', z' if dims == 3 else ''}); pass --axes, "
                         "e.g. --axes zyx")
    return array


def class_names(segmenter: Any) -> list[str]:
    """Names of the model's classes, in the order of its class values."""
    given = getattr(segmenter, "class_names_", None)
    classes = np.asarray(segmenter.classes_).tolist()
    if given is not None and len(given) == len(classes):
        return [str(n) for n in given]
    if classes == [0, 1]:
        return ["background", "foreground"]
    return [f"class {v}" for v in classes]


def class_stats(labels: np.ndarray, classes: np.ndarray, names: list[str], metadata: dict,
                spatial: str) -> list[dict[str, Any]]:
    """Pixels, fraction and (with a known pixel size) area or volume of each class."""
    counts = {int(v): int(c) for v, c in zip(*np.unique(labels, return_counts=True))}
    sizes = metadata.get("pixel_size")
    unit = metadata.get("unit")
    letters = [a for a in spatial if a in "zyx"]
    pixel = float(np.prod(sizes)) if sizes and len(sizes) == len(letters) else None
    key = "volume" if len(letters) == 3 else "area"
    out = []
    for value, name in zip(classes.tolist(), names):
        count = counts.get(int(value), 0)
        entry: dict[str, Any] = {"value": value, "name": name, "pixels": count,
                                 "fraction": count / max(labels.size, 1)}
        if pixel is not None:
            entry[key] = count * pixel
            entry[f"{key}_unit"] = f"{unit}^{len(letters)}" if unit else f"pixel^{len(letters)}"
        out.append(entry)
    return out
