"""`niseg demo`: the whole pipeline on simulated data."""

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
def demo(
    out: Annotated[
        str, typer.Option("--out", "-o", help="Folder for the demo's outputs.")
    ] = "niseg-demo",
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the simulated data.")] = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run niseg end to end on simulated neutron radiographs and write an HTML report.

    Simulates a training and a test radiograph with exact ground truth, normalises them by
    their open beam, trains the best segmenter available, saves and reloads it as a .niseg
    model file, predicts the test image in tiles, scores the result against the truth and
    writes figures and report.html to the output folder. Then it applies the model as a
    recipe to a series of three radiographs (series/) and writes that batch run with its own
    report, with scores against the truth, to batch/ (batch/report.html).
    """
    from niseg.demo import run_demo

    with _progress(quiet, "demo") as update, _report_warnings(quiet):
        summary = run_demo(out, seed=seed, overwrite=overwrite, progress=update)
    if not quiet:
        typer.echo(f"Dice on the test image: {summary['metrics']['dice']:.3f}")
        typer.echo(f"report: {summary['report']}")
        typer.echo(f"batch report: {summary['batch_report']}")
