"""`niseg label` and `niseg measure`: number the objects of a mask, and measure them."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import typer

from ._app import AxesOpt, OverwriteOpt, QuietOpt, _report_warnings, app, check_outputs

FigureOpt = Annotated[
    str | None,
    typer.Option("--figure", help="Also write a figure (PNG/PDF/SVG) of the outlined, numbered "
                                  "objects (the middle slice of a volume)."),
]
StatsOpt = Annotated[
    str | None,
    typer.Option("--stats-out", help="Also write JSON: parameters used, per-class totals "
                                     "(count, area or volume, fraction) and per-object rows."),
]




def _read_2d_or_3d(path: str, axes: str | None, what: str) -> tuple[np.ndarray, dict]:
    from niseg.io import read_image

    array, metadata = read_image(path, axes=axes)
    array = np.asarray(array)
    letters = str(metadata.get("axes") or "")
    if array.ndim == 3 and "c" in letters:
        raise ValueError(f"{what} '{path}' has channels (axes {letters}); pass a single-"
                         f"channel image")
    if array.ndim not in (2, 3):
        raise ValueError(f"{what} '{path}' has shape {array.shape}; expected a 2D image or a "
                         f"3D volume")
    return array, metadata


def _figure_slice(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if labels.ndim == 2:
        return image, labels
    mid = labels.shape[0] // 2
    return image[mid], labels[mid]


@app.command("label")
def label_command(
    mask: Annotated[str, typer.Argument(help="Binary (0/non-zero) or multi-class (1..K) mask.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Object labels: 0 background, 1..N "
                                                         "objects (uint16, int32 beyond 65535).")],
    connectivity: Annotated[
        int | None,
        typer.Option("--connectivity", help="1: pixels touching by a face are connected "
                                            "(4 in 2D, 6 in 3D); up to the number of "
                                            "dimensions: also by corners (default: 8 / 26)."),
    ] = None,
    split: Annotated[
        bool, typer.Option("--split", help="Split touching objects with a watershed of the "
                                           "distance to the background.")
    ] = False,
    min_distance: Annotated[
        int, typer.Option("--min-distance", help="With --split: smallest distance in pixels "
                                                 "between two object centres.")
    ] = 5,
    h: Annotated[
        float, typer.Option("--h", help="With --split: smallest depth in pixels of the neck "
                                        "between two objects (avoids over-splitting).")
    ] = 1.0,
    min_size: Annotated[
        int, typer.Option("--min-size", help="Remove objects smaller than this many pixels.")
    ] = 0,
    axes: AxesOpt = None,
    figure: FigureOpt = None,
    stats_out: StatsOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Number the connected objects of a mask (2D or 3D), optionally splitting touching ones.

    Regions of different classes are never merged; the pixel size and axes of the mask are
    kept in the output's metadata where the format allows.
    """
    from niseg.io import write_image, write_json
    from niseg.objects import class_totals, label_objects, measure_objects
    from niseg.report import objects_figure, save_figure

    check_outputs([mask], [out, figure, stats_out], overwrite=overwrite)
    with _report_warnings(quiet):
        array, metadata = _read_2d_or_3d(mask, axes, "mask")
        labels = label_objects(array, connectivity=connectivity, split=split,
                               min_distance=min_distance, h=h, min_size=min_size)
        n = int(labels.max())
        dtype = np.uint16 if n < 65536 else np.int32
        meta = {k: v for k, v in metadata.items()
                if k in ("axes", "pixel_size", "unit", "spacing", "source")}
        written = write_image(out, labels.astype(dtype), meta, overwrite=overwrite)
        if stats_out is not None:
            pixel_size, unit = _pixel_size(None, None, metadata, labels.ndim)
            values = np.unique(array[array > 0])
            # A 0/255 mask is one class; only a multi-class mask gives per-class totals.
            rows = measure_objects(labels, class_map=array if values.size > 1 else None,
                                   pixel_size=pixel_size, unit=unit)
            write_json(stats_out, {
                "input": mask, "output": str(written), "objects": n,
                "connectivity": connectivity or labels.ndim, "split": split,
                "min_distance": min_distance if split else None, "h": h if split else None,
                "min_size": min_size, "pixel_size": pixel_size, "unit": unit,
                "classes": class_totals(rows, shape=labels.shape, pixel_size=pixel_size,
                                        unit=unit),
            }, overwrite=overwrite)
        if figure is not None:
            shown, lab = _figure_slice(array.astype(np.float32), labels)
            save_figure(objects_figure(shown, lab), figure, overwrite=overwrite)
    if not quiet:
        typer.echo(f"wrote {written} ({np.dtype(dtype).name}, shape {labels.shape}): {n} objects")


