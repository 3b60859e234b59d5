"""Volumes larger than memory: peak memory and chunk-exactness of a chunked recipe (issue 7).

Data: a simulated ``N``^3 uint16 volume (default N = 256 and 512; ``--quick``: 32 and 48)
stored as Zarr with chunks of ``--chunk`` (default 128; quick 24) voxels per side: spheres
and cylinders (rods crossing the volume) with soft edges on a background, Poisson counts
(background about 1000, objects about 1600), made slab by slab with a seeded generator so
the simulation itself never holds the volume. A ``PixelClassifier(features="fast",
n_estimators=20)`` is trained on a 64^3 crop with its truth mask; the recipe is
``read: {chunks: C}`` -> ``classify`` (that model) -> ``label`` -> ``write: {suffix: .zarr}``.

Rows, for each size:

1. ``niseg run recipe volume.zarr -o out --workers 1`` in a subprocess: peak memory of the
   whole process tree (the driving process, the Dask nanny and worker: the sum of their
   resident set sizes, sampled with psutil every 0.1 s) against the 2 GB target, and the
   wall time of the command (cluster start included).
2. exactness: the segmentation in a box straddling chunk corners (``box`` voxels per side,
   default 160; quick 24) equals the in-memory prediction of that box (the model run on the
   box padded by its halo, then cut to the box, so both see the same context); at the
   smaller size the whole volume is compared with the in-memory prediction, and the object
   labels with :func:`niseg.objects.label_objects` of it. Target: identical.

    python benchmarks/bench_volume.py [--quick] [--sizes 256 512] [--chunk 128] [--json OUT]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np

MEMORY_TARGET = 2 * 1024**3
RECIPE = """\
niseg_recipe: 1
name: bench volume
steps:
  - read: {{chunks: {chunk}}}
  - classify: {{model: {model}}}
  - label
  - write: {{suffix: .zarr}}
