"""Corrections applied before segmentation.

- :func:`normalize`, :func:`combine_frames`, :func:`minus_log`: open-beam / dark-current
  (flat-field) normalization of radiographs, stacks and time-of-flight cubes, and the
  attenuation ``-ln T``.
- :func:`detect_spots`, :func:`clean_spots`, :class:`KNNSpotDetector`: gamma spots, dead and
  hot pixels (bright, dark or both), in images, stacks and along the frame axis.
"""

from ._frames import combine_frames
from ._normalize import GUARD_COUNTS, minus_log, normalize
from ._spots import SPOT_METHODS, SPOT_POLARITIES, clean_spots, detect_spots
from ._spots_knn import KNNSpotDetector

__all__ = [
    "GUARD_COUNTS",
    "KNNSpotDetector",
    "SPOT_METHODS",
    "SPOT_POLARITIES",
    "clean_spots",
    "combine_frames",
    "detect_spots",
    "minus_log",
    "normalize",
]
