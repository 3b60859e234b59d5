"""Time-of-flight (wavelength-resolved) neutron transmission cubes with Bragg edges.

A pulsed source sends neutrons of all wavelengths; over a flight path ``L`` a neutron of
wavelength ``lambda`` arrives after ``t = lambda m_n L / h`` (de Broglie), so time bins
are wavelength bins. Cubes are ``(M, N, L)`` arrays with axes ``yxl``: the spectrum of a
pixel is ``cube[y, x, :]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq

from ._bragg import _crystal, tof_attenuation
from ._phantom import _check_seed
from ._radiograph import MAX_COUNTS, _check_number

__all__ = ["ToFCube", "moderator_spectrum", "simulate_tof"]

SIMULATOR = "niseg.simulate.simulate_tof"
PLANCK = 6.62607015e-34  # J s (exact, SI 2019)
BOLTZMANN = 1.380649e-23  # J / K (exact, SI 2019)
NEUTRON_MASS = 1.67492750056e-27  # kg (CODATA 2018)
SUBSAMPLES = 16  # wavelengths per bin at which spectrum and transmission are integrated


@dataclass(frozen=True, eq=False)
class ToFCube:
    """A simulated time-of-flight transmission experiment with exact truth.

    Attributes
    ----------
    sample : (M, N, L) float32 ndarray
        Detected neutrons per pixel and wavelength bin behind the sample (axes ``yxl``).
    open_beam : (M, N, L) float32 ndarray
        The same without the sample, same exposure.
    transmission : (M, N, L) float32 ndarray
        Noiseless transmission per bin: expected sample over expected open-beam counts.
    truth : (M, N) uint8 ndarray
        0 = open beam, ``k`` = ``metadata["classes"][k - 1]``.
    wavelengths : (L,) float64 ndarray
        Bin centres in Å (bins of equal width).
    tof : (L,) float64 ndarray
        Bin centres as time of flight in seconds.
    class_transmission : (K, L) float64 ndarray
        Noiseless transmission spectrum of each class.
    metadata : dict
        JSON-compatible description; see :func:`simulate_tof`.

    Examples
    --------
    >>> from niseg.simulate import simulate_tof
    >>> cube = simulate_tof(shape=(32, 32), n_bins=50, seed=0)
    >>> cube.sample.shape, cube.metadata["axes"]
    ((32, 32, 50), 'yxl')
    """

    sample: np.ndarray
    open_beam: np.ndarray
    transmission: np.ndarray
    truth: np.ndarray
    wavelengths: np.ndarray
    tof: np.ndarray
    class_transmission: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


def moderator_spectrum(wavelength: Any, *, temperature: float = 120.0) -> np.ndarray:
    """Maxwellian flux of a moderator per unit wavelength, peak normalised to 1.

    ``phi(lambda) ~ lambda^-5 exp(-(lambda_T / lambda)^2)`` with
    ``lambda_T = h / sqrt(2 m_n k_B T)`` (1.78 Å at 300 K); it peaks at
    ``lambda_T sqrt(2 / 5)`` (1.78 Å at 120 K, where 1 Å and 6 Å still get 8 % and 2 %
    of the peak flux). Real moderators add an epithermal tail at short wavelengths and
    guides cut some out; neither is modelled.

    Parameters
    ----------
    wavelength : (L,) array_like
        Wavelengths in Å.
    temperature : float, optional
        Moderator temperature in K (about 20–40 K cold, 300 K thermal).

    Returns
    -------
    (L,) float64 ndarray
        Relative flux, 1 at the Maxwellian's maximum.

    Examples
    --------
    >>> from niseg.simulate import moderator_spectrum
    >>> moderator_spectrum([1.0, 1.78, 6.0], temperature=120.0).round(2)
    array([0.08, 1.  , 0.02])
    """
    temperature = _check_number("temperature", temperature, low=0.0, high=1e5, what="kelvin")
    lam = np.asarray(wavelength, dtype=np.float64)
    if lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError("wavelength must hold positive finite numbers of Å")
    lam_t = PLANCK / math.sqrt(2.0 * NEUTRON_MASS * BOLTZMANN * temperature) * 1e10
    peak = lam_t * math.sqrt(2.0 / 5.0)

    def shape(x: np.ndarray | float) -> Any:
        return x**-5 * np.exp(-((lam_t / x) ** 2))

    return shape(lam) / shape(peak)


def simulate_tof(
    *,
    shape: tuple[int, int] = (64, 64),
    n_bins: int = 200,
    wavelength_range: tuple[float, float] = (1.0, 6.0),
    materials: Sequence[str] = ("iron", "copper", "aluminium"),
    mean_transmission: float = 0.5,
    counts: float = 500.0,
    flight_path_m: float = 20.0,
    moderator_temperature_k: float = 120.0,
    noise: bool = True,
    pixel_size_um: float = 55.0,
    seed: int = 0,
) -> ToFCube:
    """Simulate a wavelength-resolved transmission cube of polycrystalline plates.

    Each material is a plate (a rectangle of random size and position in its own cell of
    a grid, cells shuffled by the seed) whose thickness is chosen so that its
    transmission *integrated over the open-beam spectrum* is ``mean_transmission``: a
    white-beam radiograph cannot tell the plates apart, their spectra (Bragg edges at
    ``2 d_hkl``) can. Cross sections: :func:`tof_cross_sections`; spectrum:
    :func:`moderator_spectrum`; counts are Poisson in every pixel and bin for the sample
    and for the open beam. Bins are equally wide in wavelength (and in time of flight);
    spectrum and transmission are integrated over each bin.

    Parameters
    ----------
    shape : (int, int), optional
        Image size ``(M, N)`` in pixels (at least 16 each).
    n_bins : int, optional
        Number of wavelength bins (at least 2).
    wavelength_range : (float, float), optional
        Shortest and longest wavelength in Å.
    materials : sequence of str, optional
        Distinct materials with crystal data (:data:`CRYSTALS`: aluminium, iron, nickel,
        copper, lead), classes ``1..K`` in this order.
    mean_transmission : float, optional
        Spectrum-weighted transmission of every plate, in (0, 1).
    counts : float, optional
        Expected open-beam neutrons per pixel in the brightest bin.
    flight_path_m : float, optional
        Source–detector distance in metres (sets the time of flight of each bin).
    moderator_temperature_k : float, optional
        Temperature of the Maxwellian spectrum in K.
    noise : bool, optional
        Draw Poisson counts; False returns expected counts, so that
        ``sample / open_beam == transmission``.
    pixel_size_um : float, optional
        Pixel size in micrometres.
    seed : int, optional
        Seed of every random step.

    Returns
    -------
    ToFCube
        Arrays and ``metadata``: ``axes`` ("yxl"), ``pixel_size``, ``unit`` ("um"),
        ``classes``, ``thickness_cm`` (per class), ``wavelengths`` and ``bin_edges`` (Å),
        ``tof_s`` (bin centres, s), ``bragg_edges`` (Å, per class, in range), the
        parameters, ``seed``, ``radiation`` and ``simulator``.

    Examples
    --------
    >>> from niseg.simulate import simulate_tof
    >>> cube = simulate_tof(shape=(32, 32), n_bins=100, noise=False, seed=0)
    >>> cube.metadata["classes"]
    ['iron', 'copper', 'aluminium']
    >>> import numpy as np
    >>> bool(np.allclose(cube.sample / cube.open_beam, cube.transmission))
    True
    """
    dims = _check_dims(shape)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise TypeError(f"n_bins must be an integer, got {type(n_bins).__name__}")
    if not 2 <= n_bins <= 100_000:
        raise ValueError(f"n_bins must be an integer from 2 to 100000, got {n_bins}")
    lo, hi = _check_range(wavelength_range)
    names = _check_materials(materials)
    mean_t = _check_number("mean_transmission", mean_transmission, low=0.0, high=1.0,
                           what="transmission")
    if mean_t >= 1.0:
        raise ValueError(f"mean_transmission must be in (0, 1), got {mean_t!r}")
    counts = _check_number("counts", counts, low=0.0, high=MAX_COUNTS, what="neutrons per pixel")
    flight = _check_number("flight_path_m", flight_path_m, low=0.0, high=1e4, what="metres")
    temperature = _check_number("moderator_temperature_k", moderator_temperature_k, low=0.0,
                                high=1e5, what="kelvin")
    if not isinstance(noise, (bool, np.bool_)):
        raise TypeError(f"noise must be True or False, got {type(noise).__name__}")
    pixel_um = _check_number("pixel_size_um", pixel_size_um, low=0.0, high=math.inf,
                             what="micrometres")
    seed = _check_seed(seed)
    layout_rng, noise_rng = (np.random.default_rng(s)
                             for s in np.random.SeedSequence(seed).spawn(2))

    edges = np.linspace(lo, hi, n_bins + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    width = edges[1] - edges[0]
    fine = (edges[:-1, None] + width * (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES)  # (L, S)
    flux = moderator_spectrum(fine, temperature=temperature)
    open_bin = flux.mean(axis=1)  # mean flux of each bin

    thickness = {}
    spectra = np.empty((len(names), n_bins))
    for k, name in enumerate(names):
        mu = tof_attenuation(name, fine.ravel()).reshape(fine.shape)
        d = _equalising_thickness(mu, flux, mean_t, name)
        thickness[name] = d
        spectra[k] = (flux * np.exp(-mu * d)).mean(axis=1) / open_bin

    truth = _layout(dims, len(names), layout_rng)
    per_class = np.concatenate([np.ones((1, n_bins)), spectra])  # class 0: open beam
    transmission = per_class[truth]  # (M, N, L)
    scale = counts / open_bin.max()
    open_expected = np.broadcast_to(scale * open_bin, transmission.shape)
    sample_expected = open_expected * transmission
    if noise:
        sample = noise_rng.poisson(sample_expected).astype(np.float32)
        open_beam = noise_rng.poisson(open_expected).astype(np.float32)
    else:
        sample = sample_expected.astype(np.float32)
        open_beam = np.array(open_expected, dtype=np.float32)
    tof = centres * 1e-10 * NEUTRON_MASS * flight / PLANCK

    metadata: dict[str, Any] = {
        "axes": "yxl",
        "pixel_size": (pixel_um, pixel_um),
        "unit": "um",
        "classes": list(names),
        "thickness_cm": thickness,
        "wavelengths": centres.tolist(),
        "bin_edges": edges.tolist(),
        "wavelength_unit": "angstrom",
        "tof_s": tof.tolist(),
        "bragg_edges": {n: [e["wavelength"] for e in _edges_in(n, lo, hi)] for n in names},
        "mean_transmission": mean_t,
        "counts": counts,
        "flight_path_m": flight,
        "moderator_temperature_k": temperature,
        "noise": bool(noise),
        "seed": seed,
        "radiation": "neutron",
        "simulator": SIMULATOR,
    }
    return ToFCube(sample=sample, open_beam=open_beam,
                   transmission=transmission.astype(np.float32), truth=truth,
                   wavelengths=centres, tof=tof, class_transmission=spectra,
                   metadata=metadata)


def _equalising_thickness(mu: np.ndarray, flux: np.ndarray, target: float, name: str) -> float:
    """Thickness (cm) whose flux-weighted transmission is ``target``."""
    weights = flux / flux.sum()

    def excess(d: float) -> float:
        return float(np.sum(weights * np.exp(-mu * d))) - target

    upper = 1.0
    while excess(upper) > 0:
        upper *= 2.0
        if upper > 1e4:
            raise ValueError(f"{name} attenuates too little in this wavelength range to reach "
                             f"mean_transmission {target} with a plate under 100 m")
    return float(brentq(excess, 0.0, upper, xtol=1e-12, rtol=1e-12))


def _edges_in(name: str, lo: float, hi: float) -> list[dict[str, Any]]:
    from ._bragg import bragg_edges

    return [e for e in bragg_edges(name, wavelength_min=lo) if e["wavelength"] <= hi]


def _layout(dims: tuple[int, int], k: int, rng: np.random.Generator) -> np.ndarray:
    """One rectangle per class, each inside its own cell of a near-square grid."""
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    cells = rng.permutation(rows * cols)[:k]
    truth = np.zeros(dims, dtype=np.uint8)
    ch, cw = dims[0] / rows, dims[1] / cols
    for label, cell in enumerate(cells, start=1):
        r, c = divmod(int(cell), cols)
        h = max(2, round(ch * rng.uniform(0.55, 0.8)))
        w = max(2, round(cw * rng.uniform(0.55, 0.8)))
        y0 = int(r * ch + rng.uniform(0.05, 0.95) * (ch - h))
        x0 = int(c * cw + rng.uniform(0.05, 0.95) * (cw - w))
        truth[y0:y0 + h, x0:x0 + w] = label
    return truth


def _check_dims(shape: Any) -> tuple[int, int]:
    expected = "shape must be a pair of pixel counts (M, N)"
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"{expected}, got {shape!r}") from None
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  for v in items):
        raise TypeError(f"{expected}, got {shape!r}")
    dims = (int(items[0]), int(items[1]))
    if min(dims) < 16:
        raise ValueError(f"shape must be at least 16 pixels along each axis, got {dims}")
    return dims


def _check_range(wavelength_range: Any) -> tuple[float, float]:
    expected = "wavelength_range must be a pair (shortest, longest) of positive numbers of Å"
    try:
        lo, hi = (float(v) for v in wavelength_range)
    except (TypeError, ValueError):
        raise TypeError(f"{expected}, got {wavelength_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi <= 100.0):
        raise ValueError(f"{expected} with shortest < longest <= 100, got {wavelength_range!r}")
    return lo, hi


def _check_materials(materials: Any) -> tuple[str, ...]:
    if isinstance(materials, str) or not isinstance(materials, Sequence):
        raise TypeError(f"materials must be a sequence of material names, "
                        f"got {type(materials).__name__}")
    if not 1 <= len(materials) <= 64:
        raise ValueError(f"materials must name 1 to 64 materials, got {len(materials)}")
    names = tuple(_crystal(m).material for m in materials)
    if len(set(names)) != len(names):
        raise ValueError(f"materials must be distinct, got {list(materials)!r}")
    return names
