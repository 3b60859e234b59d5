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
    with pytest.raises(ValueError, match=r"radiation must be one of 'neutron'.*'xray'"):
        attenuation_coefficient("iron", radiation="xray")


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
