import json

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import skeletonize

from niseg.simulate import Roots, attenuation_coefficient, simulate_roots


@pytest.fixture(scope="module")
def plane() -> Roots:
    return simulate_roots(shape=(256, 256), seed=0)


@pytest.fixture(scope="module")
def volume() -> Roots:
    return simulate_roots(shape=(48, 96, 96), seed=0)


def branch_points(mask: np.ndarray) -> int:
    skeleton = skeletonize(mask.astype(bool))
    neighbours = ndimage.convolve(skeleton.astype(int), np.ones((3,) * mask.ndim),
                                  mode="constant") - 1
    return int(np.sum(skeleton & (neighbours >= 3)))


@pytest.mark.parametrize("shape", [(256, 256), (128, 128), (64, 200), (48, 96, 96),
                                   (16, 16, 16), (32, 24, 40)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roots_fill_less_than_two_percent(shape, seed):
    sim = simulate_roots(shape=shape, seed=seed)
    fraction = float(sim.roots.mean())
    assert 0.0 < fraction < 0.02
    assert sim.metadata["root_fraction"] == pytest.approx(fraction)


@pytest.mark.parametrize("which", ["plane", "volume"])
def test_roots_form_one_branching_network(which, request):
    sim = request.getfixturevalue(which)
    mask = sim.roots.astype(bool)
    _, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    assert n == 1
    assert branch_points(mask) >= 3
    assert sim.metadata["n_branches"] >= 4
    # The taproot starts at the top: roots touch the first rows.
    assert mask[0].any()


@pytest.mark.parametrize("which", ["plane", "volume"])
def test_roots_are_one_to_three_voxels_in_radius(which, request):
    mask = request.getfixturevalue(which).roots.astype(bool)
    # The distance to the nearest soil voxel on the centreline is the local radius.
    radius = ndimage.distance_transform_edt(mask)[skeletonize(mask)]
    assert radius.min() >= 1.0
    assert radius.max() <= 3.5
    assert np.median(radius) <= 2.0  # fine laterals outnumber the taproot


def test_taproot_is_thickest_at_the_top(volume):
    mask = volume.roots.astype(bool)
    edt = ndimage.distance_transform_edt(mask)
    assert edt[:5].max() >= 2.0  # radius about 2.4 at the top
    assert edt[-8:].max() <= 2.0


def test_volume_attenuation_soil_and_roots(volume):
    assert volume.image.shape == volume.truth.shape == volume.mu.shape == (48, 96, 96)
    np.testing.assert_array_equal(volume.image, volume.mu)  # counts=None: noiseless
    mask = volume.roots.astype(bool)
    np.testing.assert_array_equal(volume.truth, np.where(mask, 2, 1))
    np.testing.assert_allclose(volume.mu[mask], attenuation_coefficient("root"), rtol=1e-6)
    soil = volume.mu[~mask]
    quartz = attenuation_coefficient("quartz")
    grains = np.isclose(soil, quartz, rtol=1e-6)
    assert float(grains.mean()) == pytest.approx(1 - volume.metadata["porosity"], abs=0.01)
    # Roots hold more water than any soil voxel, so they attenuate more on average.
    assert volume.mu[mask].mean() > 2 * soil.mean()


@pytest.mark.parametrize("which", ["plane", "volume"])
def test_soil_gets_wetter_with_depth(which, request):
    sim = request.getfixturevalue(which)
    water = np.where(sim.roots.astype(bool), np.nan, sim.water_content)
    quarter = water.shape[0] // 4
    top, bottom = np.nanmean(water[:quarter]), np.nanmean(water[-quarter:])
    assert bottom > top + 0.05
    # On average the soil holds the requested water content (0.10 at the top, 0.25 below).
    assert 0.08 < top < 0.16 and 0.19 < bottom < 0.28


def test_radiograph_contrast_comes_from_the_roots(plane):
    assert plane.image.shape == plane.transmission.shape == (256, 256)
    np.testing.assert_array_equal(plane.image, plane.transmission)
    assert plane.open_beam is None and plane.mu is None
    mask = plane.roots.astype(bool)
    attenuation = -np.log(plane.transmission.astype(np.float64))
    ring = ndimage.binary_dilation(mask, iterations=3) & ~mask
    assert attenuation[mask].mean() > attenuation[ring].mean() + 0.02
    assert np.all((plane.transmission > 0) & (plane.transmission < 1))


def test_radiograph_counts_are_poisson():
    sim = simulate_roots(shape=(128, 128), counts=400.0, seed=4)
    assert np.all(sim.image == np.round(sim.image))
    expected = 400.0 * sim.transmission.astype(np.float64)
    z = (sim.image - expected) / np.sqrt(expected)
    assert abs(float(z.mean())) < 0.03
    assert float(z.var()) == pytest.approx(1.0, abs=0.05)
    assert float(sim.open_beam.mean()) == pytest.approx(400.0, rel=0.01)
    np.testing.assert_array_equal(sim.truth, simulate_roots(shape=(128, 128), seed=4).truth)


def test_volume_with_counts_adds_correlated_noise(volume):
    noisy = simulate_roots(shape=(48, 96, 96), counts=2000.0, seed=0)
    np.testing.assert_array_equal(noisy.mu, volume.mu)
    noise = noisy.image - noisy.mu
    assert 0.02 < float(noise.std()) < 1.0
    a, b = noise[:, :, :-1].ravel(), noise[:, :, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.0
    assert "reconstructed" in noisy.metadata["value"]


def test_same_seed_same_roots_new_seed_new_roots(plane):
    again = simulate_roots(shape=(256, 256), seed=0)
    for name in ("image", "truth", "roots", "water_content"):
        np.testing.assert_array_equal(getattr(plane, name), getattr(again, name))
    assert plane.metadata == again.metadata
    assert not np.array_equal(plane.roots, simulate_roots(shape=(256, 256), seed=1).roots)


def test_metadata(plane, volume):
    assert plane.metadata["axes"] == "yx" and volume.metadata["axes"] == "zyx"
    assert plane.metadata["classes"] == volume.metadata["classes"] == ["soil", "root"]
    assert plane.metadata["mu_per_cm"]["root"] == pytest.approx(attenuation_coefficient("root"))
    assert plane.truth.dtype == plane.roots.dtype == np.uint8
    assert plane.image.dtype == plane.water_content.dtype == np.float32
    json.dumps(plane.metadata)
    json.dumps(volume.metadata)


def test_more_laterals_more_roots():
    few = simulate_roots(shape=(40, 80, 80), n_laterals=2, seed=3)
    many = simulate_roots(shape=(40, 80, 80), n_laterals=12, seed=3)
    assert many.roots.sum() > few.roots.sum()
    none = simulate_roots(shape=(40, 80, 80), n_laterals=0, seed=3)
    assert none.metadata["n_branches"] == 1 and branch_points(none.roots) == 0


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"shape": (64,)}, TypeError, r"\(M, N\) for a radiograph"),
    ({"shape": (8, 64)}, ValueError, "at least 16"),
    ({"water_content": 0.5}, ValueError, "water_content"),
    ({"water_content": (0.1, 0.2, 0.3)}, ValueError, "pair"),
    ({"porosity": 1.0}, ValueError, "porosity"),
    ({"n_laterals": -1}, ValueError, "n_laterals"),
    ({"n_laterals": 2.0}, TypeError, "n_laterals"),
    ({"counts": -5.0}, ValueError, "counts"),
    ({"thickness_cm": 0.0}, ValueError, "thickness_cm"),
    ({"seed": "0"}, TypeError, "seed"),
])
def test_bad_arguments_raise_one_clear_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate_roots(**kwargs)
