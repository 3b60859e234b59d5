"""Tests of niseg.cluster.cluster_spectra (time-of-flight spectral clustering)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from niseg.cluster import cluster_spectra, tof_to_wavelength
from niseg.metrics import adjusted_rand_index
from niseg.report import spectra_figure
from niseg.simulate import simulate_tof


@pytest.fixture(scope="module")
def low_count():
    """20 counts per bin at the spectrum's peak: plates alike in white beam."""
    tof = simulate_tof(shape=(64, 64), n_bins=200, counts=20, seed=0)
    transmission = tof.sample / tof.open_beam.mean(axis=(0, 1))
    return tof, transmission.astype(np.float32)


def test_default_separates_materials_where_raw_kmeans_fails(low_count):
    tof, transmission = low_count
    labels, info = cluster_spectra(transmission, classes=4, wavelengths=tof.wavelengths)
    # ARI over all pixels; the open beam (truth 0) is one of the four clusters.
    ours = adjusted_rand_index(tof.truth, labels)
    raw = KMeans(n_clusters=4, n_init=10, random_state=0).fit_predict(
        transmission.reshape(-1, transmission.shape[-1]))
    theirs = adjusted_rand_index(tof.truth.ravel(), raw)
    assert ours >= 0.9
    assert theirs < 0.5
    assert labels.dtype == np.uint8 and labels.shape == (64, 64)
    assert set(np.unique(labels)) == {1, 2, 3, 4}
    # The open beam transmits most, so it is the last cluster.
    assert np.mean(labels[tof.truth == 0] == 4) > 0.95
    assert info["pixel_counts"].sum() == 64 * 64
    assert info["centroid_spectra"].shape == (4, 200)
    np.testing.assert_allclose(info["wavelengths"], tof.wavelengths)
    np.testing.assert_allclose(np.diag(info["correlation"]), 1.0)


def test_centroids_match_true_spectra_without_noise():
    tof = simulate_tof(shape=(32, 32), n_bins=80, noise=False, seed=3)
    labels, info = cluster_spectra(tof.transmission, classes=4, smooth=0.0)
    assert adjusted_rand_index(tof.truth, labels) == pytest.approx(1.0)
    truth_spectra = np.vstack([np.ones(80), tof.class_transmission])
    for k in range(1, 5):
        true_class = np.bincount(tof.truth[labels == k]).argmax()
        np.testing.assert_allclose(info["centroid_spectra"][k - 1], truth_spectra[true_class],
                                   atol=1e-5)
    # Numbered by mean transmission: the open beam (1.0) is last.
    assert np.allclose(info["centroid_spectra"][-1], 1.0)


def test_chunked_pass_equals_single_pass_and_axis_order(tmp_path):
    tof = simulate_tof(shape=(32, 32), n_bins=50, counts=100, seed=2)
    cube = (tof.sample / tof.open_beam.mean(axis=(0, 1))).astype(np.float32)
    whole, info_whole = cluster_spectra(cube, classes=4)
    # 8 rows per block, every pixel still in the fitting subsample.
    chunked, info_chunked = cluster_spectra(cube, classes=4, chunk_bytes=32 * 50 * 4 * 5 * 8)
    assert info_whole["chunks"] == 1 and info_chunked["chunks"] == 4
    np.testing.assert_array_equal(whole, chunked)
    np.testing.assert_allclose(info_whole["centroid_spectra"], info_chunked["centroid_spectra"],
                               rtol=1e-6)
    path = tmp_path / "cube_lyx.npy"
    np.save(path, np.moveaxis(cube, -1, 0))
    mapped = np.load(path, mmap_mode="r")
    steps = []
    from_disk, _ = cluster_spectra(mapped, classes=4, spectral_axis=0, chunk_bytes=32 * 50 * 160,
                                   progress=lambda done, total: steps.append((done, total)))
    np.testing.assert_array_equal(whole, from_disk)
    assert steps[-1][0] == steps[-1][1] == 8


def test_nan_inf_and_zero_counts_are_handled(low_count):
    tof, _ = low_count
    with np.errstate(divide="ignore", invalid="ignore"):
        per_pixel = tof.sample / tof.open_beam  # zero open-beam counts give Inf and NaN
    assert not np.all(np.isfinite(per_pixel))
    per_pixel[5, 5, :] = np.nan  # a dead pixel
    labels, info = cluster_spectra(per_pixel, classes=4)
    assert labels[5, 5] == 0
    assert np.count_nonzero(labels == 0) == 1
    assert np.isnan(info["average_image"][5, 5])
    good = labels > 0
    assert adjusted_rand_index(tof.truth[good], labels[good]) >= 0.9
    assert np.all(np.isfinite(info["centroid_spectra"]))