def _pixel_size(option: str | None, unit: str | None, metadata: dict,
                ndim: int) -> tuple[tuple[float, ...] | None, str | None]:
    if option is not None:
        try:
            values = tuple(float(v) for v in option.split(","))
        except ValueError:
            raise ValueError(f"--pixel-size must be a number or one number per axis separated "
                             f"by commas, got {option!r}") from None
        if len(values) not in (1, ndim) or any(not np.isfinite(v) or v <= 0 for v in values):
            raise ValueError(f"--pixel-size must be one positive number or {ndim} (one per "
                             f"axis), got {option!r}")
        return (values * ndim if len(values) == 1 else values), (unit or "um")
    sizes = metadata.get("pixel_size")
    if sizes is not None and len(sizes) == ndim:
        return tuple(float(v) for v in sizes), (unit or metadata.get("unit") or "um")
    return None, None


@app.command("measure")
def measure_command(
    labels: Annotated[str, typer.Argument(help="Object labels (0 background, 1..N), e.g. from "
                                               "'niseg label'.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Table of objects (CSV), one row per "
                                                         "object.")],
    image: Annotated[
        str | None, typer.Option("--image", help="Intensity image for the mean, minimum and "
                                                 "maximum intensity of each object.")
    ] = None,
    class_map: Annotated[
        str | None,
        typer.Option("--class-map", help="Multi-class mask the objects came from (1..K); each "
                                         "object gets the class of most of its pixels, and "
                                         "totals are given per class."),
    ] = None,
    pixel_size: Annotated[
        str | None,
        typer.Option("--pixel-size", help="Pixel size (one number, or one per axis separated by "
                                          "commas) in --unit; default: from the file's "
                                          "metadata."),
    ] = None,
    unit: Annotated[
        str | None, typer.Option("--unit", help="Length unit of --pixel-size (default um).")
    ] = None,
    totals_out: Annotated[
        str | None, typer.Option("--totals-out", help="Also write the per-class totals as CSV.")
    ] = None,
    axes: AxesOpt = None,
    figure: FigureOpt = None,
    stats_out: StatsOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure every object: area or volume, equivalent diameter, centroid, bounding box,
    orientation (2D) and mean intensity, in physical units when the pixel size is known.
    """
    from niseg.io import write_json
    from niseg.objects import class_totals, measure_objects, write_table_csv
    from niseg.report import objects_figure, save_figure

    check_outputs(
        [labels, image, class_map], [out, totals_out, figure, stats_out], overwrite=overwrite
    )
    with _report_warnings(quiet):
        lab, metadata = _read_2d_or_3d(labels, axes, "labels")
        if not np.issubdtype(lab.dtype, np.integer) and lab.dtype != bool:
            raise ValueError(f"labels '{labels}' has dtype {lab.dtype}; expected integer object "
                             f"labels such as 'niseg label' writes")
        intensity = classes = None
        if image is not None:
            intensity, _ = _read_2d_or_3d(image, axes, "image")
        if class_map is not None:
            classes, class_meta = _read_2d_or_3d(class_map, axes, "class map")
        names = None
        if class_map is not None and isinstance(class_meta.get("classes"), (list, tuple)):
            names = [str(c) for c in class_meta["classes"]]
        sizes, length_unit = _pixel_size(pixel_size, unit, metadata, lab.ndim)
        rows = measure_objects(lab, intensity, class_map=classes, class_names=names,
                               pixel_size=sizes, unit=length_unit)
        totals = class_totals(rows, shape=lab.shape, class_names=names, pixel_size=sizes,
                              unit=length_unit)
        written = write_table_csv(out, rows, overwrite=overwrite)
        if totals_out is not None:
            write_table_csv(totals_out, totals, overwrite=overwrite)
        if stats_out is not None:
            write_json(stats_out, _measure_stats(labels, str(written), sizes, length_unit,
                                                 totals, rows), overwrite=overwrite)
        if figure is not None:
            base = intensity if intensity is not None else (lab > 0)
            shown, shown_labels = _figure_slice(np.asarray(base, dtype=np.float32), lab)
            save_figure(objects_figure(shown, shown_labels), figure, overwrite=overwrite)
    if not quiet:
        where = f" ({length_unit})" if length_unit else " (pixels)"
        typer.echo(f"wrote {written}: {len(rows)} objects in {len(totals)} classes{where}")


def _measure_stats(labels: str, out: str, sizes: Any, unit: str | None, totals: list,
                   rows: list) -> dict[str, Any]:
    return {"input": labels, "output": out, "pixel_size": sizes, "unit": unit,
            "objects": len(rows), "classes": totals, "rows": rows}
