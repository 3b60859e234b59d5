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
    drift_profile,
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
    ({"counts": 0.0},
     "counts must be a finite number of neutrons or photons per pixel per second greater than 0"),
    ({"counts": float("nan")}, "counts must be a finite number"),
    ({"size": 4}, r"size must be at least 8 pixels along each axis, got \(4, 4\)"),
    ({"size": (64, 7)}, "size must be at least 8 pixels"),
    ({"blur": -1.0}, "blur must be a finite number of pixels at least 0"),
    ({"pixel_size_um": 0}, "pixel_size_um must be a finite number of micrometres"),
    ({"beam_falloff": 1.0}, r"beam_falloff must be a fraction in \[0, 1\)"),
    ({"oversample": 0}, "oversample must be an integer from 1 to 16"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"exposure": 0.0}, "exposure must be a finite number of seconds greater than 0"),
    ({"open_beam_exposure": -1.0}, "open_beam_exposure must be a finite number of seconds"),
    ({"counts": 1e10, "exposure": 1e3}, "counts \\* exposure must be at most"),
    ({"dark_current": -1.0}, "dark_current must be a finite number of counts"),
    ({"read_noise": float("inf")}, "read_noise must be a finite number"),
    ({"dark_pattern": 1.0}, r"dark_pattern must be a fraction in \[0, 1\)"),
    ({"radiation": "gamma"}, "radiation must be 'neutron' or 'xray', got 'gamma'"),
    ({"radiation": "xray"}, "energy_kev must be given for radiation='xray'"),
    ({"radiation": "xray", "energy_kev": 500.0}, "energy_kev must be a photon energy from 10"),
    ({"energy_kev": 60.0}, "energy_kev applies to X-rays only"),
    ({"radiation": "xray", "phantom": Phantom(shapes=[])},
     "energy_kev must be given for radiation='xray'"),
    ({"drift": {"scale": 1.0, "gradient": (1.5, 0.0)}},
     r"drift gradient must be a pair \(gy, gx\) of fractions in \(-1, 1\)"),
    ({"drift": {"offset": 1.0}}, "drift accepts the keys 'scale' and 'gradient', got 'offset'"),
    ({"drift": 0.0}, "drift scale must be a positive finite number"),
    ({"n_open_beam": 0}, "n_open_beam must be a number of frames from 1 to 1000"),
    ({"n_dark": 5000}, "n_dark must be a number of frames from 1 to 1000"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_radiograph(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 64.0}, "size must be an int or a pair of ints"),
    ({"counts": "1000"}, "counts must be a number"),
    ({"phantom": "default"},
     "phantom must be a niseg.simulate.Phantom, VolumePhantom or None, got str"),
    ({"seed": 1.0}, "seed must be a non-negative integer"),
    ({"drift": "up"}, "drift must be a number"),
    ({"n_open_beam": 2.0}, "n_open_beam must be a positive integer"),
    ({"spots": [1, 2]}, "spots must be a dict of add_spots keyword arguments"),
    ({"dark_pattern": "0.1"}, "dark_pattern must be a fraction"),
])
def test_bad_argument_types_raise_type_error(kwargs, message):
    with pytest.raises(TypeError, match=message):
        simulate_radiograph(**kwargs)


# ------------------------------------------------------------------ the first version kept


def test_default_arguments_are_the_first_version_forward_model():
    # Sample and open beam are Poisson draws, in that order, from child 0 of SeedSequence(seed)
    # with nothing else added: arrays made before the detector options existed still match.
    rad = simulate_radiograph(size=64, counts=300.0, seed=12)
    rng = np.random.default_rng(np.random.SeedSequence(12).spawn(1)[0])
    i0 = 300.0 * beam_profile((64, 64), falloff=0.15).astype(np.float64)
    np.testing.assert_array_equal(rad.image, rng.poisson(i0 * rad.transmission))
    np.testing.assert_array_equal(rad.open_beam, rng.poisson(i0))
    assert rad.dark is None and rad.spot_mask is None and rad.spot_free is None
    meta = rad.metadata
    assert (meta["exposure_time"], meta["open_beam_exposure_time"]) == (1.0, 1.0)
    assert meta["radiation"] == "neutron" and meta["energy_kev"] is None
    assert meta["drift"] is None and meta["spots"] is None
    assert (meta["dark_current"], meta["read_noise"], meta["n_open_beam"], meta["n_dark"]) == \
        (0.0, 0.0, None, None)


