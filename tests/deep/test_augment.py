"""Tests of niseg.deep augmentation: alignment, exactness, noise statistics, config."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from niseg.deep._augment import AugmentConfig, augment
from niseg.deep._augment_noise import add_spots, ring_offsets, robust_range

torch.set_num_threads(1)

GEOMETRY = ("flip_p", "rot90_p", "rotate_p", "zoom_p", "elastic_p")


def only(**fields: object) -> AugmentConfig:
    return AugmentConfig.preset("none", **fields)


def gen(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def smooth_image(batch: int, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1]: blobs several pixels across, so thresholds are clean."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((batch, 1, *[max(2, n // 6) for n in shape]), generator=g)
    mode = "bicubic" if len(shape) == 2 else "trilinear"
    image = torch.nn.functional.interpolate(coarse, size=shape, mode=mode, align_corners=True)
    low = image.flatten(1).min(1).values.view(-1, *[1] * (len(shape) + 1))
    high = image.flatten(1).max(1).values.view(-1, *[1] * (len(shape) + 1))
    return (image - low) / (high - low)


def boundary(mask: torch.Tensor) -> torch.Tensor:
    """Pixels within one pixel of a change of ``mask`` (B, *spatial)."""
    m = mask.float().unsqueeze(1)
    pool = torch.nn.functional.max_pool2d if mask.ndim == 3 else torch.nn.functional.max_pool3d
    grown, shrunk = pool(m, 3, 1, 1), -pool(-m, 3, 1, 1)
    return (grown != shrunk).squeeze(1)


def dihedral(image: torch.Tensor) -> list[torch.Tensor]:
    out = []
    for k in range(4):
        r = torch.rot90(image, k, (-2, -1))
        out += [r, r.flip(-1)]
    return out


# ----------------------------------------------------------------------------- geometry


def test_flips_and_rot90_are_exact_permutations_of_image_and_target():
    image = smooth_image(6, (24, 24))
    target = (image[:, 0] > 0.5).long()
    target[:, :3, :5] = -1
    out, labels = augment(image, target, only(flip_p=0.5, rot90_p=1.0), generator=gen(1))
    changed = 0
    for b in range(6):
        matches = [i for i, d in enumerate(dihedral(image[b, 0])) if torch.equal(d, out[b, 0])]
        assert matches, f"sample {b} is not a flip/rotation of its input"
        i = matches[0]
        assert torch.equal(labels[b], dihedral(target[b])[i])
        changed += i != 0
    assert changed >= 3
    assert torch.equal(labels[labels >= 0], (out[:, 0] > 0.5).long()[labels >= 0])
    assert int((labels == -1).sum()) == int((target == -1).sum())


def test_rot90_of_non_square_plane_keeps_the_shape():
    image = torch.arange(2 * 16 * 24, dtype=torch.float32).view(2, 1, 16, 24)
    out, _ = augment(image, None, only(rot90_p=1.0), generator=gen(0))
    assert out.shape == image.shape
    for b in range(2):
        assert torch.equal(out[b], torch.rot90(image[b], 2, (-2, -1)))


@pytest.mark.parametrize("field", ["rotate_p", "zoom_p", "elastic_p"])
def test_resampling_keeps_labels_aligned_up_to_boundary_pixels(field):
    image = smooth_image(4, (48, 48), seed=2)
    target = (image[:, 0] > 0.5).long()
    config = only(**{field: 1.0}, zoom_range=(0.7, 1.4), elastic_magnitude_range=(2.0, 3.0))
    out, labels = augment(image, target, config, generator=gen(3))
    assert not torch.equal(out, image)
    valid = labels >= 0
    predicted = (out[:, 0] > 0.5).long()
    wrong = valid & (labels != predicted)
    assert not (wrong & ~boundary(predicted)).any()
    assert wrong.float().sum() / valid.float().sum() < 0.05
    assert valid.float().mean() > 0.5


def test_pixels_from_outside_the_image_become_ignore():
    image = smooth_image(2, (32, 32))
    target = torch.ones(2, 32, 32, dtype=torch.long)
    config = only(rotate_p=1.0, rotate_range=(45.0, 45.0))
    out, labels = augment(image, target, config, generator=gen(0))
    assert set(labels.unique().tolist()) == {-1, 1}
    # A 45 degree turn leaves the corners without a source and keeps the centre.
    assert (labels[:, 0, 0] == -1).all() and (labels[:, -1, -1] == -1).all()
    assert (labels[:, 12:20, 12:20] == 1).all()
    assert torch.isfinite(out).all()
    zeros, _ = augment(image, target, config.replace(padding="zeros"), generator=gen(0))
    assert (zeros[:, 0, 0, 0] == 0).all()


def test_identity_resampling_changes_nothing_and_ignore_stays_ignore():
    image = smooth_image(2, (20, 20))
    target = torch.randint(-1, 3, (2, 20, 20), generator=gen(5))
    config = only(rotate_p=1.0, rotate_range=(0.0, 0.0), zoom_p=1.0, zoom_range=(1.0, 1.0))
    out, labels = augment(image, target, config, generator=gen(0))
    assert torch.equal(labels, target)
    torch.testing.assert_close(out, image, atol=1e-5, rtol=0)


def test_3d_isotropic_rot90_and_resampling():
    image = smooth_image(3, (12, 12, 12), seed=4)
    target = (image[:, 0] > 0.5).long()
    out, labels = augment(image, target, only(flip_p=0.5, rot90_p=1.0, isotropic=True),
                          generator=gen(2))
    assert torch.equal(labels, (out[:, 0] > 0.5).long())
    assert torch.equal(out.flatten(1).sort(1).values, image.flatten(1).sort(1).values)
    config = only(rotate_p=1.0, rotate_range=(-30.0, 30.0), isotropic=True, zoom_p=1.0,
                  elastic_p=1.0, elastic_spacing=6.0)
    out, labels = augment(image, target, config, generator=gen(3))
    assert out.shape == image.shape and labels.shape == target.shape
    valid = labels >= 0
    predicted = (out[:, 0] > 0.5).long()
    assert not (valid & (labels != predicted) & ~boundary(predicted)).any()


def test_anisotropic_3d_rotates_only_in_the_yx_plane():
    image = smooth_image(2, (6, 16, 16), seed=1)
    out, _ = augment(image, None, only(rot90_p=1.0), generator=gen(0))
    for b in range(2):
        assert any(torch.equal(out[b, 0], torch.rot90(image[b, 0], k, (1, 2)))
                   for k in range(4))


# ---------------------------------------------------------------------------- intensity


def test_brightness_contrast_gamma():
    image = smooth_image(4, (32, 32)) * 100 + 50
    out, _ = augment(image, None, only(gamma_p=1.0), generator=gen(0))
    torch.testing.assert_close(out.amin((1, 2, 3)), image.amin((1, 2, 3)))
    torch.testing.assert_close(out.amax((1, 2, 3)), image.amax((1, 2, 3)))
    assert not torch.allclose(out, image)
    out, _ = augment(image, None, only(contrast_p=1.0), generator=gen(0))
    torch.testing.assert_close(out.mean((1, 2, 3)), image.mean((1, 2, 3)))
    ratio = (out - out.mean((2, 3), keepdim=True)).std((1, 2, 3)) / image.std((1, 2, 3))
    assert ((ratio >= 0.75 - 1e-4) & (ratio <= 1.33 + 1e-4)).all()
    config = only(brightness_p=1.0, brightness_range=(0.1, 0.1))
    out, _ = augment(image, None, config, generator=gen(0))
    _, scale = robust_range(image.flatten(0, 1))
    torch.testing.assert_close(out - image, (0.1 * scale).view(-1, 1, 1, 1).expand_as(image))


def test_blur_smooths_and_keeps_the_mean():
    image = torch.rand(3, 2, 32, 32, generator=gen(0))
    out, _ = augment(image, None, only(blur_p=1.0), generator=gen(1))
    assert (out.std((2, 3)) < 0.7 * image.std((2, 3))).all()
    torch.testing.assert_close(out.mean((2, 3)), image.mean((2, 3)), atol=2e-3, rtol=0)
    flat = torch.full((1, 1, 8, 8, 8), 3.0)
    same, _ = augment(flat, None, only(blur_p=1.0), generator=gen(1))
    torch.testing.assert_close(same, flat)


def test_poisson_noise_has_variance_t_over_n():
    counts, level = 1000.0, 0.3
    image = torch.full((8, 1, 128, 128), level)
    image[..., :10] = 0.0
    image[..., 10:20] = 1.0
    config = only(poisson_p=1.0, poisson_counts_range=(counts, counts))
    out, _ = augment(image, None, config, generator=gen(0))
    middle = out[..., 20:]
    assert abs(float(middle.mean()) - level) < 1e-3
    variance = float(middle.var())
    assert abs(variance / (level / counts) - 1.0) < 0.05
    # Detected counts are whole numbers; no counts (T = 0) means no noise.
    detected = out * counts
    torch.testing.assert_close(detected, detected.round(), atol=2e-3, rtol=0)
    assert (out[..., :10] == 0).all()
    bright = float(out[..., 10:20].var())
    assert abs(bright / (1.0 / counts) - 1.0) < 0.1


def test_poisson_noise_maps_back_to_the_original_range():
    # Raw counts around 20000 with an offset: the noise is relative to the robust range.
    image = torch.full((4, 1, 64, 64), 20000.0)
    image[..., :8] = 10000.0
    config = only(poisson_p=1.0, poisson_counts_range=(100.0, 100.0))
    out, _ = augment(image, None, config, generator=gen(0))
    std = float(out[..., 8:].std())
    assert abs(std / (10000.0 * math.sqrt(1.0 / 100.0)) - 1.0) < 0.05
    assert abs(float(out[..., 8:].mean()) - 20000.0) < 30.0


def test_poisson_in_transmission_units_uses_real_counts_whatever_the_patch_range():
    """A patch spanning transmission 0.4-0.5 only, z-scored: in relative units the noise
    would follow the patch's own range; in transmission units it is T / N exactly."""
    counts, mean, std = 500.0, 0.45, 0.05
    transmission = torch.full((8, 1, 128, 128), 0.5)
    transmission[..., :16] = 0.4
    normalized = (transmission - mean) / std
    config = only(poisson_p=1.0, poisson_counts_range=(counts, counts),
                  poisson_units="transmission")
    out, _ = augment(normalized, None, config, generator=gen(0), intensity=[(mean, std)])
    back = out * std + mean
    for sl, level in ((slice(16, None), 0.5), (slice(None, 16), 0.4)):
        part = back[..., sl]
        assert abs(float(part.mean()) - level) < 2e-3
        assert abs(float(part.var()) / (level / counts) - 1.0) < 0.06
    relative = only(poisson_p=1.0, poisson_counts_range=(counts, counts))
    rel, _ = augment(normalized, None, relative, generator=gen(0))
    # relative to the patch's 0.4-0.5 span the same 500 counts are ~50x quieter
    assert float((rel * std + mean)[..., 16:].var()) < 0.1 * float(back[..., 16:].var())


