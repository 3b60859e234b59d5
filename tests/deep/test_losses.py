"""Segmentation losses against hand computations and torch references."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from niseg.deep import IGNORE, LOSSES, balanced_class_weights, segmentation_loss

torch.set_num_threads(1)


def _data(n_classes=3, shape=(2, 8, 8), seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape[0], n_classes, *shape[1:], generator=gen, dtype=torch.float64)
    target = torch.randint(0, n_classes, shape, generator=gen)
    return logits, target


def test_ce_matches_torch_cross_entropy_with_ignored_pixels_and_weights():
    logits, target = _data()
    target[0, :3] = IGNORE
    weights = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    for w in (None, weights):
        ours = segmentation_loss(logits, target, kind="ce", class_weights=w)
        ref = F.cross_entropy(logits, target, weight=w, ignore_index=IGNORE)
        assert torch.allclose(ours, ref, atol=1e-12)


def test_two_class_ce_is_binary_cross_entropy():
    logits, target = _data(n_classes=2)
    ours = segmentation_loss(logits, target, kind="ce")
    ref = F.binary_cross_entropy_with_logits(logits[:, 1] - logits[:, 0], target.double())
    assert torch.allclose(ours, ref, atol=1e-12)
    single = logits[:, 1:] - logits[:, :1]  # one foreground logit
    assert torch.allclose(segmentation_loss(single, target, kind="ce"), ref, atol=1e-12)


def test_dice_by_hand():
    # One image of 4 pixels, 2 classes; pixel 3 unlabelled.
    p1 = torch.tensor([0.9, 0.2, 0.6, 0.5], dtype=torch.float64)
    logits = torch.stack([torch.zeros(4, dtype=torch.float64), torch.logit(p1)])[None, :, None]
    target = torch.tensor([[[1, 0, 1, IGNORE]]])
    # class 1: intersection 0.9 + 0.6, sizes (0.9 + 0.2 + 0.6) + 2
    dice1 = 2 * 1.5 / (1.7 + 2)
    # class 0: probabilities 0.1, 0.8, 0.4; intersection 0.8, sizes 1.3 + 1
    dice0 = 2 * 0.8 / (1.3 + 1)
    expected = 1 - (dice0 + dice1) / 2
    loss = segmentation_loss(logits, target, kind="dice")
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    weighted = segmentation_loss(logits, target, kind="dice", class_weights=[1.0, 3.0])
    assert float(weighted) == pytest.approx(((1 - dice0) + 3 * (1 - dice1)) / 4, abs=1e-5)
    both = segmentation_loss(logits, target, kind="dice_ce")
    ce = -(math.log(0.9) + math.log(0.8) + math.log(0.6)) / 3
    assert float(both) == pytest.approx(expected + ce, abs=1e-5)


def test_dice_leaves_out_classes_absent_from_the_labels():
    logits, target = _data(n_classes=3)
    target[target == 2] = 0
    loss3 = segmentation_loss(logits, target, kind="dice")
    # the same value as weighting class 2 by zero
    ref = segmentation_loss(logits, target, kind="dice", class_weights=[1.0, 1.0, 0.0])
    assert torch.allclose(loss3, ref)
    perfect = torch.where(F.one_hot(target, 3).movedim(-1, 1).bool(), 50.0, -50.0)
    assert float(segmentation_loss(perfect.double(), target, kind="dice")) < 1e-6


def test_focal_by_hand_and_gamma_zero_is_ce():
    logits = torch.tensor([[[[2.0, 0.0, -1.0]], [[0.0, 0.0, 1.0]]]], dtype=torch.float64)
    target = torch.tensor([[[0, 1, 0]]])
    p = [1 / (1 + math.exp(-2)), 0.5, 1 / (1 + math.exp(2))]
    expected = sum(-(1 - q) ** 2 * math.log(q) for q in p) / 3
    assert float(segmentation_loss(logits, target, kind="focal")) == pytest.approx(expected)
    gamma0 = segmentation_loss(logits, target, kind="focal", focal_gamma=0.0)
    assert torch.allclose(gamma0, segmentation_loss(logits, target, kind="ce"))
    weighted = segmentation_loss(logits, target, kind="focal", class_weights=[2.0, 1.0])
    w_expected = (2 * -(1 - p[0]) ** 2 * math.log(p[0]) + -(1 - p[1]) ** 2 * math.log(p[1])
                  + 2 * -(1 - p[2]) ** 2 * math.log(p[2])) / 5
    assert float(weighted) == pytest.approx(w_expected)


@pytest.mark.parametrize("kind", LOSSES)
def test_ignored_pixels_change_neither_loss_nor_gradient(kind):
    logits, target = _data(n_classes=3, shape=(2, 6, 6, 4), seed=1)
    ignored = torch.zeros_like(target, dtype=torch.bool)
    ignored[:, :3] = True
    target[ignored] = IGNORE
    other = logits.clone()
    other[ignored.unsqueeze(1).expand_as(other)] = 1e3 * torch.randn(
        int(ignored.sum()) * 3, dtype=torch.float64)
    results = []
    for values in (logits, other):
        x = values.clone().requires_grad_(True)
        loss = segmentation_loss(x, target, kind=kind, class_weights=[1.0, 2.0, 0.5])
        loss.backward()
        results.append((loss.detach(), x.grad))
    (loss_a, grad_a), (loss_b, grad_b) = results
    assert torch.allclose(loss_a, loss_b, atol=1e-12)
    assert torch.allclose(grad_a, grad_b, atol=1e-12)
    assert float(grad_a[ignored.unsqueeze(1).expand_as(grad_a)].abs().max()) == 0.0
    assert float(grad_a.abs().max()) > 0


@pytest.mark.parametrize("kind", LOSSES)
def test_no_labelled_pixel_gives_zero_with_a_gradient(kind):
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    loss = segmentation_loss(logits, torch.full((1, 4, 4), IGNORE), kind=kind)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_class_weights_help_a_rare_class():
    # A net predicting background everywhere: weighting the rare class raises the loss.
    target = torch.zeros(1, 32, 32, dtype=torch.long)
    target[0, 5, 5:10] = 1
    logits = torch.zeros(1, 2, 32, 32)
    logits[:, 0] = 3.0
    weights = balanced_class_weights(target, 2)
    plain = segmentation_loss(logits, target, kind="ce")
    weighted = segmentation_loss(logits, target, kind="ce", class_weights=weights)
    assert float(weighted) > 10 * float(plain)


def test_balanced_class_weights():
    targets = [np.array([[0, 0, 0, 1]]), torch.tensor([[0, 0, IGNORE, 2]])]
    weights = balanced_class_weights(targets, 4)
    # 7 labelled pixels: 5, 1, 1, 0 -> 7 / (4 * n)
    assert weights.dtype == torch.float32
    assert torch.allclose(weights, torch.tensor([7 / 20, 7 / 4, 7 / 4, 1.0]))
    rare = np.zeros(100_000, np.int64)
    rare[:3] = 1
    assert torch.allclose(balanced_class_weights(rare, 2, max_weight=100.0),
                          torch.tensor([100_000 / (2 * 99_997), 100.0]))
    with pytest.raises(ValueError, match="holds class 5 but classes are 0 to 3"):
        balanced_class_weights(np.array([0, 5]), 4)
    with pytest.raises(TypeError, match="integer class indices"):
        balanced_class_weights(np.array([0.5]), 2)
    with pytest.raises(ValueError, match="no labelled pixels"):
        balanced_class_weights(np.array([IGNORE]), 2)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"kind": "bce"}, ValueError, "kind must be one of"),
    ({"class_weights": [1.0, 2.0]}, ValueError, r"class_weights has shape \(2,\)"),
    ({"class_weights": [1.0, -1.0, 1.0]}, ValueError, "non-negative"),
    ({"focal_gamma": -1}, ValueError, "focal_gamma must be"),
])
def test_bad_arguments(kwargs, error, match):
    logits, target = _data()
    with pytest.raises(error, match=match):
        segmentation_loss(logits, target, **kwargs)


def test_bad_targets():
    logits, target = _data()
    with pytest.raises(ValueError, match=r"target has shape \(2, 8\)"):
        segmentation_loss(logits, target[:, 0])
    with pytest.raises(ValueError, match="holds class 3 but logits have 3 classes"):
        segmentation_loss(logits, target + 1)
    with pytest.raises(ValueError, match="holds class -2"):
        segmentation_loss(logits, target - 2)
    with pytest.raises(TypeError, match="integer torch.Tensor"):
        segmentation_loss(logits, target.float())
    with pytest.raises(TypeError, match="floating-point"):
        segmentation_loss(target, target)
