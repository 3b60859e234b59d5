"""Tests of the quad-tree decomposition."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.cluster import quadtree


def _check_tiling(tree, shape):
    labels = tree.labels
    assert labels.shape == shape
    assert labels.min() == 1 and labels.max() == len(tree.leaves)
    coverage = np.zeros(shape, dtype=np.int64)
    for i, (y0, x0, y1, x1) in enumerate(tree.leaves, start=1):
        assert y1 > y0 and x1 > x0
        coverage[y0:y1, x0:x1] += 1
        assert (labels[y0:y1, x0:x1] == i).all()
    assert (coverage == 1).all()  # every pixel in exactly one leaf


@pytest.mark.parametrize("criterion", ["std", "range"])
def test_leaves_tile_odd_non_square_image_and_meet_criterion(criterion):
    rng = np.random.default_rng(0)
    image = rng.normal(0, 1, (37, 53))
    image[5:20, 10:40] += 6.0
    threshold, min_size = (0.8, 2) if criterion == "std" else (2.5, 2)
    tree = quadtree(image, criterion=criterion, threshold=threshold, min_size=min_size)
    _check_tiling(tree, image.shape)
    for (y0, x0, y1, x1), value in zip(tree.leaves, tree.values):
        block = image[y0:y1, x0:x1]
        expected = block.std() if criterion == "std" else np.ptp(block)
        assert value == pytest.approx(expected, rel=1e-6, abs=1e-6)
        at_min = (y1 - y0) <= min_size and (x1 - x0) <= min_size
        assert value <= threshold or at_min


def test_homogeneous_blocks_are_single_leaves():
    image = np.zeros((64, 96), dtype=np.uint16)
    image[:32, :48] = 100
    tree = quadtree(image, criterion="range", threshold=0)
    _check_tiling(tree, image.shape)
    assert len(tree.leaves) == 4 and tree.depth == 1
    assert tree.leaves.tolist()[0] == [0, 0, 32, 48]


def test_std_matches_direct_computation_with_large_offset():
    # A large common offset would ruin a naive sum-of-squares variance.
    rng = np.random.default_rng(1)
    image = 1e6 + rng.normal(0, 0.01, (20, 21))
    tree = quadtree(image, threshold=0.0, min_size=5)
    for (y0, x0, y1, x1), value in zip(tree.leaves, tree.values):
        assert value == pytest.approx(image[y0:y1, x0:x1].std(), rel=1e-4, abs=1e-6)


def test_min_size_limits_leaves_and_threshold_zero_on_noise():
    rng = np.random.default_rng(2)
    image = rng.random((33, 17))
    tree = quadtree(image, threshold=0.0, min_size=1)
    _check_tiling(tree, image.shape)
    assert len(tree.leaves) == image.size  # every pixel its own leaf
    coarse = quadtree(image, threshold=0.0, min_size=4)
    sizes = np.stack([coarse.leaves[:, 2] - coarse.leaves[:, 0],
                      coarse.leaves[:, 3] - coarse.leaves[:, 1]], 1)
    assert sizes.max() <= 4 and sizes.min() >= 2


def test_single_pixel_and_one_row_images():
    assert quadtree(np.array([[3.0]]), threshold=0.0).labels.tolist() == [[1]]
    row = quadtree(np.arange(10.0)[None, :], criterion="range", threshold=1.0)
    _check_tiling(row, (1, 10))
    assert (row.values <= 1.0).all()


@pytest.mark.parametrize(
    ("image", "kwargs", "words"),
    [
        (np.zeros((4, 4, 4)), {"threshold": 1.0}, "2D"),
        (np.array([[np.nan, 1.0]]), {"threshold": 1.0}, "NaN"),
        (np.zeros((4, 4)), {"threshold": -1.0}, "threshold"),
        (np.zeros((4, 4)), {"threshold": 1.0, "min_size": 0}, "min_size"),
        (np.zeros((4, 4)), {"threshold": 1.0, "criterion": "mad"}, "criterion"),
    ],
)
def test_bad_input(image, kwargs, words):
    with pytest.raises(ValueError, match=words):
        quadtree(image, **kwargs)