# ----------------------------------------------------------------------------- X-rays


def slab_phantom(material: str, thickness: float) -> Phantom:
    return Phantom(shapes=[Plate(material=material, centre=(0.64, 0.64), half_size=(0.4, 0.4),
                                 thickness=thickness)], field_of_view_cm=1.28)


@pytest.mark.parametrize(("radiation", "energy", "material", "thickness"), [
    ("xray", 60.0, "aluminium", 1.0),
    ("xray", 100.0, "iron", 0.5),
    ("xray", 30.0, "water", 2.0),
    ("neutron", None, "water", 0.3),
])
def test_beer_lambert_thickness_is_recovered_from_minus_log_transmission(
        radiation, energy, material, thickness):
    rad = simulate_radiograph(size=128, counts=20000.0, pixel_size_um=100.0, beam_falloff=0.0,
                              phantom=slab_phantom(material, thickness), radiation=radiation,
                              energy_kev=energy, seed=3)
    mu = attenuation_coefficient(material, radiation=radiation, energy_kev=energy)
    inside = rad.truth == 1
    assert inside.sum() > 4000
    t_measured = rad.image[inside].astype(np.float64).mean() / rad.open_beam[inside].mean()
    assert -math.log(t_measured) / mu == pytest.approx(thickness, rel=0.01)
    assert rad.transmission[inside] == pytest.approx(math.exp(-mu * thickness), rel=1e-5)
    assert rad.metadata["mu_per_cm"] == {material: pytest.approx(mu)}


def test_xray_and_neutron_contrast_are_reversed():
    # 0.5 cm of water beside 0.5 cm of iron: neutrons see the water, X-rays the iron.
    phantom = Phantom(shapes=[
        Plate(material="water", centre=(0.64, 0.35), half_size=(0.3, 0.2), thickness=0.5),
        Plate(material="iron", centre=(0.64, 0.95), half_size=(0.3, 0.2), thickness=0.5)],
        field_of_view_cm=1.28)
    kwargs = {"size": 128, "phantom": phantom, "seed": 0}
    neutron = simulate_radiograph(**kwargs)
    xray = simulate_radiograph(radiation="xray", energy_kev=100.0, **kwargs)
    for rad, darker in ((neutron, 1), (xray, 2)):
        t_water = rad.transmission[rad.truth == 1].mean()
        t_iron = rad.transmission[rad.truth == 2].mean()
        assert (t_water < t_iron) == (darker == 1)
    assert xray.metadata["radiation"] == "xray" and xray.metadata["energy_kev"] == 100.0
    assert xray.metadata["mu_per_cm"]["iron"] == pytest.approx(0.3717 * 7.874)


def test_xray_truth_uses_xray_attenuation():
    phantom = Phantom(shapes=[
        Plate(material="water", centre=(0.5, 0.5), half_size=(0.4, 0.4), thickness=1.0),
        Plate(material="lead", centre=(0.5, 0.5), half_size=(0.2, 0.2), thickness=0.1)],
        field_of_view_cm=1.0)
    neutron = simulate_radiograph(size=20, pixel_size_um=500.0, phantom=phantom)
    xray = simulate_radiograph(size=20, pixel_size_um=500.0, phantom=phantom, radiation="xray",
                               energy_kev=100.0)
    assert neutron.truth[10, 10] == 1 and xray.truth[10, 10] == 2
    assert neutron.truth[2, 2] == xray.truth[2, 2] == 1


# --------------------------------------------------------------------- exposure and drift


def test_exposure_scales_the_counts():
    rad = simulate_radiograph(size=128, counts=400.0, exposure=2.5, beam_falloff=0.0, seed=2)
    assert rad.open_beam.mean() == pytest.approx(1000.0, rel=0.005)
    assert rad.metadata["exposure_time"] == 2.5
    assert rad.metadata["open_beam_exposure_time"] == 2.5
    short_open = simulate_radiograph(size=128, counts=400.0, exposure=2.5, open_beam_exposure=0.5,
                                     beam_falloff=0.0, phantom=Phantom(shapes=[]), seed=2)
    assert short_open.open_beam.mean() == pytest.approx(200.0, rel=0.005)
    assert short_open.image.mean() == pytest.approx(1000.0, rel=0.005)
    assert short_open.metadata["open_beam_exposure_time"] == 0.5
    # Poisson statistics follow the counts of the frame, not the rate
    assert short_open.image.var() == pytest.approx(1000.0, rel=0.05)


