import json
import math

import numpy as np
import pytest

from niseg.simulate import (
    Cylinder,
    Phantom,
    Plate,
    Sphere,
    VolumePhantom,
    attenuation_coefficient,
    default_phantom,
)


def test_cylinder_is_a_disc_of_constant_thickness():
    rod = Cylinder(material="iron", centre=(1.0, 2.0), radius=0.5, thickness=3.0)
    d = rod.projected_thickness([1.0, 1.0, 1.49, 1.0], [2.0, 2.49, 2.0, 2.5])
    np.testing.assert_array_equal(d, [3.0, 3.0, 3.0, 0.0])  # outline itself is outside


def test_tube_has_an_empty_bore():
    tube = Cylinder(material="zirconium", centre=(0, 0), radius=1.0, thickness=2.0,
                    inner_radius=0.5)
    np.testing.assert_array_equal(tube.projected_thickness(0.0, [0.0, 0.4, 0.6, 1.1]),
                                  [0.0, 0.0, 2.0, 0.0])


def test_sphere_thickness_is_chord_length():
    ball = Sphere(material="water", centre=(0.0, 0.0), radius=1.0)
    r = np.array([0.0, 0.6, 0.8, 1.0, 1.5])
    np.testing.assert_allclose(ball.projected_thickness(0.0, r), [2.0, 1.6, 1.2, 0.0, 0.0])


def test_spherical_shell_subtracts_the_cavity():
    shell = Sphere(material="aluminium", centre=(0, 0), radius=1.0, inner_radius=0.6)
    expected = 2 * math.sqrt(1 - 0.25) - 2 * math.sqrt(0.36 - 0.25)
    assert shell.projected_thickness(0.5, 0.0) == pytest.approx(expected)
    assert shell.projected_thickness(0.0, 0.8) == pytest.approx(1.2)


def test_rotated_plate():
    plate = Plate(material="copper", centre=(0.0, 0.0), half_size=(0.1, 1.0), thickness=0.5,
                  angle_deg=45.0)
    # Counter-clockwise as displayed (y down): the long axis points up-right, i.e. -y, +x.
    on_axis = plate.projected_thickness(-0.6, 0.6)
    off_axis = plate.projected_thickness(0.6, 0.6)
    assert on_axis == 0.5 and off_axis == 0.0
    ymin, ymax, _, _ = plate.bounds
    assert ymax - ymin == pytest.approx(2 * 1.1 / math.sqrt(2))


def test_thickness_maps_sum_shapes_of_one_material_at_pixel_centres():
    p = Phantom(shapes=[
        Plate(material="aluminium", centre=(0.5, 0.5), half_size=(0.5, 0.5), thickness=1.0),
        Plate(material="aluminium", centre=(0.25, 0.5), half_size=(0.25, 0.5), thickness=2.0),
        Sphere(material="water", centre=(0.5, 0.5), radius=0.3)], field_of_view_cm=1.0)
    maps = p.thickness_maps((10, 10), 0.1)
    assert list(maps) == ["aluminium", "water"]
    assert maps["aluminium"].dtype == np.float32
    assert maps["aluminium"][1, 5] == 3.0 and maps["aluminium"][7, 5] == 1.0
    # pixel (5, 5) has its centre at (0.55, 0.55) cm
    r2 = 2 * 0.05**2
    assert maps["water"][5, 5] == pytest.approx(2 * math.sqrt(0.09 - r2), rel=1e-6)
    assert maps["water"][0, 0] == 0.0


def test_detector_grid_is_centred_on_the_field_of_view():
    disc = Cylinder(material="iron", centre=(1.0, 1.0), radius=0.42, thickness=1.0)
    p = Phantom(shapes=[disc], field_of_view_cm=2.0)
    # 4 pixels of 0.5 cm cover the FOV; 8 pixels of 0.1 cm cover only its middle 0.8 cm
    for shape, pixel in (((4, 4), 0.5), ((8, 8), 0.1), ((9, 9), 0.1)):
        labels, _ = p.truth(shape, pixel)
        ys, xs = np.nonzero(labels)
        assert ys.mean() == pytest.approx((shape[0] - 1) / 2)
        assert xs.mean() == pytest.approx((shape[1] - 1) / 2)


