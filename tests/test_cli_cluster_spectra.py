"""Tests of `niseg cluster-spectra`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from cli_helpers import assert_user_error, files_in, run
from niseg.io import read_image, write_image
from niseg.metrics import adjusted_rand_index
from niseg.simulate import simulate_tof


@pytest.fixture(scope="module")
def tof_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tof")
    tof = simulate_tof(shape=(48, 48), n_bins=100, counts=20, seed=0)
    cube = (tof.sample / tof.open_beam.mean(axis=(0, 1))).astype(np.float32)
    np.save(folder / "cube_yxl.npy", cube)
    meta = {"axes": "lyx", "wavelengths": tof.wavelengths.tolist(), "tof": tof.tof.tolist(),
            "pixel_size": [55.0, 55.0], "unit": "um"}
    write_image(folder / "cube.tif", np.moveaxis(cube, -1, 0), meta)
    return folder, tof


def test_writes_labels_spectra_figure_and_stats(tof_files, capsys, tmp_path):
    folder, tof = tof_files
    out = tmp_path / "labels.tif"
    status, stdout, err = run(
        capsys, "cluster-spectra", folder / "cube.tif", "-o", out, "--classes", 4,
        "--spectra-out", tmp_path / "spectra.csv", "--figure", tmp_path / "fig.png",
        "--stats-out", tmp_path / "stats.json", "--quiet")
    assert status == 0, err
    assert stdout == "" and err == ""
    labels, meta = read_image(out)
    assert labels.shape == (48, 48) and meta["axes"] == "yx"
    assert meta["classes"] == ["cluster 1", "cluster 2", "cluster 3", "cluster 4"]
    assert adjusted_rand_index(tof.truth, labels) >= 0.9
    with open(tmp_path / "spectra.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["wavelength_angstrom", "cluster_1", "cluster_2", "cluster_3",
                       "cluster_4"]
    assert len(rows) == 101
    np.testing.assert_allclose([float(r[0]) for r in rows[1:]], tof.wavelengths, rtol=1e-5)
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["wavelength_source"] == "metadata"
    assert sum(c["pixels"] for c in stats["per_class"]) == 48 * 48
    first = stats["per_class"][0]
    assert first["area"] == pytest.approx(first["pixels"] * 55.0 * 55.0)
    assert first["area_unit"] == "um^2"
    assert np.allclose(np.diag(stats["centroid_correlation"]), 1.0)


def test_npy_needs_axes_and_flight_path_gives_wavelengths(tof_files, capsys, tmp_path):
    folder, tof = tof_files
    status, _, err = run(capsys, "cluster-spectra", folder / "cube_yxl.npy",
                         "-o", tmp_path / "a.tif", "--classes", 4)
    assert_user_error(status, err, "wavelength axis", "--axes yxl")
    assert files_in(tmp_path) == set()
    status, _, err = run(capsys, "cluster-spectra", folder / "cube_yxl.npy", "--axes", "yxl",
                         "-o", tmp_path / "a.tif", "--classes", 4, "--range", "2:5")
    assert_user_error(status, err, "--range needs the bin wavelengths", "--bins")
    status, _, err = run(capsys, "cluster-spectra", folder / "cube.tif", "-o",
                         tmp_path / "b.tif", "--classes", 4, "--flight-path", 20,
                         "--range", "2:5", "--rebin", 2, "--stats-out", tmp_path / "s.json",
                         "--quiet")
    assert status == 0, err
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["wavelength_source"] == "flight path"
    assert 2.0 <= stats["wavelengths_used"][0] < stats["wavelengths_used"][1] <= 5.0
    assert stats["rebin"] == 2
    labels, _ = read_image(tmp_path / "b.tif")
    assert adjusted_rand_index(tof.truth, labels) >= 0.9
    (tmp_path / "lam.txt").write_text("\n".join(f"{w:.6f}" for w in tof.wavelengths))
    status, stdout, err = run(capsys, "cluster-spectra", folder / "cube_yxl.npy", "--axes",
                              "yxl", "-o", tmp_path / "c.tif", "--classes", 4, "--bins",
                              "0:50", "--smooth", 0, "--components", 0, "--wavelengths",
                              tmp_path / "lam.txt", "--spectra-out", tmp_path / "c.csv")
    assert status == 0, err
    assert "4 clusters" in stdout
    first_column = np.loadtxt(tmp_path / "c.csv", delimiter=",", skiprows=1)[:, 0]
    np.testing.assert_allclose(first_column, tof.wavelengths[:50], rtol=1e-5)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--range", "2-5"], ["--range", "start:stop"]),
        (["--range", "8:9"], ["holds no bin"]),
        (["--classes", 5000], ["classes is 5000"]),
        (["--wavelengths", "missing.txt"], ["cannot read", "missing.txt"]),
        (["--figure", "fig.jpg"], ["--figure", ".png"]),
        (["--components", -1], ["--components"]),
    ],
)
def test_user_errors(tof_files, capsys, tmp_path, monkeypatch, extra, words):
    folder, _ = tof_files
    monkeypatch.chdir(tmp_path)
    args = ["cluster-spectra", folder / "cube.tif", "-o", "out.tif", "--classes", 4, *extra]
    if "--classes" in [str(e) for e in extra]:
        args = ["cluster-spectra", folder / "cube.tif", "-o", "out.tif", *extra]
    status, _, err = run(capsys, *args)
    assert_user_error(status, err, *words)
    assert "out.tif" not in files_in(tmp_path)


def test_existing_output_is_kept_and_2d_input_refused(tof_files, capsys, tmp_path):
    folder, _ = tof_files
    out = tmp_path / "labels.tif"
    out.write_bytes(b"keep")
    status, _, err = run(capsys, "cluster-spectra", folder / "cube.tif", "-o", out,
                         "--classes", 2)
    assert_user_error(status, err, "labels.tif")
    assert out.read_bytes() == b"keep"
    write_image(tmp_path / "flat.tif", np.ones((16, 16), np.float32))
    status, _, err = run(capsys, "cluster-spectra", tmp_path / "flat.tif", "-o",
                         tmp_path / "x.tif", "--classes", 2)
    assert_user_error(status, err, "without a wavelength axis")


def test_sample_and_open_beam_from_simulate_tof(capsys, tmp_path):
    status, _, err = run(capsys, "simulate", "tof", "-o", tmp_path / "sim", "--size", 32, "--bins", 60,
                         "--counts", 100, "--seed", 1, "--quiet")
    assert status == 0, err
    status, _, err = run(capsys, "cluster-spectra", tmp_path / "sim" / "sample.tif",
                         "--open-beam", tmp_path / "sim" / "open_beam.tif", "-o",
                         tmp_path / "labels.tif", "--classes", 4, "--quiet")
    assert status == 0, err
    truth, _ = read_image(tmp_path / "sim" / "truth.tif")
    labels, _ = read_image(tmp_path / "labels.tif")
    assert adjusted_rand_index(truth, labels) >= 0.9
    write_image(tmp_path / "short.tif", np.ones((10, 32, 32), np.float32), {"axes": "lyx"})
    status, _, err = run(capsys, "cluster-spectra", tmp_path / "sim" / "sample.tif",
                         "--open-beam", tmp_path / "short.tif", "-o", tmp_path / "x.tif",
                         "--classes", 4)
    assert_user_error(status, err, "--open-beam", "(10, 32, 32)")
