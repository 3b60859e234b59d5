"""Thresholds: manual, automatic, local, multi-level, hysteresis and results-based.

- :func:`threshold` -- one entry point: background correction, any method, clean-up;
- :func:`threshold_value`, :data:`AUTOMATIC_METHODS` -- automatic levels (Otsu, isodata, Li,
  mean, minimum, triangle, Yen, intermodes); :func:`intermodes_threshold`;
- :func:`multi_level_threshold` -- multi-Otsu levels for K classes;
- :func:`hysteresis_threshold`, :func:`auto_hysteresis_levels` -- weak pixels kept only where
  connected to strong ones, with an automatic choice of the two levels;
- :func:`local_threshold` -- adaptive threshold in a moving block;
- :func:`results_based_threshold` -- the level whose objects have the expected sizes;
- :func:`correct_background` -- divide or subtract a smooth illumination estimate;
- :func:`guarded_multilevel` -- multi-level labels without the "virtual skin" at edges;
- :func:`clean_binary` -- fill holes, remove small objects, opening and closing;
- :func:`try_all_thresholds` -- every automatic method side by side;
- :class:`ThresholdSegmenter` -- a trainable smoothed threshold (a :mod:`niseg.models` model).
"""

from niseg.threshold._apply import (
    clean_binary,
    correct_background,
    guarded_multilevel,
    hysteresis_threshold,
    local_threshold,
)
from niseg.threshold._core import METHODS, threshold, try_all_thresholds
from niseg.threshold._levels import (
    AUTOMATIC_METHODS,
    auto_hysteresis_levels,
    intermodes_threshold,
    multi_level_threshold,
    results_based_threshold,
    threshold_value,
)
from niseg.threshold._segmenter import ThresholdSegmenter

__all__ = [
    "AUTOMATIC_METHODS",
    "METHODS",
    "ThresholdSegmenter",
    "auto_hysteresis_levels",
    "clean_binary",
    "correct_background",
    "guarded_multilevel",
    "hysteresis_threshold",
    "intermodes_threshold",
    "local_threshold",
    "multi_level_threshold",
    "results_based_threshold",
    "threshold",
    "threshold_value",
    "try_all_thresholds",
]
