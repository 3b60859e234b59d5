"""Honest validation split (gap of at least the halo) and early stopping."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

torch = pytest.importorskip("torch")

from niseg.deep._validation import EarlyStopping, validation_split

torch.set_num_threads(1)


def _gap(block) -> float:
    """Smallest Euclidean distance from a training pixel to a validation pixel."""
    distance = ndi.distance_transform_edt(~block.val_mask)
    return float(distance[block.train_mask].min())


def _strokes(shape, seed):
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint8)
    for _ in range(12):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1] - 20)
        labels[y, x:x + 20] = rng.integers(1, 3)
    return labels


def test_dense_2d_slab_has_the_fraction_and_a_gap_of_the_halo():
    (block,) = validation_split([(120, 80)], 0.25, 9, spatial_dims=2)
    assert block.axis == 0
    assert block.n_val == 30 * 80
    assert block.val_mask.sum() == block.n_val
    assert block.n_train == (120 - 30 - 9) * 80
    assert not (block.train_mask & block.val_mask).any()
    assert _gap(block) >= 9 + 1
    # Validation is a contiguous slab at one end.
    rows = np.flatnonzero(block.val_mask.any(axis=1))
    assert rows[0] in (0, 90) and np.all(np.diff(rows) == 1)


def test_sparse_labels_count_labelled_pixels():
    labels = _strokes((100, 140), seed=1)
    total = int((labels > 0).sum())
    (block,) = validation_split([labels], 0.2, 5, spatial_dims=2, seed=3)
    assert block.axis == 1  # the longest axis
    assert block.n_val == int((labels[block.val_mask] > 0).sum())
    assert block.n_train == int((labels[block.train_mask] > 0).sum())
    assert 0.2 * total <= block.n_val <= 0.2 * total + 100  # at most one more column of strokes
    assert block.n_train > 0
    assert _gap(block) > 5


def test_same_seed_same_split():
    labels = _strokes((80, 90), seed=2)
    a = validation_split([labels], 0.3, 4, spatial_dims=2, seed=7)
    b = validation_split([labels], 0.3, 4, spatial_dims=2, seed=7)
    np.testing.assert_array_equal(a[0].val_mask, b[0].val_mask)
    np.testing.assert_array_equal(a[0].train_mask, b[0].train_mask)
    ends = {bool(validation_split([labels], 0.3, 4, spatial_dims=2, seed=s)[0].val_mask[:, 0].any())
            for s in range(8)}
    assert ends == {True, False}  # the seed picks the end


def test_3d_volume_cut_along_its_longest_axis():
    labels = np.zeros((20, 48, 30), np.uint8)
    labels[2:18, 4:44, 3:27] = 1
    (block,) = validation_split([labels], 0.2, (2, 6, 6), spatial_dims=3)
    assert block.axis == 1 and block.val_mask.ndim == 3
    assert block.n_val == pytest.approx(0.2 * labels.sum(), rel=0.1)
    assert _gap(block) > 6


def test_leading_axes_are_cut_together():
    labels = np.ones((4, 30, 50), np.uint8)
    (block,) = validation_split([labels], 0.2, 3, spatial_dims=2, seed=0)
    assert block.axis == 1
    np.testing.assert_array_equal(block.val_mask[0], block.val_mask[3])
    assert block.n_val == 4 * 10 * 30


def test_three_or_more_images_give_whole_validation_images():
    labels = [np.ones((20, 20), np.uint8) for _ in range(5)]
    blocks = validation_split(labels, 0.2, 50, spatial_dims=2, seed=1)
    val = [b for b in blocks if b.val_mask.any()]
    assert len(val) == 1 and val[0].val_mask.all() and not val[0].train_mask.any()
    assert all(b.train_mask.all() for b in blocks if b is not val[0])
    assert sum(b.n_train for b in blocks) == 4 * 400


def test_two_images_cut_the_one_with_most_labels():
    small = np.ones((30, 30), np.uint8)
    big = np.ones((60, 40), np.uint8)
    blocks = validation_split([small, big], 0.2, 4, spatial_dims=2)
    assert blocks[0].train_mask.all() and not blocks[0].val_mask.any()
    assert blocks[1].axis == 0
    assert blocks[1].n_val == int(np.ceil(0.2 * (900 + 2400) / 40)) * 40


def test_clear_errors():
    stroke = np.zeros((40, 40), np.uint8)
    stroke[30:32, 5:35] = 1
    with pytest.raises(ValueError, match="no labelled pixels are left for training"):
        validation_split([stroke], 0.3, 10, spatial_dims=2)
    with pytest.raises(ValueError, match="fraction"):
        validation_split([(10, 10)], 0.8, 1, spatial_dims=2)
    with pytest.raises(ValueError, match="no labelled"):
        validation_split([np.zeros((10, 10))], 0.2, 1, spatial_dims=2)
    with pytest.raises(ValueError, match="halo"):
        validation_split([(10, 10)], 0.2, -1, spatial_dims=2)
    with pytest.raises(ValueError, match="spatial axes"):
        validation_split([np.ones(5)], 0.2, 1, spatial_dims=2)


def test_early_stopping_waits_patience_epochs_and_ties_do_not_count():
    stopper = EarlyStopping(patience=3)
    decisions = [stopper.step(v) for v in (0.5, 0.7, 0.7, 0.69, 0.7)]
    assert decisions == [False, False, False, False, True]
    assert stopper.best == 0.7 and stopper.best_epoch == 2 and not stopper.is_best


def test_early_stopping_min_delta_and_min_mode():
    stopper = EarlyStopping(patience=2, min_delta=0.05, mode="min")
    assert not stopper.step(1.0) and stopper.is_best
    assert not stopper.step(0.97) and not stopper.is_best  # within min_delta
    assert not stopper.step(0.9) and stopper.is_best and stopper.best_epoch == 3
    assert not stopper.step(float("nan"))
    assert stopper.step(0.89)
    assert stopper.best == 0.9
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(patience=1, mode="up")  # type: ignore[arg-type]
