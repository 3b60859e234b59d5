"""The ``niseg`` command line: one sub-command per task, a thin layer over the library.

User errors (a missing or unreadable file, a wrong shape, an existing output) print
``error: <one sentence>`` on stderr and exit with status 2, without a traceback unless
``--debug`` is given. Exit status 0 means done.
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer

app = typer.Typer(
    name="niseg",
    help=(
        "Segment neutron, X-ray and electron-microscopy images, and measure how good the "
        "result is. Run 'niseg demo' for a first end-to-end example, or "
        "'niseg COMMAND --help' for the details of one command."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
simulate_app = typer.Typer(
    help="Make synthetic images with exact ground truth (for trying methods and for tests).",
    no_args_is_help=True,
)
app.add_typer(simulate_app, name="simulate")

# Options shared by several commands.
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
AxesOpt = Annotated[
    Optional[str],
    typer.Option(
        "--axes",
        help=(
            "Axis letters of the input, e.g. 'tyx' for a multi-page TIFF of projections or "
            "'yxl' for a time-of-flight cube stored as (y, x, bins). Letters: z depth, y rows, "
            "x columns, t time/projection, l wavelength bin, c channel."
        ),
    ),
]


def _version_callback(value: bool) -> None:
    if value:
        import niseg

        typer.echo(f"niseg {niseg.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when something fails.")
    ] = False,
) -> None:
    """Segment scientific images."""


# --------------------------------------------------------------------------------------------
# helpers


def _stderr(message: str) -> None:
    typer.echo(message, err=True)


@contextlib.contextmanager
def _report_warnings(quiet: bool) -> Iterator[None]:
    """Show library warnings (metadata or precision loss) as one 'warning:' line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    if not quiet:
        seen = set()
        for w in caught:
            text = str(w.message)
            if text not in seen and not issubclass(w.category, DeprecationWarning):
                seen.add(text)
                _stderr(f"warning: {text}")


@contextlib.contextmanager
def _progress(quiet: bool, description: str) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``update(done, total)``; silent with --quiet."""
    if quiet:
        yield lambda done, total, text=None: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int, text: str | None = None) -> None:
            progress.update(task, completed=done, total=total)
            if text:
                progress.update(task, description=text)

        yield update


def _parse_roi(text: str, ndim: int) -> tuple[slice, ...]:
    """Parse 'y0:y1,x0:x1' (or 'z0:z1,y0:y1,x0:x1') into slices."""
    parts = text.split(",")
    if len(parts) != ndim:
        raise ValueError(
            f"--roi {text!r} gives {len(parts)} ranges but the image has {ndim} dimensions"
        )
    slices = []
    for part in parts:
        bounds = part.split(":")
        if len(bounds) != 2:
            raise ValueError(f"--roi range {part!r} must look like start:stop, e.g. 10:200")
        try:
            lo = int(bounds[0]) if bounds[0].strip() else None
            hi = int(bounds[1]) if bounds[1].strip() else None
        except ValueError:
            raise ValueError(f"--roi range {part!r} must hold whole numbers") from None
        slices.append(slice(lo, hi))
    return tuple(slices)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------------------------
# niseg info


@app.command()
def info(
    path: Annotated[str, typer.Argument(help="An image file, folder/glob of slices, or a .niseg model.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    axes: AxesOpt = None,
) -> None:
    """Show an image's shape, data type, value range, axes and metadata (or a model's metadata).

    For a dataset inside an HDF5/NeXus file, write FILE.h5::/entry/data/data. Large images are
    read chunk by chunk, so this works on volumes bigger than memory.
    """
    if path.endswith(".niseg"):
        from niseg.models import read_model_info

        model_info = read_model_info(path)
        if as_json:
            typer.echo(json.dumps(model_info, indent=2))
        else:
            typer.echo(f"model: {path}")
            for key in ("kind", "kind_version", "niseg_version", "classes", "class_names",
                        "spatial_dims", "n_channels", "halo", "params", "provenance"):
                if model_info.get(key) is not None:
                    typer.echo(f"  {key}: {json.dumps(model_info[key])}")
        return

    import dask.array as da

    from niseg.io import format_for_path, read_image

    array, metadata = read_image(path, axes=axes, lazy=True)
    lazy = array if isinstance(array, da.Array) else da.from_array(array)
    if lazy.size:
        finite = lazy if not np.issubdtype(lazy.dtype, np.floating) else da.where(
            da.isfinite(lazy), lazy, np.nan
        )
        lo, hi = (float(v) for v in da.compute(da.nanmin(finite), da.nanmax(finite)))
    else:
        lo = hi = float("nan")
    result = {
        "path": path,
        "format": format_for_path(path.split("::")[0]) if "::" in path else _format_or_stack(path),
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "min": lo,
        "max": hi,
        "axes": metadata.get("axes"),
        "metadata": metadata,
    }
    if as_json:
        typer.echo(json.dumps(_jsonable(result), indent=2))
        return
    typer.echo(f"image: {path}")
    typer.echo(f"  format: {result['format']}")
    typer.echo(f"  shape: {tuple(array.shape)}  axes: {metadata.get('axes')}"
               + ("  (guessed; use --axes to set)" if metadata.get("axes_guessed") else ""))
    typer.echo(f"  dtype: {array.dtype}  min: {lo:g}  max: {hi:g}")
    for key, value in metadata.items():
        if key not in ("axes", "axes_guessed"):
            typer.echo(f"  {key}: {json.dumps(_jsonable(value))}")


def _format_or_stack(path: str) -> str:
    from niseg.io import expand_paths, format_for_path

    files = expand_paths(path)
    fmt = format_for_path(files[0])
    return fmt if len(files) == 1 and Path(path).is_file() else f"{fmt} stack of {len(files)} files"


# --------------------------------------------------------------------------------------------
# niseg convert


@app.command()
def convert(
    source: Annotated[str, typer.Argument(help="Input image, folder/glob of slices, or FILE.h5::/dataset.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Output file; its extension sets the format.")],
    rescale: Annotated[
        bool,
        typer.Option(
            "--rescale",
            help=(
                "Allow a lossy conversion by rescaling values linearly from the data's min..max "
                "to the full range of the output type (e.g. float32 to 16-bit PNG). Without it, a "
                "conversion that would lose precision is refused."
            ),
        ),
    ] = False,
    axes: AxesOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Convert an image between formats (TIFF, PNG, JPG, FITS, NPY, HDF5, Zarr), keeping metadata.

    The output format follows the extension of --out. Metadata the output format cannot hold
    (pixel size, exposure time) is reported as a warning; a conversion that would change
    values is refused unless --rescale is given.
    """
    from niseg.io import (
        check_output_path,
        format_for_path,
        lossless_dtype_for,
        read_image,
        rescale_to_dtype,
        supported_formats,
        write_image,
    )

    target = out.split("::")[0]
    check_output_path(target, overwrite=overwrite)
    fmt = format_for_path(target)
    with _report_warnings(quiet):
        array, metadata = read_image(source, axes=axes)
        if not lossless_dtype_for(fmt, array.dtype):
            info = supported_formats()[fmt]
            exact = info["dtypes"]
            target_dtype = info["write_dtypes"][-1]
            if not rescale:
                stores = f"it stores {', '.join(exact)} exactly" if exact else "it is lossy"
                raise ValueError(
                    f"{fmt.upper()} cannot store {array.dtype} values exactly ({stores}); pass "
                    f"--rescale to rescale them to {target_dtype}"
                )
            original = {
                "dtype": str(array.dtype),
                "min": float(np.nanmin(array)),
                "max": float(np.nanmax(array)),
            }
            array = rescale_to_dtype(array, target_dtype)
            metadata = {**metadata, "rescaled_from": original}
        written = write_image(out, array, metadata, overwrite=overwrite)
    if not quiet:
        typer.echo(f"wrote {written} ({array.dtype}, shape {tuple(array.shape)})")


