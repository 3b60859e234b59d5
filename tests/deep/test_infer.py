"""Sliding-window inference: Gaussian blending, padding, mirroring, tile consistency."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from niseg.deep._infer import (
    gaussian_importance,
    sliding_window_proba,
    tiling_halo,
    window_step,
)
from niseg.tiling import predict_tiled

torch.set_num_threads(1)


def _net(in_channels: int = 1, classes: int = 3, dims: int = 2, seed: int = 0):
    """A small two-layer conv net (receptive-field radius 2) as a stand-in U-Net."""
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d
    return torch.nn.Sequential(conv(in_channels, 4, 3, padding=1), torch.nn.ReLU(),
                               conv(4, classes, 3, padding=1))


def _image(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_gaussian_importance_is_a_separable_gaussian_with_sigma_patch_over_8():
    w = gaussian_importance((33, 16))
    assert w.shape == (33, 16) and w.dtype == np.float32
    x = np.arange(33) - 16.0
    g0 = np.exp(-0.5 * (x / (33 / 8)) ** 2)
    y = np.arange(16) - 7.5
    g1 = np.exp(-0.5 * (y / 2.0) ** 2)
    expected = np.maximum(np.outer(g0, g1 / g1.max()), 1e-6)
    np.testing.assert_allclose(w, expected, rtol=1e-6, atol=1e-7)
    assert w.max() == pytest.approx(1.0)
    assert w[0, 0] == pytest.approx(1e-6)


def test_window_step_and_halo():
    assert window_step((64, 48), 0.5) == (32, 24)
    assert window_step((16,), 0.0) == (16,)
    assert window_step((10, 10), 0.75) == (2, 2)
    assert tiling_halo((64, 48), 0.5) == (64, 48)
    assert tiling_halo((20,), 0.25) == (30,)
    with pytest.raises(ValueError, match="overlap"):
        window_step((16, 16), 1.0)


def test_pointwise_net_gives_pointwise_softmax_everywhere():
    # A 1x1 conv ignores its context, so blending many patches must give back exactly the
    # per-pixel softmax: any misplaced patch, padding or weight shows up.
    net = torch.nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        net.weight[:] = torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1)
        net.bias.zero_()
    image = _image((37, 53))
    proba = sliding_window_proba(net, image, patch=(16, 16), batch_size=3)
    expected = 1.0 / (1.0 + np.exp(-2.0 * image))
    assert proba.shape == (37, 53, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba[..., 0], expected, atol=1e-6)
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-6)
    mirrored = sliding_window_proba(net, image, patch=(16, 16), mirror=True)
    np.testing.assert_allclose(mirrored[..., 0], expected, atol=1e-6)


def test_single_logit_is_read_as_binary_sigmoid():
    net = torch.nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        net.weight.fill_(1.0)
        net.bias.fill_(0.5)
    image = _image((20, 20))
    proba = sliding_window_proba(net, image, patch=(8, 8), n_classes=2)
    np.testing.assert_allclose(proba[..., 1], 1 / (1 + np.exp(-(image + 0.5))), atol=1e-6)


def test_image_smaller_than_patch_and_3d_and_channels():
    net = _net(in_channels=2, classes=2, dims=3)
    image = _image((2, 5, 9, 40))
    proba = sliding_window_proba(net, image, patch=(8, 16, 16), overlap=0.5)
    assert proba.shape == (5, 9, 40, 2)
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-5)
    # A one-pixel axis is padded by repetition.
    flat = sliding_window_proba(_net(), _image((1, 30)), patch=(8, 8))
    assert flat.shape == (1, 30, 3)


def test_batch_size_does_not_change_the_result():
    net = _net()
    image = _image((50, 41))
    a = sliding_window_proba(net, image, patch=(16, 16), batch_size=1)
    b = sliding_window_proba(net, image, patch=(16, 16), batch_size=9)
    assert np.abs(a - b).max() <= 1e-6


def test_mirroring_averages_the_flipped_predictions():
    net = _net(seed=3)
    # 16 + k*8 pixels per axis: the patch grid is symmetric, so flipping the image is the
    # same as flipping every patch.
    image = _image((32, 48), seed=1)
    got = sliding_window_proba(net, image, patch=(16, 16), mirror=True)
    expected = np.zeros_like(got)
    for flips in [(), (0,), (1,), (0, 1)]:
        flipped = np.flip(image, flips) if flips else image
        p = sliding_window_proba(net, np.ascontiguousarray(flipped), patch=(16, 16))
        expected += np.flip(p, flips) if flips else p
    expected /= 4
    assert np.abs(got - expected).max() <= 1e-5
    plain = sliding_window_proba(net, image, patch=(16, 16))
    assert np.abs(got - plain).max() > 1e-3


def test_eval_mode_is_used_and_training_flag_restored():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Dropout(0.5))
    image = _image((24, 24))
    net.train()
    a = sliding_window_proba(net, image, patch=(8, 8))
    b = sliding_window_proba(net, image, patch=(8, 8))
    assert net.training
    np.testing.assert_array_equal(a, b)


def test_two_overlapping_crops_reproduce_the_untiled_prediction():
    net = _net(seed=1)
    patch = (16, 16)
    image = _image((70, 90), seed=2)
    full = sliding_window_proba(net, image, patch=patch)
    halo = tiling_halo(patch)[0]
    # Cores [0, 40) and [40, 70) along y, each read with a halo; 40 is a multiple of the step.
    top = sliding_window_proba(net, image[: 40 + halo], patch=patch)[:40]
    bottom = sliding_window_proba(net, image[40 - halo:], patch=patch)[halo:]
    assembled = np.concatenate([top, bottom])
    assert np.abs(assembled - full).max() <= 1e-5
    # A crop at any position reproduces its core when told its origin.
    crop = sliding_window_proba(net, image[13:60, 5:], patch=patch, origin=(13, 5))
    assert np.abs(crop[halo:-halo, halo:] - full[13 + halo:60 - halo, 5 + halo:]).max() <= 1e-5
    # Without the origin the grid shifts and the result changes.
    shifted = sliding_window_proba(net, image[13:60, 5:], patch=patch)
    assert np.abs(shifted[halo:-halo, halo:] - full[13 + halo:60 - halo, 5 + halo:]).max() > 1e-4


class _WindowSegmenter:
    """The shape of the coming UNetSegmenter: predict_proba = sliding window, halo from it."""

    spatial_dims = 2
    n_channels_ = 1
    classes_ = np.array([1, 2, 3])

    def __init__(self, net, patch):
        self.net = net
        self.patch = patch
        self.halo = tiling_halo(patch)

    def predict_proba(self, block):
        return sliding_window_proba(self.net, block, patch=self.patch, mirror=True)


def test_predict_tiled_matches_untiled_within_1e5():
    model = _WindowSegmenter(_net(seed=4), (16, 16))
    image = _image((75, 66), seed=5)
    full = model.predict_proba(image)
    step = window_step(model.patch)
    tiled = predict_tiled(model, image, tile=(3 * step[0], 2 * step[1]), output="proba")
    assert np.abs(tiled - full).max() <= 1e-5


def test_errors_are_one_sentence_value_errors():
    net = _net()
    image = _image((20, 20))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            sliding_window_proba(net, image, patch=(8, 8), device="cuda")
    with pytest.raises(ValueError, match="device"):
        sliding_window_proba(net, image, patch=(8, 8), device="tpu")
    with pytest.raises(ValueError, match="multiple"):
        sliding_window_proba(net, image, patch=(12, 12), size_multiple=8)
    with pytest.raises(ValueError, match="n_classes"):
        sliding_window_proba(net, image, patch=(8, 8), n_classes=2)
    with pytest.raises(ValueError, match="shape"):
        sliding_window_proba(net, _image((2, 3, 20, 20)), patch=(8, 8))
    with pytest.raises(ValueError, match="net failed"):
        sliding_window_proba(net, _image((3, 20, 20)), patch=(8, 8))
    with pytest.raises(ValueError, match="ambiguous"):
        sliding_window_proba(net, _image((3, 20, 20)), patch=8)
    with pytest.raises(ValueError, match="batch_size"):
        sliding_window_proba(net, image, patch=(8, 8), batch_size=0)
