"""Threshold methods on simulator twins of the threshold_cases, checked against the truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from niseg.io import read_image
from niseg.metrics import dice
from niseg.simulate import add_spots
from niseg.threshold import (
    auto_hysteresis_levels,
    correct_background,
    guarded_multilevel,
    hysteresis_threshold,
    multi_level_threshold,
    threshold,
)

SHAPE = (128, 128)


def _discs(shape=SHAPE, centres=((64, 40), (50, 96)), radii=(18, 14)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.zeros(shape, np.uint8)
    for (cy, cx), r in zip(centres, radii):
        truth[np.hypot(yy - cy, xx - cx) < r] = 1
    return truth


def _two_discs(seed=0, noise=0.03, blur=0.0, background=0.3, bright=1.0):
    truth = _discs()
    image = np.where(truth == 1, bright, background).astype(np.float64)
    if blur:
        image = ndi.gaussian_filter(image, blur)
    image = image + np.random.default_rng(seed).normal(0, noise, SHAPE)
    return image.astype(np.float32), truth


def _dice(result, truth):
    return float(dice(truth != 0, result != 0))


# --- (a) artefacts ---------------------------------------------------------------------------

def test_artefacts_removed_by_clean_up():
    image, truth = _two_discs(seed=1)
    spotted, spots = add_spots(image, density=0.01, size_range=(1, 4),
                               amplitude_range=(30.0, 60.0), noise_sigma=0.03,
                               dark_fraction=0.0, seed=3)
    assert spots[truth == 0].sum() > 50
    raw, _info = threshold(spotted, method="otsu")
    cleaned, _ = threshold(spotted, method="otsu", opening=1, min_size=30, fill_holes=True)
    false_raw = int((raw.astype(bool) & (truth == 0)).sum())
    false_clean = int((cleaned.astype(bool) & (truth == 0)).sum())
    assert false_raw > 50
    assert false_clean < false_raw / 10
    assert _dice(cleaned, truth) >= 0.97


# --- (b) white Gaussian noise ----------------------------------------------------------------

@pytest.mark.parametrize("method", ["otsu", "isodata", "li", "intermodes", "triangle"])
def test_noise_automatic_methods(method):
    image, truth = _two_discs(seed=2, noise=0.1)
    labels, info = threshold(image, method=method)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1}
    assert 0.3 < info["levels"][0] < 1.0
    assert _dice(labels, truth) >= 0.9


def test_noise_opening_and_closing_help():
    image, truth = _two_discs(seed=2, noise=0.2)
    plain, _ = threshold(image, method="otsu")
    cleaned, _ = threshold(image, method="otsu", opening=1, closing=1, min_size=20)
    assert _dice(cleaned, truth) > _dice(plain, truth) + 0.02
    assert _dice(cleaned, truth) >= 0.95


# --- (c) cupping -----------------------------------------------------------------------------

def _cupped(seed=3):
    image, truth = _two_discs(seed=seed, noise=0.02, background=0.5)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    r = np.hypot(yy - 64, xx - 64) / np.hypot(64, 64)
    # Multiplicative cupping: the corners' background ends brighter than the discs.
    light = 1.0 + 1.5 * r ** 2
    return (image * light).astype(np.float32), truth


def test_divide_background_rescues_cupped_image():
    image, truth = _cupped()
    plain, _ = threshold(image, method="otsu")
    fixed, info = threshold(image, method="otsu", background=20, background_mode="divide")
    assert info["background"] == {"sigma": 20.0, "mode": "divide", "estimate": "morphological"}
    assert _dice(fixed, truth) >= 0.9
    assert _dice(plain, truth) < _dice(fixed, truth) - 0.1


def test_correct_background_flattens_illumination():
    image, truth = _cupped()
    corrected, _background = correct_background(image, sigma=20)
    inner = np.zeros(SHAPE, bool)
    inner[20:-20, 20:-20] = True
    bg = corrected[(truth == 0) & inner]
    raw = image[(truth == 0) & inner]
    assert bg.std() / bg.mean() < 0.5 * raw.std() / raw.mean()
    subtracted, _ = correct_background(image, sigma=20, mode="subtract")
    assert subtracted.dtype == np.float32 and subtracted.shape == SHAPE


# --- (d) noise and blur ----------------------------------------------------------------------

def test_noise_and_blur():
    image, truth = _two_discs(seed=4, noise=0.1, blur=2.0)
    labels, _ = threshold(image, method="otsu", opening=1, fill_holes=True)
    assert _dice(labels, truth) >= 0.93


# --- faint connected canals (hysteresis) -----------------------------------------------------

def _bone(seed=5):
    truth_strong = _discs()
    canals = np.zeros(SHAPE, bool)
    canals[63:65, 57:97] = True      # joins the two discs
    canals[50:52, 108:124] = True    # leaves the right disc towards the border
    isolated = np.zeros(SHAPE, bool)
    isolated[110:112, 20:60] = True  # faint, but touching no strong region
    image = np.full(SHAPE, 0.1)
    image[canals | isolated] = 0.45
    image[truth_strong == 1] = 1.0
    image += np.random.default_rng(seed).normal(0, 0.03, SHAPE)
    canals &= truth_strong == 0
    return image.astype(np.float32), truth_strong, canals, isolated


def test_hysteresis_keeps_connected_faint_canals():
    image, strong, canals, isolated = _bone()
    single, _ = threshold(image, method="manual", value=0.7)
    hyst, info = threshold(image, method="hysteresis", low=0.3, high=0.7)
    assert info["levels"] == [0.3, 0.7] and info["level_names"] == ["low", "high"]
    recall_single = single[canals].mean()
    recall_hyst = hyst[canals].mean()
    assert recall_single < 0.05
    assert recall_hyst > 0.95
    assert hyst[isolated].mean() < 0.05      # not connected to strong pixels: dropped
    assert hyst[strong == 1].mean() > 0.99


def test_hysteresis_with_automatic_levels():
    image, _strong, canals, isolated = _bone()
    low, high = auto_hysteresis_levels(image)
    assert 0.1 + 2 * 0.03 < low < 0.45 < high
    labels, info = threshold(image, method="hysteresis")
    assert info["automatic_levels"] is True
    otsu, _ = threshold(image, method="otsu")
    assert labels[canals].mean() > 0.95
    assert labels[isolated].mean() < 0.05
    # Superset of the strong result, subset of the weak one.
    assert not (otsu.astype(bool) & (labels == 0) & (image > high)).any()
    assert not (labels.astype(bool) & (image <= low)).any()


def test_hysteresis_dark_foreground_mirrors_bright():
    image, *_ = _bone()
    bright = hysteresis_threshold(image, low=0.3, high=0.7)
    dark = hysteresis_threshold(-image, low=-0.7, high=-0.3, foreground="dark")
    np.testing.assert_array_equal(bright, dark)


# --- guarded edges against the virtual skin --------------------------------------------------

def _three_phase(seed=6):
    truth = np.ones(SHAPE, np.uint8)
    truth[:, 64:] = 3
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    truth[np.hypot(yy - 64, xx - 30) < 14] = 2   # a real class-2 region inside class 1
    image = np.choose(truth - 1, [0.0, 1.0, 2.0]).astype(np.float64)
    image = ndi.gaussian_filter(image, 2.0)
    image += np.random.default_rng(seed).normal(0, 0.05, SHAPE)
    return image.astype(np.float32), truth


def test_guarded_edges_remove_virtual_skin():
    image, truth = _three_phase()
    levels = multi_level_threshold(image, classes=3)
    plain, _ = threshold(image, method="multiotsu", classes=3)
    guarded, info = threshold(image, method="multiotsu", classes=3, guard_edges=True)
    assert info["guard_edges"] is True and info["levels"] == pytest.approx(levels.tolist())
    skin = truth != 2
    skin_before = int(((plain == 2) & skin).sum())
    skin_after = int(((guarded == 2) & skin).sum())
    assert skin_before > 150          # a skin of class 2 along the 1|3 boundary
    assert skin_after < skin_before / 5
    assert float(dice(truth == 2, guarded == 2)) >= 0.9
    assert (guarded == truth).mean() > 0.98


def test_guarded_multilevel_returns_guard():
    image, _truth = _three_phase()
    labels, guard = guarded_multilevel(image, [0.5, 1.5], return_guard=True)
    assert guard.dtype == bool and 0 < guard.mean() < 0.3
    assert set(np.unique(labels)) == {1, 2, 3}


# --- levels from an earlier sample -----------------------------------------------------------

def test_levels_from_reproduce_levels_on_second_sample():
    first, _truth = _two_discs(seed=7, noise=0.05)
    second, truth2 = _two_discs(seed=8, noise=0.05)
    second[:40] += 0.0  # same contrast, different noise
    _, info = threshold(first, method="li")
    labels, info2 = threshold(second, method="li", levels=info["levels"])
    assert info2["levels"] == info["levels"]
    np.testing.assert_array_equal(labels, (second > info["levels"][0]).astype(np.uint8))
    assert _dice(labels, truth2) >= 0.95
    _, multi = threshold(first, method="multiotsu", classes=3)
    _again, multi2 = threshold(second, method="multiotsu", classes=3, levels=multi["levels"])
    assert multi2["levels"] == multi["levels"]
    _, hyst = threshold(first, method="hysteresis")
    _, hyst2 = threshold(second, method="hysteresis", levels=hyst["levels"])
    assert hyst2["levels"] == hyst["levels"]


# --- real images (checkable facts only) ------------------------------------------------------

def _first_channel(path):
    array, _ = read_image(path)
    array = np.asarray(array)
    return array[..., 0] if array.ndim == 3 else array


@pytest.mark.slow
def test_real_cupped_discs_have_similar_area(shared_data):
    image = _first_channel(shared_data / "threshold_cases" / "class_cupped_in.png")
    from skimage.segmentation import clear_border

    labels, _ = threshold(image.astype(np.float32), method="otsu", background=40,
                          background_estimate="gaussian", min_size=50)
    # The bright corners of the cupped background touch the border; the discs do not.
    objects, count = ndi.label(clear_border(labels))
    sizes = np.bincount(objects.ravel())[1:]
    assert count == 2
    assert sizes.min() > 0.8 * sizes.max()
    assert sizes.min() > 0.05 * image.size


@pytest.mark.slow
def test_real_bone_hysteresis_between_its_two_levels(shared_data):
    image = _first_channel(shared_data / "threshold_cases" / "bonegfiltslice.png")
    low, high = 130.0, 180.0
    labels, info = threshold(image, method="hysteresis", low=low, high=high)
    assert info["levels"] == [low, high]
    result = labels.astype(bool)
    strong = image > high
    weak = image > low
    assert (result | ~strong).all()          # superset of the high-threshold result
    assert (weak | ~result).all()            # subset of the low-threshold result
    assert strong.sum() < 0.2 * result.sum() and result.sum() < 0.8 * weak.sum()
    auto, info = threshold(image, method="hysteresis")
    low, high = info["levels"]
    assert (auto.astype(bool) | ~(image > high)).all()
    assert ((image > low) | ~auto.astype(bool)).all()


@pytest.mark.slow
def test_real_shale_multilevel_classes(shared_data):
    image = _first_channel(shared_data / "threshold_cases" / "shale-slice.tiff")
    labels, info = threshold(image, method="multiotsu", classes=3, guard_edges=True)
    assert set(np.unique(labels)) <= {1, 2, 3}
    assert np.all(np.diff(info["levels"]) > 0)
