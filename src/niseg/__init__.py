"""niseg: segmentation of neutron, X-ray and electron-microscopy images.

The package is a library first; the ``niseg`` command line and the reports are thin layers
over the public functions of its sub-packages:

- :mod:`niseg.io` reads and writes images with their axes and metadata;
- :mod:`niseg.preprocess` normalizes by open beam and dark current and cleans spots;
- :mod:`niseg.simulate` makes radiographs, tomograms, roots and ToF cubes with exact truth;
- :mod:`niseg.features` computes per-pixel filter features;
- :mod:`niseg.threshold` thresholds images (and a trainable smoothed-threshold segmenter);
- :mod:`niseg.cluster` clusters pixels and spectra, superpixels, quad trees, MRFs;
- :mod:`niseg.classify` trains pixel classifiers on a few brush strokes;
- :mod:`niseg.objects` labels and measures objects;
- :mod:`niseg.metrics` measures segmentation quality (:mod:`niseg.robustness` over many
  simulated realizations);
- :mod:`niseg.models` defines the ``Segmenter`` protocol and the ``.niseg`` model file;
- :mod:`niseg.tiling` predicts in tiles with halos, in bounded memory;
- :mod:`niseg.report` draws figures and writes self-contained HTML reports.

Sub-packages are imported on first use, so ``import niseg`` stays fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("niseg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_SUBMODULES = (
    "io",
    "preprocess",
    "simulate",
    "features",
    "threshold",
    "cluster",
    "classify",
    "objects",
    "metrics",
    "robustness",
    "models",
    "tiling",
    "report",
    "batch",
    "demo",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"niseg.{name}")
    raise AttributeError(f"module 'niseg' has no attribute {name!r}")
