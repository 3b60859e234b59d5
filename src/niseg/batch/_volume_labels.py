"""Connected objects of a chunked segmentation, merged across chunk faces.

The approach is dask-image's (``dask_image.ndmeasure.label``): label every chunk on its own,
find which chunk labels touch across each chunk face, join them with a sparse-graph
connected-components pass, and relabel every chunk through the resulting table. Here the
chunk labels are kept in a Zarr array instead of in memory, each chunk is a resumable task,
and objects are numbered in raster order of their first pixel, like
:func:`niseg.objects.label_objects`, so the merged labels equal the in-memory ones exactly.
Objects never join across classes. Memory: one chunk per task; the merge holds one face slab
(two planes across the volume) and a few numbers per object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ._runner import BatchTask, TaskResult
from ._volume_chunks import (
    VolumeJob,
    chunk_file,
    chunk_index,
    compute_block,
    core_slices,
    open_zarr,
)

__all__ = ["block_label_work", "merge_labels", "reduce_measurements", "relabel_work"]


def _structure(job: VolumeJob) -> np.ndarray:
    ndim = len(job.shape)
    return ndi.generate_binary_structure(ndim, job.structure_rank or ndim)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    from niseg.io import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def _stats_path(job: VolumeJob, phase: str, index: tuple[int, ...]) -> str:
    return f"{job.work}/{phase}/{'.'.join(str(i) for i in index)}.npz"


def block_label_work(task: BatchTask, shared: VolumeJob) -> TaskResult:
    """Worker: number the objects of one chunk (per class, 1..n) and note each one's class,
    size and first pixel (its index in the whole volume, raster order)."""
    job, index = shared, chunk_index(task.key)
    out = Path(job.out_dir)
    core = core_slices(job, index)
    seg = np.asarray(open_zarr(out / job.arrays["raw"])[core])
    structure = _structure(job)
    local = np.zeros(seg.shape, dtype=np.int32)
    classes: list[np.ndarray] = []
    offset = 0
    for value in np.unique(seg[seg > 0]):
        part, n = ndi.label(seg == value, structure=structure)
        local[part > 0] = part[part > 0] + offset
        classes.append(np.full(n, value, dtype=np.uint8))
        offset += n
    open_zarr(out / job.arrays["blocks"])[core] = local
    flat = local.ravel()
    values, first = np.unique(flat, return_index=True)
    sizes = np.bincount(flat, minlength=offset + 1)[1:].astype(np.int64)
    keep = values > 0
    # Translation keeps raster order, so a chunk's first pixel of an object is the object's
    # first pixel in the volume among this chunk's pixels.
    coords = np.unravel_index(first[keep], local.shape)
    starts = [s.start for s in core]
    first_global = np.ravel_multi_index(
        tuple(c + s for c, s in zip(coords, starts)), job.shape).astype(np.int64)
    stats = _stats_path(job, "blocks", index)
    _save_npz(out / stats, sizes=sizes, first=first_global,
              classes=np.concatenate(classes) if classes else np.zeros(0, np.uint8))
    # The segmented chunk is listed too: if it is ever redone differently, so is this.
    return TaskResult(outputs=[chunk_file(job.arrays["blocks"], index), stats,
                               chunk_file(job.arrays["raw"], index)],
                      row={"n": int(offset)})


def _face_edges(prov: np.ndarray, seg: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Pairs of provisional labels that touch inside a two-plane slab across a chunk face."""
    edges = []
    for value in np.unique(seg[seg > 0]):
        face = np.where(seg == value, prov, 0)
        mask = face > 0
        common = ndi.label(mask, structure=structure)[0][mask]
        pairs = np.unique(np.stack([common, face[mask]], axis=1), axis=0)
        same = np.flatnonzero(np.diff(pairs[:, 0]) == 0)
        edges.append(np.stack([pairs[same, 1], pairs[same + 1, 1]], axis=1))
    return np.concatenate(edges) if edges else np.zeros((0, 2), np.int64)


