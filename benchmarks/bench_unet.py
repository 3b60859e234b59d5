"""UNetSegmenter on real EM data under a time budget, and its CPU inference speed and memory (issue 6).

Part 1, EM mitochondria (``../shared/data/em_mitochondria``, 768 x 1024 uint8, 0/255 mask), the
protocol of ``bench_classify.py``: fit on the left half ``[:, :512]`` with the dense mask
(``masks=``; the validation block, ``validation=0.1``, is carved from the left half only), Dice of
the foreground of ``model.predict(image[:, 512:])`` on the right half. Rows, each over
``--seeds`` (default 0 1 2) with ``time_budget=--time-budget`` minutes (default 15) and
``n_threads=2``:

a. ``UNetSegmenter(time_budget=..., random_state=seed, n_threads=2)``: self-configured sizes;
b. the slow test's settings: depth 3, base 16, patch 128, batch 4, flips and 90-degree
   rotations only.

Target: mean Dice >= 0.90. The classifier section of ``benchmarks/README.md`` supplies the
reference figures, quoted and not re-run: skimage's random forest on multiscale features
(ilastik-style) 0.725 and niseg's PixelClassifier (ilastik features, 1 stage) 0.792.

Part 2, CPU inference of the default 2-D U-Net (the self-configured net of row a, seed
``--seeds[0]``, when part 1 ran; otherwise the same self-configuration fitted for 2 iterations
only, whose speed and memory are the same as a trained net's):

- throughput (Mpx/s) on a 2048^2 float32 image (the EM image mirrored to size) in this process:
  niseg ``predict_tiled(model, image)`` (Gaussian-blended sliding window, overlap 0.5) against
  plain PyTorch, ``net(torch.from_numpy(normalized)[None, None])`` on the whole image padded to
  the net's size multiple, followed by the same argmax; both with 2 torch threads;
- peak memory on a 4096^2 image, each in a fresh subprocess: the input is made, the peak
  resident set (``VmHWM``) is reset through ``/proc/self/clear_refs``, the prediction runs, and
  ``working = VmHWM - baseline`` (includes the outputs: uint8 labels for ``predict_tiled``,
  float32 logits and labels for plain PyTorch). The plain worker runs under an address-space
  limit (``--plain-limit-gib``, default 12) and a time limit (``--plain-timeout``, 900 s); going
  over either is reported, not fatal.

``--quick``: one seed, 2-minute budget, and inference on 1024^2 (throughput) and 2048^2 (memory).

    python benchmarks/bench_unet.py [--quick] [--seeds 0 1 2] [--time-budget 15] [--skip-em]
                                    [--skip-inference] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np
from bench_classify import SPLIT, dice_right, load_em, loadavg
from bench_classify_memory import _reset_peak, _status_mib, mirror_tile

DICE_TARGET = 0.90
#: Quoted from the classifier section of benchmarks/README.md (not re-run here).
REFERENCE_RF_DICE = 0.725
PIXEL_CLASSIFIER_DICE = 0.792
THROUGHPUT_SIZE, MEMORY_SIZE = 2048, 4096
QUICK_THROUGHPUT_SIZE, QUICK_MEMORY_SIZE = 1024, 2048
THREADS = 2


def em_params(row: str, seed: int, time_budget: float) -> dict[str, Any]:
    """UNetSegmenter parameters of EM row ``"a"`` (self-configured) or ``"b"`` (slow test's)."""
    params: dict[str, Any] = {"time_budget": time_budget, "random_state": seed,
                              "n_threads": THREADS}
    if row == "b":
        from niseg.deep import AugmentConfig

        params.update(depth=3, base_channels=16, patch_size=128, batch_size=4,
                      augment=AugmentConfig.preset("none", flip_p=0.5, rot90_p=0.5))
    elif row != "a":
        raise ValueError(f"row must be 'a' or 'b', got {row!r}")
    return params


def em_run(image: np.ndarray, truth: np.ndarray, params: dict[str, Any]) -> tuple[dict, Any]:
    """Fit on the left half, predict the right half; figures and the fitted model."""
    from niseg.deep import UNetSegmenter

    model = UNetSegmenter(**params)
    load = loadavg()
    start = time.perf_counter()
    model.fit(image[:, :SPLIT], masks=truth[:, :SPLIT])
    fit_s = time.perf_counter() - start
    predicted = model.predict(image[:, SPLIT:])
    predict_s = time.perf_counter() - start - fit_s
    full = np.zeros(image.shape, bool)
    full[:, SPLIT:] = predicted == 1
    blocks = model.validation_.get("blocks", [])
    return {
        "seed": int(params["random_state"]),
        "dice": dice_right(full, truth),
        "iterations": int(model.iterations_),
        "epochs_run": len(model.history_),
        "best_epoch": int(model.best_epoch_),
        "best_val_dice": max((h["val_dice"] for h in model.history_
                              if h.get("val_dice") is not None), default=None),
        "stopped_because": model.stopped_because_,
        "validation_in_left_half": all(b["image"] == 0 for b in blocks),
        "fit_s": fit_s,
        "predict_s": predict_s,
        "config": {"patch_size": list(model.config_.patch_size), "depth": model.config_.depth,
                   "base_channels": model.config_.base_channels,
                   "batch_size": model.config_.batch_size},
        "load": max(load, loadavg()),
    }, model


def short_fit(image: np.ndarray, truth: np.ndarray) -> Any:
    """The self-configured default net, fitted for 2 iterations (for speed/memory only)."""
    from niseg.deep import UNetSegmenter

    model = UNetSegmenter(epochs=1, iterations_per_epoch=2, validation=None, augment="none",
                          random_state=0, n_threads=THREADS)
    return model.fit(image[:, :SPLIT], masks=truth[:, :SPLIT])


def test_image(image: np.ndarray, size: int) -> np.ndarray:
    """The EM image mirrored to ``size`` x ``size``, as float32."""
    return mirror_tile(image, (size, size)).astype(np.float32)


def plain_labels(model: Any, image: np.ndarray) -> np.ndarray:
    """Plain PyTorch: the whole normalized image through ``model.net_`` at once, then argmax.

    The image is reflect-padded at its end to the net's size multiple and the result cropped.
    """
    import torch

    net = model.net_
    multiple = int(net.size_multiple)
    x = model.normalizer_.transform(image)
    pad = [(0, -n % multiple) for n in x.shape]
    if any(after for _, after in pad):
        x = np.pad(x, pad, mode="reflect")
    net.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None])
        labels = torch.argmax(logits[0], dim=0).numpy().astype(np.uint8)
    del logits
    crop = tuple(slice(0, n) for n in image.shape)
    return np.asarray(model.classes_)[labels[crop]]