def test_truth_picks_the_shape_that_attenuates_most():
    # 1 cm aluminium (mu d ~ 0.10) under 1 cm iron (~1.20) under 0.05 cm cadmium (~5.9);
    # a 3 cm lead plate (~1.12) overlaps iron but attenuates less.
    p = Phantom(shapes=[
        Plate(material="aluminium", centre=(1.0, 1.0), half_size=(0.9, 0.9), thickness=1.0),
        Cylinder(material="iron", centre=(1.0, 1.0), radius=0.5, thickness=1.0),
        Cylinder(material="cadmium", centre=(1.0, 1.0), radius=0.1, thickness=0.05),
        Plate(material="lead", centre=(1.0, 1.45), half_size=(0.1, 0.4), thickness=3.0)],
        field_of_view_cm=2.0)
    labels, classes = p.truth((20, 20), 0.1)
    assert classes == ("aluminium", "iron", "cadmium", "lead")
    assert labels.dtype == np.uint8
    # pixel (i, j) centre = ((i + 0.5) * 0.1, (j + 0.5) * 0.1)
    assert labels[9, 9] == 3     # (0.95, 0.95): inside the cadmium disc
    assert labels[9, 12] == 2    # (0.95, 1.25): iron 1.20 beats lead 1.12
    assert labels[9, 16] == 4    # (0.95, 1.65): lead, outside the iron cylinder
    assert labels[2, 2] == 1     # aluminium only
    assert labels[0, 0] == 0     # (0.05, 0.05): outside every shape
    assert labels[19, 19] == 0


def test_truth_ties_go_to_the_first_shape():
    a = Plate(material="iron", centre=(0.5, 0.5), half_size=(0.3, 0.3), thickness=1.0)
    b = Plate(material="copper", centre=(0.5, 0.5), half_size=(0.3, 0.3),
              thickness=attenuation_coefficient("iron") / attenuation_coefficient("copper"))
    labels, classes = Phantom(shapes=[a, b], field_of_view_cm=1.0).truth((10, 10), 0.1)
    assert classes == ("iron", "copper")
    assert set(np.unique(labels)) == {0, 1}


def test_empty_phantom_is_open_beam():
    labels, classes = Phantom(shapes=[], field_of_view_cm=1.0).truth((8, 8), 0.1)
    assert classes == () and not labels.any()


def test_default_phantom_is_seeded_and_separates_objects():
    a, b, c = default_phantom(seed=0), default_phantom(seed=0), default_phantom(seed=1)
    assert a == b and a != c
    assert a.classes == ("aluminium", "iron", "copper", "water", "cadmium")
    for seed in range(10):
        p = default_phantom(seed=seed)
        labels, classes = p.truth((256, 256), 0.01)
        assert set(np.unique(labels)) == set(range(len(classes) + 1))
        # objects above the holder do not overlap: no pixel is inside two of them
        objects = [s for s in p.shapes[1:] if s.material != "water"]
        covered = sum((s.projected_thickness(
            (np.arange(256)[:, None] + 0.5) * 0.01, (np.arange(256) + 0.5) * 0.01) > 0)
            .astype(int) for s in objects)
        assert covered.max() == 1


def test_default_phantom_scales_with_the_field_of_view():
    p = default_phantom(seed=2, size_cm=(5.0, 10.0))
    assert p.field_of_view_cm == (5.0, 10.0)
    for shape in p.shapes:
        ymin, ymax, xmin, xmax = shape.bounds
        assert 0 <= ymin and ymax <= 5.0 and 0 <= xmin and xmax <= 10.0


