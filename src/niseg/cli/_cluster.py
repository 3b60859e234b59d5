"""`niseg cluster`: k-means or Gaussian-mixture clustering of pixel feature vectors."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import typer

from ._app import AxesOpt, OverwriteOpt, QuietOpt, _progress, _report_warnings, app, check_outputs

_KEPT_METADATA = ("axes", "pixel_size", "unit", "slice_pixel_size", "source")


@app.command("cluster")
def cluster_command(
    images: Annotated[
        list[str],
        typer.Argument(help=(
            "One image, or several co-registered images of one shape (e.g. a neutron and an "
            "X-ray radiograph of the same sample); the channels of a colour image count as "
            "images.")),
    ],
    out: Annotated[
        str,
        typer.Option("--out", "-o", help="Cluster labels (uint8): 1..K, 0 outside --valid-mask."),
    ],
    classes: Annotated[
        str,
        typer.Option("--classes", help=(
            "Number of clusters K (2-255), or 'auto': K in 2..--max-classes with the best "
            "mean silhouette (k-means, on a seeded subset of 2000 pixels) or the lowest BIC "
            "(gmm).")),
    ] = "auto",
    model: Annotated[
        str,
        typer.Option("--model", help="kmeans, or gmm (Gaussian mixture, full covariances)."),
    ] = "kmeans",
    features: Annotated[
        str,
        typer.Option("--features", help=(
            "Comma-separated per-image features: intensity, gaussian, gradient (magnitude), "
            "dog (difference of Gaussians), laplacian; each filter at every --sigmas.")),
    ] = "intensity",
    sigmas: Annotated[
        str,
        typer.Option("--sigmas", help="Comma-separated filter scales in pixels, e.g. 1,2,4."),
    ] = "1",
    position_weight: Annotated[
        float,
        typer.Option("--position-weight", help=(
            "Weight of the pixel coordinates (0 = not used; 1 = as much as one intensity; "
            "larger gives compact clusters).")),
    ] = 0.0,
    valid_mask: Annotated[
        str | None,
        typer.Option("--valid-mask", help=(
            "Image of the region to cluster (non-zero = valid); padding or empty corners "
            "outside it get label 0 and do not influence the clusters.")),
    ] = None,
    max_classes: Annotated[
        int, typer.Option("--max-classes", help="Largest K tried by --classes auto.")
    ] = 8,
    figure: Annotated[
        str | None,
        typer.Option("--figure", help=(
            "Also draw the image, the cluster map and the clusters in feature space with "
            "their centres (PNG, PDF or SVG; the middle slice of a volume).")),
    ] = None,
    stats_out: Annotated[
        str | None,
        typer.Option("--stats-out", help=(
            "Also write JSON: parameters, chosen K and criterion scores, centres in the "
            "features' units, per-cluster pixel count, fraction and area.")),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the pixel subset and the model's start.")
    ] = 0,
    axes: AxesOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Cluster pixels into K classes by k-means or a Gaussian mixture on feature vectors.

    Every pixel becomes a vector of features (intensities of all input images, optional
    filter responses and position), each standardized so that no feature dominates by its
    units. The model is fitted on at most 200000 valid pixels (a seeded subset) and assigns
    them all. Clusters are numbered by increasing mean of the first feature (the first
    image's intensity by default), so reruns and series are comparable.
    """
    from niseg.cluster import cluster_pixels
    from niseg.features import pixel_features
    from niseg.io import read_image, write_image, write_json

    targets = [out] + [p for p in (figure, stats_out) if p is not None]
    check_outputs([*images, valid_mask], targets, overwrite=overwrite)
    k: int | str = _parse_classes(classes)
    filter_names = _split(features, "--features")
    sigma_values = _parse_sigmas(sigmas)

    with _report_warnings(quiet):
        arrays, names, metadata = _read_inputs(images, axes, read_image)
        mask = None
        if valid_mask is not None:
            mask_array, _ = read_image(valid_mask)
            mask = np.asarray(mask_array)
            if mask.shape != arrays[0].shape:
                raise ValueError(f"--valid-mask '{valid_mask}' has shape {mask.shape} but the "
                                 f"image has shape {arrays[0].shape}")
        spacing = _spacing(metadata, arrays[0].ndim)
        with _progress(quiet, "clustering") as update:
            labels, info = cluster_pixels(
                arrays, classes=k, model=model, features=filter_names, sigmas=sigma_values,
                position_weight=position_weight, spacing=spacing, valid_mask=mask,
                max_classes=max_classes, seed=seed)
            update(1, 1)
        out_meta = {key: metadata[key] for key in _KEPT_METADATA if key in metadata}
        out_meta["classes"] = info["class_names"]
        written = write_image(out, labels, out_meta, overwrite=overwrite)
        stats = _stats(info, metadata, labels, inputs=names, out=str(written),
                       features=filter_names, sigmas=sigma_values, valid_mask=valid_mask)
        if stats_out is not None:
            write_json(stats_out, stats, overwrite=overwrite)
        if figure is not None:
            from niseg.report import cluster_figure, save_figure

            valid = labels > 0
            # Same features as the clustering (NaN and masked pixels take the valid mean).
            fill = [np.where(valid, a, a[valid].mean(dtype=np.float64)).astype(np.float32)
                    for a in arrays]
            middle = (arrays[0].shape[0] // 2,) if arrays[0].ndim == 3 else ()
            feats, _ = pixel_features(fill, filters=filter_names, sigmas=sigma_values,
                                      position=position_weight > 0, spacing=spacing)
            feats = feats[middle]
            fill = [a[middle] for a in fill]
            fig = cluster_figure(
                fill[0], labels[middle], features=feats, feature_names=info["feature_names"],
                centres=info["centres"], seed=seed,
                title=f"{info['model']}, K = {info['classes']}")
            save_figure(fig, figure, overwrite=overwrite)
    if not quiet:
        chosen = ""
        if info["criterion"] is not None:
            chosen = f" (chosen by {info['criterion']}"
            chosen += ", highest)" if info["criterion"] == "silhouette" else ", lowest)"
        sizes = ", ".join(f"{100 * f:.1f} %" for f in info["fractions"])
        typer.echo(f"wrote {written}: {info['classes']} clusters{chosen}, {sizes}")


def _parse_classes(text: str) -> int | str:
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"--classes must be a whole number or 'auto', got {text!r}") from None