def test_poisson_with_the_data_counts_reaches_the_drawn_level_exactly():
    level, n0, target = 0.6, 3000.0, 300.0
    image = torch.full((8, 1, 128, 128), level)
    config = only(poisson_p=1.0, poisson_counts_range=(target, target),
                  poisson_units="transmission", poisson_data_counts=n0)
    out, _ = augment(image, None, config, generator=gen(0), intensity=[(0.0, 1.0)])
    added = float(out.var())
    assert abs(added / (level * (1 / target - 1 / n0)) - 1.0) < 0.05
    above = config.replace(poisson_counts_range=(5000.0, 9000.0))
    same, _ = augment(image, None, above, generator=gen(0), intensity=[(0.0, 1.0)])
    assert torch.equal(same, image)  # drawn levels above the data's: nothing to add


def test_poisson_transmission_needs_the_intensity_map_and_valid_settings():
    config = only(poisson_p=1.0, poisson_units="transmission")
    image = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match="needs intensity"):
        augment(image, None, config, generator=gen(0))
    with pytest.raises(ValueError, match="one \\(offset, scale > 0\\) pair per channel"):
        augment(image, None, config, generator=gen(0), intensity=[(0.0, 1.0), (0.0, 1.0)])
    with pytest.raises(ValueError, match="poisson_units must be one of relative"):
        only(poisson_units="counts")
    with pytest.raises(ValueError, match="applies only with poisson_units 'transmission'"):
        only(poisson_data_counts=3000.0)
    with pytest.raises(ValueError, match="poisson_data_counts must be None or a number"):
        only(poisson_units="transmission", poisson_data_counts=0.5)
    stored = config.replace(poisson_data_counts=3000.0).to_dict()
    assert AugmentConfig.from_dict(json.loads(json.dumps(stored))).poisson_data_counts == 3000.0


