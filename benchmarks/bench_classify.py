"""PixelClassifier on real EM data next to scikit-image's trainable segmentation (issue 5).

Data: ``../shared/data/em_mitochondria`` (768 x 1024 uint8 EM image, 0/255 mitochondria mask).
Protocol: train on the left half ``[:, :512]``, Dice of the foreground on the right half
``[:, 512:]``; nothing is ever trained on the right half. Rows:

1. reference, pinned: ``multiscale_basic_features(image, sigma_min=1, sigma_max=16)`` of the
   whole image + ``RandomForestClassifier(n_estimators=50, n_jobs=2, random_state=0)`` fitted
   with ``skimage.future.fit_segmenter`` on every left-half pixel of the dense mask,
   ``predict_segmenter`` on the whole image; time = features + fit + predict.
2. niseg ``PixelClassifier`` (ilastik features, 50 trees, ``n_jobs=2``, defaults otherwise)
   fitted on the left half with the dense mask; time = fit + predict of the whole image.
   Targets: Dice >= 0.72 and at least 2x faster than the reference.
3. the same with ``stages=2`` (autocontext): Dice >= 0.85 in at most 2x the reference's time.
   3b (not with --quick): ``stages=2`` on the ilastik bank plus local statistics (mean,
   variance, min, max, median) in a window chosen on the left half alone: 2-fold
   cross-validation over its top and bottom halves (train on one, score the other) among
   ``WINDOW_CHOICES``; the chosen window then runs the row-3 protocol. 4c (not with
   --quick): row 3b's features and ``stages=2`` trained on the strokes of each seed (median
   Dice), against row 3b's dense result.
   3c: rows 3 and 3b followed by ``niseg predict --fill-holes``
   (``niseg.objects.postprocess(fill_holes=True)``), timed with the prediction.
4. sparse labels: ``brush_strokes`` over about 1 % of each class of the left half,
   ``fit(labels=...)``: Dice within 0.05 of the dense result (single stage, the median Dice
   of stroke seeds 0, 1, 2; and stages=2 with that seed's strokes, not with --quick).
   4d: strokes over 1 % of the left half split equally between the classes
   (``brush_strokes(allocation="equal")``, a person painting the mitochondria as much as the
   background), single stage; 4e (not with --quick): the same strokes with row 3b's
   features and stages=2. 4f (not with --quick): 1 % of the left-half pixels drawn at
   random, half from each class, with row 3b's method: not strokes, but more spread out than
   any strokes; 1 % of labels placed without looking at the model.
   4g (not with --quick): labels placed as a person does in ilastik: equal-split strokes over
   0.5 % of the left half, a single-stage model fitted on them, then equal-split strokes over
   another 0.5 % inside the unlabelled pixels whose uncertainty (``predict_uncertainty``) is
   at least its quantile ``q``; single stage, against the dense result. ``q`` is chosen
   among ``GUIDE_QUANTILES`` by the 2-fold cross-validation of row 3b on the left half (both
   rounds drawn on one fold's rows, Dice on the other, mean over folds and seeds). Where the
   uncertain pixels of a class are too thin for the brush, the second round covers less.
   4h: the strokes of 4g with row 3b's method, against row 3b's dense result.
5. ``select_features=True``: features kept, Dice and time against the full set.
6. memory of ``predict_tiled`` on 2048^2, 4096^2 and 8192^2 images (see
   ``bench_classify_memory.py``): working memory within 20 % across sizes.

Times are the median of ``--repeats`` runs (default 3) in this process; each run builds a new
model. The load average of the machine is printed next to every timed row.

    python benchmarks/bench_classify.py [--quick] [--repeats 3] [--memory-features fast]
                                        [--skip-memory] [--json OUT]
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import numpy as np

from niseg.classify import PixelClassifier
from niseg.features import FeatureSpec
from niseg.io import read_image
from niseg.metrics import dice
from niseg.objects import postprocess
from niseg.simulate import brush_strokes

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "em_mitochondria"
SPLIT = 512
SPARSE_FRACTION = 0.01
SPARSE_SEEDS = (0, 1, 2)
BRUSH_WIDTH = 3
DICE_SINGLE, DICE_STAGES, SPARSE_GAP = 0.72, 0.85, 0.05
#: Row 3b: windows of the local statistics tried on the left half (None: ilastik bank alone).
WINDOW_CHOICES = (None, 9, 15, 21)
LOCAL_STATS = ("mean", "variance", "min", "max", "median")
#: Rows 4g/4h: the second half of the stroke budget goes inside the unlabelled pixels whose
#: uncertainty is at least this quantile of theirs, chosen among these on the left half
#: (0.98 and 0.99 were added when the left half's best of 0.8/0.9/0.95 was 0.95, the edge).
GUIDE_QUANTILES = (0.8, 0.9, 0.95, 0.98, 0.99)
#: Seed offset of the second round's strokes, so they are not the first round's drawn again.
GUIDE_SEED_OFFSET = 100
SPEEDUP_SINGLE, SLOWDOWN_STAGES = 2.0, 2.0


def load_em(folder: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """The EM image (uint8) and its mitochondria mask as uint8 0/1."""
    image = read_image(folder / "em_image.png")[0]
    truth = (read_image(folder / "em_image_seg.png")[0] != 0).astype(np.uint8)
    return image, truth


def dice_right(foreground: np.ndarray, truth: np.ndarray, split: int = SPLIT) -> float:
    """Dice of the foreground on the columns ``split:`` (the half never trained on)."""
    return dice(truth[:, split:] != 0, foreground[:, split:])


def sparse_labels(truth_left: np.ndarray, fraction: float = SPARSE_FRACTION,
                  seed: int = 0, allocation: str = "area") -> tuple[np.ndarray, float]:
    """Brush strokes over ``fraction`` of each class (``allocation="area"``) or of the image
    split equally between the classes (``"equal"``), label 1 = background, 2 = foreground;
    and the fraction of all pixels they actually cover."""
    labels = brush_strokes(truth_left, fraction=fraction, width=BRUSH_WIDTH, seed=seed,
                           allocation=allocation)
    return labels, float(np.count_nonzero(labels) / labels.size)


def scattered_labels(truth_left: np.ndarray, fraction: float = SPARSE_FRACTION,
                     seed: int = 0) -> tuple[np.ndarray, float]:
    """``fraction`` of all pixels drawn at random, half from each class (fewer where a class
    is smaller), labelled like :func:`sparse_labels`; and the fraction covered."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(truth_left.shape, np.uint8)
    share = round(fraction * truth_left.size / 2)
    for value in (0, 1):
        where = np.flatnonzero(truth_left.ravel() == value)
        picked = rng.choice(where, size=min(share, where.size), replace=False)
        labels.flat[picked] = value + 1
    return labels, float(np.count_nonzero(labels) / labels.size)


