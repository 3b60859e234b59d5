import numpy as np
import pytest
from scipy import ndimage

from niseg.simulate import brush_strokes, porous_volume, simulate_radiograph


@pytest.fixture(scope="module")
def radiograph_truth():
    return simulate_radiograph(size=256, seed=0).truth


def test_strokes_stay_inside_their_class(radiograph_truth):
    truth = radiograph_truth
    for width in (1, 3, 6):
        labels = brush_strokes(truth, fraction=0.03, width=width, seed=1)
        assert labels.dtype == np.uint8 and labels.shape == truth.shape
        for value in np.unique(truth):
            marked = labels == value + 1
            assert marked.any(), (width, value)
            assert np.all(truth[marked] == value)  # zero pixels outside the class


def test_strokes_keep_clear_of_the_class_border():
    truth = np.zeros((80, 80), dtype=np.uint8)
    truth[20:60, 20:60] = 1
    labels = brush_strokes(truth, fraction=0.05, width=5, seed=0)
    # the brush (radius 2) runs where the class eroded by 2 remains
    inner = ndimage.binary_erosion(truth == 1, np.ones((3, 3)), iterations=1)
    assert np.all(inner[labels == 2])
    outer = ndimage.binary_erosion(truth == 0, np.ones((3, 3)), iterations=1, border_value=1)
    assert np.all(outer[labels == 1])


def test_each_class_gets_its_fraction(radiograph_truth):
    truth = radiograph_truth
    for fraction in (0.01, 0.05):
        labels = brush_strokes(truth, fraction=fraction, width=3, seed=2)
        for value in np.unique(truth):
            area = np.sum(truth == value)
            covered = np.sum(labels == value + 1) / area
            # stops as soon as the fraction is reached: at most one brush footprint more
            assert fraction <= covered <= fraction + 9 / area + 1e-9, (value, covered)


def test_equal_allocation_gives_every_class_the_same_share():
    truth = np.zeros((200, 200), dtype=np.uint8)
    truth[40:80, 40:80] = 1                 # 4 % of the image
    truth[100:180, 20:180] = 2              # 32 %
    fraction = 0.03
    share = fraction * truth.size / 3       # 400 pixels per class
    labels = brush_strokes(truth, fraction=fraction, width=3, seed=0, allocation="equal")
    counts = [int(np.sum(labels == v + 1)) for v in (0, 1, 2)]
    for value, count in zip((0, 1, 2), counts):
        assert share <= count <= share + 9, (value, counts)  # at most one footprint more
        assert np.all(truth[labels == value + 1] == value)
    # "area" gives the small class a tenth of what it gives the background
    area = brush_strokes(truth, fraction=fraction, width=3, seed=0)
    assert np.sum(area == 2) < 0.2 * np.sum(area == 1)
    # the small class is drawn as several strokes, not one
    _, strokes = ndimage.label(labels == 2, structure=np.ones((3, 3)))
    assert strokes >= 2


def test_equal_allocation_caps_a_small_class_at_its_size():
    truth = np.zeros((60, 60), dtype=np.uint8)
    truth[10:14, 10:14] = 1                 # 16 pixels, far below its share of 540
    labels = brush_strokes(truth, fraction=0.3, width=1, seed=0, allocation="equal")
    assert 1 <= np.sum(labels == 2) <= 16
    assert np.all(truth[labels == 2] == 1)
    assert 540 <= np.sum(labels == 1) <= 541


def test_equal_allocation_in_a_volume_is_per_annotated_slice():
    truth = np.zeros((32, 64, 64), dtype=np.uint8)
    truth[:, 8:24, 8:24] = 1
    labels = brush_strokes(truth, fraction=0.02, width=3, seed=1, allocation="equal")
    slices = [z for z in range(32) if labels[z].any()]
    assert len(slices) == 3
    share = 0.02 * 64 * 64 / 2
    for z in slices:
        for value in (0, 1):
            assert share <= np.sum(labels[z] == value + 1) <= share + 9


def test_strokes_are_a_few_connected_curves(radiograph_truth):
    truth = radiograph_truth
    labels = brush_strokes(truth, fraction=0.02, width=3, seed=3)
    background = labels == 1
    pieces, count = ndimage.label(background, structure=np.ones((3, 3)))
    assert 1 <= count <= 8
    # long and thin, not blobs: each stroke is much longer than it is wide
    for k in range(1, count + 1):
        ys, xs = np.nonzero(pieces == k)
        extent = max(np.ptp(ys), np.ptp(xs)) + 1
        if (pieces == k).sum() > 60:
            assert extent > 8


def test_max_strokes_limits_the_strokes():
    truth = np.zeros((128, 128), dtype=np.uint8)
    labels = brush_strokes(truth, fraction=0.5, width=3, seed=0, max_strokes=2)
    _, count = ndimage.label(labels == 1, structure=np.ones((3, 3)))
    assert 1 <= count <= 2
    assert np.sum(labels == 1) < 0.5 * truth.size


