"""niseg.metrics against scikit-learn on whole label images: seconds, speed-up, agreement.

Label images of 10^6 and 10^7 pixels, binary (0/1) and 5-class (1..5), uint8; the prediction
is the truth with 10 % of the pixels replaced by random labels; the probability map (float32)
is the binary truth plus Gaussian noise, clipped to [0, 1]. scikit-learn gets the flattened
arrays (views, no copies). Each row also says how far the two results are apart (largest
absolute difference over every number both return).

    python benchmarks/bench_metrics.py [--quick] [--json OUT]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import _common
import numpy as np
from sklearn import metrics as skm

from niseg import metrics as nm

SHAPES = {10**6: (1000, 1000), 10**7: (2500, 4000)}


def make_data(shape: tuple[int, int], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth5 = rng.integers(1, 6, shape, dtype=np.uint8)
    pred5 = truth5.copy()
    wrong = rng.random(shape) < 0.1
    pred5[wrong] = rng.integers(1, 6, int(wrong.sum()), dtype=np.uint8)
    truth2 = (truth5 >= 4).astype(np.uint8)
    pred2 = (pred5 >= 4).astype(np.uint8)
    noise = rng.normal(0.0, 0.35, shape).astype(np.float32)
    proba = np.clip(truth2 + noise, 0.0, 1.0, dtype=np.float32)
    return {"truth2": truth2, "pred2": pred2, "proba": proba, "truth5": truth5, "pred5": pred5}


def max_diff(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


# ------------------------------------------------------------------ comparisons, one per row
# Each returns (niseg function, scikit-learn function, name of the reference, distance of the
# two results). The distance functions see both results.


def _report_reference(t: np.ndarray, p: np.ndarray, proba: np.ndarray | None, binary: bool):
    """What scikit-learn needs to produce the numbers of niseg.metrics.segmentation_report."""
    cm = skm.confusion_matrix(t, p)
    if binary:
        prec, rec, f1, _ = skm.precision_recall_fscore_support(t, p, average="binary")
    else:
        prec, rec, f1, _ = skm.precision_recall_fscore_support(t, p, average=None)
        prec, rec, f1 = prec.mean(), rec.mean(), f1.mean()
    result = {
        "confusion": cm,
        "dice": f1,
        "precision": prec,
        "recall": rec,
        "accuracy": np.trace(cm) / cm.sum(),
        "ari": skm.adjusted_rand_score(t, p),
    }
    if proba is not None:
        result["roc_auc"] = skm.roc_auc_score(t, proba)
    return result


def _report_distance(ours: dict[str, Any], ref: dict[str, Any]) -> float:
    return max(max_diff(ours[key], value) for key, value in ref.items())


def _per_class_distance(ours: dict[str, Any], ref: tuple) -> float:
    prec, rec, f1, support = ref
    return max(
        max_diff(ours["precision"], prec),
        max_diff(ours["recall"], rec),
        max_diff(ours["dice"], f1),
        max_diff(ours["support"], support),
    )


def cases(
    data: dict[str, np.ndarray], kind: str
) -> list[tuple[str, str, Callable, Callable, Callable]]:
    """(niseg name, sklearn name, niseg call, sklearn call, distance) for one label kind."""
    binary = kind == "binary"
    t, p = (data["truth2"], data["pred2"]) if binary else (data["truth5"], data["pred5"])
    tf, pf = t.reshape(-1), p.reshape(-1)
    proba = data["proba"]
    rows = [
        (
            "confusion_matrix",
            "confusion_matrix",
            lambda: nm.confusion_matrix(t, p),
            lambda: skm.confusion_matrix(tf, pf),
            max_diff,
        )
    ]
    if binary:
        rows.append(
            ("dice", "f1_score", lambda: nm.dice(t, p), lambda: skm.f1_score(tf, pf), max_diff)
        )
    rows.append(
        (
            "per_class_scores",
            "precision_recall_fscore_support",
            lambda: nm.per_class_scores(t, p),
            lambda: skm.precision_recall_fscore_support(tf, pf, average=None),
            _per_class_distance,
        )
    )
    if binary:
        rows.append(
            (
                "roc_auc (float32)",
                "roc_auc_score",
                lambda: nm.roc_auc(t, proba),
                lambda: skm.roc_auc_score(tf, proba.reshape(-1)),
                max_diff,
            )
        )
    rows.append(
        (
            "adjusted_rand_index",
            "adjusted_rand_score",
            lambda: nm.adjusted_rand_index(t, p),
            lambda: skm.adjusted_rand_score(tf, pf),
            max_diff,
        )
    )
    report_proba = proba if binary else None
    flat_proba = proba.reshape(-1) if binary else None
    rows.append(
        (
            "segmentation_report" + (" +proba" if binary else ""),
            "cm + prfs + ari + roc_auc" if binary else "cm + prfs + ari",
            lambda: nm.segmentation_report(t, p, proba=report_proba),
            lambda: _report_reference(tf, pf, flat_proba, binary),
            _report_distance,
        )
    )
    return rows


def warm_up() -> None:
    """Run every code path once on tiny arrays, so first-call costs stay out of the timings."""
    small = make_data((20, 50), seed=1)
    for kind in ("binary", "5-class"):
        for _, _, ours, ref, _ in cases(small, kind):
            ours()
            ref()


def main(argv: list[str] | None = None) -> int:
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    sizes = [10**6] if args.quick else [10**6, 10**7]
    info = _common.machine()
    print(_common.header("niseg.metrics vs scikit-learn (best of up to 5 runs)", info))
    warm_up()
    rows, records = [], []
    for size in sizes:
        data = make_data(SHAPES[size])
        # The slow reference calls run once at 10^7 pixels; the fast ones several times.
        budget = 1.0 if size <= 10**6 else 2.0
        for kind in ("binary", "5-class"):
            for name, ref_name, ours, ref, distance in cases(data, kind):
                t_ours, r_ours = _common.best_time(ours, budget=budget)
                t_ref, r_ref = _common.best_time(ref, budget=budget)
                diff = distance(r_ours, r_ref)
                speedup = t_ref / t_ours
                rows.append(
                    [
                        f"{size:.0e}".replace("+0", ""),
                        kind,
                        name,
                        ref_name,
                        _common.fmt_time(t_ours),
                        _common.fmt_time(t_ref),
                        _common.fmt_ratio(speedup),
                        f"{diff:.1e}" if diff else "0",
                    ]
                )
                records.append(
                    {
                        "pixels": size,
                        "labels": kind,
                        "niseg": name,
                        "sklearn": ref_name,
                        "niseg_s": t_ours,
                        "sklearn_s": t_ref,
                        "speedup": speedup,
                        "max_abs_diff": diff,
                    }
                )
                print(f"  done: {size:.0e} {kind} {name}", file=sys.stderr, flush=True)
    headers = [
        "pixels",
        "labels",
        "niseg.metrics",
        "sklearn.metrics",
        "niseg",
        "sklearn",
        "speed-up",
        "max abs diff",
    ]
    print(_common.table(headers, rows, [True, False, False, False, True, True, True, True]))
    worst = max(r["max_abs_diff"] for r in records)
    print(f"\nlargest disagreement over all rows: {worst:.1e}")
    _common.write_json(args.json, {"benchmark": "metrics", "machine": info, "results": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