def test_spots_change_a_small_fraction_of_pixels_by_several_sigma():
    g = gen(0)
    image = smooth_image(4, (64, 64)) + 0.01 * torch.randn(4, 1, 64, 64, generator=g)
    out, _ = augment(image, None, only(spots_p=1.0), generator=gen(1))
    changed = out != image
    fraction = changed.float().mean((1, 2, 3))
    assert ((fraction > 0) & (fraction < 0.03)).all()
    planes = image.flatten(0, 1)
    spotty, mask = add_spots(planes, only(spots_p=1.0, spots_number_range=(5, 5)), gen(2))
    assert torch.equal(mask, spotty != planes)
    low, scale = robust_range(planes)
    step = (spotty - planes).abs()[mask]
    assert float(step.min()) > 5 * 0.01  # at least 6 sigma of the 0.01 noise, minus texture
    assert (spotty <= (low + 4 * scale).view(-1, 1, 1) + 1e-5).all()
    assert (spotty[mask & (spotty < planes)] >= low.view(-1, 1, 1).expand_as(planes)[
        mask & (spotty < planes)] - 1e-6).all()


def test_spots_in_3d_lie_in_single_slices():
    image = torch.zeros(2, 1, 8, 32, 32)
    image[..., 16:, :] = 1.0
    config = only(spots_p=1.0, spots_number_range=(1, 1), spots_dark_fraction=0.0)
    out, _ = augment(image, None, config, generator=gen(4))
    for b in range(2):
        slices = (out[b, 0] != image[b, 0]).flatten(1).any(1)
        assert int(slices.sum()) == 1


