import itertools
import math

import pytest

from niseg.simulate import MATERIALS, Material, attenuation_coefficient, get_material

# Thermal-neutron attenuation coefficients (1/cm) as tabulated for neutron imaging.
EXPECTED_MU = {
    "aluminium": 0.10, "silicon": 0.11, "iron": 1.19, "copper": 1.07, "nickel": 2.0,
    "lead": 0.38, "titanium": 0.6, "zirconium": 0.29, "water": 3.5, "lithium": 3.3,
    "boron": 100.0, "cadmium": 115.0, "gadolinium": 1480.0,
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_MU.items()))
def test_mu_matches_tabulated_values_within_10_percent(name, expected):
    assert attenuation_coefficient(name) == pytest.approx(expected, rel=0.10)


def test_air_is_nearly_transparent():
    mu = attenuation_coefficient("air")
    assert 0 < mu < 1e-3
    # 1 m of air still transmits more than 90 %.
    assert math.exp(-mu * 100) > 0.9


def test_mu_is_density_times_avogadro_times_sigma_over_molar_mass():
    iron = MATERIALS["iron"]
    by_hand = 7.874 * 6.02214076e23 * (11.62 + 2.56) * 1e-24 / 55.845
    assert iron.sigma_total == pytest.approx(14.18)
    assert iron.mu_neutron == pytest.approx(by_hand, rel=1e-12)
    assert attenuation_coefficient("iron") == iron.mu_neutron


def test_custom_material_follows_the_same_formula():
    # One mole per cm^3 of a 1-barn scatterer: mu = N_A * 1e-24.
    m = Material("toy", density=10.0, molar_mass=10.0, sigma_total=1.0, note="test")
    assert m.mu_neutron == pytest.approx(0.602214076)


def test_every_material_has_a_reference_note_and_positive_data():
    assert len(MATERIALS) >= 14
    for name, material in MATERIALS.items():
        assert material.name == name
        assert material.note
        assert material.density > 0 and material.molar_mass > 0 and material.sigma_total > 0


def test_absorbers_order():
    mu = {name: attenuation_coefficient(name) for name in MATERIALS}
    assert mu["gadolinium"] > mu["cadmium"] > mu["boron"] > mu["water"] > mu["iron"]
    assert mu["iron"] > mu["lead"] > mu["aluminium"] > mu["air"]


def test_aliases_and_case():
    assert get_material("Fe") is MATERIALS["iron"]
    assert get_material("Aluminum") is MATERIALS["aluminium"]
    assert attenuation_coefficient("H2O") == attenuation_coefficient("water")


def test_table_is_read_only():
    with pytest.raises(TypeError):
        MATERIALS["unobtainium"] = MATERIALS["iron"]


def test_unknown_material_lists_known_names():
    with pytest.raises(ValueError, match=r"unobtainium.*known materials are air, aluminium"):
        attenuation_coefficient("unobtainium")


def test_material_must_be_a_string():
    with pytest.raises(TypeError, match="material must be"):
        attenuation_coefficient(26)


def test_other_radiation_is_refused_naming_what_is_supported():
    with pytest.raises(ValueError, match=r"radiation must be one of 'neutron', 'xray'"):
        attenuation_coefficient("iron", radiation="gamma")


def test_documented_table_matches_the_code():
    from pathlib import Path

    doc = Path(__file__).parents[2] / "docs" / "simulate.md"
    rows = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in MATERIALS:
            rows[cells[0]] = float(cells[4])
    assert set(rows) == set(MATERIALS)
    for name, mu in rows.items():
        assert MATERIALS[name].mu_neutron == pytest.approx(mu, rel=0.01)


