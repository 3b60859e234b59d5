"""Tests of the Markov random field segmentation."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

from niseg.cluster import mrf_segmentation
from niseg.metrics import adjusted_rand_index, dice
from niseg.simulate import porous_volume


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


@pytest.mark.parametrize("optimizer", ["icm", "graphcut"])
def test_three_classes_in_3d_with_26_neighbours(optimizer):
    rng = np.random.default_rng(0)
    truth = np.repeat(np.array([1, 2, 3], dtype=np.uint8), 8)[None, None, :].repeat(12, 0)
    truth = truth.repeat(16, 1)
    image = truth + rng.normal(0, 0.5, truth.shape)
    pixelwise = mrf_segmentation(image, classes=3, beta=0.0, seed=1)
    result = mrf_segmentation(image, classes=3, beta=0.8, connectivity=3, seed=1,
                              optimizer=optimizer)
    assert result.labels.shape == truth.shape and result.labels.dtype == np.uint8
    assert np.mean(result.labels == truth) > np.mean(pixelwise.labels == truth) + 0.1
    assert np.mean(result.labels == truth) > 0.95
    again = mrf_segmentation(image, classes=3, beta=0.8, connectivity=3, seed=1,
                             optimizer=optimizer)
    assert np.array_equal(result.labels, again.labels)


@pytest.mark.parametrize(("optimizer", "classes"), [("icm", 2), ("graphcut", 2),
                                                    ("graphcut", 3)])
def test_mask_and_nan_pixels_get_zero(optimizer, classes):
    _, image = _noisy_three_phase(shape=(40, 50))
    image[0, :] = np.nan
    mask = np.ones(image.shape, dtype=bool)
    mask[:, :5] = False
    result = mrf_segmentation(image, classes=classes, beta=1.0, mask=mask, optimizer=optimizer)
    assert (result.labels[0] == 0).all() and (result.labels[:, :5] == 0).all()
    assert (result.labels[1:, 5:] > 0).all()
    assert set(np.unique(result.labels[1:, 5:])) == set(range(1, classes + 1))
    # Masked pixels are not neighbours: the energy counts only pairs inside.
    kept = np.zeros(image.shape, dtype=bool)
    kept[1:, 5:] = True
    assert result.energy[-1] == pytest.approx(
        _energy(np.where(kept, result.labels, 0), image, result, 1.0, FOUR), rel=1e-6)


def _noisy_three_phase(noise=0.5, seed=2, shape=(96, 96)):
    labels, _ = porous_volume(shape, porosity=0.5, grain_radius=(4.0, 8.0), saturation=0.5,
                              seed=seed)
    # Air darkest, then water, then quartz: classes 1, 2, 3 by increasing mean.
    truth = np.array([1, 3, 2], dtype=np.uint8)[labels]
    rng = np.random.default_rng(seed)
    image = (truth + rng.normal(0, noise, truth.shape)).astype(np.float32)
    return truth, image


def _energy(labels, image, result, beta, offsets):
    """The MRF energy, written out independently of the module, in float64."""
    means, stds, priors = (np.array(v) for v in (result.means, result.stds, result.priors))
    valid = labels > 0
    k = np.clip(labels.astype(int) - 1, 0, None)
    x = np.where(valid, image, 0).astype(np.float64)
    unary = (x - means[k]) ** 2 / (2 * stds[k] ** 2) + np.log(stds[k] / priors[k])
    total = unary[valid].sum()
    for off in offsets:
        a = tuple(slice(0, n - d) if d >= 0 else slice(-d, n) for d, n in zip(off, labels.shape))
        b = tuple(slice(d, n) if d >= 0 else slice(0, n + d) for d, n in zip(off, labels.shape))
        total += beta * np.count_nonzero(valid[a] & valid[b] & (labels[a] != labels[b]))
    return total


FOUR = [(0, 1), (1, 0)]


def test_graph_cut_without_pymaxflow_gives_clear_error(monkeypatch):
    _, image = _noisy_two_phase(shape=(32, 32))
    # A None entry makes `import maxflow` fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "maxflow", None)
    for classes in (2, 3):
        with pytest.raises(ImportError, match="PyMaxflow"):
            mrf_segmentation(image, classes=classes, beta=1.0, optimizer="graphcut")


def test_two_class_graph_cut_is_the_global_minimum():
    truth, image = _noisy_two_phase(shape=(64, 64))
    icm = mrf_segmentation(image, beta=1.0)
    cut = mrf_segmentation(image, beta=1.0, optimizer="graphcut")
    assert cut.iterations == 1
    assert cut.energy[-1] <= icm.energy[-1] + 1e-6
    assert dice(truth, cut.labels == 2) > 0.9
    # On a 4 x 4 image every one of the 2^16 labellings can be tried.
    rng = np.random.default_rng(5)
    tiny = (np.kron([[0, 1], [1, 1]], np.ones((2, 2))) + rng.normal(0, 0.7, (4, 4)))
    result = mrf_segmentation(tiny, beta=0.8, optimizer="graphcut")
    every = np.array(list(itertools.product((1, 2), repeat=16)), dtype=np.uint8)
    every = every.reshape(-1, 4, 4)
    means, stds, priors = (np.array(v) for v in (result.means, result.stds, result.priors))
    unary = ((tiny[..., None] - means) ** 2 / (2 * stds**2) + np.log(stds / priors))
    data = np.where(every == 1, unary[..., 0], unary[..., 1]).sum(axis=(1, 2))
    cuts = ((every[:, 1:, :] != every[:, :-1, :]).sum(axis=(1, 2))
            + (every[:, :, 1:] != every[:, :, :-1]).sum(axis=(1, 2)))
    best = float((data + 0.8 * cuts).min())
    assert _energy(result.labels, tiny, result, 0.8, FOUR) == pytest.approx(best, abs=1e-4)
    assert result.energy[-1] == pytest.approx(best, abs=1e-3)


@pytest.mark.parametrize(("connectivity", "offsets"), [(1, FOUR), (2, FOUR + [(1, 1), (1, -1)])])
def test_alpha_expansion_beats_icm_on_three_phases(connectivity, offsets):
    truth, image = _noisy_three_phase()
    beta = 1.0 if connectivity == 1 else 0.7
    icm = mrf_segmentation(image, classes=3, beta=beta, connectivity=connectivity)
    cut = mrf_segmentation(image, classes=3, beta=beta, connectivity=connectivity,
                           optimizer="graphcut")
    # Same model, same pixel-wise start.
    assert np.array_equal(cut.initial, icm.initial) and cut.means == icm.means
    assert cut.energy[-1] < icm.energy[-1] - 10
    assert cut.energy[-1] == pytest.approx(_energy(cut.labels, image, cut, beta, offsets),
                                           rel=1e-6)
    ari = {name: adjusted_rand_index(truth, lab)
           for name, lab in (("start", cut.initial), ("icm", icm.labels), ("cut", cut.labels))}
    assert ari["cut"] >= ari["icm"] and ari["cut"] > ari["start"] + 0.25
    scores = {name: np.mean([dice(truth == k, lab == k) for k in (1, 2, 3)])
              for name, lab in (("start", cut.initial), ("icm", icm.labels), ("cut", cut.labels))}
    assert scores["cut"] >= scores["icm"] and scores["cut"] > scores["start"] + 0.1


def test_alpha_expansion_energy_never_increases():
    _, image = _noisy_three_phase(noise=0.6, shape=(64, 64))
    result = mrf_segmentation(image, classes=3, beta=1.5, optimizer="graphcut")
    start = _energy(result.initial, image, result, 1.5, FOUR)
    energies = [start, *result.energy]
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(energies))
    assert result.energy[0] < start - 100
    # It stopped because the last sweep changed nothing, before max_iter.
    assert result.iterations == len(result.energy) < 30
    assert result.energy[-1] == result.energy[-2]
    one = mrf_segmentation(image, classes=3, beta=1.5, optimizer="graphcut", max_iter=1)
    assert one.iterations == 1 and one.energy == result.energy[:1]
    # A local minimum for single-pixel changes too (those are expansion moves).
    icm_after = mrf_segmentation(image, classes=3, beta=1.5)
    assert result.energy[-1] <= icm_after.energy[-1]


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
        (np.random.default_rng(0).random((8, 8)), {"mask": np.ones((8, 9))}, "mask has shape"),
        (np.zeros(5), {}, "2D"),
    ],
)
def test_bad_input(image, kwargs, words):
    with pytest.raises(ValueError, match=words):
        mrf_segmentation(image, **kwargs)
