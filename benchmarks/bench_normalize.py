"""niseg.preprocess.normalize against the plain single-frame (I - DC) / (OB - DC).

Accuracy: simulated neutron radiographs (256 x 256, default phantom, no blur) at 10^2, 10^3
and 10^4 open-beam counts per pixel, plus a dark current of 100 counts with Gaussian read
noise (sigma 3). niseg combines 5 open-beam and 5 dark frames (median, the default); the
baseline divides by one open-beam frame after subtracting one dark frame, as a script built
on tomopy.normalize or NeuNorm with single reference frames would. Errors are region means of
T against the exact transmission, over each material region and the open beam (eroded by two
pixels): the largest relative error over regions with T >= 0.05, and the largest absolute
error over all regions (the cadmium disc has T ~ 0.003).

Speed: a 20 x 1024 x 1024 float32 stack, one combined open-beam and one dark frame, niseg
against the NumPy broadcast ``(stack - dc) / (ob - dc)``, with peak extra memory from
tracemalloc.

    python benchmarks/bench_normalize.py [--quick] [--json OUT]
"""

from __future__ import annotations

import sys
import tracemalloc
from typing import Any

import _common
import numpy as np
from scipy import ndimage

from niseg.preprocess import normalize
from niseg.simulate import default_phantom, simulate_radiograph

COUNTS = (1e2, 1e3, 1e4)
N_REFERENCE = 5
DARK_LEVEL = 100.0
READ_NOISE = 3.0


def make_experiment(counts: float, size: int, pixel_um: float) -> dict[str, Any]:
    phantom = default_phantom(seed=0, size_cm=size * pixel_um * 1e-4)
    rng = np.random.default_rng(int(counts))

    def dark() -> np.ndarray:
        return (DARK_LEVEL + rng.normal(0.0, READ_NOISE, (size, size))).astype(np.float32)

    rad = simulate_radiograph(size=size, counts=counts, pixel_size_um=pixel_um,
                              phantom=phantom, seed=0)
    opens = [simulate_radiograph(size=size, counts=counts, pixel_size_um=pixel_um,
                                 phantom=phantom, seed=1 + k).open_beam + dark()
             for k in range(N_REFERENCE)]
    return {"rad": rad, "sample": rad.image + dark(), "opens": opens,
            "darks": [dark() for _ in range(N_REFERENCE)]}


def region_errors(t: np.ndarray, rad: Any) -> tuple[float, float]:
    worst_rel, worst_abs = 0.0, 0.0
    for label in range(len(rad.metadata["classes"]) + 1):
        mask = ndimage.binary_erosion(rad.truth == label, iterations=2)
        if mask.sum() < 20:
            continue
        truth = float(rad.transmission[mask].mean())
        got = float(np.nanmean(t[mask]))
        worst_abs = max(worst_abs, abs(got - truth))
        if truth >= 0.05:
            worst_rel = max(worst_rel, abs(got / truth - 1.0))
    return worst_rel, worst_abs


def accuracy(size: int) -> list[dict[str, Any]]:
    rows = []
    for counts in COUNTS:
        exp = make_experiment(counts, size, pixel_um=25600.0 / size)
        t, _ = normalize(exp["sample"], exp["opens"], exp["darks"])
        with np.errstate(divide="ignore", invalid="ignore"):
            base = (exp["sample"] - exp["darks"][0]) / (exp["opens"][0] - exp["darks"][0])
        ours = region_errors(t, exp["rad"])
        theirs = region_errors(base, exp["rad"])
        rows.append({"counts": counts, "niseg_rel": ours[0], "niseg_abs": ours[1],
                     "baseline_rel": theirs[0], "baseline_abs": theirs[1]})
    return rows


def peak_memory(func: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = func()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def speed(frames: int, size: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    stack = rng.poisson(1000.0, (frames, size, size)).astype(np.float32)
    ob = rng.poisson(1100.0, (size, size)).astype(np.float32)
    dc = np.full((size, size), DARK_LEVEL, np.float32)

    def ours() -> np.ndarray:
        return normalize(stack, ob, dc, frame_axis=0)[0]

    def naive() -> np.ndarray:
        return (stack - dc) / (ob - dc)

    ours()  # first-call imports
    t_ours, a = _common.best_time(ours, repeats=5, budget=3.0)
    t_naive, b = _common.best_time(naive, repeats=5, budget=3.0)
    _, mem_ours = peak_memory(ours)
    _, mem_naive = peak_memory(naive)
    return {"shape": list(stack.shape), "niseg_s": t_ours, "numpy_s": t_naive,
            "niseg_peak_mib": mem_ours / 2**20, "numpy_peak_mib": mem_naive / 2**20,
            "max_abs_diff": float(np.nanmax(np.abs(a - b)))}


def main(argv: list[str] | None = None) -> int:
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    info = _common.machine()
    size = 128 if args.quick else 256
    frames, side = (5, 512) if args.quick else (20, 1024)
    print(_common.header("niseg normalize: accuracy and speed", info))

    rows = accuracy(size)
    print(f"Region-mean error of T vs exact transmission, {size}x{size}, "
          f"niseg = median of {N_REFERENCE} open-beam and {N_REFERENCE} dark frames, "
          "baseline = one of each")
    print(_common.table(
        ["counts/pixel", "niseg rel. (T>=0.05)", "baseline rel.", "niseg abs.", "baseline abs."],
        [[f"{r['counts']:.0e}", f"{100 * r['niseg_rel']:.2f} %",
          f"{100 * r['baseline_rel']:.2f} %", f"{r['niseg_abs']:.4f}",
          f"{r['baseline_abs']:.4f}"] for r in rows],
        [True, True, True, True, True]))
    target = rows[-1]["niseg_rel"] < 0.01
    print(f"\ntarget at 1e4 counts (region means within 1 %): {'met' if target else 'MISSED'}\n")

    timing = speed(frames, side)
    print(f"Stack {tuple(timing['shape'])} float32, one open-beam and one dark frame")
    print(_common.table(
        ["", "seconds", "peak extra memory"],
        [["niseg normalize", _common.fmt_time(timing["niseg_s"]),
          f"{timing['niseg_peak_mib']:.0f} MiB"],
         ["numpy (stack - dc) / (ob - dc)", _common.fmt_time(timing["numpy_s"]),
          f"{timing['numpy_peak_mib']:.0f} MiB"]],
        [False, True, True]))
    print(f"speed-up {_common.fmt_ratio(timing['numpy_s'] / timing['niseg_s'])}, "
          f"largest difference {timing['max_abs_diff']:.2g}")
    _common.write_json(args.json, {"machine": info, "accuracy": rows, "speed": timing})
    return 0


if __name__ == "__main__":
    sys.exit(main())
