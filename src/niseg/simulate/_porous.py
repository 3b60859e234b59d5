"""Porous media: packed quartz grains with pores partly filled with water.

Grains are spheres (discs in 2D) whose radii are drawn uniformly from ``grain_radius``.
They are placed by random sequential addition: a candidate grain is kept when its core
(its radius times ``1 - overlap``) does not reach into grains already placed, so grains
touch and may interpenetrate a little, as sintered or compacted sand does; when no more
grains fit, the allowed overlap grows step by step until the solid volume fraction reaches
``1 - porosity``. This reaches the porosities of natural sands (0.3–0.45), which packings
of hard spheres placed at random cannot (they jam near 0.62).

Water wets quartz, so at partial saturation it holds the narrowest parts of the pore
space (crevices where grains meet, small pores and throats) while air fills the large
pores: the morphological drainage picture of Hilpert & Miller, "Pore-morphology-based
simulation of drainage in totally wetting porous media", Adv. Water Resour. 24 (2001). A
pore voxel's *local thickness* is the radius of the largest ball that fits in the pore
space and covers it; water takes the voxels of smallest local thickness (then those
closest to a grain) until it fills the fraction ``saturation`` of the pore volume.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage, spatial

from ._phantom import _check_seed
from ._volume_phantom import VolumePhantom

__all__ = ["POROUS_CLASSES", "porous_phantom", "porous_volume"]

POROUS_CLASSES = ("quartz", "water")
_OVERLAP_START = 0.15  # fraction of a grain's radius that may reach into its neighbours
_OVERLAP_STEP = 0.1
_MAX_ROUNDS = 10_000


def porous_volume(
    shape: tuple[int, ...],
    *,
    porosity: float = 0.4,
    grain_radius: float | tuple[float, float] = (3.0, 6.0),
    saturation: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Label volume of a partly saturated sand: quartz grains, water and air-filled pores.

    Parameters
    ----------
    shape : (int, int, int) or (int, int)
        Size ``(P, M, N)`` in voxels (axes ``zyx``), or ``(M, N)`` for a 2D section of
        discs. At least 4 along each axis.
    porosity : float, optional
        Pore volume fraction, from 0.05 to 0.95. The result is within about one grain's
        volume of it (the last grain is not cut).
    grain_radius : float or (float, float), optional
        Grain radius in voxels (at least 1), or the range ``(min, max)`` of a uniform
        distribution of radii.
    saturation : float, optional
        Fraction of the pore volume filled with water, in ``[0, 1]`` (exact to one voxel).
    seed : int, optional
        Seed of every random step; the same arguments give the same volume.

    Returns
    -------
    labels : (P, M, N) or (M, N) uint8 ndarray
        0 = air-filled pore, 1 = quartz grain, 2 = water (``classes[k - 1]`` for
        ``k > 0``, the simulator's convention: 0 is empty space).
    classes : tuple of str
        ``("quartz", "water")``, names in :data:`niseg.simulate.MATERIALS`.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.simulate import porous_volume
    >>> labels, classes = porous_volume((24, 32, 32), porosity=0.4, grain_radius=3.0,
    ...                                 saturation=0.3, seed=1)
    >>> labels.shape, labels.dtype, classes
    ((24, 32, 32), dtype('uint8'), ('quartz', 'water'))
    >>> pores = labels != 1
    >>> bool(abs(pores.mean() - 0.4) < 0.02), round(float((labels == 2).sum() / pores.sum()), 2)
    (True, 0.3)
    """
    dims = _check_shape(shape)
    porosity = _check_fraction("porosity", porosity, 0.05, 0.95)
    saturation = _check_fraction("saturation", saturation, 0.0, 1.0)
    low, high = _check_radius(grain_radius)
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)

    solid = _pack_grains(dims, 1.0 - porosity, low, high, rng)
    water = _wet_pores(~solid, saturation, rng)
    labels = np.zeros(dims, dtype=np.uint8)
    labels[solid] = 1
    labels[water] = 2
    return labels, POROUS_CLASSES


