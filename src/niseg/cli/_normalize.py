"""`niseg normalize`: open-beam / dark-current normalization to transmission (or −ln T)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._app import (
    AxesOpt,
    OverwriteOpt,
    QuietOpt,
    _progress,
    _report_warnings,
    app,
)

_CANNOT = {"z": "depth", "c": "channel"}


@app.command()
def normalize(
    sample: Annotated[
        str,
        typer.Argument(help="Sample image, stack or time-of-flight cube (file, folder or glob)."),
    ],
    out: Annotated[
        str,
        typer.Option("--out", "-o", help="Output file (float32: .tif, .fits, .npy, .h5, .zarr)."),
    ],
    open_beam: Annotated[
        list[str],
        typer.Option(
            "--open-beam",
            help=(
                "Open-beam (flat-field) frames: a file, a folder or a glob; repeat the option "
                "for more. All frames are combined (see --combine)."
            ),
        ),
    ],
    dark: Annotated[
        list[str] | None,
        typer.Option(
            "--dark",
            help=(
                "Dark-current frames: a file, a folder or a glob; repeatable. For a "
                "time-of-flight cube a single (y, x) frame applies to every bin."
            ),
        ),
    ] = None,
    log: Annotated[
        bool, typer.Option("--log", help="Write the attenuation -ln(T) instead of T.")
    ] = False,
    combine: Annotated[
        str,
        typer.Option(
            "--combine", help="How open-beam and dark frames are combined: median or mean."
        ),
    ] = "median",
    dose_roi: Annotated[
        str | None,
        typer.Option(
            "--dose-roi",
            help=(
                "A region without the sample, y0:y1,x0:x1: each frame (each wavelength bin) "
                "is scaled so that T averages 1 there, correcting beam-intensity changes."
            ),
        ),
    ] = None,
    guard: Annotated[
        float,
        typer.Option(
            "--guard",
            help="Pixels whose dark-subtracted open beam has at most this many counts become NaN.",
        ),
    ] = 1.0,
    floor: Annotated[
        float | None,
        typer.Option(
            "--floor",
            help="With --log: raise T below this value to it instead of writing NaN for T <= 0.",
        ),
    ] = None,
    allow_negative: Annotated[
        bool,
        typer.Option(
            "--allow-negative",
            help="Accept negative values in the sample and open beam (already dark-subtracted).",
        ),
    ] = False,
    axes: AxesOpt = None,
    stats_out: Annotated[
        str | None,
        typer.Option("--stats-out", help="Write counts, exposure and dose factors as JSON."),
    ] = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Normalize by open beam and dark current: T = (I - DC) / (OB - DC), optionally -ln T.

    The axes of SAMPLE (from its metadata or --axes) decide what is divided by what: 'yx' is
    one image; a 't' axis holds frames, each divided by the same references; an 'l' axis
    holds wavelength bins, each divided by its own open-beam bin (open-beam cubes are
    combined per bin). Exposure times come from each file's metadata (exposure_time); when
    one is missing nothing is scaled, and --stats-out says so. Pixels with too weak an open
    beam are NaN; values T <= 0 and T > 1 are counted and kept.
    """
    from niseg.io import (
        check_output_path,
        expand_paths,
        format_for_path,
        lossless_dtype_for,
        read_image,
        write_image,
        write_json,
    )
    from niseg.preprocess import normalize as normalize_images
    from niseg.preprocess._normalize import parse_roi

    target = out.split("::")[0]
    check_output_path(target, overwrite=overwrite)
    if not lossless_dtype_for(format_for_path(target), np.float32):
        raise ValueError(
            f"--out '{out}' cannot hold float32 transmission values; use .tif, .fits, .npy, "
            ".h5 or .zarr"
        )
    if stats_out is not None:
        check_output_path(stats_out, overwrite=overwrite)
    roi = None if dose_roi is None else parse_roi(dose_roi, name="--dose-roi")
    inputs = [sample, *open_beam, *(dark or [])]
    _refuse_overwriting_inputs([target, stats_out], inputs, expand_paths)

    with _report_warnings(quiet):
        image, meta = read_image(sample, axes=axes)
        frame_axis, spectral_axis = _axes_roles(meta, sample, image.ndim)
        ob_arrays, ob_times = _read_all(open_beam, read_image)
        dc_arrays, dc_times = _read_all(dark or [], read_image)
        exposure, why_not = _exposure(meta, sample, open_beam, ob_times, dark or [], dc_times)
        with _progress(quiet or image.ndim == 2, "normalizing") as update:
            result, stats = normalize_images(
                image,
                ob_arrays,
                dc_arrays or None,
                combine=combine,
                frame_axis=frame_axis,
                spectral_axis=spectral_axis,
                exposure=exposure,
                dose_roi=roi,
                guard=guard,
                log=log,
                floor=floor,
                allow_negative=allow_negative,
                progress=update,
            )
        stats["exposure_scaling"] = "applied" if exposure is not None else f"not applied: {why_not}"
        provenance = {
            "sample": meta.get("source", os.path.abspath(sample)),
            "open_beam": [os.path.abspath(p) for p in open_beam],
            "dark": [os.path.abspath(p) for p in dark or []],
            **{k: stats[k] for k in ("combine", "n_open_beam_frames", "n_dark_frames", "guard",
                                     "exposure", "scale_factors", "dose_roi", "log", "floor")},
            "exposure_scaling": stats["exposure_scaling"],
        }
        out_meta = {k: v for k, v in meta.items() if k not in ("source", "dataset")}
        out_meta["quantity"] = "attenuation (-ln T)" if log else "transmission"
        out_meta["normalization"] = provenance
        written = write_image(out, result, out_meta, overwrite=overwrite)
        if stats_out is not None:
            write_json(stats_out, {"sample": provenance["sample"], "output": str(written),
                                   "axes": meta["axes"], **stats}, overwrite=overwrite)
    if not quiet:
        typer.echo(
            f"wrote {written} ({out_meta['quantity']}, float32, shape {tuple(result.shape)}): "
            f"{_pct(stats['fraction_nonpositive'])} non-positive, "
            f"{_pct(stats['fraction_above_one'])} above 1, "
            f"{_pct(stats['fraction_guarded'])} guarded (NaN)"
        )


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f} %"


