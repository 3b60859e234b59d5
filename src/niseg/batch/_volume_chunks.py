"""Chunk work of a chunked run: read a chunk plus its halo, run the pixel steps, keep the core.

Every function here runs in a batch worker on one chunk and holds only that chunk and its
halo in memory. At the volume's outer border the block is simply cut, as the whole volume is,
so each step sees exactly the neighbourhood (and the same border handling) it sees in memory.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._runner import BatchTask, TaskResult
from ._steps import STEPS
from ._steps_apply import Work, threshold_sample

__all__ = ["VolumeJob", "chunk_index", "chunk_key", "chunk_slices", "compute_block"]


@dataclasses.dataclass(frozen=True)
class VolumeJob:
    """Plain data describing one input of a chunked run (sent to every worker once)."""

    recipe: Any
    state: dict[str, Any]
    source: str
    axes: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    halo: tuple[int, ...]
    out_dir: str
    work: str  # folder of the unfinished outputs, relative to out_dir
    arrays: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> rel path
    structure_rank: int = 0  # connectivity of labels (0 = ndim)


def chunk_key(prefix: str, index: tuple[int, ...]) -> str:
    """``prefix#i.j.k``: a manifest key for one chunk of one phase."""
    return f"{prefix}#{'.'.join(str(i) for i in index)}"


def chunk_index(key: str) -> tuple[int, ...]:
    return tuple(int(v) for v in key.rsplit("#", 1)[1].split("."))


def chunk_slices(job: VolumeJob, index: tuple[int, ...], halo: tuple[int, ...] | None = None
                 ) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """(block to read, core inside the block) of chunk ``index``, the halo cut at the border."""
    halo = job.halo if halo is None else halo
    read, inner = [], []
    for i, n, c, h in zip(index, job.shape, job.chunks, halo):
        start, stop = i * c, min((i + 1) * c, n)
        lo, hi = max(start - h, 0), min(stop + h, n)
        read.append(slice(lo, hi))
        inner.append(slice(start - lo, stop - lo))
    return tuple(read), tuple(inner)


def core_slices(job: VolumeJob, index: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(i * c, min((i + 1) * c, n))
                 for i, n, c in zip(index, job.shape, job.chunks))


def read_block(job: VolumeJob, region: tuple[slice, ...]) -> tuple[np.ndarray, dict]:
    """Read one region of the input lazily (only that region is decompressed)."""
    from niseg.io import read_image

    array, metadata = read_image(job.source, axes=job.axes, lazy=True)
    if tuple(array.shape) != job.shape:
        raise ValueError(f"input '{job.source}' has shape {tuple(array.shape)} but had "
                         f"{job.shape} when the run started")
    # Synchronous: a worker task must not hand its reads to the cluster's scheduler.
    return np.asarray(array[region].compute(scheduler="synchronous")), metadata


def _apply_levels(work: Work, params: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """The threshold step with known levels, as :func:`niseg.threshold.threshold` applies
    them, without its whole-image checks (a chunk of plain background is constant)."""
    from niseg.threshold._apply import apply_levels

    if params["fit"] == "global":
        levels = list(state["threshold"]["levels"])
    elif params["levels"] is not None:
        levels = list(params["levels"])
    else:
        levels = [float(params["value"])]
    image = np.asarray(work.image)
    if params["method"] == "multiotsu":
        work.segmentation = apply_levels(image, levels, foreground=params["foreground"])
        work.class_values = list(range(1, len(levels) + 2))
        work.class_names = [f"class {i + 1}" for i in range(len(levels) + 1)]
    else:
        if len(levels) != 1:
            raise ValueError(f"levels must hold one value for the {params['method']} method")
        labels = apply_levels(image, levels, foreground=params["foreground"]) - 1
        labels[~np.isfinite(image.astype(np.float64, copy=False))] = 0
        work.segmentation = labels.astype(np.uint8)
        work.class_values, work.class_names = [0, 1], ["background", "foreground"]
    return {"levels": levels}


def compute_block(job: VolumeJob, index: tuple[int, ...], *, segment: bool = True
                  ) -> tuple[Work, tuple[slice, ...]]:
    """Run the pixel steps (pre-processing, and with ``segment`` the segmentation) on chunk
    ``index`` plus its halo; return the work and the core's place inside the block."""
    read, inner = chunk_slices(job, index)
    block, metadata = read_block(job, read)
    work = Work(image=block, metadata=dict(metadata))
    for step in job.recipe.steps:
        role = STEPS[step.name].role
        if role == "preprocess":
            STEPS[step.name].apply(work, step.params, job.state)
        elif role == "segment" and segment:
            if step.name == "threshold":
                _apply_levels(work, step.params, job.state)
            else:
                STEPS[step.name].apply(work, step.params, job.state)
    return work, inner


def chunk_file(array_rel: str, index: tuple[int, ...]) -> str:
    """Path (relative to the run folder) of the stored chunk ``index`` of a Zarr array."""
    return f"{array_rel}/c/{'/'.join(str(i) for i in index)}"


def segment_work(task: BatchTask, shared: VolumeJob) -> TaskResult:
    """Worker: segment one chunk and write exactly that chunk of the segmentation Zarr."""
    job, index = shared, chunk_index(task.key)
    work, inner = compute_block(job, index)
    labels = np.asarray(work.segmentation)[inner].astype(np.uint8, copy=False)
    rel = job.arrays["raw"]
    open_zarr(Path(job.out_dir) / rel)[core_slices(job, index)] = labels
    counts = np.bincount(labels.ravel(), minlength=256)
    row = {"classes": work.class_values, "class_names": work.class_names,
           "counts": {str(v): int(counts[v]) for v in work.class_values}}
    return TaskResult(outputs=[chunk_file(rel, index)], row=row)


def open_zarr(path: Path) -> Any:
    """An existing Zarr array opened for chunk writes; every chunk is stored, even one that
    holds only zeros, so that the manifest can check each chunk's file."""
    import zarr

    return zarr.open_array(str(path), mode="r+").with_config({"write_empty_chunks": True})


def sample_chunk(job: VolumeJob, index: tuple[int, ...], step: Any, total: int) -> np.ndarray:
    """Pixels of one chunk (after the steps before the global threshold) for its fit.

    Each chunk contributes its share of ``sample_pixels`` (in proportion to its size), drawn
    with the step's seed and the chunk's position, so the fit does not depend on which
    worker draws which chunk."""
    from ._runner import limit_threads

    with limit_threads():
        work, inner = compute_block(job, index, segment=False)
        core = np.asarray(work.image)[inner]
        flat = int(np.ravel_multi_index(index, [-(-n // c) for n, c in
                                                zip(job.shape, job.chunks)]))
        share = max(1, int(np.ceil(step.params["sample_pixels"] * core.size / total)))
        params = {**step.params, "sample_pixels": share}
        rng = np.random.default_rng([step.params["seed"], flat])
        return threshold_sample(core, params, rng)


def relative(path: Path, root: Path) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")
