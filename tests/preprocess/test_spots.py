"""detect_spots / clean_spots with the default method: accuracy against simulated truth,
polarity, stacks, the temporal mode, dtypes and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from niseg.preprocess import SPOT_METHODS, KNNSpotDetector, clean_spots, detect_spots
from niseg.preprocess._spots_core import (
    fit_noise_model,
    masked_window_medians,
    median_bounds,
    pad_reflect,
    window_medians,
)
from niseg.simulate import add_spots, default_phantom, simulate_radiograph, simulate_spots

LEVELS = (100.0, 1000.0, 10000.0)
SEEDS = (0, 1)
SIZE = 512


@pytest.fixture(scope="module")
def sims():
    return {c: [simulate_spots(size=SIZE, counts=c, seed=s) for s in SEEDS] for c in LEVELS}


def pooled(sims, counts, polarity, **kwargs):
    """Precision, recall and RMSE factor over the seeds, scored for ``polarity``."""
    tp = fp = fn = 0
    err_raw = err_clean = 0.0
    for sim in sims[counts]:
        truth = {"bright": sim.mask == 1, "dark": sim.mask == 2, "both": sim.mask > 0}[polarity]
        cleaned, found = clean_spots(sim.raw, polarity=polarity, return_mask=True, **kwargs)
        tp += np.count_nonzero(found & truth)
        fp += np.count_nonzero(found & ~truth)
        fn += np.count_nonzero(~found & truth)
        keep = ~((sim.mask > 0) & ~truth)  # spots of the other polarity are not asked for
        err_raw += np.sum((sim.raw - sim.clean)[keep].astype(np.float64) ** 2)
        err_clean += np.sum((cleaned - sim.clean)[keep].astype(np.float64) ** 2)
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), float(np.sqrt(err_raw / err_clean))


@pytest.mark.parametrize("counts", LEVELS)
def test_default_finds_bright_spots_at_every_exposure_without_tuning(sims, counts):
    precision, recall, factor = pooled(sims, counts, "bright")
    assert precision >= 0.95
    assert recall >= 0.9
    assert factor >= 5.0


@pytest.mark.parametrize("counts", LEVELS)
def test_polarity_both_finds_bright_and_dark_spots(sims, counts):
    precision, recall, factor = pooled(sims, counts, "both")
    assert precision >= 0.95
    assert recall >= 0.9
    assert factor >= 5.0


def test_dark_polarity_finds_dark_spots_and_leaves_bright_ones(sims):
    for counts in LEVELS:
        precision, recall, _ = pooled(sims, counts, "dark")
        assert precision >= 0.9 and recall >= 0.85
    sim = sims[1000.0][0]
    found = detect_spots(sim.raw, polarity="dark")
    assert not (found & (sim.mask == 1)).any()
    bright = detect_spots(sim.raw, polarity="bright")
    assert not (bright & (sim.mask == 2)).any()


def test_large_spots_are_found_whole_and_filled_with_background(sims):
    sim = sims[1000.0][1]
    labels, _ = ndimage.label(sim.mask == 1, structure=np.ones((3, 3)))
    areas = np.bincount(labels.ravel())[1:]
    big = np.flatnonzero(areas >= 30) + 1
    assert big.size  # the simulator makes some large spots
    cleaned, found = clean_spots(sim.raw, return_mask=True)
    sigma = sim.metadata["noise_sigma"]
    whole = 0
    for label in big:
        spot = labels == label
        if found[spot].all():
            whole += 1
            # Replacement values are background, not a median of the spot's own pixels
            # (whose amplitudes are at least 6 sigma, most far more).
            assert np.median(np.abs(cleaned[spot] - sim.clean[spot])) < 3 * sigma
    assert whole >= 0.75 * big.size


def test_non_spot_pixels_keep_their_exact_values_and_integer_dtype():
    sim = simulate_spots(size=128, counts=1000.0, seed=4)
    raw = np.round(sim.raw).astype(np.uint16)
    cleaned, found = clean_spots(raw, return_mask=True)
    assert cleaned.dtype == np.uint16
    np.testing.assert_array_equal(cleaned[~found], raw[~found])
    assert np.all(cleaned[found] < raw[found])
    as_float = clean_spots(raw.astype(np.float64))
    assert as_float.dtype == np.float64
    np.testing.assert_array_equal(np.rint(as_float), cleaned)
    # Signed integers with negative values (dark-subtracted data) stay in range.
    shifted = raw.astype(np.int16) - 500
    out = clean_spots(shifted)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, cleaned.astype(np.int16) - 500)


def test_detect_spots_mask_matches_clean_spots():
    sim = simulate_spots(size=128, counts=1000.0, seed=4)
    _, from_clean = clean_spots(sim.raw, polarity="both", return_mask=True)
    np.testing.assert_array_equal(detect_spots(sim.raw, polarity="both"), from_clean)


def test_an_image_without_spots_stays_untouched():
    rad = simulate_radiograph(size=256, counts=1000.0, blur=1.0, seed=5)
    found = detect_spots(rad.image, polarity="both")
    assert found.sum() <= 3
    constant = np.full((64, 64), 7, dtype=np.uint16)
    np.testing.assert_array_equal(clean_spots(constant), constant)


def test_sparse_integer_counts_are_not_spots():
    # Behind a strong absorber at a short exposure most pixels read 0 and a few read 1 or
    # 2: single neutrons, not spots.
    counts = np.random.default_rng(2).poisson(0.05, size=(256, 256)).astype(np.uint16)
    assert detect_spots(counts, polarity="both").sum() <= 3
    counts[100, 100] = 60
    assert detect_spots(counts)[100, 100]


def test_threshold_and_max_area_change_what_is_found():
    sim = simulate_spots(size=256, counts=1000.0, seed=1)
    loose = detect_spots(sim.raw, threshold=4.0)
    default = detect_spots(sim.raw)
    strict = detect_spots(sim.raw, threshold=50.0)
    assert loose.sum() >= default.sum() > strict.sum()
    small_only = detect_spots(sim.raw, max_area=4)
    labels, count = ndimage.label(small_only, structure=np.ones((3, 3)))
    assert count and np.bincount(labels.ravel())[1:].max() <= 4


# ---------------------------------------------------------------------------- stacks


def test_stack_frames_are_cleaned_one_by_one_along_any_axis():
    frames = [simulate_spots(size=96, counts=1000.0, seed=s).raw for s in (1, 2, 3)]
    singles = [clean_spots(f, return_mask=True) for f in frames]
    stack = np.stack(frames)
    cleaned, found = clean_spots(stack, frame_axis=0, return_mask=True)
    for i, (c, m) in enumerate(singles):
        np.testing.assert_array_equal(cleaned[i], c)
        np.testing.assert_array_equal(found[i], m)
    last = np.moveaxis(stack, 0, -1)
    found_last = detect_spots(last, frame_axis=-1)
    np.testing.assert_array_equal(np.moveaxis(found_last, -1, 0), found)


def temporal_stack(spotty_frame: int = 2, frames: int = 5, counts: float = 1000.0):
    """Frames of one object with independent noise; spots in one frame only."""
    phantom = default_phantom(seed=0, size_cm=1.28)
    stack = np.stack([simulate_radiograph(size=128, counts=counts, blur=1.0, phantom=phantom,
                                          seed=s).image for s in range(frames)])
    clean = stack.copy()
    sigma = float(np.sqrt(counts * 0.0796))
    stack[spotty_frame], truth = add_spots(stack[spotty_frame], density=0.01,
                                           noise_sigma=sigma, dark_fraction=0.0, seed=9)
    return stack, clean, truth


@pytest.mark.parametrize("method", ["auto", "sigmoid"])
def test_temporal_mode_finds_spots_of_one_frame(method):
    stack, clean, truth = temporal_stack()
    cleaned, found = clean_spots(stack, frame_axis=0, temporal=True, method=method,
                                 return_mask=True)
    spots = truth > 0
    hit = found[2]
    assert (hit & spots).sum() >= 0.9 * spots.sum()
    assert (hit & ~spots).sum() <= 0.1 * hit.sum()
    assert found[[0, 1, 3, 4]].sum() <= 5
    # Replacement comes from the other frames: close to the spot-free frame.
    error = np.abs(cleaned[2] - clean[2])[spots & hit]
    assert np.median(error) < 3 * np.sqrt(1000.0 * 0.0796)


def test_temporal_baseline_uses_an_absolute_threshold():
    stack, _, _ = temporal_stack()
    found = detect_spots(stack, frame_axis=0, temporal=True, method="baseline", threshold=60.0)
    reference = np.median(stack[[0, 1, 3, 4]], axis=0)
    np.testing.assert_array_equal(found[2], stack[2] - reference > 60.0)


def test_temporal_finds_spots_the_spatial_test_cannot_see():
    # A spot as wide as an object is invisible to a spatial median of a small window,
    # but not to the other frames.
    stack, _, _ = temporal_stack(frames=3)
    stack[1, 40:50, 40:50] += 600.0
    spatial = detect_spots(stack, frame_axis=0, size=3, max_area=400)
    temporal = detect_spots(stack, frame_axis=0, size=3, temporal=True, max_area=400)
    assert temporal[1, 40:50, 40:50].all()
    assert temporal[1].sum() <= 100 + 5 and temporal[0].sum() <= 5
    assert not spatial[1, 40:50, 40:50].all()


# ---------------------------------------------------------------------------- building blocks


def test_exact_medians_and_bounds_agree_with_scipy():
    rng = np.random.default_rng(0)
    image = rng.poisson(40.0, size=(37, 41)).astype(np.float32)
    for size in (3, 5, 7):
        med = ndimage.median_filter(image, size=size, mode="reflect")
        ys, xs = np.nonzero(np.ones(image.shape, bool))
        got = window_medians(pad_reflect(image, size // 2), ys, xs, size)
        np.testing.assert_array_equal(got.reshape(image.shape), med)
        lower, upper = median_bounds(image, size, lower=True, upper=True)
        assert np.all(lower <= med) and np.all(upper >= med)


def test_masked_medians_ignore_masked_pixels():
    image = np.full((30, 30), 10.0, dtype=np.float32)
    image[10:20, 10:20] = 1000.0  # a 10 x 10 "spot", larger than the window
    mask = image > 100
    ys, xs = np.nonzero(mask)
    values = masked_window_medians(image, mask, ys, xs, 5)
    np.testing.assert_array_equal(values, 10.0)


def test_noise_model_follows_poisson_noise():
    rng = np.random.default_rng(1)
    levels = rng.uniform(50, 5000, size=40000)
    residuals = rng.normal(0.0, np.sqrt(levels))
    model = fit_noise_model(levels, residuals, floor=1e-6)
    for level in (500.0, 1000.0, 4000.0):
        assert model(np.array([level]))[0] == pytest.approx(np.sqrt(level), rel=0.15)
    # Monotone, and the look-up lower bound never exceeds the exact value.
    grid = np.linspace(0, 6000, 500, dtype=np.float32)
    exact = model(grid)
    assert np.all(np.diff(exact) >= 0)
    assert np.all(model.lower_bound(grid) <= exact)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"size": -3}, ValueError, "size"),
        ({"size": 4}, ValueError, "odd"),
        ({"size": 2.5}, TypeError, "size"),
        ({"method": "median"}, ValueError, "method"),
        ({"polarity": "grey"}, ValueError, "polarity"),
        ({"method": "baseline"}, ValueError, "threshold"),
        ({"threshold": -1.0}, ValueError, "threshold"),
        ({"threshold": float("nan")}, ValueError, "threshold"),
        ({"max_area": 0}, ValueError, "max_area"),
        ({"width": 0.0}, ValueError, "width"),
        ({"temporal": True}, ValueError, "stack"),
        ({"detector": KNNSpotDetector()}, ValueError, "knn"),
        ({"method": "knn", "detector": KNNSpotDetector()}, ValueError, "not fitted"),
        ({"method": "knn", "detector": "model"}, TypeError, "KNNSpotDetector"),
        ({"frame_axis": 0}, ValueError, "3D"),
    ],
)
def test_bad_options_raise_one_clear_sentence(kwargs, error, words):
    image = np.random.default_rng(0).poisson(100.0, (32, 32)).astype(np.float32)
    with pytest.raises(error, match=words) as info:
        clean_spots(image, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_images_raise_clear_errors():
    good = np.ones((16, 16), dtype=np.float32)
    nan = good.copy()
    nan[2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        detect_spots(nan)
    with pytest.raises(ValueError, match="frame_axis"):
        detect_spots(np.ones((3, 16, 16)))
    with pytest.raises(ValueError, match="2D"):
        detect_spots(np.ones(16))
    with pytest.raises(ValueError, match="3D"):
        detect_spots(np.ones((2, 3, 16, 16)), frame_axis=0)
    with pytest.raises(ValueError, match="frame_axis"):
        detect_spots(np.ones((3, 16, 16)), frame_axis=3)
    with pytest.raises(ValueError, match="at least 3 frames"):
        detect_spots(np.ones((2, 16, 16)), frame_axis=0, temporal=True)
    with pytest.raises(ValueError, match="temporal"):
        detect_spots(np.ones((4, 16, 16)), frame_axis=0, temporal=True, method="morph")
    with pytest.raises(TypeError, match="real numbers"):
        detect_spots(good > 0)
    with pytest.raises(TypeError, match="numeric array"):
        detect_spots("image.tif")
    with pytest.raises(ValueError, match="empty"):
        detect_spots(np.ones((0, 5)))
    assert set(SPOT_METHODS) == {"auto", "baseline", "morph", "sigmoid", "log", "knn", "cnn"}
