"""`niseg threshold`: manual, automatic, local, multi-level, hysteresis and results-based."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._app import AxesOpt, OverwriteOpt, QuietOpt, _report_warnings, app, check_outputs

_METHOD_HELP = (
    "manual (needs --value); automatic: otsu (default), isodata, li, mean, minimum, triangle, "
    "yen, intermodes; local (adaptive, needs --block-size); multiotsu (--classes K, labels "
    "1..K); hysteresis (--low/--high, or both chosen automatically: high = Otsu, low = "
    "background median + 3 robust standard deviations); results (--object-size a:b, the "
    "level whose objects have the expected sizes -- BIASED: it assumes the answer and "
    "favours the level that reproduces it, so it cannot confirm the sizes)."
)


@app.command("threshold")
def threshold_command(
    image: Annotated[str, typer.Argument(help="Image or volume (file, folder or glob of slices).")],
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help=(
            "Label image: uint8 0/1 for binary methods, classes 1..K for multiotsu (0 = NaN "
            "input). Optional only with --try-all.")),
    ] = None,
    method: Annotated[str | None, typer.Option("--method", help=_METHOD_HELP)] = None,
    foreground: Annotated[
        str | None,
        typer.Option("--foreground", help=(
            "bright (default) or dark objects (mitochondria, neutron absorbers). For "
            "multiotsu, class K is the most foreground class.")),
    ] = None,
    value: Annotated[
        float | None, typer.Option("--value", help="Level of --method manual.")
    ] = None,
    classes: Annotated[
        int | None, typer.Option("--classes", help="Number of classes K for multiotsu.")
    ] = None,
    block_size: Annotated[
        int | None, typer.Option("--block-size", help="Odd block side of --method local.")
    ] = None,
    offset: Annotated[
        float, typer.Option("--offset", help="Offset from the local mean (local method).")
    ] = 0.0,
    low: Annotated[float | None, typer.Option("--low", help="Hysteresis low level.")] = None,
    high: Annotated[
        float | None, typer.Option("--high", help="Hysteresis high level.")
    ] = None,
    object_size: Annotated[
        str | None,
        typer.Option("--object-size", help=(
            "a:b, expected object sizes in pixels for --method results (biased: the level "
            "is chosen to reproduce these sizes).")),
    ] = None,
    background: Annotated[
        float | None,
        typer.Option("--background", help=(
            "Correct uneven illumination first, with a background of this scale SIGMA in "
            "pixels (larger than the objects).")),
    ] = None,
    background_mode: Annotated[
        str | None,
        typer.Option("--background-mode", help=(
            "divide (default: illumination is multiplicative) or subtract.")),
    ] = None,
    background_estimate: Annotated[
        str | None,
        typer.Option("--background-estimate", help=(
            "morphological (default: opening 2 SIGMA wide, then smoothing) or gaussian.")),
    ] = None,
    fill_holes: Annotated[
        bool, typer.Option("--fill-holes", help="Fill holes in the objects.")
    ] = False,
    min_size: Annotated[
        int, typer.Option("--min-size", help="Remove objects smaller than N pixels.")
    ] = 0,
    opening: Annotated[
        int, typer.Option("--opening", help="Opening with a disk (ball) of radius r.")
    ] = 0,
    closing: Annotated[
        int, typer.Option("--closing", help="Closing with a disk (ball) of radius r.")
    ] = 0,
    guard_edges: Annotated[
        bool,
        typer.Option("--guard-edges", help=(
            "multiotsu: leave high-gradient pixels out, then fill them from their labelled "
            "neighbours (removes the 'virtual skin' of middle classes at edges).")),
    ] = False,
    levels_from: Annotated[
        str | None,
        typer.Option("--levels-from", help=(
            "Apply the levels (and method, foreground, background correction) recorded in "
            "an earlier --stats-out JSON, so a series is segmented consistently.")),
    ] = None,
    try_all: Annotated[
        bool,
        typer.Option("--try-all", help=(
            "Run every automatic method; with --figure show them side by side with the "
            "histogram and their levels; the levels go to --stats-out.")),
    ] = False,
    figure: Annotated[
        str | None, typer.Option("--figure", help="Also write a figure (PNG, PDF, SVG).")
    ] = None,
    stats_out: Annotated[
        str | None,
        typer.Option("--stats-out", help=(
            "Also write JSON: levels and options used, pixels, fraction and area per class.")),
    ] = None,
    axes: AxesOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Segment an image by a threshold: manual, automatic, local, multi-level, hysteresis.

    Optional steps around the threshold: background (illumination) correction before it,
    clean-up (opening, closing, small objects, holes) after it. The levels used are
    reported and can be reused on the next sample with --levels-from.
    """
    from niseg.io import read_image, write_image, write_json
    from niseg.threshold import threshold, try_all_thresholds

    if out is None and not try_all:
        raise ValueError("--out is required (only --try-all runs without it)")
    targets = [p for p in (out, figure, stats_out) if p is not None]
    check_outputs([image], targets, overwrite=overwrite)
    given = _read_levels(levels_from) if levels_from is not None else None
    options = _options(given, method=method, foreground=foreground, classes=classes,
                       background=background, background_mode=background_mode,
                       background_estimate=background_estimate)
    size_range = _parse_size(object_size) if object_size is not None else None

    with _report_warnings(quiet):
        array, metadata = read_image(image, axes=axes)
        array = np.asarray(array)
        _check_spatial(array, metadata, image)
        stats: dict[str, Any] = {"input": image}
        if try_all:
            results = try_all_thresholds(_for_methods(array, options),
                                         foreground=options["foreground"])
            stats["try_all"] = {name: {"level": level, "error": reason}
                                for name, (_, level, reason) in results.items()}
        labels = None
        if out is not None:
            labels, info = threshold(
                array, method=options["method"], foreground=options["foreground"],
                value=value, classes=options["classes"], block_size=block_size, offset=offset,
                low=low, high=high, object_size=size_range, background=options["background"],
                background_mode=options["background_mode"],
                background_estimate=options["background_estimate"], fill_holes=fill_holes,
                min_size=min_size, opening=opening, closing=closing, guard_edges=guard_edges,
                levels=None if given is None else given["levels"])
            stats.update(info)
            if levels_from is not None:
                stats["levels_from"] = levels_from
            stats["class_stats"] = _class_stats(labels, info["classes"], metadata)
            label_meta = {k: v for k, v in metadata.items()
                          if k in ("axes", "pixel_size", "unit", "spacing", "source")}
            label_meta["classes"] = info["classes"]
            stats["output"] = str(write_image(out, labels, label_meta, overwrite=overwrite))
        if figure is not None:
            _write_figure(figure, array, labels, stats, results if try_all else None,
                          overwrite=overwrite)
        if stats_out is not None:
            write_json(stats_out, stats, overwrite=overwrite)
    if not quiet:
        if labels is not None:
            levels = ", ".join(f"{v:.6g}" for v in stats["levels"]) or "local"
            typer.echo(f"wrote {stats['output']} ({stats['method']}, levels {levels})")
        if try_all:
            for name, entry in stats["try_all"].items():
                text = f"{entry['level']:.6g}" if entry["level"] is not None else "failed"
                typer.echo(f"{name}: {text}")


