import json

import numpy as np
import pytest
from scipy import ndimage
from skimage.transform import iradon

from niseg.simulate import Tomography, attenuation_coefficient, simulate_tomography

PIXEL_CM = 100.0 * 1e-4  # the default 100 µm voxels


def ball(shape, centre, radius, value=1):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    inside = sum((g - c) ** 2 for g, c in zip(grids, centre)) < radius**2
    return np.where(inside, value, 0).astype(np.uint8)


def in_circle(n, margin=0):
    grid = np.arange(n) - n // 2
    return np.hypot(grid[:, None], grid[None, :]) < n // 2 - margin


def radial_to_tangential_gradient(image):
    """Mean squared gradient across circles around the rotation axis over that along them."""
    n = image.shape[-1]
    grid = np.arange(n) - n // 2
    y, x = np.meshgrid(grid, grid, indexing="ij")
    r = np.hypot(y, x) + 1e-9
    gy, gx = np.gradient(image.astype(np.float64), axis=(-2, -1))
    radial = (gy * y + gx * x) / r
    tangential = (-gy * x + gx * y) / r
    keep = (r > 4) & (r < n // 2 - 3)
    return float(np.mean(radial[..., keep] ** 2) / np.mean(tangential[..., keep] ** 2))


@pytest.fixture(scope="module")
def spheres() -> Tomography:
    return simulate_tomography(shape=(24, 64, 64), seed=2)


def test_default_volume_is_labelled_with_its_materials(spheres):
    assert spheres.volume.shape == spheres.truth.shape == spheres.mu.shape == (24, 64, 64)
    assert spheres.volume.dtype == spheres.mu.dtype == np.float32
    assert spheres.truth.dtype == np.uint8
    meta = spheres.metadata
    assert meta["classes"] == ["aluminium", "iron", "copper", "lead", "water"]
    assert meta["axes"] == "zyx" and meta["projection_axes"] == "tyx"
    assert set(np.unique(spheres.truth).tolist()) == set(range(6))
    lookup = np.array([0.0] + [attenuation_coefficient(c) for c in meta["classes"]])
    np.testing.assert_allclose(spheres.mu, lookup[spheres.truth], rtol=1e-6)
    # Eight spheres and a tube; the tube is a ring around the rotation axis in every slice.
    assert sum(s["type"] == "sphere" for s in meta["shapes"]) == 8
    tube = spheres.truth == 1
    assert np.array_equal(tube[0], tube[-1]) and tube[0, 32, 5] and not tube[0, 32, 32]
    assert spheres.projections is None and spheres.line_integrals is None
    json.dumps(meta)


def test_same_seed_same_volume_new_seed_new_volume(spheres):
    again = simulate_tomography(shape=(24, 64, 64), seed=2)
    np.testing.assert_array_equal(spheres.volume, again.volume)
    np.testing.assert_array_equal(spheres.truth, again.truth)
    assert spheres.metadata == again.metadata
    other = simulate_tomography(shape=(24, 64, 64), seed=3)
    assert not np.array_equal(spheres.truth, other.truth)


def test_volume_noise_is_correlated_and_at_the_stated_level():
    kwargs = {"shape": (16, 64, 64), "phantom": "cylinders", "rings": 0.0, "blur": 0.7,
              "flat_frames": 100_000, "counts": 2000.0, "seed": 4}
    noisy = simulate_tomography(**kwargs)
    clean = simulate_tomography(**kwargs, noise=False)
    np.testing.assert_array_equal(noisy.truth, clean.truth)
    noise = (noisy.volume - clean.volume)[:, in_circle(64, 4)]
    sigma = noisy.metadata["noise_std_per_cm"]
    assert clean.metadata["noise_std_per_cm"] == 0.0
    assert float(noise.std()) == pytest.approx(sigma, rel=0.1)
    field = noisy.volume - clean.volume
    a, b = field[:, 8:-8, 8:-9].ravel(), field[:, 8:-8, 9:-8].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.3  # neighbours share noise, as after FBP with blur
    above = np.corrcoef(field[:-1, 8:-8, 8:-8].ravel(), field[1:, 8:-8, 8:-8].ravel())[0, 1]
    assert above > 0.2  # the detector blur also spans neighbouring slices


def test_volume_noise_level_matches_a_real_reconstruction():
    # An empty field of view: every ray has T = 1, so the noise is the FBP of Poisson noise.
    labels = np.zeros((6, 64, 64), dtype=np.uint8)
    common = {"shape": (6, 64, 64), "phantom": (labels, ["water"]), "n_angles": 90,
              "counts": 500.0, "rings": 0.0, "blur": 0.0, "flat_frames": 100_000, "seed": 1}
    scan = simulate_tomography(**common, mode="projections", reconstruct=True)
    surrogate = simulate_tomography(**common)
    inside = in_circle(64, 4)
    measured = float(scan.volume[:, inside].std())
    assert surrogate.metadata["noise_std_per_cm"] == pytest.approx(measured, rel=0.1)
    assert float(surrogate.volume[:, inside].std()) == pytest.approx(measured, rel=0.1)


def test_rings_are_circles_around_the_rotation_axis():
    kwargs = {"shape": (4, 64, 64), "phantom": "cylinders", "noise": False, "blur": 0.0,
              "seed": 5}
    plain = simulate_tomography(**kwargs, rings=0.0)
    ringed = simulate_tomography(**kwargs, rings=0.01)
    rings = ringed.volume - plain.volume
    assert float(np.abs(rings).max()) > 0.05  # 1/cm: visible next to aluminium's 0.10
    assert radial_to_tangential_gradient(rings) > 10
    # Counting noise has no preferred direction (a well averaged open beam adds no rings).
    noise = simulate_tomography(**{**kwargs, "noise": True}, rings=0.0,
                                flat_frames=100_000).volume - plain.volume
    assert radial_to_tangential_gradient(noise) < 1.5
    # The same gain errors, scaled: rings grow in proportion (to first order in -log(gain)).
    stronger = simulate_tomography(**kwargs, rings=0.02).volume - plain.volume
    assert np.corrcoef(stronger.ravel(), rings.ravel())[0, 1] > 0.999
    assert float(np.abs(stronger).max()) == pytest.approx(2 * float(np.abs(rings).max()),
                                                          rel=0.05)


def test_projections_are_beer_lambert_line_integrals_without_noise():
    tomo = simulate_tomography(shape=(3, 48, 48), mode="projections", phantom="cylinders",
                               n_angles=30, counts=1000.0, noise=False, rings=0.0, blur=0.0,
                               seed=1)
    assert tomo.projections.shape == tomo.line_integrals.shape == (30, 3, 48)
    np.testing.assert_allclose(tomo.angles, np.arange(30) * 6.0)
    np.testing.assert_allclose(tomo.projections, 1000.0 * np.exp(-tomo.line_integrals),
                               rtol=1e-5)
    np.testing.assert_allclose(tomo.open_beam, 1000.0)
    # At 0 degrees the rays run down the columns: the line integral is a column sum.
    np.testing.assert_allclose(tomo.line_integrals[0], tomo.mu.sum(axis=1) * PIXEL_CM,
                               rtol=1e-5, atol=1e-6)
    assert tomo.volume is None


def test_line_integral_through_a_sphere_centre():
    labels = ball((21, 48, 48), (10, 24, 24), 10)
    tomo = simulate_tomography(shape=(21, 48, 48), phantom=(labels, ["iron"]),
                               mode="projections", n_angles=12, noise=False, rings=0.0,
                               blur=0.0)
    mu = attenuation_coefficient("iron")
    chord = tomo.line_integrals[:, 10, 24]  # the central ray, at every angle
    np.testing.assert_allclose(chord, mu * 2 * 10 * PIXEL_CM, rtol=0.06)


def test_reconstruction_recovers_the_attenuation_of_a_big_sphere():
    labels = ball((24, 64, 64), (12, 32, 32), 11)
    common = {"shape": (24, 64, 64), "phantom": (labels, ["copper"]), "counts": 1e5,
              "rings": 0.001, "n_angles": 90, "seed": 0}
    scan = simulate_tomography(**common, mode="projections", reconstruct=True)
    fast = simulate_tomography(**common)
    interior = ndimage.binary_erosion(labels, iterations=3)
    mu = attenuation_coefficient("copper")
    assert float(scan.volume[interior].mean()) == pytest.approx(mu, rel=0.03)
    assert float(fast.volume[interior].mean()) == pytest.approx(mu, rel=0.03)
    outside = ~ndimage.binary_dilation(labels, iterations=3) & in_circle(64, 4)
    assert abs(float(scan.volume[outside].mean())) < 0.03 * mu


def test_projection_rings_match_the_volume_mode_rings():
    kwargs = {"shape": (3, 48, 48), "phantom": "cylinders", "n_angles": 60, "noise": False,
              "blur": 0.0, "seed": 8}
    diff_scan = (simulate_tomography(**kwargs, mode="projections", reconstruct=True,
                                     rings=0.01).volume
                 - simulate_tomography(**kwargs, mode="projections", reconstruct=True,
                                       rings=0.0).volume)
    diff_fast = (simulate_tomography(**kwargs, rings=0.01).volume
                 - simulate_tomography(**kwargs, rings=0.0).volume)
    np.testing.assert_allclose(diff_scan, diff_fast, atol=2e-3 * float(np.abs(diff_fast).max()))
    # And both are the FBP of a sinogram whose columns carry -log(gain).
    sino = simulate_tomography(**kwargs, mode="projections", rings=0.01)
    flat = simulate_tomography(**kwargs, mode="projections", rings=0.0)
    column = -np.log(sino.projections[0, 0] / flat.projections[0, 0])
    reference = iradon(np.repeat(column[:, None], 60, axis=1), theta=sino.angles, circle=True)
    np.testing.assert_allclose(diff_scan[0] * PIXEL_CM, reference, atol=1e-6)


def test_noisy_projections_are_poisson_counts():
    tomo = simulate_tomography(shape=(2, 32, 32), mode="projections", n_angles=200,
                               counts=300.0, rings=0.0, blur=0.0, seed=3)
    assert np.all(tomo.projections == np.round(tomo.projections))
    expected = 300.0 * np.exp(-tomo.line_integrals.astype(np.float64))
    z = (tomo.projections - expected) / np.sqrt(expected)
    assert float(z.mean()) == pytest.approx(0.0, abs=0.04)  # 12 800 samples: 4.5 sigma
    assert float(z.var()) == pytest.approx(1.0, abs=0.05)


def test_cylinders_run_through_all_slices():
    tomo = simulate_tomography(shape=(10, 48, 48), phantom="cylinders", seed=1)
    assert tomo.metadata["classes"] == ["aluminium", "iron", "copper", "titanium", "water"]
    assert all(np.array_equal(tomo.truth[0], tomo.truth[k]) for k in range(10))
    assert set(np.unique(tomo.truth[0]).tolist()) == set(range(6))


def test_porous_phantom_fills_the_tube():
    tomo = simulate_tomography(shape=(12, 48, 48), phantom="porous", seed=2)
    assert tomo.metadata["classes"] == ["aluminium", "quartz", "water"]
    truth = tomo.truth
    inside = in_circle(48, 8)
    # Inside the tube: grains (2), water (3) and air-filled pores (0).
    values, counts = np.unique(truth[:, inside], return_counts=True)
    assert set(values.tolist()) == {0, 2, 3}
    assert 0.5 < counts[values == 2][0] / counts.sum() < 0.8
    assert np.all(truth[:, ~in_circle(48)] == 0)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"mode": "sinogram"}, ValueError, "mode must be one of"),
    ({"shape": (8, 32, 48)}, ValueError, "square slices"),
    ({"shape": (8, 4, 4)}, ValueError, "at least 1 slice"),
    ({"shape": (8, 32)}, TypeError, "three voxel counts"),
    ({"reconstruct": True}, ValueError, "reconstruct=True needs mode='projections'"),
    ({"rings": 0.5}, ValueError, "rings"),
    ({"rings": -0.1}, ValueError, "rings"),
    ({"n_angles": 1}, ValueError, "n_angles"),
    ({"n_angles": 10.0}, TypeError, "n_angles"),
    ({"counts": 0}, ValueError, "counts"),
    ({"noise": 1}, TypeError, "noise must be True or False"),
    ({"blur": -1.0}, ValueError, "blur"),
    ({"flat_frames": 0}, ValueError, "flat_frames"),
    ({"phantom": "bricks"}, ValueError, "phantom must be one of"),
    ({"phantom": np.zeros((8, 16, 16), dtype=np.uint8)}, TypeError, "labels, classes"),
    ({"seed": -3}, ValueError, "seed"),
])
def test_bad_arguments_raise_one_clear_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate_tomography(**{"shape": (8, 16, 16), **kwargs})


def test_custom_phantom_is_checked():
    labels = np.zeros((8, 16, 16), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        simulate_tomography(shape=(8, 32, 32), phantom=(labels, ["iron"]))
    labels[0, 0, 0] = 1
    with pytest.raises(ValueError, match="outside the circle"):
        simulate_tomography(shape=(8, 16, 16), phantom=(labels, ["iron"]))
    labels[0, 0, 0] = 0
    labels[4, 8, 8] = 2
    with pytest.raises(ValueError, match=r"0\.\.1"):
        simulate_tomography(shape=(8, 16, 16), phantom=(labels, ["iron"]))
    with pytest.raises(ValueError, match="not in the materials table"):
        simulate_tomography(shape=(8, 16, 16), phantom=(labels, ["iron", "unobtainium"]))
    with pytest.raises(TypeError, match="integer array"):
        simulate_tomography(shape=(8, 16, 16), phantom=(labels.astype(float), ["iron", "lead"]))
