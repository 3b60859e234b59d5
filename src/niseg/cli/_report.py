"""`niseg report`: a self-contained HTML report of a batch run made by `niseg run`."""

from __future__ import annotations

from typing import Annotated

import typer

from ._app import (
    OverwriteOpt,
    QuietOpt,
    _progress,
    _report_warnings,
    app,
)


@app.command()
def report(
    run_dir: Annotated[
        str, typer.Argument(help="Run folder of `niseg run` (holds measurements.json).")
    ],
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Report file to write [default: RUN_DIR/report.html]."),
    ] = None,
    truth: Annotated[
        str | None,
        typer.Option("--truth", help=(
            "Folder of truth masks named like the run's outputs (KEY.tif, e.g. day1/a.tif); "
            "adds scores per file, a confusion matrix and, with --proba, a ROC curve.")),
    ] = None,
    proba: Annotated[
        str | None,
        typer.Option("--proba", help=(
            "Folder of foreground probability maps named like the run's outputs (classes on "
            "the last axis, as --proba-out writes them).")),
    ] = None,
    max_thumbnails: Annotated[
        int, typer.Option("--max-thumbnails", min=0, help="Most inputs shown as thumbnails.")
    ] = 48,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write an HTML report of a batch run: recipe, versions, thumbnails, measurements.

    The page holds the recipe and the versions used, the global fit, a grid of the inputs with
    their segmentation overlaid, the per-file measurements (a table sorted by clicking a
    column header), histograms, the failed inputs and, with --truth, scores against the truth.
    Everything is embedded; the page opens offline and loads nothing from the network.
    """
    from pathlib import Path

    from niseg.io import check_output_path
    from niseg.report import write_batch_report
    from niseg.report._batch_report import _load_run

    _load_run(Path(run_dir))  # refuse a folder that is not a run before anything else
    target = Path(out) if out is not None else Path(run_dir) / "report.html"
    check_output_path(target, overwrite=overwrite)
    with _progress(quiet, "report") as update, _report_warnings(quiet):
        page = write_batch_report(run_dir, target, truth=truth, proba=proba,
                                  max_thumbnails=max_thumbnails, overwrite=overwrite,
                                  progress=update)
    if not quiet:
        typer.echo(f"report: {page}")