def merge_labels(job: VolumeJob, counts: dict[tuple[int, ...], int], *,
                 removal_min: int, label_min: int) -> dict[str, Any]:
    """Join chunk labels across faces and build the table from chunk labels to objects.

    Parameters
    ----------
    job : VolumeJob
    counts : dict
        Objects per chunk (from the chunk tasks).
    removal_min : int
        ``postprocess`` min_size: smaller objects leave the segmentation.
    label_min : int
        ``label`` min_size: smaller objects get no number.

    Returns
    -------
    dict
        ``objects`` (count) and, saved under the work folder, ``offsets``, ``lut``
        (provisional -> object number) and ``removed`` (provisional -> dropped by
        postprocess) as the paths of ``merge.npz``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    out = Path(job.out_dir)
    grid = [-(-n // c) for n, c in zip(job.shape, job.chunks)]
    indices = sorted(counts)
    offsets = np.zeros(grid, dtype=np.int64)
    total = 0
    sizes, first, classes = [], [], []
    for index in indices:
        offsets[index] = total
        total += counts[index]
        with np.load(out / _stats_path(job, "blocks", index)) as data:
            sizes.append(data["sizes"])
            first.append(data["first"])
            classes.append(data["classes"])
    size = np.concatenate([np.zeros(1, np.int64), *sizes])
    firsts = np.concatenate([np.zeros(1, np.int64), *first])
    klass = np.concatenate([np.zeros(1, np.uint8), *classes])
    blocks = open_zarr(out / job.arrays["blocks"])
    raw = open_zarr(out / job.arrays["raw"])
    structure = _structure(job)
    edges = [np.zeros((0, 2), np.int64)]
    for axis, (n, c) in enumerate(zip(job.shape, job.chunks)):
        for boundary in range(c, n, c):
            region = tuple(slice(boundary - 1, boundary + 1) if a == axis else slice(None)
                           for a in range(len(job.shape)))
            local = np.asarray(blocks[region]).astype(np.int64)
            which = np.ix_(*[np.arange(r.start or 0, r.stop if r.stop is not None else m) // k
                             for r, m, k in zip(region, job.shape, job.chunks)])
            prov = np.where(local > 0, local + offsets[which], 0)
            edges.append(_face_edges(prov, np.asarray(raw[region]), structure))
    pairs = np.concatenate(edges)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])),
                       shape=(total + 1, total + 1))
    _, component = connected_components(graph, directed=False)
    n_comp = int(component.max()) + 1 if component.size else 0
    comp_size = np.bincount(component, weights=size, minlength=n_comp).astype(np.int64)
    comp_first = np.full(n_comp, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(comp_first, component[1:], firsts[1:])
    comp_class = np.zeros(n_comp, np.uint8)
    comp_class[component[1:]] = klass[1:]
    background = component[0]
    removed_comp = comp_size < max(removal_min, 0)
    kept = (comp_size >= max(removal_min, label_min, 0)) & ~removed_comp
    kept[background] = False
    removed_comp[background] = False
    order = np.flatnonzero(kept)
    order = order[np.argsort(comp_first[order], kind="stable")]
    number = np.zeros(n_comp, dtype=np.int32)
    number[order] = np.arange(1, order.size + 1, dtype=np.int32)
    lut = number[component]
    removed = removed_comp[component]
    path = f"{job.work}/merge.npz"
    _save_npz(out / path, offsets=offsets, lut=lut, removed=removed,
              classes=comp_class[order], sizes=comp_size[order])
    return {"objects": int(order.size), "path": path,
            "depends": [_stats_path(job, "blocks", index) for index in indices]}


def relabel_work(task: BatchTask, shared: tuple[VolumeJob, dict[str, Any]]) -> TaskResult:
    """Worker: write one chunk of the objects (and of a segmentation without the objects
    that postprocess removed), with per-object sums for measurements."""
    job, info = shared
    index = chunk_index(task.key)
    out = Path(job.out_dir)
    core = core_slices(job, index)
    with np.load(out / info["path"]) as data:
        offset, lut, removed = data["offsets"][index], data["lut"], data["removed"]
    local = np.asarray(open_zarr(out / job.arrays["blocks"])[core]).astype(np.int64)
    prov = np.where(local > 0, local + offset, 0)
    objects = lut[prov]
    outputs = []
    if job.arrays.get("objects"):
        open_zarr(out / job.arrays["objects"])[core] = objects
        outputs.append(chunk_file(job.arrays["objects"], index))
    seg = np.asarray(open_zarr(out / job.arrays["raw"])[core])
    if job.arrays["segmentation"] != job.arrays["raw"]:
        seg = np.where(removed[prov], 0, seg).astype(np.uint8)
        open_zarr(out / job.arrays["segmentation"])[core] = seg
        outputs.append(chunk_file(job.arrays["segmentation"], index))
    counts = np.bincount(seg.ravel(), minlength=256)
    row: dict[str, Any] = {"counts": {str(v): int(counts[v]) for v in np.flatnonzero(counts)}}
    if info.get("measure"):
        stats = _stats_path(job, "measure", index)
        _save_npz(out / stats, **_partial_measures(job, index, objects, info["intensity"]))
        outputs.append(stats)
    # The merge table is listed too: a chunk renumbered with an older table is redone.
    outputs.append(info["path"])
    return TaskResult(outputs=outputs, row=row)


def _partial_measures(job: VolumeJob, index: tuple[int, ...], objects: np.ndarray,
                      intensity: bool) -> dict[str, np.ndarray]:
    """Per-object sums, extremes and boxes of one chunk (reduced over chunks afterwards)."""
    mask = objects > 0
    ids = objects[mask]
    labels, inverse = np.unique(ids, return_inverse=True)
    n = labels.size
    starts = [s.start for s in core_slices(job, index)]
    coords = [c + s for c, s in zip(np.nonzero(mask), starts)]
    result: dict[str, np.ndarray] = {
        "labels": labels, "count": np.bincount(inverse, minlength=n).astype(np.int64)}
    sums, lows, highs = [], [], []
    for c in coords:
        sums.append(np.bincount(inverse, weights=c, minlength=n))
        low = np.full(n, np.iinfo(np.int64).max, np.int64)
        high = np.full(n, -1, np.int64)
        np.minimum.at(low, inverse, c)
        np.maximum.at(high, inverse, c)
        lows.append(low)
        highs.append(high)
    result["sum"] = np.array(sums).reshape(len(coords), n)
    result["low"] = np.array(lows).reshape(len(coords), n)
    result["high"] = np.array(highs).reshape(len(coords), n)
    if intensity:
        work, inner = compute_block(job, index, segment=False)
        image = np.asarray(work.image)[inner]
        if image.shape == objects.shape:
            values = image[mask].astype(np.float64)
            finite = np.isfinite(values)
            result["i_count"] = np.bincount(inverse[finite], minlength=n).astype(np.int64)
            result["i_sum"] = np.bincount(inverse[finite], weights=values[finite], minlength=n)
            i_min = np.full(n, np.inf)
            i_max = np.full(n, -np.inf)
            np.minimum.at(i_min, inverse[finite], values[finite])
            np.maximum.at(i_max, inverse[finite], values[finite])
            result["i_min"], result["i_max"] = i_min, i_max
    return result


def reduce_measurements(job: VolumeJob, info: dict[str, Any], indices: list[tuple[int, ...]],
                        *, class_names: dict[int, str], pixel_size: tuple[float, ...] | None,
                        unit: str | None) -> list[dict[str, Any]]:
    """One row per object from the chunks' partial measurements (the columns of
    :func:`niseg.objects.measure_objects`, except the 2D orientation)."""
    out = Path(job.out_dir)
    k = int(info["objects"])
    ndim = len(job.shape)
    count = np.zeros(k + 1, np.int64)
    sums = np.zeros((ndim, k + 1))
    low = np.full((ndim, k + 1), np.iinfo(np.int64).max, np.int64)
    high = np.full((ndim, k + 1), -1, np.int64)
    i_count = np.zeros(k + 1, np.int64)
    i_sum = np.zeros(k + 1)
    i_min = np.full(k + 1, np.inf)
    i_max = np.full(k + 1, -np.inf)
    has_intensity = False
    for index in indices:
        with np.load(out / _stats_path(job, "measure", index)) as data:
            ids = data["labels"]
            count[ids] += data["count"]
            sums[:, ids] += data["sum"]
            low[:, ids] = np.minimum(low[:, ids], data["low"])
            high[:, ids] = np.maximum(high[:, ids], data["high"])
            if "i_sum" in data:
                has_intensity = True
                i_count[ids] += data["i_count"]
                i_sum[ids] += data["i_sum"]
                i_min[ids] = np.minimum(i_min[ids], data["i_min"])
                i_max[ids] = np.maximum(i_max[ids], data["i_max"])
    with np.load(out / info["path"]) as data:
        classes = data["classes"]
    axes = "zyx"[-ndim:] if ndim <= 3 else [f"a{i}" for i in range(ndim)]
    size_name = "area" if ndim == 2 else "volume"
    voxel = float(np.prod(pixel_size)) if pixel_size is not None else None
    rows = []
    for label in range(1, k + 1):
        c = int(classes[label - 1])
        n = int(count[label])
        row: dict[str, Any] = {"label": label, "class": c,
                               "class_name": class_names.get(c, ""),
                               f"{size_name}_px": n,
                               "equivalent_diameter_px": _diameter(float(n), ndim)}
        centroid = sums[:, label] / max(n, 1)
        for a, value in zip(axes, centroid):
            row[f"centroid_{a}"] = float(value)
        for i, a in enumerate(axes):
            row[f"bbox_{a}0"] = int(low[i, label])
            row[f"bbox_{a}1"] = int(high[i, label]) + 1
        if voxel is not None and pixel_size is not None:
            physical = n * voxel
            row[f"{size_name}_{unit}{ndim}"] = physical
            row[f"equivalent_diameter_{unit}"] = _diameter(physical, ndim)
            for a, value, s in zip(axes, centroid, pixel_size):
                row[f"centroid_{a}_{unit}"] = float(value) * s
        if has_intensity:
            m = int(i_count[label])
            row["mean_intensity"] = float(i_sum[label] / m) if m else float("nan")
            row["min_intensity"] = float(i_min[label]) if m else float("nan")
            row["max_intensity"] = float(i_max[label]) if m else float("nan")
        rows.append(row)
    return rows


def _diameter(size: float, ndim: int) -> float:
    if ndim == 2:
        return float(np.sqrt(4.0 * size / np.pi))
    return float((6.0 * size / np.pi) ** (1.0 / 3.0))
