"""niseg.features: pixel feature stacks and standardization."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from niseg.features import PIXEL_FILTERS, pixel_features, standardize


def _square(size=32):
    a = np.zeros((size, size), np.float32)
    a[8:24, 8:24] = 10.0
    return a


def test_columns_follow_filter_order_and_match_scipy():
    a = _square()
    feats, names = pixel_features(a, filters=("laplacian", "intensity", "gaussian"),
                                  sigmas=(1.0, 2.0))
    assert names == ["image 1 intensity", "image 1 gaussian s=1", "image 1 gaussian s=2",
                     "image 1 laplacian s=1", "image 1 laplacian s=2"]
    assert feats.shape == (32, 32, 5) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats[..., 0], a)
    np.testing.assert_allclose(feats[..., 2], ndi.gaussian_filter(a, 2.0), atol=1e-5)
    np.testing.assert_allclose(feats[..., 3], ndi.gaussian_laplace(a, 1.0), atol=1e-4)


def test_gradient_and_dog_respond_at_edges_only():
    a = _square()
    feats, names = pixel_features(a, filters=("gradient", "dog"), sigmas=1.0)
    grad = feats[..., names.index("image 1 gradient s=1")]
    np.testing.assert_allclose(grad, ndi.gaussian_gradient_magnitude(a, 1.0), atol=1e-4)
    assert grad[16, 8] > 2.0 and grad[16, 16] < 1e-3 and grad[2, 2] < 1e-3
    dog = feats[..., 1]
    assert abs(dog[16, 16]) < 1e-3 and dog[16, 8] > 0.5  # inside edge is brighter than blur


def test_several_images_and_position_with_spacing():
    a = _square(16)
    feats, names = pixel_features([a, -a], filters=("intensity",), position=True,
                                  spacing=(2.0, 0.5))
    assert names == ["image 1 intensity", "image 2 intensity", "position y", "position x"]
    np.testing.assert_array_equal(feats[..., 1], -a)
    assert feats[3, 5, 2] == 6.0 and feats[3, 5, 3] == 2.5


def test_spacing_scales_sigma_per_axis():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 32, 32)).astype(np.float32)
    feats, _ = pixel_features(a, filters=("gaussian",), sigmas=2.0, spacing=(4.0, 1.0, 1.0))
    np.testing.assert_allclose(feats[..., 0], ndi.gaussian_filter(a, (0.5, 2.0, 2.0)),
                               atol=1e-5)


def test_bad_input():
    a = _square()
    with pytest.raises(ValueError, match="unknown filter 'sobel'"):
        pixel_features(a, filters=("sobel",))
    with pytest.raises(ValueError, match="sigmas must be positive"):
        pixel_features(a, filters=("gaussian",), sigmas=(0.0,))
    with pytest.raises(ValueError, match=r"images\[1\] has shape \(8, 8\)"):
        pixel_features([a, np.zeros((8, 8))])
    nan = a.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pixel_features(nan)
    with pytest.raises(ValueError, match="spacing must be 2 positive numbers"):
        pixel_features(a, spacing=(1.0,))
    with pytest.raises(TypeError, match="images must be an array"):
        pixel_features("image.tif")
    assert set(PIXEL_FILTERS) == {"intensity", "gaussian", "gradient", "dog", "laplacian"}


def test_standardize_uses_masked_statistics_and_keeps_constant_features():
    f = np.stack([np.arange(6.0).reshape(2, 3), np.full((2, 3), 7.0)], axis=-1)
    mask = np.array([[True, True, False], [False, False, False]])
    scaled, mean, std = standardize(f, mask=mask)
    assert mean.tolist() == [0.5, 7.0] and std.tolist() == [0.5, 1.0]
    assert scaled[0, 0].tolist() == [-1.0, 0.0] and scaled[1, 2, 0] == 9.0
    assert scaled.dtype == np.float32
    with pytest.raises(ValueError, match=r"mask has shape \(3,\)"):
        standardize(f, mask=np.ones(3, bool))
    with pytest.raises(ValueError, match="selects no pixels"):
        standardize(f, mask=np.zeros((2, 3), bool))
