"""Tests of `niseg label` and `niseg measure`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from cli_helpers import assert_user_error, files_in, run
from niseg.io import read_image, write_image


def _two_discs(radius=12):
    yy, xx = np.mgrid[: 4 * radius, : 7 * radius]
    c = 2 * radius
    two = ((yy - c) ** 2 + (xx - c) ** 2 < radius**2) | (
        (yy - c) ** 2 + (xx - c - 1.6 * radius) ** 2 < radius**2)
    return two.astype(np.uint8)


@pytest.fixture
def mask_file(tmp_path):
    path = tmp_path / "mask.tif"
    write_image(path, _two_discs(), {"axes": "yx", "pixel_size": (2.0, 2.0), "unit": "um"})
    return path


def test_label_split_and_measure(tmp_path, capsys, mask_file):
    status, out, _ = run(capsys, "label", mask_file, "-o", tmp_path / "plain.tif")
    assert status == 0 and "1 objects" in out
    status, out, err = run(capsys, "label", mask_file, "-o", tmp_path / "labels.tif", "--split",
                           "--stats-out", tmp_path / "label.json", "--figure",
                           tmp_path / "objects.png")
    assert status == 0, err
    assert "2 objects" in out
    labels, meta = read_image(tmp_path / "labels.tif")
    assert labels.dtype == np.uint16 and labels.max() == 2
    assert tuple(meta["pixel_size"]) == (2.0, 2.0)
    stats = json.loads((tmp_path / "label.json").read_text())
    assert stats["objects"] == 2 and stats["split"] is True
    assert stats["classes"][0]["area_px"] == int(_two_discs().sum())
    assert stats["classes"][0]["area_um2"] == 4.0 * int(_two_discs().sum())
    assert (tmp_path / "objects.png").read_bytes()[:4] == b"\x89PNG"

    # measure takes the pixel size from the metadata
    status, out, err = run(capsys, "measure", tmp_path / "labels.tif", "-o",
                           tmp_path / "objects.csv", "--totals-out", tmp_path / "totals.csv",
                           "--stats-out", tmp_path / "measure.json", "--image", mask_file)
    assert status == 0, err
    assert "2 objects" in out
    with open(tmp_path / "objects.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert float(rows[0]["area_um2"]) == 4.0 * float(rows[0]["area_px"])
    assert float(rows[0]["mean_intensity"]) == 1.0
    with open(tmp_path / "totals.csv", newline="") as handle:
        totals = list(csv.DictReader(handle))
    assert totals[0]["count"] == "2"
    stats = json.loads((tmp_path / "measure.json").read_text())
    assert stats["unit"] == "um" and len(stats["rows"]) == 2


def test_measure_pixel_size_option_and_class_map(tmp_path, capsys):
    classes = np.zeros((10, 12), np.uint8)
    classes[1:4, 1:5] = 1
    classes[6:9, 6:11] = 2
    write_image(tmp_path / "classes.npy", classes)
    assert run(capsys, "label", tmp_path / "classes.npy", "-o", tmp_path / "labels.npy")[0] == 0
    status, out, err = run(capsys, "measure", tmp_path / "labels.npy", "-o", tmp_path / "t.csv",
                           "--class-map", tmp_path / "classes.npy", "--pixel-size", "0.5",
                           "--unit", "mm", "--quiet")
    assert status == 0, err
    assert out == ""
    with open(tmp_path / "t.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["class"] for r in rows] == ["1", "2"]
    assert float(rows[1]["area_mm2"]) == 15 * 0.25


def test_label_3d_with_connectivity(tmp_path, capsys):
    vol = np.zeros((6, 6, 6), np.uint8)
    vol[1, 1, 1] = vol[2, 2, 2] = 1  # touch only by a corner
    np.save(tmp_path / "vol.npy", vol)
    status, out, _ = run(capsys, "label", tmp_path / "vol.npy", "--axes", "zyx", "-o",
                         tmp_path / "a.npy", "--connectivity", "1")
    assert status == 0 and "2 objects" in out
    status, out, _ = run(capsys, "label", tmp_path / "vol.npy", "--axes", "zyx", "-o",
                         tmp_path / "b.npy")
    assert status == 0 and "1 objects" in out


def test_user_errors_write_nothing(tmp_path, capsys, mask_file):
    before = files_in(tmp_path)
    status, _, err = run(capsys, "label", mask_file, "-o", tmp_path / "l.tif",
                         "--connectivity", "5", "--stats-out", tmp_path / "s.json")
    assert_user_error(status, err, "connectivity")
    assert files_in(tmp_path) == before
    status, _, err = run(capsys, "label", mask_file, "-o", mask_file, "--overwrite")
    assert_user_error(status, err, "input")
    status, _, err = run(capsys, "measure", mask_file, "-o", tmp_path / "t.csv",
                         "--pixel-size", "abc")
    assert_user_error(status, err, "--pixel-size")
    np.save(tmp_path / "float.npy", np.full((4, 4), 0.5, np.float32))
    status, _, err = run(capsys, "measure", tmp_path / "float.npy", "-o", tmp_path / "t.csv")
    assert_user_error(status, err, "dtype")
    status, _, err = run(capsys, "measure", mask_file, "-o", tmp_path / "t.csv", "--image",
                         tmp_path / "missing.tif")
    assert_user_error(status, err, "missing.tif")
    (tmp_path / "exists.csv").write_text("x")
    status, _, err = run(capsys, "measure", mask_file, "-o", tmp_path / "exists.csv")
    assert_user_error(status, err, "exists.csv")
    assert (tmp_path / "exists.csv").read_text() == "x"
    assert files_in(tmp_path) == before | {"float.npy", "exists.csv"}


def test_objects_figure_numbers_objects():
    from niseg.report import objects_figure

    labels = np.zeros((40, 40), np.int32)
    labels[2:10, 2:10] = 1
    labels[20:30, 5:35] = 2
    labels[33:38, 33:38] = 3
    fig = objects_figure(labels > 0, labels, title="three")
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3"]
    assert len(ax.lines) == 3 and ax.get_title() == "three"
    with pytest.raises(ValueError, match="labels has shape"):
        objects_figure(np.zeros((4, 4)), np.zeros((4, 5), int))
