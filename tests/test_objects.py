"""Tests of niseg.objects: labelling, watershed split, contours and measurements."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from niseg.objects import (
    class_totals,
    label_objects,
    measure_objects,
    object_contours,
    split_touching,
    write_table_csv,
)


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2


@pytest.mark.parametrize("radius", [8, 15, 25])
def test_watershed_splits_two_touching_discs(radius):
    shape = (4 * radius, 6 * radius)
    c = 2 * radius
    two = _disc(shape, (c, c), radius) | _disc(shape, (c, c + 1.6 * radius), radius)
    assert label_objects(two).max() == 1
    split = label_objects(two, split=True)
    assert split.max() == 2
    # Each half is about one disc's area; nothing is lost.
    sizes = np.bincount(split.ravel())[1:]
    assert sizes.sum() == two.sum()
    assert abs(sizes[0] - sizes[1]) < 0.05 * sizes.mean()


@pytest.mark.parametrize("radius", [6, 15, 30])
def test_watershed_does_not_over_split_a_single_disc(radius):
    disc = _disc((3 * radius, 3 * radius), (1.5 * radius, 1.5 * radius + 0.3), radius)
    assert split_touching(disc).max() == 1
    # An ellipse is one object too.
    yy, xx = np.mgrid[:100, :160]
    ellipse = ((yy - 50) / 20.0) ** 2 + ((xx - 80) / 50.0) ** 2 < 1
    assert split_touching(ellipse, min_distance=5).max() == 1


def test_connectivity_and_classes():
    diagonal = np.eye(4, dtype=np.uint8)
    assert label_objects(diagonal).max() == 1
    assert label_objects(diagonal, connectivity=1).max() == 4
    # Touching regions of different classes stay separate objects.
    mask = np.zeros((4, 6), np.uint8)
    mask[:, :3] = 1
    mask[:, 3:] = 2
    labels = label_objects(mask)
    assert labels.max() == 2
    assert set(np.unique(labels[:, :3])) == {1}


def test_min_size_and_3d():
    vol = np.zeros((10, 10, 10), bool)
    vol[1:4, 1:4, 1:4] = True  # 27 voxels
    vol[6:9, 6:9, 6:8] = True  # 18 voxels
    vol[0, 9, 9] = True
    labels = label_objects(vol)
    assert labels.max() == 3 and labels.dtype == np.int32
    kept = label_objects(vol, min_size=20)
    assert kept.max() == 1 and (kept > 0).sum() == 27
    rows = measure_objects(label_objects(vol, min_size=2), pixel_size=(2.0, 1.0, 1.0))
    assert [r["volume_px"] for r in rows] == [27, 18]
    assert rows[0]["volume_um3"] == 54.0
    assert rows[0]["equivalent_diameter_px"] == pytest.approx((6 * 27 / math.pi) ** (1 / 3))
    assert rows[1]["centroid_z"] == pytest.approx(7.0)
    assert rows[1]["centroid_z_um"] == pytest.approx(14.0)
    assert (rows[1]["bbox_z0"], rows[1]["bbox_z1"], rows[1]["bbox_x1"]) == (6, 9, 8)


def test_rectangle_measurements_by_hand():
    labels = np.zeros((20, 30), np.int32)
    labels[3:8, 4:24] = 1  # 5 x 20, horizontal
    labels[10:19, 2:4] = 2  # 9 x 2, vertical
    image = np.arange(labels.size, dtype=np.float32).reshape(labels.shape)
    rows = measure_objects(labels, image)
    first, second = rows
    assert first["area_px"] == 100
    assert (first["bbox_y0"], first["bbox_y1"], first["bbox_x0"], first["bbox_x1"]) == (3, 8, 4, 24)
    assert (first["centroid_y"], first["centroid_x"]) == (5.0, 13.5)
    assert first["orientation_deg"] == 0.0
    assert second["orientation_deg"] == 90.0
    assert first["mean_intensity"] == pytest.approx(image[3:8, 4:24].mean())
    assert first["max_intensity"] == image[7, 23]
    assert "area_um2" not in first
    # Physical units scale areas by pixel_size ** 2 and lengths by pixel_size.
    scaled = measure_objects(labels, pixel_size=0.5, unit="mm")[0]
    assert scaled["area_mm2"] == 25.0
    assert scaled["equivalent_diameter_mm"] == pytest.approx(0.5 * first["equivalent_diameter_px"])
    assert scaled["centroid_x_mm"] == 6.75


def test_orientation_of_a_diagonal_bar():
    labels = np.zeros((50, 50), np.int32)
    i = np.arange(40)
    labels[i + 5, i + 5] = 1
    labels[i + 5, i + 6] = 1
    # Rows grow downwards, so a bar from top-left to bottom-right is at -45 degrees.
    assert measure_objects(labels)[0]["orientation_deg"] == pytest.approx(-45.0, abs=0.1)
    labels = labels[:, ::-1].copy()
    assert measure_objects(labels)[0]["orientation_deg"] == pytest.approx(45.0, abs=0.1)


def test_equivalent_diameter_of_a_disc_within_two_percent():
    disc = _disc((200, 200), (100, 100), 40)
    row = measure_objects(label_objects(disc))[0]
    assert row["equivalent_diameter_px"] == pytest.approx(80.0, rel=0.02)


def test_class_map_and_totals():
    classes = np.zeros((10, 10), np.uint8)
    classes[:2, :5] = 1
    classes[5:, 5:] = 2
    classes[5:, :2] = 2
    labels = label_objects(classes)
    rows = measure_objects(labels, class_map=classes, class_names=["pore", "grain"],
                           pixel_size=3.0)
    assert [r["class"] for r in rows] == [1, 2, 2]
    assert rows[0]["class_name"] == "pore"
    totals = class_totals(rows, shape=classes.shape, class_names=["pore", "grain"],
                          pixel_size=3.0)
    assert [(t["class"], t["count"], t["area_px"]) for t in totals] == [(1, 1, 10), (2, 2, 35)]
    assert totals[1]["fraction"] == 0.35
    assert totals[1]["area_um2"] == 35 * 9.0
    assert totals[1]["class_name"] == "grain"


def test_contours_enclose_objects():
    labels = np.zeros((12, 12), np.int32)
    labels[0:4, 0:4] = 1  # touches the edge
    labels[6:11, 6:11] = 2
    labels[8, 8] = 0  # a hole
    contours = object_contours(labels)
    assert sorted(contours) == [1, 2]
    outer = contours[1][0]
    assert np.allclose(outer[0], outer[-1])  # closed
    assert outer[:, 0].min() == pytest.approx(-0.5) and outer[:, 0].max() == pytest.approx(3.5)
    assert len(contours[2]) == 2  # outline and hole
    with pytest.raises(ValueError, match="2D"):
        object_contours(np.zeros((2, 3, 3), int))


def test_csv_columns(tmp_path):
    labels = np.zeros((8, 8), np.int32)
    labels[1:3, 1:3] = 1
    labels[5:8, 4:8] = 2
    rows = measure_objects(labels, np.ones((8, 8)), pixel_size=2.0)
    path = write_table_csv(tmp_path / "objects.csv", rows)
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 2
    for column in ("label", "class", "area_px", "area_um2", "equivalent_diameter_um",
                   "centroid_y", "centroid_x", "bbox_y0", "bbox_x1", "orientation_deg",
                   "mean_intensity"):
        assert column in table[0]
    assert float(table[1]["area_um2"]) == 48.0
    with pytest.raises(FileExistsError):
        write_table_csv(path, rows)


def test_bad_inputs():
    with pytest.raises(ValueError, match="connectivity"):
        label_objects(np.ones((3, 3)), connectivity=3)
    with pytest.raises(ValueError, match="negative"):
        label_objects(-np.ones((3, 3)))
    with pytest.raises(ValueError, match="fractional"):
        label_objects(np.full((3, 3), 0.5))
    with pytest.raises(ValueError, match="2D or 3D"):
        label_objects(np.ones(5))
    with pytest.raises(ValueError, match="min_distance"):
        split_touching(np.ones((3, 3)), min_distance=0)
    with pytest.raises(ValueError, match="image has shape"):
        measure_objects(np.ones((3, 3), int), np.ones((3, 4)))
    with pytest.raises(TypeError, match="integer"):
        measure_objects(np.ones((3, 3)))
    with pytest.raises(ValueError, match="pixel_size"):
        measure_objects(np.ones((3, 3), int), pixel_size=(1.0, 2.0, 3.0))
    assert label_objects(np.zeros((4, 4))).max() == 0
    assert measure_objects(np.zeros((4, 4), int)) == []


@pytest.mark.slow
def test_em_mitochondria_mask(shared_data):
    from niseg.io import read_image

    mask, _ = read_image(shared_data / "em_mitochondria" / "em_image_seg.png")
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    assert set(np.unique(mask)) <= {0, 255}
    labels = label_objects(mask)
    rows = measure_objects(labels)
    assert len(rows) > 10
    assert sum(r["area_px"] for r in rows) == np.count_nonzero(mask)
    totals = class_totals(rows, shape=mask.shape)
    assert totals[0]["fraction"] == pytest.approx(np.count_nonzero(mask) / mask.size)
    # Splitting never loses pixels and never merges objects.
    split = label_objects(mask, split=True, min_distance=7)
    assert np.count_nonzero(split) == np.count_nonzero(mask)
    assert split.max() >= labels.max()