def _refuse_overwriting_inputs(outputs: list[str | None], inputs: list[str],
                               expand: Any) -> None:
    """An output that is also an input would replace data the user still needs."""
    given = {Path(p).resolve() for p in outputs if p is not None}
    for spec in inputs:
        try:
            paths = expand(spec)
        except ValueError:
            continue  # reading it later gives the precise error
        for path in paths:
            if Path(str(path).split("::")[0]).resolve() in given:
                raise ValueError(f"output '{path}' is also an input; write to another file")


def _axes_roles(meta: dict, name: str, ndim: int) -> tuple[int | None, int | None]:
    axes = meta["axes"]
    for letter, what in _CANNOT.items():
        if letter in axes:
            guessed = " (guessed from its shape)" if meta.get("axes_guessed") else ""
            raise ValueError(
                f"'{name}' has axes '{axes}'{guessed} with a {what} axis '{letter}'; pass --axes "
                "with 't' for a stack of frames (e.g. tyx) or 'l' for wavelength bins (e.g. yxl)"
            )
    frame_axis = axes.index("t") if "t" in axes else None
    spectral_axis = axes.index("l") if "l" in axes else None
    return frame_axis, spectral_axis


def _read_all(specs: list[str], read_image: Any) -> tuple[list[np.ndarray], list[float | None]]:
    arrays, times = [], []
    for spec in specs:
        array, meta = read_image(spec)
        arrays.append(array)
        times.append(meta.get("exposure_time"))
    return arrays, times


def _exposure(meta: dict, sample: str, ob_specs: list[str], ob_times: list, dc_specs: list[str],
              dc_times: list) -> tuple[dict | None, str]:
    named = [(sample, meta.get("exposure_time"))]
    named += list(zip(ob_specs, ob_times)) + list(zip(dc_specs, dc_times))
    for spec, value in named:
        if value is not None and not float(value) > 0:
            raise ValueError(f"'{spec}' records exposure_time {float(value):g} s; an exposure "
                             "time must be positive")
    missing = [spec for spec, value in named if value is None]
    if missing:
        return None, f"no exposure_time in the metadata of '{missing[0]}'"
    exposure: dict[str, Any] = {"sample": float(named[0][1]),
                                "open_beam": [float(t) for t in ob_times]}
    if dc_specs:
        exposure["dark"] = [float(t) for t in dc_times]
    return exposure, ""
