"""Wavelength-dependent neutron cross sections of polycrystalline cubic metals (Bragg edges).

A polycrystal with randomly oriented grains scatters coherently and elastically into
reflection ``hkl`` only while the wavelength satisfies Bragg's law for some grain,
``lambda <= 2 d_hkl``; beyond ``2 d_hkl`` the reflection is lost and the transmission
jumps up: a Bragg edge. The coherent elastic cross section per atom is

    sigma_coh(lambda) = lambda^2 / (2 V0 N) * sum over 2 d_hkl >= lambda of |F_hkl|^2 d_hkl m_hkl

with ``V0`` the volume of the conventional cubic cell holding ``N`` atoms, ``m_hkl`` the
multiplicity (all signed permutations with the same ``d``), ``d_hkl = a / sqrt(h^2 + k^2 +
l^2)`` and ``F_hkl`` the structure factor from the coherent scattering length ``b``:
fcc ``F = 4 b`` when h, k, l are all even or all odd (else 0), bcc ``F = 2 b`` when
``h + k + l`` is even. At short wavelengths the sum tends to ``4 pi b^2``, the bound
coherent cross section. Added to it: incoherent scattering (constant) and absorption
(``1/v`` law, proportional to ``lambda``, tabulated at 1.798 Å = 2200 m/s). Not modelled:
texture, extinction, the Debye–Waller factor (thermal vibrations damp short-``d``
reflections by a few per cent at room temperature) and thermal diffuse (inelastic)
scattering, which adds a smooth background. Data: coherent scattering lengths and cross
sections of V. F. Sears, Neutron News 3(3) 26-37 (1992); room-temperature lattice
parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ._materials import get_material

__all__ = ["CRYSTALS", "Crystal", "bragg_edges", "tof_attenuation", "tof_cross_sections"]

THERMAL_WAVELENGTH = 1.798  # Å: 2200 m/s, where absorption cross sections are tabulated
FM2_PER_BARN = 100.0  # 1 b = 1e-24 cm^2 = 100 fm^2


@dataclass(frozen=True)
class Crystal:
    """Crystal data of a cubic metal for Bragg-edge cross sections.

    Parameters
    ----------
    material : str
        Key of the material in the materials table.
    structure : {"fcc", "bcc"}
        Lattice type.
    lattice_constant : float
        Cubic lattice parameter ``a`` in Å (room temperature).
    b_coherent : float
        Bound coherent scattering length in fm.
    sigma_incoherent : float
        Incoherent scattering cross section in barn.
    sigma_absorption : float
        Absorption cross section at 2200 m/s (1.798 Å) in barn.

    Examples
    --------
    >>> from niseg.simulate import CRYSTALS
    >>> round(CRYSTALS["iron"].number_density * 1e-22, 3)  # atoms per cm^3 / 1e22
    8.491
    """

    material: str
    structure: str
    lattice_constant: float
    b_coherent: float
    sigma_incoherent: float
    sigma_absorption: float

    @property
    def atoms_per_cell(self) -> int:
        """Atoms in the conventional cubic cell (4 for fcc, 2 for bcc)."""
        return 4 if self.structure == "fcc" else 2

    @property
    def number_density(self) -> float:
        """Atoms per cm^3 from the lattice (``N / a^3``)."""
        return self.atoms_per_cell / (self.lattice_constant * 1e-8) ** 3


_SEARS = MappingProxyType({
    "aluminium": Crystal("aluminium", "fcc", 4.0495, 3.449, 0.0082, 0.231),
    "iron": Crystal("iron", "bcc", 2.8665, 9.45, 0.40, 2.56),
    "nickel": Crystal("nickel", "fcc", 3.524, 10.3, 5.2, 4.49),
    "copper": Crystal("copper", "fcc", 3.615, 7.718, 0.55, 3.78),
    "lead": Crystal("lead", "fcc", 4.9502, 9.405, 0.003, 0.171),
})
CRYSTALS: Mapping[str, Crystal] = _SEARS


def _crystal(material: str) -> Crystal:
    name = get_material(material).name
    if name not in CRYSTALS:
        raise ValueError(f"material {material!r} has no crystal data for Bragg edges; "
                         f"choose from {', '.join(CRYSTALS)}")
    return CRYSTALS[name]


def _families(crystal: Crystal, d_min: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Allowed reflections with ``d >= d_min``: (h^2+k^2+l^2, multiplicity, representative)."""
    a = crystal.lattice_constant
    limit = math.floor(a / d_min)
    r = np.arange(-limit, limit + 1)
    h, k, l = (v.ravel() for v in np.meshgrid(r, r, r, indexing="ij"))
    s = h * h + k * k + l * l
    if crystal.structure == "fcc":
        parity = np.stack([h, k, l]) % 2
        allowed = np.all(parity == parity[0], axis=0)
    else:
        allowed = (h + k + l) % 2 == 0
    keep = allowed & (s > 0) & (s <= (a / d_min) ** 2)
    squares, multiplicity = np.unique(s[keep], return_counts=True)
    return squares, multiplicity, np.stack([h[keep], k[keep], l[keep]], axis=1)


