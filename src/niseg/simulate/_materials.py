"""Materials table: neutron and X-ray attenuation coefficients.

**Neutrons.** The linear attenuation coefficient of a material for a monochromatic beam is
the macroscopic total cross section

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

**X-rays.** ``mu = (mu/rho) * rho`` with the total mass attenuation coefficients
``mu/rho`` (coherent scattering included) of J. H. Hubbell and S. M. Seltzer, "Tables of
X-Ray Mass Attenuation Coefficients and Mass Energy-Absorption Coefficients", NIST
Standard Reference Database 126 (NISTIR 5632, 1995; version 1.4, 2004), which agree with
NIST XCOM. They are tabulated here from 10 to 200 keV on the NIST grid (10, 15, 20, 30,
40, 50, 60, 80, 100, 150, 200 keV) plus every absorption edge in that range, written
twice (below and above the edge) as NIST does; between grid points ``mu/rho`` is
interpolated linearly in ``log(mu/rho)`` against ``log(E)``, which is how these smooth
power-law-like curves are meant to be read. Compounds and mixtures without a NIST table
follow the mixture rule ``mu/rho = sum_i w_i (mu/rho)_i`` over mass fractions ``w_i``.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["MATERIALS", "Material", "attenuation_coefficient", "get_material"]

AVOGADRO = 6.02214076e23  # 1/mol, exact by the 2019 SI definition
BARN_CM2 = 1e-24

SUPPORTED_RADIATION = ("neutron", "xray")
XRAY_ENERGY_RANGE_KEV = (10.0, 200.0)

XrayTable = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Material:
    """A homogeneous material with the data needed for its neutron and X-ray attenuation.

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
    xray_mass_attenuation : tuple of (float, float), optional
        X-ray mass attenuation coefficients as ``(energy_keV, mu/rho in cm^2/g)`` pairs in
        increasing energy; an absorption edge is one energy listed twice, the value below
        the edge first. Empty: no X-ray data.

    Examples
    --------
    >>> from niseg.simulate import MATERIALS
    >>> iron = MATERIALS["iron"]
    >>> round(iron.mu_neutron, 2)
    1.2
    >>> round(iron.mu_xray(100.0), 2)  # 0.3717 cm2/g * 7.874 g/cm3
    2.93
    """

    name: str
    density: float
    molar_mass: float
    sigma_total: float
    note: str
    xray_mass_attenuation: XrayTable = ()

    @property
    def number_density(self) -> float:
        """Formula units per cm^3 (``density * N_A / molar_mass``)."""
        return self.density * AVOGADRO / self.molar_mass

    @property
    def mu_neutron(self) -> float:
        """Thermal-neutron linear attenuation coefficient in 1/cm."""
        return self.number_density * self.sigma_total * BARN_CM2

    def mass_attenuation_xray(self, energy_kev: float) -> float:
        """X-ray mass attenuation coefficient ``mu/rho`` in cm^2/g at one photon energy.

        Log-log interpolation between the tabulated energies; exactly at an absorption
        edge the value above the edge is returned.

        Parameters
        ----------
        energy_kev : float
            Photon energy in keV, from 10 to 200.

        Returns
        -------
        float
            ``mu/rho`` in cm^2/g.

        Examples
        --------
        >>> from niseg.simulate import MATERIALS
        >>> MATERIALS["water"].mass_attenuation_xray(60.0)
        0.2059
        """
        energy = _check_energy(energy_kev)
        if not self.xray_mass_attenuation:
            raise ValueError(f"material {self.name!r} has no X-ray attenuation data")
        return _loglog(self.xray_mass_attenuation, energy)

    def mu_xray(self, energy_kev: float) -> float:
        """X-ray linear attenuation coefficient ``(mu/rho) * rho`` in 1/cm.

        Parameters
        ----------
        energy_kev : float
            Photon energy in keV, from 10 to 200.

        Returns
        -------
        float
            ``mu`` in 1/cm.

        Examples
        --------
        >>> from niseg.simulate import MATERIALS
        >>> round(MATERIALS["lead"].mu_xray(100.0), 1)
        62.9
        """
        return self.mass_attenuation_xray(energy_kev) * self.density


def _loglog(table: XrayTable, energy: float) -> float:
    energies = [e for e, _ in table]
    # side="right" puts an energy that equals an edge on the segment above the edge.
    i = bisect.bisect_right(energies, energy) - 1
    i = min(max(i, 0), len(table) - 2)
    (e0, m0), (e1, m1) = table[i], table[i + 1]
    t = math.log(energy / e0) / math.log(e1 / e0)
    return math.exp(math.log(m0) + t * math.log(m1 / m0))


def _check_energy(energy_kev: Any) -> float:
    low, high = XRAY_ENERGY_RANGE_KEV
    if isinstance(energy_kev, bool) or not isinstance(energy_kev, numbers.Real):
        raise TypeError(f"energy_kev must be a photon energy in keV (a number), "
                        f"got {type(energy_kev).__name__}")
    energy = float(energy_kev)
    if not (math.isfinite(energy) and low <= energy <= high):
        raise ValueError(f"energy_kev must be a photon energy from {low:g} to {high:g} keV "
                         f"(the range of the X-ray tables), got {energy_kev!r}")
    return energy


# --------------------------------------------------------------------------- X-ray data
# Hubbell & Seltzer (NIST SRD 126) total mu/rho in cm^2/g, transcribed at the NIST grid
# energies below. Elements without an absorption edge between 10 and 200 keV share it.
_GRID_KEV = (10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0, 200.0)
_GRID = {
    "H": (0.3854, 0.3764, 0.3695, 0.3570, 0.3458, 0.3355, 0.3260, 0.3091, 0.2944, 0.2651,
          0.2429),
    "Li": (0.3395, 0.2176, 0.1856, 0.1644, 0.1551, 0.1488, 0.1438, 0.1356, 0.1289, 0.1158,
           0.1060),
    "B": (1.255, 0.4827, 0.3014, 0.2063, 0.1793, 0.1665, 0.1583, 0.1472, 0.1391, 0.1243,
          0.1136),
    "C": (2.373, 0.8071, 0.4420, 0.2562, 0.2076, 0.1871, 0.1753, 0.1610, 0.1514, 0.1347,
          0.1229),
    "O": (5.952, 1.836, 0.8651, 0.3779, 0.2585, 0.2132, 0.1907, 0.1678, 0.1551, 0.1361,
          0.1237),
    "Al": (26.23, 7.955, 3.441, 1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378,
           0.1223),
    "Si": (33.89, 10.34, 4.464, 1.436, 0.7012, 0.4385, 0.3207, 0.2228, 0.1835, 0.1448,
           0.1275),
    "Ti": (110.7, 35.87, 15.85, 4.972, 2.214, 1.213, 0.7661, 0.4052, 0.2721, 0.1649, 0.1314),
    "Fe": (170.6, 57.08, 25.68, 8.176, 3.629, 1.958, 1.205, 0.5952, 0.3717, 0.1964, 0.1460),
    "Ni": (209.0, 70.81, 32.20, 10.34, 4.600, 2.474, 1.512, 0.7306, 0.4440, 0.2208, 0.1582),
    "Cu": (215.9, 74.05, 33.79, 10.92, 4.862, 2.613, 1.593, 0.7630, 0.4584, 0.2217, 0.1559),
    "water": (5.329, 1.673, 0.8096, 0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505,
              0.1370),
    "air": (5.120, 1.614, 0.7779, 0.3538, 0.2485, 0.2080, 0.1875, 0.1662, 0.1541, 0.1356,
            0.1233),
}
# Elements with edges in range: the full NIST rows, edge energies listed twice.
_WITH_EDGES: dict[str, XrayTable] = {
    "Zr": ((10.0, 74.17), (15.0, 24.63), (18.0, 15.01), (18.0, 94.70), (20.0, 72.37),
           (30.0, 24.85), (40.0, 11.39), (50.0, 6.173), (60.0, 3.744), (80.0, 1.721),
           (100.0, 0.9658), (150.0, 0.3790), (200.0, 0.2237)),  # K edge 18.00 keV
    "Cd": ((10.0, 124.4), (15.0, 41.78), (20.0, 19.20), (26.71, 8.809), (26.71, 50.65),
           (30.0, 37.65), (40.0, 17.78), (50.0, 9.779), (60.0, 5.975), (80.0, 2.751),
           (100.0, 1.524), (150.0, 0.5593), (200.0, 0.3038)),  # K edge 26.71 keV
    "Gd": ((10.0, 269.3), (15.0, 93.35), (20.0, 43.63), (30.0, 14.84), (40.0, 6.920),
           (50.0, 3.859), (50.24, 3.812), (50.24, 18.64), (60.0, 11.75), (80.0, 5.573),
           (100.0, 3.109), (150.0, 1.100), (200.0, 0.5534)),  # K edge 50.24 keV
    "Pb": ((10.0, 130.6), (13.04, 67.01), (13.04, 162.1), (15.0, 111.6), (15.2, 107.8),
           (15.2, 148.5), (15.53, 141.6), (15.86, 134.4), (15.86, 154.8), (20.0, 86.36),
           (30.0, 30.32), (40.0, 14.36), (50.0, 8.041), (60.0, 5.021), (80.0, 2.419),
           (88.0, 1.910), (88.0, 7.683), (100.0, 5.549), (150.0, 2.014),
           (200.0, 0.9985)),  # L3, L2, L1 edges 13.04, 15.20, 15.86 keV; K edge 88.00 keV
}
_XRAY_SOURCE = "X-ray mu/rho: Hubbell & Seltzer, NIST SRD 126"


def _xray_table(key: str) -> XrayTable:
    if key in _WITH_EDGES:
        return _WITH_EDGES[key]
    return tuple(zip(_GRID_KEV, _GRID[key], strict=True))


def _mixture_table(mass_fractions: Mapping[str, float]) -> XrayTable:
    """Mixture rule on the shared grid (only for components without edges in range)."""
    total = sum(mass_fractions.values())
    values = [sum(w * _GRID[k][i] for k, w in mass_fractions.items()) / total
              for i in range(len(_GRID_KEV))]
    return tuple(zip(_GRID_KEV, (round(v, 6) for v in values), strict=True))


def _mass_fractions(atoms: Mapping[str, float]) -> dict[str, float]:
    molar = {"H": 1.008, "C": 12.011, "O": 15.999, "Si": 28.086}
    masses = {k: n * molar[k] for k, n in atoms.items()}
    total = sum(masses.values())
    return {k: m / total for k, m in masses.items()}


# ------------------------------------------------------------------------- neutron data
_SEARS = "Sears (1992) sigma_s + sigma_a(2200 m/s)"
_SIGMA = {  # (sigma_s, sigma_a) in barns, Sears (1992)
    "C": (5.551, 0.00350), "O": (4.232, 0.00019), "Si": (2.167, 0.171),
}
# Hydrogen in liquid water and in hydrated organic matter: the effective per-atom total
# cross section implied by water's measured ~104 b per molecule, (104 - sigma_O) / 2.
_SIGMA_H_EFFECTIVE = (104.0 - sum(_SIGMA["O"])) / 2.0


def _element(name: str, density: float, molar_mass: float, sigma_s: float, sigma_a: float,
             symbol: str, xray_key: str) -> Material:
    note = (f"{symbol}: {_SEARS} = {sigma_s:g} b + {sigma_a:g} b; "
            f"density {density:g} g/cm3, M {molar_mass:g} g/mol; {_XRAY_SOURCE} ({symbol})")
    return Material(name, density, molar_mass, sigma_s + sigma_a, note, _xray_table(xray_key))


def _air() -> Material:
    # Dry air by mole fraction; per mean molecule the cross sections add up by fraction.
    fractions = {"N2": 0.7808, "O2": 0.2095, "Ar": 0.0097}
    sigma = {"N2": 2 * (11.51 + 1.90), "O2": 2 * (4.232 + 0.00019), "Ar": 0.683 + 0.675}
    molar = {"N2": 2 * 14.007, "O2": 2 * 15.999, "Ar": 39.948}
    total = sum(fractions.values())
    sigma_mean = sum(fractions[k] * sigma[k] for k in fractions) / total
    molar_mean = sum(fractions[k] * molar[k] for k in fractions) / total
    note = ("dry air (N2 78.08 %, O2 20.95 %, Ar 0.97 % by moles) at 20 C and 1 atm, "
            f"{_SEARS} per mean molecule; {_XRAY_SOURCE} (air, dry)")
    return Material("air", 0.001204, molar_mean, sigma_mean, note, _xray_table("air"))


def _water() -> Material:
    # Hydrogen's scattering cross section depends on its chemical binding and on the
    # neutron energy: the bound-atom 82.02 b of Sears is the slow-neutron limit and would
    # give ~5.6 /cm. For thermal neutrons in liquid water the measured total cross
    # section is about 104 b per molecule, which reproduces the ~3.5 /cm that neutron
    # imaging beamlines measure for water.
    note = ("H2O: effective total cross section of liquid water for thermal neutrons, "
            "~104 b per molecule (not the bound-atom value 2 x 82.02 b + 4.232 b of Sears, "
            f"which applies to much slower neutrons); density 0.998 g/cm3; {_XRAY_SOURCE} "
            "(water, liquid)")
    return Material("water", 0.998, 2 * 1.008 + 15.999, 104.0, note, _xray_table("water"))


def _quartz(name: str, density: float, what: str) -> Material:
    sigma = sum(_SIGMA["Si"]) + 2 * sum(_SIGMA["O"])
    note = (f"{what}: SiO2, {_SEARS} = Si + 2 O = {sigma:.3f} b per formula unit; density "
            f"{density:g} g/cm3; X-ray mu/rho by the mixture rule from Si and O "
            f"({_XRAY_SOURCE})")
    table = _mixture_table(_mass_fractions({"Si": 1, "O": 2}))
    return Material(name, density, 28.086 + 2 * 15.999, sigma, note, table)


def _root() -> Material:
    # Fresh root tissue: 90 % water and 10 % cellulose (C6H10O5) by mass, as one mean
    # molecule per mole of either. Hydrogen takes its effective cross section in water.
    water_fraction, density = 0.90, 1.02
    molar_w, molar_c = 2 * 1.008 + 15.999, 6 * 12.011 + 10 * 1.008 + 5 * 15.999
    sigma_c = 6 * sum(_SIGMA["C"]) + 10 * _SIGMA_H_EFFECTIVE + 5 * sum(_SIGMA["O"])
    n_w, n_c = water_fraction / molar_w, (1 - water_fraction) / molar_c
    sigma_mean = (n_w * 104.0 + n_c * sigma_c) / (n_w + n_c)
    cellulose = _mass_fractions({"C": 6, "H": 10, "O": 5})
    fractions = {"water": water_fraction}
    for element, w in cellulose.items():
        fractions[element] = (1 - water_fraction) * w
    note = ("root tissue modelled as 90 % water + 10 % cellulose (C6H10O5) by mass, density "
            f"{density:g} g/cm3; neutron: water ~104 b per molecule, cellulose "
            f"{sigma_c:.0f} b (H at the effective {_SIGMA_H_EFFECTIVE:.1f} b it has in water); "
            f"X-ray mu/rho by the mixture rule ({_XRAY_SOURCE})")
    return Material("root", density, 1.0 / (n_w + n_c), sigma_mean, note,
                    _mixture_table(fractions))


def _build_table() -> dict[str, Material]:
    materials = [
        _air(),
        _element("aluminium", 2.699, 26.982, 1.503, 0.231, "Al", "Al"),
        _element("silicon", 2.329, 28.086, 2.167, 0.171, "Si", "Si"),
        _element("titanium", 4.506, 47.867, 4.35, 6.09, "Ti", "Ti"),
        _element("iron", 7.874, 55.845, 11.62, 2.56, "Fe", "Fe"),
        _element("nickel", 8.908, 58.693, 18.5, 4.49, "Ni", "Ni"),
        _element("copper", 8.96, 63.546, 8.03, 3.78, "Cu", "Cu"),
        _element("zirconium", 6.52, 91.224, 6.46, 0.185, "Zr", "Zr"),
        _element("lead", 11.34, 207.2, 11.118, 0.171, "Pb", "Pb"),
        _water(),
        _element("lithium", 0.534, 6.94, 1.37, 70.5, "Li (natural)", "Li"),
        _element("boron", 2.34, 10.81, 5.24, 767.0, "B (natural)", "B"),
        _element("cadmium", 8.65, 112.414, 6.50, 2520.0, "Cd", "Cd"),
        _element("gadolinium", 7.90, 157.25, 180.0, 49700.0, "Gd", "Gd"),
        _quartz("quartz", 2.65, "quartz (sand grains)"),
        _quartz("sand", 1.59, "dry quartz sand, bulk: quartz 2.65 g/cm3 at porosity 0.40"),
        _root(),
    ]
    return {m.name: m for m in materials}


MATERIALS: Mapping[str, Material] = MappingProxyType(_build_table())

# Spellings users are likely to type; every alias points at a key of MATERIALS.
_ALIASES = {
    "aluminum": "aluminium", "al": "aluminium", "si": "silicon", "ti": "titanium",
    "fe": "iron", "steel": "iron", "ni": "nickel", "cu": "copper", "zr": "zirconium",
    "pb": "lead", "h2o": "water", "li": "lithium", "b": "boron", "cd": "cadmium",
    "gd": "gadolinium", "sio2": "quartz", "soil": "sand", "roots": "root",
}


def get_material(material: str) -> Material:
    """Look up a material by name, symbol or common alias (case-insensitive).

    Parameters
    ----------
    material : str
        A key of :data:`MATERIALS` ("iron"), a chemical symbol ("Fe") or an alias:
        "aluminum", "H2O", "SiO2" (quartz), "soil" (dry sand), "steel" (mild steel as iron).

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