def porous_phantom(
    *,
    size: int | tuple[int, int] = 256,
    depth: int = 12,
    voxel_size_um: float = 100.0,
    porosity: float = 0.4,
    grain_radius: float | tuple[float, float] = (3.0, 6.0),
    saturation: float = 0.5,
    seed: int = 0,
) -> VolumePhantom:
    """A thin layer of wet sand to radiograph: :func:`porous_volume` as a phantom.

    The layer is ``depth`` voxels thick along the beam (by default about one grain
    diameter, like a sample cell or micromodel), so that grains, water and air stay
    distinguishable in projection. Pass
    it to :func:`~niseg.simulate.simulate_radiograph` with the same ``size`` and
    ``pixel_size_um`` to have one voxel column per pixel.

    Parameters
    ----------
    size : int or (int, int), optional
        Extent ``(M, N)`` of the layer in voxels.
    depth : int, optional
        Thickness of the layer along the beam in voxels (at least 4).
    voxel_size_um : float, optional
        Edge of a cubic voxel in micrometres (100 µm with radii of 3–6 voxels is a
        medium-to-coarse sand of 0.6–1.2 mm grains).
    porosity, grain_radius, saturation, seed
        As in :func:`porous_volume` (radii in voxels).

    Returns
    -------
    VolumePhantom
        Classes ``("quartz", "water")``; 0 = air. Its ``description`` holds the arguments,
        so ``porous_phantom(**description["arguments"])`` rebuilds it.

    Examples
    --------
    >>> from niseg.simulate import porous_phantom, simulate_radiograph
    >>> sand = porous_phantom(size=48, depth=12, grain_radius=3.0, saturation=0.4, seed=2)
    >>> rad = simulate_radiograph(size=48, pixel_size_um=100.0, phantom=sand, seed=2)
    >>> rad.metadata["classes"], sorted(set(rad.truth.ravel().tolist())) == [0, 1, 2]
    (['quartz', 'water'], True)
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        m, n = (int(v) for v in size)
    except (TypeError, ValueError):
        raise TypeError(f"size must be an int or a pair of ints (M, N), got {size!r}") from None
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise TypeError(f"depth must be an integer number of voxels, got {type(depth).__name__}")
    if isinstance(voxel_size_um, bool) or not isinstance(
            voxel_size_um, (int, float, np.integer, np.floating)):
        raise TypeError(f"voxel_size_um must be a number of micrometres, "
                        f"got {type(voxel_size_um).__name__}")
    if not (math.isfinite(voxel_size_um) and voxel_size_um > 0):
        raise ValueError(f"voxel_size_um must be a positive finite number of micrometres, "
                         f"got {voxel_size_um!r}")
    labels, classes = porous_volume((int(depth), m, n), porosity=porosity,
                                    grain_radius=grain_radius, saturation=saturation, seed=seed)
    arguments: dict[str, Any] = {
        "size": [m, n], "depth": int(depth), "voxel_size_um": float(voxel_size_um),
        "porosity": float(porosity),
        "grain_radius": (float(grain_radius) if np.ndim(grain_radius) == 0
                         else [float(v) for v in grain_radius]),
        "saturation": float(saturation), "seed": int(seed),
    }
    description = {"generator": "niseg.simulate.porous_phantom", "arguments": arguments,
                   "porosity": float(np.mean(labels != 1)),
                   "saturation": float(np.sum(labels == 2) / max(np.sum(labels != 1), 1))}
    return VolumePhantom(labels=labels, classes=classes, voxel_size_cm=voxel_size_um * 1e-4,
                         description=description)


def _pack_grains(dims: tuple[int, ...], solid_fraction: float, low: float, high: float,
                 rng: np.random.Generator) -> np.ndarray:
    solid = np.zeros(dims, dtype=bool)
    target = round(solid_fraction * solid.size)
    ndim = len(dims)
    unit_ball = math.pi ** (ndim / 2) / math.gamma(ndim / 2 + 1)
    mean_grain = unit_ball * ((low + high) / 2.0) ** ndim
    core = 1.0 - _OVERLAP_START
    filled = 0
    extent = np.array(dims, dtype=np.float64)
    placed_centres = np.empty((0, ndim))
    placed_radii = np.empty(0)
    for _ in range(_MAX_ROUNDS):
        batch = int(np.clip(3 * (target - filled) / mean_grain, 16, 4096))
        radii = rng.uniform(low, high, size=batch)
        # Centres may lie half a radius outside so that the faces are packed as densely.
        centres = rng.uniform(-0.5, 0.5, size=(batch, ndim)) * radii[:, None] + \
            rng.uniform(0.0, 1.0, size=(batch, ndim)) * extent
        fits = np.ones(batch, dtype=bool)
        candidates = spatial.cKDTree(centres)
        if len(placed_radii):
            # A candidate fits when its core stays clear of every grain's core.
            i, j, gap = _pairs(candidates, spatial.cKDTree(placed_centres), 2.0 * core * high)
            fits[i[gap < core * (radii[i] + placed_radii[j])]] = False
        a, b, gap = _pairs(candidates, candidates, 2.0 * core * high)
        clash = (a < b) & (gap < core * (radii[a] + radii[b]))
        rivals: dict[int, list[int]] = {}
        for early, late in zip(a[clash].tolist(), b[clash].tolist(), strict=True):
            rivals.setdefault(late, []).append(early)
        kept: list[int] = []
        accepted = np.zeros(batch, dtype=bool)
        for k in np.flatnonzero(fits).tolist():
            if any(accepted[e] for e in rivals.get(k, ())):
                continue
            accepted[k] = True
            kept.append(k)
            filled += _paint_ball(solid, centres[k], radii[k])
            if filled >= target:
                return solid
        placed_centres = np.concatenate([placed_centres, centres[kept]])
        placed_radii = np.concatenate([placed_radii, radii[kept]])
        if len(kept) < max(2, batch // 50):
            core = max(core - _OVERLAP_STEP, 0.0)  # jammed: let grains overlap more
    raise RuntimeError("porous_volume could not reach the requested porosity")  # unreachable


def _pairs(first: spatial.cKDTree, second: spatial.cKDTree, distance: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)`` of points of two trees closer than ``distance``, and the gaps."""
    found = first.sparse_distance_matrix(second, distance, output_type="ndarray")
    return found["i"], found["j"], found["v"]


