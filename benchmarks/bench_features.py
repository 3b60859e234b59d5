"""Filter-bank speed: niseg's feature presets next to scikit-image's multiscale features.

Data: the EM image ``../shared/data/em_mitochondria/em_image.png`` (768 x 1024, 8 bit),
read once; with --quick its top-left 256 x 256 corner. Each line is the fastest of a few runs
in the same process (one run when a call takes over a second):

- niseg ``compute_features`` with the ``ilastik`` preset (intensity + 6 filters x 7 scales)
  and the ``fast`` preset (intensity + Gaussian, LoG, gradient magnitude at 1, 3.5, 10);
- scikit-image ``multiscale_basic_features(image, sigma_min=1, sigma_max=16)`` (intensity,
  edges and texture at 5 scales), the reference pipeline of the pixel-classifier issue.

    python benchmarks/bench_features.py [--quick] [--json OUT]
"""

from __future__ import annotations

from pathlib import Path

import _common
from skimage import io as skio
from skimage.feature import multiscale_basic_features

from niseg.features import FeatureSpec, compute_features

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "em_mitochondria"


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    image = skio.imread(DATA / "em_image.png")
    if image.ndim == 3:
        image = image[..., 0]
    if args.quick:
        image = image[:256, :256]
    info = _common.machine()
    print(_common.header("niseg.features.compute_features vs skimage multiscale_basic_features",
                         info))
    print(f"image {image.shape[0]} x {image.shape[1]}, dtype {image.dtype}\n")
    rows = []
    results = {}
    for name in ("ilastik", "fast"):
        spec = FeatureSpec.preset(name)
        t, f = _common.best_time(lambda spec=spec: compute_features(image, spec), repeats=3,
                                 budget=1.0)
        rows.append([f"niseg {name} preset", f.shape[-1], _common.fmt_time(t)])
        results[f"niseg_{name}"] = {"seconds": t, "features": int(f.shape[-1])}
        del f
    t, f = _common.best_time(
        lambda: multiscale_basic_features(image, sigma_min=1, sigma_max=16), repeats=3,
        budget=1.0)
    rows.append(["skimage multiscale_basic_features(1, 16)", f.shape[-1], _common.fmt_time(t)])
    results["skimage_multiscale"] = {"seconds": t, "features": int(f.shape[-1])}
    print(_common.table(["features", "count", "time"], rows, [False, True, True]))
    ratio = results["skimage_multiscale"]["seconds"] / results["niseg_ilastik"]["seconds"]
    print(f"\nniseg ilastik preset: {results['niseg_ilastik']['features']} features in "
          f"{ratio:.2f}x skimage's time ratio (skimage / niseg)")
    _common.write_json(args.json, {"machine": info, "image_shape": list(image.shape),
                                   "results": results})


if __name__ == "__main__":
    main()
