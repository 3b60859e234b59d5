"""The gamma-spot simulator: exact masks, sizes, polarity, amplitudes, determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from niseg.simulate import SpotsResult, add_spots, simulate_radiograph, simulate_spots

EIGHT = np.ones((3, 3), dtype=bool)


def flat_image(counts: float = 1000.0, shape=(256, 256), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(counts, size=shape).astype(np.float32)


def test_same_seed_gives_identical_arrays_and_other_seed_differs():
    a = simulate_spots(size=96, seed=5)
    b = simulate_spots(size=96, seed=5)
    for name in ("raw", "mask", "clean", "open_beam"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.metadata == b.metadata
    c = simulate_spots(size=96, seed=6)
    assert not np.array_equal(a.mask, c.mask)
    image = flat_image()
    np.testing.assert_array_equal(add_spots(image, seed=3)[0], add_spots(image, seed=3)[0])


def test_mask_marks_exactly_the_changed_pixels():
    for counts in (100.0, 10000.0):
        sim = simulate_spots(size=128, counts=counts, density=0.02, seed=1)
        assert isinstance(sim, SpotsResult)
        changed = sim.raw != sim.clean
        np.testing.assert_array_equal(changed, sim.mask > 0)
        assert set(np.unique(sim.mask)) <= {0, 1, 2}
        assert np.all(sim.raw[sim.mask == 1] > sim.clean[sim.mask == 1])
        assert np.all(sim.raw[sim.mask == 2] < sim.clean[sim.mask == 2])


def test_clean_image_is_the_radiograph_and_metadata_is_json():
    sim = simulate_spots(size=64, counts=500.0, blur=1.0, seed=2)
    rad = simulate_radiograph(size=64, counts=500.0, blur=1.0, seed=2)
    np.testing.assert_array_equal(sim.clean, rad.image)
    np.testing.assert_array_equal(sim.open_beam, rad.open_beam)
    meta = json.loads(json.dumps(sim.metadata))
    assert meta["simulator"] == "niseg.simulate.simulate_spots"
    assert meta["n_spots"] == meta["n_bright"] + meta["n_dark"] > 0
    assert meta["spot_fraction"] == pytest.approx(float((sim.mask > 0).mean()))


def test_spot_sizes_are_within_the_range_and_mostly_small():
    sim = simulate_spots(size=512, counts=1000.0, density=0.01, seed=3)
    labels, count = ndimage.label(sim.mask > 0, structure=EIGHT)
    extents = np.array([max(s[0].stop - s[0].start, s[1].stop - s[1].start)
                        for s in ndimage.find_objects(labels)])
    assert count == sim.metadata["n_spots"]
    assert extents.min() >= 1 and extents.max() <= 10
    assert np.mean(extents <= 2) > 0.5  # power-law sizes: most hits are small
    assert extents.max() >= 7  # but large tracks occur
    # Irregular blobs: large spots do not fill their bounding box.
    fills = [np.mean(labels[s] == i + 1) for i, s in enumerate(ndimage.find_objects(labels))
             if max(s[0].stop - s[0].start, s[1].stop - s[1].start) >= 6]
    assert fills and min(fills) < 0.9


def test_density_and_dark_fraction():
    image = flat_image(shape=(512, 512))
    _, mask = add_spots(image, density=0.01, dark_fraction=0.3, noise_sigma=31.6, seed=4)
    assert (mask > 0).mean() == pytest.approx(0.01, rel=0.15)
    labels, count = ndimage.label(mask > 0, structure=EIGHT)
    dark_spots = len(np.unique(labels[mask == 2]))
    assert 0.15 < dark_spots / count < 0.45
    _, bright_only = add_spots(image, density=0.01, dark_fraction=0.0, noise_sigma=31.6, seed=4)
    assert not (bright_only == 2).any()
    _, none = add_spots(image, density=0.0, seed=4)
    assert not none.any()


def test_amplitudes_are_at_least_the_weak_limit_in_noise_units():
    image = flat_image(counts=1000.0)
    sigma = math.sqrt(1000.0)
    spotty, mask = add_spots(image, density=0.02, amplitude_range=(6.0, 50.0),
                             noise_sigma=sigma, dark_fraction=0.2, seed=5)
    change = np.abs(spotty - image)[mask > 0]
    assert change.min() >= 6.0 * sigma - 1e-3
    assert change.max() <= 50.0 * sigma + 1e-3
    # Amplitudes span the range (log-uniform peaks).
    assert change.max() > 30.0 * sigma


def test_saturation_clips_bright_spots_and_dark_spots_stop_at_zero():
    image = flat_image(counts=100.0)
    spotty, mask = add_spots(image, density=0.02, amplitude_range=(6.0, 2000.0),
                             noise_sigma=10.0, saturation=400.0, dark_fraction=0.5, seed=6)
    assert spotty.max() <= 400.0
    assert np.any(spotty[mask == 1] == 400.0)
    assert spotty.min() >= 0.0 and np.any(spotty[mask == 2] == 0.0)
    sim = simulate_spots(size=128, counts=100.0, seed=0)
    assert sim.metadata["saturation"] == 400.0
    assert sim.raw.max() <= 400.0


def test_noise_unit_of_simulate_spots_is_the_blurred_poisson_noise():
    sim = simulate_spots(size=256, counts=2000.0, blur=1.0, seed=7)
    # Measured on the open beam's centre, where the beam is flattest.
    centre = sim.open_beam[96:160, 96:160].astype(np.float64)
    residual = centre - ndimage.uniform_filter(centre, 15)
    assert residual.std() == pytest.approx(sim.metadata["noise_sigma"], rel=0.15)
    unblurred = simulate_spots(size=64, counts=2000.0, blur=0.0, seed=7)
    assert unblurred.metadata["noise_sigma"] == pytest.approx(math.sqrt(2000.0))


def test_noise_sigma_is_estimated_when_not_given():
    image = flat_image(counts=1000.0)
    spotty, mask = add_spots(image, density=0.02, amplitude_range=(6.0, 6.0), seed=8)
    change = np.abs(spotty - image)[mask > 0]
    # 90th percentile of block noise estimates: close to the true sqrt(1000).
    assert 6.0 * 28.0 < change.min() < 6.0 * 40.0


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"density": 0.5}, ValueError, "density"),
        ({"density": "a"}, TypeError, "density"),
        ({"size_range": (0, 5)}, ValueError, "size_range"),
        ({"size_range": (5, 3)}, ValueError, "size_range"),
        ({"amplitude_range": (-1.0, 5.0)}, ValueError, "amplitude_range"),
        ({"dark_fraction": 1.5}, ValueError, "dark_fraction"),
        ({"noise_sigma": 0.0}, ValueError, "noise_sigma"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, words):
    with pytest.raises(error, match=words):
        add_spots(flat_image(shape=(32, 32)), **kwargs)


def test_bad_images_raise_clear_errors():
    with pytest.raises(ValueError, match="2D"):
        add_spots(np.zeros((4, 8, 8)))
    image = flat_image(shape=(32, 32))
    image[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        add_spots(image)
    with pytest.raises(TypeError, match="real numbers"):
        add_spots(np.zeros((8, 8), dtype=bool))
    with pytest.raises(ValueError, match="noise"):
        add_spots(np.full((64, 64), 5.0))
    with pytest.raises(TypeError, match="unexpected keyword"):
        simulate_spots(size=32, colour="red")