def tiled_labels(model: Any, image: np.ndarray) -> np.ndarray:
    from niseg.tiling import predict_tiled

    return predict_tiled(model, image)


def throughput(model: Any, size: int) -> dict[str, Any]:
    """Time predict_tiled and plain PyTorch on one ``size``^2 image in this process."""
    import torch

    image = test_image(load_em()[0], size)
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        out: dict[str, Any] = {"size": size}
        for name, func in (("tiled", tiled_labels), ("plain", plain_labels)):
            load = loadavg()
            seconds, labels = _common.best_time(lambda func=func: func(model, image),
                                                repeats=2, budget=60.0)
            out[name] = {"seconds": seconds, "mpx_s": size * size / seconds / 1e6,
                         "load": max(load, loadavg())}
            out[name + "_labels"] = labels
    finally:
        torch.set_num_threads(previous)
    a, b = out.pop("tiled_labels"), out.pop("plain_labels")
    out["labels_agree"] = float(np.mean(a == b))
    return out


# ------------------------------------------------------------------------- worker (subprocess)
def worker(variant: str, model_path: Path, size: int) -> dict[str, Any]:
    """Predict a ``size``^2 image in this fresh process; peak memory above the baseline."""
    import torch

    from niseg.models import load_model

    torch.set_num_threads(THREADS)
    model = load_model(model_path)
    model.n_threads = THREADS
    image = test_image(load_em()[0], size)
    func = tiled_labels if variant == "tiled" else plain_labels
    gc.collect()
    reset = _reset_peak()
    baseline = _status_mib("VmHWM")
    start = time.perf_counter()
    error = None
    try:
        labels = func(model, image)
        seconds = time.perf_counter() - start
        foreground = float(np.mean(labels == 1))
    except (RuntimeError, MemoryError) as exc:
        seconds, foreground = time.perf_counter() - start, None
        error = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    peak = _status_mib("VmHWM")
    return {"variant": variant, "size": size, "peak_reset": reset, "seconds": seconds,
            "baseline_mib": baseline, "peak_mib": peak, "working_mib": peak - baseline,
            "input_mib": image.nbytes / 2**20, "foreground": foreground, "error": error}


