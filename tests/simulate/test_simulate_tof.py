import json
import math

import numpy as np
import pytest

from niseg.simulate import (
    CRYSTALS,
    ToFCube,
    bragg_edges,
    get_material,
    moderator_spectrum,
    simulate_tof,
    tof_attenuation,
    tof_cross_sections,
)


@pytest.fixture(scope="module")
def clean() -> ToFCube:
    return simulate_tof(shape=(48, 48), n_bins=250, noise=False, seed=3)


def edge_bin(wavelengths: np.ndarray, edge: float) -> int:
    width = wavelengths[1] - wavelengths[0]
    return int(np.searchsorted(wavelengths + width / 2.0, edge))


def test_bragg_edges_follow_the_structure_factor_rules():
    iron = bragg_edges("iron")
    a = CRYSTALS["iron"].lattice_constant
    # bcc: h + k + l even, so (100) and (111) are absent.
    assert [e["hkl"] for e in iron[:4]] == [(1, 1, 0), (2, 0, 0), (2, 1, 1), (2, 2, 0)]
    assert [e["multiplicity"] for e in iron[:4]] == [12, 6, 24, 12]
    assert iron[0]["wavelength"] == pytest.approx(2 * a / math.sqrt(2), rel=1e-12)
    assert iron[0]["wavelength"] == pytest.approx(4.054, abs=5e-4)
    copper = bragg_edges("Cu")
    # fcc: all even or all odd, so (100) and (110) are absent.
    assert [e["hkl"] for e in copper[:4]] == [(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1)]
    assert [e["multiplicity"] for e in copper[:4]] == [8, 6, 12, 24]
    assert all(e["wavelength"] >= 1.0 for e in copper)
    assert len(bragg_edges("copper", wavelength_min=0.5)) > len(copper)


def test_cross_sections_match_the_bound_values_and_laws():
    for name, crystal in CRYSTALS.items():
        parts = tof_cross_sections(name, [0.25, crystal.lattice_constant * 2.2, 1.798])
        # Short wavelengths: the Bragg sum tends to the bound coherent 4 pi b^2.
        sigma_coh = 4 * math.pi * (crystal.b_coherent**2) / 100.0
        assert parts["coherent_elastic"][0] == pytest.approx(sigma_coh, rel=0.02)
        # Beyond the longest edge (2 d_max <= 2 a) nothing is left to diffract.
        assert parts["coherent_elastic"][1] == 0.0
        assert parts["absorption"][2] == pytest.approx(crystal.sigma_absorption)
        # Coherent + incoherent agree with the thermal scattering of the materials table.
        table = get_material(name).sigma_total - crystal.sigma_absorption
        assert sigma_coh + crystal.sigma_incoherent == pytest.approx(table, rel=0.01)
    absorption = tof_cross_sections("iron", [2.0, 4.0])["absorption"]
    assert absorption[1] == pytest.approx(2 * absorption[0])  # 1/v law


def test_attenuation_jumps_down_past_each_edge():
    for name in ("iron", "copper", "aluminium", "nickel", "lead"):
        edge = bragg_edges(name)[0]["wavelength"]
        below, above = tof_attenuation(name, [edge - 1e-6, edge + 1e-6])
        assert below > above * 1.2, name
        n = CRYSTALS[name].number_density
        total = tof_cross_sections(name, [edge + 1e-6])["total"][0]
        assert above == pytest.approx(n * total * 1e-24)