def test_drift_profile_is_a_scaled_linear_ramp():
    g = drift_profile((64, 32), scale=0.95, gradient=(0.2, -0.1))
    assert g.dtype == np.float32 and g.shape == (64, 32)
    assert g.mean() == pytest.approx(0.95, rel=1e-6)
    # from the first to the last pixel centre: 63/64 of the full-height change
    assert (g[-1, 0] - g[0, 0]) / 0.95 == pytest.approx(0.2 * 63 / 64, rel=1e-5)
    assert (g[0, -1] - g[0, 0]) / 0.95 == pytest.approx(-0.1 * 31 / 32, rel=1e-5)
    np.testing.assert_array_equal(drift_profile((5, 5)), np.ones((5, 5), np.float32))
    with pytest.raises(ValueError, match="drift gradient must be a pair"):
        drift_profile((5, 5), gradient=(0.1,))


def test_drift_changes_only_the_sample_frame_and_is_recorded():
    drift = {"scale": 0.9, "gradient": (0.1, -0.2)}
    rad = simulate_radiograph(size=128, counts=5000.0, beam_falloff=0.1, drift=drift,
                              phantom=Phantom(shapes=[]), seed=4)
    assert rad.metadata["drift"] == {"scale": 0.9, "gradient": [0.1, -0.2]}
    i0 = 5000.0 * beam_profile((128, 128), falloff=0.1).astype(np.float64)
    assert np.mean((rad.open_beam - i0) ** 2 / i0) == pytest.approx(1.0, abs=0.03)
    # a sample-free frame divided by the open beam is the drift map (dose correction)
    ratio = rad.image.astype(np.float64) / rad.open_beam
    g = drift_profile((128, 128), scale=0.9, gradient=(0.1, -0.2))
    assert ratio.mean() == pytest.approx(0.9, rel=0.002)
    np.testing.assert_allclose(ratio.mean(axis=1)[8::16], g.mean(axis=1)[8::16], rtol=0.01)
    np.testing.assert_allclose(ratio.mean(axis=0)[8::16], g.mean(axis=0)[8::16], rtol=0.01)
    # a plain number is the scale alone
    assert simulate_radiograph(size=16, drift=1.05).metadata["drift"] == \
        {"scale": 1.05, "gradient": [0.0, 0.0]}


# -------------------------------------------------------------- open-beam and dark frames


def test_several_open_beam_frames_are_independent():
    rad = simulate_radiograph(size=128, counts=1000.0, beam_falloff=0.0, n_open_beam=4, seed=6)
    single = simulate_radiograph(size=128, counts=1000.0, beam_falloff=0.0, seed=6)
    assert rad.open_beam.shape == (4, 128, 128) and rad.open_beam.dtype == np.float32
    np.testing.assert_array_equal(rad.open_beam[0], single.open_beam)
    np.testing.assert_array_equal(rad.image, single.image)
    residual = rad.open_beam.reshape(4, -1).astype(np.float64) - 1000.0
    assert np.allclose(residual.var(axis=1) / 1000.0, 1.0, atol=0.05)
    corr = np.corrcoef(residual)
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 0.03
    # the median of the stack is less noisy than any single frame
    assert np.median(rad.open_beam, axis=0).var() < 0.7 * residual[0].var()
    assert rad.metadata["n_open_beam"] == 4


def test_dark_frames_have_the_documented_statistics():
    dc, r, pattern = 200.0, 6.0, 0.1
    rad = simulate_radiograph(size=128, dark_current=dc, read_noise=r, dark_pattern=pattern,
                              n_dark=6, seed=8)
    dark = rad.dark.astype(np.float64)
    assert dark.shape == (6, 128, 128) and rad.dark.dtype == np.float32
    assert dark.mean() == pytest.approx(dc, rel=0.005)
    # frame differences cancel the fixed pattern: 2 (Poisson dark + read noise variance)
    diff = dark[0] - dark[1]
    assert diff.var() / 2 == pytest.approx(dc + r**2, rel=0.05)
    # the fixed pattern is common to all frames: the pixel means scatter by dark_pattern * dc
    pixel_mean = dark.mean(axis=0)
    expected = (pattern * dc) ** 2 + (dc + r**2) / 6
    assert pixel_mean.var() == pytest.approx(expected, rel=0.06)
    level = np.corrcoef(dark[2].ravel(), dark[3].ravel())[0, 1]
    assert level == pytest.approx((pattern * dc) ** 2 / ((pattern * dc) ** 2 + dc + r**2),
                                  abs=0.03)
    meta = rad.metadata
    assert (meta["dark_current"], meta["read_noise"], meta["dark_pattern"], meta["n_dark"]) == \
        (dc, r, pattern, 6)


