"""Branching root systems in soil: neutron radiographs (2D) and tomograms (3D) with truth.

Roots are mostly water and hydrogen attenuates thermal neutrons strongly, so roots stand
out against soil by their water content; the difficulty for segmentation is the soil
around them, whose pores hold water too. Axis 0 is depth (down) in both 2D (``yx``,
a rhizotron seen face-on) and 3D (``zyx``, a pot whose axis is the rotation axis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ._materials import get_material
from ._phantom import _check_seed
from ._radiograph import MAX_COUNTS, _check_number
from ._reconstruction import fbp_noise, fbp_noise_std, mean_inverse_transmission

__all__ = ["Roots", "simulate_roots"]

SIMULATOR = "niseg.simulate.simulate_roots"
MAX_ROOT_FRACTION = 0.02  # roots never fill more of the image or volume than this
STEP = 0.5  # voxels between centreline points: below the smallest radius, so tubes are closed
MIN_RADIUS = 1.0
NOISE_ANGLES = 180  # projections assumed for the reconstruction noise of 3D volumes
ROOT_WATER_MASS_FRACTION = 0.9  # as the "root" material of the materials table


@dataclass(frozen=True, eq=False)
class Roots:
    """A simulated image of roots in soil with its exact ground truth.

    Attributes
    ----------
    image : (M, N) or (P, M, N) float32 ndarray
        2D: transmission (``counts=None``) or detected neutrons (Poisson). 3D: attenuation
        coefficient in 1/cm, plus reconstruction noise when ``counts`` is given.
    truth : same shape, uint8 ndarray
        1 = soil, 2 = root (``metadata["classes"]`` = ["soil", "root"]).
    roots : same shape, uint8 ndarray
        Binary root mask: 1 = root, 0 = soil.
    water_content : same shape, float32 ndarray
        Volumetric water content (water volume per volume): per voxel in 3D, averaged
        along the beam in 2D.
    transmission : (M, N) float32 ndarray or None
        2D only: noiseless transmission.
    open_beam : (M, N) float32 ndarray or None
        2D with ``counts`` only: an open-beam frame at the same exposure.
    mu : (P, M, N) float32 ndarray or None
        3D only: noiseless attenuation coefficient in 1/cm.
    metadata : dict
        JSON-compatible description; see :func:`simulate_roots`.

    Examples
    --------
    >>> from niseg.simulate import simulate_roots
    >>> sim = simulate_roots(shape=(64, 64), seed=0)
    >>> sim.image.shape, sim.truth.dtype, sim.metadata["classes"]
    ((64, 64), dtype('uint8'), ['soil', 'root'])
    """

    image: np.ndarray
    truth: np.ndarray
    roots: np.ndarray
    water_content: np.ndarray
    transmission: np.ndarray | None = None
    open_beam: np.ndarray | None = None
    mu: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def simulate_roots(
    *,
    shape: tuple[int, ...] = (256, 256),
    water_content: float | tuple[float, float] = (0.10, 0.25),
    porosity: float = 0.4,
    n_laterals: int | None = None,
    thickness_cm: float = 0.5,
    pixel_size_um: float = 100.0,
    counts: float | None = None,
    seed: int = 0,
) -> Roots:
    """Simulate a branching root system in soil, as a neutron radiograph or a tomogram.

    A taproot starts at the top and grows down (persistent random walk with gravitropism,
    radius tapering from about 2 to 1 voxels); lateral roots leave it at 55–85 degrees,
    grow with weaker gravitropism and carry a few second-order laterals (radius 1 to 1.6
    voxels). Painting stops before the roots would cover 2 % of the image (area) or
    volume; at the default sizes they cover well under 1 %.
    The soil is quartz grains and pores whose water content rises smoothly with depth
    (from ``water_content[0]`` at the top to ``water_content[1]`` at the bottom, with
    smooth lateral variations of about 15 %); roots are the "root" material of the
    materials table (90 % water by mass). Attenuation coefficients (1/cm) come from the
    table: quartz 0.287, water 3.47, root 3.40, air 0.0006.

    Parameters
    ----------
    shape : (int, int) or (int, int, int), optional
        ``(M, N)`` for a radiograph of a thin rhizotron (axes ``yx``) or ``(P, M, N)`` for
        a volume (axes ``zyx``); at least 16 pixels per axis; axis 0 is depth.
    water_content : float or (float, float), optional
        Volumetric water content of the soil at the top and at the bottom (one number:
        the same at all depths); at most ``porosity``.
    porosity : float, optional
        Pore volume fraction of the soil, in (0, 1).
    n_laterals : int, optional
        Number of first-order laterals; default one per 48 pixels of depth in 2D and one
        per 6 voxels of depth in 3D.
    thickness_cm : float, optional
        2D only: thickness of the soil slab along the beam in cm.
    pixel_size_um : float, optional
        Pixel (voxel) size in micrometres.
    counts : float, optional
        None: noiseless. 2D: open-beam neutrons per pixel, Poisson counting. 3D: the
        exposure per projection of a 180-projection scan; adds the correlated noise of a
        filtered back-projection (as ``simulate_tomography(mode="volume")``, no rings).
    seed : int, optional
        Seed of every random step.

    Returns
    -------
    Roots
        Arrays and ``metadata``: ``axes``, ``pixel_size``, ``unit`` ("um"), ``classes``,
        ``value`` (what ``image`` holds), ``root_fraction``, ``n_branches``,
        ``mu_per_cm`` (quartz, water, air, root), the parameters, ``seed``, ``radiation``
        and ``simulator``.

    Examples
    --------
    >>> from niseg.simulate import simulate_roots
    >>> sim = simulate_roots(shape=(128, 128), counts=2000.0, seed=1)
    >>> float(sim.roots.mean()) < 0.02
    True
    >>> vol = simulate_roots(shape=(32, 48, 48), seed=1)
    >>> vol.image.shape, vol.metadata["axes"]
    ((32, 48, 48), 'zyx')
    """
    dims = _check_dims(shape)
    porosity = _check_number("porosity", porosity, low=0.0, high=1.0, what="volume fraction")
    if porosity >= 1.0:
        raise ValueError(f"porosity must be a volume fraction in (0, 1), got {porosity!r}")
    top, bottom = _check_water(water_content, porosity)
    if n_laterals is None:
        # A plane holds far less root volume than a volume for the same architecture.
        n_laterals = max(1, round(dims[0] / (48 if len(dims) == 2 else 6)))
    elif isinstance(n_laterals, bool) or not isinstance(n_laterals, (int, np.integer)):
        raise TypeError(f"n_laterals must be a non-negative integer or None, "
                        f"got {type(n_laterals).__name__}")
    elif not 0 <= n_laterals <= 10_000:
        raise ValueError(f"n_laterals must be an integer from 0 to 10000, got {n_laterals}")
    thickness = _check_number("thickness_cm", thickness_cm, low=0.0, high=1e3, what="cm")
    pixel_um = _check_number("pixel_size_um", pixel_size_um, low=0.0, high=math.inf,
                             what="micrometres")
    if counts is not None:
        counts = _check_number("counts", counts, low=0.0, high=MAX_COUNTS,
                               what="neutrons per pixel")
    seed = _check_seed(seed)

    streams = np.random.SeedSequence(seed).spawn(3)
    root_rng, soil_rng, noise_rng = (np.random.default_rng(s) for s in streams)
    branches = _root_system(dims, int(n_laterals), root_rng)
    pixel_cm = pixel_um * 1e-4
    water, air, quartz, root = (get_material(m) for m in ("water", "air", "quartz", "root"))
    water_mu, air_mu, quartz_mu, root_mu = (m.mu_neutron for m in (water, air, quartz, root))
    # The table's root tissue is 90 % water by mass; as a volume fraction:
    root_water = ROOT_WATER_MASS_FRACTION * root.density / water.density
    theta = _water_field(dims, top, bottom, soil_rng)

    if len(dims) == 2:
        chord_px, n_branches = _paint(dims, branches, chord=True)
        mask = chord_px > 0
        chord = np.minimum(chord_px * pixel_cm, thickness)
        # Along the beam the slab averages many grains: what remains is a small, smooth
        # variation of the porosity.
        phi = np.clip(porosity + 0.03 * _smooth_unit(dims, 2.0, soil_rng), 0.01, 0.99)
        theta = np.minimum(theta, phi)
        soil_mu = (1.0 - phi) * quartz_mu + theta * water_mu + (phi - theta) * air_mu
        attenuation = soil_mu * (thickness - chord) + root_mu * chord
        transmission = np.exp(-attenuation)
        water_map = (theta * (thickness - chord) + root_water * chord) / thickness
        open_beam = None
        if counts is None:
            image = transmission
            value = "transmission"
        else:
            image = noise_rng.poisson(counts * transmission).astype(np.float64)
            open_beam = noise_rng.poisson(counts, size=dims).astype(np.float32)
            value = "counts"
        mu = None
        transmission = transmission.astype(np.float32)
    else:
        inside, n_branches = _paint(dims, branches, chord=False)
        mask = inside > 0
        grains = _smooth_unit(dims, 1.2, soil_rng)
        pore = grains < np.quantile(grains, porosity)
        saturation = np.clip(theta / porosity, 0.0, 1.0)
        water_map = np.where(pore, saturation, 0.0)
        mu_volume = np.where(pore, saturation * water_mu + (1.0 - saturation) * air_mu,
                             quartz_mu)
        mu_volume[mask] = root_mu
        water_map[mask] = root_water
        image = mu_volume.copy()
        value = "attenuation coefficient (1/cm)"
        if counts is not None:
            inverse_t = mean_inverse_transmission(mu_volume, pixel_cm, counts)
            sigma = fbp_noise_std(max(dims[1:]), NOISE_ANGLES, inverse_t / counts, 0.0)
            image += sigma / pixel_cm * fbp_noise(dims, 0.0, noise_rng)
            value = "reconstructed attenuation coefficient (1/cm)"
        transmission = open_beam = None
        mu = mu_volume.astype(np.float32)

    fraction = float(mask.mean())
    truth = np.where(mask, 2, 1).astype(np.uint8)
    metadata: dict[str, Any] = {
        "axes": "yx" if len(dims) == 2 else "zyx",
        "pixel_size": (pixel_um,) * len(dims),
        "unit": "um",
        "classes": ["soil", "root"],
        "value": value,
        "root_fraction": fraction,
        "n_branches": n_branches,
        "n_laterals": int(n_laterals),
        "water_content": (top, bottom),
        "root_water_content": root_water,
        "porosity": porosity,
        "mu_per_cm": {"quartz": quartz_mu, "water": water_mu, "air": air_mu, "root": root_mu},
        "counts": counts,
        "seed": seed,
        "radiation": "neutron",
        "simulator": SIMULATOR,
    }
    if len(dims) == 2:
        metadata["thickness_cm"] = thickness
    return Roots(image=image.astype(np.float32), truth=truth, roots=mask.astype(np.uint8),
                 water_content=water_map.astype(np.float32), transmission=transmission,
                 open_beam=open_beam, mu=mu, metadata=metadata)


# --------------------------------------------------------------------------------------------
# root architecture


@dataclass
class _Branch:
    points: np.ndarray  # (K, D) centreline in voxel coordinates
    radii: np.ndarray  # (K,)
    order: int


def _root_system(dims: tuple[int, ...], n_laterals: int,
                 rng: np.random.Generator) -> list[_Branch]:
    ndim = len(dims)
    depth, width = dims[0], min(dims[1:])
    start = np.array([0.0] + [d / 2.0 + rng.uniform(-0.1, 0.1) * d for d in dims[1:]])
    down = np.zeros(ndim)
    down[0] = 1.0
    direction = _unit(down + 0.15 * rng.standard_normal(ndim) * (np.arange(ndim) > 0))
    r_top = 2.4 if ndim == 3 else 1.4
    tap = _grow(rng, dims, start, direction, length=rng.uniform(0.7, 0.95) * depth,
                r0=r_top, r1=MIN_RADIUS if ndim == 2 else 1.2, gravitropism=0.04,
                tortuosity=0.05)
    branches = [tap]
    firsts = []
    if len(tap.points) > 8:
        positions = np.sort(rng.uniform(0.08, 0.8, size=n_laterals)) * (len(tap.points) - 1)
        for k, pos in enumerate(positions.astype(int)):
            parent_dir = _tangent(tap.points, pos)
            angle = math.radians(rng.uniform(55.0, 85.0))
            side = 1.0 if k % 2 == 0 else -1.0
            direction = _branch_direction(parent_dir, angle, rng, side)
            young = 1.0 - 0.6 * pos / len(tap.points)  # laterals near the tip are younger
            length = rng.uniform(0.2, 0.4 if ndim == 2 else 0.55) * width * young
            r0 = float(np.clip(0.6 * tap.radii[pos], MIN_RADIUS, 1.6))
            lateral = _grow(rng, dims, tap.points[pos], direction, length=length, r0=r0,
                            r1=MIN_RADIUS, gravitropism=0.004, tortuosity=0.06, order=1)
            firsts.append(lateral)
    seconds = []
    for lateral in firsts:
        if len(lateral.points) * STEP < 20:
            continue
        for _ in range(int(rng.integers(0, 2 if ndim == 2 else 3))):
            pos = int(rng.uniform(0.2, 0.8) * (len(lateral.points) - 1))
            direction = _branch_direction(_tangent(lateral.points, pos),
                                          math.radians(rng.uniform(60.0, 90.0)), rng,
                                          1.0 if rng.uniform() < 0.5 else -1.0)
            seconds.append(_grow(rng, dims, lateral.points[pos], direction,
                                 length=rng.uniform(6.0, 16.0), r0=MIN_RADIUS, r1=MIN_RADIUS,
                                 gravitropism=0.005, tortuosity=0.1, order=2))
    # First-order laterals before second-order ones: should the fraction cap bite, the
    # coarse architecture is kept.
    return branches + firsts + seconds


def _grow(rng: np.random.Generator, dims: tuple[int, ...], start: np.ndarray,
          direction: np.ndarray, *, length: float, r0: float, r1: float, gravitropism: float,
          tortuosity: float, order: int = 0) -> _Branch:
    n_steps = max(2, int(length / STEP))
    down = np.zeros(len(dims))
    down[0] = 1.0
    upper = np.array(dims, dtype=float) - 1.0
    kicks = rng.standard_normal((n_steps, len(dims))) * tortuosity
    points = [np.asarray(start, dtype=float)]
    position, heading = points[0].copy(), _unit(direction)
    for i in range(1, n_steps):
        # Persistence: the new heading is the old one nudged by a random kick and pulled
        # towards gravity.
        heading = _unit(heading + kicks[i] + gravitropism * down)
        position = position + STEP * heading
        if np.any(position < 0.0) or np.any(position > upper):
            break
        points.append(position)
    radii = np.linspace(r0, r1, len(points))
    return _Branch(np.array(points), radii, order)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _tangent(points: np.ndarray, index: int) -> np.ndarray:
    lo, hi = max(index - 2, 0), min(index + 2, len(points) - 1)
    return _unit(points[hi] - points[lo]) if hi > lo else np.eye(points.shape[1])[0]


def _branch_direction(parent: np.ndarray, angle: float, rng: np.random.Generator,
                      side: float) -> np.ndarray:
    """A unit vector at ``angle`` from ``parent``: a random azimuth in 3D, ``side`` in 2D."""
    if parent.size == 2:
        normal = np.array([-parent[1], parent[0]]) * side
    else:
        trial = rng.standard_normal(3)
        normal = _unit(trial - trial @ parent * parent)
    return _unit(math.cos(angle) * parent + math.sin(angle) * normal)


def _paint(dims: tuple[int, ...], branches: list[_Branch], *, chord: bool
           ) -> tuple[np.ndarray, int]:
    """Rasterise branches as unions of balls: inside (3D) or the chord length (2D, pixels).

    In 2D each root is a cylinder lying in the slab: the beam crosses it along
    ``2 sqrt(r^2 - rho^2)`` at distance ``rho`` from the centreline. Painting runs along
    each centreline from its base and stops for good before the roots would cover
    ``MAX_ROOT_FRACTION`` of the pixels, so what is painted stays connected.
    Returns the raster and the number of branches painted (even in part).
    """
    out = np.zeros(dims, dtype=np.float64 if chord else np.uint8)
    limit = MAX_ROOT_FRACTION * out.size
    covered = 0
    painted = 0
    for branch in branches:
        for i, (point, radius) in enumerate(zip(branch.points, branch.radii)):
            lo = np.maximum(np.floor(point - radius).astype(int), 0)
            hi = np.minimum(np.ceil(point + radius).astype(int) + 1, dims)
            box = tuple(slice(a, b) for a, b in zip(lo, hi))
            rho2 = sum((g - p) ** 2 for g, p in zip(np.ogrid[box], point))
            inside = rho2 < radius**2
            new = int(np.count_nonzero(inside & (out[box] == 0)))
            if covered + new >= limit:
                return out, painted + (i > 0)
            covered += new
            if chord:
                local = 2.0 * np.sqrt(np.maximum(radius**2 - rho2, 0.0))
                np.maximum(out[box], local, out=out[box])
            else:
                out[box][inside] = 1
        painted += 1
    return out, painted


# --------------------------------------------------------------------------------------------
# soil


def _smooth_unit(dims: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with correlation length ``sigma`` pixels, mean 0, std 1."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(dims), sigma=sigma, mode="wrap")
    return (field_ - field_.mean()) / max(float(field_.std()), 1e-12)


def _water_field(dims: tuple[int, ...], top: float, bottom: float,
                 rng: np.random.Generator) -> np.ndarray:
    depth = (np.arange(dims[0]) + 0.5) / dims[0]
    # A smooth step rather than a line: wetter soil gathers towards the bottom.
    profile = top + (bottom - top) * (3.0 * depth**2 - 2.0 * depth**3)
    profile = profile.reshape((-1,) + (1,) * (len(dims) - 1))
    lateral = 1.0 + 0.15 * _smooth_unit(dims, max(dims) / 8.0, rng)
    return np.clip(profile * lateral, 0.0, None)


# --------------------------------------------------------------------------------------------
# argument checks


def _check_dims(shape: Any) -> tuple[int, ...]:
    expected = "shape must be (M, N) for a radiograph or (P, M, N) for a volume"
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"{expected}, got {shape!r}") from None
    if len(items) not in (2, 3) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{expected}, got {shape!r}")
    dims = tuple(int(v) for v in items)
    if min(dims) < 16:
        raise ValueError(f"shape must be at least 16 pixels along each axis, got {dims}")
    return dims


def _check_water(water_content: Any, porosity: float) -> tuple[float, float]:
    if isinstance(water_content, (int, float, np.integer, np.floating)) and not isinstance(
            water_content, bool):
        water_content = (water_content, water_content)
    try:
        items = tuple(water_content)
    except TypeError:
        raise TypeError("water_content must be a volume fraction or a pair (top, bottom), "
                        f"got {type(water_content).__name__}") from None
    if len(items) != 2:
        raise ValueError(f"water_content must be a volume fraction or a pair (top, bottom), "
                         f"got {water_content!r}")
    values = tuple(_check_number("water_content", v, low=0.0, high=porosity,
                                 what="volume fraction up to the porosity", allow_low=True)
                   for v in items)
    return values  # type: ignore[return-value]
