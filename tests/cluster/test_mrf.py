"""Tests of the Markov random field segmentation."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from niseg.cluster import mrf_segmentation
from niseg.metrics import dice
from niseg.simulate import porous_volume

HAVE_MAXFLOW = importlib.util.find_spec("maxflow") is not None


def _noisy_two_phase(noise=0.6, seed=3, shape=(128, 128)):
    labels, _ = porous_volume(shape, porosity=0.4, grain_radius=(5.0, 9.0), saturation=0.0,
                              seed=seed)
    truth = (labels == 1).astype(np.uint8)
    rng = np.random.default_rng(seed)
    image = (truth + rng.normal(0, noise, truth.shape)).astype(np.float32)
    return truth, image


@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("init", ["kmeans", "otsu"])
def test_mrf_beats_otsu_on_noisy_two_phase_image(init, connectivity):
    from skimage.filters import threshold_otsu

    truth, image = _noisy_two_phase()
    otsu = dice(truth, image > threshold_otsu(image))
    result = mrf_segmentation(image, classes=2, beta=1.0, init=init, connectivity=connectivity)
    score = dice(truth, result.labels == 2)
    assert otsu < 0.85
    assert score > otsu + 0.1
    assert score > 0.93
    # ICM never raises the energy, and the model found the two phases.
    assert all(b <= a + 1e-6 for a, b in zip(result.energy, result.energy[1:]))
    assert result.means[0] == pytest.approx(0.0, abs=0.1)
    assert result.means[1] == pytest.approx(1.0, abs=0.1)
    assert result.stds[0] == pytest.approx(0.6, abs=0.06)


def test_beta_zero_is_pixelwise_maximum_likelihood():
    _, image = _noisy_two_phase(shape=(48, 40))
    result = mrf_segmentation(image, beta=0.0)
    assert np.array_equal(result.labels, result.initial)
    assert result.iterations == 1


def test_three_classes_in_3d_with_26_neighbours():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.array([1, 2, 3], dtype=np.uint8), 8)[None, None, :].repeat(12, 0)
    truth = truth.repeat(16, 1)
    image = truth + rng.normal(0, 0.5, truth.shape)
    pixelwise = mrf_segmentation(image, classes=3, beta=0.0, seed=1)
    result = mrf_segmentation(image, classes=3, beta=0.8, connectivity=3, seed=1)
    assert result.labels.shape == truth.shape and result.labels.dtype == np.uint8
    assert np.mean(result.labels == truth) > np.mean(pixelwise.labels == truth) + 0.1
    assert np.mean(result.labels == truth) > 0.95
    again = mrf_segmentation(image, classes=3, beta=0.8, connectivity=3, seed=1)
    assert np.array_equal(result.labels, again.labels)


def test_mask_and_nan_pixels_get_zero():
    _, image = _noisy_two_phase(shape=(40, 50))
    image[0, :] = np.nan
    mask = np.ones(image.shape, dtype=bool)
    mask[:, :5] = False
    result = mrf_segmentation(image, beta=1.0, mask=mask)
    assert (result.labels[0] == 0).all() and (result.labels[:, :5] == 0).all()
    assert (result.labels[1:, 5:] > 0).all()


def test_graph_cut_gives_clear_error_or_global_minimum():
    truth, image = _noisy_two_phase(shape=(64, 64))
    if not HAVE_MAXFLOW:
        with pytest.raises(ImportError, match="PyMaxflow"):
            mrf_segmentation(image, beta=1.0, optimizer="graphcut")
        return
    icm = mrf_segmentation(image, beta=1.0)
    cut = mrf_segmentation(image, beta=1.0, optimizer="graphcut")
    assert cut.energy[-1] <= icm.energy[-1] + 1e-6
    assert dice(truth, cut.labels == 2) > 0.9


@pytest.mark.parametrize(
    ("image", "kwargs", "words"),
    [
        (np.ones((10, 10)), {}, "constant"),
        (np.arange(4.0).reshape(2, 2), {"classes": 5}, "classes is 5"),
        (np.random.default_rng(0).random((8, 8)), {"classes": 1}, "classes"),
        (np.random.default_rng(0).random((8, 8)), {"beta": -1.0}, "beta"),
        (np.random.default_rng(0).random((8, 8)), {"connectivity": 3}, "connectivity"),
        (np.random.default_rng(0).random((8, 8)), {"init": "random"}, "init"),
        (np.random.default_rng(0).random((8, 8)), {"optimizer": "sa"}, "optimizer"),
        (np.random.default_rng(0).random((8, 8)), {"classes": 3, "optimizer": "graphcut"},
         "classes=2"),
        (np.random.default_rng(0).random((8, 8)), {"mask": np.ones((8, 9))}, "mask has shape"),
        (np.zeros(5), {}, "2D"),
    ],
)
def test_bad_input(image, kwargs, words):
    with pytest.raises(ValueError, match=words):
        mrf_segmentation(image, **kwargs)