def test_transmission_jumps_at_two_d_hkl(clean):
    w = clean.wavelengths
    width = w[1] - w[0]
    for k, name in enumerate(clean.metadata["classes"]):
        spectrum = clean.class_transmission[k]
        first = bragg_edges(name)[0]["wavelength"]
        # The largest rise of the spectrum is the first (longest-wavelength) edge...
        jump = int(np.argmax(np.diff(spectrum)))
        assert abs(0.5 * (w[jump] + w[jump + 1]) - first) <= width, name
        # ...and every one of the first four edges raises the transmission.
        for edge in bragg_edges(name)[:4]:
            i = edge_bin(w, edge["wavelength"])
            assert spectrum[i + 1] - spectrum[i - 1] > 0.02, (name, edge["hkl"])
    iron = clean.class_transmission[clean.metadata["classes"].index("iron")]
    i = edge_bin(w, 4.054)
    assert iron[i + 2] - iron[i - 2] > 0.3  # the Fe (110) edge at 4.05 Å is strong


def test_normalising_by_the_open_beam_recovers_the_transmission(clean):
    np.testing.assert_allclose(clean.sample / clean.open_beam, clean.transmission, rtol=1e-6)
    # Each bin has its own open-beam level, following the moderator spectrum.
    edges = np.asarray(clean.metadata["bin_edges"])
    fine = np.linspace(edges[0], edges[-1], 40_001)
    flux = moderator_spectrum(fine, temperature=clean.metadata["moderator_temperature_k"])
    expected = np.interp(clean.wavelengths, fine, flux)
    level = clean.open_beam[0, 0]
    np.testing.assert_allclose(level / level.max(), expected / expected.max(), rtol=2e-3)
    assert float(level.max()) == pytest.approx(clean.metadata["counts"])
    # Open beam (class 0) transmits everything; each class carries its own spectrum.
    np.testing.assert_array_equal(clean.transmission[clean.truth == 0], 1.0)
    for k in range(1, 4):
        np.testing.assert_allclose(clean.transmission[clean.truth == k],
                                   np.broadcast_to(clean.class_transmission[k - 1],
                                                   (int(np.sum(clean.truth == k)), 250)),
                                   rtol=1e-6)


def test_noisy_cube_normalises_per_bin_within_poisson_error():
    cube = simulate_tof(shape=(64, 64), n_bins=40, counts=2000.0, seed=1)
    assert np.all(cube.sample == np.round(cube.sample))
    for k in range(1, 4):
        region = cube.truth == k
        ratio = cube.sample[region].sum(0) / cube.open_beam[region].sum(0)
        expected_counts = cube.open_beam[region].sum(0)
        t = cube.class_transmission[k - 1]
        sigma = np.sqrt(t * (1 + t) / expected_counts)  # both frames are Poisson
        assert np.all(np.abs(ratio - t) < 5 * sigma + 1e-3)


def test_materials_look_alike_in_white_beam_but_not_in_spectra(clean):
    # What a radiograph without wavelength resolution sees: counts summed over bins.
    white = clean.sample.sum(-1) / clean.open_beam.sum(-1)
    means = [float(white[clean.truth == k].mean()) for k in range(1, 4)]
    assert np.allclose(means, clean.metadata["mean_transmission"], rtol=2e-3)
    assert max(means) - min(means) < 0.005
    # The plain band average of T differs by a few per cent only.
    band = clean.class_transmission.mean(axis=1)
    assert (band.max() - band.min()) / band.mean() < 0.15
    spectra = clean.class_transmission
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.max(np.abs(spectra[i] - spectra[j])) > 0.15
    # The equalising thicknesses reproduce the iron plate's weighted transmission.
    d = clean.metadata["thickness_cm"]["iron"]
    assert d == pytest.approx(0.62, abs=0.05)


def test_time_of_flight_follows_de_broglie():
    cube = simulate_tof(shape=(16, 16), n_bins=10, flight_path_m=20.0, noise=False)
    h, m = 6.62607015e-34, 1.67492750056e-27
    np.testing.assert_allclose(cube.tof, cube.wavelengths * 1e-10 * m * 20.0 / h, rtol=1e-12)
    # 4.05 Å over 20 m takes 20.5 ms.
    assert 4.054e-10 * m * 20.0 / h == pytest.approx(0.02049, rel=1e-3)
    assert cube.metadata["tof_s"] == pytest.approx(cube.tof.tolist())