# --------------------------------------------------------------------------------------------
# niseg evaluate


@app.command()
def evaluate(
    truth: Annotated[str, typer.Argument(help="Ground-truth label image.")],
    pred: Annotated[str, typer.Argument(help="Segmentation to score, same shape as TRUTH.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    foreground: Annotated[
        Optional[int],
        typer.Option(
            "--foreground",
            help=(
                "Score only this label value as foreground against everything else (e.g. 255 "
                "for a 0/255 mask). By default two binary images compare non-zero against "
                "zero, and multi-class images are scored per class."
            ),
        ),
    ] = None,
    roi: Annotated[
        Optional[str],
        typer.Option("--roi", help="Score only this region: y0:y1,x0:x1 (z0:z1,y0:y1,x0:x1 in 3D)."),
    ] = None,
    ignore: Annotated[
        Optional[int],
        typer.Option("--ignore", help="Leave out pixels where TRUTH has this value (e.g. unlabelled)."),
    ] = None,
    proba: Annotated[
        Optional[str],
        typer.Option(
            "--proba",
            help=(
                "Foreground probability map (same shape as TRUTH, or classes on the last axis as "
                "written by --proba-out) to add the ROC AUC."
            ),
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Score a segmentation against ground truth: Dice, IoU, precision, recall, accuracy, confusion matrix.

    Two binary images (values 0 and one other value each) compare non-zero against zero;
    label images with more classes are scored per class, with macro averages.
    """
    from niseg.io import read_image
    from niseg.metrics import segmentation_report

    truth_img, _ = read_image(truth)
    pred_img, _ = read_image(pred)
    if truth_img.shape != pred_img.shape:
        raise ValueError(
            f"prediction '{pred}' has shape {pred_img.shape} but truth '{truth}' has shape "
            f"{truth_img.shape}"
        )
    proba_img = None
    if proba is not None:
        proba_img, _ = read_image(proba)
        proba_img = _foreground_probability(proba_img, truth_img.shape, proba)
    mask = None
    if roi is not None:
        mask = np.zeros(truth_img.shape, dtype=bool)
        mask[_parse_roi(roi, truth_img.ndim)] = True
        if not mask.any():
            raise ValueError(f"--roi {roi!r} selects no pixels of an image of shape {truth_img.shape}")
    result = segmentation_report(
        truth_img, pred_img, proba=proba_img, foreground=foreground, mask=mask, ignore=ignore
    )
    if as_json:
        typer.echo(json.dumps(_jsonable(result), indent=2))
        return
    if quiet:
        return
    for key in ("dice", "iou", "precision", "recall", "accuracy", "balanced_accuracy", "ari", "roc_auc"):
        if key in result and result[key] is not None:
            typer.echo(f"{key:>18}: {result[key]:.4f}")
    typer.echo(f"{'confusion':>18}: rows = truth {result.get('labels')}, columns = prediction")
    for row in result["confusion"]:
        typer.echo(" " * 20 + "  ".join(f"{v:>10}" for v in row))


def _foreground_probability(proba: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float32)
    if proba.shape == shape:
        return proba
    if proba.ndim == len(shape) + 1 and proba.shape[:-1] == shape and proba.shape[-1] == 2:
        return proba[..., 1]
    raise ValueError(
        f"probability map '{name}' has shape {proba.shape}; expected {shape} or {shape + (2,)}"
    )


# --------------------------------------------------------------------------------------------
# niseg simulate radiograph


@simulate_app.command("radiograph")
def simulate_radiograph_cmd(
    out: Annotated[str, typer.Option("--out", "-o", help="Output folder (created if missing).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same images.")] = 0,
    size: Annotated[int, typer.Option("--size", help="Image size in pixels (square).")] = 256,
    counts: Annotated[
        float, typer.Option("--counts", help="Mean open-beam neutron counts per pixel (sets the noise).")
    ] = 1000.0,
    blur: Annotated[
        float, typer.Option("--blur", help="Detector blur: Gaussian σ in pixels (0 = none).")
    ] = 0.0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate a neutron radiograph of a phantom with its exact ground truth.

    Writes image.tif (detected counts, float32), open_beam.tif (an open-beam frame at the same
    exposure, for normalisation) and truth.tif (labels: 0 = open beam, 1..K = materials; the
    class names are in the TIFF metadata). Physics: Beer-Lambert attenuation with tabulated
    thermal-neutron coefficients, Poisson counting noise, optional detector blur.
    """
    from niseg.io import check_output_path, write_image
    from niseg.simulate import simulate_radiograph

    outdir = Path(out)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"--out '{out}' exists and is not a folder")
    names = ("image.tif", "open_beam.tif", "truth.tif")
    if outdir.is_dir():
        for name in names:
            check_output_path(outdir / name, overwrite=overwrite)
    result = simulate_radiograph(size=size, counts=counts, blur=blur, seed=seed)
    outdir.mkdir(parents=True, exist_ok=True)
    with _report_warnings(quiet):
        write_image(outdir / "image.tif", result.image, result.metadata, overwrite=overwrite)
        write_image(outdir / "open_beam.tif", result.open_beam, result.metadata, overwrite=overwrite)
        write_image(outdir / "truth.tif", result.truth, result.metadata, overwrite=overwrite)
    if not quiet:
        typer.echo(f"wrote {', '.join(names)} to {outdir}")


# --------------------------------------------------------------------------------------------
# niseg demo


@app.command()
def demo(
    out: Annotated[str, typer.Option("--out", "-o", help="Folder for the demo's outputs.")] = "niseg-demo",
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the simulated data.")] = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run niseg end to end on simulated neutron radiographs and write an HTML report.

    Simulates a training and a test radiograph with exact ground truth, normalises them by
    their open beam, trains the best segmenter available, saves and reloads it as a .niseg
    model file, predicts the test image in tiles, scores the result against the truth and
    writes figures and report.html to the output folder.
    """
    from niseg.demo import run_demo

    with _progress(quiet, "demo") as update, _report_warnings(quiet):
        summary = run_demo(out, seed=seed, overwrite=overwrite, progress=update)
    if not quiet:
        typer.echo(f"Dice on the test image: {summary['metrics']['dice']:.3f}")
        typer.echo(f"report: {summary['report']}")


# --------------------------------------------------------------------------------------------
# entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``niseg`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        0 when done, 2 for a user error (message on stderr, no traceback unless ``--debug``).

    Examples
    --------
    >>> main(["--version"])  # doctest: +ELLIPSIS
    niseg ...
    0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="niseg", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _stderr("error: interrupted")
        return 130
    except (ValueError, TypeError, OSError, ImportError, MemoryError) as exc:
        if debug:
            raise
        _stderr(f"error: {_one_sentence(exc)}")
        return 2
    except Exception as exc:
        # Command-line usage errors (click's, or the copy of click that typer ships).
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")) or debug:
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare 'niseg' or 'niseg simulate'
            typer.echo(exc.format_message())
            return 0
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see '{ctx.command_path} --help')"
        _stderr(f"error: {exc.format_message()}{hint}")
        return 2
    return int(result) if isinstance(result, int) else 0


def _one_sentence(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "not enough memory for this image; process it in tiles or chunks"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: '{exc.filename}'"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"permission denied: '{exc.filename}'"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
