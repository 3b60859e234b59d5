"""Chunked runs: a recipe over volumes larger than memory, chunk by chunk, resumably.

:func:`run_volume` is what :func:`~niseg.batch.run_recipe` (and ``niseg run``) calls for a
recipe with ``read: {chunks: ...}``. For every input volume, in phases that each run as one
task per chunk on the batch engine (:func:`~niseg.batch._runner.run_tasks`):

1. ``segment``: read the chunk plus the halo the pixel steps need, run them, write exactly the
   chunk into a Zarr array whose chunks are the processing chunks;
2. ``blocks``, ``merge``, ``objects`` (with ``postprocess`` min_size, ``label`` or
   ``measure``): label each chunk, merge labels across chunk faces, renumber every chunk
   (see :mod:`niseg.batch._volume_labels`);
3. pyramid levels (``write: {multiscale: true}``), then the finished Zarr folders are renamed
   into place and the input is recorded.

Every chunk of every phase is appended to ``manifest.jsonl`` (with its stored chunk file's
size and SHA-256) only after it is written, so ``resume=True`` skips finished chunks, redoes
the rest and never trusts a chunk it cannot verify.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from niseg.io._atomic import replace_folder

from ._batch import global_state, prepare_run_folder, write_report_tables
from ._manifest import Manifest
from ._recipe import Recipe
from ._runner import BatchReport, BatchTask, client_scope, run_tasks
from ._steps_output import output_keys
from ._steps_run import fit_global_from_samples, prepare_state
from ._volume_chunks import VolumeJob, chunk_key, sample_chunk, segment_work
from ._volume_labels import block_label_work, merge_labels, reduce_measurements, relabel_work
from ._volume_plan import chunk_grid, chunk_shape_for, pixel_halo
from ._volume_store import (
    create_output,
    niseg_attrs,
    write_pyramid,
)

__all__ = ["run_volume"]

Progress = Callable[[int, int, str], None]


class _InputFailed(Exception):
    """One input could not be processed (message: one line)."""


def _volumes(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise ValueError("inputs is empty; give at least one volume")
    return [os.fspath(i) for i in items]


def _open(recipe: Recipe, source: str) -> tuple[tuple[int, ...], dict[str, Any]]:
    from niseg.io import read_image

    axes = recipe.steps[0].params["axes"]
    try:
        array, metadata = read_image(source, axes=axes, lazy=True)
    except (ValueError, TypeError, OSError) as error:
        raise _InputFailed(" ".join(str(error).split())) from None
    found = str(metadata.get("axes") or "")
    if any(letter in found for letter in "cl"):
        raise _InputFailed(f"input '{source}' has axes '{found}'; chunked runs take spatial "
                           "(zyx) and frame (t) axes only")
    return tuple(int(n) for n in array.shape), metadata


def _work_dir(key: str) -> str:
    parent, _, name = key.rpartition("/")
    return f"{parent}/.{name}.work" if parent else f".{name}.work"


def _arrays(recipe: Recipe, job_work: str, out: Path, shape: tuple[int, ...],
            chunks: tuple[int, ...], metadata: dict[str, Any], fresh: bool) -> dict[str, str]:
    """Create (or, resuming, reuse) the Zarr arrays of one input's work folder."""
    names = {s.name for s in recipe.steps}
    write = next((s.params for s in recipe.steps if s.name == "write"), None)
    multiscale = bool(write and write["multiscale"])
    removal = any(s.name == "postprocess" and s.params["min_size"] > 1 for s in recipe.steps)
    labels = removal or bool(names & {"label", "measure"})
    work = out / job_work
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    plan: dict[str, tuple[str, Any, bool, dict]] = {}
    seg_meta = niseg_attrs(metadata)
    obj_meta = niseg_attrs({k: v for k, v in metadata.items() if k not in ("classes",
                                                                         "recipe")})
    plan["segmentation"] = ("seg.zarr", np.uint8, multiscale, seg_meta)
    if removal:
        plan["raw"] = ("raw.zarr", np.uint8, False, {})
    if labels:
        plan["blocks"] = ("blocks.zarr", np.int32, False, {})
    if names & {"label", "measure"} and write and write["objects"]:
        plan["objects"] = ("objects.zarr", np.int32, multiscale, obj_meta)
    arrays = {}
    for name, (store, dtype, ms, attrs) in plan.items():
        path = work / store
        rel = f"{store}/0" if ms else store
        if not (work / rel / "zarr.json").exists():
            rel = create_output(path, shape, chunks, dtype, multiscale=ms, attrs=attrs)
        arrays[name] = f"{job_work}/{rel}"
    arrays.setdefault("raw", arrays["segmentation"])
    return arrays