def test_moderator_spectrum_peaks_where_the_maxwellian_does():
    lam_t = 6.62607015e-34 / math.sqrt(2 * 1.67492750056e-27 * 1.380649e-23 * 300.0) * 1e10
    assert lam_t == pytest.approx(1.78, abs=0.01)
    grid = np.linspace(0.5, 8.0, 30_001)
    flux = moderator_spectrum(grid, temperature=300.0)
    assert grid[np.argmax(flux)] == pytest.approx(lam_t * math.sqrt(0.4), abs=1e-3)
    assert flux.max() == pytest.approx(1.0, abs=1e-6)


def test_layout_outputs_and_metadata(clean):
    assert clean.sample.shape == clean.open_beam.shape == clean.transmission.shape == \
        (48, 48, 250)
    assert clean.sample.dtype == clean.transmission.dtype == np.float32
    assert clean.truth.dtype == np.uint8 and clean.truth.shape == (48, 48)
    assert set(np.unique(clean.truth).tolist()) == {0, 1, 2, 3}
    for k in range(1, 4):  # each plate is one filled rectangle
        ys, xs = np.nonzero(clean.truth == k)
        assert len(ys) == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
    meta = clean.metadata
    assert meta["axes"] == "yxl" and meta["classes"] == ["iron", "copper", "aluminium"]
    assert len(meta["wavelengths"]) == 250 and len(meta["bin_edges"]) == 251
    assert meta["bragg_edges"]["iron"][0] == pytest.approx(4.0539, abs=1e-3)
    json.dumps(meta)


def test_same_seed_same_cube_and_new_seed_new_cube():
    a = simulate_tof(shape=(24, 24), n_bins=20, seed=5)
    b = simulate_tof(shape=(24, 24), n_bins=20, seed=5)
    c = simulate_tof(shape=(24, 24), n_bins=20, seed=6)
    for name in ("sample", "open_beam", "transmission", "truth"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.metadata == b.metadata
    assert not np.array_equal(a.sample, c.sample)


def test_other_materials_and_one_material():
    cube = simulate_tof(shape=(32, 32), n_bins=30, materials=("Ni", "lead"), noise=False)
    assert cube.metadata["classes"] == ["nickel", "lead"]
    single = simulate_tof(shape=(16, 16), n_bins=5, materials=["aluminum"], noise=False)
    assert single.class_transmission.shape == (1, 5)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"materials": ("iron", "water")}, ValueError, "no crystal data"),
    ({"materials": ("iron", "Fe")}, ValueError, "distinct"),
    ({"materials": "iron"}, TypeError, "sequence of material names"),
    ({"materials": ()}, ValueError, "1 to 64"),
    ({"wavelength_range": (6.0, 1.0)}, ValueError, "shortest < longest"),
    ({"wavelength_range": 4.0}, TypeError, "wavelength_range"),
    ({"n_bins": 1}, ValueError, "n_bins"),
    ({"n_bins": 2.5}, TypeError, "n_bins"),
    ({"mean_transmission": 1.0}, ValueError, "mean_transmission"),
    ({"counts": 0.0}, ValueError, "counts"),
    ({"shape": (8, 64)}, ValueError, "at least 16"),
    ({"shape": (16, 16, 16)}, TypeError, "pair of pixel counts"),
    ({"noise": "yes"}, TypeError, "noise"),
    ({"seed": -1}, ValueError, "seed"),
])
def test_bad_arguments_raise_one_clear_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate_tof(**kwargs)


def test_cross_section_arguments_are_checked():
    with pytest.raises(ValueError, match="positive finite"):
        tof_cross_sections("iron", [0.0, 1.0])
    with pytest.raises(ValueError, match="no crystal data"):
        bragg_edges("cadmium")
    with pytest.raises(ValueError, match="positive finite"):
        moderator_spectrum([-1.0])
