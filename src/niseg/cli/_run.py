"""`niseg run`: apply a recipe to many inputs on Dask workers, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import OverwriteOpt, QuietOpt, _progress, _report_warnings, _stderr, app


@app.command("run")
def run_command(
    recipe: Annotated[str, typer.Argument(help=(
        "Recipe file (YAML): the steps to apply to every input, e.g. read, normalize, "
        "clean_spots, threshold / cluster / classify, postprocess, label, measure, write. "
        "See docs/batch.md; it is checked completely before anything runs."))],
    inputs: Annotated[list[str], typer.Argument(help=(
        "Input images: files, folders or globs (quote globs), in natural sort order. With "
        "read: {chunks: ...} in the recipe, each input is one volume (a Zarr store, "
        "file.h5::/dataset, a TIFF stack or a folder of slices) processed chunk by chunk."))],
    out: Annotated[str, typer.Option("--out", "-o", help=(
        "Run folder. Outputs mirror the inputs' paths below their common folder; the folder "
        "also gets recipe.yaml, manifest.jsonl (finished inputs) and measurements.csv/.json."))],
    workers: Annotated[int, typer.Option("--workers", help=(
        "Worker processes of the local Dask cluster (one thread each, bound to 127.0.0.1, "
        "no dashboard)."))] = 1,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help=(
        "Use an existing Dask cluster at this address, e.g. tcp://10.0.0.5:8786, instead of "
        "a local one."))] = None,
    scheduler_file: Annotated[str | None, typer.Option("--scheduler-file", help=(
        "Use the existing Dask cluster described by this scheduler file "
        "(dask scheduler --scheduler-file)."))] = None,
    resume: Annotated[bool, typer.Option("--resume", help=(
        "Continue a stopped run in the --out folder: inputs whose outputs are recorded as "
        "complete are skipped, the rest are done again."))] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help=(
        "Stop at the first input that fails (default: report it, go on with the others, and "
        "exit with status 1)."))] = False,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> int:
    """Run a recipe over many images, on this computer or an existing Dask cluster.

    Every input is read, processed by the recipe's steps and written under --out; per-input
    measurements go to measurements.csv. A step with 'fit: global' (a threshold) is fitted on
    all inputs first, so the series is segmented consistently. A run stopped at any point
    (Ctrl-C, a killed job) continues with --resume and loses nothing. A recipe with
    'read: {chunks: N}' segments volumes larger than memory chunk by chunk (results equal to
    the in-memory ones, Zarr outputs; resumed per chunk). Exit status 1 when some inputs
    failed (they are listed), 2 for a bad recipe or argument.
    """
    from niseg.batch import load_recipe, run_recipe

    if workers < 1:
        raise ValueError(f"--workers must be a positive whole number, got {workers}")
    if resume and overwrite:
        raise ValueError("give --resume (continue the run) or --overwrite (start again), "
                         "not both")
    parsed = load_recipe(recipe)
    with _report_warnings(quiet), _progress(quiet, "running") as update:
        report = run_recipe(parsed, inputs, out, workers=workers, scheduler=scheduler,
                            scheduler_file=scheduler_file, resume=resume,
                            fail_fast=fail_fast, overwrite=overwrite,
                            progress=lambda done, total, text: update(done, total, text))
    if not quiet:
        _stderr(f"{len(report.done)} done, {len(report.skipped)} already done, "
                f"{len(report.failed)} failed; results in {Path(out)}")
    for key, source, error in report.failed:
        _stderr(f"failed: {source}: {error}")
    return 1 if report.failed or report.cancelled else 0