def loadavg() -> float:
    return os.getloadavg()[0]


def reference_run(image: np.ndarray, truth: np.ndarray, split: int = SPLIT) -> dict[str, Any]:
    """skimage trainable segmentation on every left-half pixel; times and the foreground."""
    from skimage.feature import multiscale_basic_features
    from skimage.future import fit_segmenter, predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    labels = np.zeros(image.shape, np.uint8)
    labels[:, :split] = truth[:, :split] + 1  # fit_segmenter: 0 = unlabeled
    start = time.perf_counter()
    features = multiscale_basic_features(image, sigma_min=1, sigma_max=16)
    t_features = time.perf_counter()
    clf = RandomForestClassifier(n_estimators=50, n_jobs=2, random_state=0)
    clf = fit_segmenter(labels, features, clf)
    t_fit = time.perf_counter()
    predicted = predict_segmenter(features, clf)
    t_predict = time.perf_counter()
    return {
        "features_s": t_features - start,
        "fit_s": t_fit - t_features,
        "predict_s": t_predict - t_fit,
        "total_s": t_predict - start,
        "foreground": predicted == 2,
        "n_features": int(features.shape[-1]),
    }


def has_parameter(name: str) -> bool:
    """Whether this niseg's PixelClassifier takes ``name`` (stages, select_features)."""
    return name in inspect.signature(PixelClassifier.__init__).parameters


