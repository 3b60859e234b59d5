"""Self-configuration rules and intensity normalization."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from niseg.deep import (
    IntensityNormalizer,
    NetConfig,
    UNet,
    choose_normalization,
    configure,
)

torch.set_num_threads(1)


def test_configure_2d_cpu():
    cfg = configure([(768, 512), (900, 600)], spatial_dims=2)
    assert cfg.patch_size == (128, 128)
    assert cfg.depth == 3  # the CPU cap (128 / 2**3 = 16 px at the bottleneck)
    assert cfg.base_channels == 16
    assert cfg.batch_size == 4
    assert cfg.normalization == "zscore"
    assert len(cfg.rules) == 6 and all(isinstance(r, str) for r in cfg.rules)
    assert any("(768, 512) reduced to (128, 128)" in r for r in cfg.rules)
    assert any("at 3 poolings on a CPU" in r for r in cfg.rules)
    net = UNet(**cfg.unet_params())
    assert all(p % net.size_multiple == 0 for p in cfg.patch_size)


def test_configure_2d_gpu_is_larger():
    cfg = configure([(768, 512)], spatial_dims=2, device="cuda")
    assert cfg.patch_size == (512, 512)
    assert cfg.base_channels == 32
    assert cfg.depth == 5
    # 15 maps * 32 channels * 4 B * 2 = 3.75 kB per pixel; 8 GB hold 8 patches of 512^2
    assert cfg.batch_size == 8


def test_configure_3d_cpu():
    cfg = configure([(64, 256, 256)], spatial_dims=3, n_classes=3)
    assert cfg.patch_size == (64, 64, 64)
    assert math.prod(cfg.patch_size) <= 64**3
    assert cfg.depth == 3  # the CPU cap
    # 15 maps * 16 channels * 4 B * 4/3 = 1.25 kB per voxel: 2 GB hold 6 patches of 64^3
    assert cfg.batch_size == 4
    assert cfg.n_classes == 3


def test_anisotropic_spacing_gives_fewer_pixels_along_the_coarse_axis():
    iso = configure([(64, 256, 256)], spatial_dims=3)
    aniso = configure([(64, 256, 256)], spatial_dims=3, spacing=(4.0, 1.0, 1.0))
    assert aniso.patch_size[0] < iso.patch_size[0]
    assert aniso.patch_size[1] > iso.patch_size[1]
    assert aniso.patch_size == (16, 128, 128)  # 64 x 128 x 128 in physical units
    assert aniso.depth == 2  # the 16-px axis limits pooling
    assert aniso.spacing == (4.0, 1.0, 1.0)
    coarse_2d = configure([(512, 512)], spatial_dims=2, spacing=(3.0, 1.0))
    assert coarse_2d.patch_size[0] < coarse_2d.patch_size[1]


def test_small_images_use_the_whole_extent():
    cfg = configure([(100, 70)], spatial_dims=2)
    assert cfg.depth == 3  # the CPU cap
    assert cfg.patch_size == (96, 64)
    assert any("whole smallest training extent (100, 70)" in r for r in cfg.rules)


def test_memory_budget_limits_patch_and_batch():
    cfg = configure([(768, 512)], spatial_dims=2, memory_budget_mb=64)
    # 1.875 kB per pixel: 64 MB hold 34952 pixels, half of it for one patch
    assert math.prod(cfg.patch_size) <= 17476
    assert cfg.batch_size == 2


def test_image_smaller_than_the_minimum_patch_is_refused():
    with pytest.raises(ValueError, match=r"only 10 px along axis 0 .*at least 16 px"):
        configure([(10, 300)], spatial_dims=2)
    with pytest.raises(ValueError, match=r"only 12 px along axis 2"):
        configure([(64, 64, 64), (32, 32, 12)], spatial_dims=3)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"spatial_dims": 1}, ValueError, "spatial_dims must be 2 or 3"),
    ({"shapes": [(64, 64, 64)]}, ValueError, r"shapes\[0\] is \(64, 64, 64\)"),
    ({"shapes": "64x64"}, TypeError, "shapes must be a list"),
    ({"n_classes": 1}, ValueError, "n_classes must be an integer >= 2"),
    ({"spacing": (1.0,)}, ValueError, "spacing must be 2 positive numbers"),
    ({"memory_budget_mb": -5}, ValueError, "memory_budget_mb must be a positive"),
])
def test_configure_bad_arguments(kwargs, error, match):
    args = {"shapes": [(64, 64)], "spatial_dims": 2, **kwargs}
    shapes = args.pop("shapes")
    with pytest.raises(error, match=match):
        configure(shapes, **args)


def test_one_shape_tuple_is_one_image_and_config_round_trips():
    cfg = configure((128, 128), spatial_dims=2, spacing=(1, 2))
    again = NetConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="missing 'rules'"):
        NetConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "rules"})


def test_configure_records_the_normalization_rule():
    rng = np.random.default_rng(0)
    ct = rng.normal(0.02, 0.005, (64, 64)).astype(np.float32)
    ct[3, 3] = 5.0
    cfg = configure([ct.shape], spatial_dims=2, images=[ct])
    assert cfg.normalization == "percentile"
    assert "heavy tails" in cfg.rules[-1]
    counts = rng.poisson(500, (64, 64)).astype(np.uint16)
    assert configure([counts.shape], spatial_dims=2, images=counts).normalization == "zscore"


def test_choose_normalization():
    rng = np.random.default_rng(1)
    gaussian = rng.normal(5.0, 2.0, (200, 200))
    reason = "z-score: floating-point data without heavy tails"
    assert choose_normalization(gaussian) == ("zscore", reason)
    assert choose_normalization(rng.integers(0, 60000, (20, 20)))[0] == "zscore"
    with pytest.raises(TypeError, match="dtype bool"):
        choose_normalization(np.zeros((4, 4), bool))


def test_zscore_matches_numpy_over_all_training_images():
    rng = np.random.default_rng(2)
    images = [rng.normal(60000, 3, (40, 50)).astype(np.float32),
              rng.normal(60010, 3, (30, 20)).astype(np.float32)]
    norm = IntensityNormalizer().fit(images)
    values = np.concatenate([i.ravel().astype(np.float64) for i in images])
    assert norm.mean_[0] == pytest.approx(values.mean(), rel=1e-12)
    assert norm.std_[0] == pytest.approx(values.std(), rel=1e-9)
    out = norm.transform(images[0])
    assert out.dtype == np.float32
    expected = (images[0].astype(np.float64) - values.mean()) / values.std()
    assert np.allclose(out, expected, atol=1e-3)


def test_percentile_clips_then_zscores():
    rng = np.random.default_rng(3)
    image = rng.normal(0.0, 1.0, (100, 100))
    image[0, :20] = 1e4
    norm = IntensityNormalizer("percentile", lower=1, upper=99).fit(image)
    lo, hi = np.percentile(image, [1, 99])
    assert norm.clip_low_[0] == pytest.approx(lo)
    assert norm.clip_high_[0] == pytest.approx(hi)
    clipped = np.clip(image, lo, hi)
    assert norm.mean_[0] == pytest.approx(clipped.mean())
    assert norm.std_[0] == pytest.approx(clipped.std())
    out = norm.transform(image)
    assert np.allclose(out, (clipped - clipped.mean()) / clipped.std(), atol=1e-5)
    assert out.max() == pytest.approx((hi - clipped.mean()) / clipped.std(), rel=1e-5)


def test_per_channel_statistics_and_torch_input():
    rng = np.random.default_rng(4)
    image = np.stack([rng.normal(0, 1, (32, 32)), rng.normal(100, 10, (32, 32))], axis=-1)
    norm = IntensityNormalizer("percentile", channel_axis=-1).fit(image)
    assert norm.n_channels_ == 2
    out = norm.transform(image)
    assert np.allclose(out.mean(axis=(0, 1)), 0, atol=0.05)
    tensor_out = norm.transform(torch.from_numpy(image))
    assert tensor_out.dtype == torch.float32
    assert np.allclose(tensor_out.numpy(), out, atol=1e-5)
    with pytest.raises(ValueError, match="expects 2 channels"):
        norm.transform(image[..., :1])


def test_round_trip_through_json():
    rng = np.random.default_rng(5)
    image = rng.gamma(2.0, 1.0, (50, 50))
    for method in ("zscore", "percentile"):
        norm = IntensityNormalizer(method).fit(image)
        data = json.loads(json.dumps(norm.to_dict()))
        again = IntensityNormalizer.from_dict(data)
        assert np.array_equal(again.transform(image), norm.transform(image))
    bad = dict(data, std=[0.0])
    with pytest.raises(ValueError, match="inconsistent statistics"):
        IntensityNormalizer.from_dict(bad)
    with pytest.raises(ValueError, match="missing 'mean'"):
        IntensityNormalizer.from_dict({k: v for k, v in data.items() if k != "mean"})


def test_normalizer_refuses_nan_constant_and_bad_parameters():
    image = np.ones((8, 8), np.float32)
    with pytest.raises(ValueError, match="constant values"):
        IntensityNormalizer().fit(image)
    image[2, 2] = np.nan
    with pytest.raises(ValueError, match=r"images\[1\] contains NaN"):
        IntensityNormalizer().fit([np.arange(64.0).reshape(8, 8), image])
    with pytest.raises(ValueError, match="lower .* must be below upper"):
        IntensityNormalizer("percentile", lower=90, upper=10).fit(np.arange(9.0))
    with pytest.raises(ValueError, match="method must be one of"):
        IntensityNormalizer("minmax").fit(np.arange(9.0))
    with pytest.raises(ValueError, match="not fitted"):
        IntensityNormalizer().transform(np.arange(9.0))
