import json
import math

import numpy as np
import pytest
from scipy import ndimage

from niseg.simulate import (
    Cylinder,
    Phantom,
    Plate,
    Radiograph,
    Sphere,
    attenuation_coefficient,
    beam_profile,
    default_phantom,
    simulate_radiograph,
)


def expected_counts(rad: Radiograph) -> np.ndarray:
    counts, falloff = rad.metadata["counts"], rad.metadata["beam_falloff"]
    return counts * beam_profile(rad.image.shape, falloff=falloff).astype(np.float64) * \
        rad.transmission.astype(np.float64)


def test_same_seed_gives_identical_arrays():
    a = simulate_radiograph(size=64, blur=1.0, seed=7)
    b = simulate_radiograph(size=64, blur=1.0, seed=7)
    for name in ("image", "truth", "open_beam", "transmission"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.metadata == b.metadata


def test_different_seed_changes_the_noise_but_not_a_given_phantom():
    phantom = default_phantom(seed=0, size_cm=0.64)
    a = simulate_radiograph(size=64, phantom=phantom, seed=0)
    b = simulate_radiograph(size=64, phantom=phantom, seed=1)
    np.testing.assert_array_equal(a.transmission, b.transmission)
    np.testing.assert_array_equal(a.truth, b.truth)
    assert np.mean(a.image != b.image) > 0.9
    assert np.mean(a.open_beam != b.open_beam) > 0.9


def test_default_phantom_follows_the_seed_and_fills_the_image():
    a = simulate_radiograph(size=(96, 128), pixel_size_um=50.0, seed=3)
    assert a.metadata["phantom"] == default_phantom(seed=3, size_cm=(0.48, 0.64)).to_dict()
    assert not np.array_equal(a.truth, simulate_radiograph(size=(96, 128), seed=4).truth)


def test_outputs_types_and_metadata():
    rad = simulate_radiograph(size=(64, 80), counts=200.0, pixel_size_um=55.0, blur=0.5,
                              beam_falloff=0.1, seed=2)
    assert rad.image.shape == rad.truth.shape == rad.open_beam.shape == (64, 80)
    assert rad.image.dtype == rad.open_beam.dtype == rad.transmission.dtype == np.float32
    assert rad.truth.dtype == np.uint8
    meta = rad.metadata
    assert meta["axes"] == "yx" and meta["unit"] == "um"
    assert tuple(meta["pixel_size"]) == (55.0, 55.0)
    assert meta["classes"] == ["aluminium", "iron", "copper", "water", "cadmium"]
    assert (meta["counts"], meta["blur"], meta["beam_falloff"], meta["seed"]) == (200.0, 0.5,
                                                                                   0.1, 2)
    assert meta["simulator"] == "niseg.simulate.simulate_radiograph"
    assert meta["mu_per_cm"]["iron"] == pytest.approx(attenuation_coefficient("iron"))
    assert rad.truth.max() == len(meta["classes"])
    rebuilt = Phantom.from_dict(json.loads(json.dumps(meta)).get("phantom"))
    np.testing.assert_array_equal(rebuilt.truth((64, 80), 55e-4)[0], rad.truth)


def test_counts_are_poisson_around_the_expectation():
    rad = simulate_radiograph(size=512, counts=1000.0, seed=11)
    expected = expected_counts(rad)
    ok = expected > 1.0
    assert ok.mean() > 0.9
    residual = rad.image[ok] - expected[ok]
    assert abs(residual.mean()) < 0.25  # unbiased (std of this mean ~ 0.06)
    chi2 = np.mean(residual**2 / expected[ok])
    assert chi2 == pytest.approx(1.0, abs=0.02)
    np.testing.assert_array_equal(rad.image, np.round(rad.image))  # integer counts


def test_open_beam_variance_equals_mean_where_the_beam_is_flat():
    rad = simulate_radiograph(size=512, counts=400.0, beam_falloff=0.0, seed=5)
    region = rad.open_beam[64:-64, 64:-64].astype(np.float64)
    assert region.mean() == pytest.approx(400.0, rel=0.002)
    assert region.var() / region.mean() == pytest.approx(1.0, abs=0.02)


def test_open_beam_follows_the_beam_profile():
    rad = simulate_radiograph(size=512, counts=1000.0, seed=6)
    i0 = 1000.0 * beam_profile((512, 512), falloff=0.15).astype(np.float64)
    chi2 = np.mean((rad.open_beam - i0) ** 2 / i0)
    assert chi2 == pytest.approx(1.0, abs=0.02)
    # corners lose ~15 %, the centre gets the nominal counts
    assert rad.open_beam[:16, :16].mean() == pytest.approx(1000 * 0.85, rel=0.02)


def test_mean_counts_match_counts_at_the_beam_centre():
    for counts in (50.0, 1000.0, 20000.0):
        rad = simulate_radiograph(size=256, counts=counts, seed=1)
        assert rad.open_beam[112:144, 112:144].mean() == pytest.approx(counts, rel=0.01)


def test_blur_is_applied_after_counting():
    phantom = default_phantom(seed=0, size_cm=1.28)
    sharp = simulate_radiograph(size=128, phantom=phantom, seed=9)
    soft = simulate_radiograph(size=128, phantom=phantom, blur=2.0, seed=9)
    np.testing.assert_allclose(soft.image, ndimage.gaussian_filter(sharp.image, 2.0), atol=1e-3)
    np.testing.assert_allclose(soft.open_beam, ndimage.gaussian_filter(sharp.open_beam, 2.0),
                               atol=1e-3)
    np.testing.assert_array_equal(soft.transmission, sharp.transmission)
    np.testing.assert_array_equal(soft.truth, sharp.truth)


@pytest.mark.parametrize("sigma", [0.7, 1.5])
def test_blur_reduces_variance_over_mean_by_the_psf_energy(sigma):
    rad = simulate_radiograph(size=512, counts=1000.0, blur=sigma, seed=8)
    i0 = 1000.0 * beam_profile((512, 512), falloff=0.15)
    residual = rad.open_beam - ndimage.gaussian_filter(i0, sigma, mode="reflect")
    inner = (slice(32, -32), slice(32, -32))
    ratio = np.mean(residual[inner].astype(np.float64) ** 2) / i0[inner].mean()
    delta = np.zeros((41, 41))
    delta[20, 20] = 1.0
    psf_energy = np.sum(ndimage.gaussian_filter(delta, sigma) ** 2)
    assert ratio < 1.0
    assert ratio == pytest.approx(psf_energy, rel=0.05)
    # flat beam: the plain variance/mean ratio drops below 1 as well
    flat = simulate_radiograph(size=256, counts=1000.0, blur=sigma, beam_falloff=0.0, seed=8)
    region = flat.open_beam[32:-32, 32:-32].astype(np.float64)
    assert region.var() / region.mean() == pytest.approx(psf_energy, rel=0.1)


def hand_phantom() -> Phantom:
    return Phantom(shapes=[
        Cylinder(material="iron", centre=(0.5, 0.5), radius=0.3, thickness=1.0),
        Sphere(material="water", centre=(0.5, 0.7), radius=0.25),
        Plate(material="cadmium", centre=(0.1, 0.1), half_size=(0.05, 0.05), thickness=0.02)],
        field_of_view_cm=1.0)


def test_transmission_is_beer_lambert_at_hand_checked_pixels():
    rad = simulate_radiograph(size=100, pixel_size_um=100.0, phantom=hand_phantom(), seed=0)
    mu_fe, mu_w, mu_cd = (attenuation_coefficient(m) for m in ("iron", "water", "cadmium"))
    # pixel (i, j) samples the point ((i + 0.5) * 0.01, (j + 0.5) * 0.01) cm

    def water(y, x):
        return 2 * math.sqrt(max(0.25**2 - (y - 0.5) ** 2 - (x - 0.7) ** 2, 0.0))

    checks = {
        (50, 50): mu_fe * 1.0 + mu_w * water(0.505, 0.505),
        (50, 85): mu_w * water(0.505, 0.855),
        (30, 40): mu_fe * 1.0,
        (10, 10): mu_cd * 0.02,
        (95, 5): 0.0,
    }
    for (i, j), line_integral in checks.items():
        assert rad.transmission[i, j] == pytest.approx(math.exp(-line_integral), rel=1e-6)


def test_truth_at_hand_checked_pixels():
    rad = simulate_radiograph(size=100, pixel_size_um=100.0, phantom=hand_phantom(), seed=0)
    assert rad.metadata["classes"] == ["iron", "water", "cadmium"]
    assert rad.truth[50, 50] == 1   # iron mu d = 1.20 beats the 3.1 mm of water there (1.09)
    assert rad.truth[50, 85] == 2   # water only
    assert rad.truth[10, 10] == 3   # cadmium sheet
    assert rad.truth[95, 5] == 0    # outside all shapes
    assert rad.truth[0, 99] == 0
    labels, _ = hand_phantom().truth((100, 100), 0.01)
    np.testing.assert_array_equal(rad.truth, labels)


def test_oversampling_averages_transmission_over_the_pixel():
    # A cadmium strip covering x in (0.05, 0.45) cm: pixel column 0 spans [0, 0.1) and is
    # half covered, so it transmits (1 + exp(-mu d)) / 2.
    strip = Plate(material="cadmium", centre=(0.5, 0.25), half_size=(0.6, 0.2), thickness=0.01)
    phantom = Phantom(shapes=[strip], field_of_view_cm=1.0)
    rad = simulate_radiograph(size=10, pixel_size_um=1000.0, phantom=phantom, oversample=4)
    t_strip = math.exp(-attenuation_coefficient("cadmium") * 0.01)
    assert rad.transmission[5, 0] == pytest.approx((1 + t_strip) / 2, rel=1e-6)
    assert rad.transmission[5, 2] == pytest.approx(t_strip, rel=1e-6)
    assert rad.transmission[5, 7] == 1.0
    assert rad.truth[5, 0] == 0 and rad.truth[5, 2] == 1  # truth stays at pixel centres


def test_beam_profile_shape():
    profile = beam_profile((101, 101), falloff=0.2)
    assert profile.dtype == np.float32
    assert profile[50, 50] == 1.0
    # corner pixel centres sit at 50/50.5 of the corner distance
    assert profile[0, 0] == pytest.approx(0.8 ** ((50 / 50.5) ** 2), rel=1e-6)
    np.testing.assert_array_equal(beam_profile((8, 9), falloff=0.0), np.ones((8, 9)))


def test_large_radiograph_shape_and_dtypes():
    rad = simulate_radiograph(size=1024, blur=1.0)
    assert rad.image.shape == rad.truth.shape == (1024, 1024)
    assert rad.image.dtype == rad.open_beam.dtype == np.float32
    assert rad.truth.dtype == np.uint8


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"counts": 0.0}, "counts must be a finite number of neutrons per pixel greater than 0"),
    ({"counts": float("nan")}, "counts must be a finite number"),
    ({"size": 4}, r"size must be at least 8 pixels along each axis, got \(4, 4\)"),
    ({"size": (64, 7)}, "size must be at least 8 pixels"),
    ({"blur": -1.0}, "blur must be a finite number of pixels at least 0"),
    ({"pixel_size_um": 0}, "pixel_size_um must be a finite number of micrometres"),
    ({"beam_falloff": 1.0}, r"beam_falloff must be a fraction in \[0, 1\)"),
    ({"oversample": 0}, "oversample must be an integer from 1 to 16"),
    ({"seed": -1}, "seed must be a non-negative integer"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_radiograph(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 64.0}, "size must be an int or a pair of ints"),
    ({"counts": "1000"}, "counts must be a number"),
    ({"phantom": "default"}, "phantom must be a niseg.simulate.Phantom or None, got str"),
    ({"seed": 1.0}, "seed must be a non-negative integer"),
])
def test_bad_argument_types_raise_type_error(kwargs, message):
    with pytest.raises(TypeError, match=message):
        simulate_radiograph(**kwargs)
