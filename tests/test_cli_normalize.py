"""`niseg normalize`: outputs, metadata, statistics and bad-input paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import assert_user_error, run
from niseg.io import read_image, write_image
from niseg.preprocess import minus_log, normalize
from niseg.simulate import default_phantom, simulate_radiograph

SIZE = 64
PIXEL_UM = 400.0


def _meta(exposure: float | None) -> dict:
    meta = {"axes": "yx", "pixel_size": (PIXEL_UM, PIXEL_UM), "unit": "um"}
    if exposure is not None:
        meta["exposure_time"] = exposure
    return meta


@pytest.fixture
def scan(tmp_path):
    """Sample, three open beams (two matched by a glob) and three dark frames, 10 s each."""
    phantom = default_phantom(seed=0, size_cm=SIZE * PIXEL_UM * 1e-4)
    rng = np.random.default_rng(0)

    def dark():
        return (100.0 + rng.normal(0.0, 3.0, (SIZE, SIZE))).astype(np.float32)

    rad = simulate_radiograph(size=SIZE, counts=1e4, pixel_size_um=PIXEL_UM, phantom=phantom)
    files = {"sample": tmp_path / "sample.tif"}
    data = {"sample": rad.image + dark(), "open": [], "dark": []}
    write_image(files["sample"], data["sample"], _meta(10.0))
    for k, name in enumerate(("ob_1.tif", "ob_2.tif", "extra_ob.tif")):
        frame = simulate_radiograph(size=SIZE, counts=1e4, pixel_size_um=PIXEL_UM,
                                    phantom=phantom, seed=10 + k).open_beam + dark()
        write_image(tmp_path / name, frame, _meta(10.0))
        data["open"].append(frame)
    for k in range(3):
        frame = dark()
        write_image(tmp_path / f"dark_{k}.tif", frame, _meta(10.0))
        data["dark"].append(frame)
    return {"dir": tmp_path, "rad": rad, **data}


def _args(scan, out="t.tif"):
    d = scan["dir"]
    return ["normalize", d / "sample.tif", "-o", d / out, "--open-beam", d / "ob_*.tif",
            "--open-beam", d / "extra_ob.tif", "--dark", d / "dark_*.tif"]


def test_normalize_with_repeated_open_beam_and_glob(scan, capsys):
    d = scan["dir"]
    status, out, err = run(capsys, *_args(scan), "--stats-out", d / "stats.json")
    assert status == 0, err
    result, meta = read_image(d / "t.tif")
    assert result.dtype == np.float32
    expected, _ = normalize(scan["sample"], [np.stack(scan["open"][:2]), scan["open"][2]],
                            scan["dark"])
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    open_region = scan["rad"].truth == 0
    assert float(np.mean(result[open_region])) == pytest.approx(1.0, abs=0.005)
    assert meta["axes"] == "yx" and meta["pixel_size"] == pytest.approx((PIXEL_UM, PIXEL_UM))
    assert meta["quantity"] == "transmission"
    record = meta["normalization"]
    assert record["n_open_beam_frames"] == 3 and record["n_dark_frames"] == 3
    assert record["open_beam"][0].endswith("ob_*.tif") and record["combine"] == "median"
    assert "non-positive" in out and "above 1" in out and "guarded" in out

    stats = json.loads((d / "stats.json").read_text())
    assert stats["exposure_scaling"] == "applied"
    assert stats["exposure"] == {"sample": 10.0, "open_beam": [10.0, 10.0], "dark": [10.0]}
    assert stats["n_pixels"] == SIZE * SIZE and stats["n_guarded"] == 0
    assert 0.2 < stats["fraction_above_one"] < 0.6
    assert stats["scale_factors"]["open_beam_to_sample"] == 1.0
    assert stats["output"].endswith("t.tif") and stats["axes"] == "yx"


def test_log_writes_attenuation(scan, capsys):
    d = scan["dir"]
    assert run(capsys, *_args(scan))[0] == 0
    status, _, err = run(capsys, *_args(scan, "att.tif"), "--log", "--quiet")
    assert status == 0, err
    att, meta = read_image(d / "att.tif")
    np.testing.assert_allclose(att, minus_log(read_image(d / "t.tif")[0]), rtol=1e-6,
                               equal_nan=True)
    assert meta["quantity"] == "attenuation (-ln T)" and meta["normalization"]["log"] is True


def test_exposure_scaling_from_metadata_warns(scan, capsys):
    d = scan["dir"]
    # An open beam over 5 s: half the beam counts, half the 10 s dark signal.
    half = (scan["open"][0] - 100.0) / 2 + 50.0
    write_image(d / "half.tif", half, _meta(5.0))
    status, _, err = run(capsys, "normalize", d / "sample.tif", "-o", d / "t.tif",
                         "--open-beam", d / "half.tif", "--dark", d / "dark_0.tif",
                         "--stats-out", d / "s.json")
    assert status == 0
    assert "warning: sample exposure (10 s) differs from open-beam exposure (5 s)" in err
    stats = json.loads((d / "s.json").read_text())
    assert stats["scale_factors"]["open_beam_to_sample"] == 2.0
    result, _ = read_image(d / "t.tif")
    corner = (slice(0, 6), slice(0, 6))
    assert not scan["rad"].truth[corner].any()
    assert float(np.mean(result[corner])) == pytest.approx(1.0, abs=0.01)


def test_missing_exposure_time_means_no_scaling(scan, capsys):
    d = scan["dir"]
    write_image(d / "plain_ob.tif", scan["open"][0], _meta(None))
    status, _, err = run(capsys, "normalize", d / "sample.tif", "-o", d / "t.tif",
                         "--open-beam", d / "plain_ob.tif", "--stats-out", d / "s.json", "-q")
    assert status == 0 and err == ""
    stats = json.loads((d / "s.json").read_text())
    assert stats["exposure_scaling"].startswith("not applied: no exposure_time")
    assert "plain_ob.tif" in stats["exposure_scaling"] and stats["exposure"] is None


def test_dose_roi(scan, capsys):
    d = scan["dir"]
    brighter = (scan["sample"] - 100.0) * 1.05 + 100.0
    write_image(d / "bright.tif", brighter, _meta(10.0))
    status, _, err = run(capsys, "normalize", d / "bright.tif", "-o", d / "t.tif",
                         "--open-beam", d / "ob_*.tif", "--dark", d / "dark_*.tif",
                         "--dose-roi", "0:6,0:6", "--stats-out", d / "s.json")
    assert status == 0, err
    stats = json.loads((d / "s.json").read_text())
    assert stats["dose_roi"] == [[0, 6], [0, 6]]
    assert stats["dose_factors"] == pytest.approx(1.05, rel=0.01)
    result, _ = read_image(d / "t.tif")
    assert float(np.mean(result[scan["rad"].truth == 0])) == pytest.approx(1.0, abs=0.005)


def test_stack_and_tof_cube_by_axes(tmp_path, capsys):
    rng = np.random.default_rng(1)
    stack = rng.poisson(800, (3, 16, 16)).astype(np.uint16)
    ob = rng.poisson(1000, (2, 16, 16)).astype(np.uint16)
    write_image(tmp_path / "stack.tif", stack, {"axes": "zyx"})
    write_image(tmp_path / "ob.tif", ob, {"axes": "zyx"})
    status, _, err = run(capsys, "normalize", tmp_path / "stack.tif", "-o", tmp_path / "t.tif",
                         "--open-beam", tmp_path / "ob.tif")
    assert_user_error(status, err, "depth axis 'z'", "--axes")
    assert not (tmp_path / "t.tif").exists()
    status, _, err = run(capsys, "normalize", tmp_path / "stack.tif", "-o", tmp_path / "t.tif",
                         "--open-beam", tmp_path / "ob.tif", "--axes", "tyx")
    assert status == 0, err
    result, meta = read_image(tmp_path / "t.tif")
    assert meta["axes"] == "tyx"
    np.testing.assert_allclose(result, normalize(stack, ob, frame_axis=0)[0], rtol=1e-6)

    cube = rng.poisson(np.linspace(200, 900, 5), (16, 16, 5)).astype(np.float32)
    ob_cube = rng.poisson(np.linspace(400, 1800, 5), (16, 16, 5)).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "ob_cube.npy", ob_cube)
    status, _, err = run(capsys, "normalize", tmp_path / "cube.npy", "-o", tmp_path / "c.npy",
                         "--open-beam", tmp_path / "ob_cube.npy", "--axes", "yxl", "-q")
    assert status == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"),
                               normalize(cube, ob_cube, spectral_axis=2)[0], rtol=1e-6)
    assert np.mean(np.load(tmp_path / "c.npy")) == pytest.approx(0.5, abs=0.01)


def test_existing_output_is_refused(scan, capsys):
    d = scan["dir"]
    (d / "t.tif").write_bytes(b"keep me")
    status, _, err = run(capsys, *_args(scan))
    assert_user_error(status, err, "already exists", "--overwrite")
    assert (d / "t.tif").read_bytes() == b"keep me"
    (d / "s.json").write_text("{}")
    status, _, err = run(capsys, *_args(scan, "new.tif"), "--stats-out", d / "s.json")
    assert_user_error(status, err, "s.json", "already exists")
    assert not (d / "new.tif").exists()
    status, _, err = run(capsys, *_args(scan), "--overwrite", "-q")
    assert status == 0 and read_image(d / "t.tif")[0].shape == (SIZE, SIZE)


def _bad(scan, capsys, *args, words=()):
    d = scan["dir"]
    before = {p.name for p in d.iterdir()}
    status, _, err = run(capsys, *args)
    assert_user_error(status, err, *words)
    assert {p.name for p in d.iterdir()} == before  # nothing written, not even half


def test_bad_inputs_give_one_error_line_and_no_output(scan, capsys):
    d = scan["dir"]
    sample, out = d / "sample.tif", d / "t.tif"
    _bad(scan, capsys, "normalize", sample, "-o", out, "--open-beam", d / "dark_*.tif",
         "--dark", d / "ob_*.tif", words=("swapped", "% of pixels"))
    write_image(d / "small.tif", np.ones((8, 8), np.float32))
    _bad(scan, capsys, "normalize", sample, "-o", out, "--open-beam", d / "small.tif",
         words=("(8, 8)", f"({SIZE}, {SIZE})"))
    negative = scan["sample"].copy()
    negative[3, 3] = -5.0
    write_image(d / "negative.tif", negative)
    _bad(scan, capsys, "normalize", d / "negative.tif", "-o", out, "--open-beam",
         d / "ob_1.tif", words=("negative values", "--allow-negative"))
    nan = scan["sample"].copy()
    nan[0, 0] = np.nan
    write_image(d / "nan.tif", nan)
    _bad(scan, capsys, "normalize", d / "nan.tif", "-o", out, "--open-beam", d / "ob_1.tif",
         words=("NaN",))
    write_image(d / "zero_exposure.tif", scan["open"][0], _meta(0.0))
    _bad(scan, capsys, "normalize", sample, "-o", out, "--open-beam", d / "zero_exposure.tif",
         words=("zero_exposure.tif", "exposure_time 0 s"))
    _bad(scan, capsys, "normalize", sample, "-o", out, "--open-beam", d / "ob_1.tif",
         "--dose-roi", "0:500,0:6", words=("reaches outside",))
    _bad(scan, capsys, "normalize", sample, "-o", out, "--open-beam", d / "ob_1.tif",
         "--dose-roi", "0:6", words=("--dose-roi", "y0:y1,x0:x1"))
    _bad(scan, capsys, "normalize", sample, "-o", out, "--open-beam", d / "missing_*.tif",
         words=("missing_*.tif",))
    _bad(scan, capsys, "normalize", sample, "-o", out, "--open-beam", d / "ob_1.tif",
         "--combine", "max", words=("combine",))
    _bad(scan, capsys, "normalize", sample, "-o", d / "t.png", "--open-beam", d / "ob_1.tif",
         words=("t.png", "float32"))
    _bad(scan, capsys, "normalize", sample, "-o", sample, "--open-beam", d / "ob_1.tif",
         "--overwrite", words=("also an input",))
    _bad(scan, capsys, "normalize", sample, "-o", out, words=("--open-beam",))
    assert Path(sample).exists()
