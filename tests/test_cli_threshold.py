"""`niseg threshold`: methods, outputs, levels reuse, figures and user errors."""

from __future__ import annotations

import json

import numpy as np

from cli_helpers import assert_user_error, files_in, run
from niseg.io import read_image, write_image


def _image(tmp_path, name="image.tif", seed=0, dark=False, pixel_size=None):
    rng = np.random.default_rng(seed)
    image = rng.normal(0.2, 0.03, (64, 64)).astype(np.float32)
    image[16:40, 16:40] += 0.6
    if dark:
        image = 1.0 - image
    meta = {"axes": "yx"}
    if pixel_size:
        meta.update(pixel_size=(pixel_size, pixel_size), unit="um")
    path = tmp_path / name
    write_image(path, image, meta)
    return path, image


def test_otsu_writes_labels_and_stats(tmp_path, capsys):
    path, _ = _image(tmp_path, pixel_size=2.0)
    status, out, err = run(capsys, "threshold", path, "-o", tmp_path / "labels.tif",
                           "--stats-out", tmp_path / "stats.json")
    assert status == 0, err
    assert "otsu" in out
    labels, meta = read_image(tmp_path / "labels.tif")
    assert labels.dtype == np.uint8
    assert int(labels[16:40, 16:40].sum()) == 24 * 24 and int(labels.sum()) == 24 * 24
    assert meta["classes"] == ["background", "foreground"]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["method"] == "otsu" and len(stats["levels"]) == 1
    assert 0.25 < stats["levels"][0] < 0.8
    fg = stats["class_stats"][1]
    assert fg["pixels"] == 576 and fg["fraction"] == 576 / 4096
    assert fg["area"] == 576 * 4.0 and fg["area_unit"] == "um^2"


def test_dark_foreground_and_manual(tmp_path, capsys):
    path, image = _image(tmp_path, dark=True)
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "a.tif",
                         "--foreground", "dark", "--quiet")
    assert status == 0, err
    labels, _ = read_image(tmp_path / "a.tif")
    assert int(labels[16:40, 16:40].sum()) == 576 and int(labels.sum()) == 576
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "b.tif", "--method",
                         "manual", "--value", "0.5", "--foreground", "dark", "-q")
    assert status == 0
    np.testing.assert_array_equal(read_image(tmp_path / "b.tif")[0], (image < 0.5))


def test_multiotsu_hysteresis_local_results(tmp_path, capsys):
    path, _ = _image(tmp_path)
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "m.tif", "--method",
                         "multiotsu", "--classes", "3", "--guard-edges", "-q")
    assert status == 0, err
    labels, meta = read_image(tmp_path / "m.tif")
    assert set(np.unique(labels)) <= {1, 2, 3} and len(meta["classes"]) == 3
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "h.tif", "--method",
                         "hysteresis", "--low", "0.4", "--high", "0.7", "-q")
    assert status == 0, err
    assert int(read_image(tmp_path / "h.tif")[0].sum()) == 576
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "l.tif", "--method",
                         "local", "--block-size", "51", "--offset", "-0.1", "-q")
    assert status == 0, err
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "r.tif", "--method",
                         "results", "--object-size", "400:800", "--stats-out",
                         tmp_path / "r.json", "-q")
    assert status == 0, err
    assert int(read_image(tmp_path / "r.tif")[0].sum()) == 576
    assert json.loads((tmp_path / "r.json").read_text())["object_size"] == [400, 800]


def test_clean_up_and_background(tmp_path, capsys):
    path, _ = _image(tmp_path)
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "c.tif", "--fill-holes",
                         "--min-size", "10", "--opening", "1", "--closing", "1",
                         "--background", "30", "--background-mode", "subtract",
                         "--stats-out", tmp_path / "c.json", "-q")
    assert status == 0, err
    stats = json.loads((tmp_path / "c.json").read_text())
    assert stats["background"]["mode"] == "subtract" and stats["opening"] == 1


def test_levels_from_reuses_levels(tmp_path, capsys):
    first, _ = _image(tmp_path, "first.tif", seed=1)
    second, image2 = _image(tmp_path, "second.tif", seed=2)
    run(capsys, "threshold", first, "-o", tmp_path / "a.tif", "--method", "li",
        "--stats-out", tmp_path / "a.json", "-q")
    status, _, err = run(capsys, "threshold", second, "-o", tmp_path / "b.tif",
                         "--levels-from", tmp_path / "a.json", "--stats-out",
                         tmp_path / "b.json", "-q")
    assert status == 0, err
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["levels"] == a["levels"] and b["method"] == "li"
    np.testing.assert_array_equal(read_image(tmp_path / "b.tif")[0],
                                  image2 > a["levels"][0])
    status, _, err = run(capsys, "threshold", second, "-o", tmp_path / "c.tif",
                         "--levels-from", tmp_path / "a.json", "--method", "otsu")
    assert_user_error(status, err, "--method", "--levels-from")


def test_try_all_figure(tmp_path, capsys):
    path, _ = _image(tmp_path)
    status, out, err = run(capsys, "threshold", path, "--try-all", "--figure",
                           tmp_path / "all.png", "--stats-out", tmp_path / "all.json")
    assert status == 0, err
    assert (tmp_path / "all.png").stat().st_size > 1000
    stats = json.loads((tmp_path / "all.json").read_text())
    assert set(stats["try_all"]) >= {"otsu", "li", "yen", "intermodes", "triangle"}
    assert "otsu:" in out
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "x.tif", "--figure",
                         tmp_path / "x.png", "-q")
    assert status == 0 and (tmp_path / "x.png").exists()


def test_user_errors(tmp_path, capsys):
    path, _ = _image(tmp_path)
    const = tmp_path / "const.tif"
    write_image(const, np.ones((16, 16), np.float32))
    status, _, err = run(capsys, "threshold", const, "-o", tmp_path / "o.tif")
    assert_user_error(status, err, "constant")
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((8, 8), np.nan, np.float32))
    status, _, err = run(capsys, "threshold", nan, "-o", tmp_path / "o.tif")
    assert_user_error(status, err, "no finite values")
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "o.tif", "--method",
                         "multiotsu", "--classes", "5000")
    assert_user_error(status, err, "classes")
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "o.tif", "--method",
                         "manual")
    assert_user_error(status, err, "value")
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "o.tif", "--method",
                         "magic")
    assert_user_error(status, err, "method")
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "o.tif", "--method",
                         "results", "--object-size", "big")
    assert_user_error(status, err, "--object-size")
    status, _, err = run(capsys, "threshold", path)
    assert_user_error(status, err, "--out")
    bad = tmp_path / "bad.json"
    bad.write_text('{"method": "otsu"}')
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "o.tif", "--levels-from",
                         bad)
    assert_user_error(status, err, "levels")
    assert "o.tif" not in files_in(tmp_path)
    (tmp_path / "exists.tif").write_bytes(b"x")
    status, _, err = run(capsys, "threshold", path, "-o", tmp_path / "o.tif", "--stats-out",
                         tmp_path / "exists.tif")
    assert status == 2 and "o.tif" not in files_in(tmp_path)