def test_documented_xray_table_matches_the_code():
    from pathlib import Path

    doc = Path(__file__).parents[2] / "docs" / "simulate.md"
    energies, rows = None, {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "X-ray μ (1/cm) at":
            energies = [float(c.split()[0]) for c in cells[1:]]
        elif energies and len(cells) == len(energies) + 1 and cells[0] in MATERIALS:
            rows[cells[0]] = [float(c) for c in cells[1:]]
    assert energies == [20.0, 40.0, 60.0, 100.0, 150.0]
    assert set(rows) == set(MATERIALS)
    for name, values in rows.items():
        for energy, mu in zip(energies, values, strict=True):
            assert MATERIALS[name].mu_xray(energy) == pytest.approx(mu, rel=0.01)


# ----------------------------------------------------------------------------- X-rays


@pytest.mark.parametrize(("name", "energy", "mass_attenuation"), [
    ("iron", 60.0, 1.205), ("lead", 100.0, 5.549), ("water", 20.0, 0.8096),
    ("aluminium", 150.0, 0.1378), ("air", 40.0, 0.2485), ("gadolinium", 80.0, 5.573),
    ("copper", 10.0, 215.9), ("lithium", 200.0, 0.1060),
])
def test_xray_mu_is_nist_mass_attenuation_times_density(name, energy, mass_attenuation):
    material = MATERIALS[name]
    assert material.mass_attenuation_xray(energy) == pytest.approx(mass_attenuation, rel=1e-9)
    expected = mass_attenuation * material.density
    assert attenuation_coefficient(name, radiation="xray", energy_kev=energy) == \
        pytest.approx(expected, rel=1e-9)


def test_xray_interpolation_is_linear_in_log_log():
    iron = MATERIALS["iron"]
    # 70 keV lies between the 60 keV (1.205) and 80 keV (0.5952) rows
    t = math.log(70 / 60) / math.log(80 / 60)
    expected = math.exp((1 - t) * math.log(1.205) + t * math.log(0.5952))
    assert iron.mass_attenuation_xray(70.0) == pytest.approx(expected, rel=1e-12)
    # a pure power law between two rows is reproduced exactly
    assert iron.mass_attenuation_xray(69.28203230275509) == pytest.approx(
        math.sqrt(1.205 * 0.5952), rel=1e-9)


@pytest.mark.parametrize(("name", "edge", "below", "above"), [
    ("cadmium", 26.71, 8.809, 50.65), ("gadolinium", 50.24, 3.812, 18.64),
    ("lead", 88.0, 1.910, 7.683), ("zirconium", 18.0, 15.01, 94.70),
])
def test_k_edges_jump_at_the_edge_energy(name, edge, below, above):
    material = MATERIALS[name]
    assert material.mass_attenuation_xray(edge - 1e-6) == pytest.approx(below, rel=1e-4)
    assert material.mass_attenuation_xray(edge) == pytest.approx(above, rel=1e-9)
    assert material.mass_attenuation_xray(edge + 1e-6) == pytest.approx(above, rel=1e-4)


def test_xray_tables_fall_with_energy_and_jump_up_only_at_edges():
    for material in MATERIALS.values():
        table = material.xray_mass_attenuation
        assert table[0][0] == 10.0 and table[-1][0] == 200.0
        for (e0, m0), (e1, m1) in itertools.pairwise(table):
            assert m0 > 0 and m1 > 0
            assert (m1 < m0) if e1 > e0 else (e1 == e0 and m1 > m0), (material.name, e0, e1)


def test_compounds_follow_the_mixture_rule():
    w_si = 28.086 / (28.086 + 2 * 15.999)
    # 60 keV: Si 0.3207, O 0.1907 cm2/g (NIST)
    assert MATERIALS["quartz"].mass_attenuation_xray(60.0) == pytest.approx(
        w_si * 0.3207 + (1 - w_si) * 0.1907, rel=1e-5)
    # dry sand is quartz at a lower bulk density
    assert MATERIALS["sand"].mass_attenuation_xray(60.0) == \
        MATERIALS["quartz"].mass_attenuation_xray(60.0)
    assert MATERIALS["sand"].mu_neutron == pytest.approx(
        MATERIALS["quartz"].mu_neutron * 1.59 / 2.65)
    # water rebuilt from H and O by the mixture rule agrees with its own NIST table
    w_h = 2 * 1.008 / 18.015
    assert w_h * 0.3260 + (1 - w_h) * 0.1907 == pytest.approx(
        MATERIALS["water"].mass_attenuation_xray(60.0), rel=1e-3)


def test_soil_and_root_materials():
    assert attenuation_coefficient("quartz") == pytest.approx(0.287, rel=0.01)
    assert get_material("SiO2") is MATERIALS["quartz"]
    assert get_material("soil") is MATERIALS["sand"]
    assert get_material("steel") is MATERIALS["iron"]
    root = attenuation_coefficient("root")
    # mostly water: nearly as attenuating as water for neutrons, far more than the soil
    assert 0.9 * attenuation_coefficient("water") < root < attenuation_coefficient("water")
    assert root > 10 * attenuation_coefficient("sand")
    # for X-rays, roots in soil have little contrast with the (denser, heavier) quartz
    assert attenuation_coefficient("root", radiation="xray", energy_kev=60.0) < \
        attenuation_coefficient("sand", radiation="xray", energy_kev=60.0)


@pytest.mark.parametrize("energy", [60.0, 80.0, 100.0])
def test_lecture_contrast_neutrons_versus_xrays(energy):
    def ratio(name):
        return attenuation_coefficient(name) / attenuation_coefficient(
            name, radiation="xray", energy_kev=energy)

    # H (water), Li, B, Cd, Gd attenuate neutrons far more than X-rays ...
    for name in ("water", "lithium", "boron", "cadmium", "gadolinium"):
        assert ratio(name) > 2.0, name
    # ... while metals, Fe and Pb above all, attenuate X-rays far more than neutrons
    for name in ("iron", "lead", "copper", "aluminium"):
        assert ratio(name) < 0.5, name
    assert ratio("lead") < ratio("iron") < 1 < ratio("water")

    def xray(name):
        return attenuation_coefficient(name, radiation="xray", energy_kev=energy)

    def neutron(name):
        return attenuation_coefficient(name)

    assert xray("lead") > xray("iron") > xray("aluminium") > xray("water")
    assert neutron("water") > neutron("iron") > neutron("lead") > neutron("aluminium")


def test_energy_argument_is_checked():
    with pytest.raises(ValueError, match="energy_kev must be given for radiation='xray'"):
        attenuation_coefficient("iron", radiation="xray")
    with pytest.raises(ValueError, match="energy_kev must be a photon energy from 10 to 200 keV"):
        attenuation_coefficient("iron", radiation="xray", energy_kev=5.0)
    with pytest.raises(ValueError, match="energy_kev must be a photon energy"):
        attenuation_coefficient("iron", radiation="xray", energy_kev=float("nan"))
    with pytest.raises(TypeError, match="energy_kev must be a photon energy in keV"):
        attenuation_coefficient("iron", radiation="xray", energy_kev="60")
    with pytest.raises(ValueError, match="energy_kev applies to X-rays only"):
        attenuation_coefficient("iron", energy_kev=60.0)
    toy = Material("toy", density=1.0, molar_mass=1.0, sigma_total=1.0, note="no X-ray data")
    with pytest.raises(ValueError, match="material 'toy' has no X-ray attenuation data"):
        toy.mu_xray(60.0)
