"""Spectral (time-of-flight) clustering: niseg's default next to scikit-learn KMeans on raw spectra.

Data: transmission cubes of iron, copper and aluminium plates whose white-beam transmission
is equal (``niseg.simulate.simulate_tof`` layout and spectra, 1-6 Å, Poisson counts with 20
open-beam counts in the brightest bin), divided by the expected open-beam spectrum. The open
beam is one of the K = 4 clusters; ARI is over all pixels against the simulator's truth.

1. Low counts: 128 x 128 x 200 bins (64 x 64 with --quick).
2. Big: 512 x 512 x B bins, written as an NPY file (B = 500 by default,
   --big-bins 2000 for the 2 GB cube of the issue; 128 x 128 x 200 with --quick).

Each method runs in a fresh subprocess; its time excludes imports, its peak memory is the
process's peak resident size (VmHWM; imports included, the first row gives that floor). niseg reads the NPY
file in blocks of rows (plain reads: a memmap works too, but its touched pages would count
as resident); KMeans (scikit-learn defaults, random_state 0) needs the whole
(pixels, bins) matrix in memory.

    python benchmarks/bench_cluster_spectra.py [--quick] [--big-bins B] [--json OUT]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np


def _write_cube(path: Path, truth_path: Path, shape: tuple[int, int], n_bins: int,
                counts: float, seed: int) -> None:
    """Write a noisy transmission cube (yxl) block by block, never whole in memory."""
    from niseg.simulate import simulate_tof

    # The plate layout depends only on shape and seed, the spectra only on the bins.
    truth = simulate_tof(shape=shape, n_bins=2, noise=False, seed=seed).truth
    spectra = simulate_tof(shape=(16, 16), n_bins=n_bins, counts=counts, noise=False, seed=seed)
    per_class = np.vstack([np.ones(n_bins), spectra.class_transmission])
    open_expected = spectra.open_beam[0, 0].astype(np.float64)
    cube = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                     shape=(*shape, n_bins))
    rng = np.random.default_rng(seed + 1)
    step = max(1, int(64 * 2**20 // (shape[1] * n_bins * 8)))
    for y in range(0, shape[0], step):
        expected = open_expected * per_class[truth[y:y + step]]
        cube[y:y + step] = rng.poisson(expected) / open_expected
    cube.flush()
    del cube
    np.save(truth_path, truth)


class _NpyRows:
    """Row blocks of an NPY file read with plain file reads.

    A ``numpy.memmap`` works with ``cluster_spectra`` as well, but every page it touches
    counts as resident memory (reclaimable page cache), which would hide the working memory.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            self.shape, fortran, self.dtype = read_header(fh)
            self.offset = fh.tell()
        if fortran:
            raise ValueError(f"{path} is stored in Fortran order")
        self.ndim = len(self.shape)

    def __getitem__(self, index: tuple[slice, ...]) -> np.ndarray:
        y0, y1, _ = index[0].indices(self.shape[0])
        row = int(np.prod(self.shape[1:]))
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + y0 * row * self.dtype.itemsize)
            block = np.fromfile(fh, dtype=self.dtype, count=(y1 - y0) * row)
        return block.reshape((y1 - y0, *self.shape[1:]))[(slice(None), *index[1:])]


def _worker(method: str, cube_path: str, truth_path: str) -> None:
    from sklearn.metrics import adjusted_rand_score

    truth = np.load(truth_path)
    if method == "floor":
        import sklearn.cluster  # noqa: F401

        import niseg.cluster  # noqa: F401

        _NpyRows(cube_path)
        seconds, labels = 0.0, None
    elif method == "niseg":
        from niseg.cluster import cluster_spectra

        start = time.perf_counter()
        labels, _ = cluster_spectra(_NpyRows(cube_path), classes=4)
        seconds = time.perf_counter() - start
    else:
        from sklearn.cluster import KMeans

        start = time.perf_counter()
        cube = np.load(cube_path)
        labels = KMeans(n_clusters=4, random_state=0).fit_predict(
            cube.reshape(-1, cube.shape[-1])).reshape(truth.shape)
        seconds = time.perf_counter() - start
    peak = _peak_rss()
    ari = None if labels is None else float(adjusted_rand_score(truth.ravel(), labels.ravel()))
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "ari": ari}))


def _peak_rss() -> int:
    """Peak resident memory of this process in bytes.

    VmHWM belongs to this process's own address space; ru_maxrss would also carry the
    parent's resident size at fork time across exec on Linux.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _run(method: str, cube: Path, truth: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--worker", method, str(cube), str(truth)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        _worker(*sys.argv[2:])
        return
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--big-bins", type=int, default=500, help="bins of the big cube")
    args = p.parse_args()
    info = _common.machine()
    print(_common.header("niseg cluster_spectra vs sklearn KMeans on raw spectra", info))
    cases = ([("low counts", (64, 64), 200), ("big (file)", (128, 128), 200)] if args.quick
             else [("low counts", (128, 128), 200), ("big (file)", (512, 512), args.big_bins)])
    rows, results = [], []
    with tempfile.TemporaryDirectory() as folder:
        for name, shape, n_bins in cases:
            cube, truth = Path(folder) / "cube.npy", Path(folder) / "truth.npy"
            start = time.perf_counter()
            _write_cube(cube, truth, shape, n_bins, counts=20.0, seed=0)
            made = time.perf_counter() - start
            size = f"{shape[0]}x{shape[1]}x{n_bins} ({cube.stat().st_size / 2**30:.2f} GiB)"
            for method, label in (("floor", "imports only"),
                                  ("niseg", "niseg cluster_spectra (default)"),
                                  ("kmeans", "sklearn KMeans, raw spectra")):
                r = _run(method, cube, truth)
                results.append({"case": name, "cube": size, "method": label, **r,
                                "cube_written_s": made})
                rows.append([f"{name}, {size}", label,
                             "" if method == "floor" else _common.fmt_time(r["seconds"]),
                             f"{r['peak_bytes'] / 2**20:.0f} MiB",
                             "" if r["ari"] is None else f"{r['ari']:.3f}"])
            cube.unlink()
    print(_common.table(["cube", "method", "time", "peak memory", "ARI"], rows,
                        [False, False, True, True, True]))
    _common.write_json(args.json, {"machine": info, "results": results})


if __name__ == "__main__":
    main()