def bragg_edges(material: str, *, wavelength_min: float = 1.0) -> list[dict[str, Any]]:
    """Bragg edges of a cubic polycrystal at wavelengths of at least ``wavelength_min``.

    Parameters
    ----------
    material : str
        A material of :data:`CRYSTALS` (name, symbol or alias).
    wavelength_min : float, optional
        Shortest edge wavelength to list, in Å.

    Returns
    -------
    list of dict
        One per reflection family, longest wavelength first: ``hkl`` (Miller indices,
        h >= k >= l >= 0), ``d`` (spacing in Å), ``wavelength`` (edge ``2 d`` in Å) and
        ``multiplicity``.

    Examples
    --------
    >>> from niseg.simulate import bragg_edges
    >>> edge = bragg_edges("iron")[0]
    >>> edge["hkl"], round(edge["wavelength"], 3), edge["multiplicity"]
    ((1, 1, 0), 4.054, 12)
    """
    crystal = _crystal(material)
    if not (isinstance(wavelength_min, (int, float)) and math.isfinite(wavelength_min)
            and wavelength_min > 0):
        raise ValueError(f"wavelength_min must be a positive number of Å, got {wavelength_min!r}")
    squares, multiplicity, _ = _families(crystal, wavelength_min / 2.0)
    edges = []
    for s, m in zip(squares, multiplicity):
        d = crystal.lattice_constant / math.sqrt(s)
        edges.append({"hkl": _miller(int(s), crystal.structure), "d": d, "wavelength": 2.0 * d,
                      "multiplicity": int(m)})
    return edges


def _miller(square: int, structure: str) -> tuple[int, int, int]:
    # The smallest sorted triple with this h^2 + k^2 + l^2 that the structure allows.
    top = math.isqrt(square)
    for h in range(top, -1, -1):
        for k in range(h, -1, -1):
            rest = square - h * h - k * k
            if rest < 0 or rest > k * k:
                continue
            l = math.isqrt(rest)
            if l * l != rest:
                continue
            ok = (len({h % 2, k % 2, l % 2}) == 1 if structure == "fcc"
                  else (h + k + l) % 2 == 0)
            if ok:
                return (h, k, l)
    raise AssertionError(f"no allowed reflection with h^2+k^2+l^2 = {square}")


def tof_cross_sections(material: str, wavelength: Any) -> dict[str, np.ndarray]:
    """Neutron cross sections per atom of a polycrystal as functions of wavelength.

    Parameters
    ----------
    material : str
        A material of :data:`CRYSTALS`.
    wavelength : (L,) array_like
        Wavelengths in Å (positive).

    Returns
    -------
    dict of str to (L,) float64 ndarray
        ``coherent_elastic`` (Bragg), ``incoherent``, ``absorption`` and ``total``, in
        barn per atom.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.simulate import tof_cross_sections
    >>> s = tof_cross_sections("iron", [4.0, 4.1])
    >>> bool(s["coherent_elastic"][0] > 0), float(s["coherent_elastic"][1])  # past (110)
    (True, 0.0)
    """
    crystal = _crystal(material)
    lam = np.asarray(wavelength, dtype=np.float64)
    if lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError("wavelength must hold positive finite numbers of Å")
    squares, multiplicity, _ = _families(crystal, float(lam.min()) / 2.0)
    a = crystal.lattice_constant
    d = a / np.sqrt(squares)  # descending with squares ascending
    f2 = (crystal.atoms_per_cell * crystal.b_coherent) ** 2 / FM2_PER_BARN  # |F|^2 in barn
    terms = f2 * d * multiplicity
    cumulative = np.concatenate([[0.0], np.cumsum(terms)])
    # Reflections with 2 d >= lambda contribute: count them in the ascending edge list.
    count = np.searchsorted(-2.0 * d, -lam, side="right")
    coherent = lam**2 / (2.0 * a**3 * crystal.atoms_per_cell) * cumulative[count]
    incoherent = np.full_like(lam, crystal.sigma_incoherent)
    absorption = crystal.sigma_absorption * lam / THERMAL_WAVELENGTH
    return {"coherent_elastic": coherent, "incoherent": incoherent, "absorption": absorption,
            "total": coherent + incoherent + absorption}


def tof_attenuation(material: str, wavelength: Any) -> np.ndarray:
    """Linear attenuation coefficient of a polycrystal versus wavelength, in 1/cm.

    ``mu(lambda) = n * sigma_total(lambda)`` with ``n`` atoms per cm^3 from the lattice.

    Parameters
    ----------
    material : str
        A material of :data:`CRYSTALS`.
    wavelength : (L,) array_like
        Wavelengths in Å.

    Returns
    -------
    (L,) float64 ndarray

    Examples
    --------
    >>> from niseg.simulate import tof_attenuation
    >>> mu = tof_attenuation("copper", [4.1, 4.3])  # across the Cu (111) edge at 4.17 Å
    >>> bool(mu[0] > 1.5 * mu[1])
    True
    """
    crystal = _crystal(material)
    return crystal.number_density * tof_cross_sections(material, wavelength)["total"] * 1e-24
