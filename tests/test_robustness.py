"""Tests of niseg.robustness: scores over simulated realizations against a criterion."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.robustness import SCENARIOS, robustness, scenario, threshold_method


def test_high_counts_always_meet_the_criterion():
    report = robustness(threshold_method("otsu"), scenario("radiograph", size=64, counts=1000),
                        n=12, criterion=("dice", 0.9))
    assert report.fraction == 1.0
    assert report.scores.min() >= 0.9
    assert report.summary == "in 100 % of 12 realizations Dice >= 0.9"


def test_very_low_counts_clearly_fail():
    report = robustness(threshold_method("otsu"), scenario("radiograph", size=64, counts=1.0),
                        n=12, criterion="dice:0.9")
    assert report.fraction <= 0.25
    assert np.median(report.scores) < 0.8


def test_smoothing_rescues_low_counts():
    noisy = scenario("radiograph", size=64, counts=3.0, blur=0.0)
    plain = robustness(threshold_method("otsu"), noisy, n=8)
    smoothed = robustness(threshold_method("otsu", sigma=2.0), noisy, n=8)
    assert np.median(smoothed.scores) > np.median(plain.scores) + 0.1


def test_wrong_foreground_fails():
    report = robustness(threshold_method("otsu", foreground="dark"),
                        scenario("radiograph", size=48), n=3)
    assert report.fraction == 0.0 and report.scores.max() < 0.2


def test_deterministic_and_seeded():
    make = scenario("drift", size=48, counts=20)
    a = robustness(threshold_method("li"), make, n=5, seed=3)
    b = robustness(threshold_method("li"), make, n=5, seed=3)
    c = robustness(threshold_method("li"), make, n=5, seed=4)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.seeds, b.seeds)
    assert not np.array_equal(a.seeds, c.seeds)
    image1, truth1 = make(7)
    image2, truth2 = make(7)
    np.testing.assert_array_equal(image1, image2)
    np.testing.assert_array_equal(truth1, truth2)


def test_scenarios_change_the_illumination():
    flat, truth = scenario("radiograph", size=64, counts=1e6, blur=0.0)(1)
    background = flat[truth == 0]
    assert abs(float(np.median(background))) < 0.01
    for name in ("falloff", "cupping"):
        image, truth = scenario(name, size=64, counts=1e6, blur=0.0, strength=0.5)(1)
        corner, centre = image[0, 0], image[32, 32] if truth[32, 32] == 0 else image[0, 32]
        assert corner > centre + 0.1, name
    assert set(SCENARIOS) == {"radiograph", "falloff", "drift", "cupping"}


def test_custom_method_and_simulator():
    def simulate(seed):
        rng = np.random.default_rng(seed)
        truth = np.zeros((20, 20), np.uint8)
        truth[5:15, 5:15] = 1
        return truth + rng.normal(0, 0.3, truth.shape), truth

    def method(image):
        return (image > 0.5).astype(np.uint8)

    report = robustness(method, simulate, n=6, criterion=("iou", 0.5), seed=1)
    assert report.fraction == 1.0
    d = report.to_dict()
    assert d["n"] == 6 and len(d["scores"]) == 6 and d["metric"] == "iou"
    assert d["method"] == "method" and d["q50"] == pytest.approx(np.median(report.scores))


def test_bad_arguments():
    method, simulate = threshold_method(), scenario(size=32)
    with pytest.raises(ValueError, match="criterion metric"):
        robustness(method, simulate, n=1, criterion=("f1", 0.9))
    with pytest.raises(ValueError, match="criterion"):
        robustness(method, simulate, n=1, criterion="dice")
    with pytest.raises(ValueError, match="n must"):
        robustness(method, simulate, n=0)
    with pytest.raises(TypeError, match="callables"):
        robustness("otsu", simulate)
    with pytest.raises(ValueError, match="scenario must be one of"):
        scenario("tomography")
    with pytest.raises(ValueError, match="counts"):
        scenario(counts=0)
    with pytest.raises(ValueError, match="method must be one of"):
        threshold_method("magic")
    with pytest.raises(ValueError, match="shape"):
        robustness(lambda image: np.zeros((3, 3)), simulate, n=1)
