"""niseg.cluster.cluster_pixels: k-means and Gaussian mixtures on pixel features."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.cluster import cluster_pixels
from niseg.metrics import adjusted_rand_index
from niseg.simulate import Cylinder, Phantom, simulate_radiograph


@pytest.fixture(scope="module")
def twins():
    """Neutron and X-ray radiographs of one phantom: aluminium is invisible to neutrons
    (like the open beam) and its thickness makes it look like the water to 60 keV X-rays."""
    al, water = 0.137, 0.5  # cm: equal X-ray attenuation mu * d at 60 keV
    phantom = Phantom(shapes=[
        Cylinder(material="aluminium", centre=(0.8, 0.8), radius=0.55, thickness=al),
        Cylinder(material="water", centre=(1.7, 1.7), radius=0.6, thickness=water),
        Cylinder(material="aluminium", centre=(0.7, 1.9), radius=0.4, thickness=al),
        Cylinder(material="water", centre=(1.9, 0.6), radius=0.45, thickness=water),
    ], field_of_view_cm=2.56)
    common = {"size": 64, "pixel_size_um": 400.0, "phantom": phantom, "beam_falloff": 0.0}
    neutron = simulate_radiograph(counts=1000.0, seed=1, **common)
    xray = simulate_radiograph(counts=5000.0, seed=2, radiation="xray", energy_kev=60.0,
                               **common)
    return neutron.image, xray.image, neutron.truth


def _levels(size=40, seed=0, levels=(10.0, 50.0, 90.0), noise=2.0):
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(1, len(levels) + 1), size * size // len(levels) + 1)[
        : size * size].reshape(size, size)
    image = np.asarray(levels)[truth - 1] + rng.normal(0, noise, truth.shape)
    return image.astype(np.float32), truth


def test_two_images_separate_what_neither_image_can(twins):
    neutron, xray, truth = twins
    scores = {}
    for name, images in [("neutron", neutron), ("xray", xray), ("both", [neutron, xray])]:
        labels, _ = cluster_pixels(images, classes=3, seed=0)
        scores[name] = adjusted_rand_index(truth, labels)
    assert scores["both"] > 0.98
    assert scores["neutron"] < 0.6 and scores["xray"] < 0.6


def test_label_order_and_centres_in_original_units(twins):
    neutron, xray, truth = twins
    labels, info = cluster_pixels([neutron, xray], classes=3, seed=0)
    centres = np.asarray(info["centres"])
    assert info["feature_names"] == ["image 1 intensity", "image 2 intensity"]
    assert np.all(np.diff(centres[:, 0]) >= 0)  # numbered by the neutron intensity
    # Cluster 1 is the water (dark to neutrons), the brightest in both is the open beam.
    assert np.mean(truth[labels == 1] == 2) > 0.98
    open_beam = labels[truth == 0]
    assert np.bincount(open_beam).argmax() == 3
    np.testing.assert_allclose(centres[2], [neutron[truth == 0].mean(), xray[truth == 0].mean()],
                               rtol=0.01)
    assert sum(info["pixel_counts"]) == truth.size and abs(sum(info["fractions"]) - 1) < 1e-9


def test_standardization_makes_units_irrelevant(twins):
    neutron, xray, _ = twins
    labels, info = cluster_pixels([neutron, xray], classes=3, seed=0)
    scaled, info_scaled = cluster_pixels([neutron, 1000 * xray], classes=3, seed=0)
    np.testing.assert_array_equal(labels, scaled)
    np.testing.assert_allclose(np.asarray(info_scaled["centres"])[:, 1],
                               1000 * np.asarray(info["centres"])[:, 1], rtol=1e-4)


def test_deterministic_for_a_seed_and_subsampled_fit(twins):
    neutron, xray, truth = twins
    a, info_a = cluster_pixels([neutron, xray], classes=3, seed=5, max_fit_samples=500)
    b, _ = cluster_pixels([neutron, xray], classes=3, seed=5, max_fit_samples=500)
    np.testing.assert_array_equal(a, b)
    assert info_a["fit_samples"] == 500 and info_a["valid_pixels"] == truth.size
    assert adjusted_rand_index(truth, a) > 0.98  # every pixel labelled from a small fit


def test_gmm_separates_the_twins(twins):
    neutron, xray, truth = twins
    labels, info = cluster_pixels([neutron, xray], classes=3, model="gmm", seed=0)
    assert info["model"] == "gmm" and labels.dtype == np.uint8
    assert adjusted_rand_index(truth, labels) > 0.98


@pytest.mark.parametrize(("model", "criterion"), [("kmeans", "silhouette"), ("gmm", "bic")])
def test_auto_finds_three_clusters(model, criterion):
    image, truth = _levels()
    labels, info = cluster_pixels(image, classes="auto", model=model, max_classes=6, seed=0)
    assert info["criterion"] == criterion and sorted(info["scores"]) == [2, 3, 4, 5, 6]
    assert info["classes"] == 3
    best = (max if criterion == "silhouette" else min)(info["scores"].values())
    assert info["scores"][3] == best
    np.testing.assert_array_equal(labels, truth)  # ordered by intensity


def test_position_weight_makes_clusters_compact():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (40, 40)).astype(np.float32)  # no structure at all

    def same_as_right_neighbour(labels):
        return np.mean(labels[:, 1:] == labels[:, :-1])

    plain, _ = cluster_pixels(image, classes=2, seed=0)
    placed, info_placed = cluster_pixels(image, classes=2, position_weight=5.0, seed=0)
    assert 0.4 < same_as_right_neighbour(plain) < 0.6  # split by value: salt and pepper
    assert same_as_right_neighbour(placed) > 0.95 or np.mean(placed[1:] == placed[:-1]) > 0.95
    assert info_placed["feature_names"][-2:] == ["position y", "position x"]
    centres = np.asarray(info_placed["centres"])
    assert np.all((centres[:, 1:] >= 0) & (centres[:, 1:] <= 39))  # pixel coordinates


def test_valid_mask_excludes_pixels_and_allows_nan():
    image, truth = _levels(levels=(10.0, 50.0))
    image = image.copy()
    image[:5] = np.nan
    image[-5:] = 1e6  # padding that would grab a cluster of its own
    valid = np.ones(image.shape, bool)
    valid[:5] = valid[-5:] = False
    labels, info = cluster_pixels(image, classes=2, valid_mask=valid, seed=0)
    assert np.all(labels[~valid] == 0)
    np.testing.assert_array_equal(labels[valid], truth[valid])
    assert info["valid_pixels"] == valid.sum() and sum(info["pixel_counts"]) == valid.sum()


def test_filters_and_3d_volume():
    rng = np.random.default_rng(2)
    volume = rng.normal(0, 1, (8, 24, 24)).astype(np.float32)
    volume[:, :, 12:] += 6
    labels, info = cluster_pixels(volume, classes=2, features=("gaussian", "gradient"),
                                  sigmas=(1.0,), seed=0)
    assert labels.shape == volume.shape
    assert info["feature_names"] == ["image 1 gaussian s=1", "image 1 gradient s=1"]
    assert np.mean(labels[:, :, :10] == 1) > 0.95 and np.mean(labels[:, :, 14:] == 2) > 0.95


def test_bad_input():
    image, _ = _levels(size=4, levels=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"classes=20 is larger than the number of valid "
                                         r"pixels \(16\)"):
        cluster_pixels(image, classes=20)
    with pytest.raises(ValueError, match="constant image"):
        cluster_pixels(np.full((8, 8), 3.0), classes=2)
    nan = image.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"images\[0\] contains NaN.*valid_mask"):
        cluster_pixels(nan, classes=2)
    with pytest.raises(ValueError, match="NaN or infinite values inside valid_mask"):
        cluster_pixels(nan, classes=2, valid_mask=np.ones((4, 4), bool))
    with pytest.raises(ValueError, match=r"images\[1\] has shape \(5, 4\)"):
        cluster_pixels([image, np.zeros((5, 4))], classes=2)
    with pytest.raises(ValueError, match=r"valid_mask has shape \(3, 3\)"):
        cluster_pixels(image, classes=2, valid_mask=np.ones((3, 3)))
    with pytest.raises(ValueError, match="model must be one of kmeans, gmm"):
        cluster_pixels(image, classes=2, model="dbscan")
    with pytest.raises(ValueError, match="classes must be a whole number or 'auto'"):
        cluster_pixels(image, classes="many")
    with pytest.raises(ValueError, match="classes must be between 2 and 255"):
        cluster_pixels(image, classes=1)
    with pytest.raises(ValueError, match="position_weight must be a number >= 0"):
        cluster_pixels(image, classes=2, position_weight=-1)
    with pytest.raises(ValueError, match="valid_mask selects no pixels"):
        cluster_pixels(image, classes=2, valid_mask=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="only 2 distinct"):
        cluster_pixels(np.repeat([1.0, 2.0], 8).reshape(4, 4), classes=3)


@pytest.mark.slow
def test_real_neutron_shell_three_classes_by_intensity(shared_data):
    shell = np.load(shared_data / "neutron_xray_shell" / "shellN.npy").astype(np.float32)
    padding = shell == 0  # the rotated scan is padded with zero wedges
    labels, info = cluster_pixels(shell, classes=3, valid_mask=~padding, seed=0)
    assert info["classes"] == 3 and all(c > 0 for c in info["pixel_counts"])
    assert np.all(labels[padding] == 0) and np.all(labels[~padding] > 0)
    means = [float(shell[labels == c].mean()) for c in (1, 2, 3)]
    assert means == sorted(means)
    patches = [(slice(a, a + 40), slice(b, b + 40)) for a in (60, -100) for b in (60, -100)]
    background = np.concatenate([labels[p].ravel() for p in patches])
    assert np.all(shell[tuple(np.s_[60:100, 60:100])] > 0)
    assert np.mean(background == 1) > 0.99  # the open beam around the shell is one class
    # Without the mask the zero padding takes the darkest cluster for itself.
    unmasked, _ = cluster_pixels(shell, classes=3, seed=0)
    assert np.all(unmasked[padding] == 1) and np.mean(unmasked[~padding] == 1) < 0.01