def make_model(features: str | FeatureSpec, **params: Any) -> PixelClassifier:
    """The benchmark's PixelClassifier: random forest, 50 trees, 2 jobs, seed 0."""
    return PixelClassifier(features=features, method="rf", n_estimators=50, n_jobs=2,
                           random_state=0, **params)


def niseg_run(image: np.ndarray, *, masks: np.ndarray | None = None,
              labels: np.ndarray | None = None, foreground: int = 1, split: int = SPLIT,
              features: str | FeatureSpec = "ilastik", fill_holes: bool = False,
              **params: Any) -> dict[str, Any]:
    """Fit a PixelClassifier on the left half, predict the whole image; times, foreground.

    With ``fill_holes`` the result also holds ``filled``, the foreground after
    ``postprocess(fill_holes=True)`` (what ``niseg predict --fill-holes`` writes), and
    ``fill_s``, the time that took."""
    model = make_model(features, **params)
    left = image[:, :split]
    start = time.perf_counter()
    if labels is not None:
        model.fit(left, labels)
    else:
        model.fit(left, masks=masks)
    t_fit = time.perf_counter()
    predicted = model.predict(image)
    t_predict = time.perf_counter()
    result = {
        "fit_s": t_fit - start,
        "predict_s": t_predict - t_fit,
        "total_s": t_predict - start,
        "foreground": predicted == foreground,
        "n_features": features_used(model),
        "halo": [int(h) for h in model.halo],
    }
    if fill_holes:
        filled = postprocess(result["foreground"].astype(np.uint8), fill_holes=True)
        result["fill_s"] = time.perf_counter() - t_predict
        result["filled"] = filled != 0
    return result


def window_features(window: int | None, base: str = "ilastik") -> str | FeatureSpec:
    """The feature bank of row 3b: ``base`` alone, or ``base`` plus local statistics."""
    if window is None:
        return base
    return dataclasses.replace(FeatureSpec.preset(base), local_stats=LOCAL_STATS,
                               window=window)


def left_half_folds(rows: int) -> list[tuple[slice, slice]]:
    """The two folds of the training half's cross-validation: (train, held-out) row slices,
    top half then bottom half trained on."""
    middle = rows // 2
    return [(slice(0, middle), slice(middle, None)), (slice(middle, None), slice(0, middle))]


def choose_window(image_left: np.ndarray, truth_left: np.ndarray,
                  windows: tuple[int | None, ...] = WINDOW_CHOICES, *, stages: int = 2,
                  base: str = "ilastik") -> tuple[int | None, dict[int | None, float]]:
    """Pick the local-statistics window by 2-fold cross-validation on the training half.

    The rows are split in two: a model fitted on the top half predicts the whole training
    half (so the held-out rows have their real context) and is scored on the bottom half, and
    the other way round. Returns the window with the best mean held-out Dice (the first of
    equals) and every window's mean.
    """
    scores: dict[int | None, float] = {}
    for window in windows:
        dices = []
        for train, held in left_half_folds(truth_left.shape[0]):
            model = make_model(window_features(window, base), stages=stages)
            model.fit(image_left[train], masks=truth_left[train])
            predicted = model.predict(image_left)
            dices.append(dice(truth_left[held] != 0, predicted[held] == 1))
        scores[window] = float(np.mean(dices))
        print(f"  ... window {window}: left-half held-out Dice {dices[0]:.4f} / {dices[1]:.4f}",
              file=sys.stderr, flush=True)
    best = max(scores, key=lambda w: scores[w])  # first of equals: dict order
    return best, scores


