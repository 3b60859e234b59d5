"""The training loop pieces: schedules, patch sampler, validation set, stopping rules."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from niseg.deep import (
    IGNORE,
    UNet,
    _train,
)
from niseg.deep._train import (
    PatchSampler,
    TrainSettings,
    ValidationSet,
    default_iterations,
    lr_factor,
    train_net,
)

torch.set_num_threads(1)


def test_lr_schedules():
    assert lr_factor("cosine", 0, 10) == 1.0
    assert lr_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 10, 10) == pytest.approx(0.0)
    assert lr_factor("poly", 5, 10) == pytest.approx(0.5**0.9)
    assert lr_factor("poly", 20, 10) == pytest.approx(0.0)
    assert lr_factor("none", 7, 10) == 1.0


def test_default_iterations_rule():
    assert default_iterations(64 * 64, 2, (32, 32)) == 10  # at least 10
    assert default_iterations(10**9, 2, (32, 32)) == 250  # at most 250
    assert default_iterations(100 * 32 * 32, 2, (32, 32)) == 100  # covers twice


def test_sampler_balances_a_rare_class_and_stays_inside():
    target = np.zeros((100, 80), np.int64)
    target[50, 40] = 1  # one pixel of the rare class: 0.01 %
    target[:10] = IGNORE
    sampler = PatchSampler([np.random.default_rng(0).random((1, 100, 80), np.float32)],
                           [target], (16, 16), np.random.default_rng(1))
    x, y, corners = sampler.sample(400)
    assert x.shape == (400, 1, 16, 16) and y.shape == (400, 16, 16)
    with_rare = np.mean([(t == 1).any() for t in y])
    assert 0.35 < with_rare < 0.65
    for (_, (r, c)), t in zip(corners, y):
        assert 0 <= r <= 84 and 0 <= c <= 64
        assert np.array_equal(t, target[r:r + 16, c:c + 16])


def test_sampler_refuses_small_images_and_no_labels():
    with pytest.raises(ValueError, match="smaller than the patch size"):
        PatchSampler([np.zeros((1, 8, 8), np.float32)], [np.zeros((8, 8), np.int64)], (16, 16),
                     np.random.default_rng(0))
    with pytest.raises(ValueError, match="no labelled pixels"):
        PatchSampler([np.zeros((1, 16, 16), np.float32)], [np.full((16, 16), IGNORE)], (16, 16),
                     np.random.default_rng(0))


class _SignNet(torch.nn.Module):
    """Logits (-10 x, 10 x): class 1 wherever the input is positive."""

    out_channels = 2
    size_multiple = 1

    def forward(self, x):
        return torch.cat([-10 * x, 10 * x], dim=1)


def test_validation_set_scores_only_validation_pixels():
    truth = np.zeros((32, 32), np.int64)
    truth[8:20, 8:20] = 1
    image = np.where(truth, 1.0, -1.0).astype(np.float32)[None]
    target = np.full_like(truth, IGNORE)
    target[:16] = truth[:16]
    # Outside the validation pixels the image is wrong on purpose: it must not count.
    image[0, 16:] *= -1
    result = ValidationSet([image], [target], [(0, 0)], foreground_only=True).evaluate(
        _SignNet(), patch=(16, 16), overlap=0.5, batch_size=4, device="cpu", loss="dice_ce",
        class_weights=None)
    assert result["val_dice"] == pytest.approx(1.0)
    assert result["val_dice_per_class"] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert result["val_loss"] < 0.01


def _setup(seed=0):
    torch.manual_seed(seed)
    net = UNet(2, 1, 2, depth=1, base_channels=4)
    rng = np.random.default_rng(seed)
    truth = np.zeros((32, 32), np.int64)
    truth[8:24, 8:24] = 1
    image = (truth + rng.normal(0, 0.3, truth.shape)).astype(np.float32)[None]
    sampler = PatchSampler([image], [truth], (16, 16), rng)
    val = ValidationSet([image], [truth], [(0, 0)], foreground_only=True)
    return net, sampler, val


def _settings(**kw):
    base = {"epochs": 4, "iterations_per_epoch": 2, "batch_size": 2, "patch": (16, 16),
                "schedule": "none", "patience": 2}
    base.update(kw)
    return TrainSettings(**base)


def test_early_stopping_keeps_the_best_epoch(monkeypatch):
    net, sampler, val = _setup()
    # moving averages 0.5, 0.62, 0.524, 0.457: best at epoch 2, then 2 epochs without gain
    scores = iter([0.5, 0.9, 0.3, 0.3, 0.9])
    states = []

    def scripted(self, net, **kw):
        states.append({k: v.clone() for k, v in net.state_dict().items()})
        return {"val_loss": 1.0, "val_dice": next(scores), "val_dice_per_class": None}

    monkeypatch.setattr(ValidationSet, "evaluate", scripted)
    result = train_net(net, sampler, val, _settings(epochs=5), device=torch.device("cpu"))
    assert result.stopped_because == "patience"
    assert len(result.history) == 4 and result.best_epoch == 2
    assert [h["val_dice_smoothed"] for h in result.history] == pytest.approx(
        [0.5, 0.62, 0.524, 0.4568])
    assert result.iterations == 8
    final = net.state_dict()
    assert all(torch.equal(final[k], states[1][k]) for k in final)
    assert not all(torch.equal(final[k], states[3][k]) for k in final)


def test_time_budget_stops_after_one_iteration():
    net, sampler, val = _setup()
    result = train_net(net, sampler, val, _settings(time_budget=1e-9),
                       device=torch.device("cpu"))
    assert result.stopped_because == "time_budget"
    assert result.iterations == 1 and len(result.history) == 1
    assert result.history[0]["iterations"] == 1 and result.history[0]["val_dice"] is not None


def test_slow_first_epoch_does_not_end_the_schedule_early(monkeypatch):
    """A first epoch slowed by warm-up or a busy machine used to fix the schedule's horizon
    to the epochs that pace allowed, so the learning rate sat at 0 for the rest of the
    budget; the horizon is now estimated again after every epoch."""
    net, sampler, _ = _setup()
    now = [0.0]
    monkeypatch.setattr(_train.time, "monotonic", lambda: now[0])
    real_sample = sampler.sample
    calls = [0]

    def timed_sample(n):
        calls[0] += 1
        now[0] += 30.0 if calls[0] <= 2 else 1.0  # epoch 1: 60 s, then 2 s per epoch
        return real_sample(n)

    monkeypatch.setattr(sampler, "sample", timed_sample)
    result = train_net(net, sampler, None,
                       _settings(epochs=20, schedule="cosine", time_budget=100.0),
                       device=torch.device("cpu"))
    lrs = [h["lr"] for h in result.history]
    assert len(lrs) == 20 and result.stopped_because == "epochs"
    # the old rule planned 100 // 60 = 1 epoch: lr 0 from epoch 2 on
    assert all(lr > 1e-6 for lr in lrs[:-1])
    assert lrs[0] == max(lrs) and lrs[-1] < lrs[1]


def test_budget_without_patience_trains_to_the_budget_and_keeps_the_best_epoch(monkeypatch):
    """With a time budget and no patience (UNetSegmenter's default then), falling validation
    scores do not stop training; the budget does, the schedule decays over it, and the best
    smoothed epoch is the one kept."""
    net, sampler, val = _setup()
    now = [0.0]
    monkeypatch.setattr(_train.time, "monotonic", lambda: now[0])
    real_sample = sampler.sample

    def timed_sample(n):
        now[0] += 1.0  # 2 s per epoch of 2 iterations
        return real_sample(n)

    scores = iter([0.5, 0.9] + [0.1] * 100)
    monkeypatch.setattr(sampler, "sample", timed_sample)
    monkeypatch.setattr(ValidationSet, "evaluate", lambda self, net, **kw: {
        "val_loss": 1.0, "val_dice": next(scores), "val_dice_per_class": None})
    settings = _settings(epochs=_train.UNLIMITED_EPOCHS, patience=None, schedule="cosine",
                         time_budget=21.0)
    shown = []
    result = train_net(net, sampler, val, settings, device=torch.device("cpu"),
                       progress=lambda done, total, text=None: shown.append(total))
    assert result.stopped_because == "time_budget"
    assert len(result.history) == 11 and result.iterations == 22  # past 21 s after it 22
    assert result.best_epoch == 2
    lrs = [h["lr"] for h in result.history]
    assert lrs[1] > 0.9e-3 and lrs[-1] < 0.1e-3  # decayed over the budget, not before
    assert max(shown) < 100  # no astronomical progress total before the first epoch timed


def test_runs_all_epochs_without_validation_and_decays_lr():
    net, sampler, _ = _setup()
    result = train_net(net, sampler, None, _settings(epochs=3, schedule="cosine"),
                       device=torch.device("cpu"))
    assert result.stopped_because == "epochs" and result.best_epoch == 3
    lrs = [h["lr"] for h in result.history]
    assert lrs[0] > lrs[1] > lrs[2] > 0
    assert all(h["val_dice"] is None for h in result.history)


def test_frozen_encoder_is_unchanged():
    net, sampler, _ = _setup()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train_net(net, sampler, None, _settings(epochs=2, freeze_encoder_epochs=2),
              device=torch.device("cpu"))
    after = net.state_dict()
    encoder = [k for k in after if k.startswith("encoders.")]
    decoder = [k for k in after if k.startswith("decoders.") and k.endswith("weight")]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
    assert all(p.requires_grad for p in net.parameters())


def test_loss_sees_targets_as_sampled(monkeypatch):
    net, sampler, _ = _setup()
    seen = []
    original = _train.segmentation_loss

    def recording(logits, target, **kw):
        seen.append(target.clone())
        return original(logits, target, **kw)

    monkeypatch.setattr(_train, "segmentation_loss", recording)
    train_net(net, sampler, None, _settings(epochs=1), device=torch.device("cpu"))
    assert len(seen) == 2 and seen[0].shape == (2, 16, 16)
