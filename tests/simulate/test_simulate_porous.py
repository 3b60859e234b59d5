import json

import numpy as np
import pytest
from scipy import ndimage

from niseg.simulate import (
    POROUS_CLASSES,
    VolumePhantom,
    attenuation_coefficient,
    porous_phantom,
    porous_volume,
    simulate_radiograph,
)


@pytest.mark.parametrize(("shape", "porosity", "radius", "saturation"), [
    ((32, 40, 40), 0.40, (2.0, 4.0), 0.5),
    ((24, 48, 48), 0.30, 3.0, 0.2),
    ((32, 32, 32), 0.55, (2.0, 3.0), 0.8),
    ((128, 128), 0.35, (3.0, 6.0), 0.6),
])
def test_porosity_and_saturation_are_as_asked(shape, porosity, radius, saturation):
    labels, classes = porous_volume(shape, porosity=porosity, grain_radius=radius,
                                    saturation=saturation, seed=1)
    assert labels.shape == shape and labels.dtype == np.uint8
    assert classes == POROUS_CLASSES == ("quartz", "water")
    assert set(np.unique(labels).tolist()) == {0, 1, 2}
    pores = labels != 1
    # within one grain of the target (the last grain is not cut)
    assert pores.mean() == pytest.approx(porosity, abs=0.015)
    assert pores.mean() <= porosity + 1e-9
    assert (labels == 2).sum() / pores.sum() == pytest.approx(saturation, abs=1e-3)


def test_same_seed_same_volume_other_seed_other_volume():
    a, _ = porous_volume((16, 32, 32), seed=3, grain_radius=2.5)
    b, _ = porous_volume((16, 32, 32), seed=3, grain_radius=2.5)
    c, _ = porous_volume((16, 32, 32), seed=4, grain_radius=2.5)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.3


def test_grains_have_the_asked_size():
    labels, _ = porous_volume((40, 40, 40), porosity=0.7, grain_radius=4.0, saturation=0.0,
                              seed=2)
    # a loose packing: grains barely touch, so most components are single spheres
    components, count = ndimage.label(labels == 1)
    sizes = np.bincount(components.ravel())[1:]
    interior = np.median(sizes)
    assert 0.6 * (4 / 3 * np.pi * 4**3) < interior < 2.5 * (4 / 3 * np.pi * 4**3)
    assert count > 20


def test_water_fills_the_narrow_pores_and_air_the_wide_ones():
    labels, _ = porous_volume((32, 48, 48), porosity=0.4, grain_radius=(3.0, 5.0),
                              saturation=0.4, seed=5)
    pore = labels != 1
    # Pores where a ball of radius 1.5 voxels fits (the outside counts as pore space, as in
    # the generator); the rest are crevices at grain contacts and narrow throats.
    grid = np.indices((5, 5, 5)) - 2
    ball = np.sum(grid**2, axis=0) <= 1.5**2
    wide = ndimage.binary_opening(np.pad(pore, 3, constant_values=True), ball)[3:-3, 3:-3, 3:-3]
    narrow = pore & ~wide
    assert 0.1 < narrow.sum() / pore.sum() < 0.4  # less than the water: all of it is wet
    assert np.mean(labels[narrow] == 2) > 0.95
    assert np.mean(labels[wide & pore] == 2) < 0.2
    to_grain = ndimage.distance_transform_edt(pore)
    assert to_grain[labels == 2].mean() < 0.8 * to_grain[labels == 0].mean()


def test_saturation_limits():
    dry, _ = porous_volume((16, 24, 24), saturation=0.0, grain_radius=2.0, seed=0)
    wet, _ = porous_volume((16, 24, 24), saturation=1.0, grain_radius=2.0, seed=0)
    assert not np.any(dry == 2) and not np.any(wet == 0)
    np.testing.assert_array_equal(dry == 1, wet == 1)


def test_porous_phantom_radiograph():
    sand = porous_phantom(size=(40, 48), depth=10, voxel_size_um=50.0, grain_radius=2.5,
                          saturation=0.4, seed=7)
    assert isinstance(sand, VolumePhantom)
    assert sand.labels.shape == (10, 40, 48) and sand.classes == ("quartz", "water")
    assert sand.field_of_view_cm == pytest.approx((0.2, 0.24))
    rebuilt = porous_phantom(**sand.description["arguments"])
    np.testing.assert_array_equal(rebuilt.labels, sand.labels)
    assert sand.description["saturation"] == pytest.approx(0.4, abs=1e-3)

    rad = simulate_radiograph(size=(40, 48), pixel_size_um=50.0, phantom=sand, counts=1e5,
                              beam_falloff=0.0, seed=7)
    maps = sand.thickness_maps((40, 48), 50e-4)
    expected = np.exp(-sum(attenuation_coefficient(m) * d for m, d in maps.items()))
    np.testing.assert_allclose(rad.transmission, expected, rtol=1e-5)
    water_cm = (sand.labels == 2).sum(axis=0) * 50e-4
    np.testing.assert_allclose(maps["water"], water_cm, rtol=1e-5)
    assert rad.metadata["classes"] == ["quartz", "water"]
    assert set(np.unique(rad.truth).tolist()) <= {0, 1, 2}
    assert json.loads(json.dumps(rad.metadata["phantom"]))["description"]["generator"] == \
        "niseg.simulate.porous_phantom"
    # neutrons see the water (3.5 /cm) far more than the quartz (0.29 /cm)
    attenuation = -np.log(rad.transmission.astype(np.float64))
    assert np.corrcoef(attenuation.ravel(), maps["water"].ravel())[0, 1] > 0.95


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"shape": (4, 4, 4, 4)}, ValueError, "shape must be a tuple of 2 or 3 integers"),
    ({"shape": (2, 16, 16)}, ValueError, "each at least 4"),
    ({"shape": (8.0, 16, 16)}, TypeError, "shape must be a tuple of 2 or 3 integers"),
    ({"porosity": 0.99}, ValueError, "porosity must be a fraction from 0.05 to 0.95"),
    ({"saturation": -0.1}, ValueError, "saturation must be a fraction from 0 to 1"),
    ({"saturation": "wet"}, TypeError, "saturation must be a fraction"),
    ({"grain_radius": 0.5}, ValueError, "grain_radius must be a number of voxels"),
    ({"grain_radius": (5.0, 2.0)}, ValueError, r"1 <= min <= max"),
    ({"grain_radius": "big"}, TypeError, "grain_radius must be a number of voxels"),
    ({"seed": -2}, ValueError, "seed must be a non-negative integer"),
])
def test_porous_volume_rejects_bad_arguments(kwargs, error, message):
    args = {"shape": (8, 16, 16), **kwargs}
    shape = args.pop("shape")
    with pytest.raises(error, match=message):
        porous_volume(shape, **args)


def test_porous_phantom_rejects_bad_arguments():
    with pytest.raises(ValueError, match="voxel_size_um must be a positive finite number"):
        porous_phantom(size=16, depth=4, voxel_size_um=0.0)
    with pytest.raises(TypeError, match="depth must be an integer number of voxels"):
        porous_phantom(size=16, depth=4.5)
    with pytest.raises(ValueError, match="each at least 4"):
        porous_phantom(size=16, depth=2)
