"""`niseg simulate KIND`: every kind writes its images and exact truth, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from cli_helpers import run
from niseg.io import read_image


def test_radiograph_with_dark_spots_and_xray(tmp_path, capsys):
    out = tmp_path / "r"
    status, _, err = run(capsys, "simulate", "radiograph", "-o", out, "--size", "64",
                         "--dark-current", "50", "--spots", "--exposure", "2", "--quiet")
    assert status == 0, err
    image, meta = read_image(out / "image.tif")
    mask, mask_meta = read_image(out / "spot_mask.tif")
    free, _ = read_image(out / "spot_free.tif")
    dark, _ = read_image(out / "dark.tif")
    assert meta["exposure_time"] == 2.0
    assert mask_meta["classes"] == ["bright", "dark"]
    assert mask.any()
    changed = image != free
    np.testing.assert_array_equal(changed, mask > 0)  # spots are exactly the marked pixels
    assert 30 < float(dark.mean()) < 70

    status, _, _ = run(capsys, "simulate", "radiograph", "-o", tmp_path / "x", "--size", "64",
                       "--radiation", "xray", "--energy", "80", "--quiet")
    assert status == 0
    xray, xmeta = read_image(tmp_path / "x" / "image.tif")
    assert xmeta["energy_kev"] == 80.0 and xray.shape == (64, 64)

    status, _, err = run(capsys, "simulate", "radiograph", "-o", tmp_path / "y",
                         "--radiation", "xray")
    assert status == 2 and err.startswith("error: ") and "energy" in err
    assert not (tmp_path / "y").exists()


def test_spots_kind(tmp_path, capsys):
    status, _, err = run(capsys, "simulate", "spots", "-o", tmp_path, "--size", "64", "--quiet")
    assert status == 0, err
    raw, _ = read_image(tmp_path / "raw.tif")
    clean, _ = read_image(tmp_path / "clean.tif")
    mask, _ = read_image(tmp_path / "spot_mask.tif")
    np.testing.assert_array_equal(raw != clean, mask > 0)


def test_tomography_volume_and_projections(tmp_path, capsys):
    status, _, err = run(capsys, "simulate", "tomography", "-o", tmp_path / "v",
                         "--shape", "8,32,32", "--quiet")
    assert status == 0, err
    volume, meta = read_image(tmp_path / "v" / "volume.tif")
    truth, _ = read_image(tmp_path / "v" / "truth.tif")
    assert volume.shape == truth.shape == (8, 32, 32) and meta["axes"] == "zyx"
    assert truth.max() >= 1

    status, _, err = run(capsys, "simulate", "tomography", "-o", tmp_path / "p",
                         "--shape", "4,32,32", "--mode", "projections", "--angles", "20",
                         "--quiet")
    assert status == 0, err
    projections, pmeta = read_image(tmp_path / "p" / "projections.tif")
    assert projections.shape == (20, 4, 32) and pmeta["axes"] == "tyx"
    assert len(pmeta["angles_deg"]) == 20

    status, _, err = run(capsys, "simulate", "tomography", "-o", tmp_path / "bad",
                         "--shape", "4,x,32")
    assert status == 2 and "--shape" in err


def test_roots_2d_and_3d(tmp_path, capsys):
    status, _, err = run(capsys, "simulate", "roots", "-o", tmp_path / "a", "--shape", "96",
                         "--counts", "2000", "--quiet")
    assert status == 0, err
    roots, _ = read_image(tmp_path / "a" / "roots.tif")
    truth, meta = read_image(tmp_path / "a" / "truth.tif")
    assert roots.shape == (96, 96) and meta["classes"] == ["soil", "root"]
    np.testing.assert_array_equal(roots == 1, truth == 2)
    assert 0 < roots.mean() < 0.02
    assert (tmp_path / "a" / "open_beam.tif").exists()

    status, _, err = run(capsys, "simulate", "roots", "-o", tmp_path / "b",
                         "--shape", "16,48,48", "--quiet")
    assert status == 0, err
    image, meta = read_image(tmp_path / "b" / "image.tif")
    assert image.shape == (16, 48, 48) and meta["axes"] == "zyx"


def test_tof_cube_pages_are_wavelength_bins(tmp_path, capsys):
    status, _, err = run(capsys, "simulate", "tof", "-o", tmp_path, "--size", "32",
                         "--bins", "40", "--quiet", "--seed", "2")
    assert status == 0, err
    sample, meta = read_image(tmp_path / "sample.tif")
    transmission, _ = read_image(tmp_path / "transmission.tif")
    truth, _ = read_image(tmp_path / "truth.tif")
    assert sample.shape == transmission.shape == (40, 32, 32)
    assert meta["axes"] == "lyx" and len(meta["wavelengths"]) == 40
    assert np.all(np.diff(meta["wavelengths"]) > 0)
    assert truth.shape == (32, 32) and truth.max() == 3


@pytest.mark.parametrize("kind", ["radiograph", "spots", "tomography", "roots", "tof"])
def test_existing_outputs_refused_before_writing(tmp_path, capsys, kind):
    existing = "raw.tif" if kind == "spots" else "truth.tif"
    (tmp_path / existing).write_bytes(b"keep")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    extra = {"tomography": ["--shape", "4,32,32"], "roots": ["--shape", "48"]}.get(
        kind, ["--size", "32"]
    )
    status, _, err = run(capsys, "simulate", kind, "-o", tmp_path, *extra)
    assert status == 2 and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