"""


def _objects(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Spheres (z, y, x, radius) and rods along x (y, z, radius) spread over the volume."""
    rng = np.random.default_rng(seed)
    count = max(4, (n // 24) ** 3 // 40)
    spheres = np.column_stack([rng.uniform(0, n, (count, 3)), rng.uniform(4, 12, count)])
    rods = np.column_stack([rng.uniform(0, n, (max(2, n // 64), 2)),
                            rng.uniform(3, 6, max(2, n // 64))])
    return spheres, rods


def phantom_slab(n: int, z0: int, z1: int, spheres: np.ndarray, rods: np.ndarray
                 ) -> np.ndarray:
    """Fraction of object (0..1, soft 1-voxel edge) in slices ``z0:z1`` of the volume."""
    inside = np.zeros((z1 - z0, n, n), np.float32)
    for cz, cy, cx, r in spheres:
        lo = [max(int(c - r - 1), b) for c, b in ((cz, z0), (cy, 0), (cx, 0))]
        hi = [min(int(c + r + 2), b) for c, b in ((cz, z1), (cy, n), (cx, n))]
        if any(h <= low for low, h in zip(lo, hi)):
            continue
        z, y, x = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        d = np.sqrt((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2)
        view = inside[lo[0] - z0:hi[0] - z0, lo[1]:hi[1], lo[2]:hi[2]]
        np.maximum(view, np.clip(r - d + 0.5, 0, 1), out=view)
    z, y = np.ogrid[z0:z1, 0:n]
    for cy, cz, r in rods:
        d = np.sqrt((z - cz) ** 2 + (y - cy) ** 2)
        np.maximum(inside, np.clip(r - d + 0.5, 0, 1)[:, :, None], out=inside)
    return inside


def make_volume(path: Path, n: int, chunk: int, seed: int = 0) -> Path:
    """Write the ``n``^3 uint16 phantom to a Zarr store, ``chunk`` slices at a time."""
    import zarr

    spheres, rods = _objects(n, seed)
    array = zarr.create_array(store=str(path), shape=(n, n, n), chunks=(chunk,) * 3,
                              dtype=np.uint16, zarr_format=3)
    array.attrs.update({"niseg": {"axes": "zyx", "pixel_size": [10.0] * 3, "unit": "um"}})
    for z0 in range(0, n, chunk):
        z1 = min(z0 + chunk, n)
        inside = phantom_slab(n, z0, z1, spheres, rods)
        rng = np.random.default_rng([seed, z0])
        array[z0:z1] = rng.poisson(1000.0 + 600.0 * inside).astype(np.uint16)
    return path


def truth_crop(n: int, box: tuple[slice, ...], seed: int = 0) -> np.ndarray:
    spheres, rods = _objects(n, seed)
    inside = phantom_slab(n, box[0].start, box[0].stop, spheres, rods)
    return (inside[:, box[1], box[2]] >= 0.5).astype(np.uint8)


def train_model(volume: Path, n: int, out: Path) -> Path:
    from niseg.classify import PixelClassifier
    from niseg.io import read_image
    from niseg.models import save_model

    image, _ = read_image(volume, lazy=True)
    # Around the first rod, so the crop holds both classes.
    side = min(64, n)
    _, rods = _objects(n, 0)
    cy, cz = (int(np.clip(c - side // 2, 0, n - side)) for c in rods[0][:2])
    x0 = (n - side) // 2
    box = (slice(cz, cz + side), slice(cy, cy + side), slice(x0, x0 + side))
    crop = np.asarray(image[box].compute(scheduler="synchronous"))
    model = PixelClassifier(features="fast", n_estimators=20, n_jobs=1, random_state=0)
    model.fit(crop, masks=truth_crop(n, box))
    save_model(model, out)
    return out


def tree_rss(proc: Any) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def measured_run(recipe: Path, volume: Path, out: Path) -> dict[str, Any]:
    """``niseg run`` in a subprocess; peak summed RSS of its process tree and wall time."""
    import psutil

    launcher = "import sys; from niseg.cli import main; sys.exit(main(sys.argv[1:]))"
    command = [sys.executable, "-c", launcher, "run", str(recipe), str(volume), "-o",
               str(out), "--workers", "1", "-q"]
    start = time.perf_counter()
    proc = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    _, err = proc.communicate()
    return {"status": proc.returncode, "peak_bytes": peak, "wall_s": wall,
            "stderr": err.decode(errors="replace")[-2000:]}


def in_memory_prediction(model_path: Path, volume: Path, box: tuple[slice, ...]
                         ) -> np.ndarray:
    """The model on ``box`` padded by its halo (clipped at the border), cut to ``box``."""
    from niseg.io import read_image
    from niseg.models import load_model

    model = load_model(model_path)
    model.n_jobs = 2
    image, _ = read_image(volume, lazy=True)
    halo = np.broadcast_to(np.asarray(model.halo), (3,))
    read = tuple(slice(max(s.start - h, 0), min(s.stop + h, n))
                 for s, h, n in zip(box, halo, image.shape))
    block = np.asarray(image[read].compute(scheduler="synchronous"))
    labels = np.asarray(model.predict(block))
    inner = tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(box, read))
    return labels[inner]


def compare(model: Path, volume: Path, out: Path, n: int, box_side: int, chunk: int,
            whole: bool) -> dict[str, Any]:
    from niseg.io import read_image
    from niseg.objects import label_objects

    result, _ = read_image(out / "volume.zarr", lazy=True)
    if whole:
        box = (slice(0, n),) * 3
    else:
        # Centred on a chunk corner, so the box takes parts of eight chunks.
        corner = chunk * max(1, (n // 2) // chunk)
        start = max(0, min(corner - box_side // 2, n - box_side))
        box = (slice(start, start + box_side),) * 3
    expected = in_memory_prediction(model, volume, box)
    got = np.asarray(result[box].compute(scheduler="synchronous"))
    figures: dict[str, Any] = {"box": [[s.start, s.stop] for s in box],
                               "segmentation_equal": bool(np.array_equal(got, expected)),
                               "differing_voxels": int(np.count_nonzero(got != expected)),
                               "foreground_fraction": float(np.mean(expected == 1))}
    if whole:
        objects, _ = read_image(out / "volume_objects.zarr")
        figures["labels_equal"] = bool(np.array_equal(objects, label_objects(expected)))
        figures["objects"] = int(objects.max())
    return figures


def run_size(work: Path, n: int, chunk: int, box_side: int, whole: bool,
             model: Path | None) -> tuple[dict[str, Any], Path]:
    folder = work / f"n{n}"
    folder.mkdir()
    print(f"simulating {n}^3 ...", file=sys.stderr, flush=True)
    volume = make_volume(folder / "volume.zarr", n, chunk)
    if model is None:
        model = train_model(volume, n, work / "model.niseg")
    recipe = folder / "recipe.yaml"
    recipe.write_text(RECIPE.format(chunk=chunk, model=model))
    print(f"niseg run on {n}^3 ...", file=sys.stderr, flush=True)
    figures = measured_run(recipe, volume, folder / "out")
    if figures["status"] != 0:
        raise RuntimeError(f"niseg run failed on {n}^3: {figures['stderr']}")
    print(f"comparing with the in-memory prediction ({n}^3) ...", file=sys.stderr, flush=True)
    figures.update(compare(model, volume, folder / "out", n, box_side, chunk, whole))
    figures.update(n=n, chunk=chunk)
    shutil.rmtree(folder, ignore_errors=True)
    return figures, model


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs=2, help="two volume sides (default 256 512; "
                   "quick 32 48)")
    p.add_argument("--chunk", type=int, help="chunk side (default 128; quick 24)")
    p.add_argument("--box", type=int, help="side of the compared box (default 160; quick 24)")
    args = p.parse_args(argv)
    sizes = args.sizes or ((32, 48) if args.quick else (256, 512))
    chunk = args.chunk or (24 if args.quick else 128)
    box_side = args.box or (24 if args.quick else 160)
    info = _common.machine()
    print(_common.header("Chunked recipe on a volume: peak memory and exactness", info))
    work = Path(tempfile.mkdtemp(prefix="niseg-bench-volume-"))
    results: dict[str, Any] = {"sizes": list(sizes), "chunk": chunk, "runs": []}
    rows = []
    model = None
    try:
        for i, n in enumerate(sizes):
            figures, model = run_size(work, n, chunk, box_side, i == 0, model)
            results["runs"].append(figures)
            peak = figures["peak_bytes"]
            title = f"1 {n}^3 uint16, chunks {chunk}^3, classify (fast) + label, 1 worker"
            rows.append([title, "peak memory (all processes)", _gb(peak), "",
                         f"< {_gb(MEMORY_TARGET)}", "PASS" if peak < MEMORY_TARGET else "FAIL",
                         f"{os.getloadavg()[0]:.1f}"])
            rows.append(["", "wall time (niseg run)", f"{figures['wall_s']:.1f} s", "",
                         "(report)", "", ""])
            what = "whole volume" if i == 0 else f"{box_side}^3 box across chunk corners"
            equal = figures["segmentation_equal"] and figures.get("labels_equal", True)
            rows.append([f"2 {n}^3 {what}", "equal to in-memory",
                         "yes" if equal else f"NO ({figures['differing_voxels']} voxels)",
                         "", "identical", "PASS" if equal else "FAIL", ""])
        first, second = results["runs"]
        ratio = second["peak_bytes"] / max(first["peak_bytes"], 1)
        volume_ratio = (sizes[1] / sizes[0]) ** 3
        results.update(peak_ratio=ratio, volume_ratio=volume_ratio)
        rows.append([f"1 {sizes[0]}^3 -> {sizes[1]}^3", "peak memory ratio",
                     f"{ratio:.2f}x", f"volume {volume_ratio:.2f}x", "(report)", "", ""])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(_common.verdict_table(rows))
    _common.write_json(args.json, {"machine": info, "results": results})
    return 0


def _gb(size: float) -> str:
    return f"{size / 1024**3:.2f} GB"


if __name__ == "__main__":
    sys.exit(main())
