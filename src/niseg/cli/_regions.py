"""`niseg superpixels`, `niseg quadtree`, `niseg mrf`: region-based segmentation."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import typer

from ._app import AxesOpt, OverwriteOpt, QuietOpt, _progress, _report_warnings, app, check_outputs

ImageArg = Annotated[
    str, typer.Argument(help="Grayscale image or volume (file, folder or glob of slices).")
]
StatsOpt = Annotated[
    str | None,
    typer.Option("--stats-out", help="Also write JSON: parameters used and per-class counts, "
                                     "fractions and areas (physical units when known)."),
]
FigureOpt = Annotated[
    str | None,
    typer.Option("--figure", help="Also write a PNG/PDF/SVG figure (boundaries over the image; "
                                  "the middle slice of a volume)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random steps (k-means).")]




def _read(image: str, axes: str | None, *, allow_3d: bool) -> tuple[np.ndarray, dict]:
    from niseg.io import read_image

    array, metadata = read_image(image, axes=axes)
    array = np.asarray(array)
    letters = str(metadata.get("axes") or "")
    if "c" in letters or "l" in letters:
        raise ValueError(f"'{image}' has axes {letters}; this command takes one grayscale image "
                         f"(yx) or volume (zyx), so pick one channel or bin first")
    if array.ndim == 3 and not allow_3d:
        raise ValueError(f"'{image}' has shape {array.shape}; this command takes a 2D (yx) image")
    if array.ndim not in (2, 3):
        raise ValueError(f"'{image}' has shape {array.shape}; expected a 2D image or 3D volume")
    return array, metadata


def _label_metadata(metadata: dict, classes: list[str] | None) -> dict:
    meta = {k: v for k, v in metadata.items() if k in ("axes", "pixel_size", "unit", "source")}
    if classes is not None:
        meta["classes"] = classes
    return meta


def _per_class(labels: np.ndarray, image: np.ndarray, metadata: dict,
               names: list[str]) -> list[dict[str, Any]]:
    sizes = metadata.get("pixel_size")
    unit = metadata.get("unit")
    pixel_area = (float(np.prod(sizes)) if sizes is not None and len(sizes) == labels.ndim
                  else None)
    key = "volume" if labels.ndim == 3 else "area"
    counts = np.bincount(labels.ravel(), minlength=len(names) + 1)
    sums = np.bincount(labels.ravel(), weights=image.ravel().astype(np.float64),
                       minlength=len(names) + 1)
    total = int(counts[1:].sum())
    out = []
    for k, name in enumerate(names, start=1):
        entry: dict[str, Any] = {
            "label": k,
            "name": name,
            "pixel_count": int(counts[k]),
            "fraction": float(counts[k] / total) if total else 0.0,
            "mean_intensity": float(sums[k] / counts[k]) if counts[k] else None,
        }
        if pixel_area is not None:
            entry[key] = float(counts[k] * pixel_area)
            if unit:
                entry[f"{key}_unit"] = f"{unit}^{labels.ndim}"
        out.append(entry)
    return out


def _middle(*arrays: Any) -> list[Any]:
    return [a if a is None or a.ndim == 2 else a[a.shape[0] // 2] for a in arrays]


def _save_figure(path: str, fig: Any, overwrite: bool) -> None:
    from niseg.report import save_figure

    save_figure(fig, path, overwrite=overwrite)


def _class_names(k: int) -> list[str]:
    return [f"class {i}" for i in range(1, k + 1)]


@app.command("superpixels")
def superpixels_command(
    image: ImageArg,
    out: Annotated[str, typer.Option("--out", "-o", help=(
        "Segmentation: uint8 classes 1..K ordered by increasing mean intensity, 0 where the "
        "image is not finite."))],
    n_segments: Annotated[int, typer.Option("--n-segments", help=(
        "Approximate number of SLIC superpixels."))] = 400,
    compactness: Annotated[float, typer.Option("--compactness", help=(
        "Spatial weight of SLIC against intensity (intensities scaled to [0, 1] between the "
        "1st and 99th percentiles): larger gives squarer superpixels; raise it on noisy "
        "images."))] = 0.1,
    sigma: Annotated[float, typer.Option("--sigma", help=(
        "Gaussian smoothing before SLIC, in pixels (0 = none)."))] = 0.0,
    classes: Annotated[int, typer.Option("--classes", help="Number of classes K (>= 2).")] = 2,
    method: Annotated[str, typer.Option("--method", help=(
        "How superpixel means are classified: otsu (Otsu, multi-Otsu for K > 2) or kmeans "
        "(k-means weighted by superpixel size)."))] = "otsu",
    superpixels_out: Annotated[str | None, typer.Option("--superpixels-out", help=(
        "Also write the superpixel labels (int32, 1..S)."))] = None,
    mean_out: Annotated[str | None, typer.Option("--mean-out", help=(
        "Also write the mean-value image (float32, each superpixel at its mean)."))] = None,
    stats_out: StatsOpt = None,
    figure: FigureOpt = None,
    axes: AxesOpt = None,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """SLIC superpixels and a segmentation of their mean values.

    Superpixels follow edges and average the noise away; their means are then classified
    by Otsu (multi-Otsu) levels or k-means into --classes K classes.
    """
    from niseg.cluster import superpixel_segmentation
    from niseg.io import write_image, write_json

    check_outputs([image], [out, superpixels_out, mean_out, stats_out, figure], overwrite=overwrite)
    with _report_warnings(quiet):
        array, metadata = _read(image, axes, allow_3d=True)
        with _progress(quiet, "superpixels") as update:
            result = superpixel_segmentation(array, classes=classes, method=method,
                                             n_segments=n_segments, compactness=compactness,
                                             sigma=sigma, seed=seed)
            update(1, 1)
        names = _class_names(classes)
        written = write_image(out, result.labels, _label_metadata(metadata, names),
                              overwrite=overwrite)
        if superpixels_out is not None:
            write_image(superpixels_out, result.superpixels, _label_metadata(metadata, None),
                        overwrite=overwrite)
        if mean_out is not None:
            write_image(mean_out, result.mean_image, _label_metadata(metadata, None),
                        overwrite=overwrite)
        n_superpixels = int(np.unique(result.superpixels[result.superpixels > 0]).size)
        if stats_out is not None:
            write_json(stats_out, {
                "input": image, "output": str(written), "method": method,
                "classes": classes, "n_segments": n_segments, "compactness": compactness,
                "sigma": sigma, "seed": seed, "superpixels": n_superpixels,
                "levels": result.levels, "centres": result.centres,
                "per_class": _per_class(result.labels, array, metadata, names),
            }, overwrite=overwrite)
        if figure is not None:
            from niseg.report import region_overlay_figure

            img, sp, mean, cls = _middle(array, result.superpixels, result.mean_image,
                                         result.labels)
            _save_figure(figure, region_overlay_figure(
                img, sp, mean_image=mean, classes=cls, class_names=names,
                title=f"SLIC superpixels, {method} on their means"), overwrite)
    if not quiet:
        typer.echo(f"wrote {written}: {n_superpixels} superpixels in {classes} classes "
                   f"(levels {', '.join(f'{v:.4g}' for v in result.levels)})")


@app.command("quadtree")
def quadtree_command(
    image: ImageArg,
    out: Annotated[str, typer.Option("--out", "-o", help=(
        "Leaf labels: int32, 1..L, every pixel in exactly one rectangular leaf."))],
    threshold: Annotated[float, typer.Option("--threshold", help=(
        "A block whose criterion is at most this (in image units) is a leaf."))],
    criterion: Annotated[str, typer.Option("--criterion", help=(
        "Homogeneity of a block: std (standard deviation) or range (max - min)."))] = "std",
    min_size: Annotated[int, typer.Option("--min-size", help=(
        "Sides of at most this many pixels are not split further."))] = 1,
    mean_out: Annotated[str | None, typer.Option("--mean-out", help=(
        "Also write the mean-value image (float32, each leaf at its mean)."))] = None,
    stats_out: Annotated[str | None, typer.Option("--stats-out", help=(
        "Also write JSON: parameters, number of leaves, depth, leaf sizes."))] = None,
    figure: FigureOpt = None,
    axes: AxesOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Quad-tree split of a 2D image into homogeneous rectangular blocks.

    A block is halved along both axes while its criterion exceeds --threshold and it is
    larger than --min-size; odd sides split into n // 2 and n - n // 2, so any size works.
    """
    from niseg.cluster import quadtree, region_means
    from niseg.io import write_image, write_json

    check_outputs([image], [out, mean_out, stats_out, figure], overwrite=overwrite)
    with _report_warnings(quiet):
        array, metadata = _read(image, axes, allow_3d=False)
        with _progress(quiet, "quad tree") as update:
            tree = quadtree(array, criterion=criterion, threshold=threshold, min_size=min_size)
            update(1, 1)
        written = write_image(out, tree.labels, _label_metadata(metadata, None),
                              overwrite=overwrite)
        mean_image = None
        if mean_out is not None or figure is not None:
            mean_image = region_means(array, tree.labels)[1]
        if mean_out is not None:
            write_image(mean_out, mean_image, _label_metadata(metadata, None),
                        overwrite=overwrite)
        heights = tree.leaves[:, 2] - tree.leaves[:, 0]
        widths = tree.leaves[:, 3] - tree.leaves[:, 1]
        areas = heights * widths
        if stats_out is not None:
            write_json(stats_out, {
                "input": image, "output": str(written), "criterion": criterion,
                "threshold": threshold, "min_size": min_size, "leaves": len(areas),
                "depth": tree.depth, "leaf_pixels": {
                    "min": int(areas.min()), "median": float(np.median(areas)),
                    "max": int(areas.max())},
                "leaves_over_threshold": int(np.count_nonzero(tree.values > threshold)),
            }, overwrite=overwrite)
        if figure is not None:
            from niseg.report import region_overlay_figure

            _save_figure(figure, region_overlay_figure(
                array, tree.labels, mean_image=mean_image,
                title=f"quad tree: {criterion} <= {threshold:g}, min size {min_size}"),
                overwrite)
    if not quiet:
        typer.echo(f"wrote {written}: {len(areas)} leaves, depth {tree.depth}")