def _phase(name: str, key: str, job: Any, indices: list[tuple[int, ...]], work: Callable,
           shared: Any, out: Path, active: Any, fail_fast: bool,
           progress: Progress | None) -> BatchReport:
    tasks = [BatchTask(key=chunk_key(f"{key}#{name}", i), input=job.source) for i in indices]
    step = None if progress is None else (
        lambda done, total, text: progress(done, total, f"{key} {name}: {text}"))
    report = run_tasks(tasks, work, out, shared=shared, client=active, resume=True,
                       fail_fast=fail_fast, progress=step)
    if report.failed:
        raise _InputFailed(report.failed[0][2])
    if report.cancelled:
        raise _InputFailed("stopped by --fail-fast")
    return report


def _fit_global(active: Any, recipe: Recipe, jobs: list[VolumeJob]) -> dict[str, Any]:
    _, step, _ = recipe.stages()
    futures = []
    for job in jobs:
        total = int(np.prod(job.shape))
        for index in chunk_grid(job.shape, job.chunks):
            futures.append(active.submit(sample_chunk, job, index, step, total, pure=False))
    samples = active.gather(futures)
    return fit_global_from_samples(recipe, samples, {})["threshold"]


def run_volume(
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
    progress: Progress | None = None,
    client: Any = None,
) -> BatchReport:
    """Apply a chunked recipe (``read: {chunks: ...}``) to volumes larger than memory.

    Each input is one volume (or large image) read lazily (Zarr, HDF5, TIFF stacks); each
    worker task holds one chunk plus its halo, and the result equals running the recipe on
    the whole volume in memory (connected objects are merged across chunk faces). Outputs
    are Zarr, chunk-aligned, with ``write: {multiscale: true}`` as OME-Zarr pyramids.

    Parameters
    ----------
    recipe : Recipe
        A recipe whose ``read`` step has ``chunks``.
    inputs : str, PathLike or sequence of them
        The input volumes, one path each (a Zarr store, an HDF5 ``file.h5::/dataset``, a
        TIFF stack or a folder of slices).
    out_dir : str or PathLike
        Run folder; outputs mirror the inputs' names (``<name>.zarr``,
        ``<name>_objects.zarr``, ``<name>_objects.csv``) beside ``recipe.yaml``,
        ``manifest.jsonl`` and ``measurements.csv``/``.json``.
    workers, scheduler, scheduler_file, client
        The Dask cluster, as for :func:`~niseg.batch.run_recipe`.
    resume : bool
        Continue a stopped run: finished chunks and inputs are skipped, the rest redone.
    fail_fast : bool
        Stop at the first failure instead of going on with the next input.
    overwrite : bool
        Start afresh in a folder with outputs of an earlier run.
    progress : callable, optional
        ``progress(done, total, text)`` per finished chunk.

    Returns
    -------
    BatchReport
        ``done``, ``skipped`` and ``failed`` name inputs; ``rows`` their measurements.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from niseg.io import write_image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> volume = np.zeros((20, 24, 28), np.float32); volume[3:15, 5:20, 2:9] = 1
    >>> path = write_image(folder / "v.zarr", volume, {"axes": "zyx"})
    >>> recipe = Recipe.from_yaml("niseg_recipe: 1\\nsteps: [read: {chunks: 8}, "
    ...     "threshold: {method: manual, value: 0.5}, label, write: {suffix: .zarr}]")
    >>> report = run_volume(recipe, path, folder / "out")  # doctest: +SKIP
    >>> report.rows["v"]["objects"]  # doctest: +SKIP
    1
    """
    if recipe.chunks is None:
        raise ValueError("the recipe has no read chunks; run_recipe processes whole files")
    sources = _volumes(inputs)
    keys = output_keys(sources)
    out = prepare_run_folder(recipe, out_dir, sources, keys, resume=resume, overwrite=overwrite)

    report = BatchReport()
    start = time.perf_counter()
    state = prepare_state(recipe)
    manifest = Manifest(out)
    jobs: dict[str, VolumeJob] = {}
    for key, source in zip(keys, sources):
        if resume and manifest.is_finished(key):
            report.skipped.append(key)
            report.rows[key] = manifest.entries[key].get("row", {})
            continue
        try:
            shape, metadata = _open(recipe, source)
            chunks = chunk_shape_for(recipe.chunks, shape, source)
            halo = pixel_halo(recipe.steps, str(metadata["axes"]), state)
        except (_InputFailed, ValueError) as error:
            report.failed.append((key, source, " ".join(str(error).split())))
            if fail_fast:
                break
            continue
        jobs[key] = VolumeJob(recipe=recipe, state=state, source=source,
                              axes=str(metadata["axes"]), shape=shape, chunks=chunks,
                              halo=halo, out_dir=str(out), work=_work_dir(key),
                              structure_rank=_connectivity(recipe) or 0)
        jobs[key] = _with_metadata(jobs[key], metadata)

    with client_scope(client, workers=workers, scheduler=scheduler,
                      scheduler_file=scheduler_file) as active:
        if recipe.global_step is not None and jobs and not (fail_fast and report.failed):
            def fit() -> dict[str, Any]:
                if progress is not None:
                    progress(0, len(jobs), "fitting the global step on samples of every chunk")
                return {"threshold": _fit_global(active, recipe, list(jobs.values()))}

            state = {**state, **global_state(out, resume, fit)}
            jobs = {k: _replace(j, state={**j.state, "threshold": state["threshold"]})
                    for k, j in jobs.items()}
        for key, job in jobs.items():
            if fail_fast and report.failed:
                break
            try:
                row, outputs, seconds = _run_one(recipe, key, job, out, active, fail_fast,
                                                 progress, fresh=not resume)
            except _InputFailed as error:
                report.failed.append((key, job.source, str(error)))
                continue
            manifest = Manifest(out)
            manifest.record(key, input=job.source, outputs=outputs, row=row, seconds=seconds)
            shutil.rmtree(out / job.work, ignore_errors=True)
            report.done.append(key)
            report.rows[key] = row
            report.compute_seconds += seconds
        report.workers = sum(w.get("nthreads", 1) for w in active.scheduler_info(
            n_workers=-1)["workers"].values()) or 1
    report.wall_seconds = time.perf_counter() - start
    write_report_tables(recipe, report, keys, state, out)
    return report