def _split(text: str, option: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"{option} is empty; give a comma-separated list")
    return parts


def _parse_sigmas(text: str) -> list[float]:
    try:
        return [float(p) for p in _split(text, "--sigmas")]
    except ValueError:
        raise ValueError(f"--sigmas must be comma-separated numbers, got {text!r}") from None


def _read_inputs(paths: list[str], axes: str | None,
                 read_image: Any) -> tuple[list[np.ndarray], list[str], dict]:
    arrays: list[np.ndarray] = []
    names: list[str] = []
    first_meta: dict = {}
    for path in paths:
        array, meta = read_image(path, axes=axes)
        array = np.asarray(array)
        letters = str(meta.get("axes") or "")
        if "c" in letters and len(letters) == array.ndim:
            # A colour image: each channel is one co-registered image.
            channels = np.moveaxis(array, letters.index("c"), 0)
            arrays.extend(channels)
            names.extend(f"{path}[channel {i}]" for i in range(channels.shape[0]))
            meta = {**meta, "axes": letters.replace("c", "")}
        else:
            arrays.append(array)
            names.append(path)
        if not first_meta:
            first_meta = meta
        if array.ndim == 3 and "c" not in letters and meta.get("axes_guessed"):
            raise ValueError(f"'{path}' is 3D with shape {array.shape} and its axes are not "
                             "recorded; pass --axes, e.g. zyx for a volume")
    shape = arrays[0].shape
    for path, a in zip(names, arrays):
        if a.shape != shape:
            raise ValueError(f"'{path}' has shape {a.shape} but '{names[0]}' has shape "
                             f"{shape}; the images must be co-registered")
    return arrays, names, first_meta


def _spacing(metadata: dict, ndim: int) -> tuple[float, ...] | None:
    sizes = metadata.get("pixel_size")
    if sizes is not None and len(sizes) == ndim:
        return tuple(float(s) for s in sizes)
    return None




def _stats(info: dict, metadata: dict, labels: np.ndarray, *, inputs: list[str], out: str,
           features: list[str], sigmas: list[float], valid_mask: str | None) -> dict:
    sizes = metadata.get("pixel_size")
    unit = metadata.get("unit")
    pixel_area = (float(np.prod(sizes)) if sizes is not None and len(sizes) == labels.ndim
                  else None)
    area_key = "volume" if labels.ndim == 3 else "area"
    per_class = []
    for i, name in enumerate(info["class_names"]):
        entry: dict[str, Any] = {
            "label": i + 1,
            "name": name,
            "pixel_count": info["pixel_counts"][i],
            "fraction": info["fractions"][i],
            "centre": dict(zip(info["feature_names"], info["centres"][i])),
        }
        if pixel_area is not None:
            entry[area_key] = info["pixel_counts"][i] * pixel_area
            if unit:
                entry[f"{area_key}_unit"] = f"{unit}^{labels.ndim}"
        per_class.append(entry)
    return {
        "inputs": inputs,
        "output": out,
        "model": info["model"],
        "classes": info["classes"],
        "criterion": info["criterion"],
        "scores": {str(k): v for k, v in info["scores"].items()},
        "features": features,
        "sigmas": sigmas,
        "feature_names": info["feature_names"],
        "position_weight": info["position_weight"],
        "valid_mask": valid_mask,
        "valid_pixels": info["valid_pixels"],
        "fit_samples": info["fit_samples"],
        "seed": info["seed"],
        "per_class": per_class,
    }