def attenuation_coefficient(material: str, *, radiation: str = "neutron",
                            energy_kev: float | None = None) -> float:
    """Linear attenuation coefficient of a material, in 1/cm.

    For neutrons this is the thermal-neutron (25.3 meV, 1.8 Å) macroscopic total cross
    section ``mu = rho * N_A / M * sigma_total`` computed from the materials table. For
    X-rays it is ``mu = (mu/rho)(E) * rho`` for monochromatic photons of energy ``E``,
    with the NIST mass attenuation coefficients interpolated log-log in energy.

    Parameters
    ----------
    material : str
        Material name, chemical symbol or alias (see :func:`get_material`).
    radiation : {"neutron", "xray"}, optional
        Kind of radiation.
    energy_kev : float, optional
        Photon energy in keV (10 to 200); required for X-rays, not accepted for neutrons.

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
    >>> round(attenuation_coefficient("water", radiation="xray", energy_kev=100.0), 3)
    0.17
    >>> round(attenuation_coefficient("lead", radiation="xray", energy_kev=100.0), 1)
    62.9
    """
    if radiation not in SUPPORTED_RADIATION:
        raise ValueError(f"radiation must be one of {', '.join(map(repr, SUPPORTED_RADIATION))}, "
                         f"got {radiation!r}")
    entry = get_material(material)
    if radiation == "neutron":
        if energy_kev is not None:
            raise ValueError("energy_kev applies to X-rays only; neutron coefficients are for "
                             f"thermal neutrons (25.3 meV), got energy_kev={energy_kev!r}")
        return entry.mu_neutron
    if energy_kev is None:
        raise ValueError("energy_kev must be given for radiation='xray' (a photon energy from "
                         f"{XRAY_ENERGY_RANGE_KEV[0]:g} to {XRAY_ENERGY_RANGE_KEV[1]:g} keV)")
    return entry.mu_xray(energy_kev)

