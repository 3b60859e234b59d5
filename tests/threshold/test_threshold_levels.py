"""Threshold levels and helpers: intermodes, multi-level, hysteresis, results-based, clean-up."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.threshold import (
    clean_binary,
    hysteresis_threshold,
    intermodes_threshold,
    local_threshold,
    multi_level_threshold,
    results_based_threshold,
    threshold,
    threshold_value,
    try_all_thresholds,
)


def test_intermodes_is_midpoint_of_the_two_peaks():
    rng = np.random.default_rng(0)
    # Unequal populations and spreads: the midpoint of the peaks is 50 regardless.
    values = np.r_[rng.normal(20, 3, 20000), rng.normal(80, 6, 4000)]
    level = intermodes_threshold(values)
    assert level == pytest.approx(50, abs=2)
    assert threshold_value(values, method="intermodes") == level


def test_intermodes_refuses_constant_and_empty_images():
    with pytest.raises(ValueError, match="constant"):
        intermodes_threshold(np.full(100, 3.0))
    with pytest.raises(ValueError, match="no finite values"):
        intermodes_threshold(np.full(100, np.nan))


def test_multi_level_labels_and_dark_order():
    truth = np.repeat(np.arange(1, 4, dtype=np.uint8)[:, None], 20, axis=1).repeat(20, axis=0)
    image = truth.astype(np.float32) + np.random.default_rng(2).normal(0, 0.2, truth.shape)
    image[0, 0] = np.nan
    labels, info = threshold(image, method="multiotsu", classes=3)
    assert labels[0, 0] == 0
    assert (labels[1:] == truth[1:]).mean() > 0.98
    assert info["classes"] == ["class 1", "class 2", "class 3"]
    dark, _ = threshold(image, method="multiotsu", classes=3, foreground="dark")
    assert (dark[1:] == 4 - truth[1:]).mean() > 0.98
    levels = multi_level_threshold(image, classes=3)
    assert 1.3 < levels[0] < 1.7 and 2.3 < levels[1] < 2.7


def test_multi_level_errors():
    with pytest.raises(ValueError, match="only 2 distinct values"):
        multi_level_threshold(np.r_[np.zeros(10), np.ones(10)], classes=3)
    with pytest.raises(ValueError, match="at least 2"):
        multi_level_threshold(np.arange(10.0), classes=1)
    with pytest.raises(ValueError, match="constant"):
        threshold(np.ones((8, 8)))
    with pytest.raises(ValueError, match="no finite values"):
        threshold(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="classes applies"):
        threshold(np.arange(64.0).reshape(8, 8), method="li", classes=3)


def test_hysteresis_levels_checked():
    with pytest.raises(ValueError, match="low < high"):
        hysteresis_threshold(np.zeros((4, 4)), low=2, high=1)
    with pytest.raises(ValueError, match="both low and high"):
        threshold(np.arange(64.0).reshape(8, 8), method="hysteresis", low=3)


def test_results_based_picks_the_level_with_expected_sizes():
    image = np.zeros((80, 80))
    image[10:70, 10:70] = 0.5           # a large plate of 3600 pixels
    for y, x in [(20, 20), (20, 50), (50, 20), (50, 50)]:
        image[y : y + 9, x : x + 9] = 1.0  # four objects of 81 pixels on it
    image += np.random.default_rng(3).normal(0, 0.02, image.shape)
    level, details = results_based_threshold(image, object_size=(60, 120))
    assert 0.55 < level < 0.95
    labels, _info = threshold(image, method="results", object_size=(60, 120))
    assert int(labels.sum()) == 4 * 81
    assert max(details["in_range"]) == 4
    # Otsu does not know the sizes and keeps the plate.
    assert threshold_value(image) < 0.5
    with pytest.raises(ValueError, match="no threshold level gives objects"):
        results_based_threshold(image, object_size=(10000, 20000))
    with pytest.raises(ValueError, match="object_size"):
        results_based_threshold(image, object_size=(5, 1))


def test_local_threshold_beats_global_on_a_gradient():
    yy, xx = np.mgrid[:96, :96]
    truth = ((yy % 24) < 8) & ((xx % 24) < 8)
    image = (xx / 48.0 + 0.5 * truth).astype(np.float32)
    # The offset keeps flat background (pixel == local mean) out of the foreground.
    local = local_threshold(image, block_size=31, offset=-0.1)
    global_, _ = threshold(image, method="otsu")
    acc_local = (local.astype(bool) == truth).mean()
    acc_global = (global_.astype(bool) == truth).mean()
    assert acc_local > 0.95 > acc_global
    with pytest.raises(ValueError, match="block_size"):
        local_threshold(image, block_size=4)
    with pytest.raises(ValueError, match="local method needs block_size"):
        threshold(image, method="local")
    with pytest.raises(ValueError, match="cannot be reused"):
        threshold(image, method="local", block_size=5, levels=[0.5])


def test_clean_binary_steps():
    mask = np.zeros((30, 30), np.uint8)
    mask[5:20, 5:20] = 1
    mask[10:12, 10:12] = 0            # hole
    mask[25, 25] = 1                  # speck
    mask[5:20, 20:22] = 0
    filled = clean_binary(mask, fill_holes=True)
    assert filled[10:12, 10:12].all() and filled[25, 25] == 1
    assert clean_binary(mask, min_size=5)[25, 25] == 0
    assert clean_binary(mask, opening=1)[25, 25] == 0
    gap = np.zeros((20, 20), np.uint8)
    gap[5:15, 2:9] = 1
    gap[5:15, 10:17] = 1
    assert clean_binary(gap, closing=1)[10, 9] == 1
    with pytest.raises(ValueError, match="min_size"):
        clean_binary(mask, min_size=-1)


def test_volumes_work():
    rng = np.random.default_rng(4)
    volume = rng.normal(0, 0.05, (12, 24, 24)).astype(np.float32)
    volume[3:9, 6:18, 6:18] += 1
    labels, _ = threshold(volume, method="otsu", fill_holes=True, opening=1)
    assert labels.shape == volume.shape and int(labels.sum()) > 0.85 * 6 * 12 * 12


def test_try_all_reports_failures(monkeypatch):
    import niseg.threshold._core as core

    real = core.threshold_value

    def failing_yen(values, *, method):
        if method == "yen":
            raise ValueError("the yen threshold failed on this image")
        return real(values, method=method)

    monkeypatch.setattr(core, "threshold_value", failing_yen)
    values = np.random.default_rng(5).normal(0, 1, (40, 40))
    values[10:30, 10:30] += 4
    results = try_all_thresholds(values)
    assert set(results) == {"otsu", "li", "yen", "isodata", "mean", "triangle", "minimum",
                            "intermodes"}
    assert results["yen"] == (None, None, "the yen threshold failed on this image")
    labels, level, reason = results["otsu"]
    assert reason is None and np.array_equal(labels, (values > level).astype(np.uint8))