def test_same_seed_same_strokes(radiograph_truth):
    a = brush_strokes(radiograph_truth, seed=5)
    b = brush_strokes(radiograph_truth, seed=5)
    c = brush_strokes(radiograph_truth, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_tiny_classes_still_get_a_label():
    truth = np.zeros((40, 40), dtype=np.uint8)
    truth[10, 10:13] = 1                    # a 3-pixel line
    truth[30, 30] = 2                       # a single pixel
    truth[20:22, 5:7] = 3                   # 2 x 2
    labels = brush_strokes(truth, fraction=0.02, width=5, seed=0)
    for value in (1, 2, 3):
        marked = labels == value + 1
        assert marked.sum() >= 1
        assert np.all(truth[marked] == value)


def test_zero_is_class_and_classes_choose_the_mapping():
    truth = np.zeros((64, 64), dtype=np.uint8)
    truth[8:56, 8:30] = 1
    truth[8:56, 34:56] = 3
    default = brush_strokes(truth, seed=0)
    assert set(np.unique(default).tolist()) == {0, 1, 2, 4}
    no_zero = brush_strokes(truth, seed=0, zero_is_class=False)
    assert set(np.unique(no_zero).tolist()) == {0, 1, 3}
    assert np.all(truth[no_zero == 3] == 3)
    only_three = brush_strokes(truth, seed=0, classes=[3, 7])  # 7 is absent: no strokes
    assert set(np.unique(only_three).tolist()) == {0, 4}


def test_large_label_values_give_uint16():
    truth = np.zeros((32, 32), dtype=np.uint16)
    truth[:, 16:] = 300
    labels = brush_strokes(truth, width=1, seed=0)
    assert labels.dtype == np.uint16
    assert set(np.unique(labels).tolist()) == {0, 1, 301}


def test_bool_truth_is_two_classes():
    truth = np.zeros((32, 32), dtype=bool)
    truth[8:24, 8:24] = True
    labels = brush_strokes(truth, width=1, seed=0)
    assert set(np.unique(labels).tolist()) == {0, 1, 2}


def test_volume_strokes_are_on_a_few_slices_and_cover_every_class():
    truth, _ = porous_volume((48, 48, 48), grain_radius=3.0, saturation=0.3, seed=0)
    truth = truth.copy()
    truth[5, 40:44, 40:44] = 5  # a class seen on one slice only
    labels = brush_strokes(truth, fraction=0.05, width=3, seed=0)
    assert labels.shape == truth.shape
    slices = [z for z in range(48) if labels[z].any()]
    assert 3 <= len(slices) <= 5 and 5 in slices
    for value in (0, 1, 2, 5):
        marked = labels == value + 1
        assert marked.any()
        assert np.all(truth[marked] == value)
    # the fraction is measured on the annotated slices
    for value in (0, 1, 2):
        area = np.sum(truth[slices] == value)
        assert np.sum(labels == value + 1) / area == pytest.approx(0.05, abs=0.01)
    picked = brush_strokes(truth, n_slices=8, seed=0)
    assert len([z for z in range(48) if picked[z].any()]) >= 8


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"truth": [[0, 1]]}, TypeError, "truth must be a NumPy array"),
    ({"truth": np.zeros((4, 4), np.float32)}, TypeError, "truth must hold integer class labels"),
    ({"truth": np.zeros(16, np.uint8)}, ValueError, r"2D \(M, N\) or 3D \(P, M, N\)"),
    ({"truth": np.full((4, 4), -1, np.int8)}, ValueError, "non-negative"),
    ({"fraction": 0.0}, ValueError, r"fraction must be a number in \(0, 1\]"),
    ({"fraction": 2}, ValueError, "fraction must be a number"),
    ({"width": 0}, ValueError, "width must be an integer of at least 1"),
    ({"width": 2.5}, TypeError, "width must be an integer"),
    ({"max_strokes": 0}, ValueError, "max_strokes must be an integer of at least 1"),
    ({"classes": [1.5]}, ValueError, "classes must hold non-negative integer truth values"),
    ({"classes": "1"}, TypeError, "classes must be a sequence"),
    ({"classes": [0], "zero_is_class": False}, ValueError, "classes contains 0"),
    ({"zero_is_class": 1}, TypeError, "zero_is_class must be True or False"),
    ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
    ({"allocation": "balanced"}, ValueError, "allocation must be 'area' or 'equal'"),
    ({"allocation": None}, ValueError, "allocation must be 'area' or 'equal'"),
])
def test_bad_arguments(kwargs, error, message):
    args = {"truth": np.zeros((16, 16), np.uint8), **kwargs}
    truth = args.pop("truth")
    with pytest.raises(error, match=message):
        brush_strokes(truth, **args)


def test_a_huge_unused_truth_value_costs_no_memory():
    truth = np.zeros((40, 40), dtype=np.int64)
    truth[10:30, 10:30] = 1
    truth[0, 0] = 2**40  # a value far beyond any label, not drawn
    labels = brush_strokes(truth, fraction=0.05, seed=0, classes=[1], allocation="equal")
    assert 80 <= np.count_nonzero(labels == 2) <= 89  # the one class drawn takes the whole 5 %
    assert set(np.unique(labels).tolist()) == {0, 2}
