"""The other spot cleaners (baseline, sigmoid, morph, log, knn) against simulated truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from niseg.preprocess import KNNSpotDetector, clean_spots, detect_spots
from niseg.simulate import simulate_spots

LEVELS = (100.0, 1000.0, 10000.0)
SIZE = 384

# Each method's floor, a little under what it reaches on these images (benchmarks/
# bench_spots.py prints the full comparison on larger images).
FLOORS = {
    "sigmoid": (0.95, 0.9),
    "morph": (0.9, 0.8),
    "log": (0.8, 0.9),
    "knn": (0.9, 0.65),
}


@pytest.fixture(scope="module")
def sims():
    return {c: simulate_spots(size=SIZE, counts=c, seed=0) for c in LEVELS}


def scores(sim, cleaned, found, truth):
    tp = np.count_nonzero(found & truth)
    precision = tp / max(np.count_nonzero(found), 1)
    recall = tp / np.count_nonzero(truth)
    keep = ~((sim.mask > 0) & ~truth)
    factor = np.sqrt(np.sum((sim.raw - sim.clean)[keep].astype(float) ** 2)
                     / np.sum((cleaned - sim.clean)[keep].astype(float) ** 2))
    return precision, recall, factor


@pytest.mark.parametrize("method", sorted(FLOORS))
def test_each_cleaner_at_three_exposures(sims, method):
    min_precision, min_recall = FLOORS[method]
    for counts in LEVELS:
        sim = sims[counts]
        cleaned, found = clean_spots(sim.raw, method=method, return_mask=True)
        precision, recall, factor = scores(sim, cleaned, found, sim.mask == 1)
        assert precision >= min_precision, (counts, precision)
        assert recall >= min_recall, (counts, recall)
        assert factor > 3.0, (counts, factor)


@pytest.mark.parametrize("method", ["sigmoid", "morph", "log"])
def test_cleaners_handle_dark_spots(sims, method):
    sim = sims[1000.0]
    found = detect_spots(sim.raw, method=method, polarity="both")
    truth = sim.mask > 0
    assert np.count_nonzero(found & (sim.mask == 2)) >= 0.8 * np.count_nonzero(sim.mask == 2)
    assert np.count_nonzero(found & truth) >= 0.8 * np.count_nonzero(truth)
    assert np.count_nonzero(found & ~truth) <= 0.1 * np.count_nonzero(found)


def test_baseline_is_the_lectures_median_test():
    sim = simulate_spots(size=128, counts=1000.0, seed=2)
    med = ndimage.median_filter(sim.raw, size=5, mode="reflect")
    cleaned, found = clean_spots(sim.raw, method="baseline", threshold=40.0, return_mask=True)
    np.testing.assert_array_equal(found, sim.raw - med > 40.0)
    np.testing.assert_array_equal(cleaned, np.where(found, med, sim.raw))
    both = detect_spots(sim.raw, method="baseline", polarity="both", threshold=40.0, size=3)
    med3 = ndimage.median_filter(sim.raw, size=3, mode="reflect")
    np.testing.assert_array_equal(both, np.abs(sim.raw - med3) > 40.0)


def test_baseline_threshold_in_counts_does_not_carry_across_exposures(sims):
    # One k in image units cannot fit 100 and 10 000 counts per pixel: at the k that suits
    # the high exposure the low one loses its spots, and the other way round.
    low, high = sims[100.0], sims[10000.0]
    k_high = 40.0 * high.metadata["noise_sigma"] / 8.0
    found_low = detect_spots(low.raw, method="baseline", threshold=k_high)
    assert np.count_nonzero(found_low & (low.mask == 1)) < 0.8 * np.count_nonzero(low.mask == 1)
    k_low = 5.0 * low.metadata["noise_sigma"]
    found_high = detect_spots(high.raw, method="baseline", threshold=k_low)
    assert np.count_nonzero(found_high & (high.mask == 0)) > np.count_nonzero(high.mask == 1)


def test_sigmoid_replacement_is_soft(sims):
    sim = sims[1000.0]
    hard, hard_mask = clean_spots(sim.raw, return_mask=True)
    soft, soft_mask = clean_spots(sim.raw, method="sigmoid", return_mask=True)
    np.testing.assert_array_equal(soft_mask, hard_mask)
    changed = soft != sim.raw
    partial = changed & ~soft_mask
    assert partial.any()  # pixels just under the threshold move part of the way
    move = np.abs(soft - sim.raw)[partial]
    assert move.max() < np.abs(hard - sim.raw)[hard_mask].max()
    wide = clean_spots(sim.raw, method="sigmoid", width=3.0)
    assert np.count_nonzero(wide != sim.raw) > np.count_nonzero(changed)


def test_morph_area_limit_keeps_larger_bright_objects():
    image = np.random.default_rng(0).normal(1000.0, 10.0, (96, 96)).astype(np.float32)
    image[10:16, 10:16] += 500.0  # 36 px
    image[50:70, 50:70] += 500.0  # 400 px: an object, not a spot
    found = detect_spots(image, method="morph", max_area=50)
    assert found[10:16, 10:16].all()
    assert not found[50:70, 50:70].any()


def test_knn_detector_fit_predict_and_confusion():
    train = simulate_spots(size=128, counts=1000.0, density=0.01, seed=3)
    test = simulate_spots(size=128, counts=1000.0, density=0.01, seed=4)
    knn = KNNSpotDetector(n_neighbors=5).fit([train.raw], [train.mask == 1])
    assert knn.n_training_pixels_ > 0 and list(knn.classes_) == [False, True]
    proba = knn.predict_proba(test.raw)
    assert proba.dtype == np.float32 and 0.0 <= proba.min() and proba.max() <= 1.0
    found = knn.predict(test.raw)
    truth = test.mask == 1
    assert np.count_nonzero(found & truth) >= 0.5 * np.count_nonzero(truth)
    assert np.count_nonzero(found & ~truth) <= 0.2 * np.count_nonzero(found)
    feats = knn.features(test.raw)
    assert feats.shape == (128 * 128, 2)
    np.testing.assert_allclose(feats[:, 0], test.raw.ravel())
    confusion = knn.confusion_with_baseline(test.raw, threshold=40.0)
    assert confusion.shape == (2, 2) and confusion.sum() == test.raw.size
    baseline = detect_spots(test.raw, method="baseline", polarity="both", threshold=40.0)
    assert confusion[1].sum() == baseline.sum()
    assert confusion[:, 1].sum() == found.sum()
    # A fitted detector can be handed to detect_spots; the same seed gives the same mask.
    np.testing.assert_array_equal(detect_spots(test.raw, method="knn", detector=knn), found)
    again = detect_spots(test.raw, method="knn", seed=1)
    np.testing.assert_array_equal(detect_spots(test.raw, method="knn", seed=1), again)


def test_knn_bad_input():
    knn = KNNSpotDetector()
    image = np.ones((16, 16), dtype=np.float32)
    with pytest.raises(ValueError, match="not fitted"):
        knn.predict(image)
    with pytest.raises(ValueError, match="shape"):
        knn.fit(image, np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="some spot pixels"):
        knn.fit(image, np.zeros((16, 16), bool))
    with pytest.raises(ValueError, match="images has 2"):
        knn.fit([image, image], [np.zeros((16, 16), bool)])
    with pytest.raises(ValueError, match="n_neighbors"):
        KNNSpotDetector(n_neighbors=0).fit(image, np.eye(16, dtype=bool))
