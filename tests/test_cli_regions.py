"""Tests of `niseg superpixels`, `niseg quadtree` and `niseg mrf`."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from cli_helpers import assert_user_error, files_in, run
from niseg.io import read_image, write_image
from niseg.metrics import dice
from niseg.simulate import porous_volume


@pytest.fixture
def noisy(tmp_path):
    labels, _ = porous_volume((80, 90), porosity=0.4, grain_radius=(5.0, 8.0), saturation=0.0,
                              seed=2)
    truth = (labels == 1).astype(np.uint8)
    rng = np.random.default_rng(2)
    image = (1000 + 400.0 * truth + rng.normal(0, 240, truth.shape)).astype(np.float32)
    path = tmp_path / "noisy.tif"
    write_image(path, image, {"axes": "yx", "pixel_size": (2.0, 2.0), "unit": "um"})
    return path, truth, image


def test_superpixels_writes_all_outputs(capsys, tmp_path, noisy):
    path, truth, _ = noisy
    status, out, err = run(
        capsys, "superpixels", path, "-o", tmp_path / "seg.tif", "--n-segments", 200,
        "--compactness", 0.3, "--superpixels-out", tmp_path / "sp.tif", "--mean-out",
        tmp_path / "mean.tif", "--stats-out", tmp_path / "stats.json", "--figure",
        tmp_path / "fig.png")
    assert status == 0, err
    assert "superpixels in 2 classes" in out
    seg, meta = read_image(tmp_path / "seg.tif")
    assert seg.dtype == np.uint8 and set(np.unique(seg)) == {1, 2}
    assert meta["classes"] == ["class 1", "class 2"]
    assert dice(truth, seg == 2) > 0.85
    sp, _ = read_image(tmp_path / "sp.tif")
    mean, _ = read_image(tmp_path / "mean.tif")
    for s in np.unique(sp)[::9]:
        assert np.ptp(mean[sp == s]) == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["n_segments"] == 200 and len(stats["levels"]) == 1
    counts = [c["pixel_count"] for c in stats["per_class"]]
    assert sum(counts) == seg.size and counts[1] == int(np.count_nonzero(seg == 2))
    assert stats["per_class"][0]["area"] == pytest.approx(counts[0] * 4.0)
    assert stats["per_class"][0]["area_unit"] == "um^2"
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"


def test_superpixels_kmeans_three_classes(capsys, tmp_path, noisy):
    path, _, _ = noisy
    status, _, err = run(capsys, "superpixels", path, "-o", tmp_path / "seg.npy", "--classes",
                         3, "--method", "kmeans", "--quiet")
    assert status == 0, err
    assert set(np.unique(np.load(tmp_path / "seg.npy"))) == {1, 2, 3}


def test_quadtree_leaves_and_outputs(capsys, tmp_path, noisy):
    path, _, image = noisy
    status, out, err = run(
        capsys, "quadtree", path, "-o", tmp_path / "leaves.tif", "--threshold", 300,
        "--min-size", 3, "--mean-out", tmp_path / "mean.tif", "--stats-out",
        tmp_path / "stats.json", "--figure", tmp_path / "fig.png")
    assert status == 0, err
    leaves, _ = read_image(tmp_path / "leaves.tif")
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert leaves.min() == 1 and leaves.max() == stats["leaves"] > 4
    assert f"{stats['leaves']} leaves" in out
    for leaf in np.unique(leaves)[::11]:
        ys, xs = np.nonzero(leaves == leaf)
        block = image[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        assert block.size == ys.size  # a leaf is a full rectangle
        assert block.std() <= 300 + 1e-3 or max(block.shape) <= 3
    assert "fig.png" in files_in(tmp_path)


def test_mrf_beats_initial_threshold(capsys, tmp_path, noisy):
    path, truth, _ = noisy
    status, out, err = run(
        capsys, "mrf", path, "-o", tmp_path / "mrf.tif", "--beta", 1.0, "--initial-out",
        tmp_path / "start.tif", "--stats-out", tmp_path / "stats.json", "--figure",
        tmp_path / "fig.png", "--connectivity", 2)
    assert status == 0, err
    result, _ = read_image(tmp_path / "mrf.tif")
    start, _ = read_image(tmp_path / "start.tif")
    assert dice(truth, result == 2) > dice(truth, start == 2) + 0.05
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["changed_from_initial"] == int(np.count_nonzero(result != start)) > 0
    assert stats["energy"][-1] <= stats["energy"][0]
    assert stats["means"][0] == pytest.approx(1000, abs=60)
    assert "sweeps" in out


def test_mrf_graphcut_needs_pymaxflow_or_works(capsys, tmp_path, noisy):
    path, truth, _ = noisy
    status, _, err = run(capsys, "mrf", path, "-o", tmp_path / "gc.tif", "--optimizer",
                         "graphcut", "--quiet")
    if importlib.util.find_spec("maxflow") is None:
        assert_user_error(status, err, "PyMaxflow")
        assert "gc.tif" not in files_in(tmp_path)
    else:
        assert status == 0, err
        assert dice(truth, read_image(tmp_path / "gc.tif")[0] == 2) > 0.85


def test_existing_output_is_refused_before_any_work(capsys, tmp_path, noisy):
    path, _, _ = noisy
    (tmp_path / "stats.json").write_text("{}")
    status, _, err = run(capsys, "mrf", path, "-o", tmp_path / "new.tif", "--stats-out",
                         tmp_path / "stats.json")
    assert_user_error(status, err, "stats.json")
    assert "new.tif" not in files_in(tmp_path)
    status, _, err = run(capsys, "superpixels", path, "-o", path, "--overwrite")
    assert_user_error(status, err, "input")


@pytest.mark.parametrize(
    ("command", "extra", "words"),
    [
        ("mrf", ["--classes", "1"], "classes"),
        ("mrf", ["--beta", "-2"], "beta"),
        ("superpixels", ["--method", "median"], "method"),
        ("quadtree", ["--threshold", "1", "--criterion", "mad"], "criterion"),
    ],
)
def test_bad_options(capsys, tmp_path, noisy, command, extra, words):
    path, _, _ = noisy
    status, _, err = run(capsys, command, path, "-o", tmp_path / "out.tif", *extra)
    assert_user_error(status, err, words)
    assert "out.tif" not in files_in(tmp_path)


def test_constant_and_3d_inputs(capsys, tmp_path):
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones((20, 20), dtype=np.float32))
    for command in ("mrf", "superpixels"):
        status, _, err = run(capsys, command, flat, "-o", tmp_path / f"{command}.tif")
        assert_user_error(status, err, "constant")
    volume = tmp_path / "vol.npy"
    rng = np.random.default_rng(0)
    np.save(volume, (rng.random((6, 20, 20)) + (np.arange(20) > 9)).astype(np.float32))
    status, _, err = run(capsys, "quadtree", volume, "-o", tmp_path / "q.tif", "--threshold",
                         1, "--axes", "zyx")
    assert_user_error(status, err, "2D")
    status, _, err = run(capsys, "mrf", volume, "-o", tmp_path / "m.tif", "--axes", "zyx",
                         "--connectivity", 3, "--figure", tmp_path / "m.png", "--quiet")
    assert status == 0, err
    labels, meta = read_image(tmp_path / "m.tif")
    assert labels.shape == (6, 20, 20) and meta["axes"] == "zyx"
    assert np.mean(labels == 1 + (np.arange(20) > 9)) > 0.95
