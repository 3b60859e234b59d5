"""3-D U-Net against the pixel classifier on a simulated root tomogram with a few labelled slices.

Target (issue): "A simulated 3D root volume (neutron/simulator issue) with a few labelled
slices: the 3D U-Net beats the pixel classifier's Dice on the same labels."

Data: two ``simulate_roots(shape=(P, M, N), counts=C)`` tomograms of roots in soil (the
correlated noise of a 180-projection filtered back-projection at ``C`` neutrons per pixel and
projection; default ``C = 100``, where the best global threshold reaches a root Dice of only
about 0.5 on a 32 x 64 x 64 volume, so roots are visible but noisy). The training volume has
seed 1, the test volume seed 2; full mode 64 x 128 x 128 voxels, ``--quick`` 32 x 64 x 64.

Labels: the truth on ``N_SLICES = 4`` evenly spaced slices along axis 0 (depth), at
``(2k + 1) P / 8``: every voxel of those slices labelled (root -> 2, soil -> 1), all other
slices 0 = unlabelled. Dense slices, not ``brush_strokes``: roots are 1-2 voxels thick and
cross a slice in a few small discs, which a scientist paints voxel by voxel in a slice viewer;
strokes at their usual 2 % coverage would label about one root voxel per slice. Both models
get exactly these labels.

Rows:

1. ``UNetSegmenter(spatial_dims=3)`` sized for 2 CPU cores: depth 3, base 8 channels (half
   the CPU default: more iterations in the same minutes), patch 32^3, batch 4, loss
   ``dice_ce`` without class weights (the patch sampler already centres half of the patches
   on labelled root voxels, which balances the classes), ``augment="default"`` (flips,
   90-degree turns, rotation, zoom and elastic distortion in the (y, x) plane, brightness,
   contrast, gamma, blur: with four labelled slices the net needs the variety; ``"light"``,
   exact geometry only, scored 0.572 after 800 iterations), ``validation=None`` (a
   validation slab and its halo-wide gap would take labels away from the U-Net that the
   classifier keeps), a fixed number of iterations (``--iterations``, default 2000; quick
   12; at 800 the training loss was still falling) with a cosine schedule and no time
   budget, and test-time mirroring (``mirror=True``: the mean over all 8 flips).
   ``n_threads=2``; one fit per ``--seeds`` (default 0). ``--time-budget MIN`` adds a
   safety limit, but mind the note below.
2. ``PixelClassifier(features="ilastik", n_estimators=50, n_jobs=2)``: the 3-D ilastik
   filter bank (intensity; Gaussian, Laplacian of Gaussian, gradient magnitude, difference
   of Gaussians, structure tensor and Hessian eigenvalues at sigma 0.3 to 10) on the same
   labels.

Figures: Dice of the root class on every voxel of the test volume (the target) and on the
unlabelled slices of the training volume; fit and predict seconds (predict: the test volume);
and, from the U-Net's own patch sampler (``niseg.deep._train.PatchSampler``), the share of
1000 drawn training patches that hold at least one labelled voxel (a patch centre is always a
labelled voxel, so it should be 1) and their mean share of labelled voxels; the seconds of
the U-Net's warm-up (see ``warm_up``).
PASS when the U-Net's mean test Dice over the seeds is higher than the classifier's.

    python benchmarks/bench_unet_roots3d.py [--quick] [--seeds 0 1] [--counts 100]
                                            [--iterations 2000] [--time-budget MIN] [--base 8]
                                            [--patch 32] [--augment default] [--no-mirror]
                                            [--json OUT]

Why no time budget by default: ``UNetSegmenter`` shortens its cosine schedule after the
first epoch to the epochs that fit in the budget; when that epoch is slow (first-use set-up, a
busy machine) the horizon becomes that one epoch, the learning rate is 0 from then on, and the
remaining minutes train nothing (first full run, 2026-11-30, with another benchmark on the
same 2 cores: epoch 1 took 234 s of a 6-minute budget, so the learning rate was 0 after
iteration 50 of the 181 run; root Dice 0.011). Fixed iterations are also deterministic.
In the same run epochs 2 and 3 took 17 s per 50 iterations (0.35 s each; 800 iterations
would take under 5 minutes), while on an oversubscribed machine an iteration took 7 to 11 s.

Everything runs in this process, seeded; on the CPU the U-Net's weights are deterministic
for a given thread count (``torch.use_deterministic_algorithms`` during ``fit``).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import _common
import numpy as np

SHAPE, QUICK_SHAPE = (64, 128, 128), (32, 64, 64)
TRAIN_SEED, TEST_SEED = 1, 2
COUNTS = 100.0
N_SLICES = 4
ITERATIONS, QUICK_ITERATIONS = 2000, 12
TIME_BUDGET = None  # minutes; see the module docstring
PATCH = QUICK_PATCH = (32, 32, 32)
DEPTH, BASE_CHANNELS, BATCH = 3, 8, 4
AUGMENT = "default"
MIRROR = True
EPOCH_ITERATIONS = 50
N_TREES = 50
THREADS = 2
SAMPLED_PATCHES = 1000
SOIL, ROOT = 1, 2


def loadavg() -> float:
    return os.getloadavg()[0]


def slice_positions(depth: int, n_slices: int = N_SLICES) -> list[int]:
    """Indices of ``n_slices`` evenly spaced slices along an axis of ``depth`` voxels.

    Slice ``k`` is the middle of the ``k``-th of ``n_slices`` equal bins,
    ``(2k + 1) * depth // (2 n_slices)``, so no slice sits on the volume's faces.
    """
    if not 1 <= n_slices <= depth:
        raise ValueError(f"n_slices must be from 1 to the depth {depth}, got {n_slices}")
    return [(2 * k + 1) * depth // (2 * n_slices) for k in range(n_slices)]


def slice_labels(truth: np.ndarray, slices: list[int]) -> np.ndarray:
    """Sparse labels: ``truth`` (1 = soil, 2 = root) on ``slices`` of axis 0, 0 elsewhere."""
    labels = np.zeros(truth.shape, np.uint8)
    labels[slices] = truth[slices]
    return labels


def unlabelled_slices(depth: int, slices: list[int]) -> np.ndarray:
    """Boolean ``(depth,)`` selector of the slices that carry no labels."""
    keep = np.ones(depth, bool)
    keep[slices] = False
    return keep


def root_dice(predicted: np.ndarray, roots: np.ndarray, keep: np.ndarray | None = None) -> float:
    """Dice of the root class (``predicted == 2`` against ``roots != 0``), on the slices of
    axis 0 that ``keep`` selects (all when None)."""
    from niseg.metrics import dice

    pred, true = predicted == ROOT, roots != 0
    if keep is not None:
        pred, true = pred[keep], true[keep]
    return float(dice(pred, true))


def make_data(shape: tuple[int, int, int], counts: float) -> dict[str, Any]:
    """Training and test volumes, the slices and their labels."""
    from niseg.simulate import simulate_roots

    train = simulate_roots(shape=shape, counts=counts, seed=TRAIN_SEED)
    test = simulate_roots(shape=shape, counts=counts, seed=TEST_SEED)
    slices = slice_positions(shape[0])
    return {"train": train, "test": test, "slices": slices,
            "labels": slice_labels(train.truth, slices)}


def unet_params(seed: int, *, iterations: int, time_budget: float | None = None,
                patch: tuple[int, ...] = PATCH, base: int = BASE_CHANNELS,
                augment: str = AUGMENT, mirror: bool = MIRROR) -> dict[str, Any]:
    """UNetSegmenter parameters of the U-Net row (``iterations`` split into epochs of 50)."""
    epochs = max(1, -(-iterations // EPOCH_ITERATIONS))
    per_epoch = -(-iterations // epochs)
    return {"spatial_dims": 3, "depth": DEPTH, "base_channels": int(base),
            "patch_size": tuple(patch), "batch_size": BATCH, "loss": "dice_ce",
            "class_weights": None, "augment": augment, "validation": None,
            "epochs": epochs, "iterations_per_epoch": per_epoch, "time_budget": time_budget,
            "mirror": bool(mirror), "random_state": seed, "n_threads": THREADS}


def classifier_params() -> dict[str, Any]:
    """PixelClassifier parameters of the classifier row."""
    return {"features": "ilastik", "n_estimators": N_TREES, "n_jobs": THREADS,
            "random_state": 0}


def sampler_coverage(labels: np.ndarray, patch: tuple[int, ...], *, seed: int = 0,
                     n_patches: int = SAMPLED_PATCHES) -> dict[str, float]:
    """Draw patches as the U-Net's training does; how many hold labelled voxels.

    Returns ``with_labels`` (share of patches with at least one labelled voxel) and
    ``labelled_share`` (mean share of labelled voxels per patch).
    """
    from niseg.deep._losses import IGNORE
    from niseg.deep._train import PatchSampler

    target = np.where(labels == 0, IGNORE, labels.astype(np.int64) - 1)
    image = np.zeros((1, *labels.shape), np.float32)
    sampler = PatchSampler([image], [target], tuple(patch), np.random.default_rng(seed))
    with_labels, shares = 0, []
    done = 0
    while done < n_patches:
        _, y, _ = sampler.sample(min(100, n_patches - done))
        valid = (y != IGNORE).reshape(y.shape[0], -1)
        with_labels += int(valid.any(axis=1).sum())
        shares.extend(valid.mean(axis=1).tolist())
        done += y.shape[0]
    return {"with_labels": with_labels / n_patches, "labelled_share": float(np.mean(shares))}


def evaluate(model: Any, data: dict[str, Any], *, progress: Any = None) -> dict[str, Any]:
    """Fit ``model`` on the training volume's slice labels; Dice on test and unlabelled."""
    train, test = data["train"], data["test"]
    load = loadavg()
    start = time.perf_counter()
    if progress is None:
        model.fit(train.image, data["labels"])
    else:
        model.fit(train.image, data["labels"], progress=progress)
    fit_s = time.perf_counter() - start
    predicted = model.predict(test.image)
    predict_s = time.perf_counter() - start - fit_s
    on_train = model.predict(train.image)
    keep = unlabelled_slices(train.image.shape[0], data["slices"])
    return {"dice_test": root_dice(predicted, test.roots),
            "dice_unlabelled": root_dice(on_train, train.roots, keep),
            "predicted_root_fraction": float(np.mean(predicted == ROOT)),
            "fit_s": fit_s, "predict_s": predict_s, "load": max(load, loadavg())}