def _paint_ball(solid: np.ndarray, centre: np.ndarray, radius: float) -> int:
    """Set the voxels whose centres lie inside the ball; return how many were new."""
    lo = [max(math.floor(c - radius), 0) for c in centre]
    hi = [min(math.ceil(c + radius) + 1, n) for c, n in zip(centre, solid.shape, strict=True)]
    if any(a >= b for a, b in zip(lo, hi, strict=True)):
        return 0
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    r2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
    ball = r2 < radius**2
    box = solid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    new = int(np.count_nonzero(ball & ~box))
    box |= ball
    return new


def _wet_pores(pore: np.ndarray, saturation: float, rng: np.random.Generator) -> np.ndarray:
    """Water in the pore voxels of smallest local thickness (then closest to a grain)."""
    n_pore = int(pore.sum())
    n_water = round(saturation * n_pore)
    if n_water == 0:
        return np.zeros(pore.shape, dtype=bool)
    if n_water >= n_pore:
        return pore.copy()
    to_grain = ndimage.distance_transform_edt(pore)
    # A smooth random field orders voxels that tie, so the last, partly filled level set
    # fills in patches rather than in scattered single voxels.
    tiebreak = ndimage.gaussian_filter(rng.standard_normal(pore.shape), 2.0)
    radii = np.arange(1.0, to_grain.max() + 0.5, 0.5)
    # Only the level sets up to the one that holds the water-air boundary are needed:
    # walk up from the thinnest when water is the minority phase, else down for air.
    if n_water <= n_pore // 2:
        settled = np.zeros(pore.shape, dtype=bool)  # voxels thinner than the current radius
        for radius in radii:
            thinner = pore & ~_covered(to_grain, radius)
            if thinner.sum() >= n_water:
                break
            settled = thinner
        else:
            thinner = pore
        return _complete(settled, thinner & ~settled, n_water, to_grain, tiebreak, first=True)
    n_air = n_pore - n_water
    settled = np.zeros(pore.shape, dtype=bool)  # voxels at least as thick as the radius
    for radius in radii[::-1]:
        thicker = _covered(to_grain, radius)
        if thicker.sum() >= n_air:
            break
        settled = thicker
    else:
        thicker = pore
    air = _complete(settled, thicker & ~settled, n_air, to_grain, tiebreak, first=False)
    return pore & ~air


def _covered(to_grain: np.ndarray, radius: float) -> np.ndarray:
    """Pore voxels inside some ball of ``radius`` that fits in the pore space."""
    centres = to_grain >= radius
    if not centres.any():
        return np.zeros(to_grain.shape, dtype=bool)
    return ndimage.distance_transform_edt(~centres) < radius


def _complete(settled: np.ndarray, shell: np.ndarray, total: int, to_grain: np.ndarray,
              tiebreak: np.ndarray, *, first: bool) -> np.ndarray:
    """``settled`` plus the shell voxels nearest to (``first``) or farthest from a grain."""
    out = settled.copy()
    need = total - int(settled.sum())
    where = np.flatnonzero(shell)
    order = np.lexsort((tiebreak.ravel()[where], to_grain.ravel()[where]))
    pick = order[:need] if first else order[len(order) - need:]
    out.ravel()[where[pick]] = True
    return out


def _check_shape(shape: Any) -> tuple[int, ...]:
    expected = "shape must be a tuple of 2 or 3 integers (voxels along each axis)"
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"{expected}, got {shape!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{expected}, got {shape!r}")
    if len(items) not in (2, 3) or min(items) < 4:
        raise ValueError(f"{expected}, each at least 4, got {shape!r}")
    return tuple(int(v) for v in items)


def _check_fraction(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a fraction from {low:g} to {high:g}, "
                        f"got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be a fraction from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _check_radius(grain_radius: Any) -> tuple[float, float]:
    expected = ("grain_radius must be a number of voxels (at least 1) or a range (min, max) "
                "with 1 <= min <= max")
    if isinstance(grain_radius, (int, float, np.integer, np.floating)) and \
            not isinstance(grain_radius, bool):
        low = high = float(grain_radius)
    else:
        try:
            low, high = (float(v) for v in grain_radius)
        except (TypeError, ValueError):
            raise TypeError(f"{expected}, got {grain_radius!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 1.0 <= low <= high):
        raise ValueError(f"{expected}, got {grain_radius!r}")
    return low, high