def test_to_dict_is_json_and_round_trips():
    p = default_phantom(seed=4)
    data = json.loads(json.dumps(p.to_dict()))
    assert Phantom.from_dict(data) == p


def test_unknown_material_in_a_shape():
    with pytest.raises(ValueError, match="material 'kryptonite' is not in the materials table"):
        Sphere(material="kryptonite", centre=(0, 0), radius=1.0)


@pytest.mark.parametrize(("factory", "message"), [
    (lambda: Cylinder(material="iron", centre=(0, 0), radius=-1.0, thickness=1.0),
     "Cylinder radius must be a positive finite number"),
    (lambda: Cylinder(material="iron", centre=(0, 0), radius=1.0, thickness=0.0),
     "Cylinder thickness must be a positive finite number"),
    (lambda: Sphere(material="iron", centre=(0, 0), radius=1.0, inner_radius=1.0),
     "Sphere inner_radius must be at least 0 and smaller than the radius"),
    (lambda: Sphere(material="iron", centre=(0, 0, 0), radius=1.0),
     r"Sphere centre must be a pair of finite numbers \(y, x\)"),
    (lambda: Plate(material="iron", centre=(0, 0), half_size=(1.0, -1.0), thickness=1.0),
     "Plate half_size must be a pair of positive finite numbers"),
    (lambda: Phantom(shapes=[], field_of_view_cm=(1.0, 0.0)),
     "Phantom field_of_view_cm must be a pair of positive finite numbers"),
    (lambda: Phantom.from_dict({"shapes": [{"type": "Cone"}], "field_of_view_cm": [1, 1]}),
     "phantom shape type must be one of Cylinder, Sphere, Plate, got 'Cone'"),
])
def test_bad_shape_arguments_raise_value_error(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="Phantom shapes must contain only"):
        Phantom(shapes=["iron"], field_of_view_cm=1.0)
    with pytest.raises(TypeError, match="Cylinder radius must be a number"):
        Cylinder(material="iron", centre=(0, 0), radius="1", thickness=1.0)
    with pytest.raises(TypeError, match="seed must be a non-negative integer"):
        default_phantom(seed=1.5)
    with pytest.raises(ValueError, match="shape must be a pair of positive pixel counts"):
        default_phantom().truth((0, 10), 0.1)


# ------------------------------------------------------------------ radiation-aware truth


def test_truth_depends_on_the_radiation():
    # 1 cm of water over 1 mm of lead: water wins for neutrons (3.47 vs 0.037 /cm x cm),
    # lead for 100 keV X-rays (0.17 vs 6.3).
    p = Phantom(shapes=[
        Plate(material="water", centre=(0.5, 0.5), half_size=(0.4, 0.4), thickness=1.0),
        Plate(material="lead", centre=(0.5, 0.5), half_size=(0.2, 0.2), thickness=0.1)],
        field_of_view_cm=1.0)
    neutron, classes = p.truth((10, 10), 0.1)
    xray, _ = p.truth((10, 10), 0.1, radiation="xray", energy_kev=100.0)
    assert classes == ("water", "lead")
    assert neutron[5, 5] == 1 and xray[5, 5] == 2
    assert neutron[1, 1] == xray[1, 1] == 1 and neutron[0, 0] == xray[0, 0] == 0
    with pytest.raises(ValueError, match="energy_kev must be given"):
        p.truth((10, 10), 0.1, radiation="xray")


# ------------------------------------------------------------------------ VolumePhantom


def volume_block() -> VolumePhantom:
    labels = np.zeros((6, 4, 5), dtype=np.uint8)
    labels[:2, 1, 1] = 1          # 2 voxels of iron
    labels[:, 2, 3] = 2           # 6 voxels of water
    labels[0, 3, 4] = 2           # water 1 voxel ...
    labels[1:5, 3, 4] = 1         # ... under 4 voxels of iron
    return VolumePhantom(labels=labels, classes=("iron", "water"), voxel_size_cm=(0.5, 0.1, 0.1))