def warm_up(data: dict[str, Any], params: dict[str, Any]) -> float:
    """Fit the U-Net of ``params`` for 3 iterations and predict one patch; seconds taken.

    PyTorch's first passes through a network (first-use imports, set-up of the CPU
    convolution kernels for each shape) are slower than later ones, so the timed fit runs
    after this, as every benchmark times after a warm-up call.
    """
    from niseg.deep import UNetSegmenter

    start = time.perf_counter()
    short = {**params, "epochs": 1, "iterations_per_epoch": 3, "time_budget": None}
    model = UNetSegmenter(**short).fit(data["train"].image, data["labels"])
    model.predict(data["test"].image[tuple(slice(0, p) for p in params["patch_size"])])
    return time.perf_counter() - start


def _epoch_progress(seed: int) -> Any:
    start = time.perf_counter()

    def progress(done: int, total: int, text: str | None = None) -> None:
        if text and "loss" in text:  # the end of an epoch
            print(f"  ... U-Net seed {seed}: {text}, iteration {done} of {total}, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    return progress


def run_unet(data: dict[str, Any], params: dict[str, Any], *, verbose: bool = False
             ) -> dict[str, Any]:
    from niseg.deep import UNetSegmenter

    model = UNetSegmenter(**params)
    progress = _epoch_progress(int(params["random_state"])) if verbose else None
    out = evaluate(model, data, progress=progress)
    out.update(seed=int(params["random_state"]), iterations=int(model.iterations_),
               planned_iterations=int(params["epochs"] * params["iterations_per_epoch"]),
               stopped_because=model.stopped_because_,
               final_train_loss=float(model.history_[-1]["train_loss"]))
    return out


def run_classifier(data: dict[str, Any]) -> dict[str, Any]:
    from niseg.classify import PixelClassifier

    model = PixelClassifier(**classifier_params())
    out = evaluate(model, data)
    out["n_features"] = len(model.feature_names_)
    return out


def verdict(unet_dices: list[float], classifier_dice: float) -> str:
    """PASS when the U-Net's mean Dice over seeds is higher than the classifier's."""
    return "PASS" if float(np.mean(unet_dices)) > classifier_dice else "FAIL"


def fmt_mean(values: list[float], digits: int = 3) -> str:
    mean = float(np.mean(values))
    each = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"{mean:.{digits}f}" + (f" ({each})" if len(values) > 1 else "")


def table_rows(unets: list[dict[str, Any]], forest: dict[str, Any],
               coverage: dict[str, float], params: dict[str, Any],
               shape: tuple[int, ...], counts: float, slices: list[int],
               warm_up_s: float | None = None) -> list[list[str]]:
    seeds = [u["seed"] for u in unets]
    net = (f"patch {'x'.join(map(str, params['patch_size']))}, depth {params['depth']}, "
           f"base {params['base_channels']}, batch {params['batch_size']}, "
           f"augment {params['augment']}{', mirror' if params['mirror'] else ''}, "
           f"{params['epochs'] * params['iterations_per_epoch']} it, seeds {seeds}")
    load = f"{max([forest['load']] + [u['load'] for u in unets]):.1f}"
    data = f"{'x'.join(map(str, shape))}, counts {counts:g}, slices {slices}"
    test = [u["dice_test"] for u in unets]
    cp = classifier_params()
    rows = [
        [(f"1 3D U-Net ({net}) vs PixelClassifier ({cp['features']}, {cp['n_estimators']} "
          f"trees); {data}"),
         "root Dice, test volume", fmt_mean(test), f"{forest['dice_test']:.3f}",
         "U-Net > classifier", verdict(test, forest["dice_test"]), load],
        ["", "root Dice, unlabelled slices",
         fmt_mean([u["dice_unlabelled"] for u in unets]), f"{forest['dice_unlabelled']:.3f}",
         "(report)", "", ""],
        ["", "seconds fit + predict",
         "; ".join(f"{u['fit_s']:.0f} + {u['predict_s']:.1f}" for u in unets),
         f"{forest['fit_s']:.0f} + {forest['predict_s']:.1f}", "(report)", "", ""],
        ["", "iterations run / planned (stopped by)",
         "; ".join(f"{u['iterations']} / {u['planned_iterations']} ({u['stopped_because']})"
                   for u in unets), "", "(report)", "", ""],
        ["", "sampled patches with labels / labelled share",
         f"{100 * coverage['with_labels']:.1f} % / {100 * coverage['labelled_share']:.1f} %",
         "", "(report)", "", ""],
    ]
    if warm_up_s is not None:
        rows.append(["", "seconds of warm-up (3 iterations + 1 patch, not in fit)",
                     f"{warm_up_s:.0f}", "", "(report)", "", ""])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="U-Net seeds (default 0)")
    p.add_argument("--counts", type=float, default=COUNTS,
                   help=f"neutrons per pixel and projection of the simulated scan "
                        f"(default {COUNTS:g})")
    p.add_argument("--iterations", type=int,
                   help=f"U-Net iterations (default {ITERATIONS}; quick {QUICK_ITERATIONS})")
    p.add_argument("--time-budget", type=float, default=TIME_BUDGET,
                   help="U-Net safety limit in minutes (default none: fixed iterations)")
    p.add_argument("--base", type=int, default=BASE_CHANNELS,
                   help=f"U-Net base channels (default {BASE_CHANNELS})")
    p.add_argument("--patch", type=int, help="U-Net patch side (default 32)")
    p.add_argument("--augment", default=AUGMENT, choices=["none", "light", "default", "physics"],
                   help=f"U-Net augmentation preset (default {AUGMENT})")
    p.add_argument("--no-mirror", dest="mirror", action="store_false",
                   help="U-Net without test-time augmentation (default: mean over all flips)")
    args = p.parse_args(argv)
    shape = QUICK_SHAPE if args.quick else SHAPE
    patch = (args.patch,) * 3 if args.patch else (QUICK_PATCH if args.quick else PATCH)
    net_options = {"patch": patch, "base": args.base, "augment": args.augment,
                   "mirror": args.mirror}
    iterations = args.iterations or (QUICK_ITERATIONS if args.quick else ITERATIONS)
    budget = args.time_budget
    info = _common.machine()
    print(_common.header("3D U-Net vs PixelClassifier: simulated root tomogram, labelled "
                         "slices", info))
    print(f"load average at start {loadavg():.2f}; threads {THREADS}\n", flush=True)
    begin = time.perf_counter()
    data = make_data(shape, args.counts)
    train = data["train"]
    print(f"  ... volumes {shape}: roots {100 * train.metadata['root_fraction']:.2f} % of the "
          f"training voxels; labels on slices {data['slices']}: "
          f"{int(np.sum(data['labels'] == ROOT))} root, "
          f"{int(np.sum(data['labels'] == SOIL))} soil voxels", file=sys.stderr, flush=True)
    forest = run_classifier(data)
    print(f"  ... PixelClassifier: test Dice {forest['dice_test']:.4f}, fit "
          f"{forest['fit_s']:.0f} s, load {forest['load']:.1f}", file=sys.stderr, flush=True)
    coverage = sampler_coverage(data["labels"], patch)
    # Every seed shares these parameters except random_state.
    params = unet_params(args.seeds[0], iterations=iterations, time_budget=budget,
                         **net_options)
    warm_up_s = warm_up(data, params)
    unets = []
    for seed in args.seeds:
        run = run_unet(data, unet_params(seed, iterations=iterations, time_budget=budget,
                                         **net_options), verbose=True)
        print(f"  ... U-Net seed {seed}: test Dice {run['dice_test']:.4f}, "
              f"{run['iterations']} iterations ({run['stopped_because']}), fit "
              f"{run['fit_s']:.0f} s, load {run['load']:.1f}", file=sys.stderr, flush=True)
        unets.append(run)
    rows = table_rows(unets, forest, coverage, params, shape, args.counts, data["slices"],
                      warm_up_s)
    print(_common.table(["row", "figure", "niseg U-Net", "PixelClassifier", "target", "result",
                         "load"], rows, [False, False, True, True, False, False, True]))
    total = time.perf_counter() - begin
    print(f"\nwall time {total:.0f} s")
    params_json = {**params, "patch_size": list(params["patch_size"])}
    params_json.pop("random_state")
    _common.write_json(args.json, {
        "benchmark": "unet_roots3d", "machine": info, "shape": list(shape),
        "counts": args.counts, "slices": data["slices"], "unet_params": params_json,
        "classifier_params": classifier_params(), "unet": unets, "classifier": forest,
        "sampler": coverage, "warm_up_s": warm_up_s, "wall_s": total})
    return 0


if __name__ == "__main__":
    sys.exit(main())
