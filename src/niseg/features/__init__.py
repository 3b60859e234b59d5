"""Per-pixel feature vectors for clustering and pixel classification.

- :func:`pixel_features` -- intensities of one or more co-registered images, Gaussian
  smoothing, gradient magnitude, difference of Gaussians and Laplacian at chosen scales,
  and pixel position, stacked on a last axis with a name for each feature;
- :func:`standardize` -- zero mean and unit standard deviation per feature, so that no
  feature dominates a distance by its units;
- :data:`PIXEL_FILTERS` -- the filter names :func:`pixel_features` knows.
"""

from ._pixel import PIXEL_FILTERS, pixel_features, standardize

__all__ = ["PIXEL_FILTERS", "pixel_features", "standardize"]
