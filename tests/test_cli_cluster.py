"""`niseg cluster`: outputs, stats, figure, valid mask, refusals and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_user_error, files_in, run
from niseg.cluster import cluster_pixels
from niseg.io import read_image, write_image

META = {"axes": "yx", "pixel_size": (50.0, 50.0), "unit": "um"}


@pytest.fixture
def pair(tmp_path):
    """Two co-registered images with three classes, numbered by the first image."""
    rng = np.random.default_rng(0)
    truth = np.repeat([1, 2, 3], 16 * 48 // 3).reshape(16, 48)
    first = np.array([10.0, 20.0, 50.0])[truth - 1] + rng.normal(0, 1, truth.shape)
    second = np.array([5.0, 40.0, 40.0])[truth - 1] + rng.normal(0, 1, truth.shape)
    paths = tmp_path / "a.tif", tmp_path / "b.tif"
    write_image(paths[0], first.astype(np.float32), META)
    write_image(paths[1], second.astype(np.float32), META)
    return paths, truth, (first.astype(np.float32), second.astype(np.float32))


def test_cluster_two_images_writes_labels_stats_and_figure(tmp_path, pair, capsys):
    (a, b), truth, arrays = pair
    out, stats, fig = tmp_path / "labels.tif", tmp_path / "s.json", tmp_path / "fig.png"
    status, stdout, _ = run(capsys, "cluster", a, b, "-o", out, "--classes", "3",
                            "--stats-out", stats, "--figure", fig, "--seed", "1")
    assert status == 0 and "3 clusters" in stdout
    labels, meta = read_image(out)
    assert labels.dtype == np.uint8 and meta["pixel_size"] == (50.0, 50.0)
    assert meta["classes"] == ["cluster 1", "cluster 2", "cluster 3"]
    expected, _ = cluster_pixels(list(arrays), classes=3, seed=1, spacing=(50.0, 50.0))
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(labels, truth)
    data = json.loads(stats.read_text())
    assert data["classes"] == 3 and data["model"] == "kmeans" and data["criterion"] is None
    first = data["per_class"][0]
    assert first["pixel_count"] == 256 and first["area"] == pytest.approx(256 * 2500.0)
    assert first["area_unit"] == "um^2"
    assert first["centre"]["image 2 intensity"] == pytest.approx(5.0, abs=0.3)
    assert fig.read_bytes()[:4] == b"\x89PNG"


def test_auto_and_gmm_report_the_choice(tmp_path, pair, capsys):
    (a, b), truth, _ = pair
    out, stats = tmp_path / "l.tif", tmp_path / "s.json"
    status, stdout, _ = run(capsys, "cluster", a, b, "-o", out, "--classes", "auto",
                            "--model", "gmm", "--max-classes", "5", "--stats-out", stats)
    assert status == 0 and "chosen by bic, lowest" in stdout
    data = json.loads(stats.read_text())
    assert data["classes"] == 3 and set(data["scores"]) == {"2", "3", "4", "5"}
    np.testing.assert_array_equal(read_image(out)[0], truth)


def test_valid_mask_features_and_position(tmp_path, pair, capsys):
    (a, _), truth, _ = pair
    mask_path = tmp_path / "mask.tif"
    mask = np.ones(truth.shape, np.uint8)
    mask[:, :4] = 0
    write_image(mask_path, mask, META)
    out, stats = tmp_path / "l.tif", tmp_path / "s.json"
    status, _, _ = run(capsys, "cluster", a, "-o", out, "--classes", "2", "--valid-mask",
                       mask_path, "--features", "intensity,gaussian", "--sigmas", "1,2",
                       "--position-weight", "0.5", "--stats-out", stats, "--quiet")
    assert status == 0
    labels = read_image(out)[0]
    assert np.all(labels[:, :4] == 0) and np.all(labels[:, 4:] > 0)
    names = json.loads(stats.read_text())["feature_names"]
    assert names == ["image 1 intensity", "image 1 gaussian s=1", "image 1 gaussian s=2",
                     "position y", "position x"]


def test_refuses_existing_output_before_any_work(tmp_path, pair, capsys):
    (a, b), _, _ = pair
    out, stats = tmp_path / "l.tif", tmp_path / "s.json"
    stats.write_text("{}")
    before = files_in(tmp_path)
    status, _, err = run(capsys, "cluster", a, b, "-o", out, "--classes", "3",
                         "--stats-out", stats)
    assert_user_error(status, err, "s.json")
    assert files_in(tmp_path) == before and stats.read_text() == "{}"
    status, _, err = run(capsys, "cluster", a, "-o", a, "--classes", "2")
    assert_user_error(status, err, "input")


@pytest.mark.parametrize(("args", "words"), [
    (["--classes", "5000"], ["classes", "between 2 and 255"]),
    (["--classes", "lots"], ["--classes", "auto"]),
    (["--model", "dbscan"], ["model", "kmeans, gmm"]),
    (["--features", "sobel"], ["unknown filter 'sobel'"]),
    (["--sigmas", "1,x"], ["--sigmas"]),
])
def test_bad_options(tmp_path, pair, capsys, args, words):
    (a, _), _, _ = pair
    status, _, err = run(capsys, "cluster", a, "-o", tmp_path / "l.tif", *args)
    assert_user_error(status, err, *words)
    assert not (tmp_path / "l.tif").exists()


def test_bad_inputs(tmp_path, pair, capsys):
    (a, _), _, _ = pair
    small = tmp_path / "small.tif"
    write_image(small, np.zeros((4, 4), np.float32), META)
    status, _, err = run(capsys, "cluster", a, small, "-o", tmp_path / "l.tif", "--classes", "2")
    assert_user_error(status, err, "small.tif", "co-registered")
    status, _, err = run(capsys, "cluster", small, "-o", tmp_path / "l.tif", "--classes", "2")
    assert_user_error(status, err, "constant")
    nan = tmp_path / "nan.tif"
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    image[0, 0] = np.nan
    write_image(nan, image, META)
    status, _, err = run(capsys, "cluster", nan, "-o", tmp_path / "l.tif", "--classes", "2")
    assert_user_error(status, err, "NaN", "valid_mask")
    status, _, err = run(capsys, "cluster", small, "-o", tmp_path / "l.tif", "--classes", "20")
    assert_user_error(status, err, "classes=20", "valid pixels (16)")
    assert not (tmp_path / "l.tif").exists()