def _limit_address_space(gib: float) -> None:
    limit = int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_worker(variant: str, model_path: Path, size: int, *, limit_gib: float | None = None,
               timeout: float | None = None) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", variant,
               "--model", str(model_path), "--size", str(size)]
    preexec = None if limit_gib is None else (lambda: _limit_address_space(limit_gib))
    start = time.perf_counter()
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True,
                              timeout=timeout, preexec_fn=preexec)
    except subprocess.TimeoutExpired:
        return {"variant": variant, "size": size, "error": f"stopped after {timeout:.0f} s",
                "seconds": time.perf_counter() - start}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"variant": variant, "size": size, "seconds": time.perf_counter() - start,
                "error": f"exit status {done.returncode}: {last[:200]}"}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------------- the parent
def fmt_mean(values: list[float], digits: int = 3) -> str:
    mean = float(np.mean(values))
    each = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"{mean:.{digits}f}" + (f" ({each})" if len(values) > 1 else "")


EM_ROWS = {"a": "self-configured defaults", "b": "depth 3, base 16, patch 128, flips + rot90"}


def em_rows(image: np.ndarray, truth: np.ndarray, seeds: list[int], budget: float,
            rows: list[list[str]], results: dict[str, Any],
            which: tuple[str, ...] = ("a", "b")) -> Any:
    """Run EM rows ``which``; append table rows; return row a's first model."""
    first_model = None
    for row, title in ((r, EM_ROWS[r]) for r in which):
        runs = []
        for seed in seeds:
            run, model = em_run(image, truth, em_params(row, seed, budget))
            print(f"  ... EM {row} seed {seed}: Dice {run['dice']:.4f}, {run['iterations']} "
                  f"iterations, best epoch {run['best_epoch']}, fit {run['fit_s']:.0f} s, load "
                  f"{run['load']:.1f}", file=sys.stderr, flush=True)
            runs.append(run)
            if row == "a" and first_model is None:
                first_model = model
        results[f"em_{row}"] = runs
        dices = [r["dice"] for r in runs]
        mean = float(np.mean(dices))
        cfg = runs[0]["config"]
        name = (f"1{row} EM U-Net, {title} (patch {cfg['patch_size'][0]}, depth {cfg['depth']},"
                f" base {cfg['base_channels']}, batch {cfg['batch_size']}), {budget:g} min, "
                f"seeds {seeds}")
        rows.append([name, "Dice right half", fmt_mean(dices),
                     (f"RF (ilastik-style) {REFERENCE_RF_DICE}; PixelClassifier "
                     f"{PIXEL_CLASSIFIER_DICE}"), f"mean >= {DICE_TARGET}",
                     "PASS" if mean >= DICE_TARGET else "FAIL",
                     f"{max(r['load'] for r in runs):.1f}"])
        rows.append(["", "iterations / best epoch / epochs",
                     "; ".join(f"{r['iterations']} / {r['best_epoch']} / {r['epochs_run']}"
                               for r in runs), "", "(report)", "", ""])
        rows.append(["", "seconds fit + predict",
                     "; ".join(f"{r['fit_s']:.0f} + {r['predict_s']:.1f}" for r in runs),
                     "", "(report)", "", ""])
    return first_model