@app.command("mrf")
def mrf_command(
    image: ImageArg,
    out: Annotated[str, typer.Option("--out", "-o", help=(
        "Segmentation: uint8 classes 1..K ordered by increasing mean intensity, 0 where the "
        "image is not finite."))],
    classes: Annotated[int, typer.Option("--classes", help="Number of classes K (>= 2).")] = 2,
    beta: Annotated[float, typer.Option("--beta", help=(
        "Potts smoothness: cost of each neighbour with another class, in units of the "
        "Gaussian data term (0 = pixel-wise; about 1 for noisy images)."))] = 1.0,
    init: Annotated[str, typer.Option("--init", help=(
        "Start of the class intensity model, refined by EM: kmeans or otsu "
        "(multi-Otsu)."))] = "kmeans",
    optimizer: Annotated[str, typer.Option("--optimizer", help=(
        "icm (iterated conditional modes, fast, a local minimum) or graphcut (any K: exact "
        "for K = 2, alpha-expansion for more; lower energy; needs PyMaxflow, "
        "pip install 'niseg[graph]')."))] = "icm",
    connectivity: Annotated[int, typer.Option("--connectivity", help=(
        "Neighbours: 1 = 4 in 2D / 6 in 3D; 2 = 8 in 2D; 3 = 26 in 3D."))] = 1,
    max_iter: Annotated[int, typer.Option("--max-iter", help="Most ICM sweeps.")] = 30,
    initial_out: Annotated[str | None, typer.Option("--initial-out", help=(
        "Also write the pixel-wise classes the MRF started from (uint8 1..K)."))] = None,
    stats_out: StatsOpt = None,
    figure: FigureOpt = None,
    axes: AxesOpt = None,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Markov random field segmentation: Gaussian classes with a Potts neighbourhood prior.

    Each class has a prior and a Gaussian intensity model (k-means or multi-Otsu start, EM);
    the labels minimise the data cost plus --beta per disagreeing neighbour pair, by ICM or
    by a graph cut. On noisy images this removes the isolated misclassified pixels that a
    threshold leaves.
    """
    from niseg.cluster import mrf_segmentation
    from niseg.io import write_image, write_json

    check_outputs([image], [out, initial_out, stats_out, figure], overwrite=overwrite)
    with _report_warnings(quiet):
        array, metadata = _read(image, axes, allow_3d=True)
        with _progress(quiet, "Markov random field") as update:
            result = mrf_segmentation(array, classes=classes, beta=beta, init=init,
                                      optimizer=optimizer, connectivity=connectivity,
                                      max_iter=max_iter, seed=seed)
            update(1, 1)
        names = _class_names(classes)
        written = write_image(out, result.labels, _label_metadata(metadata, names),
                              overwrite=overwrite)
        if initial_out is not None:
            write_image(initial_out, result.initial, _label_metadata(metadata, names),
                        overwrite=overwrite)
        changed = int(np.count_nonzero(result.labels != result.initial))
        if stats_out is not None:
            write_json(stats_out, {
                "input": image, "output": str(written), "classes": classes, "beta": beta,
                "init": init, "optimizer": optimizer, "connectivity": connectivity,
                "seed": seed, "iterations": result.iterations, "energy": result.energy,
                "means": result.means, "stds": result.stds, "priors": result.priors,
                "changed_from_initial": changed,
                "per_class": _per_class(result.labels, array, metadata, names),
            }, overwrite=overwrite)
        if figure is not None:
            from niseg.report import panels_figure

            img, first, final = _middle(array, result.initial, result.labels)
            fig = panels_figure(
                [("image", img.astype(np.float32)), ("pixel-wise start", first),
                 (f"MRF, beta {beta:g}", final)],
                title=f"Markov random field ({optimizer}, {result.iterations} sweeps)")
            _save_figure(figure, fig, overwrite)
    if not quiet:
        typer.echo(f"wrote {written}: {classes} classes, {result.iterations} sweeps, "
                   f"{changed} pixels changed from the pixel-wise start")