def first_round(image_left: np.ndarray, truth_left: np.ndarray, seed: int = 0,
                fraction: float = SPARSE_FRACTION,
                features: str = "ilastik") -> tuple[np.ndarray, np.ndarray]:
    """Equal-split strokes over half the budget, and the uncertainty of a single-stage model
    fitted on them: what a person painting in ilastik sees after the first strokes."""
    labels = brush_strokes(truth_left, fraction=fraction / 2, width=BRUSH_WIDTH, seed=seed,
                           allocation="equal")
    model = make_model(features)
    model.fit(image_left, labels)
    return labels, model.predict_uncertainty(image_left)


def second_round(labels: np.ndarray, uncertainty: np.ndarray, truth_left: np.ndarray,
                 quantile: float, seed: int = 0,
                 fraction: float = SPARSE_FRACTION) -> tuple[np.ndarray, float]:
    """``labels`` plus equal-split strokes over ``fraction / 2`` of the pixels, drawn inside
    the unlabelled pixels whose uncertainty is at least its ``quantile`` among them (the
    person paints where the model hesitates); and the fraction of all pixels now labelled."""
    free = labels == 0
    region = free & (uncertainty >= np.quantile(uncertainty[free], quantile))
    guide = np.where(region, truth_left + 1, 0).astype(np.uint8)
    new = brush_strokes(guide, fraction=fraction / 2, width=BRUSH_WIDTH,
                        seed=GUIDE_SEED_OFFSET + seed, zero_is_class=False, allocation="equal")
    out = labels.copy()
    added = (new > 0) & free
    out[added] = new[added]
    return out, float(np.count_nonzero(out) / out.size)


def choose_quantile(image_left: np.ndarray, truth_left: np.ndarray,
                    quantiles: tuple[float, ...] = GUIDE_QUANTILES,
                    seeds: tuple[int, ...] = SPARSE_SEEDS, *, fraction: float = SPARSE_FRACTION,
                    features: str = "ilastik") -> tuple[float, dict[float, float]]:
    """Pick :func:`second_round`'s quantile by the 2-fold cross-validation of
    :func:`choose_window`: both rounds of strokes drawn on one fold's rows, a single-stage
    model fitted there, Dice on the other fold; mean over folds and ``seeds``. Returns the
    best quantile (the first of equals) and every quantile's mean."""
    dices: dict[float, list[float]] = {q: [] for q in quantiles}
    for train, held in left_half_folds(truth_left.shape[0]):
        for seed in seeds:
            labels, uncertainty = first_round(image_left[train], truth_left[train], seed,
                                              fraction, features)
            for q in quantiles:
                both, _ = second_round(labels, uncertainty, truth_left[train], q, seed,
                                       fraction)
                model = make_model(features)
                model.fit(image_left[train], both)
                predicted = model.predict(image_left)
                dices[q].append(dice(truth_left[held] != 0, predicted[held] == 2))
    scores = {q: float(np.mean(d)) for q, d in dices.items()}
    for q, d in dices.items():
        print(f"  ... quantile {q}: left-half held-out Dice {', '.join(f'{x:.3f}' for x in d)}",
              file=sys.stderr, flush=True)
    return max(scores, key=lambda q: scores[q]), scores