def inference_rows(model: Any, trained: str, sizes: tuple[int, int], args: Any,
                   rows: list[list[str]], results: dict[str, Any]) -> None:
    from niseg.models import save_model

    size_t, size_m = sizes
    cfg = model.config_
    net = (f"patch {cfg.patch_size[0]}, depth {cfg.depth}, base {cfg.base_channels}, "
           f"batch {cfg.batch_size}; {trained}")
    thr = throughput(model, size_t)
    results["throughput"] = {**thr, "net": net}
    rows.append([f"2 CPU inference {size_t}^2 float32, {THREADS} threads ({net})", "Mpx/s",
                 f"{thr['tiled']['mpx_s']:.3f} ({_common.fmt_time(thr['tiled']['seconds'])})",
                 (f"plain PyTorch {thr['plain']['mpx_s']:.3f} "
                 f"({_common.fmt_time(thr['plain']['seconds'])})"),
                 (f"(report: {thr['plain']['seconds'] / thr['tiled']['seconds']:.2f}x plain "
                 "speed)"), "",
                 f"{max(thr['tiled']['load'], thr['plain']['load']):.1f}"])
    rows.append(["", "labels agree", f"{100 * thr['labels_agree']:.2f} %", "", "(report)", "",
                 ""])
    folder = Path(tempfile.mkdtemp(prefix="niseg-bench-unet-"))
    try:
        path = folder / "unet.niseg"
        save_model(model, path)
        load = loadavg()
        tiled = run_worker("tiled", path, size_m)
        plain = run_worker("plain", path, size_m, limit_gib=args.plain_limit_gib,
                           timeout=args.plain_timeout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results["memory"] = {"tiled": tiled, "plain": plain,
                         "plain_limit_gib": args.plain_limit_gib}

    def cell(r: dict[str, Any]) -> str:
        if r.get("error"):
            return f"failed after {r['seconds']:.0f} s: {r['error']}"
        reset = "" if r["peak_reset"] else " (peak not reset)"
        return (f"{r['working_mib']:.0f}{reset} ({_common.fmt_time(r['seconds'])}, "
                f"{size_m ** 2 / r['seconds'] / 1e6:.3f} Mpx/s)")

    rows.append([(f"2 peak memory {size_m}^2 float32 (input {tiled.get('input_mib', 0):.0f} "
                 "MiB, fresh process each)"), "working MiB", cell(tiled),
                 f"plain PyTorch {cell(plain)}", "(report)", "",
                 f"{max(load, loadavg()):.1f}"])


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", help="EM seeds (default 0 1 2; quick 0)")
    p.add_argument("--time-budget", type=float, help="EM minutes per fit (default 15; quick 2)")
    p.add_argument("--skip-em", action="store_true", help="leave out the EM rows")
    p.add_argument("--rows", nargs="+", choices=sorted(EM_ROWS), default=["a", "b"],
                   help="EM rows to run (default a b; each takes seeds x time budget)")
    p.add_argument("--skip-inference", action="store_true",
                   help="leave out the throughput and memory rows")
    p.add_argument("--plain-limit-gib", type=float, default=12.0,
                   help="address-space limit of the plain PyTorch memory worker")
    p.add_argument("--plain-timeout", type=float, default=900.0,
                   help="seconds before the plain PyTorch memory worker is stopped")
    p.add_argument("--worker", choices=["tiled", "plain"], help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.size)))
        return 0
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    budget = args.time_budget or (2.0 if args.quick else 15.0)
    sizes = ((QUICK_THROUGHPUT_SIZE, QUICK_MEMORY_SIZE) if args.quick
             else (THROUGHPUT_SIZE, MEMORY_SIZE))
    info = _common.machine()
    print(_common.header("UNetSegmenter: EM Dice under a time budget, CPU inference", info))
    print(f"load average at start {loadavg():.2f}; torch threads {THREADS}\n", flush=True)
    image, truth = load_em()
    rows: list[list[str]] = []
    results: dict[str, Any] = {"seeds": seeds, "time_budget_min": budget}
    model = None
    if not args.skip_em:
        model = em_rows(image, truth, seeds, budget, rows, results, tuple(args.rows))
    if not args.skip_inference:
        trained = f"trained {budget:g} min on EM (row 1a, seed {seeds[0]})"
        if model is None:
            model = short_fit(image, truth)
            trained = "self-configured on EM, fitted 2 iterations only"
        inference_rows(model, trained, sizes, args, rows, results)
    print(_common.verdict_table(rows))
    _common.write_json(args.json, {"benchmark": "unet", "machine": info, **results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
