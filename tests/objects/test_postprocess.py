"""Post-processing of label images: small objects, largest component, holes."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.objects import (
    fill_class_holes,
    keep_largest_region,
    postprocess,
    remove_small_regions,
)


def _grid(text: str) -> np.ndarray:
    return np.array([[int(c) for c in row] for row in text.split()], dtype=np.uint8)


def test_small_binary_objects_become_background():
    labels = _grid("""
        11000000
        11000010
        00000000
        00111000
        00111000
        00111001
    """)
    expected = _grid("""
        11000000
        11000000
        00000000
        00111000
        00111000
        00111000
    """)
    out = remove_small_regions(labels, 4)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.uint8
    # The input is not modified.
    assert labels[1, 6] == 1


def test_connectivity_decides_what_an_object_is():
    labels = _grid("""
        1000
        0100
        0010
        0000
    """)
    np.testing.assert_array_equal(remove_small_regions(labels, 3), labels)
    np.testing.assert_array_equal(remove_small_regions(labels, 3, connectivity=1),
                                  np.zeros_like(labels))


def test_multiclass_small_objects_take_the_surrounding_class():
    labels = _grid("""
        111111
        121111
        111133
        111133
        222233
        222233
    """)
    expected = _grid("""
        111111
        111111
        111133
        111133
        222233
        222233
    """)
    np.testing.assert_array_equal(postprocess(labels, min_size=2), expected)
    # Only the listed classes are cleaned.
    np.testing.assert_array_equal(postprocess(labels, min_size=2, classes=[3]), labels)


def test_removed_neighbours_do_not_vote():
    labels = _grid("""
        11111
        12311
        11111
    """)
    # The 2 and the 3 are both removed: each takes class 1, never the other's class.
    np.testing.assert_array_equal(postprocess(labels, min_size=2), np.ones_like(labels))


def test_keep_largest_per_class():
    labels = _grid("""
        1100022
        1100000
        0001100
        2200000
        2200000
    """)
    expected = _grid("""
        1100000
        1100000
        0000000
        2200000
        2200000
    """)
    np.testing.assert_array_equal(keep_largest_region(labels), expected)


def test_fill_holes_binary_and_multiclass():
    mask = _grid("""
        00000000
        01111100
        01001100
        01111100
        00000010
        00000101
        00000010
    """)
    expected = mask.copy()
    expected[2, 2:4] = 1
    # With full connectivity the diagonal ring at the bottom right encloses its centre too.
    expected[5, 6] = 1
    np.testing.assert_array_equal(fill_class_holes(mask), expected)
    faces = fill_class_holes(mask, connectivity=1)
    assert faces[2, 2] == 1 and faces[5, 6] == 0

    labels = _grid("""
        11111
        12221
        12021
        12221
        11111
    """)
    # The inclusion of class 2 in class 1 is kept; the 0 hole in class 2 is filled.
    filled = fill_class_holes(labels)
    expected = labels.copy()
    expected[2, 2] = 2
    np.testing.assert_array_equal(filled, expected)
    # Asking for class 1 alone fills everything it encloses.
    np.testing.assert_array_equal(fill_class_holes(labels, classes=[1]), np.ones_like(labels))


def test_all_steps_in_3d():
    labels = np.zeros((7, 9, 9), np.uint8)
    labels[1:5, 1:6, 1:6] = 1
    labels[2:4, 3, 3] = 0  # an internal cavity
    labels[6, 8, 0] = 1  # a speck
    labels[0, 8, 7:9] = 1  # a larger speck, removed as not the largest
    out = postprocess(labels, min_size=2, keep_largest=True, fill_holes=True)
    expected = np.zeros_like(labels)
    expected[1:5, 1:6, 1:6] = 1
    np.testing.assert_array_equal(out, expected)
    assert postprocess(labels.astype(bool), keep_largest=True).dtype == np.uint8


def test_bad_arguments():
    with pytest.raises(ValueError, match="min_size"):
        postprocess(np.zeros((4, 4), np.uint8), min_size=-1)
    with pytest.raises(ValueError, match="connectivity"):
        postprocess(np.zeros((4, 4), np.uint8), connectivity=3)
    with pytest.raises(ValueError, match="classes"):
        postprocess(np.zeros((4, 4), np.uint8), classes=[0])
    with pytest.raises(ValueError, match="2D or 3D"):
        postprocess(np.zeros(4, np.uint8))
