"""A recipe over many inputs on Dask: global fit, per-input work, resumable outputs.

:func:`run_recipe` is what ``niseg run`` calls. The steps are those of
:mod:`niseg.batch._steps_run`; the engine is :func:`niseg.batch._runner.run_tasks`. The run
folder holds, besides the outputs that mirror the inputs: ``recipe.yaml`` (the validated
recipe, written first), ``global.json`` (what a ``fit: global`` step fitted, so a resumed run
applies the same levels without reading every input again), ``manifest.jsonl`` (finished
inputs) and ``measurements.csv``/``.json`` (written at the end of every run, with the failed
inputs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._manifest import MANIFEST_NAME, Manifest
from ._recipe import Recipe
from ._runner import (
    BatchReport,
    BatchTask,
    TaskResult,
    client_scope,
    limit_threads,
    run_tasks,
)
from ._steps_output import (
    check_planned_outputs,
    output_keys,
    write_result,
    write_run_tables,
)
from ._steps_run import (
    apply_recipe,
    fit_global_from_samples,
    global_sample,
    prepare_state,
    read_input,
)

GLOBAL_NAME = "global.json"

__all__ = ["run_recipe"]


def recipe_work(task: BatchTask, shared: dict[str, Any]) -> TaskResult:
    """Worker side of :func:`run_recipe`: read, apply, write one input."""
    recipe, state, out = shared["recipe"], shared["state"], Path(shared["out_dir"])
    image, metadata = read_input(recipe, task.input)
    result = apply_recipe(recipe, image, metadata, state)
    # A resumed run redoes inputs whose outputs may exist but were never recorded.
    outputs = write_result(recipe, result, out, task.key, overwrite=True)
    return TaskResult(outputs=outputs, row=result.measurements)


def _sample_work(recipe: Recipe, state: dict[str, Any], path: str, index: int) -> Any:
    with limit_threads():
        image, metadata = read_input(recipe, path)
        return global_sample(recipe, image, metadata, state, index=index)


def _fit_global(client: Any, recipe: Recipe, state: dict[str, Any], files: Sequence[Path],
                failed: list[tuple[str, str, str]], keys: Sequence[str],
                fail_fast: bool) -> dict[str, Any]:
    """Fit the global step on samples drawn by the workers; unreadable inputs are failed."""
    # In a list (a dict would scatter per key); hash=False as in run_tasks.
    shared = client.scatter([state], broadcast=True, hash=False)[0]
    futures = [client.submit(_sample_work, recipe, shared, str(f), i, pure=False)
               for i, f in enumerate(files)]
    samples = []
    for key, file, future in zip(keys, files, futures):
        try:
            samples.append(future.result())
        except Exception as error:  # noqa: BLE001 - reported per input like the main pass
            failed.append((key, str(file), " ".join(str(error).split())[:500]))
            if fail_fast:
                client.cancel(futures)
                raise ValueError(f"input '{file}' failed while fitting the global step: "
                                 f"{failed[-1][2]}") from None
    if not samples:
        raise ValueError("no input could be read to fit the recipe's global step")
    return fit_global_from_samples(recipe, samples, state)


def run_recipe(
    recipe: Recipe,
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    scheduler_file: str | os.PathLike | None = None,
    resume: bool = False,
    fail_fast: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    client: Any = None,
) -> BatchReport:
    """Apply a recipe to every input on Dask workers, resumably.

    Parameters
    ----------
    recipe : Recipe
    inputs : str, PathLike or sequence of them
        Files, folders or globs (:func:`niseg.io.expand_paths`).
    out_dir : str or PathLike
        Run folder (created if missing); outputs mirror the inputs' paths below their common
        folder.
    workers, scheduler, scheduler_file
        A local cluster of ``workers`` single-threaded processes on 127.0.0.1, or an existing
        cluster (see :func:`niseg.batch._runner.open_client`).
    resume : bool
        Continue a stopped run in ``out_dir``: finished inputs (manifest entries with intact
        outputs) are skipped, the rest redone. The recipe must be the one the run started
        with.
    fail_fast : bool
        Stop at the first failing input instead of reporting it and going on.
    overwrite : bool
        Start afresh in a folder that holds outputs of an earlier run.
    progress : callable, optional
        ``progress(done, total, text)``.
    client : distributed.Client, optional
        An open client to use (the caller closes it).

    Returns
    -------
    BatchReport
        ``failed`` lists inputs that could not be processed (also in
        ``measurements.json``).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from niseg.io import write_image
    >>> from niseg.batch import Recipe
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> image = np.zeros((16, 16), np.float32); image[4:8, 4:8] = 1
    >>> (folder / "in").mkdir()
    >>> _ = write_image(folder / "in" / "a.tif", image)
    >>> recipe = Recipe.from_yaml("niseg_recipe: 1\\nsteps: [threshold, measure, write]")
    >>> report = run_recipe(recipe, folder / "in", folder / "out")  # doctest: +SKIP
    >>> report.done, report.failed  # doctest: +SKIP
    (['a'], [])
    """
    from niseg.io import expand_paths

    if recipe.chunks is not None:
        from ._volume import run_volume

        # Volumes larger than memory: each input is one volume, processed chunk by chunk.
        return run_volume(recipe, inputs, out_dir, workers=workers, scheduler=scheduler,
                          scheduler_file=scheduler_file, resume=resume, fail_fast=fail_fast,
                          overwrite=overwrite, progress=progress, client=client)
    files = expand_paths(inputs if isinstance(inputs, (str, os.PathLike)) else list(inputs))
    keys = output_keys(files)
    out = prepare_run_folder(recipe, out_dir, files, keys, resume=resume, overwrite=overwrite)

    failed: list[tuple[str, str, str]] = []
    with client_scope(client, workers=workers, scheduler=scheduler,
                      scheduler_file=scheduler_file) as active:
        state = prepare_state(recipe)
        if recipe.global_step is not None:
            def fit() -> dict[str, Any]:
                if progress is not None:
                    progress(0, len(files), "fitting the global step on every input")
                fitted = _fit_global(active, recipe, state, files, failed, keys, fail_fast)
                return {"threshold": fitted["threshold"]}

            state = {**state, **global_state(out, resume, fit)}
        bad = {k for k, _, _ in failed}
        tasks = [BatchTask(key=k, input=str(f)) for k, f in zip(keys, files) if k not in bad]
        report = run_tasks(tasks, recipe_work, out, client=active, resume=resume,
                           fail_fast=fail_fast, progress=progress,
                           shared={"recipe": recipe, "state": state, "out_dir": str(out)})
    report.failed = failed + report.failed
    write_report_tables(recipe, report, keys, state, out)
    return report


def prepare_run_folder(recipe: Recipe, out_dir: str | os.PathLike, inputs: Sequence[Any],
                       keys: Sequence[str], *, resume: bool, overwrite: bool) -> Path:
    """Create the run folder, apply the resume/overwrite rules and store ``recipe.yaml``.

    Resuming needs the recipe the run started with. A fresh run refuses a folder holding an
    earlier manifest (unless ``overwrite``), checks that no planned output exists, and
    forgets the old manifest and global fit. Returns the folder as a Path.
    """
    from niseg.io import atomic_output

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stored = out / "recipe.yaml"
    if resume:
        if stored.exists() and Recipe.from_yaml(stored.read_text(encoding="utf-8")) != recipe:
            raise ValueError(f"'{out}' was started with another recipe (see its recipe.yaml); "
                             "resume it with that recipe or choose another output folder")
    else:
        if (out / MANIFEST_NAME).exists() and not overwrite:
            raise ValueError(f"'{out}' holds an earlier batch (manifest.jsonl); pass --resume "
                             "to continue it, --overwrite to start again, or choose another "
                             "output folder")
        check_planned_outputs(recipe, [Path(i) for i in inputs], keys, out,
                              overwrite=overwrite)
        for name in (MANIFEST_NAME, GLOBAL_NAME):
            (out / name).unlink(missing_ok=True)
    if not stored.exists() or not resume:
        with atomic_output(stored, overwrite=True) as tmp:
            tmp.write_text(recipe.to_yaml(), encoding="utf-8")
    return out


def global_state(out: Path, resume: bool, fit: Callable[[], dict[str, Any]]
                 ) -> dict[str, Any]:
    """The global step's fitted state: ``global.json`` of a resumed run, else ``fit()``
    (then saved there, so that a resumed run applies the same levels)."""
    from niseg.io import write_json

    saved = out / GLOBAL_NAME
    if resume and saved.exists():
        return json.loads(saved.read_text(encoding="utf-8"))
    fitted = fit()
    write_json(saved, fitted, overwrite=True)
    return fitted


def write_report_tables(recipe: Recipe, report: BatchReport, keys: Sequence[str],
                        state: dict[str, Any], out: Path) -> None:
    """``measurements.csv``/``.json`` of a run: one row per finished input (in input order)
    with its outputs from the manifest, plus the failures."""
    entries = Manifest(out).entries
    rows = [{"key": k, **report.rows[k],
             "outputs": [o["path"] for o in entries.get(k, {}).get("outputs", [])]}
            for k in keys if k in report.rows]
    write_run_tables(recipe, rows, state, out, overwrite=True,
                     failed=[{"key": k, "input": i, "error": e} for k, i, e in report.failed])
