"""Train the spot detector shipped with niseg (src/niseg/deep/spot_cnn.niseg).

The exact command that wrote the shipped file (from the repository root, on a CPU):

    python benchmarks/train_spot_cnn.py --out src/niseg/deep/spot_cnn.niseg --overwrite

Defaults: seed 0, 40 training and 8 validation images of 192 x 192 pixels from
``niseg.simulate.simulate_spots`` (counts log-uniform 50-20 000, blur 0.7-1.5 px, spots on
1 % of the pixels, a third of them dark), a U-Net of depth 2 with 8 base channels, 3 000
AdamW steps of 16 patches of 64 x 64 pixels, Dice + cross-entropy loss, one torch thread
(so that the same seed gives the same weights: the SHA-256 of ``weights.safetensors``, stored
in the file's ``model.json`` under ``checksums``, is printed at the end and matches between
runs on the same torch version). It took 396 s on one (shared) CPU core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path

import torch

from niseg.deep import train_spot_cnn
from niseg.models import save_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("spot_cnn.niseg"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--validation", type=int, default=8)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"  step {done}/{total}  ({time.perf_counter() - start:.0f} s)", flush=True)

    model = train_spot_cnn(n_images=args.images, n_validation=args.validation, size=args.size,
                           iterations=args.iterations, seed=args.seed, progress=progress)
    # A fixed date keeps model.json identical between runs with the same settings.
    written = save_model(model, args.out, overwrite=args.overwrite,
                         provenance={"date": "fixed (benchmarks/train_spot_cnn.py)"})
    with zipfile.ZipFile(written) as zf:
        info = json.loads(zf.read("model.json"))
    print(f"wrote {written} ({written.stat().st_size / 1024:.0f} kB) in "
          f"{time.perf_counter() - start:.0f} s; threshold {model.threshold_:.2f}; "
          f"loss curve {[round(v, 3) for v in model.loss_curve_]}")
    print(f"weights.safetensors sha256 {info['checksums']['weights.safetensors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
