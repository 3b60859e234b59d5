"""Corrections applied before segmentation.

- :func:`normalize`, :func:`combine_frames`, :func:`minus_log`: open-beam / dark-current
  (flat-field) normalization of radiographs, stacks and time-of-flight cubes, and the
  attenuation ``-ln T``.
"""

from ._frames import combine_frames
from ._normalize import GUARD_COUNTS, minus_log, normalize

__all__ = [
    "GUARD_COUNTS",
    "combine_frames",
    "minus_log",
    "normalize",
]
