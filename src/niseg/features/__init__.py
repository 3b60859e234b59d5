"""Per-pixel feature vectors for clustering and pixel classification.

- :func:`pixel_features` -- intensities of one or more co-registered images, Gaussian
  smoothing, gradient magnitude, difference of Gaussians and Laplacian at chosen scales,
  and pixel position, stacked on a last axis with a name for each feature;
- :func:`standardize` -- zero mean and unit standard deviation per feature, so that no
  feature dominates a distance by its units;
- :data:`PIXEL_FILTERS` -- the filter names :func:`pixel_features` knows;
- :class:`FeatureSpec` -- the filter bank of the pixel classifier (ilastik's filters x
  scales, local statistics, raw neighbourhood, position), with presets and a ``halo``;
- :func:`compute_features` -- the features of a :class:`FeatureSpec` for a 2D/3D,
  multi-channel, anisotropic image in float32, bit-exact on crops padded by the halo;
- :func:`symmetric_eigenvalues` -- closed-form eigenvalues of 2x2 / 3x3 symmetric fields.
"""

from ._filters import compute_features, symmetric_eigenvalues
from ._pixel import PIXEL_FILTERS, pixel_features, standardize
from ._spec import FILTERS, ILASTIK_SCALES, LOCAL_STATS, FeatureSpec

__all__ = ["FILTERS", "ILASTIK_SCALES", "LOCAL_STATS", "PIXEL_FILTERS", "FeatureSpec",
           "compute_features", "pixel_features", "standardize", "symmetric_eigenvalues"]