def test_rings_depend_only_on_the_distance_to_a_centre():
    profile = torch.randn(1, 40, generator=gen(0))
    centre = torch.tensor([[10.0, 12.0]])
    rings = ring_offsets(profile, centre, (24, 24))[0]
    # Points at the same distance from (10, 12) get the same offset.
    for (y0, x0), (y1, x1) in [((10, 17), (15, 12)), ((7, 8), (13, 16)), ((6, 9), (14, 15))]:
        assert float(rings[y0, x0]) == pytest.approx(float(rings[y1, x1]), abs=1e-6)
    assert float(rings[10, 12]) == pytest.approx(float(profile[0, 0]))
    image = smooth_image(2, (6, 24, 24))
    out, _ = augment(image, None, only(rings_p=1.0), generator=gen(1))
    diff = out - image
    assert diff.abs().max() > 0
    assert diff.abs().max() < 0.05 * 5
    torch.testing.assert_close(diff[:, :, 1:], diff[:, :, :1].expand_as(diff[:, :, 1:]),
                               atol=1e-5, rtol=0)


def test_stripes_are_constant_along_rows_or_columns():
    image = smooth_image(6, (40, 40))
    out, _ = augment(image, None, only(stripes_p=1.0), generator=gen(2))
    diff = (out - image)[:, 0]
    for b in range(6):
        along_y = torch.allclose(diff[b], diff[b, :1].expand(40, 40), atol=1e-5)
        along_x = torch.allclose(diff[b], diff[b, :, :1].expand(40, 40), atol=1e-5)
        assert along_y or along_x
        assert 0 < float(diff[b].abs().max()) < 0.3


# ------------------------------------------------------------------------ whole pipeline


