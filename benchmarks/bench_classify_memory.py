"""Peak memory of a pixel classifier predicting large images with niseg.tiling.predict_tiled.

Used by ``bench_classify.py`` (row 6 of its table); it can also run on its own. A
``PixelClassifier`` (50 trees, ``n_jobs=2``) is trained on the left half of the EM image and
saved as a ``.niseg`` file. For each size S (2048, 4096, 8192 by default) the input is the EM
image mirrored and repeated to S x S, uint8 (its own dtype), stored as a ``.npy`` file. Each
size then runs in a fresh Python process that imports niseg, loads the model, opens the input
with ``np.load(mmap_mode="r")`` and creates the output as a ``.npy`` memory map
(``np.lib.format.open_memmap``, uint8), and reads its baseline, then calls
``predict_tiled(model, image, out=output)`` with the default tile.

What is measured, per process (Linux):

- the peak resident set during the prediction (``VmHWM`` of ``/proc/self/status``:
  anonymous memory plus mapped file pages) minus the resident set just before it. Loading the
  model alone raises the peak above what predicting needs, so the peak is reset first (``5``
  written to ``/proc/self/clear_refs``; the table says if that failed). ``ru_maxrss`` is not
  used: in a child process it never drops below the parent's resident set at the fork. Pages
  of the input and output memory maps count in the resident set once touched, so the input's
  and the output's full sizes in bytes are subtracted:
  ``working = peak - baseline - input bytes - output bytes``. All input pages have been read
  and all but the last tile's output pages written when the last tile reaches its peak, so
  this over-subtracts by at most one tile of output (4 MiB for 2048 x 2048 uint8 tiles).
- a thread reading ``RssAnon`` (anonymous memory only, no file pages) from
  ``/proc/self/status`` every 10 ms; its peak minus its value before predicting needs no
  subtraction but can miss a spike shorter than 10 ms.

The untiled comparison is ``model.predict(image)`` on the 2048 x 2048 input (the memory map
passed as is), measured the same way; its labels are compared pixel for pixel with the tiled
ones.

    python benchmarks/bench_classify_memory.py [--quick] [--features {fast,ilastik}] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "em_mitochondria"
SPLIT = 512
SIZES = (2048, 4096, 8192)
#: --quick: sizes below the default tile (2048^2), so tiles of 512 stand in for it with the same
#: 1, 4 and 16 tiles per image.
QUICK_SIZES = (512, 1024, 2048)
QUICK_TILE = 512
#: Largest ratio between the working memory of the largest and smallest size (issue 5).
SPREAD_TARGET = 1.2


def _reset_peak() -> bool:
    """Set the process's peak resident set to its current one (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class AnonSampler:
    """Background thread keeping the largest ``RssAnon`` seen, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = _status_mib("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _status_mib("RssAnon"))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_mib("RssAnon"))


def mirror_tile(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` repeated with mirrored copies (no seams) and cropped to ``shape``."""
    unit = np.block([[image, image[:, ::-1]], [image[::-1], image[::-1, ::-1]]])
    reps = (-(-shape[0] // unit.shape[0]), -(-shape[1] // unit.shape[1]))
    return np.tile(unit, reps)[: shape[0], : shape[1]]


def write_input(path: Path, image: np.ndarray, size: int) -> None:
    """The mirrored EM image as a ``size`` x ``size`` .npy file of ``image``'s dtype."""
    data = np.lib.format.open_memmap(path, mode="w+", dtype=image.dtype, shape=(size, size))
    data[...] = mirror_tile(image, (size, size))
    data.flush()
    del data


def train_model(image: np.ndarray, truth: np.ndarray, features: str, path: Path) -> float:
    """Fit on the left half with the dense mask, save to ``path``; return the fit time."""
    from niseg.classify import PixelClassifier
    from niseg.models import save_model

    model = PixelClassifier(features=features, n_estimators=50, n_jobs=2, random_state=0)
    start = time.perf_counter()
    model.fit(image[:, :SPLIT], masks=truth[:, :SPLIT])
    seconds = time.perf_counter() - start
    save_model(model, path)
    return seconds


# ------------------------------------------------------------------------- worker (subprocess)
def worker(variant: str, input_path: Path, model_path: Path, output_path: Path,
           tile: int | None = None) -> dict[str, Any]:
    """Predict in this (fresh) process and return the measurements (see module docstring)."""
    from niseg.models import load_model
    from niseg.tiling import predict_tiled

    model = load_model(model_path)
    image = np.load(input_path, mmap_mode="r")
    output_bytes = image.size * np.dtype(np.uint8).itemsize
    gc.collect()
    reset = _reset_peak()
    baseline = _status_mib("VmHWM")
    anon_baseline = _status_mib("RssAnon")
    sampler = AnonSampler()
    start = time.perf_counter()
    sampler.start()
    if variant == "untiled":
        labels = model.predict(image)
        seconds = time.perf_counter() - start
        peak = _status_mib("VmHWM")
        sampler.stop()
        np.save(output_path, labels.astype(np.uint8, copy=False))
    else:
        out = np.lib.format.open_memmap(output_path, mode="w+", dtype=np.uint8,
                                        shape=image.shape)
        predict_tiled(model, image, tile=tile, out=out)
        seconds = time.perf_counter() - start
        peak = _status_mib("VmHWM")
        sampler.stop()
        out.flush()
    mib = 2.0**20
    return {
        "variant": variant,
        "size": int(image.shape[0]),
        "tile": tile,
        "peak_reset": reset,
        "seconds": seconds,
        "baseline_mib": baseline,
        "peak_mib": peak,
        "input_mib": image.nbytes / mib,
        "output_mib": output_bytes / mib,
        "working_mib": peak - baseline - (image.nbytes + output_bytes) / mib,
        "anon_baseline_mib": anon_baseline,
        "anon_peak_mib": sampler.peak,
        "anon_working_mib": sampler.peak - anon_baseline,
        "file_rss_end_mib": _status_mib("RssFile"),
    }


def run_worker(variant: str, folder: Path, size: int, tile: int | None = None) -> dict[str, Any]:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--worker", variant,
        "--input", str(folder / f"input-{size}.npy"), "--model", str(folder / "model.niseg"),
        "--output", str(folder / f"labels-{variant}-{size}.npy"),
    ]
    if tile:
        command += ["--tile", str(tile)]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the {variant} {size} worker failed (exit status {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------- the parent
def measure(image: np.ndarray, truth: np.ndarray, folder: Path, *, features: str,
            sizes: tuple[int, ...], tile: int | None = None) -> dict[str, Any]:
    """Train, write the inputs and run every worker; return all figures (no printing)."""
    fit_s = train_model(image, truth, features, folder / "model.niseg")
    for size in sorted(set(sizes) | {min(sizes)}):
        write_input(folder / f"input-{size}.npy", image, size)
    tiled = []
    for size in sizes:
        tiled.append(run_worker("tiled", folder, size, tile))
    smallest = min(sizes)
    untiled = run_worker("untiled", folder, smallest)
    a = np.load(folder / f"labels-untiled-{smallest}.npy", mmap_mode="r")
    b = np.load(folder / f"labels-tiled-{smallest}.npy", mmap_mode="r")
    differ = int(np.count_nonzero(np.asarray(a) != np.asarray(b)))
    working = [r["working_mib"] for r in tiled]
    anon = [r["anon_working_mib"] for r in tiled]
    return {
        "features": features,
        "tile": tile,
        "fit_s": fit_s,
        "tiled": tiled,
        "untiled": untiled,
        "untiled_vs_tiled_differ": differ,
        "spread": max(working) / min(working),
        "anon_spread": max(anon) / min(anon),
        "passed": max(working) / min(working) <= SPREAD_TARGET,
    }


def memory_table(result: dict[str, Any]) -> str:
    rows = []
    for r in [*result["tiled"], result["untiled"]]:
        name = (f"predict_tiled(tile={r['tile'] or 'default'}, out=.npy memmap)"
                if r["variant"] == "tiled" else "untiled model.predict(image)")
        rows.append([
            f"{r['size']} x {r['size']}", name, _common.fmt_time(r["seconds"]),
            f"{r['size'] ** 2 / r['seconds'] / 1e6:.2f}", f"{r['baseline_mib']:.0f}",
            f"{r['peak_mib']:.0f}", f"{r['input_mib'] + r['output_mib']:.0f}",
            f"{r['working_mib']:.0f}", f"{r['anon_working_mib']:.0f}",
        ])
    headers = ["image", "call", "time", "Mpx/s", "baseline MiB", "peak MiB", "in+out MiB",
               "working MiB", "RssAnon MiB"]
    table = _common.table(headers, rows, [False, False] + [True] * 7)
    if not all(r["peak_reset"] for r in [*result["tiled"], result["untiled"]]):
        table += ("\n(the peak could not be reset: 'peak' includes loading the model, so "
                  "'working' understates)")
    return table


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--features", choices=["fast", "ilastik"], default="fast",
                   help="feature preset of the model (default fast; ilastik takes 3x longer)")
    p.add_argument("--worker", choices=["tiled", "untiled"], help=argparse.SUPPRESS)
    p.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--tile", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.input, args.model, args.output, args.tile)))
        return 0

    import shutil
    import tempfile

    from bench_classify import load_em

    image, truth = load_em()
    info = _common.machine()
    print(_common.header("PixelClassifier + predict_tiled: peak memory by image size", info))
    folder = Path(tempfile.mkdtemp(prefix="niseg-bench-classify-mem-"))
    try:
        result = measure(image, truth, folder, features=args.features,
                         sizes=QUICK_SIZES if args.quick else SIZES,
                         tile=QUICK_TILE if args.quick else None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(memory_table(result))
    print(f"\nspread of working memory over sizes: {result['spread']:.2f} (target <= "
          f"{SPREAD_TARGET}: {'PASS' if result['passed'] else 'FAIL'}); RssAnon spread "
          f"{result['anon_spread']:.2f}; untiled and tiled labels at "
          f"{result['untiled']['size']}^2: {result['untiled_vs_tiled_differ']} pixels differ; "
          f"model fitted in {result['fit_s']:.1f} s")
    _common.write_json(args.json, {"benchmark": "classify_memory", "machine": info, **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