def test_volume_thickness_is_voxel_count_times_depth():
    block = volume_block()
    assert block.field_of_view_cm == pytest.approx((0.4, 0.5))
    maps = block.thickness_maps((4, 5), 0.1)
    assert list(maps) == ["iron", "water"]
    assert maps["iron"][1, 1] == pytest.approx(1.0)
    assert maps["water"][2, 3] == pytest.approx(3.0)
    assert maps["iron"][3, 4] == pytest.approx(2.0) and maps["water"][3, 4] == pytest.approx(0.5)
    assert maps["iron"].sum() == pytest.approx(3.0)


def test_volume_truth_is_the_material_with_largest_attenuation_in_the_column():
    block = volume_block()
    labels, classes = block.truth((4, 5), 0.1)
    assert classes == ("iron", "water")
    # column (3, 4): 2 cm iron (2.4) against 0.5 cm water (1.7) -> iron
    assert labels[3, 4] == 1 and labels[2, 3] == 2 and labels[1, 1] == 1 and labels[0, 0] == 0
    xray, _ = block.truth((4, 5), 0.1, radiation="xray", energy_kev=60.0)
    assert xray[3, 4] == 1


def test_volume_is_sampled_at_pixel_centres_of_a_centred_grid():
    labels = np.zeros((1, 8, 8), dtype=np.uint8)
    labels[0, :4, :4] = 1
    vol = VolumePhantom(labels=labels, classes=("copper",), voxel_size_cm=0.1)
    # 4 pixels of 0.2 cm cover the volume: pixel (0, 0) centre (0.1, 0.1) cm is in voxel (1, 1)
    coarse, _ = vol.truth((4, 4), 0.2)
    np.testing.assert_array_equal(coarse, [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0],
                                           [0, 0, 0, 0]])
    # a detector larger than the volume sees nothing outside it
    wide, _ = vol.truth((12, 12), 0.1)
    assert wide[:2].sum() == 0 and wide[:, :2].sum() == 0
    np.testing.assert_array_equal(wide[2:10, 2:10], labels[0])


def test_volume_phantom_keeps_a_read_only_copy_and_describes_itself():
    labels = np.ones((2, 3, 3), dtype=np.int32)
    vol = VolumePhantom(labels=labels, classes=["Fe"], voxel_size_cm=0.2,
                        description={"made_by": "hand"})
    labels[:] = 0
    assert vol.labels.sum() == 18 and not vol.labels.flags.writeable
    assert vol.classes == ("iron",)
    data = json.loads(json.dumps(vol.to_dict()))
    assert data.pop("field_of_view_cm") == pytest.approx([0.6, 0.6])
    assert data == {"type": "VolumePhantom", "shape": [2, 3, 3], "classes": ["iron"],
                    "voxel_size_cm": [0.2, 0.2, 0.2], "description": {"made_by": "hand"}}


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"labels": np.zeros((3, 3), np.uint8)}, ValueError, r"must be a \(P, M, N\) volume"),
    ({"labels": np.zeros((2, 3, 3))}, TypeError, "must be an integer ndarray"),
    ({"labels": np.full((2, 3, 3), 2, np.uint8)}, ValueError, r"must lie in 0\.\.1"),
    ({"classes": "iron"}, TypeError, "classes must be a sequence of material names"),
    ({"classes": ("kryptonite",)}, ValueError, "not in the materials table"),
    ({"voxel_size_cm": 0.0}, ValueError, "voxel_size_cm must be a positive"),
    ({"voxel_size_cm": (0.1, 0.1)}, ValueError, r"three \(dz, dy, dx\)"),
])
def test_volume_phantom_rejects_bad_arguments(kwargs, error, message):
    args = {"labels": np.ones((2, 3, 3), np.uint8), "classes": ("iron",), "voxel_size_cm": 0.1}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        VolumePhantom(**args)