def _connectivity(recipe: Recipe) -> int | None:
    for step in recipe.steps:
        if step.name == "label" or (step.name == "postprocess" and step.params["min_size"]):
            return step.params["connectivity"]
    return None


def _replace(job: VolumeJob, **changes: Any) -> VolumeJob:
    import dataclasses

    return dataclasses.replace(job, **changes)


def _with_metadata(job: VolumeJob, metadata: dict[str, Any]) -> VolumeJob:
    from ._steps_apply import spatial_pixel_size

    pixel_size, unit = spatial_pixel_size(metadata, len(job.shape))
    meta: dict[str, Any] = {"axes": job.axes}
    if pixel_size is not None:
        meta.update(pixel_size=list(pixel_size), unit=unit)
    return _replace(job, state={**job.state, "_metadata": meta})


def _run_one(recipe: Recipe, key: str, job: VolumeJob, out: Path, active: Any,
             fail_fast: bool, progress: Progress | None, *, fresh: bool
             ) -> tuple[dict[str, Any], list[str], float]:
    """All phases of one input; returns its row, its final outputs and the compute time."""
    from niseg.objects import write_table_csv

    from ._steps_output import _planned

    meta = dict(job.state["_metadata"])
    if recipe.name:
        meta["recipe"] = recipe.name
    arrays = _arrays(recipe, job.work, out, job.shape, job.chunks, meta, fresh)
    job = _replace(job, arrays=arrays)
    indices = chunk_grid(job.shape, job.chunks)
    seconds = 0.0
    seg = _phase("segment", key, job, indices, segment_work, job, out, active, fail_fast,
                 progress)
    seconds += seg.compute_seconds
    first = seg.rows[chunk_key(f"{key}#segment", indices[0])]
    class_values, class_names = list(first["classes"]), list(first["class_names"])
    counts = _sum_counts(seg.rows.values())
    objects = None
    object_rows = None
    if "blocks" in arrays:
        removal = max((s.params["min_size"] for s in recipe.steps if s.name == "postprocess"),
                      default=0)
        if removal > 1 and class_values != [0, 1]:
            raise _InputFailed(f"postprocess min_size needs a binary segmentation but "
                               f"'{job.source}' gives classes {class_values}")
        label_min = next((s.params["min_size"] for s in recipe.steps if s.name == "label"), 0)
        blocks = _phase("blocks", key, job, indices, block_label_work, job, out, active,
                        fail_fast, progress)
        seconds += blocks.compute_seconds
        per_chunk = {i: int(blocks.rows[chunk_key(f"{key}#blocks", i)]["n"])
                     for i in indices}
        info = _merged(key, job, out, per_chunk, removal, label_min)
        measure = next((s for s in recipe.steps if s.name == "measure"), None)
        info = {**info, "measure": measure is not None,
                "intensity": bool(measure and measure.params["intensity"])}
        relabel = _phase("objects", key, job, indices, relabel_work, (job, info), out, active,
                         fail_fast, progress)
        seconds += relabel.compute_seconds
        counts = _sum_counts(relabel.rows.values())
        if {s.name for s in recipe.steps} & {"label", "measure"}:
            objects = int(info["objects"])
        if measure is not None:
            pixel_size, unit = _measure_units(measure.params, meta, len(job.shape))
            names = {v: n for v, n in zip(class_values, class_names) if v != 0}
            object_rows = reduce_measurements(job, info, indices, class_names=names,
                                              pixel_size=pixel_size, unit=unit)
    row = _row(job, meta, class_values, class_names, counts, objects)
    planned = dict(_planned(recipe, key))
    outputs: list[str] = []
    if planned:
        write = next(s.params for s in recipe.steps if s.name == "write")
        for kind, array_name in (("segmentation", "segmentation"), ("objects", "objects")):
            if kind not in planned or array_name not in arrays:
                continue
            rel = arrays[array_name]
            store = out / (rel.removesuffix("/0"))
            if write["multiscale"]:
                pyramid_meta = {**meta, "name": Path(planned[kind]).stem}
                write_pyramid(store, job.chunks, pyramid_meta)
            if kind == "segmentation":
                _set_classes(store, write["multiscale"], class_names)
            replace_folder(store, out / planned[kind])
            outputs.append(planned[kind])
        if "table" in planned:
            write_table_csv(out / planned["table"], object_rows or [], overwrite=True)
            outputs.append(planned["table"])
    return row, outputs, seconds