def test_mask_range_rebin_and_components(low_count):
    tof, transmission = low_count
    mask = np.ones((64, 64), bool)
    mask[:, :8] = False
    labels, info = cluster_spectra(transmission, classes=4, wavelengths=tof.wavelengths,
                                   wavelength_range=(2.0, 5.0), rebin=4, mask=mask,
                                   n_components=3)
    assert np.all(labels[:, :8] == 0) and np.all(labels[:, 8:] > 0)
    selected = np.flatnonzero((tof.wavelengths >= 2.0) & (tof.wavelengths <= 5.0))
    n_groups = selected.size // 4
    assert info["centroid_spectra"].shape == (4, n_groups)
    expected = tof.wavelengths[selected[0]:selected[0] + 4 * n_groups].reshape(-1, 4).mean(1)
    np.testing.assert_allclose(info["wavelengths"], expected)
    assert info["bin_range"] == [int(selected[0]), int(selected[-1]) + 1]
    assert info["n_components"] == 3 and len(info["explained_variance_ratio"]) == 3
    assert cluster_spectra(transmission[:16, :16], classes=2)[1]["n_components"] == 2
    assert adjusted_rand_index(tof.truth[mask], labels[mask]) >= 0.9
    _, info_bins = cluster_spectra(transmission[:32, :32], classes=4, bins=(10, 60),
                                          n_components=None)
    assert info_bins["centroid_spectra"].shape == (4, 50) and info_bins["wavelengths"] is None
    np.testing.assert_array_equal(info_bins["bins"], np.arange(10, 60))


def test_same_seed_same_labels(low_count):
    _, transmission = low_count
    small = transmission[:32, :32, ::4]
    a, _ = cluster_spectra(small, classes=3, seed=7)
    b, _ = cluster_spectra(small, classes=3, seed=7)
    np.testing.assert_array_equal(a, b)


def test_tof_to_wavelength_inverts_the_simulator():
    tof = simulate_tof(shape=(16, 16), n_bins=20, noise=False, flight_path_m=14.0, seed=0)
    np.testing.assert_allclose(tof_to_wavelength(tof.tof, flight_path=14.0), tof.wavelengths,
                               rtol=1e-9)
    shifted = tof_to_wavelength(tof.tof + 1e-4, flight_path=14.0, t0=1e-4)
    np.testing.assert_allclose(shifted, tof.wavelengths, rtol=1e-9)
    with pytest.raises(ValueError, match="t0"):
        tof_to_wavelength(tof.tof, flight_path=14.0, t0=1.0)
    with pytest.raises(ValueError, match="flight_path"):
        tof_to_wavelength(tof.tof, flight_path=0.0)


@pytest.mark.parametrize(
    ("kwargs", "cube_shape", "match"),
    [
        ({"classes": 2}, (8, 8), "3D"),
        ({"classes": 70}, (8, 8, 5), "only 64 valid pixels"),
        ({"classes": 2, "wavelength_range": (1, 2)}, (8, 8, 5), "needs the bin wavelengths"),
        ({"classes": 2, "wavelengths": [1, 2, 3]}, (8, 8, 5), "has 3 values"),
        ({"classes": 2, "wavelengths": [1, 2, 3, 4, 5], "wavelength_range": (7, 9)},
         (8, 8, 5), "holds no bin"),
        ({"classes": 2, "rebin": 6}, (8, 8, 5), "rebin"),
        ({"classes": 2, "bins": (3, 9)}, (8, 8, 5), "bins"),
        ({"classes": 2, "mask": np.ones((4, 4), bool)}, (8, 8, 5), "mask has shape"),
        ({"classes": 2, "smooth": -1.0}, (8, 8, 5), "smooth"),
        ({"classes": 2, "spectral_axis": 3}, (8, 8, 5), "spectral_axis"),
    ],
)
def test_bad_arguments_raise_one_sentence(kwargs, cube_shape, match):
    cube = np.random.default_rng(0).uniform(0.2, 1.0, cube_shape).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        cluster_spectra(cube, **kwargs)


def test_constant_or_empty_cubes_are_refused():
    with pytest.raises(ValueError, match="same spectrum"):
        cluster_spectra(np.full((8, 8, 5), 0.5, np.float32), classes=2)
    with pytest.raises(ValueError, match="no valid pixel"):
        cluster_spectra(np.full((8, 8, 5), np.nan, np.float32), classes=2)
    with pytest.raises(TypeError, match="classes"):
        cluster_spectra(np.ones((8, 8, 5)), classes=2.5)


def test_spectra_figure_panels_and_errors():
    labels = np.repeat([[0, 1, 2]], 6, axis=0).repeat(2, axis=1)
    spectra = np.array([[0.5, 0.6, 0.4, 0.45], [0.9, 0.85, 0.9, 0.95]])
    fig = spectra_figure(np.ones((6, 6)), labels, spectra, wavelengths=[1.0, 2.0, 3.0, 4.0],
                         class_names=["iron", "open"])
    titles = [ax.get_title() for ax in fig.axes]
    assert {"average image", "centroid spectra", "centroid correlation"} <= set(titles)
    spectra_axis = fig.axes[titles.index("centroid spectra")]
    assert [line.get_label() for line in spectra_axis.get_lines()] == ["iron", "open"]
    assert spectra_axis.get_xlabel() == "wavelength (Å)"
    with pytest.raises(ValueError, match="labels has shape"):
        spectra_figure(np.ones((5, 6)), labels, spectra)
    with pytest.raises(ValueError, match="wavelengths has 3 values"):
        spectra_figure(np.ones((6, 6)), labels, spectra, wavelengths=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="labels go up to 2"):
        spectra_figure(np.ones((6, 6)), labels, spectra[:1])