def test_read_noise_adds_its_variance():
    rads = [simulate_radiograph(size=128, dark_current=400.0, read_noise=r, dark_pattern=0.0,
                                n_dark=2, seed=1) for r in (0.0, 12.0)]
    var = [np.var(rad.dark[0].astype(np.float64) - rad.dark[1]) / 2 for rad in rads]
    assert var[0] == pytest.approx(400.0, rel=0.05)
    assert var[1] - var[0] == pytest.approx(144.0, rel=0.15)


def test_dark_signal_is_in_every_frame_and_subtracts_away():
    counts, dc = 2000.0, 300.0
    rad = simulate_radiograph(size=128, counts=counts, beam_falloff=0.0, dark_current=dc,
                              read_noise=4.0, dark_pattern=0.3, n_dark=8, seed=9,
                              phantom=slab_phantom("aluminium", 2.0))
    dark = np.mean(rad.dark, axis=0, dtype=np.float64)
    open_net = rad.open_beam - dark
    assert open_net.mean() == pytest.approx(counts, rel=0.003)
    # the fixed pattern appears in the open beam, so subtracting the dark removes it
    assert np.corrcoef(rad.open_beam.ravel(), dark.ravel())[0, 1] > 0.5
    inside = rad.truth == 1
    t_net = (rad.image[inside] - dark[inside]).mean() / open_net[inside].mean()
    assert t_net == pytest.approx(rad.transmission[inside].mean(), rel=0.01)
    # without subtracting the dark, the transmission is biased towards 1
    t = rad.transmission[inside].mean()
    biased = rad.image[inside].mean() / rad.open_beam[inside].mean()
    assert biased == pytest.approx((t * counts + dc) / (counts + dc), rel=0.01)
    assert biased > t + 0.02


def test_dark_frames_without_dark_signal_are_zeros_and_dark_is_after_blur():
    rad = simulate_radiograph(size=32, n_dark=2)
    assert rad.dark.shape == (2, 32, 32) and not rad.dark.any()
    single = simulate_radiograph(size=32, dark_current=50.0)
    assert single.dark.shape == (32, 32)
    # the dark signal is not blurred: the blurred frame plus the dark noise, not a blur of it
    sharp = simulate_radiograph(size=64, blur=2.0, dark_current=100.0, dark_pattern=0.0, seed=5)
    soft = simulate_radiograph(size=64, blur=2.0, seed=5)
    added = sharp.image.astype(np.float64) - soft.image
    assert added.mean() == pytest.approx(100.0, rel=0.02)
    assert added.var() == pytest.approx(100.0, rel=0.1)


# ------------------------------------------------------------------------------ spots


def test_spots_are_added_to_the_sample_frame_after_the_blur():
    plain = simulate_radiograph(size=128, blur=1.0, seed=4)
    rad = simulate_radiograph(size=128, blur=1.0, spots={"density": 0.002}, seed=4)
    again = simulate_radiograph(size=128, blur=1.0, spots={"density": 0.002}, seed=4)
    np.testing.assert_array_equal(rad.spot_free, plain.image)
    np.testing.assert_array_equal(rad.open_beam, plain.open_beam)
    assert rad.spot_mask.dtype == np.uint8 and rad.spot_mask.shape == (128, 128)
    assert rad.spot_mask.any()
    clean = rad.spot_mask == 0
    np.testing.assert_array_equal(rad.image[clean], plain.image[clean])
    assert np.all(rad.image[~clean] != plain.image[~clean])
    np.testing.assert_array_equal(rad.image, again.image)
    np.testing.assert_array_equal(rad.spot_mask, again.spot_mask)
    assert rad.metadata["spots"] == {"density": 0.002}
    other = simulate_radiograph(size=128, blur=1.0, spots={"density": 0.002}, seed=5)
    assert not np.array_equal(other.spot_mask, rad.spot_mask)