@pytest.mark.parametrize("shape", [(32, 32), (8, 16, 16)])
def test_same_seed_same_output_other_seed_differs(shape):
    config = AugmentConfig.preset("physics")
    image = smooth_image(4, shape)
    target = (image[:, 0] > 0.5).long()
    a = augment(image, target, config, generator=gen(7))
    b = augment(image, target, config, generator=gen(7))
    c = augment(image, target, config, generator=gen(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_inputs_untouched_and_dtype_kept():
    image = smooth_image(2, (16, 16)).double()
    target = (image[:, 0] > 0.5).long()
    before, labels_before = image.clone(), target.clone()
    every = {f: 1.0 for f in AugmentConfig().to_dict() if f.endswith("_p")}
    out, labels = augment(image, target, only(**every), generator=gen(0))
    assert torch.equal(image, before) and torch.equal(target, labels_before)
    assert out.dtype == torch.float64 and labels.dtype == torch.int64
    assert torch.isfinite(out).all()


def test_none_preset_is_the_identity():
    image = smooth_image(2, (16, 16))
    target = (image[:, 0] > 0.5).long()
    out, labels = augment(image, target, AugmentConfig.preset("none"), generator=gen(0))
    assert torch.equal(out, image) and torch.equal(labels, target)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_the_cpu_contract():
    config = AugmentConfig.preset("physics", spots_p=1.0, poisson_p=1.0, rotate_p=1.0)
    image = smooth_image(4, (32, 32)).cuda()
    target = (image[:, 0] > 0.5).long()
    a = augment(image, target, config, generator=gen(3, "cuda"))
    b = augment(image, target, config, generator=gen(3, "cuda"))
    assert a[0].is_cuda and a[1].is_cuda
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    out, labels = augment(image, target, only(flip_p=0.5, rot90_p=1.0), generator=gen(3, "cuda"))
    assert torch.equal(labels, (out[:, 0] > 0.5).long())
    with pytest.raises(ValueError, match="generator is on cpu"):
        augment(image, target, config, generator=gen(0))


# -------------------------------------------------------------------------------- config


def test_config_round_trips_through_json():
    config = AugmentConfig.preset("physics", isotropic=True, spots_size_range=(2, 5))
    data = json.loads(json.dumps(config.to_dict()))
    assert AugmentConfig.from_dict(data) == config
    assert AugmentConfig.from_dict(data).spots_size_range == (2, 5)


def test_presets():
    none = AugmentConfig.preset("none")
    assert all(v == 0.0 for k, v in none.to_dict().items() if k.endswith("_p"))
    light = AugmentConfig.preset("light")
    assert light.flip_p > 0 and light.rotate_p == 0 and light.poisson_p == 0
    default = AugmentConfig.preset("default")
    assert default == AugmentConfig()
    assert all(getattr(default, f) > 0 for f in GEOMETRY)
    assert default.poisson_p == default.spots_p == default.rings_p == default.stripes_p == 0
    physics = AugmentConfig.preset("physics")
    assert min(physics.poisson_p, physics.spots_p, physics.rings_p, physics.stripes_p) > 0
    with pytest.raises(ValueError, match="preset must be one of"):
        AugmentConfig.preset("heavy")


@pytest.mark.parametrize(("data", "message"), [
    ({"flip": 0.5}, "unknown key.*'flip'"),
    ({"flip_p": 1.5}, "flip_p must be a probability from 0 to 1, got 1.5"),
    ({"rot90_p": True}, "rot90_p must be a probability"),
    ({"zoom_range": [1.5, 1.2]}, "zoom_range must satisfy"),
    ({"zoom_range": [0.0, 1.2]}, "zoom_range must satisfy 0.25"),
    ({"spots_size_range": [1.5, 3]}, "spots_size_range must be a pair of integers"),
    ({"rotate_range": 30}, "rotate_range must be a pair of numbers"),
    ({"padding": "wrap"}, "padding must be one of"),
    ({"elastic_spacing": 1}, "elastic_spacing must be a number of pixels"),
    ({"spots_dark_fraction": -0.1}, "spots_dark_fraction must be a probability"),
])
def test_config_rejects_bad_settings_in_one_sentence(data, message):
    with pytest.raises(ValueError, match=message) as info:
        AugmentConfig.from_dict(data)
    assert str(info.value).count(". ") == 0


def test_config_is_frozen_and_from_dict_needs_a_dict():
    config = AugmentConfig()
    with pytest.raises(AttributeError):
        config.flip_p = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError, match="must be a dict"):
        AugmentConfig.from_dict([("flip_p", 0.5)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown key"):
        config.replace(blur=1.0)


@pytest.mark.parametrize(("image", "target", "error", "message"), [
    (torch.zeros(2, 1, 8, 8, dtype=torch.long), None, TypeError, "image must be a floating"),
    (torch.zeros(8, 8), None, ValueError, r"image must have shape \(B, C, Y, X\)"),
    (torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 9, dtype=torch.long), ValueError,
     r"target has shape \(2, 8, 9\) but image \(2, 1, 8, 8\) needs \(2, 8, 8\)"),
    (torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 8), TypeError, "target must be an integer"),
])
def test_bad_inputs_are_named(image, target, error, message):
    with pytest.raises(error, match=message):
        augment(image, target, AugmentConfig(), generator=gen(0))


def test_bad_config_and_generator_are_named():
    image = torch.zeros(1, 1, 8, 8)
    with pytest.raises(TypeError, match="config must be an AugmentConfig"):
        augment(image, None, {"flip_p": 0.5}, generator=gen(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        augment(image, None, AugmentConfig(), generator=0)  # type: ignore[arg-type]
