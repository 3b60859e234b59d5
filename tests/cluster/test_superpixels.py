"""Tests of SLIC superpixels and the segmentation of their means."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.cluster import region_means, slic_superpixels, superpixel_segmentation
from niseg.metrics import dice
from niseg.simulate import porous_volume


def _noisy_two_phase(noise=0.5, seed=0):
    labels, _ = porous_volume((96, 112), porosity=0.4, grain_radius=(6.0, 10.0),
                              saturation=0.0, seed=seed)
    truth = (labels == 1).astype(np.uint8)
    rng = np.random.default_rng(seed)
    return truth, (100.0 + 40.0 * truth + rng.normal(0, 40.0 * noise, truth.shape)).astype(
        np.float32)


def test_mean_image_is_piecewise_constant_per_superpixel():
    _, image = _noisy_two_phase()
    result = superpixel_segmentation(image, n_segments=200, compactness=0.3)
    sp, mean = result.superpixels, result.mean_image
    assert sp.dtype == np.int32 and sp.min() >= 1
    assert 100 <= np.unique(sp).size <= 400
    for s in np.unique(sp)[::7]:
        inside = sp == s
        assert np.ptp(mean[inside]) == 0
        assert mean[inside][0] == pytest.approx(image[inside].mean(), rel=1e-5)
    # every class is constant on each superpixel
    for s in np.unique(sp)[::5]:
        assert np.unique(result.labels[sp == s]).size == 1


@pytest.mark.parametrize("method", ["otsu", "kmeans"])
def test_segmentation_of_noisy_image_beats_pixel_threshold(method):
    from skimage.filters import threshold_otsu

    truth, image = _noisy_two_phase(noise=0.6, seed=1)
    result = superpixel_segmentation(image, classes=2, method=method, n_segments=300,
                                     compactness=0.3)
    assert result.labels.dtype == np.uint8 and set(np.unique(result.labels)) == {1, 2}
    score = dice(truth, result.labels == 2)
    pixelwise = dice(truth, image > threshold_otsu(image))
    assert score >= 0.88
    assert score > pixelwise + 0.03
    assert result.centres[0] < result.levels[0] < result.centres[1]


def test_three_classes_ordered_by_intensity_and_reproducible():
    rng = np.random.default_rng(3)
    image = np.repeat(np.array([0.0, 1.0, 2.0]), 30)[None, :].repeat(60, 0)
    image = image + rng.normal(0, 0.15, image.shape)
    a = superpixel_segmentation(image, classes=3, method="kmeans", n_segments=90, seed=4)
    b = superpixel_segmentation(image, classes=3, method="kmeans", n_segments=90, seed=4)
    assert np.array_equal(a.labels, b.labels)
    assert np.mean(a.labels == np.repeat([1, 2, 3], 30)[None, :]) > 0.97
    assert a.centres == sorted(a.centres)
    otsu = superpixel_segmentation(image, classes=3, n_segments=90)
    assert len(otsu.levels) == 2 and np.mean(otsu.labels == a.labels) > 0.97


def test_nan_pixels_get_no_superpixel_and_no_class():
    _, image = _noisy_two_phase()
    image[:10, :10] = np.nan
    result = superpixel_segmentation(image, n_segments=100, compactness=0.3)
    assert (result.superpixels[:10, :10] == 0).all() and (result.labels[:10, :10] == 0).all()
    assert np.isnan(result.mean_image[:10, :10]).all()
    assert (result.labels[10:] > 0).all()


def test_volume_superpixels():
    volume = np.zeros((16, 20, 20), dtype=np.float32)
    volume[:, :, 10:] = 1.0
    sp = slic_superpixels(volume, n_segments=20)
    assert sp.shape == volume.shape
    for s in np.unique(sp):
        assert np.unique(volume[sp == s]).size == 1


def test_region_means_values():
    means, flat = region_means(np.array([[1, 2], [3, 10]], dtype=np.uint8),
                               np.array([[1, 1], [0, 3]]))
    assert means[1] == 1.5 and np.isnan(means[2]) and means[3] == 10
    assert np.isnan(flat[1, 0]) and flat[0, 1] == 1.5
    with pytest.raises(ValueError, match="regions has shape"):
        region_means(np.zeros((2, 2)), np.zeros((2, 3), dtype=int))


@pytest.mark.parametrize(
    ("image", "kwargs", "words"),
    [
        (np.ones((20, 20)), {}, "constant"),
        (np.full((5, 5), np.nan), {}, "no finite"),
        (np.random.default_rng(0).random((20, 20)), {"classes": 1}, "classes"),
        (np.random.default_rng(0).random((4, 4)), {"n_segments": 100}, "n_segments"),
        (np.random.default_rng(0).random((20, 20)), {"compactness": 0}, "compactness"),
        (np.random.default_rng(0).random((20, 20)), {"method": "mean"}, "method"),
        (np.random.default_rng(0).random((20, 20)), {"n_segments": 4, "classes": 9}, "classes"),
        (np.zeros((2, 2, 2, 2)), {}, "2D"),
    ],
)
def test_bad_input(image, kwargs, words):
    with pytest.raises(ValueError, match=words):
        superpixel_segmentation(image, **kwargs)


@pytest.mark.slow
def test_shale_three_classes_by_mean_intensity(shared_data):
    from niseg.io import read_image

    image, _ = read_image(shared_data / "threshold_cases" / "shale-slice.tiff")
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[..., 0]
    result = superpixel_segmentation(image, classes=3, method="kmeans", n_segments=600,
                                     compactness=0.1, seed=0)
    present = np.unique(result.labels)
    assert present.tolist() == [1, 2, 3]
    means = [float(image[result.labels == k].mean()) for k in (1, 2, 3)]
    assert means[0] < means[1] < means[2]
