"""UNetSegmenter: fitting, validation honesty, prediction, tiling, files, fine-tuning, errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from niseg.deep import (
    IGNORE,
    AugmentConfig,
    UNetSegmenter,
    _train,
    inflate_2d_to_3d,
)
from niseg.metrics import dice
from niseg.models import load_model, read_model_info, save_model
from niseg.tiling import default_tile, predict_tiled

torch.set_num_threads(1)
TINY = {"depth": 1, "base_channels": 4, "patch_size": 32, "batch_size": 2, "augment": "none",
            "n_threads": 1, "iterations_per_epoch": 3, "epochs": 2}


def discs(shape=(64, 64), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    truth = np.zeros(shape, np.uint8)
    for _ in range(6):
        cy, cx = rng.integers(6, shape[0] - 6), rng.integers(6, shape[1] - 6)
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 < 25] = 1
    image = (truth + rng.normal(0, 0.35, shape)).astype(np.float32)
    return image, truth


@pytest.fixture(scope="module")
def fitted():
    image, truth = discs((96, 64))
    model = UNetSegmenter(depth=2, base_channels=4, patch_size=32, batch_size=4,
                          learning_rate=1e-2, epochs=5, iterations_per_epoch=8,
                          augment="light", n_threads=1, patience=6).fit(image, masks=truth)
    return model, image, truth


def test_learns_discs_on_noise(fitted):
    model, image, _truth = fitted
    test_image, test_truth = discs((96, 64), seed=5)
    assert dice(test_truth, model.predict(test_image)) > 0.8
    assert model.classes_.tolist() == [0, 1] and model.predict(image).dtype == np.uint8
    assert model.iterations_ == sum(h["iterations"] for h in model.history_)
    assert model.stopped_because_ in ("epochs", "patience")
    best = max(model.history_, key=lambda h: (h["val_dice_smoothed"], -h["epoch"]))
    assert model.best_epoch_ == best["epoch"]
    assert model.validation_["source"] == "split" and model.validation_["gap"] == model.net_.halo
    assert set(model.history_[0]) >= {"epoch", "train_loss", "val_loss", "val_dice", "lr",
                                      "seconds", "iterations"}
    u = model.predict_uncertainty(image)
    assert u.shape == image.shape and u.dtype == np.float32 and 0 <= u.min() <= u.max() <= 1


def test_save_load_identical_predictions(fitted, tmp_path):
    model, image, _ = fitted
    path = save_model(model, tmp_path / "unet.niseg")
    assert read_model_info(path)["kind"] == "unet"
    loaded = load_model(path)
    assert isinstance(loaded, UNetSegmenter)
    np.testing.assert_array_equal(loaded.predict_proba(image), model.predict_proba(image))
    assert loaded.history_ == model.history_ and loaded.config_ == model.config_
    assert loaded.provenance_["iterations"] == model.iterations_


def test_tiled_equals_untiled_and_default_tile_respects_step(fitted):
    model, image, _ = fitted
    big = np.tile(image, (2, 2))
    whole = model.predict_proba(big)
    tiled = predict_tiled(model, big, tile=model.tile_multiple[0] * 2, output="proba")
    assert np.abs(tiled - whole).max() < 1e-5
    tile = default_tile((1000, 1000), pixels=5000, multiple=model.tile_multiple)
    assert all(t % m == 0 for t, m in zip(tile, model.tile_multiple))
    stack = np.stack([image, image[::-1]])
    labels = predict_tiled(model, stack)
    assert np.array_equal(labels[1], model.predict(image[::-1]))


def test_shapes_3d_and_sparse_labels():
    volume = np.random.default_rng(0).random((32, 32, 32)).astype(np.float32)
    labels = np.zeros(volume.shape, np.uint8)
    labels[2:6, 2:6, 2:6] = 1
    labels[20:26, 20:26, 20:26] = 3
    volume[labels == 3] += 2
    model = UNetSegmenter(**dict(TINY, patch_size=16)).fit(volume, labels)
    assert model.spatial_dims == 3 and model.classes_.tolist() == [1, 3]
    assert model.predict_proba(volume).shape == (32, 32, 32, 2)
    assert set(np.unique(model.predict(volume))) <= {1, 3}


def test_validation_pixels_are_never_trained_on(monkeypatch):
    image, truth = discs((96, 64))
    seen, corners = [], []
    loss, sample = _train.segmentation_loss, _train.PatchSampler.sample

    def record_loss(logits, target, **kw):
        seen.append(target.numpy().copy())
        return loss(logits, target, **kw)

    def record_sample(self, batch):
        out = sample(self, batch)
        corners.append(out[2])
        return out

    monkeypatch.setattr(_train, "segmentation_loss", record_loss)
    monkeypatch.setattr(_train.PatchSampler, "sample", record_sample)
    model = UNetSegmenter(**dict(TINY, iterations_per_epoch=10, epochs=1),
                          validation=0.2).fit(image, masks=truth)
    (block,) = model.validation_["blocks"]
    axis, start, stop, gap = block["axis"], block["start"], block["stop"], model.net_.halo
    banned = np.zeros(truth.shape, bool)
    index = [slice(None)] * 2
    index[axis] = slice(max(start - gap, 0), stop + gap)
    banned[tuple(index)] = True
    hit = 0
    for targets, batch_corners in zip(seen, corners):
        for target, (_, (r, c)) in zip(targets, batch_corners):
            window = banned[r:r + 32, c:c + 32]
            assert np.all(target[window] == IGNORE)
            assert np.all(target[~window] != IGNORE)  # dense masks: everything else labelled
            hit += window.sum()
    assert hit > 0  # patches did reach into the validation block and gap, as context


def test_same_seed_same_weights():
    image, truth = discs()
    a = UNetSegmenter(**TINY).fit(image, masks=truth)
    b = UNetSegmenter(**TINY).fit(image, masks=truth)
    sa, sb = a.net_.state_dict(), b.net_.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fine_tuning_starts_from_saved_weights_and_freezes(fitted, tmp_path, monkeypatch):
    model, image, truth = fitted
    path = save_model(model, tmp_path / "m.niseg")
    starts = []
    original = _train.train_net

    def spy(net, *args, **kw):
        starts.append({k: v.clone() for k, v in net.state_dict().items()})
        return original(net, *args, **kw)

    monkeypatch.setattr(_train, "train_net", spy)
    tuned = UNetSegmenter(**dict(TINY, depth=None, base_channels=None), init=path,
                          freeze_encoder_epochs=2).fit(image, masks=truth)
    ref = model.net_.state_dict()
    assert all(torch.equal(starts[0][k], ref[k]) for k in ref)
    after = tuned.net_.state_dict()
    assert all(torch.equal(after[k], ref[k]) for k in ref if k.startswith("encoders."))
    assert any(not torch.equal(after[k], ref[k]) for k in ref if k.startswith("decoders."))
    assert tuned.init_ == str(path)
    labels = np.where(truth > 0, 1, 2).astype(np.uint8)
    labels[0, 0] = 3
    with pytest.raises(ValueError, match="init model has 2 classes"):
        UNetSegmenter(**dict(TINY, depth=None, base_channels=None), init=model).fit(image,
                                                                                    labels)


def test_2d_model_starts_a_3d_net(fitted):
    model, _, _ = fitted
    volume = np.random.default_rng(0).random((32, 32, 32)).astype(np.float32)
    mask = (volume > 0.5).astype(np.uint8)
    net3 = UNetSegmenter(**dict(TINY, depth=None, base_channels=None, epochs=1),
                         init=model, freeze_encoder_epochs=1).fit(volume, masks=mask)
    assert net3.spatial_dims == 3
    expected = inflate_2d_to_3d(model.net_.state_dict(), net3.net_)
    got = net3.net_.state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in got if k.startswith("encoders."))


@pytest.mark.parametrize("make, message", [
    (lambda: (np.zeros((10, 10), np.float32), {"masks": np.eye(10)}),
     "only 10 px along axis 0"),
    (lambda: (np.zeros((32, 32), np.float32), {"masks": np.arange(1024).reshape(32, 32) % 3}),
     "must be binary .* values 0, 1, 2"),
    (lambda: (np.full((32, 32), np.nan, np.float32), {"masks": np.eye(32)}),
     "images contains NaN"),
    (lambda: (np.ones((32, 32), np.float32), {"labels": np.eye(32, dtype=np.uint8)}),
     "only one class"),
    (lambda: (np.ones((32, 32), np.float32), {"labels": np.zeros((32, 32), np.uint8)}),
     "no labelled pixels"),
    (lambda: (np.ones((32, 32), np.float32), {"masks": np.eye(31)}),
     r"masks has shape \(31, 31\) but image has shape \(32, 32\)"),
])
def test_bad_inputs_raise_one_sentence(make, message):
    image, target = make()
    with pytest.raises(ValueError, match=message) as info:
        UNetSegmenter(**TINY).fit(image, **target)
    assert "\n" not in str(info.value)


def test_device_and_amp_errors():
    image, truth = discs()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            UNetSegmenter(**TINY, device="cuda").fit(image, masks=truth)
    with pytest.raises(ValueError, match="amp .* needs a CUDA device"):
        UNetSegmenter(**TINY, amp=True).fit(image, masks=truth)
    with pytest.raises(ValueError, match="patch_size .* larger than the smallest"):
        UNetSegmenter(**dict(TINY, patch_size=128)).fit(image, masks=truth)
    with pytest.raises(ValueError, match="not fitted"):
        UNetSegmenter().predict(image)


def test_time_budget_lifts_the_epoch_limit_and_early_stopping_by_default():
    plain = UNetSegmenter()._check_params()
    assert (plain["epochs"], plain["patience"]) == (50, 10)
    budget = UNetSegmenter(time_budget=5.0)._check_params()
    assert budget["epochs"] == _train.UNLIMITED_EPOCHS and budget["patience"] is None
    explicit = UNetSegmenter(time_budget=5.0, epochs=7, patience=3)._check_params()
    assert (explicit["epochs"], explicit["patience"]) == (7, 3)
    with pytest.raises(ValueError, match="patience must be a positive whole number"):
        UNetSegmenter(patience=0)._check_params()


def test_fit_passes_the_normalization_to_transmission_poisson_augmentation(monkeypatch):
    seen = []
    real = _train.augment

    def spy(x, y, config, *, generator, intensity=None):
        seen.append(intensity)
        return real(x, y, config, generator=generator, intensity=intensity)

    monkeypatch.setattr(_train, "augment", spy)
    rng = np.random.default_rng(0)
    truth = np.zeros((48, 48), np.uint8)
    truth[12:36, 12:36] = 1
    image = (0.3 + 0.4 * truth + rng.normal(0, 0.02, truth.shape)).astype(np.float32)
    config = AugmentConfig.preset("none", poisson_p=1.0, poisson_units="transmission",
                                  poisson_counts_range=(100.0, 1000.0))
    model = UNetSegmenter(**dict(TINY, augment=config, validation=None)).fit(image, masks=truth)
    mean, std = model.normalizer_.mean_[0], model.normalizer_.std_[0]
    assert seen and all(i == ((pytest.approx(mean), pytest.approx(std)),) for i in seen)
