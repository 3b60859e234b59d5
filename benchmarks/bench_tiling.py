"""Peak memory and time of niseg.tiling.predict_tiled against predicting the whole image at once.

A float32 image (8192 x 8192, 256 MiB; 2048 x 2048 with --quick) is stored as a Zarr array on
disk (chunks 512 x 512) in a temporary folder. A ``ThresholdSegmenter(sigma=2)`` (halo 8 px) is
fitted on a 512 x 512 corner and saved as a .niseg file. Each variant then runs in a fresh
Python process that imports niseg, opens the input (and creates the output Zarr array), loads
the model and reads ``ru_maxrss`` as its baseline, then predicts:

- untiled: ``model.predict(np.asarray(image))``, then the labels are written to a Zarr array;
- tiled: ``predict_tiled(model, image, tile=T, out=zarr_array)`` (reads blocks of the Zarr
  input with their halo, writes each core into the Zarr output).

Peak memory is ``ru_maxrss`` at the end minus the baseline. Afterwards the tiled labels are
compared pixel by pixel with the untiled ones (they must be equal).

    python benchmarks/bench_tiling.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
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

CHUNK = 512
FIT_SIZE = 512


def _maxrss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------- worker (subprocess)
def worker(variant: str, folder: Path, tile: int) -> dict[str, Any]:
    """Run one variant in this (fresh) process and return its measurements."""
    import zarr

    from niseg.models import load_model
    from niseg.tiling import predict_tiled

    image = zarr.open_array(str(folder / "image.zarr"), mode="r")
    model = load_model(folder / "model.niseg")
    out_path = folder / f"labels-{variant}-{tile}.zarr"
    out = zarr.create_array(
        store=str(out_path),
        shape=image.shape,
        dtype=np.asarray(model.classes_).dtype,
        chunks=(CHUNK, CHUNK),
        overwrite=True,
    )
    baseline = _maxrss_mib()
    result: dict[str, Any] = {"variant": variant, "tile": tile, "baseline_mib": baseline}
    start = time.perf_counter()
    if variant == "untiled":
        labels = model.predict(np.asarray(image))
        result["predict_s"] = time.perf_counter() - start
        result["predict_peak_mib"] = _maxrss_mib()
        out[...] = labels
    else:
        # tile 0 means predict_tiled's default (about 4 Mpx, whole chunks)
        predict_tiled(model, image, tile=tile or None, out=out)
    result["total_s"] = time.perf_counter() - start
    result["peak_mib"] = _maxrss_mib()
    result["output"] = str(out_path)
    return result


def run_worker(variant: str, folder: Path, tile: int) -> dict[str, Any]:
    script = str(Path(__file__).resolve())
    command = [
        sys.executable,
        script,
        "--worker",
        variant,
        "--dir",
        str(folder),
        "--tile",
        str(tile),
    ]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the {variant} worker failed (exit status {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------- the parent
def make_image(path: Path, size: int, seed: int = 0) -> None:
    """Smooth bright/dark pattern plus noise, written band by band (bounded memory)."""
    import zarr

    rng = np.random.default_rng(seed)
    image = zarr.create_array(
        store=str(path), shape=(size, size), dtype=np.float32, chunks=(CHUNK, CHUNK)
    )
    x = np.arange(size, dtype=np.float32)
    across = np.sin(x / 37.0)[None, :]
    for y0 in range(0, size, CHUNK):
        y = np.arange(y0, min(y0 + CHUNK, size), dtype=np.float32)
        band = 0.5 + 0.25 * np.cos(y / 53.0)[:, None] * across
        band += rng.normal(0.0, 0.15, band.shape).astype(np.float32)
        image[y0 : y0 + band.shape[0]] = band


def fit_model(folder: Path) -> dict[str, Any]:
    import zarr

    from niseg.models import save_model
    from niseg.threshold import ThresholdSegmenter

    image = zarr.open_array(str(folder / "image.zarr"), mode="r")
    model = ThresholdSegmenter(sigma=2).fit(np.asarray(image[:FIT_SIZE, :FIT_SIZE]))
    save_model(model, folder / "model.niseg")
    return {"threshold": model.threshold_, "halo": list(model.halo)}


def count_differences(first: str, second: str) -> tuple[int, int, int]:
    """(differing pixels, total pixels, foreground pixels of the first), read in bands."""
    import zarr

    a, b = zarr.open_array(first, mode="r"), zarr.open_array(second, mode="r")
    if a.shape != b.shape:
        return a.size, a.size, 0
    differ = foreground = 0
    for y0 in range(0, a.shape[0], 4 * CHUNK):
        band_a, band_b = a[y0 : y0 + 4 * CHUNK], b[y0 : y0 + 4 * CHUNK]
        differ += int(np.count_nonzero(band_a != band_b))
        foreground += int(np.count_nonzero(band_a))
    return differ, a.size, foreground


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--size", type=int, help="image side in pixels (default 8192, quick 2048)")
    p.add_argument("--worker", choices=["untiled", "tiled"], help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--tile", type=int, default=512, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.dir, args.tile)))
        return 0

    size = args.size or (2048 if args.quick else 8192)
    tiles = [0, 512] if args.quick else [0, 512, 2048]
    info = _common.machine()
    print(
        _common.header(
            f"predict_tiled vs untiled predict, ThresholdSegmenter(sigma=2), {size} x {size} "
            f"float32 ({size * size * 4 / 2**20:.0f} MiB) in Zarr, chunks {CHUNK}",
            info,
        )
    )
    folder = Path(tempfile.mkdtemp(prefix="niseg-bench-tiling-"))
    try:
        start = time.perf_counter()
        make_image(folder / "image.zarr", size)
        fitted = fit_model(folder)
        print(
            f"input written and model fitted in {time.perf_counter() - start:.1f} s "
            f"(threshold {fitted['threshold']:.4f}, halo {fitted['halo']})\n"
        )
        untiled = run_worker("untiled", folder, 0)
        tiled = [run_worker("tiled", folder, t) for t in tiles]

        rows, records = [], []
        rows.append(
            [
                "untiled: model.predict(np.asarray(image))",
                _common.fmt_time(untiled["predict_s"]),
                f"{untiled['predict_peak_mib'] - untiled['baseline_mib']:.0f}",
                f"{untiled['baseline_mib']:.0f}",
                "(reference)",
            ]
        )
        rows.append(
            [
                "untiled, then labels written to Zarr",
                _common.fmt_time(untiled["total_s"]),
                f"{untiled['peak_mib'] - untiled['baseline_mib']:.0f}",
                f"{untiled['baseline_mib']:.0f}",
                "(reference)",
            ]
        )
        records.append({**untiled, "extra_peak_mib": untiled["peak_mib"] - untiled["baseline_mib"]})
        for result in tiled:
            differ, total, foreground = count_differences(untiled["output"], result["output"])
            extra = result["peak_mib"] - result["baseline_mib"]
            rows.append(
                [
                    f"predict_tiled(tile={result['tile'] or 'default'}, out=Zarr)",
                    _common.fmt_time(result["total_s"]),
                    f"{extra:.0f}",
                    f"{result['baseline_mib']:.0f}",
                    f"{'yes' if differ == 0 else 'NO'} ({differ} of {total} differ)",
                ]
            )
            records.append(
                {
                    **result,
                    "extra_peak_mib": extra,
                    "differing_pixels": differ,
                    "pixels": total,
                    "foreground_pixels": foreground,
                }
            )
        for record in records:
            record.pop("output", None)
        headers = [
            "variant",
            "time",
            "peak above baseline (MiB)",
            "baseline (MiB)",
            "labels equal untiled",
        ]
        print(_common.table(headers, rows, [False, True, True, True, False]))
        print(
            "\npeak above baseline = ru_maxrss after predicting minus ru_maxrss before; 0 means "
            "predicting never\nneeded more memory than the process had already used for imports "
            f"and opening. Foreground\nfraction of the labels: "
            f"{records[-1]['foreground_pixels'] / total:.3f}."
        )
        _common.write_json(
            args.json,
            {
                "benchmark": "tiling",
                "machine": info,
                "size": size,
                "chunk": CHUNK,
                "model": {"kind": "ThresholdSegmenter", "sigma": 2, **fitted},
                "results": records,
            },
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