def guided_strokes(image_left: np.ndarray, quantile: float
                   ) -> Callable[..., tuple[np.ndarray, float]]:
    """A ``draw`` for :func:`stroke_runs`: :func:`first_round` then :func:`second_round` with
    ``quantile``, each seed's labels computed once (rows 4g and 4h share them); the cache is
    keyed by seed alone, so one ``draw`` serves one ``truth_left``."""
    cache: dict[int, tuple[np.ndarray, float]] = {}

    def draw(truth_left: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
        if seed not in cache:
            labels, uncertainty = first_round(image_left, truth_left, seed)
            cache[seed] = second_round(labels, uncertainty, truth_left, quantile, seed)
        labels, covered = cache[seed]
        return labels.copy(), covered

    return draw


def features_used(model: PixelClassifier) -> int:
    """Image feature columns the model computes (all of the preset's, or those selected)."""
    return len(model.feature_names_)


def median_of(run: Callable[[], dict[str, Any]], repeats: int, truth: np.ndarray,
              split: int = SPLIT, label: str = "run") -> dict[str, Any]:
    """Run ``repeats`` times; the run with the median total time, plus every run's figures."""
    runs = []
    for _ in range(max(repeats, 1)):
        load = loadavg()
        result = run()
        result["dice"] = dice_right(result.pop("foreground"), truth, split)
        if "filled" in result:
            result["dice_filled"] = dice_right(result.pop("filled"), truth, split)
        result["load"] = max(load, loadavg())
        runs.append(result)
        print(f"  ... {label}: {result['total_s']:.1f} s, Dice {result['dice']:.4f}, load "
              f"{result['load']:.1f}", file=sys.stderr, flush=True)
    totals = [r["total_s"] for r in runs]
    median = statistics.median_low(totals)
    chosen = dict(runs[totals.index(median)])
    chosen["totals_s"] = totals
    chosen["dices"] = [r["dice"] for r in runs]
    chosen["loads"] = [r["load"] for r in runs]
    return chosen


def median_seed(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median Dice of an odd number of stroke seeds (the lower middle of
    an even number)."""
    return sorted(runs, key=lambda r: r["dice"])[(len(runs) - 1) // 2]


def stroke_runs(image: np.ndarray, truth: np.ndarray, truth_left: np.ndarray, label: str,
                draw: Callable[..., tuple[np.ndarray, float]] = sparse_labels,
                **params: Any) -> list[dict[str, Any]]:
    """One run per seed of :data:`SPARSE_SEEDS` of the labels ``draw(truth_left, seed=seed)``
    (``niseg_run`` with ``params``), each with its seed and the fraction of all left-half
    pixels and of its foreground labelled."""
    runs = []
    for seed in SPARSE_SEEDS:
        labels, covered = draw(truth_left, seed=seed)
        run = median_of(lambda labels=labels: niseg_run(image, labels=labels, foreground=2,
                                                        **params),
                        1, truth, label=f"{label} seed {seed}")
        run.update(seed=seed, covered=covered, foreground_covered=float(
            np.count_nonzero(labels == 2) / max(np.count_nonzero(truth_left), 1)))
        runs.append(run)
    return runs


def equal_strokes(truth_left: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """:func:`sparse_labels` with the budget split equally between the classes."""
    return sparse_labels(truth_left, seed=seed, allocation="equal")


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def stages_rows(name: str, run: dict[str, Any], ref: dict[str, Any],
                digits: int = 3) -> list[list[str]]:
    """Dice and time rows of an autocontext run against the stages targets."""
    ratio = run["total_s"] / ref["total_s"]
    return [[name, "dice", f"{run['dice']:.{digits}f}", f"{ref['dice']:.3f}",
             f">= {DICE_STAGES}", verdict(run["dice"] >= DICE_STAGES),
             f"{max(run['loads']):.1f}"],
            ["", "time", fmt_run(run), _common.fmt_time(ref["total_s"]),
             f"<= {SLOWDOWN_STAGES:.0f}x reference (got {ratio:.2f}x)",
             verdict(ratio <= SLOWDOWN_STAGES), ""]]


def filled_rows(name: str, run: dict[str, Any], ref: dict[str, Any]) -> list[list[str]]:
    """:func:`stages_rows` of a run after ``--fill-holes``: its Dice then, its time plus the
    filling's."""
    filled = dict(run, dice=run["dice_filled"], total_s=run["total_s"] + run["fill_s"],
                  predict_s=run["predict_s"] + run["fill_s"])
    return stages_rows(name, filled, ref, digits=4)


def gap_row(name: str, sparse: dict[str, Any], dense_name: str, dense_dice: float) -> list[str]:
    """The Dice row of a stroke-trained run against the dense result it must stay near."""
    gap = dense_dice - sparse["dice"]
    return [name, "dice", f"{sparse['dice']:.3f}", f"{dense_name} {dense_dice:.3f}",
            f"dense - sparse <= {SPARSE_GAP} (got {gap:+.3f})", verdict(gap <= SPARSE_GAP),
            f"{max(sparse['loads']):.1f}"]


def seeds_gap_row(name: str, runs: list[dict[str, Any]], dense_name: str,
                  dense_dice: float) -> list[str]:
    """:func:`gap_row` of the median seed of ``runs``, every seed's Dice in its name;
    ``{covered}`` in ``name`` becomes the percentage of pixels that seed labelled."""
    middle = median_seed(runs)
    each = ", ".join(f"{r['dice']:.3f}" for r in runs)
    label = name.format(covered=100 * middle["covered"])
    return gap_row(f"{label} (seed {middle['seed']}: median of {each})", middle, dense_name,
                   dense_dice)


def fmt_run(r: dict[str, Any]) -> str:
    return (f"{_common.fmt_time(r['total_s'])} (fit {_common.fmt_time(r['fit_s'])} + predict "
            f"{_common.fmt_time(r['predict_s'])})")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, help="timed runs per row (default 3, quick 1)")
    p.add_argument("--memory-features", choices=["fast", "ilastik"], default="fast",
                   help="feature preset of the memory rows' model (default fast: the 8192^2 "
                        "prediction takes about 5 min on 2 cores; ilastik 2.5x longer)")
    p.add_argument("--skip-memory", action="store_true", help="leave out the memory rows")
    args = p.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    wall = time.perf_counter()
    info = _common.machine()
    image, truth = load_em()
    print(_common.header("PixelClassifier vs skimage trainable segmentation, EM mitochondria",
                         info))
    print(f"image {image.shape[0]} x {image.shape[1]} {image.dtype}, train [:, :{SPLIT}], "
          f"Dice on [:, {SPLIT}:]; median of {repeats} run(s); load average at start "
          f"{loadavg():.2f}\n", flush=True)
    truth_left = truth[:, :SPLIT]
    rows: list[list[str]] = []
    results: dict[str, Any] = {}

    ref = median_of(lambda: reference_run(image, truth), repeats, truth, label="reference")
    results["reference"] = ref
    rows.append(["1 reference skimage (all left pixels)", "dice", f"{ref['dice']:.3f}", "",
                 "(reference)", "", f"{max(ref['loads']):.1f}"])
    rows.append(["", "time", (f"{_common.fmt_time(ref['total_s'])} (features "
                 f"{_common.fmt_time(ref['features_s'])} + fit {_common.fmt_time(ref['fit_s'])}"
                 f" + predict {_common.fmt_time(ref['predict_s'])})"), "", "(reference)", "", ""])

    single = median_of(lambda: niseg_run(image, masks=truth_left), repeats, truth,
                       label="single")
    results["single"] = single
    speedup = ref["total_s"] / single["total_s"]
    rows.append(["2 niseg ilastik, 1 stage, dense mask", "dice", f"{single['dice']:.3f}",
                 f"{ref['dice']:.3f}", f">= {DICE_SINGLE}",
                 verdict(single["dice"] >= DICE_SINGLE), f"{max(single['loads']):.1f}"])
    rows.append(["", "time", fmt_run(single), _common.fmt_time(ref["total_s"]),
                 f">= {SPEEDUP_SINGLE:.0f}x faster (got {_common.fmt_ratio(speedup)})",
                 verdict(speedup >= SPEEDUP_SINGLE), ""])

    stages_ok = has_parameter("stages")
    if stages_ok:
        staged = median_of(lambda: niseg_run(image, masks=truth_left, stages=2,
                                             fill_holes=True),
                           repeats, truth, label="stages=2")
        results["stages2"] = staged
        rows.extend(stages_rows("3 niseg ilastik, stages=2, dense mask", staged, ref))
        if not args.quick:
            window, scores = choose_window(image[:, :SPLIT], truth_left)
            spec = window_features(window)
            windowed = median_of(lambda: niseg_run(image, masks=truth_left, stages=2,
                                                   features=spec, fill_holes=True),
                                 repeats, truth, label=f"stages=2, window {window}")
            windowed.update(window=window, window_scores={str(w): d for w, d in scores.items()})
            results["stages2_local_stats"] = windowed
            tried = ", ".join(f"{w}: {d:.3f}" for w, d in scores.items())
            rows.extend(stages_rows(f"3b niseg ilastik + local stats, window {window} (left-half "
                                    f"CV {tried}), stages=2", windowed, ref, digits=4))
        rows.extend(filled_rows("3c row 3 + niseg predict --fill-holes", staged, ref))
        if "stages2_local_stats" in results:
            rows.extend(filled_rows("3c row 3b + niseg predict --fill-holes",
                                    results["stages2_local_stats"], ref))
    else:
        rows.append(["3 niseg ilastik, stages=2, dense mask", "-", "not available", "",
                     f"dice >= {DICE_STAGES}, <= 2x ref", verdict(None), ""])

    # One stroke set is one draw: the Dice of the median of three seeds is the verdict.
    sparse_runs = stroke_runs(image, truth, truth_left, "sparse")
    results["sparse_seeds"] = sparse_runs
    sparse = median_seed(sparse_runs)
    results["sparse"] = sparse
    labels = sparse_labels(truth_left, seed=sparse["seed"])[0]
    name = (f"4 niseg 1 stage, strokes on {100 * sparse['covered']:.2f} % of left half "
            f"(seed {sparse['seed']}: median Dice of seeds {list(SPARSE_SEEDS)})")
    rows.append(gap_row(name, sparse, "dense", single["dice"]))
    rows.append(["", "time", fmt_run(sparse), "", "", "", ""])
    if stages_ok and not args.quick:
        sparse2 = median_of(lambda: niseg_run(image, labels=labels, foreground=2, stages=2), 1,
                            truth, label="sparse stages=2")
        results["sparse_stages2"] = sparse2
        rows.append(gap_row(f"4b niseg stages=2, strokes of seed {sparse['seed']}", sparse2,
                            "dense", results["stages2"]["dice"]))
        rows.append(["", "time", fmt_run(sparse2), "", "", "", ""])
    # Rows 4c-4f, in this order: row 3b's method on strokes (4c), equal-split strokes with
    # one stage (4d) and with 3b's method (4e), scattered pixels with 3b's method (4f).
    equal = "4d 1 stage, strokes on {covered:.2f} % split equally between the classes"
    scattered = "4f as 3b, 1 % of pixels at random, half per class (not strokes)"
    variants = [("sparse_equal_seeds", equal, equal_strokes, {}, "dense", single["dice"])]
    dense = results.get("stages2_local_stats")
    if dense is not None:
        local = {"stages": 2, "features": window_features(dense["window"])}
        variants = [("sparse_stages2_local_stats", "4c as 3b, strokes", sparse_labels, local,
                     "dense 3b", dense["dice"]),
                    *variants,
                    ("sparse_equal_stages2_local_stats", "4e as 3b, the strokes of 4d",
                     equal_strokes, local, "dense 3b", dense["dice"]),
                    ("scattered_stages2_local_stats", scattered, scattered_labels, local,
                     "dense 3b", dense["dice"])]
    if not args.quick:
        # Rows 4g/4h: half the strokes, then half inside the first model's uncertain pixels.
        quantile, scores = choose_quantile(image[:, :SPLIT], truth_left)
        results["guided_quantile"] = {"chosen": quantile,
                                      "scores": {str(q): d for q, d in scores.items()}}
        tried = ", ".join(f"{q}: {d:.3f}" for q, d in scores.items())
        guided = (f"4g 1 stage, strokes on {{covered:.2f}} %: half at random, half above the "
                  f"{quantile} quantile of uncertainty (left-half CV {tried})")
        draw = guided_strokes(image[:, :SPLIT], quantile)
        variants.append(("guided_seeds", guided, draw, {}, "dense", single["dice"]))
        if dense is not None:
            variants.append(("guided_stages2_local_stats", "4h as 3b, the strokes of 4g", draw,
                             local, "dense 3b", dense["dice"]))
    for key, name, draw, params, dense_name, dense_dice in variants:
        runs = stroke_runs(image, truth, truth_left, key, draw=draw, **params)
        results[key] = runs
        rows.append(seeds_gap_row(name, runs, dense_name, dense_dice))

    if has_parameter("select_features"):
        chosen = median_of(lambda: niseg_run(image, masks=truth_left, select_features=True),
                           repeats, truth, label="select_features")
        results["select_features"] = chosen
        rows.append(["5 niseg 1 stage, select_features=True", "features",
                     f"{chosen['n_features']} kept", f"{single['n_features']} (full set)",
                     "(report)", "", f"{max(chosen['loads']):.1f}"])
        rows.append(["", "dice", f"{chosen['dice']:.3f}", f"full set {single['dice']:.3f}",
                     "(report)", "", ""])
        rows.append(["", "time", fmt_run(chosen), f"full set {fmt_run(single)}", "(report)",
                     "", ""])
    else:
        rows.append(["5 niseg 1 stage, select_features=True", "-", "not available", "",
                     "(report)", verdict(None), ""])

    memory = None
    if not args.skip_memory:
        import bench_classify_memory as mem

        sizes = mem.QUICK_SIZES if args.quick else mem.SIZES
        tile = mem.QUICK_TILE if args.quick else None
        folder = Path(tempfile.mkdtemp(prefix="niseg-bench-classify-"))
        start, load = time.perf_counter(), loadavg()
        try:
            memory = mem.measure(image, truth, folder, features=args.memory_features,
                                 sizes=sizes, tile=tile)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        memory["wall_s"] = time.perf_counter() - start
        results["memory"] = memory
        working = ", ".join(f"{r['working_mib']:.0f}" for r in memory["tiled"])
        untiled = memory["untiled"]
        rows.append([(f"6 predict_tiled {'/'.join(str(s) for s in sizes)}^2, tile "
                     f"{tile or 'default'} ({args.memory_features})"), "working MiB", working,
                     f"untiled {untiled['size']}^2: {untiled['working_mib']:.0f}",
                     f"max/min <= {mem.SPREAD_TARGET} (got {memory['spread']:.2f})",
                     verdict(memory["passed"]), f"{max(load, loadavg()):.1f}"])

    print(_common.verdict_table(rows, compared_right=True))
    print(f"\nreference Dice per run {[round(d, 4) for d in ref['dices']]}, totals "
          f"{[round(t, 1) for t in ref['totals_s']]} s; niseg single-stage totals "
          f"{[round(t, 1) for t in single['totals_s']]} s")
    for r in sparse_runs:
        print(f"strokes, seed {r['seed']}: {100 * r['covered']:.2f} % of the left half's pixels "
              f"labelled ({100 * r['foreground_covered']:.2f} % of its foreground), brush width "
              f"{BRUSH_WIDTH}: Dice {r['dice']:.3f}")
    for r in results.get("guided_seeds", []):
        print(f"guided strokes (4g), seed {r['seed']}: {100 * r['covered']:.2f} % of the left "
              f"half's pixels labelled ({100 * r['foreground_covered']:.2f} % of its "
              f"foreground): Dice {r['dice']:.4f}")
    if memory is not None:
        print(f"\nmemory rows ({memory['features']} features; model fitted in "
              f"{memory['fit_s']:.1f} s; whole memory part {memory['wall_s']:.0f} s):")
        print(mem.memory_table(memory))
        print(f"working = VmHWM peak - baseline - input - output; RssAnon = sampled peak "
              f"of anonymous memory - baseline.\nRssAnon spread {memory['anon_spread']:.2f}; "
              f"untiled and tiled labels at {untiled['size']}^2: "
              f"{memory['untiled_vs_tiled_differ']} pixels differ")
    print(f"\nwhole run {time.perf_counter() - wall:.0f} s, load average at end {loadavg():.2f}")
    for r in results.values():
        if isinstance(r, dict):
            r.pop("foreground", None)
    _common.write_json(args.json, {"benchmark": "classify", "machine": info,
                                   "repeats": repeats, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
