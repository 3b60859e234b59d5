"""`niseg clean-spots`: find and replace gamma spots, dead and hot pixels."""

from __future__ import annotations

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
    check_outputs,
)

_FRAME_LETTERS = "tzlc"


@app.command("clean-spots")
def clean_spots_command(
    image: Annotated[
        str, typer.Argument(help="Image or stack (file, folder or glob of slices, FILE.h5::/data).")
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help=(
                "Cleaned image; same dtype as the input where the replacement values fit "
                "(a uint16 image stays uint16, replacement values rounded to integers)."
            ),
        ),
    ],
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help=(
                "auto (default): |f - median| against the image's own noise, for any "
                "exposure; baseline: the lecture's |f - median| > --threshold in image units; "
                "morph: peak removal up to --max-area; sigmoid: soft replacement; log: "
                "Laplacian-of-Gaussian blobs; knn: k-nearest neighbours on (intensity, "
                "|f - median|), trained on the image itself with simulated spots; cnn: a "
                "small convolutional network trained on simulated radiographs (the model "
                "shipped with niseg, or --model; needs PyTorch)."
            ),
        ),
    ] = "auto",
    polarity: Annotated[
        str,
        typer.Option(
            "--polarity",
            help="bright (gamma spots, hot pixels), dark (dead or cold pixels) or both.",
        ),
    ] = "bright",
    size: Annotated[
        int,
        typer.Option(
            "--size",
            help=(
                "Median window side in pixels (odd, 3-31); spots up to about twice this are "
                "found. With --temporal: the number of frames compared."
            ),
        ),
    ] = 5,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help=(
                "Detection threshold: for baseline the |f - median| limit in image units "
                "(required); for the other methods in noise standard deviations (default 5)."
            ),
        ),
    ] = None,
    max_area: Annotated[
        int | None,
        typer.Option(
            "--max-area",
            help=(
                "Regions larger than this many pixels are objects, not spots (default "
                "4 x size^2; no limit for baseline)."
            ),
        ),
    ] = None,
    temporal: Annotated[
        bool,
        typer.Option(
            "--temporal",
            help=(
                "For a stack: compare each pixel with the same pixel in the neighbouring "
                "frames instead of its spatial neighbours (methods auto, baseline, sigmoid)."
            ),
        ),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help=(
                "With --method cnn: a spot model file (.niseg, kind spot-cnn, from "
                "niseg.deep.train_spot_cnn) instead of the shipped one."
            ),
        ),
    ] = None,
    axes: AxesOpt = None,
    spots_out: Annotated[
        str | None,
        typer.Option(
            "--spots-out",
            help="Also write the spot mask (uint8: 0 none, 1 bright spot, 2 dark spot).",
        ),
    ] = None,
    stats_out: Annotated[
        str | None,
        typer.Option(
            "--stats-out",
            help="Also write JSON: parameters used, number and fraction of spot pixels per frame.",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the random steps (knn training).")
    ] = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Find and replace spots: gamma spots, hot, dead and cold pixels, zingers.

    With no options, bright spots are found by the noise-aware default method and
    replaced by the median of their unaffected neighbours; pixels that are not spots keep
    their exact values, and the metadata (pixel size, axes, ...) is kept. A stack (any axis
    other than y and x, e.g. --axes tyx) is cleaned frame by frame, or along the frame axis
    with --temporal.
    """
    from niseg.io import read_image, write_image, write_json
    from niseg.preprocess import KNNSpotDetector, clean_spots

    targets = [out] + [p for p in (spots_out, stats_out) if p is not None]
    check_outputs([image], targets, overwrite=overwrite)
    if max_area is not None and max_area < 1:
        raise ValueError(f"--max-area must be a positive number of pixels, got {max_area}")
    detector = _spot_model(model, method)

    with _report_warnings(quiet):
        array, metadata = read_image(image, axes=axes)
        array = np.asarray(array)
        frame_axis = _frame_axis(array, metadata, image)
        if temporal and frame_axis is None:
            raise ValueError(f"--temporal needs a stack of frames, but '{image}' is a single "
                             f"2D image of shape {array.shape}")
        options: dict[str, Any] = {
            "method": method,
            "polarity": polarity,
            "size": size,
            "threshold": threshold,
            "max_area": max_area,
            "seed": seed,
        }
        if method == "cnn":
            options["detector"] = detector
        if frame_axis is None or temporal:
            with _progress(quiet, "cleaning spots") as update:
                cleaned, mask = clean_spots(array, frame_axis=frame_axis, temporal=temporal,
                                            return_mask=True, **options)
                update(1, 1)
        else:
            frames = np.moveaxis(array, frame_axis, 0)
            cleaned_frames = np.empty_like(frames)
            mask_frames = np.zeros(frames.shape, dtype=bool)
            if method == "knn":
                # One self-supervised detector for the whole stack, from its first frame.
                options["detector"] = KNNSpotDetector(size=size, random_state=seed).fit_on_image(
                    frames[0], polarity=polarity, seed=seed)
            with _progress(quiet, "cleaning spots") as update:
                for i in range(frames.shape[0]):
                    cleaned_frames[i], mask_frames[i] = clean_spots(frames[i], return_mask=True,
                                                                    **options)
                    update(i + 1, frames.shape[0])
            cleaned = np.moveaxis(cleaned_frames, 0, frame_axis)
            mask = np.moveaxis(mask_frames, 0, frame_axis)

        written = write_image(out, cleaned, metadata, overwrite=overwrite)
        labels = np.zeros(mask.shape, dtype=np.uint8)
        labels[mask & (cleaned.astype(np.float64) <= array.astype(np.float64))] = 1
        labels[mask & (cleaned.astype(np.float64) > array.astype(np.float64))] = 2
        if spots_out is not None:
            spot_meta = {k: v for k, v in metadata.items()
                         if k in ("axes", "pixel_size", "unit", "spacing", "source")}
            spot_meta["classes"] = ["bright spot", "dark spot"]
            write_image(spots_out, labels, spot_meta, overwrite=overwrite)
        stats = _stats(labels, frame_axis, image=image, out=str(written), options=options,
                       temporal=temporal, dtype=str(array.dtype))
        if method == "cnn":
            stats["model"] = model if model is not None else "shipped"
        if stats_out is not None:
            write_json(stats_out, stats, overwrite=overwrite)
    if not quiet:
        typer.echo(
            f"wrote {written} ({cleaned.dtype}, shape {tuple(cleaned.shape)}): "
            f"{stats['spot_pixels']} spot pixels ({100 * stats['spot_fraction']:.3f} %)"
        )




def _spot_model(model: str | None, method: str) -> Any:
    """The user's spot model, loaded and checked before any work; None for the default."""
    if model is None:
        return None
    if method != "cnn":
        raise ValueError(f"--model is only used by --method cnn, not --method {method}")
    from niseg.models import load_model, read_model_info

    kind = read_model_info(model)["kind"]
    if kind != "spot-cnn":
        raise ValueError(f"--model '{model}' is a {kind} model but --method cnn needs a "
                         f"spot-cnn model (from niseg.deep.train_spot_cnn)")
    return load_model(model)


def _frame_axis(array: np.ndarray, metadata: dict, name: str) -> int | None:
    if array.ndim == 2:
        return None
    letters = str(metadata.get("axes") or "")
    if array.ndim == 3 and (not letters or metadata.get("axes_guessed")):
        raise ValueError(f"'{name}' is 3D with shape {array.shape} and its axes are not "
                         f"recorded; pass --axes, e.g. tyx for a stack of frames")
    if array.ndim == 3 and len(letters) == 3 and "y" in letters and "x" in letters:
        others = [i for i, a in enumerate(letters) if a not in "yx"]
        if len(others) == 1 and letters[others[0]] in _FRAME_LETTERS:
            return others[0]
    raise ValueError(f"'{name}' has shape {array.shape} and axes {letters or '?'}; clean-spots "
                     f"takes a 2D image (yx) or a stack of 2D frames (e.g. tyx, zyx, yxl)")


def _stats(labels: np.ndarray, frame_axis: int | None, *, image: str, out: str,
           options: dict[str, Any], temporal: bool, dtype: str) -> dict[str, Any]:
    frames = labels[None] if frame_axis is None else np.moveaxis(labels, frame_axis, 0)
    per_frame = []
    for i, frame in enumerate(frames):
        bright = int(np.count_nonzero(frame == 1))
        dark = int(np.count_nonzero(frame == 2))
        per_frame.append({
            "frame": i,
            "spot_pixels": bright + dark,
            "spot_fraction": (bright + dark) / frame.size,
            "bright_pixels": bright,
            "dark_pixels": dark,
        })
    total = sum(f["spot_pixels"] for f in per_frame)
    size = options["size"]
    threshold = options["threshold"]
    method = options["method"]
    return {
        "input": image,
        "output": out,
        "dtype": dtype,
        "method": method,
        "polarity": options["polarity"],
        "size": size,
        "threshold": (5.0 if threshold is None and method not in ("knn", "cnn")
                      else threshold),
        "threshold_unit": "image units" if method == "baseline" else "noise deviations",
        "max_area": (options["max_area"] if options["max_area"] is not None
                     else (None if method == "baseline" else 4 * size * size)),
        "temporal": temporal,
        "seed": options["seed"],
        "frames": per_frame,
        "spot_pixels": total,
        "spot_fraction": total / labels.size,
    }
