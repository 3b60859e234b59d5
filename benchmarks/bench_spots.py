"""Spot cleaning: niseg's cleaners next to the lectures' baseline, against exact ground truth.

Data: ``niseg.simulate.simulate_spots`` radiographs (1024 x 1024, seeds 0 and 1, pooled;
256 x 256 and seed 0 with --quick) at 100, 1 000 and 10 000 counts per pixel, every other
parameter at its default (spots cover 0.3 % of the pixels, 1-10 px, amplitudes 6-2000 noise
deviations, 10 % dark, detector blur 1 px). Nothing is tuned per level.

1. Quality, bright spots (the default polarity), scored against the bright-spot truth:
   pixel-wise precision, recall and F1, and the RMSE factor
   RMSE(raw, spot-free) / RMSE(cleaned, spot-free) over all pixels but the dark spots
   (which a bright cleaner is not asked to touch). The lectures' baseline
   (``|f - median_5x5| > k``, replaced by the median) gets the k with the best F1 on the
   1 000-count image (searched on that image only) and keeps it at every level.
   Targets for the default method (auto): precision >= 0.9, recall >= 0.9, RMSE factor >= 5
   at every level.
2. Bright and dark spots (polarity both), against the full truth, and the dark spots alone.
3. The k-NN detector (trained self-supervised on each image) against the baseline, as a
   confusion matrix like the lecture's, and against the truth.
4. Speed: cleaning a 2048 x 2048 uint16 image (detection and replacement, 5 x 5 window)
   with the default method against ``scipy.ndimage.median_filter`` with the same window,
   in the same process (best of several runs). Target: at least 3x faster.

    python benchmarks/bench_spots.py [--quick] [--json OUT]
"""

from __future__ import annotations

import sys
import time
from typing import Any

import _common
import numpy as np
from scipy import ndimage

from niseg.preprocess import KNNSpotDetector, clean_spots
from niseg.simulate import simulate_spots

LEVELS = (100.0, 1000.0, 10000.0)
METHODS = ("auto", "sigmoid", "morph", "log", "knn")


def scores(truth: np.ndarray, found: np.ndarray) -> dict[str, int]:
    return {
        "tp": int(np.count_nonzero(truth & found)),
        "fp": int(np.count_nonzero(~truth & found)),
        "fn": int(np.count_nonzero(truth & ~found)),
    }


def summarise(counts: dict[str, float]) -> dict[str, float]:
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    factor = np.sqrt(counts["err_raw"] / counts["err_clean"]) if counts["err_clean"] else np.inf
    return {"precision": precision, "recall": recall, "f1": f1, "rmse_factor": float(factor),
            "seconds": counts["seconds"]}


def accumulate(store: dict[str, float], sim: Any, truth: np.ndarray, keep: np.ndarray,
               cleaned: np.ndarray, found: np.ndarray, seconds: float) -> None:
    for key, value in scores(truth, found).items():
        store[key] = store.get(key, 0) + value
    raw = sim.raw.astype(np.float64)
    clean = sim.clean.astype(np.float64)
    store["err_raw"] = store.get("err_raw", 0.0) + float(np.sum((raw - clean)[keep] ** 2))
    store["err_clean"] = store.get("err_clean", 0.0) + float(
        np.sum((cleaned.astype(np.float64) - clean)[keep] ** 2))
    store["seconds"] = store.get("seconds", 0.0) + seconds


def best_baseline_k(sim: Any) -> float:
    """The k of the lectures' baseline with the best F1 on one image (bright spots)."""
    med = ndimage.median_filter(sim.raw, size=5, mode="reflect")
    diff = sim.raw - med
    truth = sim.mask == 1
    candidates = np.unique(np.quantile(diff[diff > 0], np.linspace(0.5, 0.99999, 400)))
    best_k, best_f1 = float(candidates[0]), -1.0
    for k in candidates:
        found = diff > k
        c = scores(truth, found)
        f1 = 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"])
        if f1 > best_f1:
            best_k, best_f1 = float(k), f1
    return best_k


