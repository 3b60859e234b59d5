"""Spot detectors side by side: median baseline, k-NN and CNN, as confusion matrices.

The lecture's comparison on held-out simulated radiographs (``niseg.simulate.simulate_spots``,
default spot settings: 0.3 % of the pixels, 1-10 px, 6-2000 noise deviations, 10 % dark,
blur 1 px) at 100, 1 000 and 10 000 counts per pixel; 512 x 512 pixels, seeds 0 and 1 pooled
(one 256 x 256 image with --quick). The CNN's training images have 32-bit seeds drawn from
``SeedSequence([0, 6])`` (recorded in the model file) and are checked not to include these.

Pixel-level scores, spot (bright or dark) against no spot, polarity ``both`` for every
detector:

- median baseline: ``|f - median_5x5| > k``; k is the value with the best F1 on the
  1 000-count image (searched on that image), kept at every level, as in the lecture;
- k-NN: :class:`niseg.preprocess.KNNSpotDetector` on (intensity, |f - median|), trained
  self-supervised on each image (``detect_spots(method="knn")``);
- CNN: the shipped :class:`niseg.deep.CNNSpotDetector` (``detect_spots(method="cnn")``).

Target: the CNN's F1 at least the k-NN's at each level.

    python benchmarks/bench_spot_detectors.py [--quick] [--json OUT] [--model SPOTS.niseg]

``--model`` scores another spot-cnn model file instead of the shipped one.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import _common
import numpy as np
import torch
from scipy import ndimage

from niseg.deep._spots import shipped_spot_detector
from niseg.models import load_model
from niseg.preprocess import detect_spots
from niseg.simulate import simulate_spots

LEVELS = (100.0, 1000.0, 10000.0)
DETECTORS = ("baseline", "knn", "cnn")


def confusion(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Rows: truth no spot / spot; columns: detector no spot / spot."""
    return np.bincount(2 * truth.ravel().astype(np.intp) + found.ravel().astype(np.intp),
                       minlength=4).reshape(2, 2).astype(np.int64)


def scores(matrix: np.ndarray) -> dict[str, float]:
    tp, fp, fn = matrix[1, 1], matrix[0, 1], matrix[1, 0]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def best_baseline_k(sim: Any) -> float:
    diff = np.abs(sim.raw - ndimage.median_filter(sim.raw, size=5, mode="reflect"))
    truth = sim.mask > 0
    candidates = np.unique(np.quantile(diff[diff > 0], np.linspace(0.5, 0.99999, 400)))
    best_k, best_f1 = float(candidates[0]), -1.0
    for k in candidates:
        f1 = scores(confusion(truth, diff > k))["f1"]
        if f1 > best_f1:
            best_k, best_f1 = float(k), f1
    return best_k


def detect(name: str, image: np.ndarray, k: float, model: Any) -> np.ndarray:
    if name == "baseline":
        return detect_spots(image, method="baseline", polarity="both", threshold=k)
    if name == "cnn":
        return detect_spots(image, method="cnn", polarity="both", detector=model)
    return detect_spots(image, method=name, polarity="both")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--model", help="a spot-cnn model file instead of the shipped one")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    size, seeds = (256, (0,)) if args.quick else (512, (0, 1))
    info = _common.machine()
    print(_common.header("Spot detectors: median baseline, k-NN, CNN (pixel-level confusion)",
                         info))
    model = shipped_spot_detector() if args.model is None else load_model(args.model)
    used = set(model.provenance_.get("image_seeds", []))
    if used & set(seeds):
        raise SystemExit(f"seeds {sorted(used & set(seeds))} were used to train the CNN")
    sims = {c: [simulate_spots(size=size, counts=c, seed=s) for s in seeds] for c in LEVELS}
    k = best_baseline_k(sims[1000.0][0])
    print(f"Images {size} x {size}, seeds {list(seeds)} pooled (not among the CNN's "
          f"{len(used)} training seeds); baseline k = {k:.1f} counts; CNN threshold "
          f"{model.threshold_:.2f}, trained {model.iterations_} steps\n")
    results: dict[str, dict[str, Any]] = {}
    rows = []
    for c in LEVELS:
        results[f"{c:g}"] = {}
        for name in DETECTORS:
            matrix = np.zeros((2, 2), dtype=np.int64)
            seconds = 0.0
            for sim in sims[c]:
                start = time.perf_counter()
                found = detect(name, sim.raw, k, model)
                seconds += time.perf_counter() - start
                matrix += confusion(sim.mask > 0, found)
            r = {**scores(matrix), "confusion": matrix.tolist(), "seconds": seconds}
            results[f"{c:g}"][name] = r
            rows.append([f"{c:g}", name, matrix[0, 0], matrix[0, 1], matrix[1, 0], matrix[1, 1],
                         f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                         _common.fmt_time(seconds)])
    print("Confusion matrices (truth x detector), pooled over the images")
    print(_common.table(["counts", "detector", "TN", "FP", "FN", "TP", "precision", "recall",
                         "F1", "time"], rows, [True, False] + [True] * 8))
    met = {c: results[c]["cnn"]["f1"] >= results[c]["knn"]["f1"] for c in results}
    pairs = ", ".join(f"{c}: {r['cnn']['f1']:.3f} vs {r['knn']['f1']:.3f}"
                      for c, r in results.items())
    print(f"\nTarget, CNN F1 >= k-NN F1 at every level: "
          f"{'MET' if all(met.values()) else 'NOT MET'} ({pairs})")
    _common.write_json(args.json, {
        "benchmark": "spot_detectors",
        "machine": info,
        "size": size,
        "seeds": list(seeds),
        "baseline_k": k,
        "cnn_threshold": model.threshold_,
        "results": results,
        "target_met": all(met.values()),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