def _for_methods(array: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    if options["background"] is None:
        return array
    from niseg.threshold import correct_background

    corrected, _ = correct_background(array, sigma=options["background"],
                                      mode=options["background_mode"],
                                      estimate=options["background_estimate"],
                                      foreground=options["foreground"])
    return corrected


def _options(given: dict | None, **cli: Any) -> dict[str, Any]:
    """Command-line values, else those recorded in --levels-from, else the defaults."""
    recorded = dict(given or {})
    background = recorded.get("background") or {}
    recorded_values = {
        "method": recorded.get("method"),
        "foreground": recorded.get("foreground"),
        "classes": len(recorded["levels"]) + 1 if recorded.get("method") == "multiotsu"
        else None,
        "background": background.get("sigma"),
        "background_mode": background.get("mode"),
        "background_estimate": background.get("estimate"),
    }
    defaults = {"method": "otsu", "foreground": "bright", "classes": None, "background": None,
                "background_mode": "divide", "background_estimate": "morphological"}
    options = {}
    for key, default in defaults.items():
        value, stored = cli[key], recorded_values[key]
        if value is not None and stored is not None and value != stored and key in (
                "method", "foreground"):
            raise ValueError(f"--{key} {value} differs from the {key} {stored} recorded in "
                             "--levels-from; the levels only make sense with the same one")
        options[key] = value if value is not None else (stored if stored is not None
                                                        else default)
    return options


def _read_levels(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise ValueError(f"--levels-from '{path}' is not a JSON file") from None
    levels = data.get("levels") if isinstance(data, dict) else None
    if not isinstance(levels, list) or not levels or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels):
        raise ValueError(f"--levels-from '{path}' holds no 'levels' list of numbers; give a "
                         "file written by 'niseg threshold --stats-out'")
    return data


def _parse_size(text: str) -> tuple[float, float]:
    parts = text.split(":")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--object-size must look like a:b in pixels, e.g. 50:400, got "
                         f"{text!r}") from None
    return low, high


def _check_spatial(array: np.ndarray, metadata: dict, name: str) -> None:
    letters = str(metadata.get("axes") or "")
    if array.ndim not in (2, 3) or (letters and any(a not in "zyx" for a in letters)):
        raise ValueError(f"'{name}' has shape {array.shape} and axes {letters or '?'}; "
                         "threshold takes a 2D image (yx) or a volume (zyx)")


def _class_stats(labels: np.ndarray, names: list[str], metadata: dict) -> list[dict[str, Any]]:
    binary = names == ["background", "foreground"]
    values = range(2) if binary else range(1, len(names) + 1)
    sizes = metadata.get("pixel_size")
    pixel = float(np.prod(sizes)) if sizes and len(sizes) == labels.ndim else None
    unit = metadata.get("unit")
    out = []
    for value, name in zip(values, names):
        count = int(np.count_nonzero(labels == value))
        entry: dict[str, Any] = {"value": value, "name": name, "pixels": count,
                                 "fraction": count / labels.size}
        if pixel is not None:
            key = "area" if labels.ndim == 2 else "volume"
            entry[key] = count * pixel
            entry[f"{key}_unit"] = f"{unit}^{labels.ndim}" if unit else f"pixel^{labels.ndim}"
        out.append(entry)
    return out


def _write_figure(path: str, array: np.ndarray, labels: np.ndarray | None,
                  stats: dict[str, Any], results: dict | None, *, overwrite: bool) -> None:
    from niseg.report import overview_figure, save_figure, threshold_methods_figure

    middle = array.shape[0] // 2
    if results is not None:
        if array.ndim == 3:
            results = {k: (None if lab is None else lab[middle], lev, why)
                       for k, (lab, lev, why) in results.items()}
        shown = array[middle] if array.ndim == 3 else array
        fig = threshold_methods_figure(shown, results, title=f"{stats['input']}: automatic "
                                       "thresholds")
    else:
        assert labels is not None
        fig = overview_figure(array[middle] if array.ndim == 3 else array,
                              result=labels[middle] if labels.ndim == 3 else labels,
                              levels=stats.get("levels") or None,
                              title=f"{stats['input']}: {stats['method']}")
    save_figure(fig, path, overwrite=overwrite)

