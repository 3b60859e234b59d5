"""Unsupervised clustering of pixels into classes.

k-means and Gaussian mixtures on pixel feature vectors (``cluster_pixels``).

Region-based methods: SLIC superpixels and a segmentation of their means
(``slic_superpixels``, ``region_means``, ``superpixel_segmentation``), quad-tree
decomposition (``quadtree``), and Markov random fields with a Potts prior optimised by ICM or
graph cut (``mrf_segmentation``).

Spectral clustering of wavelength-resolved (time-of-flight) cubes (``cluster_spectra``,
``tof_to_wavelength``).
"""

from ._kmeans import CLUSTER_MODELS, MAX_FIT_SAMPLES, cluster_pixels
from ._mrf import MRF_INITS, MRF_OPTIMIZERS, MRFSegmentation, mrf_segmentation
from ._quadtree import QuadTree, quadtree
from ._spectral import cluster_spectra, tof_to_wavelength
from ._superpixels import (
    SUPERPIXEL_METHODS,
    SuperpixelSegmentation,
    region_means,
    slic_superpixels,
    superpixel_segmentation,
)

__all__ = [
    "CLUSTER_MODELS",
    "MAX_FIT_SAMPLES",
    "MRF_INITS",
    "MRF_OPTIMIZERS",
    "SUPERPIXEL_METHODS",
    "MRFSegmentation",
    "QuadTree",
    "SuperpixelSegmentation",
    "cluster_pixels",
    "cluster_spectra",
    "mrf_segmentation",
    "quadtree",
    "region_means",
    "slic_superpixels",
    "superpixel_segmentation",
    "tof_to_wavelength",
]
