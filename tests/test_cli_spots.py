"""`niseg clean-spots`: default run, extra outputs, stacks, refusals and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_user_error, run
from niseg.io import read_image, write_image
from niseg.preprocess import clean_spots
from niseg.simulate import simulate_spots

META = {"axes": "yx", "pixel_size": (50.0, 50.0), "unit": "um"}


@pytest.fixture(scope="module")
def spotty():
    sim = simulate_spots(size=192, counts=1000.0, seed=3)
    return sim, np.round(sim.raw).astype(np.uint16)


@pytest.fixture
def image_file(tmp_path, spotty):
    path = tmp_path / "raw.tif"
    write_image(path, spotty[1], META)
    return path


def test_default_run_cleans_bright_spots_and_keeps_dtype_and_metadata(tmp_path, image_file,
                                                                      spotty, capsys):
    sim, raw = spotty
    out = tmp_path / "clean.tif"
    status, stdout, _ = run(capsys, "clean-spots", image_file, "-o", out)
    assert status == 0
    assert "wrote" in stdout and "spot pixels" in stdout
    cleaned, meta = read_image(out)
    assert cleaned.dtype == np.uint16
    assert meta["pixel_size"] == (50.0, 50.0) and meta["axes"] == "yx"
    np.testing.assert_array_equal(cleaned, clean_spots(raw))
    truth = sim.mask == 1
    error_before = np.abs(raw.astype(float) - sim.clean)[truth].mean()
    error_after = np.abs(cleaned.astype(float) - sim.clean)[truth].mean()
    assert error_after < 0.1 * error_before
    np.testing.assert_array_equal(read_image(image_file)[0], raw)  # input untouched


def test_spots_out_and_stats_out(tmp_path, image_file, spotty, capsys):
    _, raw = spotty
    out, mask_path, stats_path = tmp_path / "c.tif", tmp_path / "m.tif", tmp_path / "s.json"
    status, _, _ = run(capsys, "clean-spots", image_file, "-o", out, "--polarity", "both",
                       "--spots-out", mask_path, "--stats-out", stats_path, "--quiet")
    assert status == 0
    labels, meta = read_image(mask_path)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2}
    assert meta["pixel_size"] == (50.0, 50.0)
    _, expected = clean_spots(raw, polarity="both", return_mask=True)
    np.testing.assert_array_equal(labels > 0, expected)
    assert (labels == 2).any() and (labels == 1).any()
    stats = json.loads(stats_path.read_text())
    assert stats["method"] == "auto" and stats["polarity"] == "both"
    assert stats["threshold"] == 5.0 and stats["max_area"] == 100
    assert stats["spot_pixels"] == int(expected.sum())
    assert stats["spot_fraction"] == pytest.approx(expected.mean())
    (frame,) = stats["frames"]
    assert frame["bright_pixels"] == int((labels == 1).sum())
    assert frame["dark_pixels"] == int((labels == 2).sum())


def test_stack_is_cleaned_per_frame_and_with_temporal(tmp_path, capsys):
    frames = np.stack([np.round(simulate_spots(size=64, counts=500.0, seed=s).raw)
                       for s in (1, 2, 3)]).astype(np.uint16)
    path = tmp_path / "stack.tif"
    write_image(path, frames, {"axes": "tyx"})
    out, stats_path = tmp_path / "c.tif", tmp_path / "s.json"
    status, _, _ = run(capsys, "clean-spots", path, "-o", out, "--stats-out", stats_path)
    assert status == 0
    cleaned, _ = read_image(out, axes="tyx")
    np.testing.assert_array_equal(cleaned, clean_spots(frames, frame_axis=0))
    stats = json.loads(stats_path.read_text())
    assert [f["frame"] for f in stats["frames"]] == [0, 1, 2]
    out_t = tmp_path / "t.tif"
    status, _, _ = run(capsys, "clean-spots", path, "-o", out_t, "--temporal", "--quiet")
    assert status == 0
    cleaned_t, _ = read_image(out_t, axes="tyx")
    np.testing.assert_array_equal(cleaned_t, clean_spots(frames, frame_axis=0, temporal=True))
    # Stacks whose axes are unknown must say which axis holds the frames.
    bare = tmp_path / "bare.npy"
    np.save(bare, frames)
    status, _, err = run(capsys, "clean-spots", bare, "-o", tmp_path / "x.tif")
    assert_user_error(status, err, "--axes")


def test_other_methods_run_from_the_command_line(tmp_path, image_file, capsys):
    for method, extra in (("baseline", ["--threshold", "60"]), ("knn", ["--seed", "1"]),
                          ("morph", ["--max-area", "80"])):
        out = tmp_path / f"{method}.tif"
        status, _, err = run(capsys, "clean-spots", image_file, "-o", out, "--method", method,
                             *extra, "--quiet")
        assert status == 0, err
        assert read_image(out)[0].dtype == np.uint16


def test_existing_output_is_refused_and_nothing_is_written(tmp_path, image_file, capsys):
    out = tmp_path / "c.tif"
    out.write_bytes(b"keep me")
    stats_path, mask_path = tmp_path / "s.json", tmp_path / "m.tif"
    status, _, err = run(capsys, "clean-spots", image_file, "-o", out, "--stats-out",
                         stats_path, "--spots-out", mask_path)
    assert_user_error(status, err, "already exists")
    assert out.read_bytes() == b"keep me"
    assert not stats_path.exists() and not mask_path.exists()
    status, _, _ = run(capsys, "clean-spots", image_file, "-o", out, "--overwrite", "--quiet")
    assert status == 0 and read_image(out)[0].shape == (192, 192)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--method", "median"], ["method"]),
        (["--polarity", "up"], ["polarity"]),
        (["--size", "-3"], ["size"]),
        (["--size", "4"], ["odd"]),
        (["--method", "baseline"], ["threshold"]),
        (["--threshold", "-2"], ["threshold"]),
        (["--max-area", "0"], ["--max-area"]),
        (["--temporal"], ["--temporal"]),
    ],
)
def test_bad_options_give_one_error_line_and_no_outputs(tmp_path, image_file, capsys, args,
                                                        words):
    out, stats_path = tmp_path / "c.tif", tmp_path / "s.json"
    status, _, err = run(capsys, "clean-spots", image_file, "-o", out, "--stats-out",
                         stats_path, *args)
    assert_user_error(status, err, *words)
    assert not out.exists() and not stats_path.exists()


def test_bad_inputs_give_one_error_line(tmp_path, capsys):
    out = tmp_path / "c.tif"
    status, _, err = run(capsys, "clean-spots", tmp_path / "missing.tif", "-o", out)
    assert_user_error(status, err, "missing.tif")
    nan = np.ones((32, 32), dtype=np.float32)
    nan[3, 3] = np.nan
    nan_path = tmp_path / "nan.tif"
    write_image(nan_path, nan, {"axes": "yx"})
    status, _, err = run(capsys, "clean-spots", nan_path, "-o", out)
    assert_user_error(status, err, "NaN")
    assert not out.exists()
    volume = tmp_path / "vol.npy"
    np.save(volume, np.ones((2, 3, 16, 16), dtype=np.float32))
    status, _, err = run(capsys, "clean-spots", volume, "-o", out)
    assert_user_error(status, err, "clean-spots takes")
    image = tmp_path / "img.tif"
    write_image(image, np.ones((16, 16), dtype=np.uint16), {"axes": "yx"})
    status, _, err = run(capsys, "clean-spots", image, "-o", image)
    assert_user_error(status, err, "input")
    status, _, err = run(capsys, "clean-spots", image, "-o", out, "--spots-out", out)
    assert_user_error(status, err, "twice")


def test_help_explains_the_dtype_rule(capsys):
    status, out, _ = run(capsys, "clean-spots", "--help")
    assert status == 0
    text = " ".join(out.split())
    assert "uint16" in text and "--spots-out" in text and "--temporal" in text