def run_method(sim: Any, method: str, polarity: str, k: float) -> tuple[np.ndarray, np.ndarray,
                                                                          float]:
    kwargs: dict[str, Any] = {"threshold": k} if method == "baseline" else {}
    start = time.perf_counter()
    cleaned, found = clean_spots(sim.raw, method=method, polarity=polarity, return_mask=True,
                                 **kwargs)
    return cleaned, found, time.perf_counter() - start


def fmt(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "inf"


def main(argv: list[str] | None = None) -> int:
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    size, seeds = (256, (0,)) if args.quick else (1024, (0, 1))
    speed_size = 512 if args.quick else 2048
    info = _common.machine()
    print(_common.header("Spot cleaning against ground truth (niseg.simulate.simulate_spots)",
                         info))
    # Speed is measured first, in a fresh process, and printed last.
    big = simulate_spots(size=speed_size, counts=1000.0, seed=0)
    image = np.clip(np.rint(big.raw), 0, 65535).astype(np.uint16)
    t_scipy, _ = _common.best_time(lambda: ndimage.median_filter(image, size=5), repeats=3,
                                   budget=6.0)
    t_auto, (_, speed_found) = _common.best_time(
        lambda: clean_spots(image, return_mask=True), repeats=5, budget=6.0)
    t_both, _ = _common.best_time(lambda: clean_spots(image, polarity="both"), repeats=3,
                                  budget=6.0)
    sims = {c: [simulate_spots(size=size, counts=c, seed=s) for s in seeds] for c in LEVELS}
    k = best_baseline_k(sims[1000.0][0])
    print(f"Images {size} x {size}, seeds {list(seeds)} pooled; baseline k = {k:.1f} counts "
          f"(best F1 on the 1 000-count image, fixed for every level)\n")

    # ---------------------------------------------------------------- 1. bright spots
    results: dict[str, dict[float, dict[str, float]]] = {}
    for method in ("baseline", *METHODS):
        results[method] = {}
        for c in LEVELS:
            store: dict[str, float] = {}
            for sim in sims[c]:
                cleaned, found, seconds = run_method(sim, method, "bright", k)
                accumulate(store, sim, sim.mask == 1, sim.mask != 2, cleaned, found, seconds)
            results[method][c] = summarise(store)
    rows = []
    for method, per_level in results.items():
        for c, r in per_level.items():
            rows.append([method, f"{c:g}", fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"]),
                         f"{r['rmse_factor']:.1f}", _common.fmt_time(r["seconds"])])
    print("1. Bright spots (polarity bright), scored against the bright-spot truth")
    print(_common.table(["method", "counts", "precision", "recall", "F1", "RMSE factor",
                         "time"], rows, [False, True, True, True, True, True, True]))
    auto_ok = all(r["precision"] >= 0.9 and r["recall"] >= 0.9 and r["rmse_factor"] >= 5
                  for r in results["auto"].values())
    base_fails = [c for c, r in results["baseline"].items()
                  if not (r["precision"] >= 0.9 and r["recall"] >= 0.9 and r["rmse_factor"] >= 5)]
    print(f"\nTarget, default method (auto) at every level: precision >= 0.9, recall >= 0.9, "
          f"RMSE factor >= 5: {'MET' if auto_ok else 'NOT MET'}")
    print(f"Baseline (k = {k:.1f}) misses the target at "
          f"{', '.join(f'{c:g}' for c in base_fails) or 'no'} counts per pixel\n")

    # ---------------------------------------------------------------- 2. both polarities
    both: dict[str, dict[float, dict[str, Any]]] = {}
    rows = []
    for method in ("baseline", "auto", "sigmoid", "morph"):
        both[method] = {}
        for c in LEVELS:
            store: dict[str, float] = {}
            dark_found = dark_total = 0
            for sim in sims[c]:
                cleaned, found, seconds = run_method(sim, method, "both", k)
                truth = sim.mask > 0
                accumulate(store, sim, truth, np.ones(truth.shape, bool), cleaned, found,
                           seconds)
                dark_found += int(np.count_nonzero(found & (sim.mask == 2)))
                dark_total += int(np.count_nonzero(sim.mask == 2))
            r = summarise(store)
            r["dark_recall"] = dark_found / dark_total if dark_total else 1.0
            both[method][c] = r
            rows.append([method, f"{c:g}", fmt(r["precision"]), fmt(r["recall"]),
                         fmt(r["dark_recall"]), f"{r['rmse_factor']:.1f}"])
    print("2. Bright and dark spots (polarity both), scored against all spots")
    print(_common.table(["method", "counts", "precision", "recall", "dark-spot recall",
                         "RMSE factor"], rows, [False, True, True, True, True, True]))
    print()

    # ---------------------------------------------------------------- 3. kNN vs baseline
    sim = sims[1000.0][0]
    knn = KNNSpotDetector().fit_on_image(sim.raw, polarity="bright", seed=0)
    versus = knn.confusion_with_baseline(sim.raw, threshold=k)
    predicted = knn.predict(sim.raw)
    truth = sim.mask == 1
    versus_truth = np.bincount(2 * truth.ravel().astype(int) + predicted.ravel().astype(int),
                               minlength=4).reshape(2, 2)
    print("3. k-NN detector (self-supervised on the 1 000-count image) on that image")
    print(_common.table(["", "k-NN: no spot", "k-NN: spot"],
                        [["baseline: no spot", *versus[0]], ["baseline: spot", *versus[1]],
                         ["truth: no bright spot", *versus_truth[0]],
                         ["truth: bright spot", *versus_truth[1]]], [False, True, True]))
    print()

    # ---------------------------------------------------------------- 4. speed
    t_base, _ = _common.best_time(
        lambda: clean_spots(image, method="baseline", threshold=k), repeats=3, budget=6.0)
    speedup = t_scipy / t_auto
    c = scores(big.mask == 1, speed_found)
    rows = [
        ["scipy.ndimage.median_filter (5 x 5)", _common.fmt_time(t_scipy), "1.0x"],
        ["niseg clean_spots, auto (default)", _common.fmt_time(t_auto),
         _common.fmt_ratio(speedup)],
        ["niseg clean_spots, auto, polarity both", _common.fmt_time(t_both),
         _common.fmt_ratio(t_scipy / t_both)],
        ["lectures' baseline (median filter + replacement)", _common.fmt_time(t_base),
         _common.fmt_ratio(t_scipy / t_base)],
    ]
    print(f"4. Speed on a {speed_size} x {speed_size} uint16 image "
          f"(detection and replacement, 5 x 5 window; best of several runs)")
    print(_common.table(["", "time", "vs median_filter"], rows, [False, True, True]))
    print(f"   auto on this image: precision {c['tp'] / max(c['tp'] + c['fp'], 1):.3f}, "
          f"recall {c['tp'] / max(c['tp'] + c['fn'], 1):.3f}")
    if args.quick:
        print(f"\n(--quick: {speedup:.1f}x at this size; the 3x target is for 2048 x 2048, "
              f"run without --quick)")
    else:
        print(f"\nTarget, at least 3x faster than median_filter: "
              f"{'MET' if speedup >= 3 else 'NOT MET'} ({speedup:.1f}x)")

    _common.write_json(args.json, {
        "benchmark": "spots",
        "machine": info,
        "size": size,
        "seeds": list(seeds),
        "baseline_k": k,
        "bright": {m: {f"{c:g}": r for c, r in v.items()} for m, v in results.items()},
        "both": {m: {f"{c:g}": r for c, r in v.items()} for m, v in both.items()},
        "knn_vs_baseline": versus.tolist(),
        "knn_vs_truth": versus_truth.tolist(),
        "speed": {"size": speed_size, "median_filter_s": t_scipy, "auto_s": t_auto,
                  "auto_both_s": t_both, "baseline_s": t_base, "speedup": speedup},
        "targets_met": {"quality": auto_ok, "speed": speedup >= 3,
                        "baseline_fails_at": list(base_fails)},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
