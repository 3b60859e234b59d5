"""The niseg command line: every command, its outputs and its bad-input paths."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cli_helpers import assert_user_error, files_in, run
from niseg.io import read_image, write_image
from niseg.models import read_model_info

# -------------------------------------------------------------------------------- basics


def test_version_and_help(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.startswith("niseg ")
    for command in ("info", "convert", "evaluate", "demo", "simulate"):
        status, out, _ = run(capsys, command, "--help")
        assert status == 0
        assert "--help" in out
    status, out, _ = run(capsys, "simulate", "radiograph", "--help")
    assert status == 0 and "--counts" in out and "--seed" in out


def test_unknown_command_and_missing_option_are_user_errors(capsys):
    status, _, err = run(capsys, "no-such-command")
    assert_user_error(status, err, "no-such-command")
    status, _, err = run(capsys, "convert", "a.tif")
    assert_user_error(status, err, "--out")


def test_console_script_prints_one_line_without_traceback(tmp_path):
    exe = Path(sys.executable).with_name("niseg")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "niseg.cli"]
    result = subprocess.run(
        [*command, "info", str(tmp_path / "missing.tif")], capture_output=True, text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "missing.tif" in result.stderr
    debug = subprocess.run(
        [*command, "--debug", "info", str(tmp_path / "missing.tif")], capture_output=True, text=True,
        check=False,
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


# -------------------------------------------------------------------------------- info


def test_info_json_for_an_image(tmp_path, capsys):
    image = np.arange(12, dtype=np.uint16).reshape(3, 4)
    path = tmp_path / "a.tif"
    write_image(path, image, {"axes": "yx", "pixel_size": (50.0, 50.0), "unit": "um"})
    status, out, _ = run(capsys, "info", path, "--json")
    assert status == 0
    data = json.loads(out)
    assert data["shape"] == [3, 4]
    assert data["dtype"] == "uint16"
    assert data["min"] == 0 and data["max"] == 11
    assert data["axes"] == "yx"
    assert data["metadata"]["pixel_size"] == [50.0, 50.0]


def test_info_text_and_axes_override(tmp_path, capsys):
    np.save(tmp_path / "cube.npy", np.zeros((4, 5, 6), np.float32))
    status, out, _ = run(capsys, "info", tmp_path / "cube.npy")
    assert status == 0 and "guessed" in out
    status, out, _ = run(capsys, "info", tmp_path / "cube.npy", "--axes", "yxl", "--json")
    assert json.loads(out)["axes"] == "yxl"


def test_info_for_a_model(tmp_path, capsys):
    from niseg.models import save_model
    from niseg.threshold import ThresholdSegmenter

    model = ThresholdSegmenter().fit(np.random.default_rng(0).random((16, 16)))
    save_model(model, tmp_path / "m.niseg")
    status, out, _ = run(capsys, "info", tmp_path / "m.niseg", "--json")
    assert status == 0
    assert json.loads(out)["kind"] == "smoothed-threshold"


def test_info_bad_inputs(tmp_path, capsys):
    status, _, err = run(capsys, "info", tmp_path / "missing.tif")
    assert_user_error(status, err, "missing.tif")

    good = tmp_path / "good.tif"
    tifffile.imwrite(good, np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    status, _, err = run(capsys, "info", corrupt)
    assert_user_error(status, err, "corrupt.tif")

    (tmp_path / "notes.xyz").write_text("hello")
    status, _, err = run(capsys, "info", tmp_path / "notes.xyz")
    assert_user_error(status, err, "notes.xyz")

    (tmp_path / "bad.niseg").write_bytes(b"not a zip")
    status, _, err = run(capsys, "info", tmp_path / "bad.niseg")
    assert_user_error(status, err, "bad.niseg")


# -------------------------------------------------------------------------------- convert


def test_convert_keeps_values_and_metadata(tmp_path, capsys):
    image = np.random.default_rng(1).random((20, 30)).astype(np.float32)
    src = tmp_path / "in.tif"
    write_image(src, image, {"axes": "yx", "pixel_size": (10.0, 10.0), "unit": "um", "exposure_time": 2.5})
    status, _, err = run(capsys, "convert", src, "-o", tmp_path / "out.fits")
    assert status == 0, err
    back, meta = read_image(tmp_path / "out.fits")
    np.testing.assert_array_equal(back, image)
    assert meta["exposure_time"] == 2.5
    assert meta["pixel_size"] == pytest.approx((10.0, 10.0))


def test_convert_refuses_lossy_without_rescale(tmp_path, capsys):
    image = np.linspace(0, 1, 200, dtype=np.float32).reshape(10, 20)
    src = tmp_path / "in.tif"
    write_image(src, image)
    before = src.read_bytes()
    status, _, err = run(capsys, "convert", src, "-o", tmp_path / "out.png")
    assert_user_error(status, err, "--rescale", "float32")
    assert files_in(tmp_path) == {"in.tif"}
    assert src.read_bytes() == before

    status, _, err = run(capsys, "convert", src, "-o", tmp_path / "out.png", "--rescale")
    assert status == 0, err
    back, _ = read_image(tmp_path / "out.png")
    assert back.dtype == np.uint16
    assert back.min() == 0 and back.max() == np.iinfo(np.uint16).max
    assert np.all(np.diff(back.ravel().astype(np.int64)) >= 0)  # order kept


def test_convert_warns_when_metadata_is_dropped(tmp_path, capsys):
    src = tmp_path / "in.tif"
    write_image(src, np.ones((8, 8), np.uint8), {"axes": "yx", "pixel_size": (5.0, 5.0), "unit": "um"})
    status, _, err = run(capsys, "convert", src, "-o", tmp_path / "out.png")
    assert status == 0
    assert "warning:" in err and "pixel_size" in err
    status, _, err = run(capsys, "convert", src, "-o", tmp_path / "out2.png", "--quiet")
    assert status == 0 and err == ""


def test_convert_refuses_existing_output(tmp_path, capsys):
    src = tmp_path / "in.tif"
    write_image(src, np.ones((8, 8), np.uint8))
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    status, _, err = run(capsys, "convert", src, "-o", out)
    assert_user_error(status, err, "out.tif", "--overwrite")
    assert out.read_bytes() == b"precious"
    status, _, _ = run(capsys, "convert", src, "-o", out, "--overwrite", "--quiet")
    assert status == 0
    np.testing.assert_array_equal(read_image(out)[0], np.ones((8, 8), np.uint8))


# -------------------------------------------------------------------------------- evaluate


def _binary_pair(tmp_path):
    truth = np.zeros((40, 40), np.uint8)
    truth[10:30, 10:30] = 1
    pred = np.zeros_like(truth)
    pred[15:30, 10:30] = 1  # 300 of 400 foreground pixels found, no false positives
    write_image(tmp_path / "truth.tif", truth)
    write_image(tmp_path / "pred.tif", pred)
    return truth, pred


def test_evaluate_json(tmp_path, capsys):
    _binary_pair(tmp_path)
    status, out, _ = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif", "--json")
    assert status == 0
    data = json.loads(out)
    assert data["dice"] == pytest.approx(2 * 300 / (400 + 300))
    assert data["iou"] == pytest.approx(300 / 400)
    assert data["precision"] == pytest.approx(1.0)
    assert data["recall"] == pytest.approx(0.75)
    assert data["accuracy"] == pytest.approx(1 - 100 / 1600)
    assert data["confusion"] == [[1200, 0], [100, 300]]


def test_evaluate_text_roi_ignore_and_proba(tmp_path, capsys):
    truth, _ = _binary_pair(tmp_path)
    status, out, _ = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif")
    assert status == 0 and "dice" in out and "confusion" in out

    status, out, _ = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif",
                         "--json", "--roi", "15:40,0:40")
    assert json.loads(out)["dice"] == pytest.approx(1.0)

    labelled = truth.astype(np.uint8) + 1  # 1 = background, 2 = object
    labelled[:5] = 0  # unlabelled rows
    write_image(tmp_path / "sparse.tif", labelled)
    status, out, _ = run(capsys, "evaluate", tmp_path / "sparse.tif", tmp_path / "sparse.tif",
                         "--json", "--ignore", "0")
    data = json.loads(out)
    assert data["accuracy"] == pytest.approx(1.0)
    assert sum(map(sum, data["confusion"])) == 35 * 40

    proba = np.where(truth > 0, 0.9, 0.1).astype(np.float32)
    write_image(tmp_path / "proba.tif", proba)
    status, out, _ = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif",
                         "--json", "--proba", tmp_path / "proba.tif")
    assert json.loads(out)["roc_auc"] == pytest.approx(1.0)


def test_evaluate_foreground_value(tmp_path, capsys):
    truth = np.zeros((10, 10), np.uint8)
    truth[:5] = 255
    write_image(tmp_path / "t.png", truth)
    status, out, _ = run(capsys, "evaluate", tmp_path / "t.png", tmp_path / "t.png",
                         "--json", "--foreground", "255")
    assert status == 0 and json.loads(out)["dice"] == pytest.approx(1.0)


def test_evaluate_bad_inputs(tmp_path, capsys):
    _binary_pair(tmp_path)
    write_image(tmp_path / "small.tif", np.zeros((40, 39), np.uint8))
    status, _, err = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "small.tif")
    assert_user_error(status, err, "(40, 39)", "(40, 40)")
    status, _, err = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "nope.tif")
    assert_user_error(status, err, "nope.tif")
    status, _, err = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif",
                         "--roi", "1:2")
    assert_user_error(status, err, "--roi")
    nan = np.full((40, 40), np.nan, np.float32)
    write_image(tmp_path / "nan.tif", nan)
    status, _, err = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif",
                         "--proba", tmp_path / "nan.tif")
    assert_user_error(status, err, "NaN")


# -------------------------------------------------------------------------------- simulate


def test_simulate_radiograph_writes_images_and_truth(tmp_path, capsys):
    out = tmp_path / "sim"
    status, _, err = run(capsys, "simulate", "radiograph", "-o", out, "--seed", "3",
                         "--size", "64", "--counts", "500", "--quiet")
    assert status == 0, err
    assert {"image.tif", "truth.tif", "open_beam.tif"} <= files_in(out)
    image, meta = read_image(out / "image.tif")
    truth, truth_meta = read_image(out / "truth.tif")
    assert image.shape == truth.shape == (64, 64)
    assert image.dtype == np.float32
    assert truth.max() >= 1 and len(truth_meta["classes"]) >= truth.max()
    assert meta["axes"] == "yx" and len(meta["pixel_size"]) == 2

    # Same seed, same images; existing outputs are refused without --overwrite.
    status, _, err = run(capsys, "simulate", "radiograph", "-o", out, "--seed", "3",
                         "--size", "64", "--counts", "500")
    assert_user_error(status, err, "--overwrite")
    status, _, _ = run(capsys, "simulate", "radiograph", "-o", tmp_path / "again", "--seed", "3",
                       "--size", "64", "--counts", "500", "--quiet")
    np.testing.assert_array_equal(read_image(tmp_path / "again" / "image.tif")[0], image)


def test_simulate_rejects_bad_arguments(tmp_path, capsys):
    status, _, err = run(capsys, "simulate", "radiograph", "-o", tmp_path / "s", "--counts", "-5")
    assert_user_error(status, err, "counts")
    assert not (tmp_path / "s").exists()


# -------------------------------------------------------------------------------- demo


@pytest.mark.slow  # the whole demo, 35 s: part of the full suite
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    status, stdout, err = run(capsys, "demo", "-o", out)
    assert status == 0, err
    assert "Dice" in stdout
    expected = {"raw.tif", "transmission.tif", "cleaned.tif", "spots.tif", "truth.tif",
                "result.tif", "proba.tif", "model.niseg", "metrics.json", "pipeline.png",
                "overview.png", "report.html"}
    assert expected <= files_in(out)
    metrics = json.loads((out / "metrics.json").read_text())
    trained = metrics["segmentation"]
    assert trained["dice"] > 0.9
    assert trained["dice"] > metrics["otsu"]["dice"]
    # the model is chosen on the training image only, and the choice is the better candidate
    chosen = metrics["model"]["chosen"]
    validation = metrics["model"]["validation_dice"]
    assert set(validation) == set(metrics["candidates"]) == {"trained threshold",
                                                             "pixel classifier"}
    assert validation[chosen] == max(validation.values())
    assert metrics["candidates"][chosen] == trained
    # on these radiographs the classifier wins, on validation and on the unseen test image
    assert chosen == "pixel classifier"
    assert trained["dice"] > metrics["candidates"]["trained threshold"]["dice"] + 0.02
    assert read_model_info(out / "model.niseg")["kind"] == "pixel-classifier"
    # spots are found against the simulator's exact spot mask
    assert metrics["spots"]["precision"] > 0.9 and metrics["spots"]["recall"] > 0.9
    assert metrics["normalization"]["n_open_beam_frames"] == 5
    cleaned, _ = read_image(out / "cleaned.tif")
    raw, raw_meta = read_image(out / "raw.tif")
    assert cleaned.dtype == np.float32 and cleaned.shape == raw.shape
    assert raw_meta["axes"] == "yx"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html
    assert not [p for p in out.iterdir() if ".partial" in p.name]
    # The demo ends with the model run as a recipe over a series, reported with its truth.
    assert "batch report: " in stdout
    batch = out / "batch"
    assert {"recipe.yaml", "measurements.json", "radiograph_1.tif", "report.html"} <= files_in(
        batch)
    assert files_in(out / "series") == {"radiograph_1.tif", "radiograph_2.tif",
                                        "radiograph_3.tif"}
    batch_result, _ = read_image(batch / "radiograph_1.tif")
    assert np.array_equal(batch_result, read_image(out / "result.tif")[0])
    page = (batch / "report.html").read_text()
    HTMLParser().feed(page)
    for heading in ("Recipe", "Model", "Inputs and segmentations", "Measurements per file",
                    "Confusion matrix", "ROC curve"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<img ") == 3 + 3  # thumbnails; histograms, confusion matrix, ROC
    assert "http://" not in page and "https://" not in page
    dices = [float(d) for d in re.findall(r"<figcaption>radiograph_\d \(Dice ([0-9.]+)\)", page)]
    assert len(dices) == 3 and min(dices) > 0.98

    # A second run refuses to replace the first one's outputs, and leaves them untouched.
    before = (out / "metrics.json").read_bytes()
    status, _, err = run(capsys, "demo", "-o", out, "--quiet")
    assert_user_error(status, err, "--overwrite")
    assert (out / "metrics.json").read_bytes() == before
    status, stdout, err = run(capsys, "demo", "-o", out, "--quiet", "--overwrite")
    assert status == 0 and stdout == "" and err == ""


def test_evaluate_binary_folds_a_material_map(tmp_path, capsys):
    truth = np.zeros((20, 20), np.uint8)
    truth[2:8, 2:8] = 1  # 36 px of material 1
    truth[10:18, 10:18] = 3  # 64 px of material 3
    pred = (truth > 0).astype(np.uint8)
    pred[2:4, 2:8] = 0  # miss 12 px
    write_image(tmp_path / "truth.tif", truth)
    write_image(tmp_path / "pred.tif", pred)
    status, out, _ = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif",
                         "--json", "--binary")
    assert status == 0
    data = json.loads(out)
    assert data["recall"] == pytest.approx(88 / 100)
    assert data["precision"] == pytest.approx(1.0)
    assert data["confusion"] == [[300, 0], [12, 88]]
    status, _, err = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif",
                         "--binary", "--foreground", "1")
    assert_user_error(status, err, "--binary")


def test_evaluate_pred_foreground_scores_a_stroke_model_against_a_mask(tmp_path, capsys):
    truth = np.zeros((20, 20), np.uint8)
    truth[5:15, 5:15] = 255  # 100 px object in a 0/255 mask
    pred = np.ones((20, 20), np.uint8)  # a strokes model: 1 = background, 2 = object
    pred[5:15, 5:13] = 2  # finds 80 of the 100 px
    pred[0, 0] = 2  # and one false positive
    write_image(tmp_path / "truth.tif", truth)
    write_image(tmp_path / "pred.tif", pred)
    status, out, err = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif",
                           "--json", "--pred-foreground", "2")
    assert status == 0, err
    data = json.loads(out)
    assert data["confusion"] == [[299, 1], [20, 80]]
    assert data["dice"] == pytest.approx(2 * 80 / (100 + 81))
    # the truth's foreground can be named too, and ignored truth pixels stay out
    status, out, _ = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif",
                         "--json", "--pred-foreground", "2", "--foreground", "255",
                         "--ignore", "0")
    assert json.loads(out)["confusion"] == [[0, 0], [20, 80]]
    status, _, err = run(capsys, "evaluate", tmp_path / "truth.tif", tmp_path / "pred.tif",
                         "--binary", "--pred-foreground", "2")
    assert_user_error(status, err, "--binary")