def _merged(key: str, job: VolumeJob, out: Path, per_chunk: dict, removal: int,
            label_min: int) -> dict[str, Any]:
    """Merge once: a finished merge (recorded with its table's checksum) is reused."""
    manifest = Manifest(out)
    merge_key = f"{key}#merge"
    if manifest.is_finished(merge_key):
        return dict(manifest.entries[merge_key]["row"])
    start = time.perf_counter()
    info = merge_labels(job, per_chunk, removal_min=removal, label_min=label_min)
    # Recorded with the chunk tables it was built from: if one is redone, so is the merge.
    depends = info.pop("depends")
    manifest.record(merge_key, input=job.source, outputs=[info["path"], *depends], row=info,
                    seconds=time.perf_counter() - start)
    return info


def _sum_counts(rows: Any) -> dict[int, int]:
    total: dict[int, int] = {}
    for row in rows:
        for value, n in row["counts"].items():
            total[int(value)] = total.get(int(value), 0) + int(n)
    return total


def _measure_units(params: dict[str, Any], meta: dict[str, Any], ndim: int
                   ) -> tuple[tuple[float, ...] | None, str | None]:
    if params["pixel_size"] is not None:
        sizes = list(params["pixel_size"])
        if len(sizes) not in (1, ndim):
            raise _InputFailed(f"measure pixel_size holds {len(sizes)} values but the "
                               f"segmentation has {ndim} axes")
        return tuple(sizes * ndim if len(sizes) == 1 else sizes), params["unit"] or "um"
    size = meta.get("pixel_size")
    unit = params["unit"] or meta.get("unit")
    return (tuple(size), unit) if size is not None else (None, None)


def _set_classes(store: Path, multiscale: bool, class_names: list[str]) -> None:
    import zarr

    arrays = [zarr.open_array(str(store / "0" if multiscale else store), mode="r+")]
    if multiscale:
        group = zarr.open_group(str(store), mode="r+")
        arrays = [node for _, node in group.arrays()]
    for array in arrays:
        attrs = dict(array.attrs.get("niseg") or {})
        attrs["classes"] = list(class_names)
        array.attrs.update({"niseg": attrs})


def _row(job: VolumeJob, meta: dict[str, Any], class_values: list[int],
         class_names: list[str], counts: dict[int, int], objects: int | None
         ) -> dict[str, Any]:
    from ._steps_run import _slug

    size = int(np.prod(job.shape))
    row: dict[str, Any] = {"input": job.source, "shape": list(job.shape),
                           "chunks": list(job.chunks), "halo": list(job.halo)}
    pixel_size = meta.get("pixel_size")
    unit = meta.get("unit")
    if pixel_size is not None:
        row.update(pixel_size=list(pixel_size), unit=unit)
    cell = float(np.prod(pixel_size)) if pixel_size is not None else None
    size_key = f"volume_{unit}3" if len(job.shape) == 3 else f"area_{unit}2"
    for value, name in zip(class_values, class_names):
        slug = _slug(name)
        n = int(counts.get(int(value), 0))
        row[f"{slug}_pixels"] = n
        row[f"{slug}_fraction"] = n / max(size, 1)
        if cell is not None:
            row[f"{slug}_{size_key}"] = n * cell
    if objects is not None:
        row["objects"] = objects
    if job.state.get("threshold"):
        row["threshold_levels"] = list(job.state["threshold"]["levels"])
    return row
