"""Materials table: thermal-neutron attenuation coefficients derived from cross sections.

The linear attenuation coefficient of a material for a monochromatic beam is the
macroscopic total cross section

    mu = n * sigma_total = rho * N_A / M * sigma_total,

with ``rho`` the density (g/cm^3), ``M`` the molar mass of one formula unit (g/mol),
``N_A`` Avogadro's number and ``sigma_total`` the total cross section of one formula unit
(1 barn = 1e-24 cm^2). ``mu`` is then in 1/cm.

Cross sections are the bound-atom total scattering cross sections plus the absorption
cross sections at 2200 m/s (25.3 meV) of V. F. Sears, "Neutron scattering lengths and
cross sections", Neutron News 3(3), 26-37 (1992), as tabulated by the NIST Center for
Neutron Research; densities are room-temperature handbook values (CRC Handbook of
Chemistry and Physics). This is the convention of the tables of thermal-neutron
attenuation coefficients used in neutron imaging courses; it ignores Bragg edges and the
1/v dependence of absorption, which a wavelength-resolved simulation must add.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["MATERIALS", "Material", "attenuation_coefficient", "get_material"]

AVOGADRO = 6.02214076e23  # 1/mol, exact by the 2019 SI definition
BARN_CM2 = 1e-24

SUPPORTED_RADIATION = ("neutron",)


@dataclass(frozen=True)
class Material:
    """A homogeneous material with the data needed for its neutron attenuation.

    Parameters
    ----------
    name : str
        Key of the material in :data:`MATERIALS` (lower case, British spelling).
    density : float
        Mass density in g/cm^3.
    molar_mass : float
        Molar mass of one formula unit (atom for an element, molecule for a compound,
        mean molecule for a mixture) in g/mol.
    sigma_total : float
        Total thermal-neutron cross section of one formula unit in barns
        (scattering + absorption at 2200 m/s).
    note : str
        Where the numbers come from.

    Examples
    --------
    >>> from niseg.simulate import MATERIALS
    >>> iron = MATERIALS["iron"]
    >>> round(iron.mu_neutron, 2)
    1.2
    """

    name: str
    density: float
    molar_mass: float
    sigma_total: float
    note: str

    @property
    def number_density(self) -> float:
        """Formula units per cm^3 (``density * N_A / molar_mass``)."""
        return self.density * AVOGADRO / self.molar_mass

    @property
    def mu_neutron(self) -> float:
        """Thermal-neutron linear attenuation coefficient in 1/cm."""
        return self.number_density * self.sigma_total * BARN_CM2


_SEARS = "Sears (1992) sigma_s + sigma_a(2200 m/s)"


def _element(name: str, density: float, molar_mass: float, sigma_s: float, sigma_a: float,
             symbol: str) -> Material:
    note = (f"{symbol}: {_SEARS} = {sigma_s:g} b + {sigma_a:g} b; "
            f"density {density:g} g/cm3, M {molar_mass:g} g/mol")
    return Material(name, density, molar_mass, sigma_s + sigma_a, note)


def _air() -> Material:
    # Dry air by mole fraction; per mean molecule the cross sections add up by fraction.
    fractions = {"N2": 0.7808, "O2": 0.2095, "Ar": 0.0097}
    sigma = {"N2": 2 * (11.51 + 1.90), "O2": 2 * (4.232 + 0.00019), "Ar": 0.683 + 0.675}
    molar = {"N2": 2 * 14.007, "O2": 2 * 15.999, "Ar": 39.948}
    total = sum(fractions.values())
    sigma_mean = sum(fractions[k] * sigma[k] for k in fractions) / total
    molar_mean = sum(fractions[k] * molar[k] for k in fractions) / total
    note = ("dry air (N2 78.08 %, O2 20.95 %, Ar 0.97 % by moles) at 20 C and 1 atm, "
            f"{_SEARS} per mean molecule")
    return Material("air", 0.001204, molar_mean, sigma_mean, note)


def _water() -> Material:
    # Hydrogen's scattering cross section depends on its chemical binding and on the
    # neutron energy: the bound-atom 82.02 b of Sears is the slow-neutron limit and would
    # give ~5.6 /cm. For thermal neutrons in liquid water the measured total cross
    # section is about 104 b per molecule, which reproduces the ~3.5 /cm that neutron
    # imaging beamlines measure for water.
    note = ("H2O: effective total cross section of liquid water for thermal neutrons, "
            "~104 b per molecule (not the bound-atom value 2 x 82.02 b + 4.232 b of Sears, "
            "which applies to much slower neutrons); density 0.998 g/cm3")
    return Material("water", 0.998, 2 * 1.008 + 15.999, 104.0, note)


def _build_table() -> dict[str, Material]:
    materials = [
        _air(),
        _element("aluminium", 2.699, 26.982, 1.503, 0.231, "Al"),
        _element("silicon", 2.329, 28.086, 2.167, 0.171, "Si"),
        _element("titanium", 4.506, 47.867, 4.35, 6.09, "Ti"),
        _element("iron", 7.874, 55.845, 11.62, 2.56, "Fe"),
        _element("nickel", 8.908, 58.693, 18.5, 4.49, "Ni"),
        _element("copper", 8.96, 63.546, 8.03, 3.78, "Cu"),
        _element("zirconium", 6.52, 91.224, 6.46, 0.185, "Zr"),
        _element("lead", 11.34, 207.2, 11.118, 0.171, "Pb"),
        _water(),
        _element("lithium", 0.534, 6.94, 1.37, 70.5, "Li (natural)"),
        _element("boron", 2.34, 10.81, 5.24, 767.0, "B (natural)"),
        _element("cadmium", 8.65, 112.414, 6.50, 2520.0, "Cd"),
        _element("gadolinium", 7.90, 157.25, 180.0, 49700.0, "Gd"),
    ]
    return {m.name: m for m in materials}


MATERIALS: Mapping[str, Material] = MappingProxyType(_build_table())

# Spellings users are likely to type; every alias points at a key of MATERIALS.
_ALIASES = {
    "aluminum": "aluminium", "al": "aluminium", "si": "silicon", "ti": "titanium",
    "fe": "iron", "ni": "nickel", "cu": "copper", "zr": "zirconium", "pb": "lead",
    "h2o": "water", "li": "lithium", "b": "boron", "cd": "cadmium", "gd": "gadolinium",
}


def get_material(material: str) -> Material:
    """Look up a material by name, symbol or common alias (case-insensitive).

    Parameters
    ----------
    material : str
        A key of :data:`MATERIALS` ("iron"), a chemical symbol ("Fe") or "aluminum"/"H2O".

    Returns
    -------
    Material
        The table entry.

    Examples
    --------
    >>> from niseg.simulate import get_material
    >>> get_material("Fe").name
    'iron'
    """
    if not isinstance(material, str):
        raise TypeError(f"material must be a material name (str), got {type(material).__name__}")
    key = material.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in MATERIALS:
        raise ValueError(f"material {material!r} is not in the materials table; known materials "
                         f"are {', '.join(MATERIALS)}")
    return MATERIALS[key]


def attenuation_coefficient(material: str, *, radiation: str = "neutron") -> float:
    """Linear attenuation coefficient of a material, in 1/cm.

    For neutrons this is the thermal-neutron (25.3 meV, 1.8 Å) macroscopic total cross
    section ``mu = rho * N_A / M * sigma_total`` computed from the materials table.

    Parameters
    ----------
    material : str
        Material name, chemical symbol or alias (see :func:`get_material`).
    radiation : str, optional
        Kind of radiation; only ``"neutron"`` is available so far.

    Returns
    -------
    float
        ``mu`` in 1/cm; the transmission through ``d`` cm is ``exp(-mu * d)``.

    Examples
    --------
    >>> from niseg.simulate import attenuation_coefficient
    >>> round(attenuation_coefficient("cadmium"), 1)
    117.1
    >>> round(attenuation_coefficient("water"), 2)
    3.47
    """
    if radiation not in SUPPORTED_RADIATION:
        raise ValueError(f"radiation must be one of {', '.join(map(repr, SUPPORTED_RADIATION))} "
                         f"(X-ray coefficients are not available yet), got {radiation!r}")
    return get_material(material).mu_neutron
